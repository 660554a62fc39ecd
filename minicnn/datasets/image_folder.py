"""Image folders for classification: one sub-folder per class (the AlexNet example's
17 flowers), or an ``.npz`` of ``X`` and ``Y`` read without unpickling.

``load_image_folder`` reads a whole folder into one array; ``image_folder`` lists the
files and decodes each batch when training asks for it (a ``PyDataset``), for
folders larger than memory."""
import os

import numpy as np

from ..utils import PyDataset


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _pillow(what):
    """Pillow's Image module, or an ImportError that says how to install it."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(f"{what} needs Pillow for image files: pip install "
                          f"minicnn[images] (or pillow)") from None
    return Image


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
    Image = _pillow("load_image_folder")
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


# Keras's image_dataset_from_directory's formats and interpolations, by Pillow's names
_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_MODES = {"rgb": ("RGB", 3), "rgba": ("RGBA", 4), "grayscale": ("L", 1)}
_RESAMPLE = {"bilinear": "BILINEAR", "nearest": "NEAREST", "bicubic": "BICUBIC",
             "area": "BOX", "lanczos3": "LANCZOS", "lanczos5": "LANCZOS",
             "lanczos": "LANCZOS", "hamming": "HAMMING"}


def _index_folder(path, class_names, follow_links):
    """``(files, labels, class_names)``: the images of every class sub-folder (sorted
    class names, each folder's files sorted, sub-folders included), as Keras lists them."""
    found = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
    if class_names is not None:
        if sorted(class_names) != found and list(class_names) != found:
            raise ValueError(f"image_folder: class_names {list(class_names)} do not match the "
                             f"sub-folders of {path!r}: {found}")
        found = list(class_names)
    if not found:
        raise ValueError(f"image_folder: {path!r} has no class sub-folders")
    files, labels = [], []
    for label, name in enumerate(found):
        for root, dirs, names in sorted(os.walk(os.path.join(path, name),
                                                followlinks=follow_links)):
            dirs.sort()
            for file in sorted(names):
                if file.lower().endswith(_FORMATS):
                    files.append(os.path.join(root, file))
                    labels.append(label)
    return files, np.array(labels, dtype=np.int64), found


def image_folder(path, labels="inferred", label_mode="int", class_names=None,
                 color_mode="rgb", batch_size=32, image_size=(224, 224), shuffle=True,
                 seed=None, validation_split=None, subset=None, interpolation="bilinear",
                 follow_links=False, workers=2, max_queue_size=10):
    """A folder of images with one sub-folder per class, read batch by batch: the
    arguments of Keras's ``keras.utils.image_dataset_from_directory`` where they apply.

    Returns an ``ImageFolder`` (a ``minicnn.utils.PyDataset``) that ``fit``,
    ``evaluate`` and ``predict`` take as ``x``; only the file names are listed up
    front, and each batch is decoded (Pillow: PNG, JPEG, BMP, GIF) when it is asked
    for, by ``workers`` threads ahead of the training step, so the folder never has
    to fit in memory. Batches are ``(images, labels)``: images float32 ``(N, H, W,
    C)`` with values 0..255, as Keras gives them (divide by 255, or put
    ``layers.Rescaling(1 / 255)`` first in the model), labels by ``label_mode``:
    ``"int"`` (class indices), ``"categorical"`` (one-hot float32), ``"binary"``
    (float32 ``(N, 1)``, two classes), or None (images alone, for ``predict``).
    Labels are the class indices in sorted sub-folder order (``class_names`` fixes
    another order); ``dataset.class_names`` and ``dataset.file_paths`` say which.

    ``shuffle``: the files are shuffled once (from ``seed``) before the split, and the
    training order again at every epoch's end, as Keras's data set reshuffles each
    iteration. ``validation_split`` with ``subset="training"``, ``"validation"`` or
    ``"both"`` (a pair) keeps the last ``int(validation_split * N)`` shuffled files for
    validation, as Keras does (a seed is then required when shuffling, so that both
    subsets come from the same shuffle).
    """
    path = os.fspath(path)
    if labels not in ("inferred", None):
        raise ValueError("image_folder: labels must be 'inferred' (from the class "
                         f"sub-folders) or None. Received: labels={labels!r}")
    if labels is None:
        label_mode = None  # images alone
    elif label_mode not in ("int", "categorical", "binary", None):
        raise ValueError("image_folder: label_mode must be 'int', 'categorical', "
                         f"'binary' or None. Received: label_mode={label_mode!r}")
    if color_mode not in _MODES:
        raise ValueError(f"image_folder: color_mode must be one of {sorted(_MODES)}. "
                         f"Received: color_mode={color_mode!r}")
    if interpolation not in _RESAMPLE:
        raise ValueError(f"image_folder: interpolation must be one of {sorted(_RESAMPLE)}. "
                         f"Received: interpolation={interpolation!r}")
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    if validation_split is not None and not 0 < validation_split < 1:
        raise ValueError(f"image_folder: validation_split must be in (0, 1). Received: "
                         f"{validation_split!r}")
    if (validation_split is None) != (subset is None) or subset not in (
            None, "training", "validation", "both"):
        raise ValueError("image_folder: validation_split and subset ('training', "
                         "'validation' or 'both') go together. Received: validation_split="
                         f"{validation_split!r}, subset={subset!r}")
    if subset is not None and shuffle and seed is None:
        raise ValueError("image_folder: If using `validation_split` and shuffling the data, "
                         "you must provide a `seed` argument, to make sure that there is no "
                         "overlap between the training and validation subset.")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"image_folder: no folder at {path!r}")
    _pillow("image_folder")  # the batches are decoded by Pillow
    files, targets, names = _index_folder(path, class_names, follow_links)
    if label_mode == "binary" and len(names) != 2:
        raise ValueError(f"image_folder: label_mode='binary' needs 2 classes; {path!r} has "
                         f"{len(names)}: {names}")
    if not files:
        raise ValueError(f"image_folder: {path!r} holds no images ({', '.join(_FORMATS)}) "
                         f"in its class sub-folders")
    rng = np.random.default_rng(seed)
    if shuffle:
        order = rng.permutation(len(files))
        files, targets = [files[i] for i in order], targets[order]
    settings = dict(class_names=names, label_mode=label_mode, color_mode=color_mode,
                    image_size=(height, width), batch_size=batch_size, shuffle=shuffle,
                    rng=rng, interpolation=interpolation, workers=workers,
                    max_queue_size=max_queue_size)
    if subset is None:
        return ImageFolder(files, targets, **settings)
    cut = len(files) - int(validation_split * len(files))
    if cut in (0, len(files)):
        raise ValueError(f"image_folder: {len(files)} images cannot be split with "
                         f"validation_split={validation_split}")
    training = ImageFolder(files[:cut], targets[:cut], **settings)
    validation = ImageFolder(files[cut:], targets[cut:], **dict(settings, shuffle=False))
    return {"training": training, "validation": validation,
            "both": (training, validation)}[subset]


class ImageFolder(PyDataset):
    """The batches of ``image_folder``: files decoded when a batch is asked for."""

    def __init__(self, files, targets, class_names, label_mode, color_mode, image_size,
                 batch_size, shuffle, rng, interpolation, workers, max_queue_size):
        super().__init__(workers=workers, max_queue_size=max_queue_size)
        self.file_paths, self.labels = list(files), targets
        self.class_names, self.label_mode = list(class_names), label_mode
        self.image_size, self.batch_size = tuple(image_size), batch_size
        self.color_mode, self.interpolation = color_mode, interpolation
        self._shuffle, self._rng = shuffle, rng
        self._order = np.arange(len(self.file_paths))

    def __len__(self):
        return -(-len(self.file_paths) // self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of an image folder of {len(self)} batches")
        picked = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        images = np.stack([self._decode(self.file_paths[i]) for i in picked])
        if self.label_mode is None:
            return images
        labels = self.labels[picked]
        if self.label_mode == "categorical":
            labels = np.eye(len(self.class_names), dtype=np.float32)[labels]
        elif self.label_mode == "binary":
            labels = labels.astype(np.float32).reshape(-1, 1)
        return images, labels

    def _decode(self, file):
        from PIL import Image
        mode, channels = _MODES[self.color_mode]
        height, width = self.image_size
        try:
            with Image.open(file) as img:
                img = img.convert(mode).resize(
                    (width, height), getattr(Image, _RESAMPLE[self.interpolation]))
                pixels = np.asarray(img, dtype=np.float32)
        except (OSError, SyntaxError, ValueError) as exc:
            raise ValueError(f"cannot read image {file!r}: corrupt or truncated "
                             f"({exc.__class__.__name__}: {exc})") from None
        return pixels.reshape(height, width, channels)

    def on_epoch_end(self):
        """A new order for the next epoch (shuffled data sets), as Keras reshuffles."""
        if self._shuffle:
            self._order = self._rng.permutation(len(self.file_paths))
