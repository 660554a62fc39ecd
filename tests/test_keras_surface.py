"""Keras's model-building surface on minicnn: ``import minicnn as keras`` names, Input as
a Sequential model's first entry, calling layers and models on arrays, get_layer, pop,
Keras's shapes and weight lists, and freezing (``trainable = False``) as Keras 3 does it.
Live comparisons run Keras 3 (JAX) where it is installed."""
import os

import numpy as np
import pytest

import minicnn as mc
from minicnn import layers
from minicnn.models import load_model

os.environ.setdefault("KERAS_BACKEND", "jax")


def keras_or_skip():
    return pytest.importorskip("keras", reason="Keras 3 is not installed")


def small(input_first=True, name="small"):
    mc.utils.set_random_seed(0)
    entries = [mc.Input((8, 8, 1))] if input_first else []
    entries += [layers.Conv2D(3, 3, activation="relu", name="conv",
                              **({} if input_first else {"input_shape": (8, 8, 1)})),
                layers.BatchNormalization(name="bn"), layers.Flatten(name="flat"),
                layers.Dense(4, activation="softmax", name="out")]
    return mc.Sequential(entries, name=name)


def data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 8, 8, 1)).astype(np.float32), rng.integers(0, 4, n)


# ---------------------------------------------------------------------------------
# the namespace
# ---------------------------------------------------------------------------------
def test_keras_names_are_minicnn_names():
    assert mc.layers.Input is mc.Input
    assert callable(mc.saving.load_model) and callable(mc.saving.save_model)
    for module in ("callbacks", "initializers", "losses", "metrics", "optimizers", "models",
                   "datasets", "utils", "layers"):
        assert getattr(mc, module).__name__ == f"minicnn.{module}"


@pytest.mark.parametrize("module, name", [(mc, "ops_numpy"), (mc, "applications"),
                                          (layers, "LSTM"), (layers, "Conv1D")])
def test_what_minicnn_lacks_says_it_is_not_implemented(module, name):
    with pytest.raises(AttributeError, match="not implemented in minicnn") as info:
        getattr(module, name)
    assert f".{name}" in str(info.value)
    assert not hasattr(module, name)  # hasattr still answers False


# ---------------------------------------------------------------------------------
# Input, shapes, get_layer, pop
# ---------------------------------------------------------------------------------
def test_input_as_first_entry_builds_the_model_and_is_not_a_layer():
    model = small()
    assert model.built and [layer.name for layer in model.layers] == ["conv", "bn", "flat",
                                                                         "out"]
    assert model.input_shape == (None, 8, 8, 1) and model.output_shape == (None, 4)
    added = mc.Sequential(name="added")
    added.add(mc.Input((8, 8, 1)))
    added.add(layers.Flatten())
    assert added.input_shape == (None, 8, 8, 1) and added.output_shape == (None, 64)
    with pytest.raises(ValueError, match="first entry"):
        added.add(mc.Input((3,)))


def test_shapes_and_weights_are_those_keras_reports():
    keras = keras_or_skip()
    kl = keras.layers
    ours = small()
    theirs = keras.Sequential([keras.Input((8, 8, 1)), kl.Conv2D(3, 3, activation="relu"),
                               kl.BatchNormalization(), kl.Flatten(),
                               kl.Dense(4, activation="softmax")])
    assert ours.input_shape == theirs.input_shape
    assert ours.output_shape == theirs.output_shape
    for attr in ("weights", "trainable_weights", "non_trainable_weights"):
        assert [tuple(w.shape) for w in getattr(ours, attr)] == \
               [tuple(w.shape) for w in getattr(theirs, attr)], attr
    assert tuple(ours.inputs[0].shape) == tuple(theirs.inputs[0].shape)
    assert tuple(ours.outputs[0].shape) == tuple(theirs.outputs[0].shape)
    assert tuple(ours.get_layer("flat").output.shape) == (None, 108)
    assert ours.get_layer("flat").input is ours.get_layer("bn").output


def test_get_layer_by_name_or_index_and_its_errors():
    model = small()
    assert model.get_layer("bn") is model.layers[1]
    assert model.get_layer(index=-1) is model.layers[-1]
    with pytest.raises(ValueError, match="no such layer: 'nope'"):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="only has 4 layers"):
        model.get_layer(index=4)
    with pytest.raises(ValueError, match="not both"):
        model.get_layer("bn", 1)


def test_pop_removes_the_last_layer_and_rebuilds():
    model = small()
    last = model.pop()
    assert last.name == "out" and len(model.layers) == 3
    assert model.output_shape == (None, 108)
    model.add(layers.Dense(2, name="new"))
    assert model.output_shape == (None, 2)
    assert model.predict(data(3)[0]).shape == (3, 2)
    with pytest.raises(IndexError, match="no layers"):
        mc.Sequential(name="empty").pop()


# ---------------------------------------------------------------------------------
# calling
# ---------------------------------------------------------------------------------
def test_calling_a_model_or_a_layer_runs_inference():
    x, _ = data(5)
    model = small()
    np.testing.assert_array_equal(np.asarray(model(x)), model.predict(x))
    lazy = layers.Dense(3)
    y = lazy(np.ones((2, 7), np.float32))
    assert lazy.built and y.shape == (2, 3)
    unbuilt = mc.Sequential([layers.Flatten(), layers.Dense(2)])
    assert unbuilt(x).shape == (5, 2) and unbuilt.input_shape == (None, 8, 8, 1)


def test_calling_in_training_mode_uses_batch_statistics():
    x, _ = data(6)
    model = small()
    inference, training = np.asarray(model(x)), np.asarray(model(x, training=True))
    assert not np.allclose(inference, training)  # BN: moving vs batch statistics


# ---------------------------------------------------------------------------------
# freezing
# ---------------------------------------------------------------------------------
def test_a_frozen_layer_is_unchanged_by_fit_and_counted_non_trainable():
    x, y = data()
    model = small()
    model.get_layer("conv").trainable = False
    assert len(model.trainable_weights) == 4 and len(model.non_trainable_weights) == 4
    before = model.get_layer("conv").get_weights()
    dense_before = model.get_layer("out").get_weights()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    for a, b in zip(before, model.get_layer("conv").get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(dense_before[0], model.get_layer("out").get_weights()[0])


def test_a_frozen_model_trains_nothing_and_frozen_batchnorm_runs_in_inference_mode():
    x, y = data()
    model = small()
    model.trainable = False
    assert all(not layer.trainable for layer in model.layers) and not model.trainable_weights
    before = model.get_weights()
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    for a, b in zip(before, model.get_weights()):  # moving statistics included
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.asarray(model(x, training=True)), np.asarray(model(x)))
    model.trainable = True
    assert all(layer.trainable for layer in model.layers)


def test_freezing_matches_keras_step_and_summary_counts():
    keras = keras_or_skip()
    kl = keras.layers
    x, y = data()
    ours = small()
    theirs = keras.Sequential([keras.Input((8, 8, 1)), kl.Conv2D(3, 3, activation="relu"),
                               kl.BatchNormalization(), kl.Flatten(),
                               kl.Dense(4, activation="softmax")])
    theirs.set_weights(ours.get_weights())
    for model in (ours, theirs):
        model.layers[1].trainable = False     # BN frozen: inference mode in training
        model.layers[0].trainable = False
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert sum(int(np.prod(w.shape)) for w in ours.trainable_weights) == \
        sum(int(np.prod(w.shape)) for w in theirs.trainable_weights)
    ours.train_on_batch(x, y)
    theirs.train_on_batch(x, y)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), atol=2e-6)
    ours_text, theirs_text = [], []
    ours.summary(print_fn=ours_text.append)
    theirs.summary(print_fn=lambda line, *args, **kwargs: theirs_text.append(line))
    for line in ("Trainable params: 436", "Non-trainable params: 42"):
        assert line in "\n".join(theirs_text) and line in ours_text[0], line


def test_trainable_is_saved_and_loaded(tmp_path):
    model = small()
    model.get_layer("conv").trainable = False
    for suffix in (".npz", ".keras"):
        path = str(tmp_path / f"m{suffix}")
        model.save(path)
        again = load_model(path)
        assert [layer.trainable for layer in again.layers] == [False, True, True, True]


def test_keras_opens_a_frozen_layer_frozen(tmp_path):
    keras = keras_or_skip()
    model = small()
    model.get_layer("conv").trainable = False
    path = str(tmp_path / "frozen.keras")
    model.save(path)
    theirs = keras.saving.load_model(path)
    assert [layer.trainable for layer in theirs.layers] == [False, True, True, True]


def test_trainable_must_be_a_bool():
    with pytest.raises(TypeError, match="trainable must be True or False"):
        layers.Dense(2, trainable="no")
    with pytest.raises(TypeError, match="trainable must be True or False"):
        small().trainable = 0


def test_input_layer_as_keras_3_has_it(keras):
    ours = mc.Sequential([mc.layers.InputLayer(shape=(4,)), mc.layers.Dense(2)])
    theirs = keras.Sequential([keras.layers.InputLayer(shape=(4,)), keras.layers.Dense(2)])
    assert len(ours.layers) == len(theirs.layers) == 1
    assert ours.input_shape == theirs.input_shape == (None, 4)
    layer = mc.layers.InputLayer(batch_shape=(None, 3), name="x")
    assert layer.output.shape == (None, 3) and layer.name == "x"
    model = mc.Model(layer.output, mc.layers.Dense(1)(layer.output))
    assert model.predict(np.zeros((2, 3), np.float32)).shape == (2, 1)
