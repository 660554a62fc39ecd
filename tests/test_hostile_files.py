"""Hostile model files and arguments: whatever a crafted or damaged file asks of a loader,
and whatever a wrong argument asks of fit, minicnn refuses with an error naming the file
(or the argument), before it reads more than it needs or changes a weight.

Every crafted file is made here, by the test itself, from a freshly trained tiny model
(no binary fixtures). Every hostile load runs in a *child process* under an address-space
limit and a time limit: a crash (a segfault in libhdf5, an out-of-bounds write in a numba
kernel), a hang (a FIFO with no writer) or a runaway allocation fails one test instead of
the whole run. A child reports each attempt as one JSON line; ``Child`` collects them.

Sections: 1. slots of the wrong size, 2. HDF5 links and foreign storage, 3. a huge
declared weight, 4. a huge or deeply nested config, 5. special files, 6. byte-flip fuzz,
7. class names, 8. typed configs, 9. the mode of saved files, 10. writers killed mid-save,
11. fit/evaluate/predict arguments, 12. labels out of range, 13. out of memory in a step,
14. invalid optimizer state, 15. exact resume from a .keras file.
"""
import contextlib
import inspect
import json
import os
import selectors
import shutil
import signal
import stat
import struct
import subprocess
import sys
import textwrap
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

import minicnn as mc
from minicnn import keras_files
from minicnn.layers import Conv2D, Dense, Dropout, Flatten
from minicnn.models import Sequential, load_model

GiB, MiB = 2**30, 2**20
REPO = Path(__file__).resolve().parents[1]
HEADER = "__minicnn_header__"
# A child (Python, NumPy, numba's kernels, h5py, a training step) maps about 650 MiB
# (measured: VmPeak 635 MiB on x86-64 Linux); 3 GiB leaves room for any honest load and
# stops a runaway one long before it troubles the machine.
ADDRESS_SPACE = 3 * GiB
SECRET = 1234.5  # what a planted file holds: it must never reach a model


# ---------------------------------------------------------------------------------
# the tiny model, built the same way here and in the children
# ---------------------------------------------------------------------------------
def tiny(seed=0, optimizer="adam"):
    """Conv2D(2, 3) on 6x6x1 -> Flatten -> Dense(3, softmax), compiled; layer names
    fixed so that files made in different processes name the same layers."""
    mc.utils.set_random_seed(seed)
    model = Sequential([Conv2D(2, 3, input_shape=(6, 6, 1), name="conv2d"),
                        Flatten(name="flatten"), Dense(3, activation="softmax", name="dense")],
                       name="tiny")
    model.compile(optimizer, "sparse_categorical_crossentropy")
    return model


def tiny_data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 6, 6, 1)).astype(np.float32), rng.integers(0, 3, n)


def trained(seed=0, optimizer="adam"):
    """``tiny`` after one step, so that the optimizer has its slots."""
    model = tiny(seed, optimizer)
    model.train_on_batch(*tiny_data())
    return model


def weights_equal(a, b):
    return len(a) == len(b) and all(
        np.shape(x) == np.shape(y) and np.array_equal(x, y) for x, y in zip(a, b))


def holds_secret(weights):
    return any(bool((np.asarray(w) == SECRET).any()) for w in weights)


# ---------------------------------------------------------------------------------
# the child process
# ---------------------------------------------------------------------------------
# The address-space limit is set by the child's first statement rather than in a
# preexec_fn: preexec_fn may deadlock when the parent has threads (Keras's JAX does).
_CHILD_HEAD = """\
import resource as _resource
_soft, _hard = _resource.getrlimit(_resource.RLIMIT_AS)
_resource.setrlimit(_resource.RLIMIT_AS, ({limit} if _hard == _resource.RLIM_INFINITY
                                          else min({limit}, _hard), _hard))
"""

_CHILD_PRELUDE = '''
import json, os, sys, time, traceback
import numpy as np
import minicnn as mc
from minicnn.layers import Conv2D, Dense, Dropout, Flatten
from minicnn.models import Sequential, load_model

ARGS = json.loads(sys.argv[1])
SECRET = {secret!r}
_LIMIT = _resource.getrlimit(_resource.RLIMIT_AS)


def address_space():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def leave_spare(spare):
    """Limit the address space to what is mapped now plus ``spare`` bytes."""
    _resource.setrlimit(_resource.RLIMIT_AS, (address_space() + spare, _LIMIT[1]))


def restore_limit():
    _resource.setrlimit(_resource.RLIMIT_AS, _LIMIT)


def peak_rss():
    """This process's peak resident memory (VmHWM: unlike getrusage's ru_maxrss, which
    Linux carries over from the forked parent through exec, it starts anew in the
    child)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def attempt(name, call, inspect=None):
    """Run ``call()``; print one JSON line: the exception's class, its bases and its
    message (or no error), the seconds it took and the peak RSS so far. ``inspect``
    (given the call's value, None on an error) adds facts to the line."""
    print("START " + json.dumps(name), flush=True)
    start, value = time.perf_counter(), None
    try:
        value = call()
        result = {{"error": None, "bases": [], "message": "", "traceback": ""}}
    except BaseException as exc:  # MemoryError and RecursionError included
        result = {{"error": type(exc).__name__,
                   "bases": [c.__name__ for c in type(exc).__mro__],
                   "message": str(exc)[:20000], "traceback": traceback.format_exc()[-4000:]}}
    result.update(name=name, seconds=time.perf_counter() - start,
                  peak_rss=peak_rss())
    if inspect is not None:
        try:
            result.update(inspect(value))
        except BaseException as exc:
            result["inspect_error"] = repr(exc)[:2000]
    print("RESULT " + json.dumps(result), flush=True)
    return result

'''


def _child_source():
    helpers = "\n\n".join(inspect.getsource(f) for f in (
        tiny, tiny_data, trained, weights_equal, holds_secret))
    return _CHILD_PRELUDE.format(secret=SECRET) + helpers + "\n\n"


class Child:
    """A Python child running ``body`` (after the prelude above) with ``ARGS`` = the
    keyword arguments; ``finish()`` waits (at most ``timeout`` seconds from the start,
    then kills it) and parses what it reported."""

    def __init__(self, body, timeout=60, address_space=ADDRESS_SPACE, **args):
        script = (_CHILD_HEAD.format(limit=int(address_space)) + _child_source()
                  + textwrap.dedent(body))
        env = dict(os.environ, PYTHONFAULTHANDLER="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(REPO),
                                                            os.environ.get("PYTHONPATH")])))
        self.timeout, self.started_at = timeout, time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-c", script, json.dumps(args)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.finished = False

    def finish(self):
        if self.finished:
            return self
        left = max(self.timeout - (time.monotonic() - self.started_at), 0.1)
        try:
            out, err = self.proc.communicate(timeout=left)
            self.timed_out = False
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            self.timed_out = True
        self.stdout, self.stderr, self.finished = out, err, True
        self.started, self.results = [], {}
        for line in out.splitlines():
            if line.startswith("START "):
                self.started.append(json.loads(line[6:]))
            elif line.startswith("RESULT "):
                result = json.loads(line[7:])
                self.results[result["name"]] = result
        return self

    def close(self):
        """Kill the child if it is still running (a fixture's teardown)."""
        if not self.finished:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.communicate()

    def describe(self):
        rc = self.proc.returncode
        if self.timed_out:
            state = f"killed after its time limit of {self.timeout} s"
        elif rc is not None and rc < 0:
            state = f"killed by {signal.Signals(-rc).name}"
        else:
            state = f"exit status {rc}"
        lines = [f"child process: {state}"]
        unfinished = [n for n in self.started if n not in self.results]
        if unfinished:
            lines.append(f"attempt running when it ended: {unfinished}")
        for r in self.results.values():
            lines.append(f"  {r['name']}: {r['error'] or 'no error'} "
                         f"{r['message'][:300]!r} ({r['seconds']:.2f} s)")
        lines.append("stderr (last 3000 characters):\n" + self.stderr[-3000:])
        return "\n".join(lines)

    def assert_clean(self):
        """The child exited by itself, with status 0: no signal, no time-out."""
        assert not self.timed_out and self.proc.returncode == 0, self.describe()


def run_child(body, timeout=60, address_space=ADDRESS_SPACE, **args):
    return Child(body, timeout=timeout, address_space=address_space, **args).finish()


def refused(run, name, path=None, kinds=("ValueError",), contains=(), max_seconds=None):
    """Attempt ``name`` of ``run`` raised one of ``kinds`` (or a subclass) whose
    message holds ``str(path)`` and every text of ``contains``, within ``max_seconds``,
    and the child went on to exit cleanly. Returns the attempt's result."""
    result = run.results.get(name)
    assert result is not None, f"attempt {name!r} never reported\n{run.describe()}"
    assert result["error"] is not None, \
        f"attempt {name!r} raised nothing: the file was accepted\n{run.describe()}"
    assert set(kinds) & set(result["bases"]), (
        f"attempt {name!r} raised {result['error']}, expected one of {kinds}: "
        f"{result['message'][:2000]}\n{result['traceback']}")
    for text in ([str(path)] if path is not None else []) + list(contains):
        assert text in result["message"], (
            f"attempt {name!r}: {text!r} is not in the message of its "
            f"{result['error']}: {result['message'][:2000]}")
    if max_seconds is not None:
        assert result["seconds"] < max_seconds, \
            f"attempt {name!r} took {result['seconds']:.1f} s (at most {max_seconds} s)"
    run.assert_clean()
    return result


# ---------------------------------------------------------------------------------
# the files: originals, and ways to rewrite them
# ---------------------------------------------------------------------------------
def read_npz(path):
    """``(header, arrays)`` of a minicnn ``.npz``, read with NumPy alone."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return json.loads(bytes(arrays.pop(HEADER)).decode("utf-8")), arrays


def write_npz(path, header, arrays, raw_header=None):
    """An ``.npz`` as minicnn writes it: the JSON header as a uint8 member beside the
    arrays (``raw_header``: these bytes instead of ``header`` as JSON)."""
    text = raw_header if raw_header is not None else json.dumps(header).encode("utf-8")
    payload = {HEADER: np.frombuffer(text, np.uint8), **arrays}
    with open(path, "wb") as f:
        np.savez(f, **payload)


def keras_members(path):
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


def write_keras(path, members):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)


def edit_h5_bytes(data, edit, scratch):
    """The bytes of an HDF5 image after ``edit(h5py.File)`` (done on a scratch file)."""
    import h5py
    Path(scratch).write_bytes(data)
    with h5py.File(scratch, "r+") as f:
        edit(f)
    return Path(scratch).read_bytes()


def write_legacy_h5(model, path):
    """A legacy Keras ``.h5`` model file as Keras 3's ``model.save("x.h5")`` lays it
    out (keras/src/legacy/saving/legacy_h5_format.py): the architecture and training
    config as JSON attributes of the root, ``/model_weights/<layer>/<layer>/<weight>``
    listed by ``weight_names``, the optimizer's under ``/optimizer_weights/``."""
    import h5py
    config = keras_files.keras_config(model)
    compiled = config.pop("compile_config")
    training = {"loss": compiled["loss"], "metrics": compiled["metrics"],
                "weighted_metrics": None, "loss_weights": None,
                "optimizer_config": {"class_name": compiled["optimizer"]["class_name"],
                                     "config": compiled["optimizer"]["config"]}}
    state = model.optimizer.get_state()
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"3.15.1"
        f.attrs["backend"] = b"jax"
        f.attrs["model_config"] = json.dumps(config).encode("utf-8")
        f.attrs["training_config"] = json.dumps(training).encode("utf-8")
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        slots = []
        for layer in model.layers:
            g = group.create_group(layer.name)
            names = [f"{layer.name}/{w}" for w in ("kernel", "bias")][:len(layer.weights)]
            g.attrs["weight_names"] = np.array([n.encode() for n in names], dtype="S64")
            for name, value in zip(names, layer.get_weights()):
                g.create_dataset(name, data=value)
                slots.append(name.replace("/", "_"))
        values = [("adam/iteration", np.int64(state["iterations"])),
                  ("adam/learning_rate", np.float32(model.optimizer.learning_rate))]
        for i, slot in enumerate(slots):
            values += [(f"adam/{slot}_momentum", state["m"][i]),
                       (f"adam/{slot}_velocity", state["v"][i])]
        opt = f.create_group("optimizer_weights")
        opt.attrs["weight_names"] = np.array([n.encode() for n, _ in values], dtype="S64")
        for name, value in values:
            opt.create_dataset(name, data=value)


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """One trained tiny model in every format (and one with SGD + momentum as
    ``sgd.keras``); ``originals["model"]`` is the model itself."""
    mc.backend.set_backend(mc.backend.default_backend())
    mc.backend.set_floatx("float32")
    folder = tmp_path_factory.mktemp("originals")
    model = trained()
    files = {"model": model, "npz": str(folder / "m.npz")}
    model.save(files["npz"])
    try:
        import h5py  # noqa: F401
    except ImportError:
        return files
    files.update(keras=str(folder / "m.keras"), h5=str(folder / "m.h5"),
                 sgd=str(folder / "sgd.keras"))
    files["weights.h5"] = str(folder / "m.weights.h5")
    model.save(files["keras"])
    model.save_weights(files["weights.h5"])
    write_legacy_h5(model, files["h5"])
    trained(optimizer=mc.optimizers.SGD(0.01, momentum=0.9)).save(files["sgd"])
    return files


def original(originals, fmt):
    if fmt not in originals:
        pytest.skip("h5py is not installed")
    return originals[fmt]


@pytest.mark.parametrize("fmt", ["npz", "keras", "weights.h5", "h5", "sgd"])
def test_the_untampered_originals_load(originals, fmt):
    """The files every other test starts from are good ones."""
    path = original(originals, fmt)
    expected = originals["model"]
    if fmt == "weights.h5":
        model = tiny(seed=1)
        model.load_weights(path)
    else:
        model = load_model(path)
    if fmt != "sgd":
        assert weights_equal(model.get_weights(), expected.get_weights())
        assert model.optimizer.iterations == 1
        for got, want in zip(model.optimizer.get_state()["v"],
                             expected.optimizer.get_state()["v"]):
            np.testing.assert_array_equal(got, want)
    model.train_on_batch(*tiny_data())


# ---------------------------------------------------------------------------------
# 1. an optimizer slot of the wrong size
# ---------------------------------------------------------------------------------
def test_npz_with_an_adam_slot_of_the_wrong_size_is_refused(originals, tmp_path):
    path = tmp_path / "slot.npz"
    header, arrays = read_npz(originals["npz"])
    assert arrays["optimizer/m/0000"].shape == (3, 3, 1, 2)
    arrays["optimizer/m/0000"] = np.zeros(1, np.float32)
    write_npz(path, header, arrays)
    assert read_npz(path)[1]["optimizer/m/0000"].shape == (1,)
    run = run_child("""
        models = []
        loaded = attempt("load", lambda: models.append(load_model(ARGS["path"])))
        if loaded["error"] is None:  # what training on the accepted file would do
            attempt("fit", lambda: models[0].fit(*tiny_data(), epochs=1, verbose=0))
    """, path=str(path))
    refused(run, "load", path)


@pytest.mark.parametrize("kernels", ["numba_cpu", "reference"])
def test_adam_kernels_check_the_lengths_on_entry(kernels):
    """Called directly with one array shorter than the others, each kernel set's
    adam_update refuses (numba's would otherwise write past the short array)."""
    if kernels == "numba_cpu":
        pytest.importorskip("numba")
    run = run_child("""
        import importlib
        k = importlib.import_module("minicnn.kernels." + ARGS["kernels"])
        f32 = np.float32
        for short in "wgmv":
            a = {n: np.ones(1 if n == short else 4096, np.float32) for n in "wgmv"}
            attempt(short, lambda: k.adam_update(a["w"], a["g"], a["m"], a["v"], f32(0.1),
                                                 f32(0.001), f32(0.001), f32(1e-7)))
    """, kernels=kernels)
    for short in "wgmv":
        refused(run, short)


# ---------------------------------------------------------------------------------
# 2. HDF5: external storage, external links, virtual datasets, soft links
# ---------------------------------------------------------------------------------
ATTACKS = ["external_storage", "external_link", "virtual_dataset", "soft_link"]
# the dataset replaced in each format (the first layer's kernel, shape (3, 3, 1, 2)),
# and how each format is loaded
ATTACKED = {"weights.h5": "layers/conv2d/vars/0", "keras": "layers/conv2d/vars/0",
            "h5": "model_weights/conv2d/conv2d/kernel"}
CALLS = {"weights.h5": ["load_weights"], "keras": ["load_model", "load_weights"],
         "h5": ["load_model"]}


def plant_secrets(folder):
    """A raw file and an HDF5 file (dataset ``/secret``) holding SECRET in the shape
    of the attacked kernel."""
    import h5py
    value = np.full((3, 3, 1, 2), SECRET, np.float32)
    raw, h5 = folder / "secret.bin", folder / "secret.h5"
    raw.write_bytes(value.tobytes())
    with h5py.File(h5, "w") as f:
        f.create_dataset("secret", data=value)
    return str(raw), str(h5)


def attack(f, name, kind, raw, h5):
    """Replace dataset ``name`` of open file ``f`` by one whose values come from
    somewhere else: ``kind`` is one of ATTACKS."""
    import h5py
    shape, dtype = f[name].shape, f[name].dtype
    del f[name]
    if kind == "external_storage":
        f.create_dataset(name, shape=shape, dtype=dtype,
                         external=[(raw, 0, int(np.prod(shape)) * dtype.itemsize)])
    elif kind == "external_link":
        f[name] = h5py.ExternalLink(h5, "/secret")
    elif kind == "virtual_dataset":
        layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
        layout[...] = h5py.VirtualSource(h5, "secret", shape=shape)
        f.create_virtual_dataset(name, layout)
    else:  # a soft link to a dataset outside /layers
        f.create_dataset("stash/secret", data=np.full(shape, SECRET, dtype))
        f[name] = h5py.SoftLink("/stash/secret")


def assert_attack_is_real(f, name, kind):
    """The crafted file is what it claims: followed, the link or storage yields SECRET."""
    import h5py
    link = f.get(name, getlink=True)
    if kind == "external_link":
        assert isinstance(link, h5py.ExternalLink)
    elif kind == "soft_link":
        assert isinstance(link, h5py.SoftLink)
    else:
        assert isinstance(link, h5py.HardLink)
        if kind == "virtual_dataset":
            assert f[name].is_virtual
        else:
            assert f[name].external
    assert (np.asarray(f[name][()]) == SECRET).all()


@pytest.fixture(scope="module", params=["weights.h5", "keras", "h5"])
def hdf5_attacks(request, originals, tmp_path_factory):
    """One file per attack in format ``request.param``, and one child that loads them
    all (a load that takes the bait reports whether SECRET reached the model)."""
    import h5py
    fmt = request.param
    source = original(originals, fmt)
    folder = tmp_path_factory.mktemp(f"attacks_{fmt.replace('.', '_')}")
    raw, h5 = plant_secrets(folder)
    name, paths = ATTACKED[fmt], {}
    for kind in ATTACKS:
        path = folder / f"{kind}.{fmt}"
        if fmt == "keras":
            members = keras_members(source)
            members["model.weights.h5"] = edit_h5_bytes(
                members["model.weights.h5"], lambda f: attack(f, name, kind, raw, h5),
                folder / "scratch.h5")
            write_keras(path, members)
            # checked as a file of its own (a loader extracting the member would read
            # it so; opened from memory, HDF5 resolves an external link in the image
            # itself, with the image's driver)
            check = folder / "check.h5"
            check.write_bytes(keras_members(path)["model.weights.h5"])
            with h5py.File(check, "r") as f:
                assert_attack_is_real(f, name, kind)
        else:
            shutil.copy(source, path)
            with h5py.File(path, "r+") as f:
                attack(f, name, kind, raw, h5)
            with h5py.File(path, "r") as f:
                assert_attack_is_real(f, name, kind)
        paths[kind] = str(path)
    run = Child("""
        for kind, path in ARGS["paths"].items():
            for call in ARGS["calls"]:
                if call == "load_weights":
                    model = tiny(seed=1)
                    before = model.get_weights()
                    attempt(f"{kind}/{call}", lambda: model.load_weights(path),
                            lambda _: {"unchanged": weights_equal(before, model.get_weights()),
                                       "secret": holds_secret(model.get_weights())})
                else:
                    attempt(f"{kind}/{call}", lambda: load_model(path),
                            lambda m: {"unchanged": True,
                                       "secret": m is not None and holds_secret(m.get_weights())})
    """, paths=paths, calls=CALLS[fmt]).finish()
    return fmt, run, paths


# what each refusal says: the check that refused it, not an error further on
REASONS = {"external_storage": "external storage", "external_link": "external link",
           "virtual_dataset": "virtual dataset", "soft_link": "soft link"}


@pytest.mark.parametrize("kind", ATTACKS)
def test_hdf5_data_from_elsewhere_is_refused(hdf5_attacks, kind):
    fmt, run, paths = hdf5_attacks
    for call in CALLS[fmt]:
        result = run.results.get(f"{kind}/{call}")
        if result is not None:
            assert not result.get("secret"), \
                f"{call}: the planted file's values reached the model\n{run.describe()}"
            assert result.get("unchanged"), f"{call}: weights changed\n{run.describe()}"
        refused(run, f"{kind}/{call}", paths[kind], contains=[REASONS[kind]])


# ---------------------------------------------------------------------------------
# 3. a huge declared weight, its chunks never written
# ---------------------------------------------------------------------------------
def test_a_huge_declared_weight_is_refused_before_it_is_read(originals, tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "huge.weights.h5"
    shutil.copy(original(originals, "weights.h5"), path)
    with h5py.File(path, "r+") as f:
        del f["layers/conv2d/vars/0"]
        f.create_dataset("layers/conv2d/vars/0", shape=(20000, 20000), dtype="float32",
                         chunks=True)
    with h5py.File(path, "r") as f:
        dataset = f["layers/conv2d/vars/0"]
        assert dataset.shape == (20000, 20000) and dataset.chunks is not None
        assert dataset.id.get_storage_size() == 0  # 1.6 GB declared, nothing stored
    assert path.stat().st_size < MiB
    run = run_child("""
        model = tiny(seed=1)
        before = model.get_weights()
        leave_spare(ARGS["spare"])  # less than the 1.6 GB the dataset would read as
        attempt("load_weights", lambda: model.load_weights(ARGS["path"]),
                lambda _: {"unchanged": weights_equal(before, model.get_weights())})
    """, path=str(path), spare=int(1.25 * GiB))
    result = refused(run, "load_weights", path, contains=["(3, 3, 1, 2)"])
    assert result["peak_rss"] < GiB, f"peak RSS {result['peak_rss'] / MiB:.0f} MiB"
    assert result["unchanged"]


# ---------------------------------------------------------------------------------
# 4. a config that inflates to 1.5 GiB; one nested 100,000 deep
# ---------------------------------------------------------------------------------
def _gf2_times(matrix, vector):
    total, i = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[i]
        vector >>= 1
        i += 1
    return total


def crc32_combine(crc1, crc2, len2):
    """zlib's crc32_combine: the CRC-32 of A + B from those of A and B and len(B)."""
    if len2 == 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]  # the operator for one zero bit
    even = [_gf2_times(odd, odd[n]) for n in range(32)]   # two zero bits
    odd = [_gf2_times(even, even[n]) for n in range(32)]  # four zero bits
    while True:
        even = [_gf2_times(odd, odd[n]) for n in range(32)]
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = [_gf2_times(even, even[n]) for n in range(32)]
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def crc32_repeated(chunk, count):
    """CRC-32 of ``chunk * count`` by doubling, without making it."""
    result, length, piece, piece_len = 0, 0, zlib.crc32(chunk), len(chunk)
    while count:
        if count & 1:
            result, length = crc32_combine(result, piece, piece_len), length + piece_len
        piece, piece_len = crc32_combine(piece, piece, piece_len), 2 * piece_len
        count >>= 1
    return result


def write_zip_bomb(path, name, chunk, count, tail, others):
    """A valid zip whose member ``name`` inflates to ``chunk * count + tail``, written
    in a fraction of a second: one deflate block of ``chunk`` ends in a full flush (so
    it is the same bytes every time) and is repeated ``count`` times. ``others``:
    further members, stored. Sizes stay below 4 GiB, so no zip64 records are needed."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    assert block == deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    end = deflate.compress(tail) + deflate.flush(zlib.Z_FINISH)
    size = len(chunk) * count + len(tail)
    assert size < 2**32
    crc = crc32_combine(crc32_repeated(chunk, count), zlib.crc32(tail), len(tail))
    entries = [(name, 8, crc, len(block) * count + len(end), size, [block] * count + [end])]
    entries += [(n, 0, zlib.crc32(d), len(d), len(d), [d]) for n, d in others.items()]
    central = []
    with open(path, "wb") as f:
        for member, method, crc, csize, usize, parts in entries:
            offset, encoded = f.tell(), member.encode()
            f.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc,
                                csize, usize, len(encoded), 0) + encoded)
            for part in parts:
                f.write(part)
            central.append(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0,
                                       0x21, crc, csize, usize, len(encoded), 0, 0, 0, 0,
                                       0o644 << 16, offset) + encoded)
        start = f.tell()
        f.write(b"".join(central))
        f.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(central), len(central),
                            f.tell() - start, start, 0))


def test_the_zip_bomb_writer_is_honest(tmp_path):
    chunk = b"ab" * 1000
    assert crc32_repeated(chunk, 37) == zlib.crc32(chunk * 37)
    path = tmp_path / "small.zip"
    write_zip_bomb(path, "a.txt", chunk, 37, b"{}", {"b.txt": b"hello"})
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        assert z.read("a.txt") == chunk * 37 + b"{}" and z.read("b.txt") == b"hello"


def test_a_keras_config_inflating_to_gigabytes_is_refused_at_once(originals, tmp_path):
    path = tmp_path / "bomb.keras"
    members = keras_members(original(originals, "keras"))
    del members["config.json"]
    chunk, count = b" " * MiB, 1536  # 1.5 GiB of blanks, then "{}": valid JSON
    write_zip_bomb(path, "config.json", chunk, count, b"{}", members)
    assert path.stat().st_size < 4 * MiB
    with zipfile.ZipFile(path) as z:
        assert z.getinfo("config.json").file_size == count * MiB + 2
        with z.open("config.json") as member:
            assert member.read(3 * MiB) == b" " * (3 * MiB)
        assert z.read("model.weights.h5") == members["model.weights.h5"]
    run = run_child("""
        leave_spare(ARGS["spare"])
        attempt("load_model", lambda: load_model(ARGS["path"]))
    """, path=str(path), spare=GiB)
    refused(run, "load_model", path, max_seconds=5, contains=["declares"])


@pytest.mark.parametrize("depth", [200, 100_000])  # one JSON parses, one it cannot
def test_deeply_nested_json_is_refused(originals, tmp_path, depth):
    nested = b"[" * depth + b"]" * depth
    keras_path, npz_path = tmp_path / "nested.keras", tmp_path / "nested.npz"
    members = keras_members(original(originals, "keras"))
    members["config.json"] = nested
    write_keras(keras_path, members)
    header, arrays = read_npz(originals["npz"])
    write_npz(npz_path, None, arrays, raw_header=nested)
    with np.load(npz_path) as data:
        assert bytes(data[HEADER]) == nested
    run = run_child("""
        attempt("keras", lambda: load_model(ARGS["keras"]))
        attempt("npz", lambda: load_model(ARGS["npz"]))
    """, keras=str(keras_path), npz=str(npz_path))
    refused(run, "keras", keras_path, contains=["nests deeper"])
    refused(run, "npz", npz_path, contains=["nests deeper"])


# ---------------------------------------------------------------------------------
# 5. a FIFO, links to /dev/zero, a directory
# ---------------------------------------------------------------------------------
SPECIAL = {"fifo": "model.keras", "keras_to_dev_zero": "model.keras",
           "weights_to_dev_zero": "w.weights.h5", "directory": "m.npz"}


@pytest.fixture(scope="module")
def special_files(tmp_path_factory):
    """One child per special file, all started at once (one may hang until killed)."""
    if not os.path.exists("/dev/zero") or not hasattr(os, "mkfifo"):
        pytest.skip("needs /dev/zero and FIFOs")
    runs, paths = {}, {}
    for kind, name in SPECIAL.items():
        path = tmp_path_factory.mktemp(kind) / name
        if kind == "fifo":
            os.mkfifo(path)
            assert stat.S_ISFIFO(os.lstat(path).st_mode)
        elif kind == "directory":
            path.mkdir()
        else:
            os.symlink("/dev/zero", path)
            assert stat.S_ISCHR(os.stat(path).st_mode)
        paths[kind] = path
        runs[kind] = Child("""
            if ARGS["path"].endswith(".weights.h5"):
                model = tiny(seed=1)
                attempt("load", lambda: model.load_weights(ARGS["path"]))
            else:
                attempt("load", lambda: load_model(ARGS["path"]))
        """, timeout=30, path=str(path))
    yield runs, paths
    for run in runs.values():
        run.close()


@pytest.mark.parametrize("kind", list(SPECIAL))
def test_special_files_are_refused_at_once(special_files, kind):
    runs, paths = special_files
    refused(runs[kind].finish(), "load", paths[kind], kinds=("ValueError", "OSError"),
            max_seconds=5)


# ---------------------------------------------------------------------------------
# 6. byte-flip fuzz
# ---------------------------------------------------------------------------------
FUZZ_FORMATS = ["npz", "keras", "weights.h5", "h5"]
FUZZ_COPIES = 40


def corrupt_copies(source, folder, fmt, count, seed):
    """``count`` copies of ``source``, each with 1 to 3 bytes overwritten (half of
    them in the first 2 KiB or the last 1 KiB, where zip directories and HDF5
    superblocks and object headers are); returns ``[{"path", "flips"}]``."""
    data = Path(source).read_bytes()
    rng = np.random.default_rng(seed)
    items = []
    for i in range(count):
        copy, flips = bytearray(data), []
        for _ in range(int(rng.integers(1, 4))):
            if rng.random() < 0.5:
                offset = int(rng.integers(0, len(data)))
            elif rng.random() < 0.6:
                offset = int(rng.integers(0, min(2048, len(data))))
            else:
                offset = len(data) - 1 - int(rng.integers(0, min(1024, len(data))))
            value = int(rng.integers(0, 256)) if rng.random() < 0.5 else \
                copy[offset] ^ (1 << int(rng.integers(0, 8)))
            if value == data[offset]:
                value ^= 0xFF
            copy[offset] = value
            flips.append((offset, value))
        path = folder / f"fuzz_{i:03d}.{fmt}"
        path.write_bytes(bytes(copy))
        items.append({"path": str(path), "flips": flips})
    return items


def same_bytes_every_run(source, folder):
    """A copy of the .keras archive ``source`` without its dates (the zip entries'
    times and metadata.json's date_saved), so that the same flips hit the same bytes
    in every run."""
    members = keras_members(source)
    metadata = json.loads(members["metadata.json"])
    members["metadata.json"] = json.dumps(dict(metadata, date_saved="2024-06-11@00:00:00"))
    path = folder / "dateless.keras"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(2024, 6, 11, 0, 0, 0)), data,
                       compress_type=zipfile.ZIP_DEFLATED)
    return path


@pytest.fixture(scope="module")
def fuzz_runs(originals, tmp_path_factory):
    """Per format, FUZZ_COPIES corrupted copies and one child loading them all; the
    four children run side by side. The seed is fixed (MINICNN_FUZZ_SEED changes it)."""
    seed = int(os.environ.get("MINICNN_FUZZ_SEED", "20240611"))
    runs = {}
    for n, fmt in enumerate(FUZZ_FORMATS):
        if fmt not in originals:
            continue
        folder = tmp_path_factory.mktemp(f"fuzz_{fmt.replace('.', '_')}")
        source = originals[fmt] if fmt != "keras" else \
            same_bytes_every_run(originals[fmt], folder)
        items = corrupt_copies(source, folder, fmt, FUZZ_COPIES, seed + n)
        runs[fmt] = items, Child("""
            for item in ARGS["items"]:
                path = item["path"]
                if path.endswith(".weights.h5"):
                    model = tiny(seed=1)
                    attempt(path, lambda: model.load_weights(path))
                else:
                    attempt(path, lambda: load_model(path))
        """, timeout=240, items=items)
    yield runs
    for _, run in runs.values():
        run.close()


@pytest.mark.parametrize("fmt", FUZZ_FORMATS)
def test_flipped_bytes_load_or_are_refused_naming_the_file(fuzz_runs, fmt):
    if fmt not in fuzz_runs:
        pytest.skip("h5py is not installed")
    items, child = fuzz_runs[fmt]
    run = child.finish()
    run.assert_clean()
    wrong = []
    for item in items:
        result = run.results.get(item["path"])
        if result is None:
            wrong.append(f"{item['path']} {item['flips']}: never reported")
        elif result["error"] is not None and (
                "ValueError" not in result["bases"] or item["path"] not in result["message"]):
            wrong.append(f"{Path(item['path']).name} flips {item['flips']}: "
                         f"{result['error']}: {result['message'][:300]}")
    assert not wrong, f"{len(wrong)} of {len(items)} corrupted files:\n" + "\n".join(wrong)


# Beside the seeded batches above, hypothesis flips bytes of the formats whose readers
# are Python and NumPy alone (a minicnn archive; a .keras config), in this process:
# nothing there can crash the interpreter, so each example is one load, and a failure
# shrinks to the fewest flips. (HDF5 is parsed by libhdf5 in C: its fuzz runs in the
# children above, where a crash would fail a test, not end the run.)
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_FLIPS = st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)),
                  min_size=1, max_size=3)


def _flipped(data, flips):
    data = bytearray(data)
    for where, xor in flips:
        data[int(where * len(data))] ^= xor
    return bytes(data)


def _loads_or_names_the_file(path, load):
    try:
        load()
    except ValueError as exc:
        assert str(path) in str(exc), f"{type(exc).__name__}: {exc}"


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=_FLIPS)
def test_hypothesis_flips_in_a_minicnn_archive(originals, tmp_path, flips):
    path = tmp_path / "flipped.npz"
    path.write_bytes(_flipped(Path(originals["npz"]).read_bytes(), flips))
    _loads_or_names_the_file(path, lambda: load_model(str(path)))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=_FLIPS)
def test_hypothesis_flips_in_a_keras_config(originals, tmp_path, flips):
    members = keras_members(original(originals, "keras"))
    members["config.json"] = _flipped(members["config.json"], flips)
    path = tmp_path / "flipped.keras"
    write_keras(path, members)
    _loads_or_names_the_file(path, lambda: load_model(str(path)))


# ---------------------------------------------------------------------------------
# 7. class names that are attributes, not classes
# ---------------------------------------------------------------------------------
CLASS_NAMES = {"optimizer_get": (("compile", "optimizer"), "get"),
               "optimizer_dunder_class": (("compile", "optimizer"), "__class__"),
               "loss_get": (("compile", "loss"), "get"),
               "layer_dunder_init": (("model", "layers", 0), "__init__")}


@pytest.fixture(scope="module")
def class_name_run(originals, tmp_path_factory):
    folder = tmp_path_factory.mktemp("class_names")
    paths = {}
    for case, (where, name) in CLASS_NAMES.items():
        header, arrays = read_npz(originals["npz"])
        entry = header
        for key in where:
            entry = entry[key]
        assert entry["class_name"] in ("Adam", "SparseCategoricalCrossentropy", "Conv2D")
        entry["class_name"] = name
        path = folder / f"{case}.npz"
        write_npz(path, header, arrays)
        paths[case] = str(path)
    run = Child("""
        for case, path in ARGS["paths"].items():
            attempt(case, lambda: load_model(path))
    """, paths=paths).finish()
    return run, paths


@pytest.mark.parametrize("case", list(CLASS_NAMES))
def test_class_names_are_looked_up_in_tables_only(class_name_run, case):
    run, paths = class_name_run
    refused(run, case, paths[case], contains=[repr(CLASS_NAMES[case][1]),
                                              "is not one minicnn has"])


# ---------------------------------------------------------------------------------
# 8. strings where booleans belong
# ---------------------------------------------------------------------------------
def _loss_from_logits(config):
    config["compile_config"]["loss"] = {
        "module": "keras.losses", "class_name": "SparseCategoricalCrossentropy",
        "config": {"name": "sparse_categorical_crossentropy",
                   "reduction": "sum_over_batch_size", "from_logits": "false"},
        "registered_name": None}


def _dense_use_bias(config):
    dense = [e for e in config["config"]["layers"] if e["class_name"] == "Dense"]
    assert len(dense) == 1 and dense[0]["config"]["use_bias"] is True
    dense[0]["config"]["use_bias"] = "false"


def _sgd_nesterov(config):
    optimizer = config["compile_config"]["optimizer"]
    assert optimizer["class_name"] == "SGD" and optimizer["config"]["nesterov"] is False
    optimizer["config"]["nesterov"] = "true"


TYPED = {"from_logits": ("keras", _loss_from_logits), "use_bias": ("keras", _dense_use_bias),
         "nesterov": ("sgd", _sgd_nesterov)}


@pytest.fixture(scope="module")
def typed_config_run(originals, tmp_path_factory):
    folder = tmp_path_factory.mktemp("typed")
    paths = {}
    for key, (source, edit) in TYPED.items():
        members = keras_members(original(originals, source))
        config = json.loads(members["config.json"])
        edit(config)
        members["config.json"] = json.dumps(config).encode()
        path = folder / f"{key}.keras"
        write_keras(path, members)
        assert f'"{key}": "' in keras_members(path)["config.json"].decode()
        paths[key] = str(path)
    run = Child("""
        for key, path in ARGS["paths"].items():
            attempt(key, lambda: load_model(path))
    """, paths=paths).finish()
    return run, paths


@pytest.mark.parametrize("key", list(TYPED))
def test_a_string_where_a_boolean_belongs_is_refused(typed_config_run, key):
    run, paths = typed_config_run
    refused(run, key, paths[key], contains=[key])


# ---------------------------------------------------------------------------------
# 9. the mode of a saved file; saving through a symbolic link
# ---------------------------------------------------------------------------------
SAVES = {"npz": ("m.npz", "save"), "keras": ("m.keras", "save"),
         "weights.h5": ("w.weights.h5", "save_weights")}


@contextlib.contextmanager
def umask(mask):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def save_as(model, fmt, path):
    if fmt != "npz":
        pytest.importorskip("h5py")
    getattr(model, SAVES[fmt][1])(str(path))


def weights_of(fmt, path):
    if fmt == "weights.h5":
        model = tiny(seed=5)
        model.load_weights(str(path))
        return model.get_weights()
    return load_model(str(path)).get_weights()


@pytest.mark.parametrize("fmt", list(SAVES))
@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_a_new_file_gets_the_mode_of_the_umask(tmp_path, fmt, mask, mode):
    path = tmp_path / SAVES[fmt][0]
    with umask(mask):
        save_as(trained(), fmt, path)
    got = stat.S_IMODE(path.stat().st_mode)
    assert got == mode, f"umask {mask:#o}: the new file has mode {got:#o}, not {mode:#o}"
    assert os.listdir(tmp_path) == [path.name]


@pytest.mark.parametrize("fmt", list(SAVES))
def test_an_overwritten_file_keeps_its_mode(tmp_path, fmt):
    path = tmp_path / SAVES[fmt][0]
    with umask(0o022):
        save_as(tiny(seed=1), fmt, path)
        os.chmod(path, 0o640)
        model = trained()
        save_as(model, fmt, path)
    got = stat.S_IMODE(path.stat().st_mode)
    assert got == 0o640, f"the overwritten file has mode {got:#o}, not 0o640"
    assert weights_equal(weights_of(fmt, path), model.get_weights())


@pytest.mark.parametrize("fmt", list(SAVES))
def test_saving_to_a_symlink_writes_through_it(tmp_path, fmt):
    real = tmp_path / "data" / SAVES[fmt][0]
    real.parent.mkdir()
    save_as(tiny(seed=1), fmt, real)
    link = tmp_path / ("link." + SAVES[fmt][0].split(".", 1)[1])
    os.symlink(os.path.relpath(real, tmp_path), link)
    model = trained()
    save_as(model, fmt, link)
    assert link.is_symlink(), "the link was replaced by a regular file"
    assert os.readlink(link) == os.path.relpath(real, tmp_path)
    assert weights_equal(weights_of(fmt, real), model.get_weights()), \
        "the link's target does not hold the new weights"
    assert sorted(os.listdir(tmp_path)) == sorted(["data", link.name])
    assert os.listdir(real.parent) == [real.name]


# ---------------------------------------------------------------------------------
# 10. writers killed mid-save
# ---------------------------------------------------------------------------------
STALLED_SAVE = r"""
import os, sys, time
import minicnn as mc
from minicnn.layers import Dense
path = sys.argv[1]
model = mc.Sequential([Dense(3, input_shape=(4,))])
model.compile("adam", "mse")
real_fsync = os.fsync
def stalled_fsync(fd):  # the temporary file is written: stall before the rename
    print("writing", flush=True)
    time.sleep(120)
os.fsync = stalled_fsync
model.save(path)
"""


def temporaries(folder):
    return sorted(p.name for p in Path(folder).glob(".minicnn-*.tmp"))


def wait_for_line(proc, expected, timeout):
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if selector.select(timeout=deadline - time.monotonic()):
                line = proc.stdout.readline()
                if line.strip() == expected or not line:
                    return line.strip()
        return None
    finally:
        selector.close()


def test_a_save_removes_what_dead_writers_left_and_keeps_live_ones(tmp_path):
    """Writers A and B stall with their temporary files written; A is killed (-9), B
    stays alive. A third process saving to the same target removes A's leftover and
    leaves B's: a temporary file is removed only when its writer is dead."""
    script = tmp_path / "stalled_save.py"
    script.write_text(STALLED_SAVE)
    folder = tmp_path / "models"
    folder.mkdir()
    target = folder / "model.npz"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    writers, held = [], []
    try:
        for _ in range(2):  # A, then B: each stalls with its temporary file written
            proc = subprocess.Popen([sys.executable, str(script), str(target)],
                                    stdout=subprocess.PIPE, text=True, env=env)
            writers.append(proc)
            assert wait_for_line(proc, "writing", 60) == "writing"
            new = sorted(set(temporaries(folder)) - set(held))
            assert len(new) == 1, (temporaries(folder), held)
            held += new
        (dead, live), (left_by_dead, held_by_live) = writers, held
        os.kill(dead.pid, signal.SIGKILL)
        dead.wait(30)
        assert temporaries(folder) == sorted(held)  # killed: nothing cleaned it up

        saved = subprocess.run([sys.executable, "-c", textwrap.dedent("""
            import sys, minicnn as mc
            from minicnn.layers import Dense
            model = mc.Sequential([Dense(3, input_shape=(4,))])
            model.compile("adam", "mse")
            model.save(sys.argv[1])
        """), str(target)], env=env, capture_output=True, text=True, timeout=60)
        assert saved.returncode == 0, saved.stderr
        assert live.poll() is None  # still alive, still writing
        assert temporaries(folder) == [held_by_live], (
            f"expected only the live writer's {held_by_live}; the dead writer left "
            f"{left_by_dead}")
        assert load_model(str(target)).input_shape == (None, 4)
    finally:
        for proc in writers:
            if proc.poll() is None:
                proc.kill()
            proc.wait(30)


# ---------------------------------------------------------------------------------
# 11. fit, evaluate and predict refuse wrong arguments before any step
# ---------------------------------------------------------------------------------
def _bad_calls():
    x, y = tiny_data(16)
    return {
        "fit_batch_size_negative": ("batch_size", lambda m: m.fit(x, y, batch_size=-1,
                                                                   verbose=0)),
        "fit_batch_size_zero": ("batch_size", lambda m: m.fit(x, y, batch_size=0, verbose=0)),
        "fit_batch_size_float": ("batch_size", lambda m: m.fit(x, y, batch_size=2.5,
                                                                verbose=0)),
        "fit_epochs_negative": ("epochs", lambda m: m.fit(x, y, epochs=-1, verbose=0)),
        "fit_validation_split_string": ("validation_split", lambda m: m.fit(
            x, y, validation_split="0.2", verbose=0)),
        "fit_validation_split_above_one": ("validation_split", lambda m: m.fit(
            x, y, validation_split=1.5, verbose=0)),
        "fit_validation_data_one_element": ("validation_data", lambda m: m.fit(
            x, y, validation_data=(x,), verbose=0)),
        "evaluate_batch_size_negative": ("batch_size", lambda m: m.evaluate(
            x, y, batch_size=-1)),
        "predict_batch_size_zero": ("batch_size", lambda m: m.predict(x, batch_size=0)),
    }


@pytest.mark.parametrize("case", list(_bad_calls()))
def test_wrong_arguments_are_refused_naming_them(case):
    argument, call = _bad_calls()[case]
    model = trained()
    before, iterations = model.get_weights(), model.optimizer.iterations
    with pytest.raises((ValueError, TypeError)) as info:
        call(model)
    assert argument in str(info.value)
    assert weights_equal(model.get_weights(), before)
    assert model.optimizer.iterations == iterations


# ---------------------------------------------------------------------------------
# 12. labels out of range are refused before the first step
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [3, -1])
def test_a_bad_label_in_the_last_batch_is_refused_before_any_step(bad):
    x, y = tiny_data(64)
    y[63] = bad  # the last sample: without shuffling, the last of 8 batches
    model = trained()
    before, iterations = model.get_weights(), model.optimizer.iterations
    with pytest.raises(ValueError) as info:
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert "[0, 3)" in str(info.value)
    assert model.optimizer.iterations == iterations
    assert weights_equal(model.get_weights(), before)


def test_bad_validation_labels_are_refused_before_any_step():
    x, y = tiny_data(16)
    x_val, y_val = tiny_data(8, seed=1)
    y_val[5] = 7
    model = trained()
    before, iterations = model.get_weights(), model.optimizer.iterations
    with pytest.raises(ValueError) as info:
        model.fit(x, y, batch_size=4, epochs=2, verbose=0, validation_data=(x_val, y_val))
    assert "[0, 3)" in str(info.value)
    assert model.optimizer.iterations == iterations
    assert weights_equal(model.get_weights(), before)


# ---------------------------------------------------------------------------------
# 13. out of memory in a training step
# ---------------------------------------------------------------------------------
def test_a_step_that_does_not_fit_in_memory_raises_memory_error_naming_the_batch():
    pytest.importorskip("numba")
    run = run_child("""
        mc.backend.set_backend("numba")
        mc.utils.set_random_seed(0)
        model = Sequential([Conv2D(64, 3, activation="relu", input_shape=(28, 28, 1)),
                            Flatten(), Dense(10, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy")
        small = np.zeros((64, 28, 28, 1), np.float32), np.zeros(64, int)
        model.train_on_batch(*small)  # the kernels and the second thread, ready
        x, y = np.zeros((4096, 28, 28, 1), np.float32), np.zeros(4096, int)
        before = model.get_weights()
        leave_spare(ARGS["spare"])  # one conv output of 4096 images is 709 MB
        attempt("fit", lambda: model.fit(x, y, batch_size=4096, epochs=1, verbose=0),
                lambda _: {"unchanged": weights_equal(before, model.get_weights())})
        restore_limit()
        attempt("afterwards", lambda: model.train_on_batch(*small))
    """, spare=256 * MiB, timeout=120)
    result = refused(run, "fit", kinds=("MemoryError",), contains=["4096"])
    assert "batch" in result["message"].lower(), result["message"]
    assert result["unchanged"]
    assert run.results["afterwards"]["error"] is None, run.describe()


def test_a_layer_that_runs_out_of_memory_names_itself_and_the_batch():
    """Where the estimate before the step lets a step through and an allocation still
    fails, the layer that met it re-raises NumPy's MemoryError naming itself."""
    run = run_child("""
        from minicnn import step_memory
        step_memory.check = lambda *args, **kwargs: None  # as if the estimate were low
        mc.utils.set_random_seed(0)
        model = Sequential([Conv2D(64, 3, input_shape=(28, 28, 1), name="big_conv"),
                            Flatten(), Dense(10, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy")
        model.train_on_batch(np.zeros((8, 28, 28, 1), np.float32), np.zeros(8, int))
        x = np.zeros((4096, 28, 28, 1), np.float32)
        leave_spare(ARGS["spare"])
        attempt("predict", lambda: model.predict(x, batch_size=4096))
        restore_limit()
        attempt("afterwards", lambda: model.predict(x[:8]))
    """, spare=256 * MiB, timeout=120)
    refused(run, "predict", kinds=("MemoryError",),
            contains=["Conv2D 'big_conv'", "batch of 4096", "ran out of memory"])
    assert run.results["afterwards"]["error"] is None, run.describe()


def test_an_architecture_too_large_for_memory_is_refused_before_it_is_built(originals,
                                                                            tmp_path):
    """A config declaring Dense(units=10**9) (36e9 weights) is sized, not allocated."""
    header, arrays = read_npz(originals["npz"])
    dense = [e for e in header["model"]["layers"] if e["class_name"] == "Dense"]
    assert len(dense) == 1
    dense[0]["config"]["units"] = 10**9
    path = tmp_path / "huge.npz"
    write_npz(path, header, arrays)
    run = run_child("""
        attempt("load_model", lambda: load_model(ARGS["path"]))
    """, path=str(path))
    refused(run, "load_model", path, contains=["parameters", "GiB"], max_seconds=10)


# ---------------------------------------------------------------------------------
# 14. invalid optimizer state
# ---------------------------------------------------------------------------------
def _npz_state_defect(header, arrays, defect):
    if defect == "byte_strings":
        arrays["optimizer/m/0000"] = np.full((3, 3, 1, 2), b"x", dtype="S1")
    elif defect == "negative_iterations":
        header["compile"]["iterations"] = -5
    elif defect == "missing_slot":
        del arrays["optimizer/v/0003"]
    else:
        arrays["optimizer/m/0000"][0, 0, 0, 0] = np.nan


def _h5_state_defect(f, defect):
    vars_ = f["optimizer/vars"]
    assert len(vars_) == 10  # iterations, learning rate, (m, v) for 4 weights
    if defect == "byte_strings":
        del vars_["2"]
        vars_.create_dataset("2", data=np.full((3, 3, 1, 2), b"x", dtype="S1"))
    elif defect == "negative_iterations":
        del vars_["0"]
        vars_.create_dataset("0", data=np.int64(-5))
    elif defect == "missing_slot":
        del vars_["9"]
    else:
        vars_["2"][0, 0, 0, 0] = np.nan


STATE_DEFECTS = ["byte_strings", "negative_iterations", "missing_slot", "nan"]


@pytest.fixture(scope="module", params=["npz", "weights.h5"])
def state_run(request, originals, tmp_path_factory):
    fmt = request.param
    source = original(originals, fmt)
    folder = tmp_path_factory.mktemp(f"state_{fmt.replace('.', '_')}")
    paths = {}
    for defect in STATE_DEFECTS:
        path = folder / f"{defect}.{fmt}"
        if fmt == "npz":
            header, arrays = read_npz(source)
            _npz_state_defect(header, arrays, defect)
            write_npz(path, header, arrays)
        else:
            import h5py
            shutil.copy(source, path)
            with h5py.File(path, "r+") as f:
                _h5_state_defect(f, defect)
        paths[defect] = str(path)
    run = Child("""
        for defect, path in ARGS["paths"].items():
            models = []
            if path.endswith(".weights.h5"):
                models.append(tiny(seed=1))
                loaded = attempt(defect, lambda: models[0].load_weights(path))
            else:
                loaded = attempt(defect, lambda: models.append(load_model(path)))
            if loaded["error"] is None:  # what the accepted state does to training
                attempt(defect + "/then_fit",
                        lambda: models[-1].fit(*tiny_data(), epochs=1, verbose=0))
    """, paths=paths).finish()
    return run, paths


STATE_REASONS = {"byte_strings": "dtype", "negative_iterations": "step count",
                 "missing_slot": "optimizer", "nan": "NaN"}


@pytest.mark.parametrize("defect", STATE_DEFECTS)
def test_invalid_optimizer_state_is_refused_when_loaded(state_run, defect):
    run, paths = state_run
    refused(run, defect, paths[defect], contains=[STATE_REASONS[defect]])


# ---------------------------------------------------------------------------------
# 15. exact resume from a .keras file, which Keras still opens
# ---------------------------------------------------------------------------------
def dropout_model():
    mc.utils.set_random_seed(0)
    model = Sequential([Conv2D(2, 3, activation="relu", input_shape=(6, 6, 1), name="conv2d"),
                        Flatten(name="flatten"), Dropout(0.5, seed=7, name="dropout"),
                        Dense(3, activation="softmax", name="dense")], name="resume")
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize("seed", [None, 123])
def test_resuming_from_a_keras_file_is_exact(tmp_path, seed):
    pytest.importorskip("h5py")
    x, y = tiny_data(24)
    fit = dict(batch_size=4, epochs=1, shuffle=True, seed=seed, verbose=0)
    model = dropout_model()
    model.fit(x, y, **fit)
    path = tmp_path / "ckpt.keras"
    model.save(str(path))
    mc.utils.set_random_seed(999)  # whatever the process's generator does meanwhile
    resumed = load_model(str(path))
    resumed.fit(x, y, **fit)
    model.fit(x, y, **fit)
    assert weights_equal(resumed.get_weights(), model.get_weights())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras 3.15 on NumPy 2
def test_keras_opens_a_minicnn_keras_file_with_dropout(tmp_path):
    pytest.importorskip("h5py")
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    x, y = tiny_data(24)
    model = dropout_model()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    path = tmp_path / "ckpt.keras"
    model.save(str(path))
    km = keras.saving.load_model(str(path))
    assert [type(layer).__name__ for layer in km.layers] == ["Conv2D", "Flatten", "Dropout",
                                                            "Dense"]
    assert km.layers[2].rate == 0.5 and km.layers[2].seed == 7
    assert weights_equal([np.asarray(w) for w in km.get_weights()], model.get_weights())
    np.testing.assert_allclose(km.predict(x, verbose=0), model.predict(x), atol=2e-7)
