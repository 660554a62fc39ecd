"""Keras's surface of minicnn.datasets and minicnn.utils: ``datasets.mnist``,
``datasets.fashion_mnist`` and ``datasets.cifar10`` with ``load_data()``, and
``utils.to_categorical``, ``utils.normalize``, ``utils.set_random_seed``.

Each ``load_data()`` must give exactly Keras 3's structure, shapes and dtypes
(``keras/src/datasets/*.py``): a tuple ``((x_train, y_train), (x_test, y_test))`` of
uint8 arrays, images (N, 28, 28) or CIFAR-10's (N, 32, 32, 3), labels (N,) or CIFAR-10's
(N, 1). Where Keras is installed the same local copy (written here in Keras's layout,
in a temporary HOME) is also read by Keras's own loaders, with their ``get_file``
replaced by a look-up that never downloads, and the arrays must be equal.

No test touches the network or the real home directory (see the ``env`` fixture).
"""
import gzip
import inspect
import os
import pickle
import random
import re
import struct
import types
import urllib.parse
import urllib.request

import numpy as np
import pytest

import minicnn as mc
import minicnn.datasets as ds
from minicnn import utils

MODULES = ("mnist", "fashion_mnist", "cifar10")
IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_BATCHES = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]


# --------------------------------------------------------------------------- fixtures

from local_network import local_only_urlopen as _local_only_urlopen  # noqa: E402


@pytest.fixture(autouse=True)
def env(tmp_path, monkeypatch):
    """A fake HOME, no MINICNN_DATA or KERAS_HOME, offline, Debian's folder under
    tmp_path, and no network."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("MINICNN_DATA", "KERAS_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MINICNN_OFFLINE", "1")
    monkeypatch.setattr(urllib.request, "urlopen", _local_only_urlopen)
    monkeypatch.setattr(ds, "SYSTEM_DIR", str(tmp_path / "debian"))
    assert os.path.expanduser("~") == str(home)
    return types.SimpleNamespace(
        home=home, keras=home / ".keras" / "datasets", data=tmp_path / "minicnn-data",
        minicnn=home / ".minicnn" / "datasets", debian=tmp_path / "debian")


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras")


@pytest.fixture
def keras_offline(keras, monkeypatch):
    """Keras's own dataset loaders, reading the files under the Keras folder of the fake
    HOME; their ``get_file`` never downloads (a missing file fails the test)."""
    from keras.src.datasets import cifar10, fashion_mnist, mnist

    def get_file(fname=None, origin=None, cache_subdir="datasets", **kwargs):
        file = os.path.join(os.path.dirname(ds.keras_datasets_dir()), cache_subdir, fname)
        if not os.path.exists(file):
            raise AssertionError(f"Keras would download {origin} to {file}")
        return file

    for module in (cifar10, fashion_mnist, mnist):
        monkeypatch.setattr(module, "get_file", get_file)
    from keras.src import backend
    monkeypatch.setattr(backend, "image_data_format", lambda: "channels_last")
    return types.SimpleNamespace(mnist=mnist, fashion_mnist=fashion_mnist, cifar10=cifar10)


# --------------------------------------------------------------------------- helpers

def idx_bytes(array):
    """IDX bytes built by hand (uint8 only): magic 0 0 8 <ndim>, big-endian dims."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    return (bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            + array.tobytes())


def fake_arrays(tag, n_train=12, n_test=6, image_shape=(28, 28)):
    rng = np.random.default_rng(tag)
    return ((rng.integers(0, 256, (n_train,) + image_shape, dtype=np.uint8),
             ((np.arange(n_train) + tag) % 10).astype(np.uint8)),
            (rng.integers(0, 256, (n_test,) + image_shape, dtype=np.uint8),
             ((np.arange(n_test) + 3 * tag) % 10).astype(np.uint8)))


def write_fashion(folder, tag, **sizes):
    """Keras's Fashion-MNIST layout: the four gzip IDX files in ``folder``."""
    data = fake_arrays(tag, **sizes)
    (x_train, y_train), (x_test, y_test) = data
    folder.mkdir(parents=True, exist_ok=True)
    for stem, array in zip(IDX_STEMS, (x_train, y_train, x_test, y_test)):
        (folder / (stem + ".gz")).write_bytes(gzip.compress(idx_bytes(array)))
    return data


def write_mnist_npz(file, tag, **arrays):
    """Keras's mnist.npz: x_train, y_train, x_test, y_test (uint8)."""
    (x_train, y_train), (x_test, y_test) = data = fake_arrays(tag)
    contents = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    contents.update(arrays)
    file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(file, **contents)
    return data


def write_cifar_bin(folder, tag, per_batch=3, skip=()):
    """The binary version: six batches of (label byte, R, G, B planes) records.
    Returns the data in Keras's form, images (N, 32, 32, 3) and labels (N, 1), and the
    planes and labels of each batch."""
    rng = np.random.default_rng(tag)
    folder.mkdir(parents=True, exist_ok=True)
    planes, labels = {}, {}
    for b, name in enumerate(CIFAR_BATCHES):
        planes[name] = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        labels[name] = ((np.arange(per_batch) + b + tag) % 10).astype(np.uint8)
        if name not in skip:
            records = np.concatenate([labels[name][:, None],
                                      planes[name].reshape(per_batch, -1)], axis=1)
            (folder / name).write_bytes(records.tobytes())
    def as_keras(names):
        return (np.concatenate([planes[n] for n in names]).transpose(0, 2, 3, 1),
                np.concatenate([labels[n] for n in names])[:, None])

    return (as_keras(CIFAR_BATCHES[:5]), as_keras(CIFAR_BATCHES[5:])), planes, labels


def write_cifar_pickles(folder, planes, labels):
    """The python version Keras reads, of the same records (written by the test for
    Keras's own loader; minicnn never reads it)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in CIFAR_BATCHES:
        batch = {b"data": planes[name].reshape(len(planes[name]), -1),
                 b"labels": [int(v) for v in labels[name]]}
        with open(folder / name[:-4], "wb") as f:
            pickle.dump(batch, f, protocol=4)


def assert_keras_contract(data, n_train, n_test, image_shape, label_shape=()):
    """Keras 3's result: a 2-tuple of 2-tuples of uint8 NumPy arrays."""
    assert type(data) is tuple and len(data) == 2
    for split, n in zip(data, (n_train, n_test)):
        assert type(split) is tuple and len(split) == 2
        x, y = split
        assert type(x) is np.ndarray and type(y) is np.ndarray
        assert x.dtype == np.uint8 and x.shape == (n,) + image_shape
        assert y.dtype == np.uint8 and y.shape == (n,) + label_shape
        assert y.size == 0 or y.max() <= 9


def assert_equal_data(got, expected):
    for (x, y), (ex, ey) in zip(got, expected):
        assert x.dtype == ex.dtype and x.shape == ex.shape
        assert y.dtype == ey.dtype and y.shape == ey.shape
        for got_, want in ((x, ex), (y, ey)):   # np.array_equal: fast on 150 MB
            if not np.array_equal(got_, want):
                first = tuple(int(i[0]) for i in np.nonzero(got_ != want))
                raise AssertionError(f"arrays differ, first at {first}: "
                                     f"{got_[first]} != {want[first]}")


def one_line_notice(capsys):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


# --------------------------------------------------------------------------- 1. the modules

@pytest.mark.parametrize("name", MODULES)
def test_dataset_modules_are_importable_like_keras(name):
    module = getattr(mc.datasets, name)
    assert isinstance(module, types.ModuleType) and callable(module.load_data)
    assert module.__name__ == f"minicnn.datasets.{name}"
    import importlib
    assert importlib.import_module(f"minicnn.datasets.{name}") is module
    keras = mc  # what `import minicnn as keras` gives
    assert getattr(keras.datasets, name).load_data is module.load_data
    assert name in ds.__all__


@pytest.mark.parametrize("module, name", [(ds, "cifar100"), (ds, "imdb"),
                                          (utils, "plot_model"), (utils, "get_file")])
def test_what_keras_has_and_minicnn_lacks_says_so(module, name):
    with pytest.raises(AttributeError, match=r"^" + re.escape(f"{module.__name__}.{name} is "
                                                                "not implemented in minicnn")):
        getattr(module, name)
    assert not hasattr(module, name)


@pytest.mark.parametrize("name", MODULES)
def test_load_data_signatures_are_keras(keras, name):
    ours = inspect.signature(getattr(mc.datasets, name).load_data)
    theirs = inspect.signature(getattr(keras.datasets, name).load_data)
    assert str(ours) == str(theirs)


# --------------------------------------------------------------------------- 2. offline

def test_mnist_load_data_offline_is_the_shipped_subset(env, capsys):
    data = ds.mnist.load_data()
    assert_keras_contract(data, 4000, 1000, (28, 28))
    (_, y_train), (_, y_test) = data
    assert np.bincount(y_train).tolist() == [400] * 10
    assert np.bincount(y_test).tolist() == [100] * 10
    notice = one_line_notice(capsys)
    assert notice.startswith("minicnn: no full MNIST copy found")
    assert "subset" in notice and str(env.keras / "mnist.npz") in notice
    (x_train, y_train), (x_test, y_test) = ds.load_mnist()
    capsys.readouterr()
    assert_equal_data(data, ((x_train, y_train.astype(np.uint8)),
                             (x_test, y_test.astype(np.uint8))))


def test_fashion_mnist_load_data_offline_is_the_shipped_subset(env, capsys):
    data = ds.fashion_mnist.load_data()
    assert_keras_contract(data, 10000, 2000, (28, 28))
    assert np.bincount(data[1][1]).tolist() == [200] * 10
    notice = one_line_notice(capsys)
    assert notice.startswith("minicnn: no full Fashion-MNIST copy found")
    assert "subset" in notice and str(env.keras / "fashion-mnist") in notice
    assert str(env.debian / "fashion-mnist") in notice


def test_cifar10_load_data_without_a_copy_says_what_to_put_where(env, capsys):
    with pytest.raises(FileNotFoundError) as info:
        ds.cifar10.load_data()
    message = str(info.value)
    assert message.startswith("cifar10.load_data: no CIFAR-10 copy found")
    for part in ("cifar-10-binary.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar.html",
                 "cifar-10-batches-bin", "data_batch_1.bin", "test_batch.bin",
                 f"extract it in {env.keras}", "never unpickles", "cifar-10-batches-py",
                 str(env.minicnn / "cifar-10"), str(env.debian / "cifar-10"),
                 "ships no CIFAR-10 subset"):
        assert part in message, part
    assert capsys.readouterr().err == ""
    with pytest.raises(FileNotFoundError, match=r"^load_cifar10: no CIFAR-10 copy found"):
        ds.load_cifar10()


@pytest.mark.parametrize("layout", ["cifar-10-batches-py", "cifar-10-batches-py-target"])
def test_cifar10_pickles_alone_are_named_and_not_read(env, layout):
    """Keras's python batches (old layout and Keras 3's extraction folder) are found,
    named in the error, and never opened."""
    folder = env.keras / layout
    if layout.endswith("-target"):
        folder = folder / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in CIFAR_BATCHES:   # not even pickles: reading one would fail differently
        (folder / name[:-4]).write_bytes(b"never read")
    with pytest.raises(FileNotFoundError) as info:
        ds.cifar10.load_data()
    assert f"found Keras's pickle batches in {folder}" in str(info.value)
    assert "never unpickles" in str(info.value)


# ------------------------------------------------------------------ 3. Keras's local copies

def test_mnist_keras_copy_first_and_equal_to_keras(env, keras_offline, monkeypatch):
    expected = write_mnist_npz(env.keras / "mnist.npz", 3)
    write_mnist_npz(env.minicnn / "mnist" / "mnist.npz", 4)   # minicnn's: second
    monkeypatch.setenv("MINICNN_DATA", str(env.data))
    write_fashion(env.data / "mnist", 5)                         # $MINICNN_DATA: second too
    data = ds.mnist.load_data()
    assert_keras_contract(data, 12, 6, (28, 28))
    assert_equal_data(data, expected)
    assert_equal_data(data, keras_offline.mnist.load_data())
    # load_mnist() keeps its own order ($MINICNN_DATA first) and int64 labels.
    (x_train, y_train), _ = ds.load_mnist()
    assert y_train.dtype == np.int64 and not np.array_equal(x_train, expected[0][0])


def test_mnist_path_argument_like_keras(env, keras_offline, tmp_path):
    expected = write_mnist_npz(env.keras / "digits.npz", 6)
    assert_equal_data(ds.mnist.load_data("digits.npz"), expected)
    assert_equal_data(ds.mnist.load_data(path="digits.npz"),
                      keras_offline.mnist.load_data(path="digits.npz"))
    elsewhere = write_mnist_npz(tmp_path / "elsewhere" / "m.npz", 7)
    assert_equal_data(ds.mnist.load_data(str(tmp_path / "elsewhere" / "m.npz")), elsewhere)
    assert_equal_data(ds.mnist.load_data(tmp_path / "elsewhere" / "m.npz"), elsewhere)


def test_keras_home_is_where_keras_keeps_them(env, monkeypatch, tmp_path):
    keras_home = tmp_path / "keras-home"
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    assert ds.keras_datasets_dir() == str(keras_home / "datasets")
    write_mnist_npz(env.keras / "mnist.npz", 1)                  # ~/.keras: not Keras's now
    expected = write_mnist_npz(keras_home / "datasets" / "mnist.npz", 2)
    assert_equal_data(ds.mnist.load_data(), expected)
    fashion = write_fashion(keras_home / "datasets" / "fashion-mnist", 3)
    assert_equal_data(ds.fashion_mnist.load_data(), fashion)
    cifar, _, _ = write_cifar_bin(keras_home / "datasets" / "cifar-10-batches-bin", 4)
    assert_equal_data(ds.cifar10.load_data(), cifar)


def test_fashion_mnist_keras_copy_first_and_equal_to_keras(env, keras_offline, monkeypatch,
                                                           capsys):
    expected = write_fashion(env.keras / "fashion-mnist", 8, n_train=20, n_test=10)
    write_fashion(env.minicnn / "fashion-mnist", 9)
    write_fashion(env.debian / "fashion-mnist", 10)
    data = ds.fashion_mnist.load_data()
    assert_keras_contract(data, 20, 10, (28, 28))
    assert_equal_data(data, expected)
    assert_equal_data(data, keras_offline.fashion_mnist.load_data())
    assert capsys.readouterr().err == ""
    # minicnn's own folders next, in load_fashion_mnist's order
    import shutil
    shutil.rmtree(env.keras / "fashion-mnist")
    assert_equal_data(ds.fashion_mnist.load_data(), fake_arrays(9))


def test_fashion_mnist_full_debian_copy_equal_to_keras(env, keras_offline, monkeypatch):
    """The real data where Debian's dataset-fashion-mnist is installed: minicnn reads it
    from /usr/share/datasets, Keras's loader from the same files, and they agree."""
    real = "/usr/share/datasets/fashion-mnist"
    if not all(os.path.isfile(os.path.join(real, s + ".gz")) for s in IDX_STEMS):
        pytest.skip(f"the full Fashion-MNIST files are not in {real} "
                    "(apt-get install dataset-fashion-mnist)")
    monkeypatch.setattr(ds, "SYSTEM_DIR", os.path.dirname(real))
    ours = ds.fashion_mnist.load_data()
    assert_keras_contract(ours, 60000, 10000, (28, 28))
    env.keras.mkdir(parents=True)                  # Keras's loader reads them there
    (env.keras / "fashion-mnist").symlink_to(real)
    assert_equal_data(ours, keras_offline.fashion_mnist.load_data())


@pytest.mark.parametrize("where", ["keras", "data/cifar-10", "data", "home", "home-nested",
                                   "debian"])
def test_cifar10_binary_copy_in_each_place(env, monkeypatch, where):
    """Each place, with the ones after it holding other data: the first wins."""
    monkeypatch.setenv("MINICNN_DATA", str(env.data))
    folders = {"keras": env.keras / "cifar-10-batches-bin",
               "data/cifar-10": env.data / "cifar-10",
               "data": env.data,
               "home": env.minicnn / "cifar-10",
               "home-nested": env.minicnn / "cifar-10" / "cifar-10-batches-bin",
               "debian": env.debian / "cifar-10" / "cifar-10-batches-bin"}
    order = list(folders)
    expected, _, _ = write_cifar_bin(folders[where], 1)
    for tag, later in enumerate(order[order.index(where) + 1:], start=2):
        if later != "home-nested" or where != "home":
            write_cifar_bin(folders[later], tag)
    data = ds.cifar10.load_data()
    assert_keras_contract(data, 15, 3, (32, 32, 3), (1,))
    assert_equal_data(data, expected)
    # load_cifar10() searches minicnn's places first and Keras's folder last.
    (x_train, y_train), _ = ds.load_cifar10()
    assert y_train.dtype == np.int64 and y_train.shape == (15,)
    if where != "keras":
        np.testing.assert_array_equal(x_train, expected[0][0])


def test_cifar10_equal_to_keras_reading_the_pickles(env, keras_offline, monkeypatch):
    """The same records as binary (read by minicnn) and as Keras's python pickles in
    Keras 3's layout (read by Keras's own load_data and load_batch): identical
    arrays, shapes and dtypes.

    Keras's loader fills a buffer of exactly 10,000 records per training batch; rather
    than write 370 MB here, each batch Keras reads (7 records) is padded with zero
    records to 10,000 and the padding is cut from Keras's result afterwards."""
    per_batch = 7
    expected, planes, labels = write_cifar_bin(env.keras / "cifar-10-batches-bin", 5,
                                               per_batch=per_batch)
    write_cifar_pickles(env.keras / "cifar-10-batches-py-target" / "cifar-10-batches-py",
                        planes, labels)
    real_load_batch = keras_offline.cifar10.load_batch
    read = []

    def padded_load_batch(fpath, *args, **kwargs):
        data, batch_labels = real_load_batch(fpath, *args, **kwargs)
        read.append(os.path.basename(fpath))
        pad = 10000 - len(data)
        return (np.concatenate([data, np.zeros((pad,) + data.shape[1:], data.dtype)]),
                list(batch_labels) + [0] * pad)

    monkeypatch.setattr(keras_offline.cifar10, "load_batch", padded_load_batch)
    (x_train, y_train), (x_test, y_test) = keras_offline.cifar10.load_data()
    assert read == [name[:-4] for name in CIFAR_BATCHES]
    assert_keras_contract(((x_train, y_train), (x_test, y_test)), 50000, 10000,
                          (32, 32, 3), (1,))

    def unpad(array):
        return array.reshape((-1, 10000) + array.shape[1:])[:, :per_batch].reshape(
            (-1,) + array.shape[1:])

    theirs = ((unpad(x_train), unpad(y_train)), (x_test[:per_batch], y_test[:per_batch]))
    ours = ds.cifar10.load_data()
    assert_keras_contract(ours, 5 * per_batch, per_batch, (32, 32, 3), (1,))
    assert_equal_data(ours, theirs)
    assert_equal_data(ours, expected)
    assert ours[0][0].flags.c_contiguous and ours[1][0].flags.c_contiguous


def test_cifar10_incomplete_folder_is_skipped(env):
    write_cifar_bin(env.keras / "cifar-10-batches-bin", 1, skip=("test_batch.bin",))
    expected, _, _ = write_cifar_bin(env.minicnn / "cifar-10", 2)
    assert_equal_data(ds.cifar10.load_data(), expected)


def test_cifar10_corrupt_keras_copy_is_an_error_naming_the_file(env):
    folder = env.keras / "cifar-10-batches-bin"
    write_cifar_bin(folder, 1)
    (folder / "data_batch_2.bin").write_bytes(b"\x00" * 3000)
    with pytest.raises(ValueError, match=re.escape(str(folder / "data_batch_2.bin"))):
        ds.cifar10.load_data()


# --------------------------------------------------------------------------- 4. load_data errors

def test_mnist_corrupt_keras_npz_names_the_file(env):
    file = env.keras / "mnist.npz"
    file.parent.mkdir(parents=True)
    file.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(ValueError, match=re.escape(str(file))):
        ds.mnist.load_data()


@pytest.mark.parametrize("bad, expected", [
    (dict(x_train=np.zeros((12, 784), np.uint8)), r"uint8 \(N, 28, 28\)"),
    (dict(x_test=np.zeros((6, 28, 28), np.float32)), r"float32 \(6, 28, 28\)"),
    (dict(y_train=np.full(12, 10, np.uint8)), r"integers 0\.\.9"),
    (dict(y_test=np.full(6, 0.5)), r"integers 0\.\.9"),
    (dict(y_test=np.zeros(5, np.uint8)), r"expected \(6,\), one per image"),
])
def test_mnist_load_data_refuses_what_keras_would_not_return(env, bad, expected):
    file = env.keras / "mnist.npz"
    write_mnist_npz(file, 1, **bad)
    with pytest.raises(ValueError, match=expected) as info:
        ds.mnist.load_data()
    assert str(info.value).startswith("mnist.load_data: ") and str(file) in str(info.value)


def test_fashion_mnist_load_data_refuses_flat_images(env):
    folder = env.keras / "fashion-mnist"
    write_fashion(folder, 1)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.zeros((6, 784), np.uint8))))
    with pytest.raises(ValueError, match=r"^fashion_mnist\.load_data: the test images in "
                                         + re.escape(repr(str(folder)))):
        ds.fashion_mnist.load_data()


@pytest.mark.parametrize("path", [3, 2.5, b"mnist.npz"])
def test_mnist_load_data_path_type(path):
    with pytest.raises(TypeError, match=r"^mnist\.load_data: path must be"):
        ds.mnist.load_data(path)


# --------------------------------------------------------------------------- 5. utils vs Keras

def _label_inputs(rng):
    for shape in [(), (1,), (9,), (9, 1), (4, 3), (2, 3, 1), (2, 1, 3), (1, 1)]:
        for dtype in (np.int64, np.uint8, np.int32, np.float32):
            yield rng.integers(0, 7, shape).astype(dtype)
    yield [3, 0, 2]
    yield [[1], [4]]
    yield (2.9, 0.2)        # floats are truncated, as in Keras


def test_to_categorical_equals_keras(keras):
    rng = np.random.default_rng(0)
    for x in _label_inputs(rng):
        biggest = int(np.max(np.array(x, dtype=np.int64)))
        for num_classes in (None, 0, biggest + 1, biggest + 4, np.int64(biggest + 2)):
            theirs = keras.utils.to_categorical(x, num_classes)
            ours = utils.to_categorical(x, num_classes)
            assert type(ours) is np.ndarray
            assert ours.dtype == theirs.dtype == np.float64
            assert ours.shape == theirs.shape, (np.shape(x), num_classes)
            np.testing.assert_array_equal(ours, theirs)
    empty = np.zeros((0,), np.int64)
    assert utils.to_categorical(empty, 3).shape == keras.utils.to_categorical(empty, 3).shape


def test_to_categorical_shapes():
    assert utils.to_categorical(np.array([[1], [2]])).shape == (2, 3)       # (N, 1) -> (N, C)
    assert utils.to_categorical(np.array([2])).shape == (1, 3)              # (1,) stays
    assert utils.to_categorical(2, 4).tolist() == [0, 0, 1, 0]             # scalar -> (C,)
    assert utils.to_categorical(np.zeros((2, 3, 1), int), 2).shape == (2, 3, 2)


@pytest.mark.parametrize("x, num_classes, expected", [
    ([0, -1, 2], None, r"class indices must be in 0\.\.2 \(num_classes=3\)\. Received: -1"),
    ([0, 3], 3, r"class indices must be in 0\.\.2 \(num_classes=3\)\. Received: 3"),
    ([], None, r"cannot infer num_classes from an empty x; pass num_classes"),
    ([0, 1], 2.0, r"num_classes must be a positive int .* Received: num_classes=2\.0"),
    ([0, 1], -2, r"num_classes must be a positive int"),
    ([0, 1], True, r"num_classes must be a positive int"),
    (["a", "b"], None, r"x must hold integer class indices\. Received: list"),
    ([[0, 1], [2]], None, r"x must hold integer class indices"),
])
def test_to_categorical_errors(x, num_classes, expected):
    with pytest.raises(ValueError, match=r"^to_categorical: " + expected):
        utils.to_categorical(x, num_classes)


def _normalize_cases(rng):
    for shape in [(7,), (3, 4), (4, 4), (2, 3, 5)]:
        axes = ([-1, None] + list(range(1, len(shape)))
                + [-a for a in range(2, len(shape) + 1)])
        for axis in axes:
            for order in (1, 2, 3, np.inf):
                for dtype in (np.float32, np.float64, np.int64):
                    if axis is None and (len(shape) > 2 or order == 3):
                        continue  # NumPy refuses those norms
                    x = (rng.normal(size=shape) * 4).astype(dtype)
                    yield x, axis, order


def test_normalize_equals_keras(keras):
    rng = np.random.default_rng(1)
    count = 0
    for x, axis, order in _normalize_cases(rng):
        theirs = keras.utils.normalize(x, axis=axis, order=order)
        ours = utils.normalize(x, axis=axis, order=order)
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, (x.shape, axis)
        np.testing.assert_array_equal(ours, theirs)
        count += 1
    assert count > 150
    zeros = np.zeros((3, 4), np.float32)
    zeros[1] = [3, 4, 0, 0]
    np.testing.assert_array_equal(utils.normalize(zeros), keras.utils.normalize(zeros))
    vector = np.array([3.0, 4.0])               # Keras gives 1-D input back as (1, n)
    for axis in (-1, 0):
        np.testing.assert_array_equal(utils.normalize(vector, axis),
                                      keras.utils.normalize(vector, axis))


def test_normalize_along_axis_0():
    """Keras's NumPy code puts the norm back on axis -1 when asked for axis 0; minicnn
    normalizes the columns."""
    x = np.array([[3.0, 0.0, 1.0], [4.0, 0.0, 1.0]])
    got = utils.normalize(x, axis=0)
    np.testing.assert_allclose(got, [[0.6, 0.0, 2 ** -0.5], [0.8, 0.0, 2 ** -0.5]])
    np.testing.assert_allclose(np.linalg.norm(utils.normalize(np.ones((5, 3)), 0), axis=0), 1)


@pytest.mark.parametrize("kwargs, kind, expected", [
    (dict(axis=2), ValueError, r"order 2 along axis 2 of an array of shape \(3, 4\)"),
    (dict(order="fro"), ValueError, r"order 'fro' along axis -1 of an array of shape"),
])
def test_normalize_errors(kwargs, kind, expected):
    with pytest.raises(kind, match=r"^normalize: cannot take the norm of " + expected):
        utils.normalize(np.ones((3, 4)), **kwargs)


@pytest.mark.parametrize("axis", [1.5, "1", (0, 1.0), True])
def test_normalize_axis_type(axis):
    with pytest.raises(TypeError, match=r"^normalize: axis must be None, an int or a tuple "
                                        r"of ints\. Received: axis="):
        utils.normalize(np.ones((3, 4)), axis=axis)


def test_set_random_seed_seeds_like_keras(keras):
    def draws():
        return random.random(), np.random.rand(), np.random.randint(0, 1000)

    keras.utils.set_random_seed(1234)
    theirs = draws()
    utils.set_random_seed(1234)
    assert draws() == theirs
    first = utils.global_rng().random()
    utils.set_random_seed(1234)
    assert utils.global_rng().random() == first


def test_set_random_seed_takes_large_seeds():
    utils.set_random_seed(2**40)                  # np.random gets 2**40 % 2**32
    a = utils.global_rng().random(3), np.random.rand()
    utils.set_random_seed(2**40)
    b = utils.global_rng().random(3), np.random.rand()
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]


@pytest.mark.parametrize("seed", [-1, 1.5, "3", None, True])
def test_set_random_seed_errors(seed):
    with pytest.raises(ValueError, match=r"^set_random_seed: seed must be a non-negative "
                                         r"int\. Received: "):
        utils.set_random_seed(seed)


def test_utils_are_where_keras_has_them():
    keras = mc
    for name in ("to_categorical", "normalize", "set_random_seed"):
        assert callable(getattr(keras.utils, name)) and name in utils.__all__
