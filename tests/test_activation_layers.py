"""The activation names elu, leaky_relu, gelu, silu (swish), softplus and the layers
Softmax, ReLU, LeakyReLU, ELU (minicnn.layers.activations).

The checks, each on the numpy and the numba backend:

- float64 central differences of every backward pass (``minicnn.gradcheck.check_layer``),
  with inputs kept clear of the kinks (0, a threshold, a max_value) by construction;
- hypothesis properties: shapes of any rank, identities between the layers and the
  activation names (ReLU() == Activation("relu"), LeakyReLU(s) == ReLU(negative_slope=s),
  ...), and closed forms written out here (softplus(x) - softplus(-x) = x, ...);
- Keras 3 run now (JAX backend, CPU; skipped without keras): forward values, and input
  gradients by ``jax.grad`` through Keras's own functions and layers, in float32 and
  float64 (``jax.enable_x64``), the kinks included; configs, default names, defaults and
  argument validation next to Keras's;
- errors for bad arguments name the layer; erfc against ``math.erfc``; the device path
  on the strict CuPy stand-in (tests/cupy_standin.py) or real CuPy.

The Keras facts these rest on (Keras 3.15.1, jax 0.10.2, printed by Keras when this file
was written): keras.activations.leaky_relu's negative_slope defaults to 0.2, the
LeakyReLU layer's to 0.3; keras.activations.gelu's approximate defaults to False;
elu's alpha to 1.0; "swish" and "silu" are one function and a layer's config says
"silu"; the gradient of ReLU(max_value=m) at x == m is 1/2, except m == 6 (relu6): 0.
"""
import inspect
import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minicnn as mc
from minicnn.backend import to_host
from minicnn.gradcheck import check_layer
from minicnn.layers import Activation, Conv2D, Dense
from minicnn.layers.activations import ELU, LeakyReLU, ReLU, Softmax
from minicnn.ops import activations as act

# Keras 3.15 on numpy 2 warns about its own Variable.__array__ in get_weights().
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

NEW_NAMES = ["elu", "leaky_relu", "gelu", "silu", "swish", "softplus"]
F32 = dict(rtol=1e-6, atol=1e-6)      # float32 against Keras (keras-semantics.md §0)
F64 = dict(rtol=1e-12, atol=1e-12)    # float64: element-wise ops agree to a few ulps

# layer factories with their kinks (where the slope jumps): inputs stay 0.05 away in the
# central-difference checks, and sit exactly on them in the live Keras checks
LAYER_CASES = {
    "ReLU()": (lambda: ReLU(), [0.0]),
    "ReLU(max_value=1)": (lambda: ReLU(max_value=1.0), [0.0, 1.0]),
    "ReLU(max_value=6)": (lambda: ReLU(max_value=6), [0.0, 6.0]),
    "ReLU(negative_slope=0.2)": (lambda: ReLU(negative_slope=0.2), [0.0]),
    "ReLU(threshold=0.5)": (lambda: ReLU(threshold=0.5), [0.5]),
    "ReLU(0.1,t=0.5,m=2)": (lambda: ReLU(max_value=2.0, negative_slope=0.1, threshold=0.5),
                            [0.5, 2.0]),
    "ReLU(0.3,m=6)": (lambda: ReLU(max_value=6.0, negative_slope=0.3), [0.0, 6.0]),
    "ReLU(t=2,m=1)": (lambda: ReLU(max_value=1.0, threshold=2.0), [1.0, 2.0]),
    "LeakyReLU()": (lambda: LeakyReLU(), [0.0]),
    "LeakyReLU(0)": (lambda: LeakyReLU(0.0), [0.0]),
    "ELU()": (lambda: ELU(), [0.0]),
    "ELU(0.5)": (lambda: ELU(alpha=0.5), [0.0]),
    "ELU(-0.7)": (lambda: ELU(alpha=-0.7), [0.0]),
    "Softmax()": (lambda: Softmax(), []),
    "Softmax(1)": (lambda: Softmax(axis=1), []),
    "Softmax([1,2])": (lambda: Softmax(axis=[1, 2]), []),
    "Softmax(0)": (lambda: Softmax(axis=0), []),
}


@pytest.fixture(params=["numpy", "numba"])
def backend(request):
    if request.param not in mc.backend.available():
        pytest.skip(f"the {request.param} backend does not run here")
    mc.backend.set_backend(request.param)
    return request.param


def clear_of(x, kinks, gap=0.05):
    """``x`` with every value within ``gap`` of a kink moved to 2*gap beyond it."""
    x = np.array(x, dtype=np.float64)
    for k in kinks:
        near = np.abs(x - k) < gap
        x[near] = k + np.where(x[near] >= k, 2 * gap, -2 * gap)
    return x


def run(layer, x, dy):
    y = to_host(layer.forward(x, training=True))
    return y, to_host(layer.backward(dy))


# ----------------------------------------------------------------------------------
# float64 central differences
# ----------------------------------------------------------------------------------
def assert_gradients_pass(layer, x, weights=None):
    if weights is not None:
        layer.build(x.shape[1:])
        layer.set_weights(weights)
    rows = check_layer(layer, x, print_fn=None)
    assert rows and all(r["passed"] for r in rows), rows


@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 3, 4)], ids=["2d", "4d"])
@pytest.mark.parametrize("name", NEW_NAMES)
def test_named_activation_gradients(backend, name, shape):
    x = clear_of(np.random.default_rng(3).uniform(-3, 3, shape), [0.0])
    assert_gradients_pass(Activation(name), x)


@pytest.mark.parametrize("name", NEW_NAMES)
def test_dense_and_conv2d_with_new_activation_gradients(backend, name):
    """Weights and biases too: the activation after the bias epilogue. The seeds give
    pre-activations clear of 0 (checked), where leaky_relu and elu bend."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 5))
    w, b = rng.standard_normal((5, 3)), rng.standard_normal(3)
    assert np.abs(x @ w + b).min() > 1e-3
    assert_gradients_pass(Dense(3, activation=name), x, [w, b])
    x = rng.standard_normal((1, 4, 4, 2))
    k, b = rng.standard_normal((2, 2, 2, 2)), rng.standard_normal(2)
    z = sum(x[:, i:i + 3, j:j + 3, :] @ k[i, j] for i in range(2) for j in range(2)) + b
    assert np.abs(z).min() > 1e-3
    assert_gradients_pass(Conv2D(2, 2, activation=name), x, [k, b])


@pytest.mark.parametrize("case", list(LAYER_CASES))
def test_layer_gradients(backend, case):
    make, kinks = LAYER_CASES[case]
    x = clear_of(np.random.default_rng(4).uniform(-2.5, 7.5, (2, 3, 2, 4)), kinks)
    assert_gradients_pass(make(), x)


# ----------------------------------------------------------------------------------
# hypothesis: shapes, identities, closed forms
# ----------------------------------------------------------------------------------
PROPS = settings(deadline=None, max_examples=40,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])
shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple)  # batch axis first
seeds = st.integers(0, 2**32 - 1)
slopes = st.floats(0, 3, allow_nan=False)


def normal(shape, seed, scale=3.0, dtype="float32"):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


@PROPS
@given(shape=shapes, seed=seeds, case=st.sampled_from(sorted(LAYER_CASES)))
def test_any_rank_keeps_the_shape(backend, shape, seed, case):
    layer = LAYER_CASES[case][0]()
    rank = len(shape)
    axes = getattr(layer, "axis", -1)
    if any(not -rank <= a < rank for a in (axes if isinstance(axes, list) else [axes])):
        with pytest.raises(ValueError, match=r"Softmax '.*': axis .* out of range"):
            layer.forward(normal(shape, seed))
        return
    assert layer.compute_output_shape(shape[1:]) == shape[1:]
    y, dx = run(layer, normal(shape, seed), normal(shape, seed + 1))
    assert y.shape == dx.shape == shape and y.dtype == dx.dtype == np.float32


@PROPS
@given(shape=shapes, seed=seeds)
def test_layers_with_defaults_are_the_activation_names(backend, shape, seed):
    """Exactly equal, forward and backward: the same ops (the relu kernel included)."""
    x, dy = normal(shape, seed), normal(shape, seed + 1)
    for layer, name in [(ReLU(), "relu"), (ELU(), "elu"), (Softmax(), "softmax"),
                        (LeakyReLU(0.2), "leaky_relu")]:
        for a, e in zip(run(layer, x, dy), run(Activation(name), x, dy)):
            np.testing.assert_array_equal(a, e)
    for a, e in zip(run(Activation("swish"), x, dy), run(Activation("silu"), x, dy)):
        np.testing.assert_array_equal(a, e)


@PROPS
@given(shape=shapes, seed=seeds, slope=slopes)
def test_leaky_relu_is_relu_with_a_negative_slope(backend, shape, seed, slope):
    x, dy = normal(shape, seed), normal(shape, seed + 1)   # no exact zeros
    for a, e in zip(run(LeakyReLU(slope), x, dy), run(ReLU(negative_slope=slope), x, dy)):
        np.testing.assert_array_equal(a, e)
    for a, e in zip(run(LeakyReLU(0), x, dy), run(ReLU(), x, dy)):
        np.testing.assert_array_equal(a, e)
    expected = np.where(x >= 0, x, np.float32(slope) * x)
    np.testing.assert_array_equal(run(LeakyReLU(slope), x, dy)[0], expected)


@PROPS
@given(shape=shapes, seed=seeds, slope=slopes, threshold=st.floats(0, 3),
       max_value=st.one_of(st.none(), st.floats(0, 5)))
def test_relu_piecewise_line(backend, shape, seed, slope, threshold, max_value):
    """y = slope (x - t) for x <= t, min(x, m) above; its slope away from the kinks."""
    x = clear_of(normal(shape, seed, dtype="float64"), [0.0, threshold] +
                 ([] if max_value is None else [max_value]), gap=1e-6)
    dy = normal(shape, seed + 1, dtype="float64")
    mc.backend.set_floatx("float64")
    y, dx = run(ReLU(max_value, slope, threshold), x, dy)
    top = np.inf if max_value is None else max_value
    np.testing.assert_allclose(y, np.where(x > threshold, np.minimum(x, top),
                                           slope * (x - threshold)), rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(dx, dy * np.where(x > threshold, (x < top) * 1.0, slope),
                               rtol=1e-15, atol=0)


@PROPS
@given(shape=shapes, seed=seeds)
def test_closed_forms_of_the_smooth_names(backend, shape, seed):
    """Identities checked in float64 against formulas written here."""
    mc.backend.set_floatx("float64")
    x = normal(shape, seed, dtype="float64")
    f = {name: to_host(Activation(name).forward(x)) for name in NEW_NAMES}
    fneg = {name: to_host(Activation(name).forward(-x)) for name in NEW_NAMES}
    sig = 1 / (1 + np.exp(-x))
    tight = dict(rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(f["softplus"] - fneg["softplus"], x, **tight)
    np.testing.assert_allclose(f["softplus"], np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0),
                               **tight)
    np.testing.assert_allclose(f["gelu"] - fneg["gelu"], x, **tight)  # Phi(x) + Phi(-x) = 1
    np.testing.assert_allclose(f["silu"], x * sig, **tight)
    np.testing.assert_array_equal(f["swish"], f["silu"])
    np.testing.assert_allclose(f["elu"], np.where(x > 0, x, np.expm1(x)), **tight)
    np.testing.assert_allclose(f["leaky_relu"], np.maximum(x, 0.2 * x), **tight)
    for name in ("gelu", "silu", "softplus"):   # f(x) / x -> 1 far right, f -> 0 far left
        far = to_host(Activation(name).forward(np.array([[-40.0, 40.0]])))
        np.testing.assert_allclose(far, [[0.0, 40.0]], atol=1e-12)


@PROPS
@given(shape=shapes.filter(lambda s: len(s) >= 2), seed=seeds, data=st.data())
def test_softmax_normalises_along_its_axes(backend, shape, seed, data):
    rank = len(shape)
    axes = data.draw(st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank,
                              unique_by=lambda a: a % rank))
    axis = axes[0] if len(axes) == 1 else axes
    mc.backend.set_floatx("float64")
    x = normal(shape, seed, scale=30, dtype="float64")
    y = to_host(Softmax(axis=axis).forward(x))
    np.testing.assert_allclose(y.sum(axis=tuple(axes)), 1.0, rtol=1e-13)
    shifted = to_host(Softmax(axis=axis).forward(x + 1000 * x.max(axis=tuple(axes),
                                                                  keepdims=True)))
    np.testing.assert_allclose(shifted, y, rtol=1e-9, atol=1e-300)  # shift-invariant
    layer = Softmax(axis=axis)
    layer.forward(x, training=True)
    # a dy constant along the axes changes nothing: its gradient is 0
    dy = np.broadcast_to(normal(shape, seed + 1, dtype="float64").sum(axis=tuple(axes),
                                                                        keepdims=True), shape)
    np.testing.assert_allclose(to_host(layer.backward(np.ascontiguousarray(dy))), 0,
                               atol=1e-12 * (1 + np.abs(dy).max()))


@settings(deadline=None, max_examples=25)
@given(shape=shapes, seed=seeds, case=st.sampled_from(sorted(LAYER_CASES) + NEW_NAMES))
def test_numpy_and_numba_agree(shape, seed, case):
    if "numba" not in mc.backend.available():
        pytest.skip("numba does not run here")
    if case in LAYER_CASES and "Softmax" in case and len(shape) < 3:
        shape = shape + (2,) * (3 - len(shape))
    x, dy = normal(shape, seed), normal(shape, seed + 1)
    results = []
    for name in ("numpy", "numba"):
        mc.backend.set_backend(name)
        layer = LAYER_CASES[case][0]() if case in LAYER_CASES else Activation(case)
        results.append(run(layer, x, dy))
    for a, e in zip(*results):
        np.testing.assert_allclose(a, e, rtol=1e-6, atol=1e-7)


def test_erfc_against_the_standard_library():
    x = np.concatenate([np.linspace(-27, 27, 54001), [0.0, -0.0, 0.46875, -0.46875, 4.0, -4.0,
                                                      1e-300, -1e-20, 26.5, -26.5]])
    expected = np.array([math.erfc(v) for v in x])
    got = act.erfc(x)
    assert got.dtype == np.float64
    # relative to the value, down to 1e-300 (below, erfc reaches the subnormals)
    np.testing.assert_allclose(got, expected, rtol=2e-15, atol=1e-300)
    np.testing.assert_array_equal(act.erfc(np.array([np.inf, -np.inf, 30.0, -30.0])),
                                  [0.0, 2.0, 0.0, 2.0])
    assert np.isnan(act.erfc(np.array([np.nan]))).all()


def test_kink_conventions_without_keras(backend):
    """The slopes at the kinks that the live test compares with Keras (values Keras
    printed: ReLU(max_value=1) at 1 -> 0.5; relu6 at 6 -> 0; elu'(0) = alpha;
    leaky_relu'(0) = 1; relu'(0) = 0, also with a slope and a ceiling)."""
    def slopes_at(layer, points):
        x = np.array([points], dtype="float32")
        return run(layer, x, np.ones_like(x))[1][0].tolist()
    assert slopes_at(ReLU(max_value=1.0), [0.0, 1.0, 2.0]) == [0.0, 0.5, 0.0]
    assert slopes_at(ReLU(max_value=6.0), [0.0, 6.0]) == [0.0, 0.0]
    assert slopes_at(ReLU(max_value=6.0, negative_slope=0.5), [-1.0, 0.0, 6.0]) == [0.5, 0, 0]
    assert slopes_at(ReLU(max_value=1.0, negative_slope=0.5), [0.0, 1.0]) == [0.0, 0.5]
    assert slopes_at(ReLU(negative_slope=0.5), [0.0]) == [1.0]
    assert slopes_at(ReLU(threshold=1.0, negative_slope=0.5), [1.0, 0.0]) == [0.0, 0.5]
    assert slopes_at(ELU(alpha=0.5), [0.0]) == [0.5]
    assert slopes_at(LeakyReLU(), [0.0, -0.0]) == [1.0, 1.0]
    assert slopes_at(ReLU(), [0.0]) == [0.0]
    assert slopes_at(Activation("gelu"), [0.0]) == slopes_at(Activation("silu"), [0.0]) == [0.5]
    assert slopes_at(Activation("softplus"), [0.0]) == [0.5]


# ----------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize("make, error, match", [
    (lambda: ReLU(max_value=-1), ValueError, r"ReLU: max_value cannot be negative"),
    (lambda: ReLU(negative_slope=-0.1), ValueError, r"ReLU: negative_slope cannot be negative"),
    (lambda: ReLU(negative_slope=None), ValueError, r"ReLU: negative_slope must be a number"),
    (lambda: ReLU(threshold=None), ValueError, r"ReLU: threshold must be a number"),
    (lambda: ReLU(threshold="1"), TypeError, r"ReLU: threshold must be a number.*'1'"),
    (lambda: ReLU(max_value=float("nan")), ValueError, r"ReLU: max_value must be a finite"),
    (lambda: ReLU(threshold=True), TypeError, r"ReLU: threshold must be a number"),
    (lambda: LeakyReLU(-0.3), ValueError, r"LeakyReLU: negative_slope cannot be negative"),
    (lambda: LeakyReLU(None), ValueError, r"LeakyReLU: negative_slope must be a number"),
    (lambda: ELU("1"), TypeError, r"ELU: alpha must be a number"),
    (lambda: ELU(float("inf")), ValueError, r"ELU: alpha must be a finite number"),
    (lambda: Softmax(axis=1.5), TypeError, r"Softmax: axis must be an int or a non-empty list"),
    (lambda: Softmax(axis=[]), TypeError, r"Softmax: axis must be an int or a non-empty list"),
    (lambda: Softmax(axis=[1, None]), TypeError, r"Softmax: axis must be an int"),
    (lambda: ReLU(bogus=1), TypeError, r"ReLU: unexpected keyword argument"),
    (lambda: Activation("selu"), ValueError, r"Activation: unknown activation.*'gelu'.*"
                                             r"'swish'.*Received: activation='selu'"),
    (lambda: Dense(2, activation="relu6"), ValueError, r"Dense: unknown activation"),
])
def test_bad_arguments_name_the_layer(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_softmax_axis_checked_against_the_input():
    x = np.zeros((2, 3), "float32")
    with pytest.raises(ValueError, match=r"Softmax 'sm': axis 2 is out of range for input of "
                                         r"rank 2 \(shape \(None, 3\)\); expected an axis in "
                                         r"\[-2, 1\]"):
        Softmax(axis=2, name="sm").forward(x)
    with pytest.raises(ValueError, match=r"Softmax 'sm2': axis \[1, -1\] names axis 1 twice"):
        Softmax(axis=[1, -1], name="sm2").forward(x)
    layer = Softmax(axis=2)       # any rank: fine on rank 3, refused on rank 2 afterwards
    assert layer.forward(np.zeros((1, 2, 2), "float32")).shape == (1, 2, 2)
    with pytest.raises(ValueError, match="out of range"):
        layer.forward(x)


def test_leaky_relu_alpha_is_deprecated_as_in_keras():
    with pytest.warns(UserWarning, match="LeakyReLU: argument `alpha` is deprecated"):
        layer = LeakyReLU(alpha=0.1)
    assert layer.negative_slope == 0.1 and layer.get_config()["negative_slope"] == 0.1


def test_configs_rebuild_the_layers():
    """get_config() holds every constructor argument (and the name), and rebuilds a layer
    that computes the same function (as gradcheck's float64 twin and model saving do)."""
    x = normal((2, 3, 4), 0)
    for make, _ in LAYER_CASES.values():
        layer = make()
        config = layer.get_config()
        arguments = set(inspect.signature(type(layer).__init__).parameters)
        assert set(config) == arguments - {"self", "input_shape", "kwargs"}
        twin = type(layer)(**config)
        assert twin.get_config() == config
        np.testing.assert_array_equal(to_host(twin.forward(x)), to_host(layer.forward(x)))
    assert Dense(2, activation="Swish").get_config()["activation"] == "silu"
    mc.backend.clear_session()
    assert [ReLU().name, LeakyReLU().name, ELU().name, Softmax().name] == \
        ["re_lu", "leaky_re_lu", "elu", "softmax"]   # Keras's snake_case, then _1, _2, ...
    assert ReLU().name == "re_lu_1"


def test_softmax_layer_ends_a_model_like_the_softmax_activation():
    """Dense + Softmax() trains exactly like Dense(activation="softmax") (the model fuses
    the softmax with the cross-entropy for both); Softmax(axis=1) is not fused."""
    from minicnn.models import Sequential
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 4)).astype("float32"), np.eye(3)[rng.integers(0, 3, 6)]
    weights = [rng.standard_normal((4, 3)).astype("float32"), np.zeros(3, "float32")]
    assert Softmax().activation == "softmax" and Softmax(axis=1).activation is None
    results = []
    for layers in ([Dense(3, activation="softmax")], [Dense(3), Softmax()],
                   [Dense(3), Softmax(axis=1)]):
        model = Sequential(layers)
        model.build((None, 4))
        model.set_weights(weights)
        model.compile(optimizer="sgd", loss="categorical_crossentropy")
        results.append((model.train_on_batch(x, y), model.get_weights()))
    for loss, w in results[1:]:
        assert np.isclose(loss, results[0][0], rtol=1e-6)
        for a, e in zip(w, results[0][1]):
            np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


def test_new_activations_on_the_cupy_backend():
    """Every new op runs on device arrays (the strict CuPy stand-in where no GPU is here:
    no host array may enter, no NumPy call may hide) and computes what numpy does."""
    from minicnn.kernels.cuda import emulation
    import cupy_standin
    if "cupy" in mc.backend.available():
        module = None
    elif emulation.compiler() is None:
        pytest.skip("no C++ compiler (g++) for the CPU emulation of the CUDA kernels")
    else:
        module = cupy_standin.install()
    try:
        mc.backend.set_floatx("float64")
        x = clear_of(normal((2, 3, 4), 1, dtype="float64"), [0.0, 0.5, 1.0, 2.0, 6.0])
        makers = [m for m, _ in LAYER_CASES.values()] + \
            [lambda n=n: Activation(n) for n in NEW_NAMES] + \
            [lambda n=n: Dense(2, activation=n, kernel_initializer="ones") for n in NEW_NAMES]
        for make in makers:
            mc.backend.set_backend("numpy")
            layer = make()
            y0 = to_host(layer.forward(x, training=True))
            dx0 = to_host(layer.backward(np.ones_like(y0)))
            mc.backend.set_backend("cupy")
            layer = make()
            y1 = layer.forward(x, training=True)
            dx1 = layer.backward(mc.backend.to_device(np.ones_like(y0)))
            np.testing.assert_allclose(to_host(y1), y0, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(to_host(dx1), dx0, rtol=1e-12, atol=1e-14)
    finally:
        mc.backend.set_backend(mc.backend.default_backend())
        if module is not None:
            cupy_standin.uninstall()


# ----------------------------------------------------------------------------------
# Keras 3, run now
# ----------------------------------------------------------------------------------
# the `keras` fixture (Keras 3 on JAX, or a skip) is tests/conftest.py's


SPECIAL = [0.0, -0.0, 0.5, 1.0, 2.0, 6.0, 7.0, -1.0, -30.0, 30.0, -100.0, 100.0]
KERAS_LAYERS = {   # the minicnn case -> (Keras class name, its arguments)
    "ReLU()": ("ReLU", {}),
    "ReLU(max_value=1)": ("ReLU", dict(max_value=1.0)),
    "ReLU(max_value=6)": ("ReLU", dict(max_value=6)),
    "ReLU(negative_slope=0.2)": ("ReLU", dict(negative_slope=0.2)),
    "ReLU(threshold=0.5)": ("ReLU", dict(threshold=0.5)),
    "ReLU(0.1,t=0.5,m=2)": ("ReLU", dict(max_value=2.0, negative_slope=0.1, threshold=0.5)),
    "ReLU(0.3,m=6)": ("ReLU", dict(max_value=6.0, negative_slope=0.3)),
    "ReLU(t=2,m=1)": ("ReLU", dict(max_value=1.0, threshold=2.0)),
    "LeakyReLU()": ("LeakyReLU", {}),
    "LeakyReLU(0)": ("LeakyReLU", dict(negative_slope=0.0)),
    "ELU()": ("ELU", {}),
    "ELU(0.5)": ("ELU", dict(alpha=0.5)),
    "ELU(-0.7)": ("ELU", dict(alpha=-0.7)),
    "Softmax()": ("Softmax", {}),
    "Softmax(1)": ("Softmax", dict(axis=1)),
    "Softmax([1,2])": ("Softmax", dict(axis=[1, 2])),
    "Softmax(0)": ("Softmax", dict(axis=0)),
}


def live_input(shape, dtype, seed):
    """Random values (scale 4) with the kinks and large magnitudes of SPECIAL at the front,
    and an upstream gradient."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 4
    x.reshape(-1)[:len(SPECIAL)] = SPECIAL
    return x.astype(dtype), rng.standard_normal(shape).astype(dtype)


@pytest.fixture(scope="module")
def keras_answers(keras):
    """``answers(dtype)[key] -> (x, dy, y, dx)``: Keras's output and the gradient of
    ``sum(y * dy)`` (jax.grad), for every activation name (key = the name) and layer case
    (key = the case), in float32 or float64 (``jax.enable_x64``). All of a dtype are
    computed by one jitted function: one compilation instead of one per op."""
    import jax
    import jax.numpy as jnp
    computed = {}

    def answers(dtype):
        if dtype in computed:
            return computed[dtype]
        functions = {name: keras.activations.get(name) for name in NEW_NAMES}
        for case, (class_name, kwargs) in KERAS_LAYERS.items():
            functions[case] = getattr(keras.layers, class_name)(dtype=dtype, **kwargs)
        inputs = {key: live_input((3, 4, 5), dtype, seed) for seed, key in enumerate(functions)}

        def all_of_them(inputs):
            out = {}
            for key, (x, dy) in inputs.items():
                fn = functions[key]
                out[key] = (fn(x), jax.grad(lambda t, fn=fn, dy=dy: jnp.sum(fn(t) * dy))(x))
            return out
        with jax.enable_x64(dtype == "float64"):
            out = jax.jit(all_of_them)({k: tuple(map(jnp.asarray, v)) for k, v in inputs.items()})
            out = {k: (*inputs[k], np.asarray(y), np.asarray(dx)) for k, (y, dx) in out.items()}
        for x, _, y, dx in out.values():
            assert x.dtype == y.dtype == dx.dtype
        computed[dtype] = out
        return out
    return answers


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", NEW_NAMES)
def test_named_activation_matches_keras(keras_answers, backend, name, dtype):
    x, dy, expected_y, expected_dx = keras_answers(dtype)[name]
    mc.backend.set_floatx(dtype)
    y, dx = run(Activation(name), x, dy)
    assert y.dtype == dx.dtype == np.dtype(dtype)
    tol = F32 if dtype == "float32" else F64
    np.testing.assert_allclose(y, expected_y, **tol)
    np.testing.assert_allclose(dx, expected_dx, **tol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", list(KERAS_LAYERS))
def test_layer_matches_keras(keras, keras_answers, backend, case, dtype):
    """Forward and input gradient through the Keras layer itself, on inputs that sit
    exactly on the kinks too; the config's arguments and the default name as Keras's."""
    x, dy, expected_y, expected_dx = keras_answers(dtype)[case]
    class_name, kwargs = KERAS_LAYERS[case]
    mc.backend.set_floatx(dtype)
    layer = LAYER_CASES[case][0]()
    y, dx = run(layer, x, dy)
    tol = F32 if dtype == "float32" else F64
    np.testing.assert_allclose(y, expected_y, **tol)
    np.testing.assert_allclose(dx, expected_dx, **tol)
    if "ReLU" in class_name:   # piecewise linear: the same slopes to the bit
        np.testing.assert_array_equal(dx, expected_dx)
    klayer = getattr(keras.layers, class_name)(**kwargs)
    config, kconfig = layer.get_config(), klayer.get_config()
    for key, value in config.items():
        if key != "name":
            assert value == kconfig[key], (key, value, kconfig[key])
    assert set(kconfig) - set(config) <= {"name", "trainable", "dtype"}
    # the default names: Keras's snake_case of the class, before the _N of each session
    assert re.sub(r"_\d+$", "", kconfig["name"]) == re.sub(r"_\d+$", "", layer.name)


def test_keras_defaults_and_names(keras):
    """The Keras facts the ops and layers follow, asked of Keras itself."""
    sig = {n: inspect.signature(getattr(keras.activations, n)).parameters
           for n in ("elu", "leaky_relu", "gelu", "relu")}
    assert sig["leaky_relu"]["negative_slope"].default == 0.2
    assert sig["elu"]["alpha"].default == 1.0
    assert sig["gelu"]["approximate"].default is False
    assert inspect.signature(act.leaky_relu_forward).parameters["negative_slope"].default == 0.2
    assert inspect.signature(act.elu_forward).parameters["alpha"].default == 1.0
    for cls in (ReLU, LeakyReLU, ELU, Softmax):
        kparams = inspect.signature(getattr(keras.layers, cls.__name__).__init__).parameters
        params = inspect.signature(cls.__init__).parameters
        for key, p in kparams.items():
            if key not in ("self", "kwargs"):
                assert params[key].default == p.default, (cls.__name__, key)
    for name in NEW_NAMES + ["SWISH", "Gelu"]:
        kname = keras.layers.Dense(2, activation=name.lower()).get_config()["activation"]
        assert Dense(2, activation=name).get_config()["activation"] == kname
        assert Activation(name).get_config()["activation"] == kname


@pytest.mark.parametrize("class_name, kwargs", [
    ("ReLU", dict(max_value=-1.0)), ("ReLU", dict(negative_slope=-0.5)),
    ("ReLU", dict(threshold=-1.0)), ("ReLU", dict(negative_slope=None)),
    ("ReLU", dict(threshold=None)), ("LeakyReLU", dict(negative_slope=-0.1)),
    ("LeakyReLU", dict(negative_slope=None)),
])
def test_arguments_keras_refuses_are_refused(keras, class_name, kwargs):
    with pytest.raises(ValueError):
        getattr(keras.layers, class_name)(**kwargs)
    with pytest.raises(ValueError, match=f"^{class_name}: " + list(kwargs)[0]):
        globals()[class_name](**kwargs)


def test_dense_and_conv2d_with_new_activations_match_keras(keras):
    """The epilogue (bias then activation) of Dense and Conv2D with Keras's weights, on
    both CPU backends (numba's epilogue kernel knows only linear/relu/tanh: the new
    names take the array path)."""
    import jax
    import jax.numpy as jnp
    rng = np.random.default_rng(6)
    cases = []
    for name in ("gelu", "leaky_relu"):
        for kcls, cls, args, shape in ((keras.layers.Dense, Dense, (4,), (3, 5)),
                                       (keras.layers.Conv2D, Conv2D, (3, 2), (2, 5, 5, 2))):
            klayer = kcls(*args, activation=name)
            klayer.build(shape)
            weights = [rng.standard_normal(w.shape).astype("float32")
                       for w in klayer.get_weights()]
            klayer.set_weights(weights)
            x = rng.standard_normal(shape).astype("float32")
            dy = rng.standard_normal(klayer.compute_output_shape(shape)).astype("float32")
            cases.append((klayer, cls, args, name, weights, x, dy))

    @jax.jit
    def keras_side(xs, dys):
        return [(k(x), jax.grad(lambda t, k=k, dy=dy: jnp.sum(k(t) * dy))(x))
                for (k, *_), x, dy in zip(cases, xs, dys)]
    expected = keras_side([c[5] for c in cases], [c[6] for c in cases])
    backends = [b for b in ("numpy", "numba") if b in mc.backend.available()]
    for (_, cls, args, name, weights, x, dy), (ky, kdx) in zip(cases, expected):
        for backend in backends:
            mc.backend.set_backend(backend)
            layer = cls(*args, activation=name)
            layer.build(x.shape[1:])
            layer.set_weights(weights)
            y, dx = run(layer, x, dy)
            np.testing.assert_allclose(y, np.asarray(ky), rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(dx, np.asarray(kdx), rtol=1e-5, atol=1e-5)


def test_leaky_relu_alpha_warning_is_keras_s(keras):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        klayer = keras.layers.LeakyReLU(alpha=0.1)
        layer = LeakyReLU(alpha=0.1)
    assert klayer.negative_slope == layer.negative_slope == 0.1
    messages = [str(w.message) for w in caught]
    assert any("`alpha` is deprecated" in m and not m.startswith("LeakyReLU") for m in messages)
    assert any(m.startswith("LeakyReLU: argument `alpha` is deprecated") for m in messages)
