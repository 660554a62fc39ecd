"""The public gradient checks of API.md: ``check_layer(layer, x)`` and
``check_model(model, x, y)`` print a per-gradient table and return it as data, run in
float64 whatever the float type (restored afterwards), pass on every layer and catch
a deliberately broken backward pass."""
import numpy as np
import pytest

import minicnn as mc
from minicnn.gradcheck import ELEMENTWISE_UP_TO, check_layer, check_model
from minicnn.layers import (Activation, AveragePooling2D, BatchNormalization, Conv2D, Dense,
                            Dropout, Flatten, MaxPooling2D, MinPooling2D)


def tie_free(shape, seed=0):
    """Values 0.01 apart in random order: a finite-difference step never changes which
    cell wins a max/min window."""
    values = np.random.default_rng(seed).permutation(int(np.prod(shape))) * 0.01
    return (values - values.mean()).reshape(shape)


LAYERS = [
    (lambda: Conv2D(3, 3, padding="same", activation="tanh"), (2, 6, 6, 2)),
    (lambda: Conv2D(2, (3, 2), strides=(2, 1), padding="valid"), (2, 7, 6, 3)),
    (lambda: Conv2D(2, 3, padding="full", activation="sigmoid", data_format="channels_first"),
     (2, 2, 5, 5)),
    (lambda: MaxPooling2D(3, 2, padding="same"), (2, 7, 7, 2)),
    (lambda: MinPooling2D(2), (2, 6, 6, 2)),
    (lambda: AveragePooling2D(3, 2, padding="same"), (2, 7, 7, 2)),
    (lambda: Dense(5, activation="softmax"), (4, 7)),
    (lambda: Dense(3, activation="relu"), (3, 2, 6)),
    (lambda: Flatten(), (2, 3, 4, 5)),
    (lambda: Activation("tanh"), (3, 5)),
    (lambda: Dropout(0.4), (4, 6)),
    (lambda: BatchNormalization(), (6, 3, 3, 2)),
    (lambda: BatchNormalization(axis=1), (4, 3, 2, 2)),
]


@pytest.mark.parametrize("make, shape", LAYERS, ids=[
    "conv-same-tanh", "conv-strided", "conv-full-cf", "maxpool", "minpool", "avgpool",
    "dense-softmax", "dense-relu-rank3", "flatten", "tanh", "dropout", "bn", "bn-axis1"])
def test_check_layer_passes_on_every_layer(make, shape):
    lines = []
    rows = check_layer(make(), tie_free(shape).astype(np.float32), print_fn=lines.append)
    assert rows[0]["name"] == "input" and rows[0]["shape"] == shape
    assert all(r["passed"] for r in rows), rows
    assert all(set(r) == {"name", "shape", "method", "max_rel_error", "passed"} for r in rows)
    table = lines[0]
    assert "float64 central differences" in table and table.count("pass") >= len(rows)


def test_check_layer_fails_on_a_broken_backward(monkeypatch):
    """A backward pass that is off by 1% in dx, or in one weight's gradient, is caught
    in exactly that row."""
    from minicnn.layers import conv
    layer = Conv2D(3, 3, padding="same")
    x = tie_free((2, 5, 5, 2))
    assert all(r["passed"] for r in check_layer(layer, x, print_fn=None))
    original = conv.conv2d_backward

    def off_in_dx(*args, **kwargs):
        dx, dw, db = original(*args, **kwargs)
        return (None if dx is None else dx * 1.01), dw, db
    monkeypatch.setattr(conv, "conv2d_backward", off_in_dx)
    rows = {r["name"]: r["passed"] for r in check_layer(layer, x, print_fn=None)}
    assert rows == {"input": False, "kernel": True, "bias": True}

    def off_in_dw(*args, **kwargs):
        dx, dw, db = original(*args, **kwargs)
        dw = dw.copy()
        dw.flat[0] += 1e-3
        return dx, dw, db
    monkeypatch.setattr(conv, "conv2d_backward", off_in_dw)
    rows = {r["name"]: r["passed"] for r in check_layer(layer, x, print_fn=None)}
    assert rows == {"input": True, "kernel": False, "bias": True}


def test_large_tensors_are_checked_along_random_directions():
    rows = check_layer(Dense(80, activation="tanh"), tie_free((3, 60)), print_fn=None)
    methods = {r["name"]: r["method"] for r in rows}
    assert 60 * 80 > ELEMENTWISE_UP_TO
    assert methods == {"input": "elementwise", "kernel": "3 directions", "bias": "elementwise"}
    assert all(r["passed"] for r in rows)


def test_checks_run_in_float64_and_restore_float_type_and_backend():
    mc.backend.set_floatx("float32")
    backend = mc.backend.get_backend()
    seen = []

    class Spy(Dense):
        def _forward(self, x, training):
            seen.append(x.dtype)
            return super()._forward(x, training)
    check_layer(Spy(2), np.ones((2, 3), np.float32), print_fn=None)
    assert set(seen) == {np.dtype("float64")}
    assert mc.backend.floatx() == "float32" and mc.backend.get_backend() == backend

    class Broken(Dense):
        def _backward(self, dy):
            raise RuntimeError("broken on purpose")
    with pytest.raises(RuntimeError, match="broken on purpose"):
        check_layer(Broken(2), np.ones((2, 3)), print_fn=None)
    assert mc.backend.floatx() == "float32" and mc.backend.get_backend() == backend


def _small_model():
    model = mc.Sequential([
        Conv2D(3, 3, activation="tanh", input_shape=(7, 7, 1)), BatchNormalization(),
        AveragePooling2D(2), Flatten(), Dropout(0.25), Dense(4, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def test_check_model_passes_and_names_every_weight():
    lines = []
    rows = check_model(_small_model(), tie_free((5, 7, 7, 1)), np.arange(5) % 4,
                       print_fn=lines.append)
    assert [r["name"] for r in rows] == [
        "input", "conv2d/kernel", "conv2d/bias", "batch_normalization/gamma",
        "batch_normalization/beta", "dense/kernel", "dense/bias"]
    assert all(r["passed"] for r in rows), rows
    assert lines[0].startswith("check_model: Sequential 'sequential'")


def test_check_model_with_mse_and_no_softmax():
    model = mc.Sequential([Dense(4, activation="relu", input_shape=(3,)), Dense(2)])
    model.compile("sgd", "mse")
    x = tie_free((6, 3)) + 0.05
    rows = check_model(model, x, np.random.default_rng(1).standard_normal((6, 2)),
                       print_fn=None)
    assert all(r["passed"] for r in rows), rows


def test_check_model_catches_a_broken_layer(monkeypatch):
    from minicnn.layers import core
    model = _small_model()
    x, y = tie_free((5, 7, 7, 1)), np.arange(5) % 4
    original = core.dense_backward

    def off(*args, **kwargs):
        dx, dw, db = original(*args, **kwargs)
        return dx, dw * 1.01, db
    monkeypatch.setattr(core, "dense_backward", off)
    rows = {r["name"]: r["passed"] for r in check_model(model, x, y, print_fn=None)}
    assert rows["dense/kernel"] is False
    assert rows["conv2d/kernel"] is True and rows["dense/bias"] is True


def _graph_model():
    """Fan-out, a residual Add, a shared Dense called twice, a Concatenate, two inputs
    and two outputs (softmax + cross-entropy, and mse weighted 0.5)."""
    a, b = mc.Input((5,), name="a"), mc.Input((3,), name="b")
    h = Dense(5, activation="tanh", name="h")(a)
    shared = Dense(5, activation="tanh", name="shared")
    r = mc.layers.Add(name="add")([shared(h), h])
    c = mc.layers.Concatenate(name="cat")([shared(r), b])
    cls = Dense(3, activation="softmax", name="cls")(c)
    reg = Dense(2, name="reg")(mc.layers.Concatenate(name="cat2")([c, cls]))
    model = mc.Model([a, b], [cls, reg])
    model.compile("sgd", ["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.5])
    return model


def test_check_model_walks_a_graph():
    x = [tie_free((6, 5)), tie_free((6, 3))]
    y = [np.arange(6) % 3, np.random.default_rng(2).standard_normal((6, 2))]
    lines = []
    rows = check_model(_graph_model(), x, y, print_fn=lines.append)
    assert [r["name"] for r in rows][:4] == ["input 0", "input 1", "h/kernel", "h/bias"]
    assert "shared/kernel" in [r["name"] for r in rows]
    assert all(r["passed"] for r in rows), rows
    assert lines[0].startswith("check_model: Model 'functional")


def test_check_model_catches_a_wrong_gradient_sum(monkeypatch):
    """A planted bug: a tensor feeding two layers keeps the last gradient only."""
    from minicnn import network
    x = [tie_free((6, 5)), tie_free((6, 3))]
    y = [np.arange(6) % 3, np.random.default_rng(2).standard_normal((6, 2))]

    def last_only(pending, tensor, grad):
        pending[id(tensor)] = grad
    monkeypatch.setattr(network, "_accumulate", last_only)
    rows = {r["name"]: r["passed"] for r in check_model(_graph_model(), x, y, print_fn=None)}
    assert rows["h/kernel"] is False and rows["input 0"] is False


def test_check_model_needs_a_compiled_model():
    model = mc.Sequential([Dense(2, input_shape=(3,))])
    with pytest.raises(ValueError, match="check_model\\(\\) needs compile\\(\\) first"):
        check_model(model, np.ones((2, 3)), np.ones((2, 2)))
