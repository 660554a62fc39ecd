"""Numba CPU kernels: the loops of ``minicnn.ops`` compiled, for the ``numba`` backend.

Each kernel computes exactly what the NumPy code in ``minicnn.ops`` computes (the
parity tests check it); what changes is how:

- no padded copy of the input: a window cell outside the image is recognised by
  its coordinates and read as the pad value (0, -inf or +inf);
- ``prange`` only over loops whose iterations write disjoint outputs. im2col
  writes one output row per (n, i), so it runs over n*OH; col2im and the pooling
  backward *accumulate* into input pixels that overlapping windows share, so they
  run over images n, each of which owns its own slice of dx (a prange over output
  positions would race on the shared pixels);
- max/min pooling remembers which pixel won (one int32 per output)
  instead of building a one-hot mask over whole windows;
- inner loops are written so LLVM vectorises them: long contiguous copies go
  through 1-D row views indexed from 0 (numba adds a wrap-around test to any index
  it cannot prove non-negative), selects are branch-free, and the element-wise
  kernels work in place or on distinct arrays (a possible overlap keeps a loop
  scalar).

The last kernels are element-wise passes over float32 arrays that replace several
NumPy passes each: the bias + activation epilogue of Conv2D and Dense, the
relu/tanh gradient, and Adam's update. Where they round differently from NumPy
(only tanh, an approximation within 3.3e-7) their docstrings say so.

All kernels are module-level ``@njit(cache=True)`` functions on plain arrays and
ints; they compile once per dtype (float32, float64) and are cached on disk.
"""
import numba
import numpy as np
from numba import njit, prange

from .numba_direct import (DIRECT_CONV_MAX_CHANNELS, DIRECT_CONV_MAX_FILTERS,  # noqa: F401
                           DIRECT_CONV_MIN_WINDOW, direct_conv_forward, direct_conv_suits,
                           direct_conv_weight_gradient)
from .numba_activation import LINEAR, RELU, TANH, activate, tanh32  # noqa: F401
from .numba_launch import parallel_when_large, serial_only  # noqa: F401
from .numba_normalization import (NORMALIZATION_DTYPES, SUM_CHUNK, channel_sums,  # noqa: F401
                                  dropout_apply, normalization_input_gradient, scale_shift)
from .numba_winograd import (winograd_gradient_transform, winograd_input_gradient,  # noqa: F401
                             winograd_input_transform, winograd_output_transform)

# Its kernels release the GIL and can be made serial (serial_only), so a training step
# may run half the batch on each of two threads (minicnn.split_step).
SPLIT_BATCH_ON_THREADS = True

# numba's default OpenMP threads keep spinning after each parallel loop and then
# fight NumPy's OpenBLAS threads for the same cores, which made the BLAS products
# between kernels several times slower here. The workqueue layer does not spin.
# (It only takes effect if no parallel numba code has run yet in this process.)
if numba.config.THREADING_LAYER == "default":
    numba.config.THREADING_LAYER = "workqueue"


@parallel_when_large
def im2col(x, kh, kw, sh, sw, top, left, oh, ow, pad_value, col):
    """col[n, i, j, a, b, :] = x[n, i*sh + a - top, j*sw + b - left, :] (pad_value outside).

    In NHWC one window row (kw pixels of c channels) is kw*c *contiguous* values,
    so a window that lies inside the image is kh plain copies of kw*c numbers;
    only windows touching the border check every pixel. The copies go through
    1-D row views indexed from 0 (``dst[t] = src[t]``): with an index that numba
    cannot prove non-negative it adds a wrap-around test to every access, which
    made this loop 2-5x slower.
    """
    n, h, w, c = x.shape
    row = kw * c
    xf = x.reshape(n, h, w * c)
    cf = col.reshape(n, oh, ow, kh, row)
    for ni in prange(n * oh):
        s = ni // oh
        i = ni % oh
        for j in range(ow):
            q0 = j * sw - left
            inside = q0 >= 0 and q0 + kw <= w
            for a in range(kh):
                r = i * sh + a - top
                dst = cf[s, i, j, a]
                if r < 0 or r >= h:
                    for t in range(row):
                        dst[t] = pad_value
                elif inside:
                    src = xf[s, r, q0 * c:]
                    for t in range(row):
                        dst[t] = src[t]
                else:
                    src = xf[s, r]
                    for b in range(kw):
                        q = q0 + b
                        for ch in range(c):
                            dst[b * c + ch] = src[q * c + ch] if 0 <= q < w else pad_value


@parallel_when_large
def col2im(dcol, sh, sw, top, left, dx):
    """dx[n, r, q, :] += dcol[n, i, j, a, b, :] for every window cell on the image
    (the adjoint of im2col, with the same contiguous-row fast path and row views)."""
    n, oh, ow, kh, kw, c = dcol.shape
    _, h, w, _ = dx.shape
    row = kw * c
    dxf = dx.reshape(n, h, w * c)
    df = dcol.reshape(n, oh, ow, kh, row)
    for s in prange(n):  # each image owns dx[s]: no two threads add to one pixel
        dxf[s] = 0
        for i in range(oh):
            for j in range(ow):
                q0 = j * sw - left
                inside = q0 >= 0 and q0 + kw <= w
                for a in range(kh):
                    r = i * sh + a - top
                    if r < 0 or r >= h:
                        continue
                    src = df[s, i, j, a]
                    if inside:
                        dst = dxf[s, r, q0 * c:]
                        for t in range(row):
                            dst[t] += src[t]
                    else:
                        dst = dxf[s, r]
                        for b in range(kw):
                            q = q0 + b
                            if 0 <= q < w:
                                for ch in range(c):
                                    dst[q * c + ch] += src[b * c + ch]


@parallel_when_large
def extreme_pool_forward(x, kh, kw, sh, sw, top, left, take_max, y, winner):
    """Max (take_max) or min of each window's real cells; ``winner`` keeps where in
    the image the first extreme cell is, as the pixel number r*w + q, or -1 for a
    padding cell. Strict comparison keeps the first of equal values (Keras's tie
    rule) and a NaN wins, as in NumPy and Keras; padding counts as -inf (+inf for
    min) and comes first where the window starts on it, exactly like the im2col
    path's argmax. Storing the pixel, not the window offset, spares the backward
    pass a division per value."""
    n, h, w, c = x.shape
    _, oh, ow, _ = y.shape
    for ni in prange(n * oh):
        s = ni // oh
        i = ni % oh
        for j in range(ow):
            r0, q0 = i * sh - top, j * sw - left
            first = np.int32(r0 * w + q0 if r0 >= 0 and q0 >= 0 else -1)
            for ch in range(c):
                y[s, i, j, ch] = -np.inf if take_max else np.inf
                winner[s, i, j, ch] = first
            for a in range(kh):
                r = r0 + a
                if r < 0 or r >= h:
                    continue
                for b in range(kw):
                    q = q0 + b
                    if q < 0 or q >= w:
                        continue
                    code = np.int32(r * w + q)
                    for ch in range(c):
                        v = x[s, r, q, ch]
                        best = y[s, i, j, ch]
                        # the first NaN wins and stays, as with NumPy's argmax/argmin;
                        # bitwise | and & and unconditional stores keep the loop
                        # branch-free, so it is vectorised
                        wins = ((v > best) if take_max else (v < best)) | ((v != v) & (best == best))
                        y[s, i, j, ch] = v if wins else best
                        winner[s, i, j, ch] = code if wins else winner[s, i, j, ch]


@parallel_when_large
def extreme_pool_backward(dy, winner, kh, kw, sh, sw, top, left, dx):
    """Each window's dy goes to its winning pixel (none for a padding cell);
    overlapping windows add up. (The window arguments are those of the CUDA kernel,
    which gathers per pixel; scattering from the winners does not need them.)"""
    n, oh, ow, c = dy.shape
    _, h, w, _ = dx.shape
    for s in prange(n):
        dx[s] = 0
        image = dx[s].reshape(h * w, c)
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    k = winner[s, i, j, ch]
                    if k >= 0:
                        image[k, ch] += dy[s, i, j, ch]


@parallel_when_large
def avg_pool_forward(x, kh, kw, sh, sw, top, left, y):
    """Mean of each window's real (unpadded) cells, in two steps: the window's rows
    are added into one image row (long contiguous loops, which vectorise), then each
    output adds its window's column blocks of that row. So every window is summed
    column by column, each column's rows first -- the order the CUDA kernel uses.
    1.8x faster than adding cell by cell into y (LeNet-5's first pooling, one thread)."""
    n, h, w, c = x.shape
    _, oh, ow, _ = y.shape
    xf = x.reshape(n, h, w * c)
    for ni in prange(n * oh):
        s = ni // oh
        i = ni % oh
        r0, r1 = max(i * sh - top, 0), min(i * sh - top + kh, h)
        rows = np.empty(w * c, dtype=y.dtype)  # sum of the window's rows
        first = xf[s, r0]
        for p in range(w * c):
            rows[p] = first[p]
        for r in range(r0 + 1, r1):
            more = xf[s, r]
            for p in range(w * c):
                rows[p] += more[p]
        yrow = y[s, i].reshape(-1)
        for j in range(ow):
            q0, q1 = max(j * sw - left, 0), min(j * sw - left + kw, w)
            scale = 1.0 / ((r1 - r0) * (q1 - q0))
            out = yrow[j * c:]
            block = rows[q0 * c:]
            for ch in range(c):
                out[ch] = block[ch]
            for q in range(1, q1 - q0):
                block = rows[(q0 + q) * c:]
                for ch in range(c):
                    out[ch] += block[ch]
            for ch in range(c):
                out[ch] *= scale


@parallel_when_large
def avg_pool_backward(dy, kh, kw, sh, sw, top, left, dx):
    """Every real cell of a window receives dy / (number of real cells)."""
    n, oh, ow, c = dy.shape
    _, h, w, _ = dx.shape
    for s in prange(n):
        dx[s] = 0
        for i in range(oh):
            r0, r1 = max(i * sh - top, 0), min(i * sh - top + kh, h)
            for j in range(ow):
                q0, q1 = max(j * sw - left, 0), min(j * sw - left + kw, w)
                scale = 1.0 / ((r1 - r0) * (q1 - q0))
                for r in range(r0, r1):
                    for q in range(q0, q1):
                        for ch in range(c):
                            dx[s, r, q, ch] += dy[s, i, j, ch] * scale



# Winograd F(2x2, 3x3) for 3x3 stride-1 layers (minicnn.ops.winograd); its transforms
# live in numba_winograd. Where it wins: see winograd_suits.
WINOGRAD_MIN_CHANNELS = 16
WINOGRAD_MIN_FILTERS = 16


def winograd_suits(c, f, kh, kw, sh, sw):
    """Whether Winograd F(2x2, 3x3) beats im2col + GEMM for this layer."""
    return (kh == kw == 3 and sh == sw == 1 and c >= WINOGRAD_MIN_CHANNELS
            and f >= WINOGRAD_MIN_FILTERS)


def winograd_bytes_per_image(oh, ow, c, itemsize):
    """Bytes of one image's transformed tiles (16 values per tile and channel): what
    the im2col budget caps, chunk by chunk."""
    return 16 * (-(-oh // 2)) * (-(-ow // 2)) * c * itemsize


def _level2_cache_bytes(default=2 * 2**20):
    """The size of one core's level-2 cache (Linux's sysfs), else ``default``."""
    import glob
    for folder in sorted(glob.glob("/sys/devices/system/cpu/cpu0/cache/index*")):
        try:
            with open(folder + "/level") as f:
                if f.read().strip() != "2":
                    continue
            with open(folder + "/size") as f:
                text = f.read().strip().upper()
            scale = {"K": 2**10, "M": 2**20}.get(text[-1:], 1)
            return int(text.rstrip("KM")) * scale
        except (OSError, ValueError):
            continue
    return default


# Winograd's chunks are also kept small enough for their tiles to stay in a core's L2
# cache while the transforms and the 16 products pass over them: half of L2. On the
# Intel Xeon (2 MiB of L2), tiles of 1 MiB per chunk took a 4-conv 16/32-filter CNN's
# step from 62 to 48 ms against the 16 MiB im2col budget (bench_normalization's
# "modern" model, batch 128; 0.5 MiB: 50 ms, 2 MiB: 51 ms).
WINOGRAD_CHUNK_BYTES = min(max(_level2_cache_bytes() // 2, 2**18), 2**22)


# ---------------------------------------------------------------------------------
# the bias + activation epilogue of Conv2D and Dense
# ---------------------------------------------------------------------------------
# The element-wise kernels serve float32 only: float64 keeps NumPy's exact tanh
# (these exist to save float32 memory passes, not to change float64 numbers).
EPILOGUE_DTYPES = ADAM_DTYPES = (np.dtype(np.float32),)


@njit(cache=True, nogil=True, error_model="numpy")
def bias_activation(z, bias, kind):
    """z = activation(z + bias), in place, over a flat float32 array, in one pass.

    ``bias`` is the layer's bias repeated to a few hundred values (a multiple of the
    channel count, so bias[t] lines up with channel t % F), or empty for no bias: the
    inner loop then runs over a long contiguous row and vectorises, where a loop over
    the channels alone (6 in LeNet's first layer) would not. In place on purpose: with
    a separate output LLVM cannot rule out overlap and keeps a scalar loop.
    ``error_model="numpy"`` lets the division in tanh32 compile without a zero check,
    which would also block vectorisation.
    """
    n, m = z.size, bias.size
    if m == 0:
        for i in range(n):
            z[i] = activate(z[i], kind)
        return
    rows = n // m
    z2 = z[:rows * m].reshape((rows, m))
    for r in range(rows):
        for t in range(m):
            z2[r, t] = activate(z2[r, t] + bias[t], kind)
    for t in range(n - rows * m):
        z[rows * m + t] = activate(z[rows * m + t] + bias[t], kind)


@njit(cache=True, nogil=True)
def activation_gradient(dy, saved, kind, dz):
    """dz = dy * activation'(z) over flat float32 arrays, from what the forward pass
    kept (``saved`` is relu's or tanh's output): one pass instead of NumPy's three."""
    if saved.size != dy.size or dz.size != dy.size:
        raise ValueError("activation_gradient: dy, saved and dz must have the same length")
    for i in range(dy.size):
        s = saved[i]
        if kind == RELU:
            dz[i] = dy[i] if s > 0 else np.float32(0)
        else:
            dz[i] = dy[i] * (np.float32(1) - s * s)


# ---------------------------------------------------------------------------------
# the optimizer
# ---------------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def adam_update(w, g, m, v, one_minus_beta_1, one_minus_beta_2, alpha, epsilon):
    """Keras's Adam step over flat float32 arrays, in place, in one pass: the same
    float32 operations in the same order as ``optimizers.Adam._update`` on NumPy
    (so the same bits), without its seven temporaries. Arrays of other lengths are
    refused before an index is touched: a slot from a damaged file must not overrun
    the heap."""
    if g.size != w.size or m.size != w.size or v.size != w.size:
        raise ValueError("adam_update: w, g, m and v must have the same length")
    for i in range(w.size):
        gi = g[i]
        mi = m[i] + one_minus_beta_1 * (gi - m[i])
        vi = v[i] + one_minus_beta_2 * (gi * gi - v[i])
        m[i] = mi
        v[i] = vi
        w[i] -= alpha * mi / (np.sqrt(vi) + epsilon)
