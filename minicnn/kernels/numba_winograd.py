"""Numba kernels of the Winograd F(2x2, 3x3) convolution (``minicnn.ops.winograd``):
the four tile transforms around its sixteen matrix products.

Tiles: tile (ti, tj) of image s covers rows 2*ti .. 2*ti + 3 and columns
2*tj .. 2*tj + 3 of the zero-padded image and makes outputs 2*ti, 2*ti + 1 (rows)
by 2*tj, 2*tj + 1 (columns). Tile number t = (s * th + ti) * tw + tj. Transformed
arrays are (16, T, channels): entry k = 4 * a + b of every tile is one contiguous
(T, channels) matrix, which is what a product takes.

Layout is NHWC, so the innermost loops run over channels: contiguous, and LLVM
vectorises them. Every loop writes outputs no other iteration writes (the input
gradient, whose tiles overlap, is added in two passes of non-overlapping tile rows).
No sum runs across tiles or images, so the bits do not depend on the thread count.
"""
import numpy as np
from numba import prange

from .numba_activation import RELU, TANH, tanh32
from .numba_launch import parallel_when_large


@parallel_when_large
def winograd_input_transform(x, top, left, th, tw, v):
    """v[4a + b, t, c] = (B^T d B)[a, b] for the 4x4 tile d of channel c, with

        B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]].

    The column step B^T d runs along whole padded rows (one long loop per tile row),
    the row step per tile."""
    n, h, w, c = x.shape
    wp = (2 * tw + 2) * c
    for row in prange(n * th):
        s, ti = row // th, row % th
        pad = np.zeros((4, wp), dtype=x.dtype)
        for a in range(4):
            r = 2 * ti + a - top
            if 0 <= r < h:
                src = x[s, r].reshape(-1)
                dst = pad[a, left * c:]
                for p in range(min(w * c, wp - left * c)):
                    dst[p] = src[p]
        e = np.empty((4, wp), dtype=x.dtype)
        p0, p1, p2, p3 = pad[0], pad[1], pad[2], pad[3]
        e0, e1, e2, e3 = e[0], e[1], e[2], e[3]
        for p in range(wp):
            e0[p] = p0[p] - p2[p]
            e1[p] = p1[p] + p2[p]
            e2[p] = p2[p] - p1[p]
            e3[p] = p1[p] - p3[p]
        for tj in range(tw):
            t = row * tw + tj
            for a in range(4):
                q = e[a, 2 * tj * c:]
                v0, v1, v2, v3 = v[4 * a, t], v[4 * a + 1, t], v[4 * a + 2, t], v[4 * a + 3, t]
                for ch in range(c):
                    q0, q1, q2, q3 = q[ch], q[c + ch], q[2 * c + ch], q[3 * c + ch]
                    v0[ch] = q0 - q2
                    v1[ch] = q1 + q2
                    v2[ch] = q2 - q1
                    v3[ch] = q1 - q3


@parallel_when_large
def winograd_output_transform(m, th, tw, bias, kind, y):
    """y[s, 2ti + i, 2tj + j, f] = activation((A^T m A)[i, j] + b[f]) of tile
    (s, ti, tj), with

        A^T = [[1, 1, 1, 0], [0, 1, -1, -1]];

    outputs past the image's last row or column (odd sizes) are dropped. The layer's
    epilogue -- add the bias, apply the activation ``kind`` of ``numba_activation``
    -- runs over each output row as soon as its tiles are written, while the row is
    in L1: the same float operations in the same order as a separate pass over y,
    without that pass. ``bias`` is b repeated along the row (OW * F values: one long
    loop that vectorises, as in ``bias_activation``)."""
    n, oh, ow, f = y.shape
    for row in prange(n * th):
        s, ti = row // th, row % th
        r0 = np.empty((4, f), dtype=y.dtype)
        r1 = np.empty((4, f), dtype=y.dtype)
        for tj in range(tw):
            t = row * tw + tj
            for b in range(4):
                m0, m1, m2, m3 = m[b, t], m[4 + b, t], m[8 + b, t], m[12 + b, t]
                u0, u1 = r0[b], r1[b]
                for k in range(f):
                    u0[k] = m0[k] + m1[k] + m2[k]
                    u1[k] = m1[k] - m2[k] - m3[k]
            for i in range(2):
                oi = 2 * ti + i
                if oi >= oh:
                    break
                u = r0 if i == 0 else r1
                out0 = y[s, oi, 2 * tj]
                for k in range(f):
                    out0[k] = u[0, k] + u[1, k] + u[2, k]
                if 2 * tj + 1 < ow:
                    out1 = y[s, oi, 2 * tj + 1]
                    for k in range(f):
                        out1[k] = u[1, k] - u[2, k] - u[3, k]
        for i in range(min(2, oh - 2 * ti)):
            out = y[s, 2 * ti + i].reshape(-1)
            if kind == RELU:
                for p in range(ow * f):
                    v = out[p] + bias[p]
                    out[p] = v if not v < 0 else 0  # NaN passes, as in activate
            elif kind == TANH:
                for p in range(ow * f):
                    out[p] = tanh32(out[p] + bias[p])
            else:
                for p in range(ow * f):
                    out[p] += bias[p]


@parallel_when_large
def winograd_gradient_transform(dy, saved, kind, th, tw, d):
    """d[4a + b, t, f] = (A g A^T)[a, b] for the 2x2 output-gradient tile g (zero
    past the last row or column), A = (A^T)^T = [[1, 0], [1, 1], [1, -1], [0, -1]]:
    the adjoint of the output transform. As in the input transform, the column step
    A g runs along whole rows, the row step per tile.

    g is dy taken back through the forward's activation ``kind`` as it is read:
    relu: dy where the output ``saved`` > 0, else exactly 0; tanh: dy (1 - saved^2);
    linear: dy (``saved`` is then not read). Entry 5 (a = b = 1) of each tile is the
    sum of its four g: summed over tiles it is the bias gradient."""
    n, oh, ow, f = dy.shape
    wp = 2 * tw * f
    for row in prange(n * th):
        s, ti = row // th, row % th
        g = np.zeros((2, wp), dtype=dy.dtype)
        for i in range(2):
            if 2 * ti + i < oh:
                src = dy[s, 2 * ti + i].reshape(-1)
                out = saved[s, 2 * ti + i].reshape(-1)
                dst = g[i]
                if kind == RELU:
                    for p in range(ow * f):
                        dst[p] = src[p] if out[p] > 0 else 0
                elif kind == TANH:
                    one = dy.dtype.type(1)  # in dy's precision, as the epilogue's gradient
                    for p in range(ow * f):
                        dst[p] = src[p] * (one - out[p] * out[p])
                else:
                    for p in range(ow * f):
                        dst[p] = src[p]
        e = np.empty((4, wp), dtype=dy.dtype)
        g0, g1 = g[0], g[1]
        e0, e1, e2, e3 = e[0], e[1], e[2], e[3]
        for p in range(wp):
            e0[p] = g0[p]
            e1[p] = g0[p] + g1[p]
            e2[p] = g0[p] - g1[p]
            e3[p] = -g1[p]
        for tj in range(tw):
            t = row * tw + tj
            for a in range(4):
                q = e[a, 2 * tj * f:]
                d0, d1, d2, d3 = d[4 * a, t], d[4 * a + 1, t], d[4 * a + 2, t], d[4 * a + 3, t]
                for k in range(f):
                    q0, q1 = q[k], q[f + k]
                    d0[k] = q0
                    d1[k] = q0 + q1
                    d2[k] = q0 - q1
                    d3[k] = -q1


@parallel_when_large
def winograd_input_gradient(dv, top, left, th, tw, dx):
    """dx[s, r, q, c] = the sum, over the tiles covering padded pixel (r + top,
    q + left), of (B dv B^T) at its place in the tile, B = (B^T)^T: the adjoint of
    the input transform, its two steps in reverse order (per tile dv B^T, added into
    tile-row-long rows ``e`` where neighbouring tiles share two columns; then B times
    those rows, one long loop each).

    Tile rows overlap by two padded rows. Each image's tile rows are taken in order:
    rows 2ti and 2ti + 1 are complete once tile row ti is done, as what tile row
    ti - 1 left for them (``carry``) plus tile row ti's part, and are written once;
    tile row ti's part of rows 2ti + 2 and 2ti + 3 becomes the next carry. The tiles
    of an output cover the whole padded image (its last rows and columns included:
    the output is the padded size minus 2), so every value of dx is written and dx
    need not be zeroed."""
    n, h, w, c = dx.shape
    wp = (2 * tw + 2) * c
    lo = left * c  # where the image's row starts in a padded row
    for s in prange(n):
        e = np.empty((4, wp), dtype=dx.dtype)
        carry = np.zeros((2, wp), dtype=dx.dtype)
        for ti in range(th + 1):
            if ti < th:
                e[:] = 0
                row = s * th + ti
                for tj in range(tw):
                    t = row * tw + tj
                    for a in range(4):
                        q = e[a, 2 * tj * c:]
                        v0, v1, v2, v3 = dv[4 * a, t], dv[4 * a + 1, t], dv[4 * a + 2, t], dv[4 * a + 3, t]
                        for ch in range(c):
                            q[ch] += v0[ch]
                            q[c + ch] += v1[ch] - v2[ch] + v3[ch]
                            q[2 * c + ch] += v1[ch] + v2[ch] - v0[ch]
                            q[3 * c + ch] -= v3[ch]
            else:  # past the last tile row: only the carry is left
                e[:] = 0
            e0, e1, e2, e3 = e[0], e[1], e[2], e[3]
            c0, c1 = carry[0], carry[1]
            for a in range(2):
                r = 2 * ti + a - top
                if 0 <= r < h:
                    dst = dx[s, r].reshape(-1)
                    if a == 0:
                        for p in range(w * c):
                            dst[p] = c0[lo + p] + e0[lo + p]
                    else:
                        for p in range(w * c):
                            z = lo + p
                            dst[p] = c1[z] + (e1[z] - e2[z] + e3[z])
            for z in range(wp):
                c0[z] = e1[z] + e2[z] - e0[z]
                c1[z] = -e3[z]
