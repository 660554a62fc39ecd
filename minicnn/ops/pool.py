"""Max, min and average pooling over the windows that im2col cuts out.

All three share ``im2col``; only the pad value and the reduction differ:

- max: pad with -inf (a padded cell never wins), take the maximum of each window.
  Backward sends a window's gradient to *one* cell, the first maximal cell in
  row-major order (Keras's tie rule); ``argmax`` over the flattened window
  returns exactly that cell.
- min: pad with +inf, take the minimum; backward likewise to the first minimal
  cell, so min pooling equals ``-maxpool(-x)`` forward and backward.
- average: pad with 0, sum each window and divide by the number of *real*
  (unpadded) cells in it, as Keras does with ``same`` padding. Backward gives
  every real cell of a window ``dy / count``.

col2im adds the windows' gradients back, so overlapping windows (e.g. 3x3,
stride 2) accumulate into the cells they share.
"""
from ..backend import get_array_module, kernels_for
from ..shapes import POOL_PADDINGS, normalize_data_format, normalize_padding, resolve_padding
from .conv import from_channels_last, to_channels_last
from .im2col import col2im, im2col

POOL_MODES = ("max", "min", "avg")
_PAD_VALUE = {"max": float("-inf"), "min": float("inf"), "avg": 0.0}


def _real_cell_counts(xp, size, k, s, before, out, dtype):
    """How many unpadded cells each of ``out`` windows covers on one axis."""
    start = xp.arange(out) * s - before
    return (xp.minimum(start + k, size) - xp.maximum(start, 0)).astype(dtype)


def pool2d_forward(x, pool_size, strides=None, padding="valid", mode="max",
                   data_format="channels_last"):
    """Pool ``x`` over ``pool_size`` windows moved by ``strides`` (default: pool_size).

    Returns ``(y, cache)``; y is (N, OH, OW, C) for channels_last input.
    """
    if mode not in POOL_MODES:
        raise ValueError(f"pool2d: unknown mode; expected one of {list(POOL_MODES)}. "
                         f"Received: mode={mode!r}")
    padding = normalize_padding(padding, POOL_PADDINGS)
    data_format = normalize_data_format(data_format)
    strides = tuple(pool_size) if strides is None else tuple(strides)
    x = to_channels_last(x, data_format)
    n, h, w, c = x.shape
    kh, kw = pool_size
    pads, (oh, ow) = resolve_padding((h, w), (kh, kw), strides, padding)
    if oh <= 0 or ow <= 0:
        raise ValueError(f"pool2d: a {kh}x{kw} window with padding '{padding}' does not fit "
                         f"an input of {h}x{w}; the output would be empty")

    fast = kernels_for(x)
    if fast is not None:
        xp = get_array_module(x)
        y, aux = _kernel_forward(fast, xp.ascontiguousarray(x), mode, (kh, kw), strides,
                                 pads, (oh, ow))
    else:
        y, aux = _array_forward(x, mode, (kh, kw), strides, pads, (oh, ow))
    cache = (x.shape, mode, (kh, kw), strides, pads, aux, data_format, fast)
    return from_channels_last(y, data_format), cache


def _array_forward(x, mode, window, strides, pads, out_hw):
    xp = get_array_module(x)
    n, h, w, c = x.shape
    (kh, kw), (oh, ow) = window, out_hw
    col = im2col(x, window, strides, pads, out_hw, _PAD_VALUE[mode])
    col = col.reshape(n, oh, ow, kh * kw, c)
    if mode == "avg":
        count = (_real_cell_counts(xp, h, kh, strides[0], pads[0][0], oh, x.dtype)[:, None]
                 * _real_cell_counts(xp, w, kw, strides[1], pads[1][0], ow, x.dtype)[None, :])
        count = count[None, :, :, None]  # (1, OH, OW, 1): broadcasts over N and C
        return col.sum(axis=3) / count, count
    # argmax/argmin return the first extreme cell of the flattened (row-major) window.
    winner = col.argmax(axis=3) if mode == "max" else col.argmin(axis=3)
    return xp.take_along_axis(col, winner[:, :, :, None, :], axis=3)[:, :, :, 0, :], winner


def _kernel_forward(fast, x, mode, window, strides, pads, out_hw):
    """The kernels (numba's or CUDA's): no im2col matrix, and per output the pixel
    number of the winning cell (-1 for padding) instead of a one-hot mask. It is
    int32, the width of the float32 values it is chosen beside: a uint8 index kept
    the compiled CPU loop from being vectorised (7x slower for 2x2 windows)."""
    xp = get_array_module(x)
    n, _, _, c = x.shape
    (kh, kw), (oh, ow), top, left = window, out_hw, pads[0][0], pads[1][0]
    y = xp.empty((n, oh, ow, c), dtype=x.dtype)
    if mode == "avg":
        fast.avg_pool_forward(x, kh, kw, *strides, top, left, y)
        return y, None
    winner = xp.empty((n, oh, ow, c), dtype=xp.int32)
    fast.extreme_pool_forward(x, kh, kw, *strides, top, left, mode == "max", y, winner)
    return y, winner


def pool2d_backward(dy, cache):
    """Gradient of ``sum(y * dy)`` with respect to the pooled input."""
    x_shape, mode, (kh, kw), strides, pads, aux, data_format, fast = cache
    dy = to_channels_last(dy, data_format)
    xp = get_array_module(dy)
    if fast is not None:
        dx = xp.empty(x_shape, dtype=dy.dtype)
        dy = xp.ascontiguousarray(dy)
        window = (kh, kw, *strides, pads[0][0], pads[1][0])
        if mode == "avg":
            fast.avg_pool_backward(dy, *window, dx)
        else:
            fast.extreme_pool_backward(dy, aux, *window, dx)
        return from_channels_last(dx, data_format)
    n, oh, ow, c = dy.shape
    if mode == "avg":
        dcol = xp.broadcast_to((dy / aux)[:, :, :, None, :], (n, oh, ow, kh * kw, c))
    else:
        # One-hot over the window axis: the winning cell gets dy, the others 0.
        window = xp.arange(kh * kw).reshape(1, 1, 1, kh * kw, 1)
        dcol = (window == aux[:, :, :, None, :]) * dy[:, :, :, None, :]
    dx = col2im(dcol.reshape(n, oh, ow, kh, kw, c), x_shape, (kh, kw), strides, pads)
    return from_channels_last(dx, data_format)


def pool2d_output_shape(in_hw, pool_size, strides, padding):
    return resolve_padding(in_hw, pool_size, strides, padding)[1]
