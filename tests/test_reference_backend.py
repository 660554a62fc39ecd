"""The ``reference`` backend: every kernel as a plain Python loop
(``minicnn.kernels.reference``), computing what the numpy backend computes."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minicnn as mc
from minicnn.layers import (AveragePooling2D, Conv2D, Dense, Flatten, MaxPooling2D,
                            MinPooling2D)
from test_backends import adam_results, pool_input, window_configs


def run(backend, make_layer, x, training=True):
    mc.backend.set_backend(backend)
    try:
        mc.utils.set_random_seed(7)
        layer = make_layer()
        y = layer.forward(x, training=training)
        dy = np.random.default_rng(1).standard_normal(y.shape).astype(x.dtype)
        return [np.asarray(a) for a in (y, layer.backward(dy), *layer.get_gradients())]
    finally:
        mc.backend.set_backend(mc.backend.default_backend())


def assert_like_numpy(make_layer, x, rtol=1e-12, atol=1e-12):
    for a, e in zip(run("reference", make_layer, x), run("numpy", make_layer, x)):
        assert a.dtype == e.dtype
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)


def test_reference_is_a_backend_but_not_listed_as_available():
    mc.backend.set_backend("reference")
    assert mc.backend.get_backend() == "reference"
    assert "reference" not in mc.backend.available()
    from minicnn.kernels import reference
    assert mc.backend.kernels_for(np.zeros(2)) is reference


@settings(deadline=None, max_examples=25)
@given(window_configs(["valid", "same", "full"]), st.sampled_from(["linear", "relu", "tanh"]))
def test_conv2d_on_reference(config, activation):
    padding, k, s, data_format, shape, seed = config
    mc.backend.set_floatx("float64")
    x = np.random.default_rng(seed).standard_normal(shape)
    assert_like_numpy(lambda: Conv2D(2, k, s, padding, activation=activation,
                                     data_format=data_format), x)


@settings(deadline=None, max_examples=30)
@given(window_configs(["valid", "same"]),
       st.sampled_from([MaxPooling2D, MinPooling2D, AveragePooling2D]),
       st.sampled_from(["normal", "ties", "nan"]))
def test_pooling_on_reference(config, cls, values):
    padding, k, s, data_format, shape, seed = config
    mc.backend.set_floatx("float64")
    x = pool_input(shape, seed, values, cls)
    assert_like_numpy(lambda: cls(k, s, padding, data_format=data_format), x)


@pytest.mark.parametrize("activation", ["linear", "relu", "tanh"])
def test_float32_epilogue_on_reference(activation):
    x = np.random.default_rng(2).standard_normal((5, 7)).astype(np.float32)
    assert_like_numpy(lambda: Dense(4, activation=activation), x, rtol=1e-6, atol=1e-7)


def test_a_tiny_network_trains_the_same_on_reference():
    def train(backend):
        mc.backend.set_backend(backend)
        try:
            mc.backend.clear_session()
            mc.utils.set_random_seed(0)
            model = mc.Sequential([Conv2D(2, 3, activation="tanh", input_shape=(6, 6, 1)),
                                   MaxPooling2D(2), Flatten(), Dense(3, activation="softmax")])
            model.compile(mc.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
            rng = np.random.default_rng(1)
            for _ in range(3):
                model.train_on_batch(rng.random((4, 6, 6, 1), dtype=np.float32),
                                     rng.integers(0, 3, 4))
            return model.get_weights()
        finally:
            mc.backend.set_backend(mc.backend.default_backend())
    for a, e in zip(train("reference"), train("numpy")):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_on_reference_is_bitwise_numpy_s(dtype):
    rng = np.random.default_rng(5)
    start = [rng.standard_normal(s).astype(dtype) for s in [(3, 3, 1, 2), (2,), (7, 3)]]
    steps = [[rng.standard_normal(w.shape).astype(dtype) * 1e-3 for w in start]
             for _ in range(3)]
    out = {backend: adam_results(backend, start, steps) for backend in ("reference", "numpy")}
    mc.backend.set_backend(mc.backend.default_backend())
    for a, e in zip(out["reference"], out["numpy"]):
        np.testing.assert_array_equal(a, e)
