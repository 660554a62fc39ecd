"""Numba CPU kernels of the affine resampling behind RandomTranslation,
RandomRotation and RandomZoom (``minicnn.ops.augment``), for the ``numba`` backend.

Each output pixel (i, j) of image s reads the input at the point

    row = (i * b1 + j * b0) + b2,    col = (i * a1 + j * a0) + a2

(Keras's 8-number transform ``[a0, a1, a2, b0, b1, b2, c0, c1]``, computed in
float32 in this order, as Keras on JAX does), and the kernels compute exactly what
the array code of ``minicnn.ops.augment`` computes, pixel for pixel:

- ``order=0`` (nearest): the point rounded half away from zero;
- ``order=1`` (bilinear): the four neighbours ``floor`` and ``floor + 1`` on each
  axis with weights ``(1 - f) (1 - g)``, ``(1 - f) g``, ``f (1 - g)``, ``f g``,
  summed in that order;
- an index outside the image is moved back in by the fill mode (reflect, wrap,
  nearest), or, with ``constant``, reads ``cval``.

``affine_sample_adjoint`` is the transpose: every ``dy`` value is sent back, with
the same weight, to the input pixels it was read from (constant-mode reads of
``cval`` send nothing). It accumulates, so it runs over images (``prange``), each of
which owns its own slice of ``dx``.
"""
import numpy as np
from numba import njit, prange

from .numba_launch import parallel_when_large

# fill modes, as the ops pass them (minicnn.ops.augment.FILL_MODES order)
REFLECT, WRAP, CONSTANT, NEAREST = 0, 1, 2, 3


@njit(cache=True, nogil=True)
def fix_index(index, size, mode):
    """``index`` moved into ``[0, size)`` by the fill mode; -1 for a constant-mode
    index outside (it reads the fill value)."""
    if 0 <= index < size:
        return index
    if mode == REFLECT:    # d c b a | a b c d | d c b a: period 2 * size
        r = index % (2 * size)
        return r if r < size else 2 * size - 1 - r
    if mode == WRAP:       # a b c d | a b c d | a b c d
        return index % size
    if mode == NEAREST:    # a a a a | a b c d | d d d d
        return 0 if index < 0 else size - 1
    return -1


@njit(cache=True, nogil=True)
def _round_half_away(v):
    """Round a float32 value half away from zero (in float64, where +0.5 is exact)."""
    d = np.float64(v)
    return int(np.floor(d + 0.5)) if d >= 0 else -int(np.floor(0.5 - d))


@njit(cache=True, nogil=True)
def _linear(v, size, mode):
    """Bilinear taps on one axis: (index0, index1, weight0, weight1), indices fixed."""
    v0 = np.floor(v)
    f = v - v0                               # float32, exact
    k = int(v0)
    if 0 <= k and k + 1 < size:
        return k, k + 1, np.float32(1.0) - f, f
    return fix_index(k, size, mode), fix_index(k + 1, size, mode), np.float32(1.0) - f, f


@njit(inline="always")
def _source(t, s, i, j):
    """Output (i, j)'s source point in image s: (row, col), float32, in Keras's order."""
    fi, fj = np.float32(i), np.float32(j)
    return (fi * t[s, 4] + fj * t[s, 3]) + t[s, 5], (fi * t[s, 1] + fj * t[s, 0]) + t[s, 2]


@parallel_when_large
def affine_sample(x, t, order, mode, cval, y):
    """y[s, i, j, :] = the interpolated value of x[s] at output (i, j)'s source point."""
    n, h, w, c = x.shape
    fill = y.dtype.type(cval)
    for s in prange(n):
        for i in range(h):
            for j in range(w):
                r, q = _source(t, s, i, j)
                if order == 0:
                    p = fix_index(_round_half_away(r), h, mode)
                    u = fix_index(_round_half_away(q), w, mode)
                    for ch in range(c):
                        y[s, i, j, ch] = fill if p < 0 or u < 0 else x[s, p, u, ch]
                    continue
                p0, p1, wr0, wr1 = _linear(r, h, mode)
                u0, u1, wc0, wc1 = _linear(q, w, mode)
                w00, w01, w10, w11 = wr0 * wc0, wr0 * wc1, wr1 * wc0, wr1 * wc1
                for ch in range(c):
                    v00 = fill if p0 < 0 or u0 < 0 else x[s, p0, u0, ch]
                    v01 = fill if p0 < 0 or u1 < 0 else x[s, p0, u1, ch]
                    v10 = fill if p1 < 0 or u0 < 0 else x[s, p1, u0, ch]
                    v11 = fill if p1 < 0 or u1 < 0 else x[s, p1, u1, ch]
                    y[s, i, j, ch] = ((w00 * v00 + w01 * v01) + w10 * v10) + w11 * v11


@parallel_when_large
def affine_sample_adjoint(dy, t, order, mode, dx):
    """dx[s, p, q, :] += weight * dy[s, i, j, :] for every read of pixel (p, q) by
    output (i, j); ``dx`` must hold zeros on entry."""
    n, h, w, c = dx.shape
    for s in prange(n):
        for i in range(h):
            for j in range(w):
                r, q = _source(t, s, i, j)
                if order == 0:
                    p = fix_index(_round_half_away(r), h, mode)
                    u = fix_index(_round_half_away(q), w, mode)
                    if p >= 0 and u >= 0:
                        for ch in range(c):
                            dx[s, p, u, ch] += dy[s, i, j, ch]
                    continue
                p0, p1, wr0, wr1 = _linear(r, h, mode)
                u0, u1, wc0, wc1 = _linear(q, w, mode)
                w00, w01, w10, w11 = wr0 * wc0, wr0 * wc1, wr1 * wc0, wr1 * wc1
                ok00, ok01 = p0 >= 0 and u0 >= 0, p0 >= 0 and u1 >= 0
                ok10, ok11 = p1 >= 0 and u0 >= 0, p1 >= 0 and u1 >= 0
                for ch in range(c):
                    g = dy[s, i, j, ch]
                    if ok00:
                        dx[s, p0, u0, ch] += w00 * g
                    if ok01:
                        dx[s, p0, u1, ch] += w01 * g
                    if ok10:
                        dx[s, p1, u0, ch] += w10 * g
                    if ok11:
                        dx[s, p1, u1, ch] += w11 * g
