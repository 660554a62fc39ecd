"""CUDA kernels for the ``cupy`` backend: the same functions, with the same arguments,
as ``minicnn.kernels.numba_cpu``, launched on CuPy arrays.

The kernels are the readable ``.cu`` files beside this module (shipped as package
data), compiled at first use by CuPy's ``RawModule`` (NVRTC) with ``NVRTC_OPTIONS``,
once per file, for float32 and float64 (C++ templates instantiated through
``name_expressions``). Each Python function below checks nothing and computes
nothing: it turns sizes into ``numpy.int32`` and values into scalars of the
array's type (a raw kernel gets exactly the bytes it is given) and launches.

    im2col.cu       im2col, col2im (gather form)
    pooling.cu      max/min pooling with the winner's pixel, average pooling;
                    forward, and backward in gather form
    elementwise.cu  the bias + activation epilogue, the relu/tanh gradient, Adam

Every kernel runs one thread per output entry in a grid-stride loop, with the
channel axis fastest, so a warp's loads and stores fall on consecutive addresses.
Matrix products stay in cuBLAS (``cupy.matmul``) and reductions in CuPy.

``emulation`` runs the same files on the CPU (tests compare them there with the
NumPy ops); the README says what that proves and what only a GPU can.
"""
import functools
import os
import re

import numpy as np

# only im2col + cuBLAS, one pass per step: the answers every such set gives
from ..im2col_only import (NORMALIZATION_DTYPES, SPLIT_BATCH_ON_THREADS,  # noqa: F401
                           direct_conv_suits, serial_only, winograd_suits)

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = ("im2col.cu", "pooling.cu", "elementwise.cu")
# --fmad=false: no fused multiply-add contraction, so products and sums round as
# NumPy's do and the kernels give the CPU's bits (see elementwise.cu). CuPy adds
# -ftz=true to every compilation: float32 subnormals are read and written as zero.
NVRTC_OPTIONS = ("--std=c++11", "--fmad=false")
# The C types the templates are instantiated for, by NumPy dtype.
DTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
EPILOGUE_DTYPES = ADAM_DTYPES = tuple(DTYPES)
LINEAR, RELU, TANH = 0, 1, 2
BLOCK = 256            # threads per block
MAX_BLOCKS = 8192      # enough to fill any current GPU; grid-stride loops do the rest


COMMON = "common.cuh"  # helpers put in front of every source


def _read(filename):
    with open(os.path.join(HERE, filename), encoding="utf-8") as f:
        return f.read()


def source(filename):
    """The CUDA source compiled for one of ``SOURCES``: common.cuh, then the file."""
    return _read(COMMON) + f'\n#line 1 "{filename}"\n' + _read(filename)


def kernel_names(filename):
    """The ``__global__`` kernels defined in ``filename``, in file order."""
    return re.findall(r"__global__\s+void\s+(\w+)", source(filename))


def name_expressions(filename):
    """``["im2col<float>", "im2col<double>", ...]``: what RawModule instantiates."""
    return [f"{name}<{ctype}>" for name in kernel_names(filename) for ctype in DTYPES.values()]


@functools.lru_cache(maxsize=None)
def _file_of():
    return {name: filename for filename in SOURCES for name in kernel_names(filename)}


@functools.lru_cache(maxsize=None)
def _module(filename, cupy):
    """The compiled RawModule of one file (per CuPy module, so a test's stand-in
    never receives a real CuPy's module, nor the other way round)."""
    return cupy.RawModule(code=source(filename), options=NVRTC_OPTIONS,
                          name_expressions=name_expressions(filename))


@functools.lru_cache(maxsize=None)
def _function(kernel, ctype, cupy, device):
    """The compiled ``kernel<ctype>`` for one device (looked up once: CuPy's
    get_function builds a new RawKernel every call)."""
    return _module(_file_of()[kernel], cupy).get_function(f"{kernel}<{ctype}>")


def _launch(kernel, dtype, total, args):
    """Launch ``kernel<T>`` on the current device with enough blocks of ``BLOCK``
    threads for ``total`` items."""
    import cupy
    function = _function(kernel, DTYPES[dtype], cupy, cupy.cuda.get_device_id())
    blocks = max(1, min(-(-int(total) // BLOCK), MAX_BLOCKS))
    function((blocks,), (BLOCK,), args)


def compile_all():
    """Compile every kernel for the current device now (the backend does so when it is
    chosen, so a GPU the CUDA version cannot target is refused at once)."""
    import cupy
    for filename in SOURCES:
        for name in kernel_names(filename):
            for ctype in DTYPES.values():
                _function(name, ctype, cupy, cupy.cuda.get_device_id())


def _ints(*values):
    return tuple(np.int32(v) for v in values)


# ---------------------------------------------------------------------------------
# im2col.cu
# ---------------------------------------------------------------------------------
def im2col(x, kh, kw, sh, sw, top, left, oh, ow, pad_value, col):
    """col[n, i, j, a, b, :] = x[n, i*sh + a - top, j*sw + b - left, :] (pad_value outside)."""
    n, h, w, c = x.shape
    _launch("im2col", x.dtype, col.size,
            (x, col, *_ints(n, h, w, c, kh, kw, sh, sw, top, left, oh, ow),
             x.dtype.type(pad_value)))


def col2im(dcol, sh, sw, top, left, dx):
    """dx[n, r, q, :] = the sum of the dcol entries cut from pixel (r, q)."""
    n, oh, ow, kh, kw, c = dcol.shape
    _, h, w, _ = dx.shape
    _launch("col2im", dcol.dtype, dx.size,
            (dcol, dx, *_ints(n, h, w, c, kh, kw, sh, sw, top, left, oh, ow)))


# ---------------------------------------------------------------------------------
# pooling.cu
# ---------------------------------------------------------------------------------
def _pool_sizes(image, out, kh, kw, sh, sw, top, left):
    n, h, w, c = image.shape
    _, oh, ow, _ = out.shape
    return _ints(n, h, w, c, kh, kw, sh, sw, top, left, oh, ow)


def extreme_pool_forward(x, kh, kw, sh, sw, top, left, take_max, y, winner):
    """Max (take_max) or min of each window's real cells, and the winner's pixel number."""
    init = x.dtype.type(-np.inf if take_max else np.inf)
    _launch("extreme_pool_forward", x.dtype, y.size,
            (x, y, winner, *_pool_sizes(x, y, kh, kw, sh, sw, top, left),
             np.int32(bool(take_max)), init))


def extreme_pool_backward(dy, winner, kh, kw, sh, sw, top, left, dx):
    """Each pixel receives the dy of the windows it won."""
    _launch("extreme_pool_backward", dy.dtype, dx.size,
            (dy, winner, dx, *_pool_sizes(dx, dy, kh, kw, sh, sw, top, left)))


def avg_pool_forward(x, kh, kw, sh, sw, top, left, y):
    """Mean of each window's real (unpadded) cells."""
    _launch("avg_pool_forward", x.dtype, y.size,
            (x, y, *_pool_sizes(x, y, kh, kw, sh, sw, top, left)))


def avg_pool_backward(dy, kh, kw, sh, sw, top, left, dx):
    """Every real cell of a window receives dy / (number of real cells)."""
    _launch("avg_pool_backward", dy.dtype, dx.size,
            (dy, dx, *_pool_sizes(dx, dy, kh, kw, sh, sw, top, left)))


# ---------------------------------------------------------------------------------
# elementwise.cu
# ---------------------------------------------------------------------------------
def bias_activation(z, bias, kind):
    """z = activation(z + bias) in place over a flat array; ``bias`` is the channel
    pattern repeated (or empty for none), as for the numba kernel."""
    _launch("bias_activation", z.dtype, z.size,
            (z, bias, np.int64(z.size), np.int32(bias.size), np.int32(kind)))


def activation_gradient(dy, saved, kind, dz):
    """dz = dy * activation'(z) from the activation's output ``saved``."""
    if not saved.size == dz.size == dy.size:
        raise ValueError(f"activation_gradient: dy, saved and dz must have the same length. "
                         f"Received: {dy.size}, {saved.size}, {dz.size}")
    _launch("activation_gradient", dy.dtype, dy.size,
            (dy, saved, dz, np.int64(dy.size), np.int32(kind)))


def adam_update(w, g, m, v, one_minus_beta_1, one_minus_beta_2, alpha, epsilon):
    """Keras's Adam step over flat arrays, in place, in one pass."""
    if not g.size == m.size == v.size == w.size:
        raise ValueError(f"adam_update: w, g, m and v must have the same length. Received: "
                         f"{w.size}, {g.size}, {m.size}, {v.size}")
    t = w.dtype.type
    _launch("adam_update", w.dtype, w.size,
            (w, g, m, v, np.int64(w.size), t(one_minus_beta_1), t(one_minus_beta_2), t(alpha),
             t(epsilon)))
