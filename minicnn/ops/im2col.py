"""im2col and col2im: the one place where windows are cut out of images.

Convolution and all three poolings look at the same windows: a ``kh x kw``
patch of every channel, moved by ``(sh, sw)`` over the padded image. ``im2col``
copies those patches into a 6-D array

    col[n, i, j, a, b, c] = xpad[n, i*sh + a, j*sw + b, c]

(``i, j`` the output position, ``a, b`` the offset inside the window), so that a
convolution becomes one matrix product and a pooling one reduction over
``(a, b)``. The copy is done with one strided slice per kernel offset, i.e.
``kh * kw`` vectorised copies, never a Python loop over pixels; it works
unchanged on NumPy and CuPy arrays.

``col2im`` is the adjoint (the transpose) of ``im2col``: every patch entry is
*added* back to the pixel it came from. Pixels shared by overlapping windows
receive the sum, which is exactly what the chain rule asks for.

Layout is channels_last (N, H, W, C) throughout; callers transpose
channels_first data before and after.
"""
from ..backend import get_array_module, kernels_for


def _window_slices(a, b, out_hw, strides):
    """Rows and columns of the padded image seen at kernel offset ``(a, b)``."""
    (oh, ow), (sh, sw) = out_hw, strides
    return slice(a, a + sh * (oh - 1) + 1, sh), slice(b, b + sw * (ow - 1) + 1, sw)


def pad_image(x, pads, pad_value=0.0):
    """Pad the H and W axes of an NHWC array by ``pads = ((top, bottom), (left, right))``.

    The pad value is what a padded cell means to the op: 0 adds nothing to a
    convolution or a sum, ``-inf`` never wins a max, ``+inf`` never wins a min.
    """
    (top, bottom), (left, right) = pads
    if top == bottom == left == right == 0:
        return x
    xp = get_array_module(x)
    return xp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)),
                  mode="constant", constant_values=pad_value)


def im2col(x, kernel_size, strides, pads, out_hw, pad_value=0.0):
    """Cut every window out of ``x``.

    x: (N, H, W, C). Returns col: (N, OH, OW, KH, KW, C).
    """
    xp = get_array_module(x)
    n, _, _, c = x.shape
    kh, kw = kernel_size
    oh, ow = out_hw
    fast = kernels_for(x)
    if fast is not None:  # the same copy as a kernel, without a padded temporary
        col = xp.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
        fast.im2col(xp.ascontiguousarray(x), kh, kw, *strides, pads[0][0], pads[1][0],
                    oh, ow, pad_value, col)
        return col
    xpad = pad_image(x, pads, pad_value)
    col = xp.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    for a in range(kh):
        for b in range(kw):
            rows, cols = _window_slices(a, b, out_hw, strides)
            col[:, :, :, a, b, :] = xpad[:, rows, cols, :]
    return col


def col2im(dcol, x_shape, kernel_size, strides, pads):
    """Add every window's entries back to the pixels they were cut from.

    dcol: (N, OH, OW, KH, KW, C); returns dx with ``x_shape`` (N, H, W, C).
    Gradient that lands on padding is dropped: padding is a constant.
    """
    xp = get_array_module(dcol)
    n, h, w, c = x_shape
    _, oh, ow, kh, kw, _ = dcol.shape
    (top, bottom), (left, right) = pads
    fast = kernels_for(dcol)
    if fast is not None:
        dx = xp.empty(x_shape, dtype=dcol.dtype)
        fast.col2im(xp.ascontiguousarray(dcol), *strides, top, left, dx)
        return dx
    dxpad = xp.zeros((n, h + top + bottom, w + left + right, c), dtype=dcol.dtype)
    for a in range(kh):
        for b in range(kw):
            rows, cols = _window_slices(a, b, (oh, ow), strides)
            # Different offsets (a, b) hit the same pixel when windows overlap:
            # '+=' over whole slices accumulates them one offset at a time.
            dxpad[:, rows, cols, :] += dcol[:, :, :, a, b, :]
    return dxpad[:, top:top + h, left:left + w, :]
