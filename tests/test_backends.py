"""Every backend computes the same layers: numba against numpy, forward and backward,
over random configurations of every padding mode, stride and data format; and the
backend registry's errors.

Each comparison also says which of numba's kernels must have run (recorded by
tests/kernel_spy.py): where none serves a case (float64 through the float32-only
epilogue, layers without kernels) it says ARRAY_PATH, so a comparison of NumPy with
itself is a stated fact, not an accident."""
from contextlib import nullcontext

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from kernel_spy import ARRAY_PATH, CONV_PATH_KERNELS, spy_kernels

import minicnn as mc
from minicnn.layers import (Activation, AveragePooling2D, BatchNormalization, Conv2D, Dense,
                            Dropout, Flatten, MaxPooling2D, MinPooling2D)

BACKENDS = mc.backend.available()
needs_numba = pytest.mark.skipif("numba" not in BACKENDS, reason="numba does not import here")


def run(backend, make_layer, x, dy_seed, training=True):
    """Forward and backward of a fresh float64 layer on ``backend``; weights are
    made by the same seeded initializer, so both backends hold identical weights."""
    mc.backend.set_backend(backend)
    try:
        mc.utils.set_random_seed(7)
        layer = make_layer()
        y = layer.forward(x, training=training)
        dy = np.random.default_rng(dy_seed).standard_normal(y.shape).astype(y.dtype)
        dx = layer.backward(dy)
        return [mc.backend.to_host(a) for a in (y, dx, *layer.get_gradients())]
    finally:
        mc.backend.set_backend("numpy")


EXTREME_POOL = frozenset({"extreme_pool_forward", "extreme_pool_backward"})
AVG_POOL = frozenset({"avg_pool_forward", "avg_pool_backward"})
EPILOGUE = frozenset({"bias_activation"})                     # bias and/or activation
EPILOGUE_AND_GRADIENT = EPILOGUE | {"activation_gradient"}    # relu/tanh, both ways
NORMALIZATION = frozenset({"channel_sums", "scale_shift", "normalization_input_gradient"})
DROPOUT = frozenset({"dropout_apply"})


def assert_same_on_numba(make_layer, x, kernels, training=True, dtype="float64"):
    """numba computes what numpy computes for a fresh layer, forward and backward,
    with exactly ``kernels`` of numba's set run, on ``dtype`` (ARRAY_PATH: none; the
    numba backend must take the plain array code then)."""
    mc.backend.set_floatx(dtype)
    x = x.astype(dtype)
    expected = run("numpy", make_layer, x, 1, training)
    with spy_kernels("numba") as spy:
        actual = run("numba", make_layer, x, 1, training)
    spy.assert_ran(kernels)
    for name in spy.ran:
        assert spy.dtypes(name) == {np.dtype(dtype)}, name
    assert len(actual) == len(expected)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == "float64" else dict(rtol=1e-5, atol=2e-6)
    for a, e in zip(actual, expected):
        assert a.dtype == e.dtype == np.dtype(dtype)
        np.testing.assert_allclose(a, e, **tol)


@st.composite
def window_configs(draw, paddings):
    padding = draw(st.sampled_from(paddings))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    h, w = (draw(st.integers(k[0] if padding == "valid" else 1, 9)),
            draw(st.integers(k[1] if padding == "valid" else 1, 9)))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    data_format = draw(st.sampled_from(["channels_last", "channels_first"]))
    shape = (n, h, w, c) if data_format == "channels_last" else (n, c, h, w)
    return padding, k, s, data_format, shape, draw(st.integers(0, 2**31 - 1))


@needs_numba
@settings(deadline=None, max_examples=60)
@given(window_configs(["valid", "same", "full"]), st.integers(1, 3),
       st.sampled_from(["linear", "relu", "tanh"]), st.booleans())
def test_conv2d_same_on_numba(config, filters, activation, use_bias):
    padding, k, s, data_format, shape, seed = config
    x = np.random.default_rng(seed).standard_normal(shape)
    # at most 16 window cells and 4 channels: im2col's path; float64: no epilogue kernel
    assert_same_on_numba(lambda: Conv2D(filters, k, s, padding, activation=activation,
                                        use_bias=use_bias, data_format=data_format), x,
                         CONV_PATH_KERNELS["im2col"])


def pool_input(shape, seed, values, cls):
    """Pooling inputs: normal values, ties (values from {-1, 0, 1}: the first extreme
    cell must win) or a few NaN (for max/min: the first NaN wins)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-1, 2, shape).astype(float) if values == "ties" else rng.standard_normal(shape)
    if values == "nan" and cls is not AveragePooling2D:
        x[rng.random(shape) < 0.1] = np.nan
    return x


def pool_kernels(cls):
    return AVG_POOL if cls is AveragePooling2D else EXTREME_POOL


def adam_results(backend, start, steps):
    """Weights and Adam's slots after ``steps`` on ``backend``, from copies of ``start``."""
    mc.backend.set_backend(backend)
    weights = [w.copy() for w in start]
    opt = mc.optimizers.Adam(3e-3)
    for grads in steps:
        opt.apply(grads, weights)
    return weights + opt.get_state()["m"] + opt.get_state()["v"]


@needs_numba
@settings(deadline=None, max_examples=80)
@given(window_configs(["valid", "same"]),
       st.sampled_from([MaxPooling2D, MinPooling2D, AveragePooling2D]), st.booleans())
def test_pooling_same_on_numba(config, cls, ties):
    padding, k, s, data_format, shape, seed = config
    rng = np.random.default_rng(seed)
    # With ties (values from {-1, 0, 1}) both backends must pick the same first cell.
    x = rng.integers(-1, 2, shape).astype(float) if ties else rng.standard_normal(shape)
    assert_same_on_numba(lambda: cls(k, s, padding, data_format=data_format), x,
                         pool_kernels(cls))


@needs_numba
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("make_layer, shape, training, float32_kernels", [
    # softmax and sigmoid have no kernel: their bias add is NumPy's too
    (lambda: Dense(5, activation="softmax"), (4, 7), True, ARRAY_PATH),
    (lambda: Dense(3, activation="sigmoid"), (2, 3, 6), True, ARRAY_PATH),
    (lambda: Dense(4, activation="relu"), (3, 2, 5), True, EPILOGUE_AND_GRADIENT),
    (lambda: Dense(4, activation="tanh", use_bias=False), (5, 6), True, EPILOGUE_AND_GRADIENT),
    (lambda: Dense(3, use_bias=False), (4, 6), True, ARRAY_PATH),  # nothing to add or apply
    (lambda: Dense(3), (4, 6), True, EPILOGUE),  # the bias add alone
    (lambda: Flatten(), (2, 3, 4, 5), True, ARRAY_PATH),
    (lambda: Flatten(data_format="channels_first"), (2, 3, 4, 5), True, ARRAY_PATH),
    (lambda: Activation("softmax"), (3, 6), True, ARRAY_PATH),
    (lambda: Activation("relu"), (3, 4, 6), True, EPILOGUE_AND_GRADIENT),
    (lambda: Activation("tanh"), (5, 7), True, EPILOGUE_AND_GRADIENT),
    (lambda: Dropout(0.3, seed=1), (4, 6), True, DROPOUT),
    (lambda: BatchNormalization(), (6, 5), True, NORMALIZATION),
    (lambda: BatchNormalization(), (3, 4, 4, 2), True, NORMALIZATION),
    (lambda: BatchNormalization(axis=1), (3, 2, 4, 4), True, ARRAY_PATH),  # channels first
    (lambda: BatchNormalization(), (3, 4, 4, 2), False, NORMALIZATION),
], ids=["dense-softmax", "dense-rank3", "dense-relu", "dense-tanh-nobias",
        "dense-linear-nobias", "dense-linear", "flatten", "flatten-cf", "softmax", "relu", "tanh",
        "dropout", "bn-dense", "bn-conv", "bn-cf", "bn-inference"])
def test_other_layers_same_on_numba(make_layer, shape, training, float32_kernels, dtype):
    """numba's element-wise kernels (the bias + activation epilogue, the relu/tanh
    gradient, batch normalization over the last axis, dropout) serve float32 only:
    float64 takes the plain array path on numba too, and so do, in either type, the
    layers that have no kernel (softmax, sigmoid, flatten, channels-first batch norm)."""
    x = np.random.default_rng(3).standard_normal(shape)
    kernels = float32_kernels if dtype == "float32" else ARRAY_PATH
    assert_same_on_numba(make_layer, x, kernels, training, dtype)


@needs_numba
def test_training_a_model_is_the_same_on_numba():
    """A whole LeNet-style step: the updated weights agree to float32 rounding."""
    def train(backend):
        mc.backend.set_backend(backend)
        try:
            mc.backend.clear_session()
            mc.utils.set_random_seed(0)
            model = mc.Sequential([
                Conv2D(4, 3, padding="same", activation="tanh", input_shape=(10, 10, 2)),
                MaxPooling2D(3, 2, padding="same"), Conv2D(6, 3, activation="relu"),
                AveragePooling2D(2), Flatten(), Dense(5, activation="softmax")])
            model.compile("adam", "sparse_categorical_crossentropy")
            rng = np.random.default_rng(1)
            x, y = rng.standard_normal((16, 10, 10, 2)), rng.integers(0, 5, 16)
            for _ in range(3):
                model.train_on_batch(x, y)
            return model.get_weights()
        finally:
            mc.backend.set_backend("numpy")

    with spy_kernels("numba") as spy:
        on_numba = train("numba")
    spy.assert_ran(CONV_PATH_KERNELS["im2col"] | EXTREME_POOL | AVG_POOL
                   | EPILOGUE_AND_GRADIENT | {"adam_update"})
    assert all(spy.dtypes(name) == {np.dtype("float32")} for name in spy.ran)
    for a, b in zip(on_numba, train("numpy")):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_available_always_has_numpy_and_the_default():
    assert mc.backend.available()[0] == "numpy"
    assert mc.backend.default_backend() in mc.backend.available()
    assert mc.backend.get_backend() == mc.backend.default_backend()


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown backend.*'numpy', 'numba', 'cupy'.*'torch'"):
        mc.backend.set_backend("torch")


@pytest.mark.skipif("cupy" in BACKENDS, reason="CuPy can run here")
def test_cupy_without_device_names_what_is_missing():
    before = mc.backend.get_backend()
    with pytest.raises(RuntimeError, match=r"set_backend\('cupy'\): CuPy"):
        mc.backend.set_backend("cupy")
    assert mc.backend.get_backend() == before


@pytest.mark.parametrize("backend", BACKENDS[:2])
@pytest.mark.parametrize("budget", [1, 3000])
def test_im2col_in_chunks_gives_the_same_result(backend, budget):
    """A budget smaller than one batch's im2col matrix splits the batch into chunks
    (down to one image); the result must not change."""
    mc.backend.set_floatx("float64")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 9, 8, 3))
    make = lambda: Conv2D(4, (3, 2), strides=(2, 1), padding="same")  # noqa: E731
    expected = run("numpy", make, x, 2)
    mc.backend.set_im2col_budget(budget)
    try:
        with (spy_kernels("numba") if "numba" in BACKENDS else nullcontext()) as spy:
            actual = run(backend, make, x, 2)
    finally:
        mc.backend.set_im2col_budget(None)
    if backend == "numba":
        # one image's matrix (5 * 8 * 3 * 2 * 3 float64 values, 5760 bytes) is larger
        # than either budget: one image per chunk, each folded back by its own col2im
        spy.assert_ran(CONV_PATH_KERNELS["im2col"])
        assert spy.count("col2im") == len(x)
        assert spy.count("im2col") >= len(x)
    elif spy is not None:
        spy.assert_ran(ARRAY_PATH)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("value", [0, -5, 1.5, True, "256MB"])
def test_im2col_budget_must_be_positive_bytes(value):
    with pytest.raises(ValueError, match=r"set_im2col_budget: expected a positive number"):
        mc.backend.set_im2col_budget(value)


@needs_numba
@pytest.mark.parametrize("cls", [MaxPooling2D, MinPooling2D])
def test_pooling_propagates_nan_the_same_way_on_numba(cls):
    """A NaN in a window wins (the first one), as with NumPy's argmax and in Keras."""
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 3))
    x[0, 1, 1, 0] = x[1, 4, 2, 2] = x[1, 4, 3, 2] = np.nan
    assert_same_on_numba(lambda: cls(3, 2, "same"), x, EXTREME_POOL)
    mc.backend.set_backend("numba")
    assert np.isnan(cls(3, 2, "same").forward(x)).sum() >= 2


@needs_numba
@pytest.mark.parametrize("cls, value", [(MaxPooling2D, -np.inf), (MinPooling2D, np.inf)])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_pooling_over_windows_of_infinities_routes_gradients_like_numpy(cls, value, padding):
    """Windows whose real cells all equal the padding value: the gradient goes where
    NumPy's argmax sends it (the window's first cell, dropped if that is padding),
    never to a pixel outside the window."""
    x = np.random.default_rng(1).standard_normal((2, 5, 5, 2))
    x[0] = value
    x[1, :3, :3, 1] = value
    assert_same_on_numba(lambda: cls(2, 2, padding), x, EXTREME_POOL)
    assert_same_on_numba(lambda: cls(3, 2, padding), x, EXTREME_POOL)


def test_works_on_numpy_alone_when_numba_cannot_import(tmp_path):
    """numba installed but broken: minicnn still trains, on numpy, and says so once."""
    import os
    import subprocess
    import sys
    (tmp_path / "numba.py").write_text('raise ImportError("numba is broken here")\n')
    code = (
        "import warnings, numpy as np, minicnn as mc\n"
        "from minicnn.layers import Conv2D, Flatten, Dense\n"
        "assert mc.backend.available() == ['numpy'] and mc.backend.default_backend() == 'numpy'\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    assert mc.backend.get_backend() == 'numpy'\n"
        "assert any('cannot load' in str(w.message) for w in caught)\n"
        "m = mc.Sequential([Conv2D(2, 3, input_shape=(6, 6, 1)), Flatten(), Dense(3, activation='softmax')])\n"
        "m.compile('sgd', 'sparse_categorical_crossentropy')\n"
        "m.train_on_batch(np.ones((4, 6, 6, 1)), np.arange(4) % 3)\n"
        "assert mc.backend.get_backend() == 'numpy'\n"
        "print('ok')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# ---------------------------------------------------------------------------------
# the float32 epilogue (bias + activation in one compiled pass)
# ---------------------------------------------------------------------------------
@needs_numba
def test_numba_tanh32_is_within_3e_7_of_tanh():
    from minicnn.kernels import numba_cpu
    x = np.concatenate([np.linspace(-12, 12, 400_001), [0.0, 1e-30, -1e-30, 1e-8, 7.9, 7.91,
                                                        -7.91, 1e30, -1e30]]).astype(np.float32)
    y = x.copy()
    numba_cpu.bias_activation(y, np.empty(0, np.float32), numba_cpu.TANH)
    exact = np.tanh(x.astype(np.float64))
    err = np.abs(y - exact)
    assert err.max() <= 3.5e-7
    ulp = np.spacing(np.abs(exact).astype(np.float32))
    assert (err / ulp).max() <= 6  # the largest, near +-1 where an ulp is 6e-8
    assert np.all(np.abs(y) <= 1) and y[np.argmax(x)] == 1 and y[np.argmin(x)] == -1
    assert np.array_equal(np.sign(y), np.sign(x))  # odd, and tanh(0) = 0


@needs_numba
@pytest.mark.parametrize("activation", ["linear", "relu", "tanh"])
def test_bias_activation_kernel_passes_nan_and_inf_through(activation, numba_kernels):
    from minicnn.ops.activations import bias_activation_forward
    z = np.array([[np.nan, np.inf, -np.inf, 0.5]], np.float32)
    mc.backend.set_backend("numba")
    y, _ = bias_activation_forward(z.copy(), np.zeros(4, np.float32), activation)
    numba_kernels.assert_ran(EPILOGUE)
    mc.backend.set_backend("numpy")
    expected, _ = bias_activation_forward(z.copy(), np.zeros(4, np.float32), activation)
    numba_kernels.assert_ran(EPILOGUE)  # still only numba's one call
    np.testing.assert_allclose(y, expected, rtol=1e-6)  # NaN == NaN here


@needs_numba
@settings(deadline=None, max_examples=60)
@given(st.integers(1, 700), st.integers(1, 20), st.sampled_from(["linear", "relu", "tanh"]),
       st.booleans(), st.integers(0, 2**31 - 1))
def test_float32_epilogue_matches_numpy(rows, channels, activation, use_bias, seed):
    """Every row count (including the leftover rows past the repeated-bias blocks)
    and channel count: numba's one pass equals NumPy's add-then-activate."""
    from minicnn.ops.activations import activation_backward, bias_activation_forward
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((rows, channels)) * 3).astype(np.float32)
    b = rng.standard_normal(channels).astype(np.float32) if use_bias else None
    dy = rng.standard_normal(z.shape).astype(np.float32)
    results = []
    for backend in ("numpy", "numba"):
        mc.backend.set_backend(backend)
        with spy_kernels("numba") as spy:
            y, cache = bias_activation_forward(z.copy(), b, activation)
            results.append((y, activation_backward(dy, cache)))
        if backend == "numba":  # linear without a bias: nothing to do, no pass at all
            spy.assert_ran((EPILOGUE if use_bias or activation != "linear" else ARRAY_PATH)
                           | ({"activation_gradient"} if activation != "linear" else set()))
        else:
            spy.assert_ran(ARRAY_PATH)
    mc.backend.set_backend("numpy")
    (y0, d0), (y1, d1) = results
    assert y1.dtype == np.float32
    np.testing.assert_allclose(y1, y0, rtol=0, atol=4e-7)
    np.testing.assert_allclose(d1, d0, rtol=0, atol=2e-6 * np.abs(dy).max())


@needs_numba
@pytest.mark.parametrize("make_layer, shape, kernels", [
    # 1 channel, 6 filters, 25 cells, stride 1: the direct convolution
    (lambda: Conv2D(6, 5, padding="same", activation="tanh"), (4, 12, 12, 1),
     CONV_PATH_KERNELS["direct"] | EPILOGUE_AND_GRADIENT),
    # channels_first: the epilogue runs on the product before it is transposed to
    # channels_first, while it is contiguous: the kernels serve it
    (lambda: Conv2D(5, 3, activation="relu", data_format="channels_first"), (3, 2, 9, 9),
     CONV_PATH_KERNELS["im2col"] | EPILOGUE_AND_GRADIENT),
    # 16 channels and filters, 3x3, stride 1: Winograd, its transforms applying the
    # bias and relu and relu's gradient themselves (no epilogue pass)
    (lambda: Conv2D(16, 3, padding="same", activation="relu"), (2, 6, 7, 16),
     CONV_PATH_KERNELS["winograd"]),
    (lambda: Dense(7, activation="tanh"), (5, 11), EPILOGUE_AND_GRADIENT),
    (lambda: Activation("tanh"), (3, 4, 5), EPILOGUE_AND_GRADIENT),
], ids=["conv-direct", "conv-im2col-cf", "conv-winograd", "dense", "activation"])
def test_float32_layers_agree_across_backends(make_layer, shape, kernels):
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    out = {}
    for backend in ("numpy", "numba"):
        mc.backend.set_backend(backend)
        mc.utils.set_random_seed(7)
        layer = make_layer()
        with spy_kernels("numba") as spy:
            y = layer.forward(x, training=True)
            dx = layer.backward(np.ones_like(y))
        spy.assert_ran(kernels if backend == "numba" else ARRAY_PATH)
        assert all(spy.dtypes(name) == {np.dtype("float32")} for name in spy.ran)
        out[backend] = [y, dx, *layer.get_gradients()]
    mc.backend.set_backend("numpy")
    for a, e in zip(out["numba"], out["numpy"]):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=2e-6)


@needs_numba
def test_adam_step_is_bitwise_the_same_on_numba(numba_kernels):
    rng = np.random.default_rng(5)
    shapes = [(5, 5, 1, 6), (6,), (400, 120)]
    start = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[(rng.standard_normal(s) * 10.0 ** rng.integers(-8, 2)).astype(np.float32)
              for s in shapes] for _ in range(4)]
    results = {backend: adam_results(backend, start, grads) for backend in ("numpy", "numba")}
    # one compiled update per weight and step, all on numba's run
    assert numba_kernels.count("adam_update") == len(shapes) * len(grads)
    numba_kernels.assert_ran({"adam_update"})
    assert numba_kernels.dtypes("adam_update") == {np.dtype("float32")}
    mc.backend.set_backend("numpy")
    for a, b in zip(results["numba"], results["numpy"]):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)
