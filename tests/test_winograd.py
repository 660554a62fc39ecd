"""The numba backend's Winograd F(2x2, 3x3) path for 3x3 stride-1 layers: the same
numbers as im2col + GEMM and as the float64 loop oracle, forward and backward, over
random shapes (odd and even, every padding, both data formats, chunked batches);
each transform is the exact adjoint of its partner; the result does not depend on
the thread count; the kernel set chooses the path only where it was measured to win."""
import numpy as np
import pytest
from conv_paths import assert_passes_agree, layer_arrays
from hypothesis import given, settings, strategies as st

import minicnn as mc
from minicnn.ops import conv2d_backward, conv2d_forward
from minicnn.reference import conv2d_backward_loop, conv2d_forward_loop

pytestmark = pytest.mark.skipif("numba" not in mc.backend.available(),
                                reason="numba does not import here")


def numba_cpu():
    from minicnn.kernels import numba_cpu as kernels
    return kernels


def run_layer(x, w, b, padding, data_format="channels_last", need_dx=True, seed=1,
              backend="numba", winograd=True, budget=None, activation="linear"):
    """(y, dx, dw, db, dy, path) of one forward and backward pass; on the numba backend
    the kernel set is made to choose Winograd (or not) whatever the shape."""
    kernels = numba_cpu()
    chooses = kernels.winograd_suits
    mc.backend.set_backend(backend)
    kernels.winograd_suits = lambda c, f, kh, kw, sh, sw: winograd and kh == kw == 3 \
        and sh == sw == 1
    mc.backend.set_im2col_budget(budget)
    try:
        y, cache = conv2d_forward(x, w, b, (1, 1), padding, data_format, activation)
        dy = np.random.default_rng(seed).standard_normal(y.shape).astype(x.dtype)
        dx, dw, db = conv2d_backward(dy, cache, need_dx=need_dx)
        return y, dx, dw, db, dy, cache[-1]
    finally:
        kernels.winograd_suits = chooses
        mc.backend.set_im2col_budget(None)
        mc.backend.set_backend("numpy")


@st.composite
def layers(draw):
    padding = draw(st.sampled_from(["valid", "same", "full"]))
    low = 3 if padding == "valid" else 1
    return (draw(st.integers(1, 5)), draw(st.integers(low, 11)), draw(st.integers(low, 11)),
            draw(st.integers(1, 9)), draw(st.integers(1, 9)), padding)


@settings(max_examples=60, deadline=None)
@given(layers(), st.sampled_from(["float64", "float32"]),
       st.sampled_from(["channels_last", "channels_first"]), st.booleans(), st.booleans(),
       st.sampled_from(["linear", "relu", "tanh"]), st.integers(0, 2**31 - 1))
def test_winograd_equals_im2col(layer, dtype, data_format, with_bias, chunked, activation,
                                seed):
    """float32 runs the bias and activation inside the transforms, float64 after them.
    With an activation the reference is numba's own im2col path: its float32 tanh is
    XLA's approximation, NumPy's tanh differs from it by up to 3.3e-7."""
    n, h, wd, c, f, padding = layer
    x, w, b = layer_arrays(np.random.default_rng(seed), n, h, wd, c, f, 3, 3, dtype,
                           data_format, with_bias)
    # chunked: a budget of one byte makes every image a chunk of its own
    *wino, path = run_layer(x, w, b, padding, data_format, budget=1 if chunked else None,
                            activation=activation)
    assert path == "winograd"
    *gemm, gemm_path = run_layer(x, w, b, padding, data_format, winograd=False,
                                 backend="numpy" if activation == "linear" else "numba",
                                 activation=activation)
    assert gemm_path != "winograd"
    # in float32 the two round differently; an activation's derivative, taken at the two
    # slightly different outputs, adds a little more (tanh: 1 - y^2)
    tol = 1e-12 if dtype == "float64" else 3e-6 if activation == "linear" else 1e-5
    assert_passes_agree(wino, gemm, tol)


@settings(max_examples=25, deadline=None)
@given(layers(), st.integers(0, 2**31 - 1))
def test_winograd_equals_the_loop_oracle(layer, seed):
    n, h, wd, c, f, padding = layer
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((min(n, 3), h, wd, c))
    w = rng.standard_normal((3, 3, c, f))
    b = rng.standard_normal(f)
    y, dx, dw, db, dy, path = run_layer(x, w, b, padding)
    assert path == "winograd"
    np.testing.assert_allclose(y, conv2d_forward_loop(x, w, b, (1, 1), padding), atol=1e-12)
    ex_dx, ex_dw, ex_db = conv2d_backward_loop(dy, x, w, (1, 1), padding)
    np.testing.assert_allclose(dx, ex_dx, atol=1e-12)
    np.testing.assert_allclose(dw, ex_dw, atol=1e-11)
    np.testing.assert_allclose(db, ex_db, atol=1e-11)


def test_float32_error_is_that_of_im2col():
    """Against the float64 oracle, Winograd's float32 error is of the size of im2col's
    (bench_kernels.py's 3x3 layer, two images)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 56, 56, 64))
    w = rng.standard_normal((3, 3, 64, 64)) * np.sqrt(2 / 576)
    exact = run_layer(x, w, None, "same")
    errors = {}
    for winograd in (True, False):
        got = run_layer(x.astype(np.float32), w.astype(np.float32), None, "same",
                        winograd=winograd)
        errors[winograd] = [float(np.abs(g - e).max() / np.abs(e).max())
                            for g, e in zip(got[:3], exact[:3])]
    for name, wino, gemm in zip(("y", "dx", "dw"), errors[True], errors[False]):
        assert wino < 3 * gemm + 1e-7 and wino < 2e-6, (name, wino, gemm)


def test_transforms_are_each_others_adjoints():
    """<input_transform(x), v> == <x, input_gradient(v)> and
    <output_transform(m), g> == <m, gradient_transform(g)>: the backward kernels are
    the transposes of the forward ones, for a padded, odd-sized case."""
    kernels = numba_cpu()
    rng = np.random.default_rng(2)
    n, h, w, c, top, left = 2, 7, 5, 3, 1, 2
    oh, ow = 7, 7   # padding 1/1 rows, 2/2 columns ("full" columns)
    th, tw = 4, 4
    x = rng.standard_normal((n, h, w, c))
    v = rng.standard_normal((16, n * th * tw, c))
    tx = np.empty_like(v)
    kernels.winograd_input_transform(x, top, left, th, tw, tx)
    gv = np.full_like(x, np.nan)  # the kernel writes every value: no NaN may stay
    kernels.winograd_input_gradient(v, top, left, th, tw, gv)
    assert np.isclose(np.vdot(tx, v), np.vdot(x, gv), rtol=1e-12)
    m = rng.standard_normal((16, n * th * tw, 4))
    g = rng.standard_normal((n, oh, ow, 4))
    y = np.empty_like(g)
    kernels.winograd_output_transform(m, th, tw, np.zeros(ow * 4), kernels.LINEAR, y)
    d = np.empty_like(m)
    kernels.winograd_gradient_transform(g, g, kernels.LINEAR, th, tw, d)
    assert np.isclose(np.vdot(y, g), np.vdot(m, d), rtol=1e-12)


@pytest.mark.parametrize("activation", ["linear", "relu", "tanh"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_the_fused_epilogue_is_the_separate_pass(monkeypatch, activation, data_format):
    """float32 Winograd adds the bias and applies relu/tanh as its output transform
    writes y, and takes dy back through them as its gradient transform reads it: y, dx
    and dw are bit for bit those of the plain transforms followed by the epilogue pass
    (and its gradient before them); db, summed from the tiles, agrees to rounding."""
    from minicnn.ops import conv as conv_op
    rng = np.random.default_rng(7)
    x, w, b = layer_arrays(rng, 3, 9, 8, 5, 6, 3, 3, "float32", data_format, True)
    x[0, 0] = 0  # some outputs exactly at the relu's kink
    fused = run_layer(x, w, b, "same", data_format, activation=activation)
    monkeypatch.setattr(conv_op, "fuses_epilogue", lambda *args: False)
    apart = run_layer(x, w, b, "same", data_format, activation=activation)
    for name, got, want in zip(("y", "dx", "dw"), fused[:3], apart[:3]):
        np.testing.assert_array_equal(got, want, err_msg=name)
    np.testing.assert_allclose(fused[3], apart[3], rtol=1e-5, atol=1e-5)


def test_result_does_not_depend_on_the_thread_count(monkeypatch):
    import numba
    from minicnn.kernels import numba_launch
    monkeypatch.setattr(numba_launch, "PARALLEL_MIN_VALUES", 1)  # parallel at any size
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 13, 12, 16)).astype(np.float32)
    w = rng.standard_normal((3, 3, 16, 16)).astype(np.float32)
    results = []
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            results.append(run_layer(x, w, None, "same")[:3])
    finally:
        numba.set_num_threads(before)
    monkeypatch.setattr(numba_launch, "PARALLEL_MIN_VALUES", 10**12)  # and serial
    results.append(run_layer(x, w, None, "same")[:3])
    for got in results[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(got, results[0]))


@pytest.mark.parametrize("c, f, k, strides, expected", [
    (64, 64, 3, (1, 1), True),     # bench_kernels.py's 3x3 layer
    (256, 384, 3, (1, 1), True),   # the AlexNet variant's 3x3 layers
    (16, 16, 3, (1, 1), True),
    (8, 64, 3, (1, 1), False),     # too few channels
    (64, 8, 3, (1, 1), False),     # too few filters
    (3, 32, 3, (1, 1), False),
    (64, 64, 5, (1, 1), False),    # F(2x2, 3x3) is for 3x3 windows
    (64, 64, 3, (2, 2), False),    # and stride 1
])
def test_winograd_is_chosen_by_measured_shape(c, f, k, strides, expected):
    assert numba_cpu().winograd_suits(c, f, k, k, *strides) is expected


def test_a_wide_3x3_layer_takes_winograd_by_itself():
    mc.backend.set_backend("numba")
    try:
        x = np.zeros((2, 8, 8, 64), np.float32)
        _, cache = conv2d_forward(x, np.zeros((3, 3, 64, 64), np.float32), None, (1, 1), "same")
        assert cache[-1] == "winograd"
        _, cache = conv2d_forward(x, np.zeros((3, 3, 64, 64), np.float32), None, (2, 2), "same")
        assert cache[-1] == "im2col"
    finally:
        mc.backend.set_backend("numpy")


def test_other_kernel_sets_never_choose_it():
    from minicnn.kernels import cuda, reference
    for kernels in (cuda, reference):
        assert kernels.winograd_suits(64, 64, 3, 3, 1, 1) is False


def test_chunks_keep_their_tiles_within_the_cache_share(monkeypatch):
    """Within the im2col budget, a chunk's tiles also stay under WINOGRAD_CHUNK_BYTES
    (half a core's L2): here three images' worth; the results those of one chunk."""
    kernels = numba_cpu()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 6, 6, 4))
    w, b = rng.standard_normal((3, 3, 4, 5)), rng.standard_normal(5)
    whole = run_layer(x, w, b, "same")
    per_image = kernels.winograd_bytes_per_image(6, 6, 4, x.dtype.itemsize)
    monkeypatch.setattr(kernels, "WINOGRAD_CHUNK_BYTES", 3 * per_image + 1)
    mc.backend.set_backend("numba")
    chooses = kernels.winograd_suits
    kernels.winograd_suits = lambda *args: True
    try:
        _, cache = conv2d_forward(x, w, b, (1, 1), "same")
    finally:
        kernels.winograd_suits = chooses
        mc.backend.set_backend("numpy")
    assert cache[-2] == 3 and cache[-1] == "winograd"
    chunked = run_layer(x, w, b, "same")
    for a, c in zip(whole[:4], chunked[:4]):
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)
