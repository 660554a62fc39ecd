"""Sums over the rows of tall, narrow matrices: the bias and batch-norm gradients."""
from ..backend import get_array_module


def column_sums(a):
    """``a.sum(axis=0)`` of a tall, narrow matrix as a vector-matrix product: BLAS does
    it about 20x faster than NumPy's reduction for the (N*OH*OW, F) gradients of
    conv, dense and batch norm."""
    xp = get_array_module(a)
    return xp.ones(a.shape[0], dtype=a.dtype) @ a
