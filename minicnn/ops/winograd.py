"""A 3x3, stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3).

Im2col + GEMM spends 9 multiplications per output and (input channel, filter)
pair. Winograd's algorithm (Lavin and Gray, "Fast Algorithms for Convolutional
Neural Networks", 2016) makes a 2x2 block of outputs from a 4x4 tile ``d`` of the
padded input with 16, i.e. 2.25x fewer:

    y_tile = A^T [ (G g G^T) * (B^T d B) ] A        (* element-wise, 4x4)

    B^T = [[1, 0, -1, 0],     G = [[1,    0,   0],     A^T = [[1, 1,  1,  0],
           [0, 1,  1, 0],          [1/2, 1/2, 1/2],           [0, 1, -1, -1]]
           [0, -1, 1, 0],          [1/2, -1/2, 1/2],
           [0, 1,  0, -1]]         [0,    0,   1]]

with ``g`` the 3x3 kernel of one (channel, filter) pair. Tiles step by 2, so
neighbouring tiles overlap by two rows or columns. Summed over input channels the
element-wise product becomes, for each of the 16 tile entries k, one matrix product

    M_k = V_k @ U_k     V_k: (tiles, C), the entry k of every transformed tile
                        U_k: (C, F),     the entry k of every transformed kernel

so the multiplications still run in BLAS; around them sit cheap transforms made of
additions only (``minicnn.kernels.numba_winograd``).

Backward is the same algebra transposed (every step is linear): with
``D = A dY_tile A^T`` (the output gradient of each tile, 2x2 -> 4x4),

    dU_k = V_k.T @ D_k   summed over tiles, then dW = G^T dU G (per pair)
    dV_k = D_k @ U_k.T   then dX gets B dV B^T, added where tiles overlap

These are the exact gradients of the forward above, which in exact arithmetic is
the convolution; in float32 it rounds differently from im2col, by amounts of the
same size (the tests compare both with the float64 loop oracle). The kernel set
chooses this path by shape (``winograd_suits``); the numpy backend never takes it.
"""
import numpy as np

from ..backend import get_array_module

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def tiles(out_hw):
    """(tile rows, tile columns) that cover an output of ``out_hw``."""
    oh, ow = out_hw
    return -(-oh // 2), -(-ow // 2)


def sandwich(m, a):
    """m a m^T over the first two axes of ``a`` (p, p, ...), for every trailing index:
    two matrix products (einsum over three operands would loop naively, and took
    50 ms for a 384x256 kernel)."""
    xp = get_array_module(a)
    p, q = a.shape[0], m.shape[0]
    left = (m @ a.reshape(p, -1)).reshape(q, p, -1)          # m a
    return xp.matmul(m, left).reshape(q, q, *a.shape[2:])     # (m a) m^T


def transform_kernel(w):
    """U (16, C, F): G g G^T of every (channel, filter) pair g, entry k = 4a + b
    first, in w's precision."""
    g = get_array_module(w).asarray(G, dtype=w.dtype)
    return sandwich(g, w).reshape(16, w.shape[2], w.shape[3])


def winograd_conv_forward(x, w, pads, out_hw, chunk, fast):
    """``(y, u)``: y (N, OH, OW, F), the stride-1 3x3 convolution of NHWC ``x`` with
    ``w`` (no bias), ``chunk`` images at a time so the transformed tiles stay small,
    and u, the transformed kernel, which backward uses again."""
    xp = get_array_module(x)
    n, _, _, c = x.shape
    (th, tw), top, left = tiles(out_hw), pads[0][0], pads[1][0]
    u = transform_kernel(w)
    y = xp.empty((n, *out_hw, w.shape[3]), dtype=x.dtype)
    for start in range(0, n, chunk):
        part = x[start:start + chunk]
        v = xp.empty((16, len(part) * th * tw, c), dtype=x.dtype)
        fast.winograd_input_transform(part, top, left, th, tw, v)
        fast.winograd_output_transform(xp.matmul(v, u), th, tw, y[start:start + chunk])
    return y, u


def winograd_conv_backward(x, u, dy, pads, chunk, fast, need_dx=True):
    """(dx, dw) for ``winograd_conv_forward``'s output gradient ``dy``, given its
    transformed kernel ``u``; the tiles' V are made again from x, a chunk at a time
    (cheaper than keeping them: four times the size of x)."""
    xp = get_array_module(x)
    n, _, _, c = x.shape
    f = u.shape[2]
    (th, tw), top, left = tiles(dy.shape[1:3]), pads[0][0], pads[1][0]
    u_t = u.transpose(0, 2, 1).copy() if need_dx else None
    du = xp.zeros((16, c, f), dtype=x.dtype)  # summed over chunks in order
    dx = xp.zeros(x.shape, dtype=x.dtype) if need_dx else None
    for start in range(0, n, chunk):
        part = slice(start, start + chunk)
        count = len(x[part]) * th * tw
        v = xp.empty((16, count, c), dtype=x.dtype)
        fast.winograd_input_transform(x[part], top, left, th, tw, v)
        d = xp.empty((16, count, f), dtype=x.dtype)
        fast.winograd_gradient_transform(dy[part], th, tw, d)
        du += xp.matmul(v.transpose(0, 2, 1), d)  # dU_k = V_k.T @ D_k
        if need_dx:
            fast.winograd_input_gradient(xp.matmul(d, u_t), top, left, th, tw, dx[part])
    # dW = G^T dU G for every (channel, filter) pair
    return dx, sandwich(xp.asarray(G.T, dtype=u.dtype), du.reshape(4, 4, c, f))
