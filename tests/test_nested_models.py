"""A model used as a layer of another model (``minicnn.nesting``), against Keras 3 on
the same weights: Keras's probability-model idiom, an encoder inside a functional
graph trained end to end, a model called twice (shared), a frozen inner model."""
import numpy as np
import pytest

import minicnn as mc


def encoder(K, L, name="encoder"):
    return K.Sequential([K.Input((6, 6, 1)), L.Conv2D(2, 3, activation="relu", name=f"{name}_c"),
                         L.Flatten(name=f"{name}_f"),
                         L.Dense(4, activation="tanh", name=f"{name}_d")], name=name)


def outer(K, L, frozen=False):
    """Two images through one encoder model (called twice), a functional head model
    on the difference, a Dense on top."""
    enc = encoder(K, L)
    if frozen:
        enc.trainable = False
    h_in = K.Input((4,))
    head = K.Model(h_in, L.Dense(3, activation="relu", name="head_d")(h_in), name="head")
    left, right = K.Input((6, 6, 1), name="left"), K.Input((6, 6, 1), name="right")
    diff = L.Subtract(name="diff")([enc(left), enc(right)])
    out = L.Dense(2, activation="softmax", name="out")(head(diff))
    return K.Model([left, right], out, name="outer")


def data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return ([rng.standard_normal((n, 6, 6, 1)).astype(np.float32) for _ in range(2)],
            rng.integers(0, 2, n))


def pair(keras, frozen=False):
    keras.utils.set_random_seed(7)  # the same weights whatever ran before
    ours, theirs = outer(mc, mc.layers, frozen), outer(keras, keras.layers, frozen)
    ours.set_weights([np.asarray(w) for w in theirs.get_weights()])
    return ours, theirs


def test_the_probability_model_idiom_is_keras_s(keras):
    """TensorFlow's beginner tutorial: ``Sequential([model, Softmax()])``."""
    base = keras.Sequential([keras.Input((4, 4)), keras.layers.Flatten(),
                             keras.layers.Dense(5)])
    ours_base = mc.Sequential([mc.Input((4, 4)), mc.layers.Flatten(), mc.layers.Dense(5)])
    ours_base.set_weights([np.asarray(w) for w in base.get_weights()])
    theirs = keras.Sequential([base, keras.layers.Softmax()])
    ours = mc.Sequential([ours_base, mc.layers.Softmax()])
    x = np.random.default_rng(1).standard_normal((3, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), atol=1e-6)
    assert [layer.name for layer in ours.layers][0] == ours_base.name
    assert ours.count_params() == theirs.count_params()


def test_layers_weights_and_predictions_are_keras_s(keras):
    ours, theirs = pair(keras)
    assert [type(layer).__name__ for layer in ours.layers] == \
        ["InputLayer", "InputLayer", "Sequential", "Subtract", "Model", "Dense"]
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]
    assert ours.count_params() == theirs.count_params()
    x, _ = data()
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), atol=2e-6)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("frozen", [False, True], ids=["trained", "frozen"])
def test_training_through_inner_models_equals_keras(keras, optimizer, frozen):
    ours, theirs = pair(keras, frozen)
    x, y = data()
    opt = {"sgd": lambda m: m.optimizers.SGD(0.1, momentum=0.9),
           "adam": lambda m: m.optimizers.Adam(0.01)}[optimizer]
    ours.compile(opt(mc), "sparse_categorical_crossentropy", metrics=["accuracy"])
    theirs.compile(opt(keras), "sparse_categorical_crossentropy", metrics=["accuracy"])
    before = ours.get_layer("encoder").get_weights()
    for _ in range(3):
        np.testing.assert_allclose(ours.train_on_batch(x, y), theirs.train_on_batch(x, y),
                                   rtol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-5)
    changed = [not np.array_equal(a, b) for a, b in
               zip(before, ours.get_layer("encoder").get_weights())]
    assert not any(changed) if frozen else all(changed)
    assert len(ours.trainable_weights) == len(theirs.trainable_weights)
    assert len(ours.non_trainable_weights) == len(theirs.non_trainable_weights)


def test_an_inner_model_s_gradient_is_the_sum_over_its_calls():
    """The encoder called twice: its weights' gradient is the sum over both calls, as
    for a shared layer (two copies of the encoder, each called once, add up to it)."""
    x, _ = data(5)
    model = outer(mc, mc.layers)
    out = model.forward(x, training=True)
    grad = np.random.default_rng(2).standard_normal(out.shape).astype(np.float32)
    model.backward(grad)
    shared = model.get_layer("encoder").get_gradients()
    one, two = encoder(mc, mc.layers, "one"), encoder(mc, mc.layers, "two")
    for copy in (one, two):
        copy.set_weights(model.get_layer("encoder").get_weights())
    head = model.get_layer("head")
    left, right = mc.Input((6, 6, 1)), mc.Input((6, 6, 1))
    diff = mc.layers.Subtract()([one(left), two(right)])
    twin = mc.Model([left, right], model.get_layer("out")(head(diff)))
    np.testing.assert_allclose(twin.forward(x, training=True), out, atol=1e-6)
    twin.backward(grad)
    for mine, p, q in zip(shared, one.get_gradients(), two.get_gradients()):
        np.testing.assert_allclose(mine, p + q, rtol=1e-5, atol=1e-6)


def test_an_inner_model_must_fit_its_inputs():
    enc = encoder(mc, mc.layers)
    with pytest.raises(ValueError, match=r"Sequential 'encoder': called on inputs of sample "
                                         r"shape \(5, 5, 1\)"):
        enc(mc.Input((5, 5, 1)))
    with pytest.raises(ValueError, match="Sequential 'encoder': called on inputs"):
        mc.Sequential([mc.Input((7, 7, 1)), enc])


def test_a_model_of_models_saves_and_resumes_in_minicnn_s_archive(tmp_path):
    x, y = data(16, seed=3)
    mc.utils.set_random_seed(5)
    model = outer(mc, mc.layers)
    model.get_layer("head").trainable = False
    model.compile(mc.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    again = mc.models.load_model(tmp_path / "m.npz")
    assert [type(layer).__name__ for layer in again.layers][2:] == \
        ["Sequential", "Subtract", "Model", "Dense"]
    assert not again.get_layer("head").trainable
    np.testing.assert_array_equal(again.train_on_batch(x, y), model.train_on_batch(x, y))
    for a, b in zip(again.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_models_nested_too_deep_are_refused(tmp_path):
    model = mc.Sequential([mc.Input((3,)), mc.layers.Dense(2)])
    for _ in range(9):
        model = mc.Sequential([model])
    model.save(tmp_path / "deep.npz")
    with pytest.raises(ValueError, match="nested more than 8 deep") as info:
        mc.models.load_model(tmp_path / "deep.npz")
    assert "deep.npz" in str(info.value)


def test_keras_opens_a_minicnn_model_of_models_and_steps_alike(keras, tmp_path):
    x, y = data(8, seed=4)
    ours = outer(mc, mc.layers)
    ours.get_layer("head").trainable = False
    ours.compile(mc.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    ours.train_on_batch(x, y)
    ours.save(tmp_path / "ours.keras")
    theirs = keras.saving.load_model(tmp_path / "ours.keras")
    assert [type(layer).__name__ for layer in theirs.layers if
            type(layer).__name__ != "InputLayer"] == ["Sequential", "Subtract", "Functional",
                                                      "Dense"]
    assert not theirs.get_layer("head").trainable
    np.testing.assert_allclose(theirs.predict(x, verbose=0), ours.predict(x), atol=2e-6)
    again = mc.models.load_model(tmp_path / "ours.keras")  # and minicnn reads its own
    np.testing.assert_array_equal(again.predict(x), ours.predict(x))
    step = ours.train_on_batch(x, y)
    np.testing.assert_array_equal(again.train_on_batch(x, y), step)
    np.testing.assert_allclose(theirs.train_on_batch(x, y), step, rtol=1e-5)
    for a, b, c in zip(ours.get_weights(), theirs.get_weights(), again.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(a, c)


def test_minicnn_opens_keras_s_model_of_models_and_steps_alike(keras, tmp_path):
    x, y = data(8, seed=5)
    keras.utils.set_random_seed(8)
    theirs = outer(keras, keras.layers, frozen=True)
    theirs.compile(keras.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
    theirs.train_on_batch(x, y)
    theirs.save(tmp_path / "theirs.keras")
    ours = mc.models.load_model(tmp_path / "theirs.keras")
    assert not ours.get_layer("encoder").trainable
    np.testing.assert_allclose(ours.train_on_batch(x, y), theirs.train_on_batch(x, y),
                               rtol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-6)
    probability = keras.Sequential([theirs.get_layer("encoder"), keras.layers.Softmax()])
    probability.save(tmp_path / "probability.keras")
    mine = mc.models.load_model(tmp_path / "probability.keras")
    np.testing.assert_allclose(mine.predict(x[0]), probability.predict(x[0], verbose=0),
                               atol=1e-6)
