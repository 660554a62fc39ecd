"""Sums over the rows of tall, narrow matrices: the bias and batch-norm gradients."""
from ..backend import get_array_module
from .products import matmul


def column_sums(a):
    """``a.sum(axis=0)`` of a tall, narrow matrix as a vector-matrix product: BLAS does
    it about 20x faster than NumPy's reduction for the (N*OH*OW, F) gradients of
    conv, dense and batch norm."""
    xp = get_array_module(a)
    return matmul(xp.ones(a.shape[0], dtype=a.dtype), a)


def bias_gradient(dz, channel_axis=-1):
    """dL/db for a bias added along ``channel_axis``: ``dz`` summed over every other axis."""
    xp = get_array_module(dz)
    axis = channel_axis % dz.ndim
    if axis != dz.ndim - 1:
        dz = xp.moveaxis(dz, axis, -1)
    return column_sums(dz.reshape(-1, dz.shape[-1]))
