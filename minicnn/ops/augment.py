"""The data augmentations of Keras 3 as pure functions of an image batch and the
transform parameters already drawn: flips, crops, affine resampling (translation,
rotation, zoom), contrast and brightness. The layers of
``minicnn.layers.augmentation`` draw the parameters; these ops apply them.

Each ``*_forward`` returns ``(y, cache)`` and each ``*_backward(dy, cache)``
returns ``dx = dL/dx``, the gradient of ``sum(y * dy)``. They take NHWC input, or
NCHW with ``data_format="channels_first"`` (computed as the transpose of NHWC).

The geometric ops are *linear* in x for fixed parameters, so each backward pass is
the transpose (adjoint) of the forward map, ``<A x, y> = <x, A^T y>``:

- flip: A reverses the W axis (and/or H) of the images chosen to flip; reversing
  is its own transpose, so dx is dy flipped the same way;
- crop: A cuts a window out; A^T puts dy back into a zero image at that window.
  A crop that had to be resized (Keras's crop of an input not larger than the
  target) also passes through the resize's matrices, transposed;
- affine resampling: output pixel (i, j) reads the input at the point
  ``(row, col) = (b0 j + b1 i + b2, a0 j + a1 i + a2)`` from Keras's 8-number
  transform ``[a0, a1, a2, b0, b1, b2, c0, c1]`` (c0 = c1 = 0 here), at the nearest
  pixel or as the bilinear mix of its four neighbours. A is a sparse matrix with one
  or four weights per output pixel; A^T sends every ``dy`` value back, with the
  same weights, to the pixels it was read from (``scatter_add``). Points outside
  the image are brought back in by ``fill_mode`` as JAX's ``map_coordinates``
  does (on the integer neighbour indices): ``reflect`` (d c b a | a b c d),
  ``wrap`` (a b c d | a b c d), ``nearest`` (a a | a b c d | d d); ``constant``
  reads ``fill_value``, an offset that does not depend on x and so gets no gradient.

Contrast and brightness are affine and then clipped to ``value_range``: the clip
passes the gradient where it left the value unchanged and stops it elsewhere.

The affine resampling runs as a compiled loop on the numba backend
(``minicnn.kernels.numba_augment``, the same numbers) and as the array code below
elsewhere (NumPy, CuPy).
"""
import numpy as np

from .. import backend
from ..backend import get_array_module
from .conv import from_channels_last, to_channels_last

FILL_MODES = ("reflect", "wrap", "constant", "nearest")   # kernel codes 0..3
INTERPOLATIONS = ("nearest", "bilinear")                   # spline order 0, 1
FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")


# ----------------------------------------------------------------------------
# Keras's transforms, one row of 8 float32 numbers per image
# ----------------------------------------------------------------------------
def _rows(a0, a1, a2, b0, b1, b2):
    n = len(a0)
    zero = np.zeros(n, np.float32)
    return np.stack([np.broadcast_to(np.asarray(v, np.float32), (n,))
                     for v in (a0, a1, a2, b0, b1, b2, zero, zero)], axis=1)


def translation_transforms(dx, dy):
    """Shift every image right by ``dx`` and down by ``dy`` pixels (float32 arrays
    of shape (N,)): the output reads the input at ``(i - dy, j - dx)``."""
    dx, dy = np.asarray(dx, np.float32), np.asarray(dy, np.float32)
    one, zero = np.ones_like(dx), np.zeros_like(dx)
    return _rows(one, zero, -dx, zero, one, -dy)


def rotation_transforms(degrees, height, width):
    """Rotate every image by ``degrees`` (float32, (N,); positive: counter-clockwise)
    about its centre ``((W - 1) / 2, (H - 1) / 2)``, with Keras's float32 arithmetic."""
    angle = np.asarray(degrees, np.float32) * np.float32(np.pi / 180.0)
    cos, sin = np.cos(angle), np.sin(angle)
    cx = np.float32(0.5) * (np.float32(width) - np.float32(1))
    cy = np.float32(0.5) * (np.float32(height) - np.float32(1))
    a0, a1, b0, b1 = cos, -sin, sin, cos
    a2 = cx - cx * a0 - cy * a1
    b2 = cy - cx * b0 - cy * b1
    return _rows(a0, a1, a2, b0, b1, b2)


def zoom_transforms(zoom_x, zoom_y, height, width):
    """Zoom about the image centre: the output reads the input at
    ``(zy * i + oy, zx * j + ox)`` with ``o = (size - 1) / 2 * (1 - z)``; z > 1
    zooms out (the image shrinks), z < 1 zooms in."""
    zx, zy = np.asarray(zoom_x, np.float32), np.asarray(zoom_y, np.float32)
    one = np.float32(1)
    ox = (np.float32(width) - one) / np.float32(2) * (one - zx)
    oy = (np.float32(height) - one) / np.float32(2) * (one - zy)
    zero = np.zeros_like(zx)
    return _rows(zx, zero, ox, zero, zy, oy)


# ----------------------------------------------------------------------------
# affine resampling (the array code; the numba kernels compute the same)
# ----------------------------------------------------------------------------
def _fix_index(xp, index, size, mode):
    """Integer indices moved into [0, size) by ``mode``; -1 where constant mode
    reads the fill value."""
    if mode == "reflect":
        r = index % (2 * size)
        return xp.where(r < size, r, 2 * size - 1 - r)
    if mode == "wrap":
        return index % size
    if mode == "nearest":
        return xp.clip(index, 0, size - 1)
    return xp.where((index >= 0) & (index < size), index, -1)


def _round_half_away(xp, v):
    d = v.astype(xp.float64)
    return xp.where(d >= 0, xp.floor(d + 0.5), -xp.floor(0.5 - d)).astype(xp.int64)


def sampling_points(xp, transforms, h, w, interpolation, fill_mode):
    """What each output pixel reads: a list of ``(rows, cols, weights)``, each (N, H, W)
    (one entry for nearest, four for bilinear); a row or column of -1 reads the fill
    value. Source points are computed in float32, in Keras's order."""
    t = xp.asarray(transforms, dtype=xp.float32)
    i = xp.arange(h, dtype=xp.float32)[None, :, None]
    j = xp.arange(w, dtype=xp.float32)[None, None, :]
    k = [t[:, m][:, None, None] for m in range(6)]
    r = (i * k[4] + j * k[3]) + k[5]
    q = (i * k[1] + j * k[0]) + k[2]
    if interpolation == "nearest":
        return [(_fix_index(xp, _round_half_away(xp, r), h, fill_mode),
                 _fix_index(xp, _round_half_away(xp, q), w, fill_mode),
                 xp.ones(r.shape, xp.float32))]
    r0, q0 = xp.floor(r), xp.floor(q)
    f, g = r - r0, q - q0
    r0, q0 = r0.astype(xp.int64), q0.astype(xp.int64)
    one = np.float32(1)
    return [(_fix_index(xp, r0 + a, h, fill_mode), _fix_index(xp, q0 + b, w, fill_mode),
             (one - f if a == 0 else f) * (one - g if b == 0 else g))
            for a in (0, 1) for b in (0, 1)]


def _numba_kernels(*arrays):
    """The compiled affine kernels on the numba backend (host arrays), else None."""
    if backend.get_backend() != "numba" or \
            not all(isinstance(a, np.ndarray) for a in arrays):
        return None
    from ..kernels import numba_augment
    return numba_augment


def affine_forward(x, transforms, interpolation="bilinear", fill_mode="reflect",
                   fill_value=0.0, data_format="channels_last"):
    """Resample every image of ``x`` through its row of ``transforms`` (N, 8).
    Returns ``(y, cache)``; y has x's shape."""
    x = to_channels_last(x, data_format)
    n, h, w, c = x.shape
    xp = get_array_module(x)
    t = np.ascontiguousarray(transforms, dtype=np.float32)
    fast = _numba_kernels(x)
    if fast is not None:
        y = np.empty((n, h, w, c), dtype=x.dtype)
        fast.affine_sample(np.ascontiguousarray(x), t, INTERPOLATIONS.index(interpolation),
                           FILL_MODES.index(fill_mode), float(fill_value), y)
    else:
        xf = x.reshape(n, h * w, c)
        fill = xp.asarray(fill_value, dtype=x.dtype)
        y = None
        for rows, cols, weight in sampling_points(xp, t, h, w, interpolation, fill_mode):
            valid = ((rows >= 0) & (cols >= 0)).reshape(n, h * w, 1)
            flat = xp.where(valid[..., 0], (rows * w + cols).reshape(n, h * w), 0)
            value = xp.where(valid, xp.take_along_axis(xf, flat[..., None], axis=1), fill)
            term = weight.reshape(n, h * w, 1).astype(x.dtype) * value
            y = term if y is None else y + term
        y = y.reshape(n, h, w, c)
    cache = (t, interpolation, fill_mode, (n, h, w, c), data_format, fast is not None)
    return from_channels_last(y, data_format), cache


def _scatter_add(xp, out, index, values):
    """``out[index[k]] += values[k]`` with repeated indices adding up."""
    if xp is np:
        for ch in range(out.shape[1]):
            out[:, ch] += np.bincount(index, values[:, ch], minlength=len(out))
    else:
        xp.add.at(out, index, values)


def affine_backward(dy, cache):
    """The transpose of the resampling: each dy value goes back, with its weight,
    to the input pixels it was read from."""
    t, interpolation, fill_mode, (n, h, w, c), data_format, fast = cache
    dy = to_channels_last(dy, data_format)
    xp = get_array_module(dy)
    if fast and _numba_kernels(dy) is not None:
        dx = np.zeros((n, h, w, c), dtype=dy.dtype)
        _numba_kernels(dy).affine_sample_adjoint(
            np.ascontiguousarray(dy), t, INTERPOLATIONS.index(interpolation),
            FILL_MODES.index(fill_mode), dx)
        return from_channels_last(dx, data_format)
    dyf = dy.reshape(n * h * w, c)
    dx = xp.zeros((n * h * w, c), dtype=dy.dtype)
    base = (xp.arange(n) * (h * w))[:, None, None]
    for rows, cols, weight in sampling_points(xp, t, h, w, interpolation, fill_mode):
        valid = ((rows >= 0) & (cols >= 0)).reshape(-1)
        flat = (base + rows * w + cols).reshape(-1)
        _scatter_add(xp, dx, flat[valid], weight.reshape(-1, 1)[valid] * dyf[valid])
    return from_channels_last(dx.reshape(n, h, w, c), data_format)


# ----------------------------------------------------------------------------
# flips
# ----------------------------------------------------------------------------
def _flipped(x, flips, mode):
    xp = get_array_module(x)
    out = x
    if mode in ("horizontal", "horizontal_and_vertical"):
        out = out[:, :, ::-1]
    if mode in ("vertical", "horizontal_and_vertical"):
        out = out[:, ::-1]
    chosen = xp.asarray(flips, dtype=bool).reshape(-1, 1, 1, 1)
    return xp.where(chosen, out, x)


def flip_forward(x, flips, mode="horizontal_and_vertical", data_format="channels_last"):
    """Flip the images where ``flips`` (bool, (N,)) is True: left-right for
    "horizontal", top-bottom for "vertical", both for "horizontal_and_vertical"
    (one decision per image for both axes, as Keras)."""
    y = _flipped(to_channels_last(x, data_format), flips, mode)
    return from_channels_last(y, data_format), (flips, mode, data_format)


def flip_backward(dy, cache):
    flips, mode, data_format = cache
    return from_channels_last(_flipped(to_channels_last(dy, data_format), flips, mode),
                              data_format)


# ----------------------------------------------------------------------------
# crops (with Keras's resize when the input is not larger than the target)
# ----------------------------------------------------------------------------
def resize_matrix(in_size, out_size):
    """(out_size, in_size) float32 matrix of bilinear resizing with half-pixel
    centres, edges clamped (``jax.image.resize`` "linear" when enlarging): output
    o reads the input at ``(o + 0.5) * in / out - 0.5``."""
    m = np.zeros((out_size, in_size), np.float32)
    s = (np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5
    lo = np.floor(s)
    frac = (s - lo).astype(np.float32)
    lo = lo.astype(np.int64)
    rows = np.arange(out_size)
    np.add.at(m, (rows, np.clip(lo, 0, in_size - 1)), 1 - frac)
    np.add.at(m, (rows, np.clip(lo + 1, 0, in_size - 1)), frac)
    return m


def crop_forward(x, top, left, crop_height, crop_width, height=None, width=None,
                 data_format="channels_last"):
    """Cut ``crop_height x crop_width`` pixels at (top, left) out of every image;
    resize them to ``height x width`` (bilinear) when given and different."""
    x = to_channels_last(x, data_format)
    xp = get_array_module(x)
    y = x[:, top:top + crop_height, left:left + crop_width, :]
    mats = None
    if (height, width) != (None, None) and (height, width) != (crop_height, crop_width):
        mats = (xp.asarray(resize_matrix(crop_height, height), dtype=x.dtype),
                xp.asarray(resize_matrix(crop_width, width), dtype=x.dtype))
        y = xp.einsum("ph,nhwc->npwc", mats[0], y)
        y = xp.einsum("qw,npwc->npqc", mats[1], y)
    cache = (x.shape, top, left, crop_height, crop_width, mats, data_format)
    return from_channels_last(xp.ascontiguousarray(y), data_format), cache


def crop_backward(dy, cache):
    shape, top, left, crop_height, crop_width, mats, data_format = cache
    dy = to_channels_last(dy, data_format)
    xp = get_array_module(dy)
    if mats is not None:
        dy = xp.einsum("qw,npqc->npwc", mats[1], dy)
        dy = xp.einsum("ph,npwc->nhwc", mats[0], dy)
    dx = xp.zeros(shape, dtype=dy.dtype)
    dx[:, top:top + crop_height, left:left + crop_width, :] = dy
    return from_channels_last(dx, data_format)


# ----------------------------------------------------------------------------
# contrast and brightness
# ----------------------------------------------------------------------------
def _clip(xp, z, value_range):
    lo, hi = value_range
    y = xp.clip(z, lo, hi)
    return y, (z >= lo) & (z <= hi)


def contrast_forward(x, factors, value_range=(0, 255), data_format="channels_last"):
    """``y = clip((x - m) * f + m, *value_range)`` with m the mean of each image's
    channel over H and W and f one factor per image ((N,))."""
    x = to_channels_last(x, data_format)
    xp = get_array_module(x)
    f = xp.asarray(factors, dtype=x.dtype).reshape(-1, 1, 1, 1)
    m = x.mean(axis=(1, 2), keepdims=True)
    y, keep = _clip(xp, (x - m) * f + m, value_range)
    return from_channels_last(y, data_format), (f, keep, data_format)


def contrast_backward(dy, cache):
    """z = f x + (1 - f) m(x), so dz/dx sends ``f g`` to each pixel and the mean's
    share ``(1 - f) mean(g)`` to all pixels of the channel (g: dy where not clipped)."""
    f, keep, data_format = cache
    g = to_channels_last(dy, data_format) * keep
    dx = f * g + (1 - f) * g.mean(axis=(1, 2), keepdims=True)
    return from_channels_last(dx, data_format)


def brightness_forward(x, deltas, value_range=(0, 255)):
    """``y = clip(x + delta, *value_range)``, one delta per image ((N,)); any layout."""
    xp = get_array_module(x)
    d = xp.asarray(deltas, dtype=x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
    y, keep = _clip(xp, x + d, value_range)
    return y, keep


def brightness_backward(dy, cache):
    return dy * cache
