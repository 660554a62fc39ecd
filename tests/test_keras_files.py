"""Keras 3's own files both ways, checked against Keras itself: ``.weights.h5`` (with the
optimizer's state), ``.keras`` archives, legacy ``.h5`` model files; the refusals (minicnn
-only layers, layers minicnn lacks, functional graphs, Lambda layers); the key layout."""
import json
import os
import zipfile

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras", reason="Keras 3 is not installed (pip install keras jax)")
h5py = pytest.importorskip("h5py")
from keras import layers as kl  # noqa: E402

import minicnn as mc  # noqa: E402
from minicnn import keras_files  # noqa: E402
from minicnn.layers import (AveragePooling2D, BatchNormalization, Conv2D, Dense,  # noqa: E402
                            Dropout, Flatten, MaxPooling2D, MinPooling2D)
from minicnn.models import Sequential, load_model  # noqa: E402

# Keras 3.15 on NumPy 2 warns about __array__'s copy keyword on every conversion
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(autouse=True)
def float32_numpy():
    mc.backend.set_floatx("float32")
    yield


def data(n=6, shape=(8, 8, 1), classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, *shape)).astype("float32"), rng.integers(0, classes, n)


def keras_convnet(optimizer="adam"):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 1)), kl.Conv2D(3, 3, activation="relu", padding="same"),
        kl.BatchNormalization(), kl.MaxPooling2D(2), kl.Conv2D(2, 2, name="second"),
        kl.AveragePooling2D(2, strides=1, padding="same"), kl.Flatten(),
        kl.Dense(4, activation="tanh"), kl.Dense(3, activation="softmax")])
    opt = (keras.optimizers.Adam(1e-2) if optimizer == "adam"
           else keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True))
    model.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def minicnn_convnet(optimizer="adam"):
    mc.utils.set_random_seed(1)
    model = Sequential([
        Conv2D(3, 3, activation="relu", padding="same", input_shape=(8, 8, 1)),
        BatchNormalization(), MaxPooling2D(2), Conv2D(2, 2, name="second"),
        AveragePooling2D(2, strides=1, padding="same"), Flatten(),
        Dense(4, activation="tanh"), Dense(3, activation="softmax")], name="mini")
    opt = (mc.optimizers.Adam(1e-2) if optimizer == "adam"
           else mc.optimizers.SGD(0.05, momentum=0.9, nesterov=True))
    model.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def assert_close_weights(a, b, atol=2e-7):
    a, b = list(a), list(b)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.shape == y.shape
        np.testing.assert_allclose(x, y, rtol=0, atol=atol)


def keras_step_equals_minicnn_step(keras_model, mini, x, y):
    keras_model.train_on_batch(x, y)
    mini.train_on_batch(x, y)
    assert_close_weights(mini.get_weights(), keras_model.get_weights(), atol=5e-7)


# ---------------------------------------------------------------------------------
# Keras -> minicnn
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_load_model_opens_keras_files_and_the_next_step_is_keras(tmp_path, suffix, optimizer):
    x, y = data()
    km = keras_convnet(optimizer)
    km.fit(x, y, batch_size=3, epochs=2, verbose=0)  # moving statistics and a state
    path = str(tmp_path / f"model{suffix}")
    km.save(path)
    mini = load_model(path)
    assert [type(layer).__name__ for layer in mini.layers] == [
        "Conv2D", "BatchNormalization", "MaxPooling2D", "Conv2D", "AveragePooling2D",
        "Flatten", "Dense", "Dense"]
    assert mini.layers[3].name == "second" and mini.input_shape == (None, 8, 8, 1)
    assert_close_weights(mini.get_weights(), km.get_weights(), atol=0)  # BN moving stats too
    np.testing.assert_allclose(mini.predict(x), km.predict(x, verbose=0), atol=2e-7)
    assert mini.optimizer.iterations == int(km.optimizer.iterations) == 4
    assert mini.metric_names == ["accuracy"]
    keras_step_equals_minicnn_step(km, mini, x, y)


def test_load_weights_reads_keras_weights_h5_with_the_optimizer_state(tmp_path):
    x, y = data()
    km = keras_convnet()
    km.train_on_batch(x, y)
    path = str(tmp_path / "k.weights.h5")
    km.save_weights(path)
    mini = minicnn_convnet()
    mini.load_weights(path)
    assert_close_weights(mini.get_weights(), km.get_weights(), atol=0)
    assert mini.optimizer.iterations == 1
    keras_step_equals_minicnn_step(km, mini, x, y)


# ---------------------------------------------------------------------------------
# minicnn -> Keras
# ---------------------------------------------------------------------------------
def test_keras_opens_a_minicnn_keras_archive(tmp_path):
    x, y = data()
    mini = minicnn_convnet()
    mini.fit(x, y, batch_size=3, epochs=2, verbose=0)
    path = str(tmp_path / "mini.keras")
    mini.save(path)
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["config.json", "metadata.json", "minicnn.json",
                                        "model.weights.h5"]  # minicnn.json: ignored by Keras
    km = keras.saving.load_model(path)
    np.testing.assert_allclose(km.predict(x, verbose=0), mini.predict(x), atol=2e-7)
    assert_close_weights(km.get_weights(), mini.get_weights(), atol=0)
    assert int(km.optimizer.iterations) == 4
    keras_step_equals_minicnn_step(km, mini, x, y)


def test_keras_load_weights_accepts_minicnn_weights_h5(tmp_path):
    x, y = data()
    mini = minicnn_convnet("sgd")
    mini.fit(x, y, batch_size=2, epochs=1, verbose=0)
    path = str(tmp_path / "mini.weights.h5")
    mini.save_weights(path)
    km = keras_convnet("sgd")
    km.train_on_batch(x[:1], y[:1])  # builds Keras's optimizer so that it loads its state
    km.load_weights(path)
    assert_close_weights(km.get_weights(), mini.get_weights(), atol=0)
    assert int(km.optimizer.iterations) == 3
    keras_step_equals_minicnn_step(km, mini, x, y)


def test_minicnn_reads_back_its_own_keras_files(tmp_path):
    x, y = data()
    mini = minicnn_convnet()
    mini.fit(x, y, batch_size=3, epochs=1, verbose=0)
    mini.save(str(tmp_path / "m.keras"))
    mini.save_weights(str(tmp_path / "m.weights.h5"))
    again = load_model(str(tmp_path / "m.keras"))
    assert_close_weights(again.get_weights(), mini.get_weights(), atol=0)
    other = minicnn_convnet()
    other.load_weights(str(tmp_path / "m.weights.h5"))
    assert_close_weights(other.get_weights(), mini.get_weights(), atol=0)
    for a, b in zip(again.optimizer.get_state()["v"], mini.optimizer.get_state()["v"]):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------
# the layout, checked against Keras
# ---------------------------------------------------------------------------------
def test_keys_count_layers_by_class_whatever_their_names(tmp_path):
    """Twelve Dense layers: keys dense, dense_1, ..., dense_11 in model order, which
    h5py lists alphabetically (dense_10 before dense_2); names play no part."""
    mc.utils.set_random_seed(0)
    mini = Sequential([Dense(3, input_shape=(3,), name="first")] +
                      [Dense(3, name=f"n{i}") for i in range(11)], name="deep")
    path = str(tmp_path / "deep.weights.h5")
    mini.save_weights(path)
    with h5py.File(path) as f:
        listed = list(f["layers"])
    assert listed == sorted(["dense"] + [f"dense_{i}" for i in range(1, 12)])
    keras.utils.set_random_seed(0)
    km = keras.Sequential([keras.Input((3,))] + [kl.Dense(3) for _ in range(12)])
    km.load_weights(path)
    assert_close_weights(km.get_weights(), mini.get_weights(), atol=0)
    x = np.random.default_rng(0).random((4, 3)).astype("float32")
    np.testing.assert_allclose(km.predict(x, verbose=0), mini.predict(x), atol=1e-6)
    keras_path = str(tmp_path / "keras.weights.h5")
    km.save_weights(keras_path)
    with h5py.File(keras_path) as f:
        assert list(f["layers"]) == listed


def test_layer_keys():
    model = minicnn_convnet()
    assert keras_files.layer_keys(model.layers) == [
        "conv2d", "batch_normalization", "max_pooling2d", "conv2d_1", "average_pooling2d",
        "flatten", "dense", "dense_1"]


# ---------------------------------------------------------------------------------
# refusals
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: MinPooling2D(2, name="minpool"),
                                  lambda: Conv2D(2, 3, padding="full", name="fullconv")])
@pytest.mark.parametrize("name", ["m.keras", "m.weights.h5"])
def test_minicnn_only_features_are_refused_naming_the_suffix_that_works(tmp_path, make, name):
    layer = make()
    model = Sequential([Conv2D(2, 3, input_shape=(8, 8, 1)), layer, Flatten(), Dense(2)],
                       name="special")
    save = model.save if name.endswith(".keras") else model.save_weights
    with pytest.raises(ValueError) as info:
        save(str(tmp_path / name))
    text = str(info.value)
    assert "'special'" in text and layer.name in text and "'.npz'" in text
    assert os.listdir(tmp_path) == []
    model.save(str(tmp_path / "m.npz"))  # minicnn's own format keeps it
    assert_close_weights(load_model(str(tmp_path / "m.npz")).get_weights(),
                         model.get_weights(), atol=0)


def test_wrong_keras_suffixes_are_refused(tmp_path):
    model = minicnn_convnet()
    with pytest.raises(ValueError, match="'.keras'"):
        model.save(str(tmp_path / "m.h5"))
    with pytest.raises(ValueError, match="'.weights.h5'"):
        model.save_weights(str(tmp_path / "m.h5"))
    with pytest.raises(ValueError, match="load_weights"):
        load_model(str(tmp_path / "m.weights.h5"))


def test_a_layer_minicnn_lacks_is_refused_naming_file_and_layer(tmp_path):
    km = keras.Sequential([keras.Input((4,)), kl.Dense(3), kl.LayerNormalization(name="ln")])
    path = str(tmp_path / "ln.keras")
    km.save(path)
    with pytest.raises(ValueError) as info:
        load_model(path)
    assert path in str(info.value) and "'ln'" in str(info.value)
    assert "LayerNormalization" in str(info.value)


def test_a_lambda_layer_is_refused_and_never_run(tmp_path):
    km = keras.Sequential([keras.Input((2,)), kl.Lambda(lambda t: t * 2, name="double")])
    path = str(tmp_path / "lambda.keras")
    km.save(path)
    with pytest.raises(ValueError, match="'double'.*Lambda"):
        load_model(path)


def test_a_functional_graph_and_a_shared_layer_load(tmp_path):
    inputs = keras.Input((4,))
    a, b = kl.Dense(2)(inputs), kl.Dense(2)(inputs)
    km = keras.Model(inputs, kl.Add()([a, b]))
    path = str(tmp_path / "graph.keras")
    km.save(path)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(load_model(path).predict(x), km.predict(x, verbose=0),
                               atol=1e-6)
    shared = kl.Dense(4)
    km = keras.Model(inputs, shared(shared(inputs)))
    path = str(tmp_path / "shared.keras")
    km.save(path)
    np.testing.assert_allclose(load_model(path).predict(x), km.predict(x, verbose=0),
                               atol=1e-6)


def test_weights_of_another_architecture_are_refused(tmp_path):
    km = keras.Sequential([keras.Input((8, 8, 1)), kl.Conv2D(5, 3), kl.Flatten(), kl.Dense(3)])
    path = str(tmp_path / "other.weights.h5")
    km.save_weights(path)
    with pytest.raises(ValueError, match=r"other\.weights\.h5"):
        minicnn_convnet().load_weights(path)


@pytest.mark.parametrize("content", [b"", b"\x89HDF\r\n\x1a\n broken", b"PK\x03\x04 broken"])
def test_corrupt_files_are_refused_naming_them(tmp_path, content):
    for name in ("x.keras", "x.h5", "x.weights.h5"):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ValueError, match=name.replace(".", r"\.")):
            if name.endswith(".weights.h5"):
                minicnn_convnet().load_weights(str(path))
            else:
                load_model(str(path))


def test_a_keras_archive_config_is_only_json(tmp_path):
    mini = minicnn_convnet()
    path = str(tmp_path / "m.keras")
    mini.save(path)
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
    assert config["class_name"] == "Sequential"
    assert [e["class_name"] for e in config["config"]["layers"]][:2] == ["InputLayer", "Conv2D"]
    assert config["compile_config"]["loss"] == "sparse_categorical_crossentropy"


def test_dropout_and_seed_go_across(tmp_path):
    mc.utils.set_random_seed(0)
    mini = Sequential([Dense(4, input_shape=(3,)), Dropout(0.25, seed=9), Dense(2)], name="d")
    path = str(tmp_path / "d.keras")
    mini.save(path)
    km = keras.saving.load_model(path)
    assert km.layers[1].rate == 0.25 and km.layers[1].seed == 9
    back = load_model(path)
    assert back.layers[1].rate == 0.25 and back.layers[1].seed == 9


def test_metric_objects_in_keras_s_compile_config_load(tmp_path):
    """keras.io's programs compile with metric objects (``SparseCategoricalAccuracy(
    name="acc")``), which Keras serializes as objects in the compile config."""
    km = keras.Sequential([keras.Input((4,)), kl.Dense(3, activation="softmax")])
    km.compile("adam", keras.losses.SparseCategoricalCrossentropy(),
               metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc"),
                        keras.metrics.SparseTopKCategoricalAccuracy(k=2)])
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    y = np.arange(6) % 3
    km.train_on_batch(x, y)
    km.save(tmp_path / "m.keras")
    ours = load_model(str(tmp_path / "m.keras"))
    assert ours.metric_names == ["acc", "sparse_top_k_categorical_accuracy"]
    np.testing.assert_allclose(ours.evaluate(x, y), km.evaluate(x, y, verbose=0), rtol=1e-6)
