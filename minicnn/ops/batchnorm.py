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
"""
from ..backend import get_array_module, to_host
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
                      epsilon=1e-3, training=False, sum_over_ranks=None):
    """Returns ``(y, cache, (new_moving_mean, new_moving_var))``.

    gamma/beta may be None (``scale=False`` / ``center=False``). The moving
    statistics are returned, not changed in place: in inference they come back
    unchanged. ``sum_over_ranks``: see the module docstring (None: this process).
    """
    xp = get_array_module(x)
    axes, shape = _layout(x, axis)
    total = sum_over_ranks or _own
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
    cache = (xhat, inv_std, gamma, beta is not None, axes, shape, m, training, total)
    return y.astype(x.dtype, copy=False), cache, new_stats


def batchnorm_backward(dy, cache):
    """Returns ``(dx, dgamma, dbeta)``; dgamma/dbeta are None when absent."""
    xhat, inv_std, gamma, has_beta, axes, shape, m, training, total = cache
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
