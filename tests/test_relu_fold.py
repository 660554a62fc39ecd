"""A relu that alone reads a BatchNormalization's output runs inside the normalization
(minicnn.network): the same outputs, gradients and trained weights as running the two
layers apart, on every backend and in the two-thread step; the relu layer itself is
not called; and nothing is folded where another layer (or the model's output, or
``trace``) reads the normalization's own output."""
import numpy as np
import pytest

import minicnn as mc
from minicnn import network
from minicnn.layers import (Activation, BatchNormalization, Conv2D, Dense, Flatten, Input,
                            MaxPooling2D, ReLU)
from minicnn.layers.core import Activation as ActivationClass
from minicnn.models import Model, Sequential


def conv_bn_relu(relu):
    mc.utils.set_random_seed(3)
    return Sequential([Input((10, 10, 3)),
                       Conv2D(16, 3, padding="same"), BatchNormalization(momentum=0.9), relu(),
                       Conv2D(16, 3, padding="same"), BatchNormalization(), relu(),
                       MaxPooling2D(2), Flatten(), Dense(4, activation="softmax")])


RELUS = {"Activation": lambda: Activation("relu"), "ReLU": lambda: ReLU()}


def train(model, x, y, steps=3):
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    for _ in range(steps):
        model.train_on_batch(x, y)
    return [np.array(w) for w in model.get_weights()], np.array(model.predict(x, verbose=0))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("relu", sorted(RELUS))
@pytest.mark.parametrize("batch", [8, 96])  # 96: the two-thread step on numba
def test_folding_changes_no_number(monkeypatch, backend, relu, batch):
    if backend not in mc.backend.available():
        pytest.skip(f"{backend} does not import here")
    mc.backend.set_backend(backend)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 10, 10, 3)).astype(np.float32)
    y = rng.integers(0, 4, batch)
    model = conv_bn_relu(RELUS[relu])
    assert len(model._graph._relu_after) == 2
    folded = train(model, x, y)
    monkeypatch.setattr(network, "_folds_relu", lambda *args: False)
    apart = conv_bn_relu(RELUS[relu])
    assert not apart._graph._relu_after
    separate = train(apart, x, y)
    for a, b in zip(folded[0] + [folded[1]], separate[0] + [separate[1]]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_the_relu_layer_is_not_called(monkeypatch):
    calls = []
    original = ActivationClass._forward
    monkeypatch.setattr(ActivationClass, "_forward",
                        lambda self, x, training: calls.append(self.name) or
                        original(self, x, training))
    model = conv_bn_relu(RELUS["Activation"])
    x = np.random.default_rng(1).standard_normal((4, 10, 10, 3)).astype(np.float32)
    assert np.isfinite(model.predict(x, verbose=0)).all() and calls == []
    out = model._graph.forward([x], training=True)[0]  # the caches kept, unlike predict
    assert calls == [] and np.isfinite(out).all()
    bn = model.layers[1]
    assert bn.relu_applied()
    # a layer called by itself is never folded
    y = bn.forward(np.random.default_rng(2).standard_normal((4, 10, 10, 16)), training=False)
    assert (np.asarray(y) < 0).any() and not bn.relu_applied()


def test_float64_gradients_equal_the_unfolded_graph(monkeypatch, float64):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 10, 10, 3))
    model = conv_bn_relu(RELUS["ReLU"])
    dy = rng.standard_normal((6, 4))
    model._graph.forward([x], training=True)
    model._graph.backward([dy], [False])
    folded = [np.array(g) for layer in model.layers for g in (layer._grads or [])]
    monkeypatch.setattr(network, "_folds_relu", lambda *args: False)
    apart = conv_bn_relu(RELUS["ReLU"])
    apart.set_weights(model.get_weights())
    apart._graph.forward([x], training=True)
    apart._graph.backward([dy], [False])
    separate = [np.array(g) for layer in apart.layers for g in (layer._grads or [])]
    assert len(folded) == len(separate) == 10
    for a, b in zip(folded, separate):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_no_fold_where_the_normalization_output_is_read_elsewhere():
    inputs = Input((6, 6, 2))
    normed = BatchNormalization()(Conv2D(4, 3, padding="same")(inputs))
    relu = Activation("relu")(normed)
    # the normalization's own output is a model output too
    model = Model(inputs, [Flatten()(relu), Flatten()(normed)])
    assert not model._graph._relu_after
    x = np.random.default_rng(5).standard_normal((3, 6, 6, 2)).astype(np.float32)
    _, raw = model.predict(x, verbose=0)
    assert (raw < 0).any()  # not cut by the relu
    # a relu with arguments is not a plain relu
    leaky = Sequential([Input((6, 6, 2)), BatchNormalization(), ReLU(negative_slope=0.1)])
    assert not leaky._graph._relu_after


def test_trace_sees_each_layer_own_output():
    model = conv_bn_relu(RELUS["Activation"])
    x = np.random.default_rng(6).standard_normal((4, 10, 10, 3)).astype(np.float32)
    seen = {}
    model._graph.forward([x], training=False,
                         observe=lambda node, out: seen.setdefault(node.layer.name, out))
    bn = model.layers[1].name
    assert (np.asarray(seen[bn]) < 0).any()
    assert not model.layers[1].relu_applied()
