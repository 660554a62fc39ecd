"""The kernels as the plainest Python loops: the ``reference`` backend.

``mc.backend.set_backend("reference")`` makes every op call these instead of the
compiled numba loops or the CUDA kernels: the same functions with the same arguments
(see ``minicnn.kernels``), each written as the definition it computes, one Python
step per value, with no fast path and no trick. A tiny network runs on them so a
learner can compare its numbers with the fast backends' (they agree to float
rounding; the tests check it) and its time (this is slow by design: thousands of
times slower than numba). Matrix products stay NumPy's ``@``: im2col turns a
convolution into one, and the loops here are everything around it.
"""
import math

import numpy as np

# only im2col + GEMM, one pass per step: the answers every such set gives
from .im2col_only import (NORMALIZATION_DTYPES, SPLIT_BATCH_ON_THREADS,  # noqa: F401
                          direct_conv_suits, serial_only, winograd_suits)

LINEAR, RELU, TANH = 0, 1, 2
EPILOGUE_DTYPES = ADAM_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _inside(r, q, h, w):
    return 0 <= r < h and 0 <= q < w


def _window_cells(n, oh, ow, kh, kw, sh, sw, top, left):
    """Every (image s, window (i, j), cell (a, b)) with the pixel (r, q) under it."""
    for s, i, j, a, b in np.ndindex(n, oh, ow, kh, kw):
        yield s, i, j, a, b, i * sh + a - top, j * sw + b - left


def im2col(x, kh, kw, sh, sw, top, left, oh, ow, pad_value, col):
    """col[s, i, j, a, b, ch] = x[s, i*sh + a - top, j*sw + b - left, ch], or pad_value
    where that pixel is outside the image."""
    n, h, w, c = x.shape
    for s, i, j, a, b, r, q in _window_cells(n, oh, ow, kh, kw, sh, sw, top, left):
        for ch in range(c):
            col[s, i, j, a, b, ch] = x[s, r, q, ch] if _inside(r, q, h, w) else pad_value


def col2im(dcol, sh, sw, top, left, dx):
    """The adjoint of im2col: every window entry is added to the pixel it came from."""
    n, oh, ow, kh, kw, c = dcol.shape
    _, h, w, _ = dx.shape
    dx[...] = 0
    for s, i, j, a, b, r, q in _window_cells(n, oh, ow, kh, kw, sh, sw, top, left):
        if _inside(r, q, h, w):
            for ch in range(c):
                dx[s, r, q, ch] += dcol[s, i, j, a, b, ch]


def extreme_pool_forward(x, kh, kw, sh, sw, top, left, take_max, y, winner):
    """Max (or min) over each window, visiting its cells in row-major order; padding
    reads as -inf (+inf). A cell wins when it beats the best so far (so ties keep the
    first) or is the first NaN. ``winner`` is the pixel number r*w + q of the winning
    cell, -1 for a padding cell."""
    n, h, w, c = x.shape
    _, oh, ow, _ = y.shape
    pad = -math.inf if take_max else math.inf
    for s, i, j, ch in np.ndindex(y.shape):
        best, code = None, -1
        for a, b in np.ndindex(kh, kw):
            r, q = i * sh + a - top, j * sw + b - left
            v = x[s, r, q, ch] if _inside(r, q, h, w) else pad
            if best is None:
                wins = True
            elif v != v:                      # NaN: the first one wins
                wins = best == best
            else:
                wins = v > best if take_max else v < best
            if wins:
                best, code = v, (r * w + q if _inside(r, q, h, w) else -1)
        y[s, i, j, ch] = best
        winner[s, i, j, ch] = code


def extreme_pool_backward(dy, winner, kh, kw, sh, sw, top, left, dx):
    """Each window's gradient goes to its winning pixel (none for padding)."""
    w = dx.shape[2]
    dx[...] = 0
    for s, i, j, ch in np.ndindex(dy.shape):
        k = winner[s, i, j, ch]
        if k >= 0:
            dx[s, k // w, k % w, ch] += dy[s, i, j, ch]


def _real_cells(i, j, kh, kw, sh, sw, top, left, h, w):
    return [(r, q) for r in range(i * sh - top, i * sh - top + kh)
            for q in range(j * sw - left, j * sw - left + kw) if _inside(r, q, h, w)]


def avg_pool_forward(x, kh, kw, sh, sw, top, left, y):
    """The mean of each window's real (unpadded) cells."""
    _, h, w, _ = x.shape
    for s, i, j, ch in np.ndindex(y.shape):
        cells = _real_cells(i, j, kh, kw, sh, sw, top, left, h, w)
        y[s, i, j, ch] = sum(x[s, r, q, ch] for r, q in cells) / len(cells)


def avg_pool_backward(dy, kh, kw, sh, sw, top, left, dx):
    """Every real cell of a window receives the window's gradient / its cell count."""
    _, h, w, _ = dx.shape
    dx[...] = 0
    for s, i, j, ch in np.ndindex(dy.shape):
        cells = _real_cells(i, j, kh, kw, sh, sw, top, left, h, w)
        for r, q in cells:
            dx[s, r, q, ch] += dy[s, i, j, ch] / len(cells)


def _activate(v, kind):
    if kind == RELU:
        return v if not v < 0 else v.dtype.type(0)   # NaN passes through, as np.maximum
    if kind == TANH:
        return np.tanh(v)
    return v


def bias_activation(z, bias, kind):
    """z[t] = activation(z[t] + bias[t % len(bias)]) in place over a flat array (no
    bias when ``bias`` is empty)."""
    for t in range(z.size):
        v = z[t] + bias[t % bias.size] if bias.size else z[t]
        z[t] = _activate(v, kind)


def activation_gradient(dy, saved, kind, dz):
    """dz = dy * activation'(z) from the activation's output: relu' = [y > 0],
    tanh' = 1 - y**2."""
    if not saved.size == dz.size == dy.size:
        raise ValueError(f"activation_gradient: dy, saved and dz must have the same length. "
                         f"Received: {dy.size}, {saved.size}, {dz.size}")
    for t in range(dy.size):
        s = saved[t]
        dz[t] = (dy[t] if s > 0 else 0) if kind == RELU else dy[t] * (1 - s * s)


def adam_update(w, g, m, v, one_minus_beta_1, one_minus_beta_2, alpha, epsilon):
    """Keras's Adam step for each value, in the arrays' own precision."""
    if not g.size == m.size == v.size == w.size:
        raise ValueError(f"adam_update: w, g, m and v must have the same length. Received: "
                         f"{w.size}, {g.size}, {m.size}, {v.size}")
    for t in range(w.size):
        m[t] = m[t] + one_minus_beta_1 * (g[t] - m[t])
        v[t] = v[t] + one_minus_beta_2 * (g[t] * g[t] - v[t])
        w[t] = w[t] - alpha * m[t] / (np.sqrt(v[t]) + epsilon)
