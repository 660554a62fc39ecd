"""Image folders for classification: one sub-folder per class (the AlexNet example's
17 flowers), or an ``.npz`` of ``X`` and ``Y`` read without unpickling."""
import os

import numpy as np


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
