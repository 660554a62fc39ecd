"""2-D convolution (cross-correlation, as in Keras) by im2col + one matrix product.

Forward, for an NHWC input ``x``, a kernel ``w`` of shape (KH, KW, C, F) and a bias ``b``:

    y[n, i, j, f] = b[f] + sum_{a, b', c} xpad[n, i*sh + a, j*sw + b', c] * w[a, b', c, f]

im2col lays the windows out as rows of a matrix ``X`` of shape (N*OH*OW, KH*KW*C);
with ``W`` = ``w`` reshaped to (KH*KW*C, F) the whole layer is ``Y = X @ W + b``.

Backward, given ``dY = dL/dY`` (N*OH*OW, F), the three gradients follow from
``Y = X @ W + b`` by the matrix chain rule:

    dW = X.T @ dY          (every window times the gradient of the output it made)
    db = dY summed over rows
    dX = dY @ W.T          (each output's gradient spread back over its window)

and col2im folds ``dX`` (one row per window) back onto the image, adding where
windows overlap and dropping what falls on padding.

A kernel set may convolve some layers directly from the image instead (see
``direct_conv_suits`` in ``minicnn.kernels.numba_cpu``: few channels and filters,
where the column matrix costs more than the product): the same sums, forward and
for dW, without the matrix; dX is still ``dY @ W.T`` folded by col2im. And 3x3
stride-1 layers with many channels may run as Winograd F(2x2, 3x3)
(``minicnn.ops.winograd``, chosen by ``winograd_suits``): 2.25x fewer
multiplications for the same sums.

The layer's epilogue -- ``y = activation(conv + b)`` -- is part of the op: one pass
after the product (``bias_activation_forward``), or none on the Winograd path, whose
output transform adds the bias and applies relu/tanh as it writes each output (and
whose gradient transform takes dy back through them as it reads it).
"""
from .. import backend
from ..backend import get_array_module, kernels_for
from ..shapes import normalize_data_format, normalize_padding, resolve_padding
from .activations import (EPILOGUE_KINDS, activation_backward, bias_activation_forward,
                          normalize_activation)
from .im2col import col2im, im2col
from .products import matmul
from .sums import bias_gradient
from .winograd import winograd_conv_backward, winograd_conv_forward

# Backward needs the im2col matrix again. Up to this size it is kept from the
# forward pass; above it, backward rebuilds it from x (the matrix is KH*KW/(SH*SW)
# times larger than x, so keeping it would multiply a large model's memory). The
# Winograd path keeps its transformed kernel U instead (16/9 the size of w).
KEEP_COLUMNS_UP_TO_BYTES = 64 * 2**20


def to_channels_last(x, data_format):
    return x.transpose(0, 2, 3, 1) if data_format == "channels_first" else x


def from_channels_last(y, data_format):
    return y.transpose(0, 3, 1, 2) if data_format == "channels_first" else y


def images_per_chunk(x, bytes_per_image):
    """How many of the images ``x``'s im2col rows fit in the im2col budget of the place
    ``x`` lives in (at least one): a large batch is convolved in chunks instead of one
    huge matrix."""
    return max(1, min(len(x), backend.im2col_budget(x) // max(bytes_per_image, 1)))


def fuses_epilogue(fast, dtype, activation):
    """Whether Winograd's transforms add the bias and apply the activation themselves
    (the kernel set's element-wise epilogue serves ``dtype`` and knows ``activation``)."""
    return dtype in fast.EPILOGUE_DTYPES and activation in EPILOGUE_KINDS


def conv2d_forward(x, w, b=None, strides=(1, 1), padding="valid", data_format="channels_last",
                   activation="linear"):
    """Convolve ``x`` with ``w`` (Keras layout (KH, KW, C, F)), add ``b`` and apply the
    element-wise ``activation`` (any name of ``ACTIVATIONS`` but softmax, which acts
    across an axis: a layer applies it after).

    x: (N, H, W, C) for channels_last, (N, C, H, W) for channels_first.
    Returns ``(y, cache)``; y is (N, OH, OW, F) or (N, F, OH, OW).
    """
    activation = normalize_activation(activation, "conv2d")
    if activation == "softmax":
        raise ValueError("conv2d: softmax normalises across an axis, not element by element; "
                         "apply it to the convolution's output (activation_forward)")
    padding = normalize_padding(padding)
    data_format = normalize_data_format(data_format)
    x = to_channels_last(x, data_format)
    xp = get_array_module(x, w, b)  # also: a clear error if host and device arrays meet
    n, h, wd, c = x.shape
    kh, kw, kc, f = w.shape
    if kc != c:
        raise ValueError(f"conv2d: kernel expects {kc} input channels, input has {c}. "
                         f"Received: x.shape={x.shape}, w.shape={w.shape}")
    pads, (oh, ow) = resolve_padding((h, wd), (kh, kw), strides, padding)
    if oh <= 0 or ow <= 0:
        raise ValueError(f"conv2d: a {kh}x{kw} kernel with padding '{padding}' does not fit an "
                         f"input of {h}x{wd}; the output would be empty")

    fast = kernels_for(x, w)
    kept, fused = None, False
    if fast is not None and fast.direct_conv_suits(c, f, kh, kw, *strides):
        x, path, chunk = xp.ascontiguousarray(x), "direct", None
        y = xp.empty((n, oh, ow, f), dtype=x.dtype)
        fast.direct_conv_forward(x, xp.ascontiguousarray(w), pads[0][0], pads[1][0], y)
    elif fast is not None and fast.winograd_suits(c, f, kh, kw, *strides):
        x, path = xp.ascontiguousarray(x), "winograd"
        per_image = fast.winograd_bytes_per_image(oh, ow, c, x.dtype.itemsize)
        # within the budget, and few enough images for their tiles to stay in L2
        chunk = min(images_per_chunk(x, per_image),
                    max(1, fast.WINOGRAD_CHUNK_BYTES // per_image))
        # the epilogue inside the output transform, where the kernel set has it
        fused = fuses_epilogue(fast, x.dtype, activation)
        kind = EPILOGUE_KINDS[activation] if fused else EPILOGUE_KINDS["linear"]
        bias = xp.zeros(f, x.dtype) if b is None or not fused else b.astype(x.dtype, copy=False)
        bias = xp.tile(bias, ow)  # along a whole output row
        y, kept = winograd_conv_forward(x, w, bias, kind, pads, (oh, ow), chunk, fast)
    else:
        path = "im2col"
        w2 = w.reshape(kh * kw * c, f)
        chunk = images_per_chunk(x, oh * ow * kh * kw * c * x.dtype.itemsize)
        if chunk >= n:  # the usual case: one im2col matrix, one product
            col = im2col(x, (kh, kw), strides, pads, (oh, ow)).reshape(-1, kh * kw * c)
            y = matmul(col, w2).reshape(n, oh, ow, f)
            kept = col if col.nbytes <= KEEP_COLUMNS_UP_TO_BYTES else None
        else:           # the matrix would exceed the budget: a few images at a time
            y = xp.empty((n, oh, ow, f), dtype=x.dtype)
            for start in range(0, n, chunk):
                part = slice(start, start + chunk)
                col = im2col(x[part], (kh, kw), strides, pads, (oh, ow)).reshape(-1, kh * kw * c)
                y[part] = matmul(col, w2).reshape(-1, oh, ow, f)
    if fused:  # relu's and tanh's derivatives need the output, as the epilogue keeps it
        act_cache = (activation, None if activation == "linear" else y)
    else:       # the epilogue: bias and activation in one pass where the backend can
        y, act_cache = bias_activation_forward(y, b, activation)
    cache = (x, kept, w, b is not None, strides, pads, (oh, ow), data_format, act_cache, fused,
             chunk, path)
    return from_channels_last(y, data_format), cache


def conv2d_backward(dy, cache, need_dx=True):
    """Gradients of ``sum(y * dy)``: returns ``(dx, dw, db)`` (db is None without bias;
    dx is None with ``need_dx=False``, which skips the dX product and col2im).

    ``dy`` is taken back through the activation first: dz = dy * activation'(...),
    the gradient of the convolution plus bias, which the formulas above take as dY.
    (Winograd with its epilogue fused does this inside its gradient transform.)"""
    (x, kept, w, has_bias, strides, pads, (oh, ow), data_format, act_cache, fused,
     chunk, path) = cache
    xp = get_array_module(x)
    dy = to_channels_last(dy, data_format)
    n, _, _, c = x.shape
    kh, kw, _, f = w.shape
    w2 = w.reshape(kh * kw * c, f)
    db = None
    if fused:  # Winograd's gradient transform takes dy back through the activation
        name, saved = act_cache
        kind = EPILOGUE_KINDS[name]
    else:      # dz: the gradient below the epilogue
        dy, kind, saved = activation_backward(dy, act_cache), EPILOGUE_KINDS["linear"], None
    if path == "winograd":  # forward ran Winograd's tiles: so does backward
        dy = xp.ascontiguousarray(dy)
        dx, dw, db = winograd_conv_backward(x, kept, dy if saved is None else saved, kind,
                                            dy, pads, chunk, kernels_for(x, dy), need_dx)
    elif path == "direct":  # forward convolved from the image: so does dW
        dy = xp.ascontiguousarray(dy)
        dw = xp.empty(w.shape, dtype=w.dtype)
        kernels_for(x, dy).direct_conv_weight_gradient(x, dy, pads[0][0], pads[1][0], dw)
        dx = None
        if need_dx:
            dcol = matmul(dy.reshape(-1, f), w2.T).reshape(n, oh, ow, kh, kw, c)
            dx = col2im(dcol, x.shape, (kh, kw), strides, pads)
    else:
        dw = None
        parts = []
        for start in range(0, n, chunk):  # one pass unless forward needed chunks
            part = slice(start, start + chunk)
            dy2 = dy[part].reshape(-1, f)
            col = kept if kept is not None else \
                im2col(x[part], (kh, kw), strides, pads, (oh, ow)).reshape(-1, kh * kw * c)
            # dW = X.T @ dY, computed as (dY.T @ X).T: the same product, which OpenBLAS
            # runs about 15% faster in this orientation for tall, narrow matrices
            dw_part = matmul(dy2.T, col).T
            dw = dw_part if dw is None else dw + dw_part
            if need_dx:
                dcol = matmul(dy2, w2.T).reshape(-1, oh, ow, kh, kw, c)
                parts.append(col2im(dcol, x[part].shape, (kh, kw), strides, pads))
        dx = (parts[0] if len(parts) == 1 else xp.concatenate(parts)) if need_dx else None
        dw = xp.ascontiguousarray(dw).reshape(w.shape)  # small; contiguous for the optimizer
    if not has_bias:
        db = None
    elif db is None:  # Winograd summed it from its tiles already
        db = bias_gradient(dy)
    return (from_channels_last(dx, data_format) if need_dx else None), dw, db


def conv2d_output_shape(in_hw, kernel_size, strides, padding):
    """(OH, OW) of a convolution; used by layers' ``compute_output_shape``."""
    return resolve_padding(in_hw, kernel_size, strides, padding)[1]
