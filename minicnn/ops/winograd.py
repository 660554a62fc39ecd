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

so the multiplications still run in BLAS; around them sit cheap transforms of the
tiles made of additions and subtractions only (``minicnn.kernels.numba_winograd``;
the kernel's transform G has halves, but it is made once per pass, not per tile).

Backward is the same algebra transposed (every step is linear): with
``D = A dY_tile A^T`` (the output gradient of each tile, 2x2 -> 4x4),

    dU_k = V_k.T @ D_k   summed over tiles, then dW = G^T dU G (per pair)
    dV_k = D_k @ U_k.T   then dX gets B dV B^T, added where tiles overlap

The layer's bias and activation ride along: the output transform adds b and applies
relu or tanh to each output as it writes it, and the gradient transform multiplies
dY by the activation's derivative as it reads it, so neither costs a pass of its
own. The bias gradient needs no pass either: entry (1, 1) of ``A dY_tile A^T`` is the
sum of the tile's four gradients, so db is the sum over tiles of D_5.

These are the exact gradients of the forward above, which in exact arithmetic is
the convolution; in float32 it rounds differently from im2col, by amounts of the
same size (the tests compare both with the float64 loop oracle). The kernel set
chooses this path by shape (``winograd_suits``); the numpy backend never takes it.
"""
import numpy as np

from ..backend import get_array_module
from .products import matmul
from .sums import column_sums

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
    left = matmul(m, a.reshape(p, -1)).reshape(q, p, -1)     # m a
    return xp.matmul(m, left).reshape(q, q, *a.shape[2:])     # (m a) m^T


def transform_kernel(w):
    """U (16, C, F): G g G^T of every (channel, filter) pair g, entry k = 4a + b
    first, in w's precision."""
    g = get_array_module(w).asarray(G, dtype=w.dtype)
    return sandwich(g, w).reshape(16, w.shape[2], w.shape[3])


def _buffers(xp, count, widths, dtype):
    """One flat buffer per width, each large enough for the (16, count, width) array of
    a whole chunk: allocated once per call and reused by every chunk (fresh arrays of
    a megabyte per chunk cost their page faults again each time)."""
    return [xp.empty(16 * count * width, dtype=dtype) for width in widths]


def _view(buffer, count, width):
    """A contiguous (16, count, width) array at the start of ``buffer``."""
    return buffer[:16 * count * width].reshape(16, count, width)


def winograd_conv_forward(x, w, b, kind, pads, out_hw, chunk, fast):
    """``(y, u)``: y (N, OH, OW, F), the stride-1 3x3 convolution of NHWC ``x`` with
    ``w`` plus the bias ``b`` (repeated along an output row, (OW * F,); zeros for
    none) through the activation ``kind`` (the kernel set's LINEAR, RELU or TANH: the
    layer's epilogue, applied as the output transform writes y), ``chunk`` images at a
    time so the transformed tiles stay small; and u, the transformed kernel, which
    backward uses again."""
    xp = get_array_module(x)
    n, _, _, c = x.shape
    f = w.shape[3]
    (th, tw), top, left = tiles(out_hw), pads[0][0], pads[1][0]
    u = transform_kernel(w)
    y = xp.empty((n, *out_hw, f), dtype=x.dtype)
    v_buffer, m_buffer = _buffers(xp, min(chunk, n) * th * tw, (c, f), x.dtype)
    for start in range(0, n, chunk):
        part = x[start:start + chunk]
        count = len(part) * th * tw
        v, m = _view(v_buffer, count, c), _view(m_buffer, count, f)
        fast.winograd_input_transform(part, top, left, th, tw, v)
        xp.matmul(v, u, out=m)
        fast.winograd_output_transform(m, th, tw, b, kind, y[start:start + chunk])
    return y, u


def winograd_conv_backward(x, u, y, kind, dy, pads, chunk, fast, need_dx=True):
    """(dx, dw, db) for ``winograd_conv_forward``'s output ``y`` and its gradient
    ``dy``, given the transformed kernel ``u``: dy is taken back through the
    activation ``kind`` inside the gradient transform, and db is the sum over tiles
    of that transform's entry 5 (each tile's four gradients added). The tiles' V are
    made again from x, a chunk at a time (cheaper than keeping them: four times the
    size of x)."""
    xp = get_array_module(x)
    n, _, _, c = x.shape
    f = u.shape[2]
    (th, tw), top, left = tiles(dy.shape[1:3]), pads[0][0], pads[1][0]
    u_t = u.transpose(0, 2, 1).copy() if need_dx else None
    du = xp.zeros((16, c, f), dtype=x.dtype)  # summed over chunks in order
    du_part = xp.empty((16, c, f), dtype=x.dtype)
    db = xp.zeros(f, dtype=x.dtype)
    dx = xp.empty(x.shape, dtype=x.dtype) if need_dx else None  # every value written
    v_buffer, d_buffer, dv_buffer = _buffers(xp, min(chunk, n) * th * tw,
                                             (c, f, c if need_dx else 0), x.dtype)
    for start in range(0, n, chunk):
        part = slice(start, start + chunk)
        count = len(x[part]) * th * tw
        v, d = _view(v_buffer, count, c), _view(d_buffer, count, f)
        fast.winograd_input_transform(x[part], top, left, th, tw, v)
        fast.winograd_gradient_transform(dy[part], y[part], kind, th, tw, d)
        du += xp.matmul(v.transpose(0, 2, 1), d, out=du_part)  # dU_k = V_k.T @ D_k
        db += column_sums(d[5])
        if need_dx:
            dv = xp.matmul(d, u_t, out=_view(dv_buffer, count, c))
            fast.winograd_input_gradient(dv, top, left, th, tw, dx[part])
    # dW = G^T dU G for every (channel, filter) pair
    return dx, sandwich(xp.asarray(G.T, dtype=u.dtype), du.reshape(4, 4, c, f)), db
