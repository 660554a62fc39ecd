"""Numba kernels of the direct convolution, for layers with few channels and few
filters (LeNet-5's first layer): convolving straight from a zero-bordered copy of
each image instead of building im2col's column matrix. ``direct_conv_suits`` is the
rule that picks this path (``minicnn.ops.conv``)."""
import numpy as np
from numba import njit, prange

from .numba_launch import parallel_when_large

# im2col + GEMM loses on a layer like LeNet-5's first (1 channel, 6 filters, 5x5):
# its column matrix is 25x larger than the image and its products are only 6 wide,
# so copying the windows costs 3-4x the products and OpenBLAS runs them at a tenth of
# its peak. Convolving straight from the image instead, one image at a time:
#
# the image is copied once into a zero-bordered buffer, one plane per channel, each
# row ``wp`` values long (the padded width rounded up to 8). Flattened, the pixel
# under window cell (a, b) of output (i, j) is then buf[(i + a) * wp + j + b] =
# buf[i * wp + j + (a * wp + b)]: for every cell the whole output plane reads the
# buffer *shifted* by a * wp + b, one contiguous loop of oh * wp values (the
# columns j >= ow are computed and dropped). Those long loops vectorise; the short
# window rows of im2col (5 values here) did not.
# Where it wins, measured by benchmarks/bench_conv_paths.py (one training pass of a
# layer, batch 128, AMD EPYC with AVX2, 2 cores, three runs): with 1-3 input channels,
# up to 8 filters and a window of 25 cells or more, direct took 0.51-0.76x the time of
# im2col + GEMM (LeNet-5's first layer 0.59-0.76x). With a 3x3 window it tied or lost
# (0.87-1.13x: nine cells give too little to share each shifted read), with 16 or more
# filters the products are wide enough for OpenBLAS (1.05-1.51x on 1 channel), and with
# 4 channels and more im2col won or tied (LeNet-5's second layer, 6 channels x 16
# filters: direct 1.9-2.1x slower).
DIRECT_CONV_MAX_CHANNELS = 3
DIRECT_CONV_MAX_FILTERS = 8
DIRECT_CONV_MIN_WINDOW = 25


def direct_conv_suits(c, f, kh, kw, sh, sw):
    """Whether the direct loops beat im2col + GEMM for this layer (stride 1 only)."""
    return (sh == 1 and sw == 1 and c <= DIRECT_CONV_MAX_CHANNELS
            and f <= DIRECT_CONV_MAX_FILTERS and kh * kw >= DIRECT_CONV_MIN_WINDOW)


@njit(cache=True)
def _shift_buffer(x, s, top, left, buf):
    """buf[ch, top + r, left + q] = x[s, r, q, ch]; zero everywhere else."""
    _, h, w, c = x.shape
    buf[:] = 0
    for r in range(h):
        for q in range(w):
            for ch in range(c):
                buf[ch, top + r, left + q] = x[s, r, q, ch]


@njit(inline="always")
def _shift_sizes(oh, ow, kh, kw):
    """Rows and row length of the shifted-read buffer: the padded image's oh + kh - 1
    rows plus one spare, because the last cell's shifted read runs up to kw - 2
    values past them; rows rounded up to 8 values."""
    return oh + kh, (ow + kw - 1 + 7) // 8 * 8


@parallel_when_large
def direct_conv_forward(x, w, top, left, y):
    """y[s, i, j, f] = sum over (ch, a, b) of x[s, i + a - top, j + b - left, ch] *
    w[a, b, ch, f], stride 1, summed in the order ch, a, b (the im2col product sums
    in its own order: the two agree to float rounding)."""
    n = x.shape[0]
    c = x.shape[3]
    kh, kw, _, f = w.shape
    _, oh, ow, _ = y.shape
    hp, wp = _shift_sizes(oh, ow, kh, kw)
    span = oh * wp
    for s in prange(n):  # each image owns y[s]
        buf = np.empty((c, hp, wp), dtype=x.dtype)
        out = np.zeros((f, span), dtype=y.dtype)
        _shift_buffer(x, s, top, left, buf)
        for ch in range(c):
            flat = buf[ch].reshape(-1)
            for a in range(kh):
                for b in range(kw):
                    src = flat[a * wp + b:]
                    for t in range(f):
                        weight = w[a, b, ch, t]
                        plane = out[t]
                        for p in range(span):
                            plane[p] += weight * src[p]
        for i in range(oh):
            for j in range(ow):
                for t in range(f):
                    y[s, i, j, t] = out[t, i * wp + j]


# images per partial weight-gradient sum: the groups, not the threads, fix the order
# of the additions, so the result does not depend on how many threads run
DIRECT_GRADIENT_GROUP = 8


@njit(fastmath={"reassoc", "nsz"}, cache=True)
def _weight_gradient_of_images(x, dy, top, left, first, stop, part):
    """part[a, b, ch, f] = the weight gradient of images first..stop-1: per image, one
    dot product of oh * wp values per weight between the shifted reads and dy laid
    out at row length wp (zeros in the dropped columns).

    The dot products' additions are reassociated (``fastmath`` "reassoc"), so LLVM
    keeps partial sums in vector lanes: a strict left-to-right sum cannot be
    vectorised, and ran 4x slower here. That only reorders a float sum, as a BLAS
    product does; the order is fixed by the compiled code, so a run repeats its bits.
    (A separate function, not the body of the parallel loop: there numba's parallel
    lowering kept the dot products scalar.)"""
    c = x.shape[3]
    kh, kw, _, f = part.shape
    _, oh, ow, _ = dy.shape
    hp, wp = _shift_sizes(oh, ow, kh, kw)
    span = oh * wp
    buf = np.empty((c, hp, wp), dtype=x.dtype)
    grad = np.zeros((f, span), dtype=dy.dtype)
    part[:] = 0
    for s in range(first, stop):
        _shift_buffer(x, s, top, left, buf)
        for i in range(oh):
            for j in range(ow):
                for t in range(f):
                    grad[t, i * wp + j] = dy[s, i, j, t]
        for ch in range(c):
            flat = buf[ch].reshape(-1)
            for a in range(kh):
                for b in range(kw):
                    src = flat[a * wp + b:]
                    for t in range(f):
                        g_t = grad[t]
                        # a literal zero of the array's type: starting from a value read
                        # from an array kept this loop 1.5x slower
                        total = part.dtype.type(0)
                        for p in range(span):
                            total += src[p] * g_t[p]
                        part[a, b, ch, t] += total


@parallel_when_large
def direct_conv_weight_gradient(x, dy, top, left, dw):
    """dw[a, b, ch, f] = sum over (s, i, j) of x[s, i + a - top, j + b - left, ch] *
    dy[s, i, j, f] (stride 1), from the same shifted reads as the forward pass.
    Images are summed in fixed groups of DIRECT_GRADIENT_GROUP, then the groups in
    order."""
    n = x.shape[0]
    groups = -(-n // DIRECT_GRADIENT_GROUP)
    partial = np.empty((groups,) + dw.shape, dtype=dw.dtype)
    for g in prange(groups):
        first = np.int64(g) * DIRECT_GRADIENT_GROUP  # signed: prange's index may not be
        _weight_gradient_of_images(x, dy, top, left, first,
                                   min(n, first + DIRECT_GRADIENT_GROUP), partial[g])
    # explicit loops: in a parallel function an array expression (dw += ...) becomes
    # a parallel launch of its own, ~0.15 ms each, which made this kernel 2x slower
    flat_dw = dw.reshape(-1)
    flat_partial = partial.reshape(groups, -1)
    for t in range(flat_dw.size):
        total = flat_partial[0, t]
        for g in range(1, groups):
            total += flat_partial[g, t]
        flat_dw[t] = total
