"""The numba backend's direct convolution (few channels, few filters, stride 1): the
same numbers as im2col + GEMM and as the loop oracle, forward and backward, over
random shapes, paddings, data formats and float types; the result does not depend
on the thread count; the kernel set chooses it only for the shapes it was measured
to win on."""
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


def both_paths(x, w, b, padding, data_format="channels_last", need_dx=True, seed=1):
    """(y, dx, dw, db) on the numba backend, made to take the direct path whatever the
    shape (the kernels must be right for every shape, not only where they are chosen),
    and on the numpy backend (im2col + GEMM), for the same upstream gradient."""
    out = {}
    kernels = numba_cpu()
    chooses = kernels.direct_conv_suits
    for backend in ("numba", "numpy"):
        mc.backend.set_backend(backend)
        kernels.direct_conv_suits = lambda c, f, kh, kw, sh, sw: sh == sw == 1
        try:
            y, cache = conv2d_forward(x, w, b, (1, 1), padding, data_format)
            if backend == "numba":
                assert cache[-1] == "direct", "the numba backend did not take the direct path"
            dy = np.random.default_rng(seed).standard_normal(y.shape).astype(x.dtype)
            dx, dw, db = conv2d_backward(dy, cache, need_dx=need_dx)
            out[backend] = (y, dx, dw, db, dy)
        finally:
            kernels.direct_conv_suits = chooses
            mc.backend.set_backend("numpy")
    return out["numba"], out["numpy"]


@st.composite
def direct_layers(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    padding = draw(st.sampled_from(["valid", "same", "full"]))
    h = draw(st.integers(kh if padding == "valid" else 1, 11))
    wd = draw(st.integers(kw if padding == "valid" else 1, 11))
    n = draw(st.integers(1, 11))  # across the gradient's groups of 8 images
    c = draw(st.integers(1, 4))
    f = draw(st.integers(1, 9))
    return n, h, wd, c, f, kh, kw, padding


@settings(max_examples=60, deadline=None)
@given(direct_layers(), st.sampled_from(["float64", "float32"]),
       st.sampled_from(["channels_last", "channels_first"]), st.booleans(),
       st.integers(0, 2**31 - 1))
def test_direct_path_equals_im2col(layer, dtype, data_format, with_bias, seed):
    n, h, wd, c, f, kh, kw, padding = layer
    x, w, b = layer_arrays(np.random.default_rng(seed), n, h, wd, c, f, kh, kw, dtype,
                           data_format, with_bias)
    direct, gemm = both_paths(x, w, b, padding, data_format)
    assert_passes_agree(direct, gemm, 1e-12 if dtype == "float64" else 2e-5)


@settings(max_examples=25, deadline=None)
@given(direct_layers(), st.integers(0, 2**31 - 1))
def test_direct_path_equals_the_loop_oracle(layer, seed):
    n, h, wd, c, f, kh, kw, padding = layer
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((min(n, 3), h, wd, c))
    w = rng.standard_normal((kh, kw, c, f))
    b = rng.standard_normal(f)
    (y, dx, dw, db, dy), _ = both_paths(x, w, b, padding)
    np.testing.assert_allclose(y, conv2d_forward_loop(x, w, b, (1, 1), padding), atol=1e-12)
    ex_dx, ex_dw, ex_db = conv2d_backward_loop(dy, x, w, (1, 1), padding)
    np.testing.assert_allclose(dx, ex_dx, atol=1e-12)
    np.testing.assert_allclose(dw, ex_dw, atol=1e-11)
    np.testing.assert_allclose(db, ex_db, atol=1e-11)


def test_lenet_first_layer_without_input_gradient():
    """LeNet-5's first layer, as a network's first layer runs it (no dX)."""
    rng = np.random.default_rng(0)
    x = rng.random((20, 28, 28, 1)).astype(np.float32)
    w = (rng.standard_normal((5, 5, 1, 6)) * 0.2).astype(np.float32)
    direct, gemm = both_paths(x, w, np.zeros(6, np.float32), "same", need_dx=False)
    assert direct[1] is None and gemm[1] is None
    np.testing.assert_allclose(direct[0], gemm[0], atol=2e-6)
    np.testing.assert_allclose(direct[2], gemm[2], rtol=2e-5, atol=1e-4)


def test_weight_gradient_does_not_depend_on_the_thread_count():
    import numba
    rng = np.random.default_rng(3)
    x = rng.standard_normal((37, 12, 12, 2)).astype(np.float32)
    dy = rng.standard_normal((37, 12, 12, 5)).astype(np.float32)
    w = rng.standard_normal((3, 3, 2, 5)).astype(np.float32)
    kernels = numba_cpu()
    results = []
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            dw, y = np.empty_like(w), np.empty((37, 12, 12, 5), np.float32)
            # the parallel compilations: at this size a call would run the serial ones
            kernels.direct_conv_weight_gradient.parallel(x, dy, 1, 1, dw)
            kernels.direct_conv_forward.parallel(x, w, 1, 1, y)
            results.append((dw, y))
    finally:
        numba.set_num_threads(before)
    for dw, y in results[1:]:
        assert np.array_equal(dw, results[0][0]) and np.array_equal(y, results[0][1])


@pytest.mark.parametrize("c, f, k, strides, expected", [
    (1, 6, 5, (1, 1), True),     # LeNet-5's first layer
    (3, 8, 5, (1, 1), True),
    (3, 6, 7, (1, 1), True),
    (1, 6, 3, (1, 1), False),    # a 3x3 window: too few cells
    (1, 16, 5, (1, 1), False),   # wide enough for the products
    (6, 16, 5, (1, 1), False),   # LeNet-5's second layer
    (4, 4, 5, (1, 1), False),
    (1, 6, 5, (2, 2), False),    # strided: the shifted reads assume stride 1
    (1, 6, 5, (1, 2), False),
])
def test_direct_path_is_chosen_by_measured_shape(c, f, k, strides, expected):
    assert numba_cpu().direct_conv_suits(c, f, k, k, *strides) is expected


def test_lenet5_first_layer_takes_the_direct_path_by_itself():
    mc.backend.set_backend("numba")
    try:
        x = np.zeros((2, 28, 28, 1), np.float32)
        _, cache = conv2d_forward(x, np.zeros((5, 5, 1, 6), np.float32), None, (1, 1), "same")
        assert cache[-1] == "direct"
        _, cache = conv2d_forward(x, np.zeros((3, 3, 1, 6), np.float32), None, (1, 1), "same")
        assert cache[-1] != "direct"
    finally:
        mc.backend.set_backend("numpy")


def test_other_kernel_sets_never_choose_it():
    from minicnn.kernels import cuda, reference
    for kernels in (cuda, reference):
        assert kernels.direct_conv_suits(1, 1, 3, 3, 1, 1) is False


def test_the_path_benchmark_runs_its_smoke_configuration(tmp_path):
    """benchmarks/bench_conv_paths.py, the measurement behind direct_conv_suits and
    winograd_suits."""
    import json
    import os
    import subprocess
    import sys
    script = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "bench_conv_paths.py")
    result = subprocess.run([sys.executable, script, "--smoke", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if " k3 " in line]
    assert len(rows) == 2 and all(line.split()[-1] in ("direct", "im2col") for line in rows)
    written = json.loads((tmp_path / "bench_conv_paths.json").read_text())
    assert written["smoke"] is True and len(written["cases"]) == 2
    assert {"direct", "im2col"} == set(written["cases"][0]["ms"])
    assert len(written["winograd_cases"]) == 1
    assert {"winograd", "im2col"} == set(written["winograd_cases"][0]["ms"])
    assert result.stdout.splitlines()[-3].split()[-1] in ("winograd", "im2col")
