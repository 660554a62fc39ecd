"""``model.trace(x, y)``: one training step laid out layer by layer, as text and data,
without changing the model."""
import numpy as np
import pytest

import minicnn as mc
from minicnn.layers import (AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, Flatten,
                            MaxPooling2D)


def _model(optimizer="adam"):
    mc.utils.set_random_seed(0)
    model = mc.Sequential([
        Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1)), MaxPooling2D(2),
        Conv2D(3, 3, padding="same", activation="tanh"), AveragePooling2D(2), Flatten(),
        Dropout(0.2, seed=1), BatchNormalization(), Dense(3, activation="softmax")])
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _graph(optimizer="adam"):
    """Residual add, concatenation, a shared conv called twice, batch norm, dropout."""
    mc.utils.set_random_seed(0)
    inputs = mc.Input((8, 8, 1))
    a = Conv2D(3, 3, padding="same", activation="relu")(inputs)
    shared = Conv2D(3, 3, padding="same", activation="tanh", name="shared")
    b = mc.layers.Add()([shared(a), a])
    c = mc.layers.Concatenate()([shared(b), BatchNormalization()(a)])
    h = Dropout(0.2, seed=1)(Flatten()(MaxPooling2D(2)(c)))
    model = mc.Model(inputs, Dense(3, activation="softmax")(h))
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 8, 8, 1)).astype(np.float32), rng.integers(0, 3, n)


@pytest.mark.parametrize("build", [_model, _graph], ids=["sequential", "graph"])
@pytest.mark.parametrize("optimizer", [lambda: mc.optimizers.Adam(1e-2),
                                       lambda: mc.optimizers.SGD(0.1, momentum=0.9)],
                         ids=["adam", "sgd-momentum"])
def test_trace_changes_nothing_and_predicts_the_next_step(optimizer, build):
    model = build(optimizer())
    x, y = _data()
    model.train_on_batch(x, y)  # the optimizer has slots and an iteration count now
    weights, state = model.get_weights(), model.optimizer.get_state()
    data = model.trace(x, y, print_fn=None)
    for a, b in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    assert model.optimizer.get_state()["iterations"] == state["iterations"]
    for slot in model.optimizer.slot_names:
        for a, b in zip(model.optimizer.get_state()[slot], state[slot]):
            np.testing.assert_array_equal(a, b)
    assert all(layer._cache is None for layer in model.layers)

    # the |update| / |weight| ratios are those of the step train_on_batch then takes
    loss = model.train_on_batch(x, y)[0]
    assert data["loss"] == pytest.approx(loss, rel=1e-6)
    actual = {}
    for layer, new, old in zip([l for l in model.layers for _ in l.weights],
                               model.get_weights(), weights):
        actual.setdefault(layer.name, []).append((new, old))
    for row in data["backward"]:
        layer = next(l for l in model.layers if l.name == row["layer"])
        names = [n for n, _, t in layer._weights if t]
        for w in row["weights"]:
            new, old = actual[layer.name][layer.weight_names.index(w["name"])]
            assert w["name"] in names
            ratio = np.linalg.norm(new.astype(np.float64) - old) / np.linalg.norm(old)
            if w["update_ratio"] is None:
                assert not old.any()
            else:
                assert w["update_ratio"] == pytest.approx(ratio, rel=1e-3)


def test_trace_follows_the_chain_rule_backwards():
    model = _model()
    x, y = _data()
    data = model.trace(x, y, print_fn=None)
    forward, backward = data["forward"], data["backward"]
    assert [r["layer"] for r in forward] == [l.name for l in model.layers]
    assert [r["layer"] for r in backward] == [l.name for l in reversed(model.layers)]
    assert forward[0]["shape"] == (12, 6, 6, 4) and forward[-1]["shape"] == (12, 3)
    assert backward[0]["grad_at"] == "logits"  # fused softmax + cross-entropy
    # the gradient arriving at a layer has the shape of that layer's output
    for row in backward:
        assert row["grad_shape"] == next(f["shape"] for f in forward
                                         if f["layer"] == row["layer"])
    # what a layer passes down is what arrives at the layer below it
    for above, below in zip(backward, backward[1:]):
        assert below["grad_output_norm"] == pytest.approx(above["grad_input_norm"], rel=1e-6)
        assert below["grad_output_rms"] == pytest.approx(above["grad_input_rms"], rel=1e-6)
    # average pooling 2x2 spreads each gradient over 4 cells, a quarter each: the norm
    # halves (the RMS divides by 4 where the windows tile the input, more here, where
    # a last row and column fall outside every window and get none)
    pool = next(r for r in backward if r["class"] == "AveragePooling2D")
    assert pool["grad_input_norm"] == pytest.approx(pool["grad_output_norm"] / 2, rel=1e-5)
    # RMS is the norm per element
    for row in backward:
        size = np.prod(row["grad_shape"])
        assert row["grad_output_rms"] == pytest.approx(row["grad_output_norm"] / np.sqrt(size))


def test_trace_walks_a_graph_node_by_node():
    model = _graph()
    data = model.trace(*_data(), print_fn=None)
    nodes = model._graph.nodes
    assert [r["layer"] for r in data["forward"]] == [n.layer.name for n in nodes]
    assert [r["layer"] for r in data["backward"]] == [n.layer.name for n in reversed(nodes)]
    shared = [r for r in data["backward"] if r["layer"] == "shared"]
    assert len(shared) == 2 and len(shared[0]["weights"]) == 2 and not shared[1]["weights"]
    # the Add passes its gradient to both inputs: the norm of the pair is sqrt(2) times
    add = next(r for r in data["backward"] if r["class"] == "Add")
    assert add["grad_input_norm"] == pytest.approx(add["grad_output_norm"] * np.sqrt(2),
                                                   rel=1e-6)
    assert add["grad_input_rms"] == pytest.approx(add["grad_output_rms"], rel=1e-6)
    assert "shared" in mc.trace.format_trace(data)


def test_trace_counts_dead_relus_and_saturated_tanh():
    model = mc.Sequential([Dense(4, activation="relu", input_shape=(2,)),
                           Dense(2, activation="tanh")])
    model.compile("sgd", "mse")
    model.set_weights([np.array([[1, -1, 1, -1], [0, 0, 0, 0]], np.float32), np.zeros(4),
                       np.full((4, 2), 10, np.float32) * [[1], [1], [0], [0]], np.zeros(2)])
    x = np.array([[1.0, 0], [2.0, 0]], np.float32)  # units 2 and 4 are always negative
    data = model.trace(x, np.zeros((2, 2)), print_fn=None)
    assert data["forward"][0]["zero_fraction"] == 0.5
    assert (data["forward"][0]["dead_channels"], data["forward"][0]["dead_fraction"]) == (2, 0.5)
    assert data["forward"][1]["saturated_fraction"] == 1.0  # tanh(10), tanh(20), ...
    # half the values zero, but no unit dead: every unit fires for one of the samples
    model.set_weights([np.array([[1, -1, 1, -1], [0, 0, 0, 0]], np.float32), np.zeros(4),
                       np.zeros((4, 2), np.float32), np.zeros(2)])
    data = model.trace(np.array([[1.0, 0], [-1.0, 0]], np.float32), np.zeros((2, 2)),
                       print_fn=None)
    assert data["forward"][0]["zero_fraction"] == 0.5
    assert data["forward"][0]["dead_channels"] == 0


def test_trace_prints_both_passes():
    lines = []
    _model().trace(*_data(), print_fn=lines.append)
    text = lines[0]
    for piece in ("trace of one training step", "forward (in layer order)", "loss:",
                  "backward (in the order backprop visits the layers)", "zeros",
                  "dead", "(rms)",
                  "saturated tanh", "(p - y) / N", "|update|/|weight|"):
        assert piece in text, piece


def test_trace_needs_a_compiled_model():
    model = mc.Sequential([Dense(2, input_shape=(3,))])
    with pytest.raises(ValueError, match=r"trace\(\) needs compile\(\) first"):
        model.trace(np.ones((2, 3)), np.ones((2, 2)))
