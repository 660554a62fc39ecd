"""ZeroPadding2D, Cropping2D, UpSampling2D, Reshape, Rescaling and Identity:
layers without weights that move, copy or scale values, over
``minicnn.ops.reshaping``. Arguments, defaults and output shapes are Keras 3's.
"""
import math
import numbers

import numpy as np

from ..ops.reshaping import (cropping2d_backward, cropping2d_forward, reshape_backward,
                             reshape_forward, rescaling_backward, rescaling_forward,
                             upsampling2d_backward, upsampling2d_forward,
                             zero_padding2d_backward, zero_padding2d_forward)
from ..shapes import normalize_data_format
from .base import Layer, _format_shape


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _spatial(shape, data_format):
    """(H, W) of a sample shape (no batch axis)."""
    return shape[1:3] if data_format == "channels_first" else shape[0:2]


def _with_spatial(shape, hw, data_format):
    """``shape`` with its (H, W) replaced by ``hw``."""
    return (shape[0],) + tuple(hw) if data_format == "channels_first" else tuple(hw) + (shape[2],)


def normalize_edge_pairs(value, arg_name, owner):
    """Keras's form of ZeroPadding2D's ``padding`` and Cropping2D's ``cropping``:
    an int (all four sides), a pair ``(symmetric_height, symmetric_width)``, or
    ``((top, bottom), (left, right))`` (the two entries may also mix the forms,
    as in Keras) -> ``((top, bottom), (left, right))`` of non-negative ints.
    Errors are ValueErrors, as Keras raises."""
    forms = ("an int, a tuple of 2 ints (symmetric_height, symmetric_width), or a tuple "
             "of 2 tuples of 2 ints ((top, bottom), (left, right))")
    if _is_int(value):
        entries = (value, value)
    elif isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"{owner}: `{arg_name}` must be {forms}. Received: "
                         f"{arg_name}={value!r}")
    else:
        entries = tuple(value)
    pairs = []
    for which, entry in zip(("height", "width"), entries):
        if _is_int(entry):
            entry = (entry, entry)
        elif isinstance(entry, (str, bytes)) or not hasattr(entry, "__len__") or \
                len(entry) != 2 or not all(_is_int(e) for e in entry):
            raise ValueError(f"{owner}: the {which} entry of `{arg_name}` must be an int or "
                             f"a tuple of 2 ints. Received: {arg_name}={value!r}")
        if any(e < 0 for e in entry):
            raise ValueError(f"{owner}: `{arg_name}` cannot be negative. Received: "
                             f"{arg_name}={value!r}")
        pairs.append((int(entry[0]), int(entry[1])))
    return tuple(pairs)


class _Spatial2D(Layer):
    """Shared by the rank-4 image layers: the input check and the layout."""

    def _check_input_shape(self, shape):
        self._require_image(shape)


class ZeroPadding2D(_Spatial2D):
    """Adds rows and columns of zeros at the top, bottom, left and right of every
    image. ``padding``: an int (all sides), ``(symmetric_height, symmetric_width)``
    or ``((top, bottom), (left, right))``.

    (N, H, W, C) -> (N, top + H + bottom, left + W + right, C). Backward crops the
    border off dy.

    >>> ZeroPadding2D(((1, 2), (0, 3))).compute_output_shape((4, 4, 3))
    (7, 7, 3)
    """

    def __init__(self, padding=(1, 1), data_format=None, input_shape=None, name=None,
                 **kwargs):
        self.padding = normalize_edge_pairs(padding, "padding", "ZeroPadding2D")
        self.data_format = normalize_data_format(data_format, "ZeroPadding2D")
        super().__init__(name=name, input_shape=input_shape, **kwargs)

    def _output_shape(self, shape):
        hw = [None if n is None else n + sum(p)
              for n, p in zip(_spatial(shape, self.data_format), self.padding)]
        return _with_spatial(shape, hw, self.data_format)

    def _forward(self, x, training):
        y, self._cache = zero_padding2d_forward(x, self.padding, self.data_format)
        return y

    def _backward(self, dy):
        return zero_padding2d_backward(dy, self._cache)

    def get_config(self):
        return {"name": self.name, "padding": self.padding, "data_format": self.data_format}


class Cropping2D(_Spatial2D):
    """Removes rows and columns from the edges of every image. ``cropping``: an int
    (all sides), ``(symmetric_height, symmetric_width)`` or
    ``((top, bottom), (left, right))``; it must leave at least one row and column.

    (N, H, W, C) -> (N, H - top - bottom, W - left - right, C). Backward puts dy
    back in place with zeros where the cropped cells were.

    >>> Cropping2D(((2, 2), (4, 4))).compute_output_shape((28, 28, 3))
    (24, 20, 3)
    """

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, input_shape=None,
                 name=None, **kwargs):
        self.cropping = normalize_edge_pairs(cropping, "cropping", "Cropping2D")
        self.data_format = normalize_data_format(data_format, "Cropping2D")
        super().__init__(name=name, input_shape=input_shape, **kwargs)

    def _output_shape(self, shape):
        hw = []
        for which, n, crop in zip(("height", "width"), _spatial(shape, self.data_format),
                                  self.cropping):
            if n is not None and sum(crop) >= n:
                raise self._error(ValueError, f"cropping {self.cropping} removes {sum(crop)} "
                                              f"of the {n} cells of the input's {which} "
                                              f"(input shape {_format_shape((None,) + shape)}); "
                                              f"it must leave at least one")
            hw.append(None if n is None else n - sum(crop))
        return _with_spatial(shape, hw, self.data_format)

    def _forward(self, x, training):
        y, self._cache = cropping2d_forward(x, self.cropping, self.data_format)
        return y

    def _backward(self, dy):
        return cropping2d_backward(dy, self._cache)

    def get_config(self):
        return {"name": self.name, "cropping": self.cropping, "data_format": self.data_format}


# Keras's interpolations (keras.ops.image.resize); minicnn computes "nearest" only.
UPSAMPLING_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos3", "lanczos5")


class UpSampling2D(_Spatial2D):
    """Nearest-neighbour upsampling: every row is repeated ``size[0]`` times and
    every column ``size[1]`` times, ``y[n, i, j, c] = x[n, i // sh, j // sw, c]``.

    (N, H, W, C) -> (N, H * sh, W * sw, C). Backward sums dy over each sh x sw
    block. Only ``interpolation="nearest"`` is implemented; Keras's other
    interpolations are refused with NotImplementedError.
    """

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest",
                 input_shape=None, name=None, **kwargs):
        self.size = _positive_pair(size, "size", "UpSampling2D")
        self.data_format = normalize_data_format(data_format, "UpSampling2D")
        if not isinstance(interpolation, str) or \
                interpolation.lower() not in UPSAMPLING_INTERPOLATIONS:
            raise ValueError(f"UpSampling2D: unknown interpolation; expected one of "
                             f"{list(UPSAMPLING_INTERPOLATIONS)}. "
                             f"Received: interpolation={interpolation!r}")
        if interpolation.lower() != "nearest":
            raise NotImplementedError(f"UpSampling2D: interpolation={interpolation!r} is not "
                                      f"implemented in minicnn; only 'nearest' is")
        self.interpolation = "nearest"
        super().__init__(name=name, input_shape=input_shape, **kwargs)

    def _output_shape(self, shape):
        hw = [None if n is None else n * s
              for n, s in zip(_spatial(shape, self.data_format), self.size)]
        return _with_spatial(shape, hw, self.data_format)

    def _forward(self, x, training):
        y, self._cache = upsampling2d_forward(x, self.size, self.data_format)
        return y

    def _backward(self, dy):
        return upsampling2d_backward(dy, self._cache)

    def get_config(self):
        return {"name": self.name, "size": self.size, "data_format": self.data_format,
                "interpolation": self.interpolation}


def _positive_pair(value, arg_name, owner):
    """An int or a pair of ints, all > 0 -> a pair (ValueError otherwise, as Keras)."""
    items = (value, value) if _is_int(value) else value
    if isinstance(items, (str, bytes)) or not hasattr(items, "__len__") or len(items) != 2 \
            or not all(_is_int(i) for i in items):
        raise ValueError(f"{owner}: `{arg_name}` must be an int or a tuple of 2 ints. "
                         f"Received: {arg_name}={value!r}")
    if any(i <= 0 for i in items):
        raise ValueError(f"{owner}: `{arg_name}` must be positive. Received: "
                         f"{arg_name}={value!r}")
    return (int(items[0]), int(items[1]))


class Reshape(Layer):
    """Gives every sample the shape ``target_shape`` (no batch axis), in row-major
    order; one entry may be -1, inferred from the input's size, as in Keras.

    >>> Reshape((-1, 2, 2)).compute_output_shape((12,))
    (3, 2, 2)
    """
    fixed_rank = False  # any input whose size fits target_shape

    def __init__(self, target_shape, input_shape=None, name=None, **kwargs):
        if isinstance(target_shape, (str, bytes)) or not hasattr(target_shape, "__iter__"):
            raise TypeError(f"Reshape: `target_shape` must be a tuple of ints (the sample "
                            f"shape, without the batch axis). Received: "
                            f"target_shape={target_shape!r}")
        shape = tuple(target_shape)
        if not all(_is_int(d) and (d > 0 or d == -1) for d in shape):
            raise ValueError(f"Reshape: each entry of `target_shape` must be a positive int, "
                             f"or -1 for a single unknown size. Received: "
                             f"target_shape={target_shape!r}")
        if shape.count(-1) > 1:
            raise ValueError(f"Reshape: `target_shape` may hold at most one unknown size "
                             f"(-1). Received: target_shape={target_shape!r}")
        self.target_shape = tuple(int(d) for d in shape)
        super().__init__(name=name, input_shape=input_shape, **kwargs)

    def _check_input_shape(self, shape):
        self._require_rank(shape, (1,), "(batch, ...)")

    def _output_shape(self, shape):
        if None in shape:  # as Keras: the -1 cannot be resolved yet
            return tuple(None if d == -1 else d for d in self.target_shape)
        size, known = math.prod(shape), math.prod(d for d in self.target_shape if d != -1)
        if -1 not in self.target_shape:
            if size == known:
                return self.target_shape
        elif size % known == 0:
            return tuple(size // known if d == -1 else d for d in self.target_shape)
        raise self._error(ValueError, f"cannot reshape an input of shape "
                                      f"{_format_shape((None,) + shape)} ({size} values per "
                                      f"sample) to target_shape {self.target_shape}; the "
                                      f"number of values must stay the same")

    def _forward(self, x, training):
        y, self._cache = reshape_forward(x, self._output_shape(tuple(x.shape[1:])))
        return y

    def _backward(self, dy):
        return reshape_backward(dy, self._cache)

    def get_config(self):
        return {"name": self.name, "target_shape": self.target_shape}


def _scale_value(value, arg_name):
    """A real number -> float; an array-like of real numbers -> float64 ndarray."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        array = None
    if array is None or array.dtype.kind not in "iuf" or array.size == 0:
        raise TypeError(f"Rescaling: `{arg_name}` must be a number, or an array of numbers "
                        f"that broadcasts against the input (e.g. one per channel). "
                        f"Received: {arg_name}={value!r}")
    return array.astype(np.float64)


class Rescaling(Layer):
    """``y = x * scale + offset``, in training and inference alike (Keras's
    preprocessing layer): ``Rescaling(1 / 255)`` maps [0, 255] to [0, 1],
    ``Rescaling(1 / 127.5, offset=-1)`` to [-1, 1]. ``scale`` and ``offset`` are
    numbers, or arrays that broadcast against a sample (e.g. one per channel of
    a channels_last image) without changing its shape. Backward: dx = dy * scale.
    """
    fixed_rank = False

    def __init__(self, scale, offset=0.0, input_shape=None, name=None, **kwargs):
        self._scale = _scale_value(scale, "scale")
        self._offset = _scale_value(offset, "offset")
        super().__init__(name=name, input_shape=input_shape, **kwargs)

    @property
    def scale(self):
        return self._scale if isinstance(self._scale, float) else self._scale.tolist()

    @property
    def offset(self):
        return self._offset if isinstance(self._offset, float) else self._offset.tolist()

    def _check_input_shape(self, shape):
        self._require_rank(shape, (1,), "(batch, ...)")
        for arg_name, value in (("scale", self._scale), ("offset", self._offset)):
            if isinstance(value, float):
                continue
            ok = value.ndim <= len(shape) and all(
                a == 1 or b is None or a == b for a, b in zip(value.shape[::-1], shape[::-1]))
            if not ok:
                raise self._error(ValueError, f"`{arg_name}` of shape {value.shape} does not "
                                              f"broadcast against samples of shape "
                                              f"{_format_shape(shape)} without changing them "
                                              f"(input shape "
                                              f"{_format_shape((None,) + shape)})")

    def _forward(self, x, training):
        y, self._cache = rescaling_forward(x, self._scale, self._offset)
        return y

    def _backward(self, dy):
        return rescaling_backward(dy, self._cache)

    def get_config(self):
        return {"name": self.name, "scale": self.scale, "offset": self.offset}


class Identity(Layer):
    """Returns its input unchanged (a placeholder); backward returns dy."""
    fixed_rank = False

    def __init__(self, input_shape=None, name=None, **kwargs):
        super().__init__(name=name, input_shape=input_shape, **kwargs)

    def _check_input_shape(self, shape):
        self._require_rank(shape, (1,), "(batch, ...)")

    def _forward(self, x, training):
        return x

    def _backward(self, dy):
        return dy
