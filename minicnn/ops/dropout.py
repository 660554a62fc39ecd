"""Inverted dropout.

In training each unit is kept with probability ``1 - rate`` and the kept ones
are scaled by ``1 / (1 - rate)``, so the expected output equals the input and
inference needs no rescaling: at inference dropout is the identity.
Backward multiplies by the same scaled mask.
"""


def dropout_forward(x, rate, keep_mask=None):
    """``keep_mask`` is a boolean array shaped like ``x`` (True = keep), or None
    for the identity (inference, or rate 0). Returns ``(y, cache)``."""
    if keep_mask is None or rate == 0:
        return x, None
    scale = (keep_mask / (1.0 - rate)).astype(x.dtype)
    return x * scale, scale


def dropout_backward(dy, cache):
    return dy if cache is None else dy * cache
