"""Batch normalization over every axis except the channel (feature) axis.

Training, with the statistics of the batch (``m`` = number of values per channel):

    mu = mean(x)          var = mean((x - mu)**2)      (biased: divided by m)
    xhat = (x - mu) / sqrt(var + eps)                y = gamma * xhat + beta
    moving_mean <- momentum * moving_mean + (1 - momentum) * mu       (same for var)

Inference uses the moving statistics in place of ``mu`` and ``var``.

Backward in training must follow the gradient through ``mu`` and ``var`` too,
because both depend on every x. Collecting the terms gives the compact form

    dbeta = sum(dy)     dgamma = sum(dy * xhat)
    dx = gamma / sqrt(var + eps) * (dy - dbeta / m - xhat * dgamma / m)

In inference mu and var are constants and ``dx = dy * gamma / sqrt(var + eps)``.

Synchronized over the ranks of a data-parallel run (``sum_over_ranks``: a function that
adds a vector over the ranks), the batch is every rank's rows together: ``m``, the sums
behind ``mu`` and ``var``, and ``dbeta`` / ``dgamma`` inside ``dx`` are the ranks'
totals, so P ranks of B rows compute what one process computes on P*B rows. The
gradients returned for gamma and beta stay this rank's own: the optimizer averages
them over the ranks like every other gradient.

``relu=True`` applies a relu to y as well (a graph folds an ``Activation("relu")``
that follows batch normalization into it: ``minicnn.network``), and backward takes
the gradient back through it first.

The numba backend computes the same in four passes over the activations
(``minicnn.kernels.numba_normalization``): forward, the per-channel sums of x and x*x
in float64 and then ``y = (x - mu) * (gamma / sqrt(var + eps)) + beta``; backward, the
sums of dy and dy * (x - mu) and then dx from per-channel coefficients. The array code
below makes about twenty passes; both compute the formulas above.
"""
import numpy as np

from ..backend import get_array_module, kernels_for, to_host
from .sums import column_sums


def _layout(x, axis):
    """The reduction axes and the shape that broadcasts per-channel vectors."""
    axis = axis % x.ndim
    axes = tuple(i for i in range(x.ndim) if i != axis)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    return axes, tuple(shape)


def _channel_sums(a, axes, shape):
    """Sums over every axis but the channel axis, as a vector of channels. With the
    channels last (the usual layout) that is a sum over the rows of an (M, C) matrix,
    which a BLAS vector-matrix product does far faster than NumPy's reduction."""
    if shape[-1] != 1 and axes == tuple(range(a.ndim - 1)):
        return column_sums(a.reshape(-1, shape[-1]))
    return a.sum(axis=axes)


def _own(vector):
    return vector


def batchnorm_forward(x, gamma, beta, moving_mean, moving_var, axis=-1, momentum=0.99,
                      epsilon=1e-3, training=False, sum_over_ranks=None, relu=False):
    """Returns ``(y, cache, (new_moving_mean, new_moving_var))``.

    gamma/beta may be None (``scale=False`` / ``center=False``). The moving
    statistics are returned, not changed in place: in inference they come back
    unchanged. ``sum_over_ranks``: see the module docstring (None: this process).
    ``relu``: y = max(batch norm of x, 0).
    """
    xp = get_array_module(x)
    total = sum_over_ranks or _own
    fast = _kernels(x, axis, gamma, beta, moving_mean, moving_var)
    if fast is not None:
        return _forward_kernels(fast, x, gamma, beta, moving_mean, moving_var, momentum,
                                epsilon, training, total, relu)
    axes, shape = _layout(x, axis)
    m = x.size // x.shape[axis % x.ndim]
    if training:
        if sum_over_ranks is not None:  # every rank's rows count
            m = int(round(float(to_host(total(xp.asarray([m], dtype="float64")))[0])))
        mu = (total(_channel_sums(x, axes, shape)) / m).reshape(shape)
        var = (total(_channel_sums((x - mu) ** 2, axes, shape)) / m).reshape(shape)
        new_stats = (momentum * moving_mean + (1 - momentum) * mu.reshape(-1),
                     momentum * moving_var + (1 - momentum) * var.reshape(-1))
    else:
        mu, var = moving_mean.reshape(shape), moving_var.reshape(shape)
        new_stats = (moving_mean, moving_var)
    inv_std = 1.0 / xp.sqrt(var + epsilon)
    xhat = (x - mu) * inv_std
    y = xhat if gamma is None else xhat * gamma.reshape(shape)
    if beta is not None:
        y = y + beta.reshape(shape)
    if relu:
        y = xp.maximum(y, 0)
    cache = (xhat, inv_std, gamma, beta is not None, axes, shape, m, training, total,
             y if relu else None)
    return y.astype(x.dtype, copy=False), cache, new_stats


def relu_applied(cache):
    """Whether the forward pass that made ``cache`` applied the relu (``relu=True``)."""
    return cache.relu if isinstance(cache, _KernelCache) else cache[-1] is not None


def batchnorm_backward(dy, cache):
    """Returns ``(dx, dgamma, dbeta)``; dgamma/dbeta are None when absent."""
    if isinstance(cache, _KernelCache):
        return _backward_kernels(dy, cache)
    xhat, inv_std, gamma, has_beta, axes, shape, m, training, total, relu_out = cache
    if relu_out is not None:  # back through the relu: zero where it cut
        dy = dy * (relu_out > 0)
    dbeta = _channel_sums(dy, axes, shape)
    dgamma = _channel_sums(dy * xhat, axes, shape)
    g = inv_std if gamma is None else gamma.reshape(shape) * inv_std
    if training:
        all_dbeta, all_dgamma = total(dbeta), total(dgamma)  # this rank's, unless synchronized
        dx = g * (dy - all_dbeta.reshape(shape) / m - xhat * all_dgamma.reshape(shape) / m)
    else:
        dx = g * dy
    return (dx.astype(dy.dtype, copy=False),
            None if gamma is None else dgamma,
            dbeta if has_beta else None)


# ---------------------------------------------------------------------------------
# the kernel path: channels last, float32, numba (minicnn.kernels.numba_normalization)
# ---------------------------------------------------------------------------------
def _kernels(x, axis, *vectors):
    """The kernel set that normalizes ``x`` along its last axis, or None."""
    fast = kernels_for(x, *[v for v in vectors if v is not None])
    if (fast is None or x.dtype not in fast.NORMALIZATION_DTYPES or axis % x.ndim != x.ndim - 1
            or not x.flags.c_contiguous or x.size == 0
            or any(v is not None and v.dtype != x.dtype for v in vectors)):
        return None
    return fast


def _tile_width(channels):
    """The kernels' row: the channels repeated to about 256 values (see the kernels)."""
    return channels * max(1, -(-256 // channels))


def _tiled(vector, dtype):
    """A per-channel vector repeated to one kernel row."""
    reps = _tile_width(vector.size) // vector.size
    return np.ascontiguousarray(np.tile(np.asarray(vector, dtype=dtype), reps))


def _channel_sums_kernel(fast, x, channels, dy=None, mean=None, relu=None):
    """The kernels' two float64 sums per channel, as a (2, C) array (see channel_sums)."""
    t = _tile_width(channels)
    chunks = -(-(-(-x.size // t)) // fast.SUM_CHUNK)
    partial = np.empty((chunks, 2, t))
    empty32, empty64 = np.empty(0, np.float32), np.empty(0, np.float64)
    fast.channel_sums(x.reshape(-1), empty32 if dy is None else dy.reshape(-1),
                      empty64 if mean is None else _tiled(mean, np.float64),
                      *(relu or (empty32,) * 3), partial)
    return partial.sum(axis=0).reshape(2, t // channels, channels).sum(axis=1)


class _KernelCache:
    """What the kernel path's backward needs: x itself (no x-hat is stored), the
    statistics used and the forward's float32 scale vectors."""
    def __init__(self, **fields):
        self.__dict__.update(fields)


def _forward_kernels(fast, x, gamma, beta, moving_mean, moving_var, momentum, epsilon,
                     training, total, relu=False):
    channels = x.shape[-1]
    m = x.size // channels
    if training:
        sums = _channel_sums_kernel(fast, x, channels)
        if total is not _own:  # one exchange: both sums and the rows
            packed = total(np.concatenate([sums.reshape(-1), [m]]))
            sums, m = packed[:-1].reshape(2, channels), int(round(packed[-1]))
        mean = sums[0] / m
        var = np.maximum(sums[1] / m - mean * mean, 0.0)
        new_stats = ((momentum * moving_mean + (1 - momentum) * mean).astype(moving_mean.dtype),
                     (momentum * moving_var + (1 - momentum) * var).astype(moving_var.dtype))
    else:
        mean, var = moving_mean.astype(np.float64), moving_var.astype(np.float64)
        new_stats = (moving_mean, moving_var)
    inv_std = 1.0 / np.sqrt(var + epsilon)
    scale = inv_std if gamma is None else gamma * inv_std
    vectors = (_tiled(mean, np.float32), _tiled(scale, np.float32),
               _tiled(np.zeros(channels) if beta is None else beta, np.float32))
    y = np.empty_like(x)
    fast.scale_shift(x.reshape(-1), *vectors, relu, y.reshape(-1))
    cache = _KernelCache(x=x, mean=mean, inv_std=inv_std, scale=scale, vectors=vectors,
                         relu=relu, has_gamma=gamma is not None, has_beta=beta is not None,
                         m=m, training=training, total=total, fast=fast)
    return y, cache, new_stats


def _backward_kernels(dy, cache):
    c, fast = cache, cache.fast
    channels = dy.shape[-1]
    relu = c.vectors if c.relu else None
    dbeta, centered = _channel_sums_kernel(fast, c.x, channels, dy, c.mean, relu)
    dgamma = centered * c.inv_std
    if c.training:
        packed = c.total(np.concatenate([dbeta, dgamma]))  # this rank's, unless synchronized
        all_dbeta, all_dgamma = packed[:channels], packed[channels:]
        b = -c.scale * c.inv_std * all_dgamma / c.m
        # dx = scale * (g - dbeta/m) + b * (x - mean); the kernel centres x on the
        # float32 mean, so the constant takes the difference
        const = -c.scale * all_dbeta / c.m + b * (c.vectors[0][:channels] - c.mean)
    else:
        b = const = np.zeros(channels)
    dx = np.empty_like(dy)
    empty = np.empty(0, np.float32)
    fast.normalization_input_gradient(
        dy.reshape(-1), c.x.reshape(-1), _tiled(c.scale, np.float32), _tiled(b, np.float32),
        _tiled(const, np.float32), *(relu or (c.vectors[0], empty, empty)), dx.reshape(-1))
    return (dx, dgamma.astype(dy.dtype) if c.has_gamma else None,
            dbeta.astype(dy.dtype) if c.has_beta else None)
