"""Inverted dropout.

In training each unit is kept with probability ``1 - rate`` and the kept ones
are scaled by ``1 / (1 - rate)``, so the expected output equals the input and
inference needs no rescaling: at inference dropout is the identity.
Backward multiplies by the same scaled mask.

Which units are kept is a function of a ``key`` (two 32-bit numbers the layer draws
from its generator once per step) and of each unit's index ``i`` in the batch
(C order, counted from ``offset``):

    h = mix32(mix32(low32(i) + key0) ^ key1 ^ high32(i))      keep unit i  <=>  h >= rate * 2**32

where ``mix32`` is a bijective 32-bit hash (xor-shift, multiply, twice). A hash of
the index, not a stream of random numbers: nothing is stored for backward (the mask
is recomputed), any slice of the batch computes its part of the one mask (the two
halves of a two-thread step: ``offset``), and the array code below and the numba
kernel (``minicnn.kernels.numba_normalization``) give the same masks, so a seed
draws the same masks on every backend.
"""
import numpy as np

from ..backend import get_array_module, kernels_for

_MIX = (16, 0x7FEB352D, 15, 0x846CA68B, 16)


def keep_threshold(rate):
    """The hash value from which a unit is kept: P(keep) = 1 - rate (to 2**-32)."""
    return min(int(rate * 2.0**32), 2**32 - 1)


def _mix32(h, xp):
    """``mix32`` on a uint32 array (products wrap modulo 2**32, as the kernel's)."""
    h ^= h >> 16
    h *= xp.uint32(_MIX[1])
    h ^= h >> 15
    h *= xp.uint32(_MIX[3])
    h ^= h >> 16
    return h


def keep_mask(shape, key, rate, offset=0, xp=np):
    """The boolean keep mask of the units ``offset .. offset + prod(shape)``."""
    size = int(np.prod(shape))
    index = xp.arange(offset, offset + size, dtype=xp.uint64)
    low = (index & 0xFFFFFFFF).astype(xp.uint32)
    high = (index >> 32).astype(xp.uint32)
    h = _mix32(low + xp.uint32(key[0]), xp)  # uint32 addition wraps
    h = _mix32(h ^ xp.uint32(key[1]) ^ high, xp)
    return (h >= xp.uint32(keep_threshold(rate))).reshape(shape)


def _apply(x, rate, key, offset):
    """x * mask / (1 - rate): the forward pass on x, the backward pass on dy."""
    scale = x.dtype.type(1.0 / (1.0 - rate))
    fast = kernels_for(x)
    if fast is not None and x.dtype in fast.NORMALIZATION_DTYPES and x.flags.c_contiguous:
        y = np.empty_like(x)
        fast.dropout_apply(x.reshape(-1), offset, np.uint32(key[0]), np.uint32(key[1]),
                           np.uint32(keep_threshold(rate)), scale, y.reshape(-1))
        return y
    xp = get_array_module(x)
    return xp.where(keep_mask(x.shape, key, rate, offset, xp), x * scale, x.dtype.type(0))


def dropout_forward(x, rate, key=None, offset=0):
    """``key``: the step's two 32-bit numbers, or None for the identity (inference).
    ``offset``: the index of x's first unit in the whole batch. Returns ``(y, cache)``."""
    if key is None or rate == 0:
        return x, None
    return _apply(x, rate, key, offset), (rate, key, offset)


def dropout_backward(dy, cache):
    return dy if cache is None else _apply(dy, *cache)
