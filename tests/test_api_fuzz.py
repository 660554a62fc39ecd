"""A property-based fuzz of the public API: random constructor arguments, input shapes,
dtypes and weight lists give either a result of the promised shape or a ValueError /
TypeError that names the layer or the model -- never another exception, a hang, a
crash, or a silently wrong shape."""
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

import minicnn as mc
from minicnn.layers import (Activation, AveragePooling2D, BatchNormalization, Conv2D, Dense,
                            Dropout, Flatten, MaxPooling2D, MinPooling2D)

WEIRD = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 9), st.floats(-2, 9), st.just(float("nan")),
    st.sampled_from(["same", "valid", "full", "relu", "tanh", "softmax", "sigmoid", "linear",
                     "bogus", "", "channels_first", "channels_last"]),
    st.lists(st.integers(-1, 5), min_size=0, max_size=3).map(tuple))
SMALL = st.integers(1, 4)
PADDING = st.one_of(st.sampled_from(["valid", "same", "full"]), WEIRD)
ACTIVATION = st.one_of(st.sampled_from(["relu", "tanh", "linear", "softmax", "sigmoid"]), WEIRD)
FORMAT = st.one_of(st.sampled_from(["channels_last", "channels_first"]), WEIRD)
BOOL = st.one_of(st.booleans(), WEIRD)
ARGS = {
    Conv2D: {"filters": st.one_of(SMALL, WEIRD), "kernel_size": st.one_of(SMALL, WEIRD),
             "strides": st.one_of(SMALL, WEIRD), "padding": PADDING, "activation": ACTIVATION,
             "use_bias": BOOL, "data_format": FORMAT},
    MaxPooling2D: {"pool_size": st.one_of(SMALL, WEIRD), "strides": st.one_of(SMALL, WEIRD),
                   "padding": PADDING, "data_format": FORMAT},
    AveragePooling2D: {"pool_size": st.one_of(SMALL, WEIRD), "strides": st.one_of(SMALL, WEIRD),
                       "padding": PADDING},
    MinPooling2D: {"pool_size": st.one_of(SMALL, WEIRD), "padding": PADDING},
    Dense: {"units": st.one_of(SMALL, WEIRD), "activation": ACTIVATION, "use_bias": BOOL},
    Dropout: {"rate": st.one_of(st.floats(0, 0.9), WEIRD), "seed": st.one_of(SMALL, WEIRD)},
    BatchNormalization: {"axis": st.one_of(st.integers(-4, 4), WEIRD),
                         "momentum": st.one_of(st.floats(0, 1), WEIRD),
                         "epsilon": st.one_of(st.floats(1e-5, 1), WEIRD),
                         "center": BOOL, "scale": BOOL},
    Flatten: {"data_format": FORMAT},
    Activation: {"activation": ACTIVATION},
}
REQUIRED = {Conv2D: ("filters", "kernel_size"), MaxPooling2D: (), AveragePooling2D: (),
            MinPooling2D: (), Dense: ("units",), Dropout: ("rate",), BatchNormalization: (),
            Flatten: (), Activation: ("activation",)}
DTYPES = ["float32", "float64", "int32", "uint8", "bool", "complex64", "float16"]


def names(exc, *who):
    text = str(exc)
    return any(w in text for w in who)


@st.composite
def layer_arguments(draw):
    cls = draw(st.sampled_from(sorted(ARGS, key=lambda c: c.__name__)))
    kwargs = {}
    for key, strategy in ARGS[cls].items():
        if key in REQUIRED[cls] or draw(st.booleans()):
            kwargs[key] = draw(strategy)
    return cls, kwargs


SHAPES = st.one_of(st.lists(st.integers(1, 7), min_size=4, max_size=4),
                   st.lists(st.integers(0, 7), min_size=1, max_size=5))


# no deadline: the first call of a numba kernel for a new dtype compiles it (seconds)
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer_arguments(), SHAPES,
       st.sampled_from(DTYPES), st.sampled_from(["numpy", "numba"]), st.booleans())
def test_layers_give_a_result_or_an_error_naming_them(arguments, shape, dtype, backend,
                                                       training):
    if backend not in mc.backend.available():
        backend = "numpy"
    cls, kwargs = arguments
    try:
        layer = cls(**kwargs)
    except (ValueError, TypeError) as exc:
        assert names(exc, cls.__name__), f"{cls.__name__}({kwargs}): {exc!r}"
        event("refused by the constructor")
        return
    x = (np.random.default_rng(0).standard_normal(shape) * 3).astype(dtype)
    mc.backend.set_backend(backend)
    try:
        try:
            y = layer.forward(x, training=training)
        except (ValueError, TypeError) as exc:
            assert names(exc, cls.__name__, layer.name), f"{cls.__name__}({kwargs}) {x.shape} " \
                                                         f"{dtype}: {exc!r}"
            event("refused by forward")
            return
        expected = layer.compute_output_shape(tuple(shape[1:]))
        assert tuple(y.shape) == (shape[0], *expected), (cls.__name__, kwargs, shape, y.shape)
        try:
            dx = layer.backward(np.ones(y.shape, dtype=y.dtype))
        except (ValueError, TypeError) as exc:
            assert names(exc, cls.__name__, layer.name), repr(exc)
            return
        assert tuple(dx.shape) == tuple(shape), (cls.__name__, kwargs, shape, dx.shape)
        event("forward and backward ran")
    finally:
        mc.backend.set_backend("numpy")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.integers(0, 5), min_size=0, max_size=4), min_size=0, max_size=5),
       st.sampled_from(DTYPES + ["object"]))
def test_set_weights_gives_a_result_or_an_error_naming_the_layer(shapes, dtype):
    layer = Conv2D(2, 3, name="target", input_shape=(5, 5, 1))
    layer.build((5, 5, 1))
    if dtype == "object":
        weights = [np.empty(s, dtype=object) for s in shapes]
    else:
        weights = [np.zeros(s, dtype=dtype) for s in shapes]
    try:
        layer.set_weights(weights)
    except (ValueError, TypeError) as exc:
        assert names(exc, "target", "Conv2D"), repr(exc)
        return
    assert [w.shape for w in layer.get_weights()] == [(3, 3, 1, 2), (2,)]


@settings(max_examples=120, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=1, max_size=5), st.sampled_from(DTYPES),
       st.sampled_from(["predict", "evaluate", "fit", "train_on_batch"]))
def test_models_give_a_result_or_an_error_naming_the_model(shape, dtype, call):
    model = mc.Sequential([Conv2D(2, 3, input_shape=(6, 6, 1)), MaxPooling2D(2), Flatten(),
                           Dense(3, activation="softmax")], name="fuzzed")
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = np.ones(shape, dtype=dtype)
    y = np.zeros(shape[0], dtype=int)
    try:
        if call == "predict":
            out = model.predict(x)
            assert out.shape == (shape[0], 3)
        elif call == "fit":
            model.fit(x, y, verbose=0)
        else:
            getattr(model, call)(x, y)
    except (ValueError, TypeError) as exc:
        assert names(exc, "fuzzed", "conv2d", "Conv2D"), repr(exc)


@pytest.mark.parametrize("bad", [np.zeros((2, 6, 6, 1), dtype=object), "images", None, 3.0])
def test_inputs_that_are_not_numeric_arrays(bad):
    model = mc.Sequential([Flatten(input_shape=(6, 6, 1)), Dense(2)], name="typed")
    with pytest.raises((ValueError, TypeError)) as info:
        model.predict(bad)
    assert names(info.value, "typed", "flatten", "Flatten")
