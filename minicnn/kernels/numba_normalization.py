"""Numba kernels of BatchNormalization and Dropout (``minicnn.ops.batchnorm``,
``minicnn.ops.dropout``): each a few passes over the activations where the array code
makes twenty.

All work on channels-last float32 arrays seen as one flat row: value ``i`` belongs to
channel ``i % C``. Per-channel vectors come *tiled*, repeated to ``T`` values (a
multiple of C of a few hundred, ``tiled``), so every inner loop runs over ``T``
contiguous values and vectorises, where a loop over the channels alone (16 of them)
would not -- the trick of the bias epilogue in ``numba_cpu``.

Batch normalization, training, in two passes forward and two backward:

    forward   1. per channel sum(x) and sum(x*x), in float64        (reads x)
              2. y = (x - mean) * scale + beta   [then relu]         (reads x, writes y)
                 scale = gamma / sqrt(var + eps)
    backward  1. per channel sum(dy) and sum(dy * (x - mean)), float64  (reads dy, x)
              2. dx = a * dy + b * (x - mean) + c                    (reads dy, x, writes dx)

The sums are taken in chunks of SUM_CHUNK rows (of T values) into one partial row per
chunk, then the partials are added in chunk order: the chunks are fixed by the array's
size alone, so the serial and the parallel compilation give the same bits. The
variance is E[x^2] - E[x]^2 of float64 sums of float32 values: its rounding error is
about 1e-16 * mean^2 / var relative, negligible until |mean| / std passes ~1e6.
With a fused relu the backward passes recompute ``(x - mean) * scale + beta > 0``
(the forward's own float32 expression, so the same signs) instead of keeping y.

Dropout's keep mask is a function of the value's index and a per-step key: a 32-bit
integer hash (``mix32``, two rounds), kept where the hash is at least
``rate * 2**32``. Nothing random is drawn per value and nothing is stored: the
backward pass recomputes the mask, and the two halves of a two-thread step compute
their rows' part of the one mask of the whole batch. ``minicnn.ops.dropout`` computes
the same hash with array operations, so every backend draws the same masks.
"""
import numpy as np
from numba import njit, prange

from .numba_launch import parallel_when_large

NORMALIZATION_DTYPES = (np.dtype(np.float32),)
SUM_CHUNK = 64  # rows of T values per partial sum


# ---------------------------------------------------------------------------------
# batch normalization
# ---------------------------------------------------------------------------------
@parallel_when_large
def channel_sums(x, dy, mean, center, scale, shift, partial):
    """partial[k] = the sums over chunk k of the flat rows of T values, (2, T) float64.

    Forward (``dy`` empty): partial[k, 0] = sum x, partial[k, 1] = sum x*x.
    Backward: partial[k, 0] = sum g, partial[k, 1] = sum g * (x - mean) (``mean``
    float64, tiled), where g is dy -- or, with ``scale`` non-empty, dy where
    (x - center) * scale + shift > 0: the gradient through a relu that followed the
    normalization, decided by the forward pass's own expression."""
    t = partial.shape[2]
    n = x.size
    backward = dy.size > 0
    relu = scale.size > 0
    for k in prange(partial.shape[0]):
        s = partial[k, 0]
        q = partial[k, 1]
        for p in range(t):
            s[p] = 0.0
            q[p] = 0.0
        for r in range(k * SUM_CHUNK, (k + 1) * SUM_CHUNK):
            start = r * t
            if start >= n:
                break
            width = min(t, n - start)
            xs = x[start:]  # rows indexed from 0: no wrap-around test (see numba_cpu)
            if not backward:
                for p in range(width):
                    v = np.float64(xs[p])
                    s[p] += v
                    q[p] += v * v
            else:
                gs = dy[start:]
                for p in range(width):
                    xi = xs[p]
                    g = np.float64(gs[p])
                    if relu and not (xi - center[p]) * scale[p] + shift[p] > 0:
                        g = 0.0
                    s[p] += g
                    q[p] += g * (np.float64(xi) - mean[p])


@parallel_when_large
def scale_shift(x, center, scale, shift, relu, y):
    """y = (x - center) * scale + shift per channel, then max(., 0) when ``relu``
    (NaN passes through), over flat float32 arrays with tiled vectors."""
    t = scale.size
    n = x.size
    for r in prange((n + t - 1) // t):
        start = r * t
        xs, ys = x[start:], y[start:]
        for p in range(min(t, n - start)):
            v = (xs[p] - center[p]) * scale[p] + shift[p]
            if relu and v < 0:
                v = np.float32(0)
            ys[p] = v


@parallel_when_large
def normalization_input_gradient(dy, x, a, b, c, center, scale, shift, dx):
    """dx = a * g + b * (x - center) + c per channel (tiled float32 vectors), where g
    is dy -- or, with ``scale`` non-empty, dy where (x - center) * scale + shift > 0."""
    t = a.size
    n = x.size
    relu = scale.size > 0
    for r in prange((n + t - 1) // t):
        start = r * t
        xs, gs, ds = x[start:], dy[start:], dx[start:]
        for p in range(min(t, n - start)):
            xi = xs[p]
            g = gs[p]
            if relu and not (xi - center[p]) * scale[p] + shift[p] > 0:
                g = np.float32(0)
            ds[p] = a[p] * g + b[p] * (xi - center[p]) + c[p]


# ---------------------------------------------------------------------------------
# dropout
# ---------------------------------------------------------------------------------
@njit(inline="always")
def mix32(h):
    """A bijective 32-bit integer hash ("lowbias32": xor-shift, multiply, twice), in
    uint32 arithmetic (every product wraps modulo 2**32, and vectorises as such)."""
    h = np.uint32(h ^ (h >> np.uint32(16)))
    h = np.uint32(h * np.uint32(0x7FEB352D))
    h = np.uint32(h ^ (h >> np.uint32(15)))
    h = np.uint32(h * np.uint32(0x846CA68B))
    return np.uint32(h ^ (h >> np.uint32(16)))


@njit(inline="always")
def keeps(index, key0, key1, threshold):
    """Whether dropout keeps value ``index`` (its index in the whole batch)."""
    low = np.uint32(np.uint64(index) & np.uint64(0xFFFFFFFF))
    high = np.uint32(np.uint64(index) >> np.uint64(32))
    h = mix32(np.uint32(low + key0))
    return mix32(np.uint32(h ^ key1 ^ high)) >= threshold


@parallel_when_large
def dropout_apply(x, offset, key0, key1, threshold, scale, y):
    """y[i] = x[i] * scale where the mask keeps value offset + i, else 0: the forward
    pass (x the input) and the backward pass (x the upstream gradient) alike.
    key0, key1 and threshold are uint32."""
    n = x.size
    block = 4096
    for k in prange((n + block - 1) // block):
        start = k * block
        xs, ys = x[start:], y[start:]  # indexed from 0: no wrap-around test (see numba_cpu)
        for i in range(min(block, n - start)):
            ys[i] = xs[i] * scale if keeps(offset + start + i, key0, key1, threshold) \
                else np.float32(0)
