"""Training models with several inputs and outputs, against Keras 3 on the same graph
and weights: per-output losses, loss weights and metrics, the logs' names and values,
the weights after SGD and Adam steps, dict-keyed data, predict's list of arrays."""
import os

import numpy as np
import pytest

import minicnn as mc

os.environ.setdefault("KERAS_BACKEND", "jax")


def two_heads(K, L, tail=False):
    """Two inputs; a classifier head (softmax) and a regression head. ``tail``: the
    softmax output also feeds the regression head (so its gradient is the sum of
    its own loss's and what comes back through the regression head)."""
    image = K.Input((6, 6, 1), name="image")
    meta = K.Input((3,), name="meta")
    h = L.Conv2D(2, 3, activation="relu", name="conv")(image)
    h = L.Flatten(name="flat")(h)
    h = L.Concatenate(name="cat")([h, meta])
    h = L.Dense(5, activation="tanh", name="hidden")(h)
    cls = L.Dense(3, activation="softmax", name="cls")(h)
    reg_in = L.Concatenate(name="cat2")([h, cls]) if tail else h
    reg = L.Dense(2, name="reg")(reg_in)
    return K.Model([image, meta], [cls, reg], name="two_heads")


def data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    x = [rng.standard_normal((n, 6, 6, 1)).astype(np.float32),
         rng.standard_normal((n, 3)).astype(np.float32)]
    y = [rng.integers(0, 3, n), rng.standard_normal((n, 2)).astype(np.float32)]
    return x, y


def pair(keras, tail=False):
    keras.utils.set_random_seed(7)  # the same weights whatever ran before
    ours, theirs = two_heads(mc, mc.layers, tail), two_heads(keras, keras.layers, tail)
    ours.set_weights([np.asarray(w) for w in theirs.get_weights()])
    return ours, theirs


COMPILE = dict(loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.5],
               metrics=[["accuracy"], ["mae"]])


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("tail", [False, True])
def test_a_training_step_equals_keras(keras, optimizer, tail):
    ours, theirs = pair(keras, tail)
    x, y = data()
    opt = {"sgd": lambda m: m.optimizers.SGD(0.1, momentum=0.9),
           "adam": lambda m: m.optimizers.Adam(0.01)}[optimizer]
    ours.compile(opt(mc), **COMPILE)
    theirs.compile(opt(keras), **COMPILE)
    for _ in range(2):
        mine = ours.train_on_batch(x, y)
        keras_logs = theirs.train_on_batch(x, y)
        np.testing.assert_allclose(mine, keras_logs, rtol=1e-5, atol=1e-6)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-5)


def test_logs_evaluate_and_predict_as_keras(keras):
    ours, theirs = pair(keras)
    x, y = data(20, seed=1)
    for model in (ours, theirs):
        model.compile("sgd", **COMPILE)
    names = ["loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_mae"]
    mine = ours.evaluate(x, y, batch_size=8, return_dict=True)
    assert sorted(mine) == sorted(names)
    keras_logs = theirs.evaluate(x, y, batch_size=8, return_dict=True, verbose=0)
    for name in names:
        assert mine[name] == pytest.approx(keras_logs[name], rel=1e-5), name
    # the list's order is Keras's: total, each output's loss, each output's metrics
    np.testing.assert_allclose(ours.evaluate(x, y, batch_size=8),
                               [keras_logs[n] for n in names], rtol=1e-5)
    assert mine["loss"] == pytest.approx(mine["cls_loss"] + 0.5 * mine["reg_loss"], rel=1e-6)
    predicted = ours.predict(x, batch_size=8)
    assert isinstance(predicted, list) and len(predicted) == 2
    for a, b in zip(predicted, theirs.predict(x, verbose=0)):
        np.testing.assert_allclose(a, b, atol=2e-6)


def test_fit_with_dicts_and_validation(keras):
    ours, theirs = pair(keras)
    x, y = data(24, seed=2)
    for model in (ours, theirs):
        model.compile(keras.optimizers.SGD(0.05) if model is theirs else mc.optimizers.SGD(0.05),
                      loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                      metrics={"cls": "accuracy"})
    args = dict(batch_size=8, epochs=2, shuffle=False, verbose=0, validation_split=0.25)
    mine = ours.fit({"image": x[0], "meta": x[1]}, {"cls": y[0], "reg": y[1]}, **args).history
    kh = theirs.fit({"image": x[0], "meta": x[1]}, {"cls": y[0], "reg": y[1]}, **args).history
    assert sorted(mine) == sorted(kh)
    for name in kh:
        np.testing.assert_allclose(mine[name], kh[name], rtol=1e-5, err_msg=name)


def test_an_output_without_a_loss_is_not_trained_on(keras):
    ours, theirs = pair(keras)
    x, y = data()
    for model, keras_or_mc in ((ours, mc), (theirs, keras)):
        model.compile(keras_or_mc.optimizers.Adam(0.01),
                      loss={"cls": "sparse_categorical_crossentropy", "reg": None},
                      metrics={"cls": "accuracy"})
    before = ours.get_layer("reg").get_weights()
    # Keras logs no cls_loss beside the total when one output has a loss
    mine = ours.train_on_batch(x, [y[0], None])
    assert ours.metric_names == ["cls_accuracy"]
    np.testing.assert_allclose(mine, theirs.train_on_batch(x, y), rtol=1e-5)
    for a, b in zip(before, ours.get_layer("reg").get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-5)


def test_bad_structures_are_named():
    model = two_heads(mc, mc.layers)
    with pytest.raises(ValueError, match=r"loss to be one per output \(2: \['cls', 'reg'\]\)"):
        model.compile("sgd", loss=["mse"])
    with pytest.raises(ValueError, match=r"\['nope'\], which are not outputs"):
        model.compile("sgd", loss={"nope": "mse"})
    with pytest.raises(ValueError, match=r"keyed by every output.*Missing: \['reg'\]"):
        model.compile("sgd", loss={"cls": "mse"})
    with pytest.raises(ValueError, match="metrics to be a list of 2"):
        model.compile("sgd", loss="mse", metrics="mae")
    model.compile("sgd", loss=["sparse_categorical_crossentropy", "mse"])
    x, y = data()
    with pytest.raises(ValueError, match=r"expects x as a list of 2 arrays \(for \['image', "
                                         r"'meta'\]\)"):
        model.train_on_batch(x[0], y)
    with pytest.raises(ValueError, match=r"expects y keyed by \['cls', 'reg'\]"):
        model.fit(x, {"cls": y[0]}, verbose=0)
    with pytest.raises(ValueError, match=r"same number of samples. Received: \[8, 8\] inputs "
                                         r"and \[8, 7\] targets"):
        model.evaluate(x, [y[0], y[1][:7]])
    with pytest.raises(ValueError, match=r"for output 'reg'"):
        model.evaluate(x, [y[0], y[1][:, :1]])
    with pytest.raises(ValueError, match=r"x\['meta'\] holding NaN"):
        model.fit([x[0], np.full_like(x[1], np.nan)], y, verbose=0)


@pytest.mark.parametrize("suffix", [".npz", ".keras"])
def test_a_compiled_two_output_model_saves_and_resumes(tmp_path, suffix):
    x, y = data(16, seed=3)
    mc.utils.set_random_seed(4)
    model = two_heads(mc, mc.layers, tail=True)
    model.compile(mc.optimizers.Adam(0.01), **COMPILE)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / f"m{suffix}")
    loaded = mc.models.load_model(tmp_path / f"m{suffix}")
    assert loaded.metric_names == model.metric_names == ["cls_loss", "reg_loss", "cls_accuracy",
                                                         "reg_mae"]
    assert [o.weight for o in loaded._objectives] == [1.0, 0.5]
    np.testing.assert_array_equal(loaded.train_on_batch(x, y), model.train_on_batch(x, y))
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_keras_opens_a_two_output_keras_file_and_steps_alike(keras, tmp_path):
    x, y = data(8, seed=5)
    model = two_heads(mc, mc.layers)
    model.compile(mc.optimizers.SGD(0.1, momentum=0.9), **COMPILE)
    model.train_on_batch(x, y)
    model.save(tmp_path / "m.keras")
    theirs = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(theirs.train_on_batch(x, y), model.train_on_batch(x, y),
                               rtol=1e-5)
    for a, b in zip(model.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-5)


def test_minicnn_opens_keras_s_two_output_file_and_steps_alike(keras, tmp_path):
    x, y = data(8, seed=6)
    theirs = two_heads(keras, keras.layers, tail=True)
    theirs.compile(keras.optimizers.Adam(0.01),
                   loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                   loss_weights={"cls": 0.7, "reg": 0.3}, metrics={"cls": ["accuracy"]})
    theirs.train_on_batch(x, y)
    theirs.save(tmp_path / "k.keras")
    ours = mc.models.load_model(tmp_path / "k.keras")
    assert ours.metric_names == ["cls_loss", "reg_loss", "cls_accuracy"]
    np.testing.assert_allclose(ours.train_on_batch(x, y), theirs.train_on_batch(x, y),
                               rtol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-5)
