"""The CUDA kernels of minicnn/kernels/cuda/*.cu, executed on the CPU.

The same .cu files the cupy backend compiles with NVRTC are compiled here by g++
with cpu_emulation.h, which runs every thread of a launch in a loop
(``minicnn.kernels.cuda.emulation``). The Python launch functions of the kernel set
(``minicnn.kernels.cuda.im2col`` and the rest) are called exactly as the ops call
them, with NumPy arrays standing for device memory, and compared with:

- the array code of ``minicnn.ops`` (what the numpy backend computes), over random
  sizes, strides, paddings, pad values, ties, NaN and infinities, float32 and float64;
- the numba kernels, which add in the same order and so must give the same bits.

Each kernel also gives the same bits when its threads run in reverse order and when
the launch has a single block (the grid-stride loop then does all the work), which
is what makes a one-thread-at-a-time emulation a faithful model of the GPU for them.
"""
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minicnn as mc
from minicnn import ops
from minicnn.kernels import cuda
from minicnn.kernels.cuda import emulation
from minicnn.shapes import resolve_padding

pytestmark = pytest.mark.skipif(emulation.compiler() is None,
                                reason="no C++ compiler (g++) to build the CPU emulation")


class _EmulatedCupy:
    """Just enough of CuPy for ``minicnn.kernels.cuda._launch``: a RawModule whose
    functions run through the CPU emulation on NumPy arrays."""
    reverse = False

    class ndarray:  # no array here is a device array: the ops run their array code
        pass

    class cuda:
        @staticmethod
        def get_device_id():
            return 0

    class RawModule:
        def __init__(self, code, options=(), name_expressions=()):
            assert tuple(options) == cuda.NVRTC_OPTIONS
            self._module = emulation.Module(code, name_expressions)

        def get_function(self, name):
            def launch(grid, block, args):
                self._module.launch(name, grid, block, args, reverse=_EmulatedCupy.reverse)
            return launch


@pytest.fixture(scope="module")
def kernels():
    """``minicnn.kernels.cuda``, launching through the emulation."""
    saved = sys.modules.get("cupy")
    sys.modules["cupy"] = _EmulatedCupy
    try:
        yield cuda
    finally:
        if saved is None:
            del sys.modules["cupy"]
        else:
            sys.modules["cupy"] = saved


def three_ways(call):
    """``call()`` as launched, with threads in reverse order, and with one block;
    returns the three results, which must agree bit for bit."""
    results = [call()]
    blocks = cuda.MAX_BLOCKS
    try:
        _EmulatedCupy.reverse = True
        results.append(call())
        _EmulatedCupy.reverse = False
        cuda.MAX_BLOCKS = 1
        results.append(call())
    finally:
        _EmulatedCupy.reverse, cuda.MAX_BLOCKS = False, blocks
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert np.array_equal(a, b, equal_nan=True)
    return results[0]


@st.composite
def windows(draw, paddings=("valid", "same", "full")):
    """An NHWC shape, a window, strides and a padding that fit each other."""
    padding = draw(st.sampled_from(paddings))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h = draw(st.integers(kh if padding == "valid" else 1, 9))
    w = draw(st.integers(kw if padding == "valid" else 1, 9))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    pads, out_hw = resolve_padding((h, w), (kh, kw), (sh, sw), padding)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return (n, h, w, c), (kh, kw), (sh, sw), pads, out_hw, padding, dtype, draw(st.integers(0, 2**31))


def _numba():
    return pytest.importorskip("minicnn.kernels.numba_cpu")


# ---------------------------------------------------------------------------------
# im2col.cu
# ---------------------------------------------------------------------------------
@settings(deadline=None, max_examples=60)
@given(windows(), st.sampled_from([0.0, -np.inf, np.inf]))
def test_im2col_kernel_equals_the_array_code(kernels, config, pad_value):
    shape, k, s, pads, (oh, ow), _, dtype, seed = config
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    mc.backend.set_backend("numpy")
    expected = ops.im2col(x, k, s, pads, (oh, ow), pad_value)

    def run():
        col = np.empty_like(expected)
        kernels.im2col(x, *k, *s, pads[0][0], pads[1][0], oh, ow, pad_value, col)
        return [col]
    np.testing.assert_array_equal(three_ways(run)[0], expected)


@settings(deadline=None, max_examples=60)
@given(windows())
def test_col2im_kernel_equals_the_array_code_and_numba(kernels, config):
    shape, k, s, pads, (oh, ow), _, dtype, seed = config
    n, _, _, c = shape
    dcol = np.random.default_rng(seed).standard_normal((n, oh, ow, *k, c)).astype(dtype)
    mc.backend.set_backend("numpy")
    expected = ops.col2im(dcol, shape, k, s, pads)

    def run():
        dx = np.full(shape, np.nan, dtype)  # every entry must be written
        kernels.col2im(dcol, *s, pads[0][0], pads[1][0], dx)
        return [dx]
    dx = three_ways(run)[0]
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(dx, expected, rtol=tol, atol=tol)
    numba = _numba()
    same_order = np.empty(shape, dtype)
    numba.col2im(dcol, *s, pads[0][0], pads[1][0], same_order)
    np.testing.assert_array_equal(dx, same_order)  # the same sums in the same order


# ---------------------------------------------------------------------------------
# pooling.cu
# ---------------------------------------------------------------------------------
def _pool_input(shape, dtype, seed, values):
    rng = np.random.default_rng(seed)
    if values == "ties":        # many equal values: the first extreme cell must win
        return rng.integers(-1, 2, shape).astype(dtype)
    x = rng.standard_normal(shape).astype(dtype)
    if values == "nan":         # a few NaN: the first NaN of a window wins
        x[rng.random(shape) < 0.15] = np.nan
    if values == "inf":         # whole regions at -inf/+inf, the padding values
        x[rng.random(shape) < 0.5] = rng.choice([-np.inf, np.inf])
    return x


@settings(deadline=None, max_examples=80)
@given(windows(("valid", "same")), st.sampled_from(["max", "min", "avg"]),
       st.sampled_from(["normal", "ties", "nan", "inf"]))
def test_pooling_kernels_equal_the_array_code(kernels, config, mode, values):
    shape, k, s, pads, (oh, ow), padding, dtype, seed = config
    if mode == "avg" and values in ("nan", "inf"):
        values = "normal"  # a mean of infinities is NaN either way; nothing to route
    x = _pool_input(shape, dtype, seed, values)
    n, h, w, c = shape
    dy = np.random.default_rng(seed + 1).standard_normal((n, oh, ow, c)).astype(dtype)
    mc.backend.set_backend("numpy")
    y_expected, cache = ops.pool2d_forward(x, k, s, padding, mode)
    dx_expected = ops.pool2d_backward(dy, cache)
    window = (*k, *s, pads[0][0], pads[1][0])

    def run():
        y = np.full((n, oh, ow, c), 7.0, dtype)
        dx = np.full(shape, np.nan, dtype)
        if mode == "avg":
            kernels.avg_pool_forward(x, *window, y)
            kernels.avg_pool_backward(dy, *window, dx)
            return [y, dx]
        winner = np.full((n, oh, ow, c), -7, np.int32)
        kernels.extreme_pool_forward(x, *window, mode == "max", y, winner)
        kernels.extreme_pool_backward(dy, winner, *window, dx)
        return [y, dx, winner]
    y, dx, *winner = three_ways(run)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    if mode == "avg":
        np.testing.assert_allclose(y, y_expected, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(y, y_expected)  # a selection: exact
    np.testing.assert_allclose(dx, dx_expected, rtol=tol, atol=tol)

    numba = _numba()  # the numba kernels add in the same order: the same bits
    y_nb, dx_nb = np.empty_like(y), np.empty_like(dx)
    if mode == "avg":
        numba.avg_pool_forward(x, *window, y_nb)
        numba.avg_pool_backward(dy, *window, dx_nb)
    else:
        w_nb = np.empty_like(winner[0])
        numba.extreme_pool_forward(x, *window, mode == "max", y_nb, w_nb)
        numba.extreme_pool_backward(dy, w_nb, *window, dx_nb)
        np.testing.assert_array_equal(winner[0], w_nb)
    np.testing.assert_array_equal(y, y_nb)
    np.testing.assert_array_equal(dx, dx_nb)


def test_max_pool_kernel_keeps_keras_first_maximum_and_first_nan(kernels):
    """Hand-made windows: ties go to the first cell (row-major), a NaN wins and the
    first NaN stays; a window of padding and -inf keeps its first (padding) cell."""
    x = np.array([[5, 5], [1, 5]], np.float32).reshape(1, 2, 2, 1)
    y, winner = np.empty((1, 1, 1, 1), np.float32), np.empty((1, 1, 1, 1), np.int32)
    kernels.extreme_pool_forward(x, 2, 2, 2, 2, 0, 0, True, y, winner)
    assert y.item() == 5 and winner.item() == 0
    x = np.array([[1, np.nan], [np.nan, 9]], np.float32).reshape(1, 2, 2, 1)
    kernels.extreme_pool_forward(x, 2, 2, 2, 2, 0, 0, True, y, winner)
    assert np.isnan(y.item()) and winner.item() == 1
    x = np.full((1, 2, 2, 1), -np.inf, np.float32)
    kernels.extreme_pool_forward(x, 3, 3, 2, 2, 1, 1, True, y, winner)  # starts on padding
    assert y.item() == -np.inf and winner.item() == -1


# ---------------------------------------------------------------------------------
# elementwise.cu
# ---------------------------------------------------------------------------------
@settings(deadline=None, max_examples=40)
@given(st.integers(1, 600), st.integers(1, 12), st.sampled_from(["linear", "relu", "tanh"]),
       st.booleans(), st.sampled_from([np.float32, np.float64]), st.integers(0, 2**31))
def test_epilogue_kernels_equal_the_array_code(kernels, rows, channels, activation,
                                               use_bias, dtype, seed):
    from minicnn.ops.activations import EPILOGUE_KINDS, _bias_row
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((rows, channels)) * 3).astype(dtype)
    every_37th = z.reshape(-1)[::37]  # NaN and infinities pass through, -0.0 stays
    every_37th[...] = np.resize(np.array([np.nan, np.inf, -np.inf, -0.0], dtype), every_37th.size)
    b = rng.standard_normal(channels).astype(dtype) if use_bias else None
    dy = rng.standard_normal(z.shape).astype(dtype)
    mc.backend.set_backend("numpy")
    y_expected, cache = ops.bias_activation_forward(z.copy(), b, activation)
    dz_expected = ops.activation_backward(dy, cache)
    kind = EPILOGUE_KINDS[activation]

    def run():
        y = z.copy()
        bias = np.empty(0, dtype) if b is None else _bias_row(b)
        kernels.bias_activation(y.reshape(-1), bias, kind)
        dz = np.full_like(dy, np.nan)
        if activation != "linear":  # relu and tanh keep their output for the gradient
            kernels.activation_gradient(dy.reshape(-1), y.reshape(-1), kind, dz.reshape(-1))
        return [y, dz]
    y, dz = three_ways(run)
    if activation == "tanh":  # libm's tanh against NumPy's: a few ulp
        tol = 1e-15 if dtype == np.float64 else 3e-7
        np.testing.assert_allclose(y, y_expected, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(y, y_expected)  # one add (and a select): exact
    if activation != "linear":
        tol = 1e-14 if dtype == np.float64 else 2e-6
        np.testing.assert_allclose(dz, dz_expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_kernel_is_bitwise_the_numpy_update(kernels, dtype):
    rng = np.random.default_rng(4)
    shapes = [(3, 3, 2, 5), (5,), (37, 11)]
    start = [rng.standard_normal(s).astype(dtype) for s in shapes]
    steps = [[(rng.standard_normal(s) * 10.0 ** rng.integers(-8, 2)).astype(dtype)
              for s in shapes] for _ in range(3)]
    mc.backend.set_backend("numpy")
    expected = [w.copy() for w in start]
    opt = mc.optimizers.Adam(3e-3)
    for grads in steps:
        opt.apply(grads, expected)
    state = opt.get_state()

    def run():
        weights = [w.copy() for w in start]
        m = [np.zeros_like(w) for w in start]
        v = [np.zeros_like(w) for w in start]
        ref = mc.optimizers.Adam(3e-3)
        for t, grads in enumerate(steps, start=1):
            alpha = ref.learning_rate * np.sqrt(1 - ref.beta_2 ** t) / (1 - ref.beta_1 ** t)
            for w, g, mi, vi in zip(weights, grads, m, v):
                kernels.adam_update(w.reshape(-1), g.reshape(-1), mi.reshape(-1), vi.reshape(-1),
                                    1 - ref.beta_1, 1 - ref.beta_2, alpha, ref.epsilon)
        return weights + m + v
    got = three_ways(run)
    for a, e in zip(got, expected + state["m"] + state["v"]):
        np.testing.assert_array_equal(a, e)


def test_float32_subnormals_count_as_zero_as_on_the_gpu(kernels):
    """CuPy compiles with -ftz=true, and the emulation flushes float32 subnormals the
    same way: a max over (0, 1e-40) is 0, won by the first cell; float64 keeps them."""
    for dtype, best, first in ((np.float32, 0.0, 0), (np.float64, 1e-40, 1)):
        x = np.array([0.0, 1e-40], dtype).reshape(1, 1, 2, 1)
        y, winner = np.empty((1, 1, 1, 1), dtype), np.empty((1, 1, 1, 1), np.int32)
        kernels.extreme_pool_forward(x, 1, 2, 1, 2, 0, 0, True, y, winner)
        assert y.item() == best and winner.item() == first
    z = np.array([1e-39, -1e-39, 1.0], np.float32)
    kernels.bias_activation(z, np.array([1e-39], np.float32), kernels.LINEAR)
    np.testing.assert_array_equal(z, [0.0, 0.0, 1.0])  # 2e-39 and 0 both flush


# ---------------------------------------------------------------------------------
# the emulation itself: strict where a GPU would silently go wrong
# ---------------------------------------------------------------------------------
_SCALE = """
template <typename T>
__global__ void scale(T* x, long long n, T f)
{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x)
        x[i] *= f;
}
template <typename T>
__global__ void overrun(T* x, long long n)
{
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    x[i] = 1;   // no bound check: threads past n write outside x
}
"""


def test_emulation_runs_every_thread_of_the_grid():
    mod = emulation.Module(_SCALE, ["scale<float>"])
    x = np.arange(1000, dtype=np.float32)
    mod.launch("scale<float>", (3,), (64,), (x, np.int64(x.size), np.float32(2)))
    np.testing.assert_array_equal(x, 2 * np.arange(1000, dtype=np.float32))


def test_emulation_catches_a_kernel_writing_past_its_array():
    mod = emulation.Module(_SCALE, ["overrun<double>"])
    x = np.zeros(100)
    with pytest.raises(RuntimeError, match=r"overrun<double>: the kernel wrote outside array 'x'"):
        mod.launch("overrun<double>", 1, 128, (x, np.int64(x.size)))


@pytest.mark.parametrize("args, message", [
    ((np.zeros(4, np.float64), np.int64(4), np.float32(2)), r"'x' is float\*, which needs float32"),
    ((np.zeros(4, np.float32), 4, np.float32(2)), r"'n' is long long; pass a numpy.int64"),
    ((np.zeros(4, np.float32), np.int32(4), np.float32(2)), r"'n' is long long"),
    ((np.zeros(4, np.float32), np.int64(4), 2.0), r"'f' is float; pass a numpy.float32"),
    ((np.zeros((4, 4), np.float32)[:, 0], np.int64(4), np.float32(2)), r"C-contiguous"),
    ((np.zeros(4, np.float32), np.int64(4)), r"expected 3 arguments \(x, n, f\)"),
])
def test_emulation_refuses_what_a_gpu_would_misread(args, message):
    mod = emulation.Module(_SCALE, ["scale<float>"])
    with pytest.raises(TypeError, match=message):
        mod.launch("scale<float>", 1, 32, args)


def test_emulation_refuses_shared_memory_and_barriers():
    """They are not emulated, so a kernel using them must not compile here."""
    code = ("template <typename T> __global__ void k(T* x) {\n"
            "    __shared__ T tile[32]; tile[threadIdx.x] = x[0]; __syncthreads(); }\n")
    with pytest.raises(RuntimeError, match="does not compile for the CPU emulation"):
        emulation.Module(code, ["k<float>"])
