"""Dense (fully connected) and Flatten.

Dense acts on the last axis: ``y = x @ W + b`` with W of shape (in, units).
Backward, flattening the leading axes into rows:

    dx = dy @ W.T        dW = x.T @ dy   (summed over the batch)    db = sum(dy)
"""
import numpy as np

from ..backend import get_array_module
from .activations import bias_activation_forward
from .products import matmul
from .sums import bias_gradient


def dense_forward(x, w, b=None):
    """x: (..., in), w: (in, units), b: (units,) or None. Returns ``(y, cache)``."""
    get_array_module(x, w, b)  # a clear error if host and device arrays meet
    if x.shape[-1] != w.shape[0]:
        raise ValueError(f"dense: kernel expects {w.shape[0]} input features, input has "
                         f"{x.shape[-1]}. Received: x.shape={x.shape}, w.shape={w.shape}")
    y = matmul(x.reshape(-1, w.shape[0]), w).reshape(*x.shape[:-1], w.shape[1])
    if b is not None:  # the same bias add as the layers' epilogue
        y, _ = bias_activation_forward(y, b, "linear")
    return y, (x, w, b is not None)


def dense_backward(dy, cache):
    """Returns ``(dx, dw, db)``; db is None without bias."""
    x, w, has_bias = cache
    units = w.shape[1]
    dy2 = dy.reshape(-1, units)
    dw = matmul(x.reshape(-1, w.shape[0]).T, dy2)
    db = bias_gradient(dy2) if has_bias else None
    dx = matmul(dy2, w.T).reshape(x.shape)
    return dx, dw, db


def flatten_forward(x, data_format="channels_last"):
    """(N, ...) -> (N, prod(...)). channels_first input (N, C, ...) is first put in
    (N, ..., C) order, as Keras does, so the features come out in H, W, C order
    either way and Dense weights stay interchangeable."""
    channels_first = data_format == "channels_first" and x.ndim >= 3
    if channels_first:
        x = x.transpose(0, *range(2, x.ndim), 1)
    features = int(np.prod(x.shape[1:]))  # not -1: an empty batch has no size to infer from
    return x.reshape(x.shape[0], features), (x.shape, channels_first)


def flatten_backward(dy, cache):
    shape, channels_first = cache
    dx = dy.reshape(shape)
    if channels_first:
        dx = dx.transpose(0, dx.ndim - 1, *range(1, dx.ndim - 1))
    return dx
