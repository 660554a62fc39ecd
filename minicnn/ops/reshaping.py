"""Ops that move, copy or summarise values without weights: zero padding,
cropping, nearest-neighbour upsampling, reshape, rescaling, and global average
and global max pooling.

Each ``*_forward`` returns ``(y, cache)`` and each ``*_backward(dy, cache)``
returns ``dx = dL/dx``, the gradient of ``sum(y * dy)``. They work on host
(NumPy) and device (CuPy) arrays alike. The image ops take NHWC input, or NCHW
with ``data_format="channels_first"``; channels_first is computed as the
transpose of channels_last, so both layouts give the same numbers.

What the backward passes compute, op by op:

- zero padding: y is x with zeros around it, so dx is dy with the padded
  border cut off (the padded cells have no input to send a gradient to);
- cropping: y is the inner part of x, so dx is dy with zeros put back where
  the cropped cells were (they did not reach the output);
- nearest upsampling by (sh, sw): every input pixel is copied into an sh x sw
  block, so its gradient is the sum of dy over that block;
- reshape: the same values in another shape, so dx is dy reshaped back;
- rescaling ``y = x * scale + offset``: ``dx = dy * scale``;
- global average pooling over H and W: ``dx = dy / (H * W)`` at every pixel;
- global max pooling over H and W: the gradient of a channel's maximum goes to
  the cells that hold it, split equally among them when several do (a tie of
  k cells gives each ``dy / k``). That is what Keras does on JAX, whose ``max``
  splits its gradient among tied maxima; note it differs from MaxPooling2D,
  which sends a window's whole gradient to its first maximal cell.
"""
from ..backend import get_array_module, to_device
from .conv import from_channels_last, to_channels_last


# ----------------------------------------------------------------------------
# zero padding and cropping: each other's backward
# ----------------------------------------------------------------------------
def _pad_hw(x, pads):
    """NHWC ``x`` with ``pads = ((top, bottom), (left, right))`` zeros around H, W."""
    xp = get_array_module(x)
    (top, bottom), (left, right) = pads
    n, h, w, c = x.shape
    y = xp.zeros((n, top + h + bottom, left + w + right, c), dtype=x.dtype)
    y[:, top:top + h, left:left + w, :] = x
    return y


def _crop_hw(x, crops):
    """NHWC ``x`` without ``crops = ((top, bottom), (left, right))`` rows/columns
    (a copy, not a view, so the result does not keep the whole input alive)."""
    (top, bottom), (left, right) = crops
    _, h, w, _ = x.shape
    return x[:, top:h - bottom, left:w - right, :].copy()


def zero_padding2d_forward(x, padding, data_format="channels_last"):
    """Add ``padding = ((top, bottom), (left, right))`` rows and columns of zeros
    around every image. Returns ``(y, cache)``; y is (N, top + H + bottom,
    left + W + right, C) for channels_last input."""
    y = _pad_hw(to_channels_last(x, data_format), padding)
    return from_channels_last(y, data_format), (tuple(padding), data_format)


def zero_padding2d_backward(dy, cache):
    """dx = dy without the padded border (the zeros depend on no input)."""
    padding, data_format = cache
    dx = _crop_hw(to_channels_last(dy, data_format), padding)
    return from_channels_last(dx, data_format)


def cropping2d_forward(x, cropping, data_format="channels_last"):
    """Remove ``cropping = ((top, bottom), (left, right))`` rows and columns from
    the edges of every image. Returns ``(y, cache)``; y is (N, H - top - bottom,
    W - left - right, C) for channels_last input."""
    (top, bottom), (left, right) = cropping
    xl = to_channels_last(x, data_format)
    _, h, w, _ = xl.shape
    if top + bottom >= h or left + right >= w:
        raise ValueError(f"cropping2d: cropping {tuple(cropping)} must leave at least one "
                         f"row and column of an input of {h}x{w}")
    y = _crop_hw(xl, cropping)
    return from_channels_last(y, data_format), (tuple(cropping), data_format)


def cropping2d_backward(dy, cache):
    """dx = dy with zeros where the cropped rows and columns were."""
    cropping, data_format = cache
    dx = _pad_hw(to_channels_last(dy, data_format), cropping)
    return from_channels_last(dx, data_format)


# ----------------------------------------------------------------------------
# nearest-neighbour upsampling
# ----------------------------------------------------------------------------
def upsampling2d_forward(x, size, data_format="channels_last"):
    """Repeat every row ``size[0]`` times and every column ``size[1]`` times
    (nearest-neighbour upsampling, Keras's ``interpolation="nearest"``):
    ``y[n, i, j, c] = x[n, i // sh, j // sw, c]``. Returns ``(y, cache)``."""
    sh, sw = size
    xl = to_channels_last(x, data_format)
    n, h, w, c = xl.shape
    xp = get_array_module(xl)
    # (N, H, 1, W, 1, C) broadcast to (N, H, sh, W, sw, C), then merged: row i*sh + a
    # of the output is input row i, for every a < sh (and the same for columns).
    y = xp.broadcast_to(xl[:, :, None, :, None, :], (n, h, sh, w, sw, c))
    y = y.reshape(n, h * sh, w * sw, c)
    return from_channels_last(y, data_format), ((sh, sw), data_format)


def upsampling2d_backward(dy, cache):
    """dx[n, i, j, c] = the sum of dy over the sh x sw block that copied x[n, i, j, c]."""
    (sh, sw), data_format = cache
    dyl = to_channels_last(dy, data_format)
    n, oh, ow, c = dyl.shape
    dx = dyl.reshape(n, oh // sh, sh, ow // sw, sw, c).sum(axis=(2, 4))
    return from_channels_last(dx, data_format)


# ----------------------------------------------------------------------------
# reshape and rescaling
# ----------------------------------------------------------------------------
def reshape_forward(x, target_shape):
    """Give every sample the shape ``target_shape`` (fully resolved: no -1), in
    row-major order, as ``numpy.reshape``. Returns ``(y, cache)``."""
    y = x.reshape((x.shape[0],) + tuple(target_shape))
    return y, tuple(x.shape)


def reshape_backward(dy, cache):
    """dx = dy in the input's shape (the same values, moved back)."""
    return dy.reshape(cache)


def rescaling_forward(x, scale, offset=0.0):
    """``y = x * scale + offset``; ``scale`` and ``offset`` are numbers or arrays
    that broadcast against x (e.g. one value per channel). Returns ``(y, cache)``."""
    scale = _as_operand(scale, x)
    offset = _as_operand(offset, x)
    return x * scale + offset, scale


def rescaling_backward(dy, cache):
    """dx = dy * scale (the offset adds a constant: no gradient)."""
    return dy * cache


def _as_operand(value, x):
    """A Python number as is; an array on ``x``'s device and in its dtype, so that
    the arithmetic neither moves data nor promotes float32 to float64."""
    if isinstance(value, (int, float)):
        return value
    return to_device(value, dtype=x.dtype)


# ----------------------------------------------------------------------------
# global pooling: one value per image and channel
# ----------------------------------------------------------------------------
def _spatial_axes(data_format):
    return (2, 3) if data_format == "channels_first" else (1, 2)


def global_average_pooling2d_forward(x, data_format="channels_last", keepdims=False):
    """Mean over H and W of every image and channel: (N, C), or (N, 1, 1, C) with
    ``keepdims`` ((N, C, 1, 1) for channels_first). Returns ``(y, cache)``."""
    axes = _spatial_axes(data_format)
    y = x.mean(axis=axes, keepdims=keepdims)
    return y, (tuple(x.shape), axes)


def global_average_pooling2d_backward(dy, cache):
    """dx = dy / (H * W) at every pixel of the image and channel."""
    shape, axes = cache
    xp = get_array_module(dy)
    count = shape[axes[0]] * shape[axes[1]]
    dy = dy.reshape(_kept_shape(shape, axes))
    return xp.broadcast_to(dy / count, shape).copy()


def global_max_pooling2d_forward(x, data_format="channels_last", keepdims=False):
    """Maximum over H and W of every image and channel: (N, C), or (N, 1, 1, C) with
    ``keepdims``. Returns ``(y, cache)``; the cache marks the cells that hold the
    maximum and how many there are."""
    xp = get_array_module(x)
    axes = _spatial_axes(data_format)
    peak = x.max(axis=axes, keepdims=True)
    winners = x == peak
    count = winners.sum(axis=axes, keepdims=True)
    y = peak if keepdims else peak.reshape(_reduced_shape(x.shape, axes))
    # a NaN maximum equals no cell: count 0, and dx is then 0 instead of a 0/0
    count = xp.maximum(count, 1).astype(x.dtype)
    return y, (winners, count)


def global_max_pooling2d_backward(dy, cache):
    """dx = dy / k at each of the k cells that hold the maximum, 0 elsewhere."""
    winners, count = cache
    dy = dy.reshape(count.shape)
    return winners * (dy / count)


def _reduced_shape(shape, axes):
    """``shape`` without the reduced ``axes`` (how keepdims=False drops them)."""
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _kept_shape(shape, axes):
    """``shape`` with the reduced ``axes`` set to 1 (how keepdims=True keeps them)."""
    return tuple(1 if i in axes else d for i, d in enumerate(shape))
