"""Shared layers: one layer called on several tensors, its weights' gradient the sum
over the calls, against Keras 3 on the same graphs and weights; saved and opened both
ways."""
import numpy as np
import pytest

import minicnn as mc


def siamese(K, L):
    """Two images through one conv tower (shared Conv2D and Dense), their features
    subtracted and concatenated, and one Dense applied twice in a row (a layer
    reading its own output)."""
    left, right = K.Input((6, 6, 1), name="left"), K.Input((6, 6, 1), name="right")
    conv = L.Conv2D(2, 3, activation="relu", name="conv")
    flat = L.Flatten(name="flat")
    embed = L.Dense(4, activation="tanh", name="embed")
    a, b = embed(flat(conv(left))), embed(flat(conv(right)))
    again = L.Dense(4, activation="tanh", name="again")
    h = L.Concatenate(name="cat")([L.Subtract(name="diff")([a, b]), again(again(a))])
    out = L.Dense(2, activation="softmax", name="out")(h)
    return K.Model([left, right], out, name="siamese")


def data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    x = [rng.standard_normal((n, 6, 6, 1)).astype(np.float32) for _ in range(2)]
    return x, rng.integers(0, 2, n)


def pair(keras):
    keras.utils.set_random_seed(7)  # the same weights whatever ran before
    ours, theirs = siamese(mc, mc.layers), siamese(keras, keras.layers)
    ours.set_weights([np.asarray(w) for w in theirs.get_weights()])
    return ours, theirs


def test_layers_weights_and_calls_are_keras_s(keras):
    ours, theirs = pair(keras)
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]
    assert ours.count_params() == theirs.count_params()
    with pytest.raises(AttributeError, match="called 2 times, so its output is ambiguous"):
        ours.get_layer("conv").output
    lines = []
    ours.summary(print_fn=lines.append, line_length=140)
    diff = next(line for line in lines[0].splitlines() if line.startswith("│ diff"))
    assert "embed[0][0], embed[1][0]" in diff  # Keras's [call][tensor] of each source
    x, _ = data()
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), atol=2e-6)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_steps_equal_keras(keras, optimizer):
    ours, theirs = pair(keras)
    x, y = data()
    opt = {"sgd": lambda m: m.optimizers.SGD(0.1, momentum=0.9),
           "adam": lambda m: m.optimizers.Adam(0.01)}[optimizer]
    ours.compile(opt(mc), "sparse_categorical_crossentropy", metrics=["accuracy"])
    theirs.compile(opt(keras), "sparse_categorical_crossentropy", metrics=["accuracy"])
    for _ in range(3):
        np.testing.assert_allclose(ours.train_on_batch(x, y), theirs.train_on_batch(x, y),
                                   rtol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-5)


def test_a_shared_layer_s_gradient_is_the_sum_over_its_calls():
    """The gradient of each shared layer equals the sum of the gradients of separate
    layers (one per call) holding the same weights."""
    x, _ = data(5)
    shared = siamese(mc, mc.layers)
    out = shared.forward(x, training=True)
    grad = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    shared.backward(grad)
    # compute each call's gradient separately through an unshared twin
    left, right = mc.Input((6, 6, 1)), mc.Input((6, 6, 1))
    conv1, conv2 = mc.layers.Conv2D(2, 3, activation="relu"), mc.layers.Conv2D(2, 3,
                                                                               activation="relu")
    e1, e2 = mc.layers.Dense(4, activation="tanh"), mc.layers.Dense(4, activation="tanh")
    flat = mc.layers.Flatten()
    flat2 = mc.layers.Flatten()
    a, b = e1(flat(conv1(left))), e2(flat2(conv2(right)))
    g1, g2 = mc.layers.Dense(4, activation="tanh"), mc.layers.Dense(4, activation="tanh")
    h = mc.layers.Concatenate()([mc.layers.Subtract()([a, b]), g2(g1(a))])
    twin = mc.Model([left, right], mc.layers.Dense(2, activation="softmax")(h))
    for layer in (conv1, conv2):
        layer.set_weights(shared.get_layer("conv").get_weights())
    for layer in (e1, e2):
        layer.set_weights(shared.get_layer("embed").get_weights())
    for layer in (g1, g2):
        layer.set_weights(shared.get_layer("again").get_weights())
    twin.layers[-1].set_weights(shared.get_layer("out").get_weights())
    np.testing.assert_allclose(twin.forward(x, training=True), out, atol=1e-6)
    twin.backward(grad)
    for name, (one, two) in (("conv", (conv1, conv2)), ("embed", (e1, e2)),
                             ("again", (g1, g2))):
        for mine, p, q in zip(shared.get_layer(name).get_gradients(), one.get_gradients(),
                              two.get_gradients()):
            np.testing.assert_allclose(mine, p + q, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("suffix", [".npz", ".keras"])
def test_a_shared_graph_saves_and_reloads(tmp_path, suffix):
    x, y = data(16, seed=2)
    mc.utils.set_random_seed(3)
    model = siamese(mc, mc.layers)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / f"s{suffix}")
    again = mc.models.load_model(tmp_path / f"s{suffix}")
    assert [layer.name for layer in again.layers] == [layer.name for layer in model.layers]
    assert len(again._graph.nodes) == len(model._graph.nodes)
    np.testing.assert_array_equal(again.train_on_batch(x, y), model.train_on_batch(x, y))
    np.testing.assert_array_equal(again.predict(x), model.predict(x))


def test_keras_opens_the_shared_graph_and_minicnn_opens_keras_s(keras, tmp_path):
    x, y = data(8, seed=4)
    ours, theirs = pair(keras)
    ours.save(tmp_path / "ours.keras")
    opened = keras.saving.load_model(tmp_path / "ours.keras")
    np.testing.assert_allclose(opened.predict(x, verbose=0), ours.predict(x), atol=2e-6)
    theirs.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    theirs.train_on_batch(x, y)
    theirs.save(tmp_path / "theirs.keras")
    mine = mc.models.load_model(tmp_path / "theirs.keras")
    np.testing.assert_allclose(mine.train_on_batch(x, y), theirs.train_on_batch(x, y),
                               rtol=1e-5)
    for a, b in zip(mine.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-5)
