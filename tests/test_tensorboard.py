"""minicnn.callbacks.TensorBoard: the event files it writes, read back with TensorBoard's
own reader (``EventAccumulator``), against the History, the weights, the gradients and
live Keras 3.

Keras's TensorBoard callback writes through ``tensorflow.summary``; TensorFlow is not
installed here (it is far larger than everything else the tests need), so the live
comparison runs Keras's own callback with a recording stand-in for ``tf.summary``
(``tf_summary_standin.py``) and compares what it would write (directory, kind, tag, step and value) with what
minicnn wrote. Needs ``tensorboardX`` (writing) and ``tensorboard`` (reading):
``pip install -e .[test]`` installs both; without them these tests skip, saying so.
"""
import json
import os
import subprocess
import sys
import types
import warnings

import numpy as np
import pytest

import minicnn as mc
from minicnn import split_step
from minicnn.callbacks import LambdaCallback, LearningRateScheduler
from minicnn.callbacks.tensorboard import weight_paths
from minicnn.layers import BatchNormalization, Conv2D, Dense, Flatten
from tf_summary_standin import record_keras_summaries


@pytest.fixture
def ea():
    """TensorBoard's event reader (and tensorboardX for the callback to write with)."""
    pytest.importorskip("tensorboardX", reason="the TensorBoard callback writes with "
                        "tensorboardX: pip install -e .[test] (or .[tensorboard])")
    return pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                               reason="reading the event files back needs tensorboard: "
                               "pip install -e .[test]")


def read(ea, log_dir, run):
    acc = ea.EventAccumulator(os.path.join(str(log_dir), run), size_guidance={
        ea.SCALARS: 0, ea.HISTOGRAMS: 0, ea.IMAGES: 0, ea.TENSORS: 0})
    return acc.Reload()


def scalars(acc, tag):
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 6, 6, 1)).astype("float32"),
            rng.integers(0, 3, n))


def small_model(optimizer="adam", batch_norm=False):
    layers = [Conv2D(2, 3, activation="relu", input_shape=(6, 6, 1), name="conv")]
    layers += [BatchNormalization(name="bn")] if batch_norm else []
    layers += [Flatten(name="flat"), Dense(3, activation="softmax", name="dense")]
    model = mc.Sequential(layers, name="sequential")
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


# ---------------------------------------------------------------------------------
# scalars
# ---------------------------------------------------------------------------------
def test_epoch_scalars_are_the_history_in_train_and_validation(ea, tmp_path):
    x, y = data()
    model = small_model()
    tb = mc.callbacks.TensorBoard(tmp_path)
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0,
                        validation_data=(x[:10], y[:10]), callbacks=[tb])
    assert sorted(os.listdir(tmp_path)) == ["train", "validation"]
    for run in ("train", "validation"):
        assert [f for f in os.listdir(tmp_path / run) if "tfevents" in f]
    train, val = read(ea, tmp_path, "train"), read(ea, tmp_path, "validation")
    assert set(train.Tags()["scalars"]) == {"epoch_loss", "epoch_accuracy",
                                            "epoch_learning_rate"}
    assert set(val.Tags()["scalars"]) == {"epoch_loss", "epoch_accuracy",
                                          "evaluation_loss_vs_iterations",
                                          "evaluation_accuracy_vs_iterations"}
    for name in ("loss", "accuracy"):
        got = scalars(train, f"epoch_{name}")
        assert [s for s, _ in got] == [0, 1, 2]
        np.testing.assert_allclose([v for _, v in got], history.history[name], rtol=1e-6)
        got = scalars(val, f"epoch_{name}")
        assert [s for s, _ in got] == [0, 1, 2]
        np.testing.assert_allclose([v for _, v in got], history.history[f"val_{name}"],
                                   rtol=1e-6)
        # after each validation, at the optimizer's update count (3 batches an epoch)
        got = scalars(val, f"evaluation_{name}_vs_iterations")
        assert [s for s, _ in got] == [3, 6, 9]
        np.testing.assert_allclose([v for _, v in got], history.history[f"val_{name}"],
                                   rtol=1e-6)
    np.testing.assert_allclose([v for _, v in scalars(train, "epoch_learning_rate")],
                               [np.float32(0.001)] * 3)


@pytest.mark.parametrize("update_freq, every", [("batch", 1), (2, 2)])
def test_batch_scalars_every_n_batches_counted_across_epochs(ea, tmp_path, update_freq,
                                                             every):
    x, y = data()
    seen = []  # the running logs every callback gets, and the step TensorBoard counts
    record = LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(dict(logs)))
    tb = mc.callbacks.TensorBoard(tmp_path, update_freq=update_freq)
    small_model().fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[tb, record])
    train = read(ea, tmp_path, "train")
    steps = [n for n in range(1, len(seen) + 1) if n % every == 0]
    for name in ("loss", "accuracy"):
        got = scalars(train, f"batch_{name}")
        assert [s for s, _ in got] == steps
        np.testing.assert_allclose([v for _, v in got], [seen[s - 1][name] for s in steps],
                                   rtol=1e-6)
    assert not os.path.exists(tmp_path / "validation")


def test_no_batch_scalars_by_default_and_steps_per_second_when_asked(ea, tmp_path):
    x, y = data()
    small_model().fit(x, y, batch_size=16, epochs=2, verbose=0,
                      callbacks=[mc.callbacks.TensorBoard(tmp_path / "a")])
    assert not [t for t in read(ea, tmp_path / "a", "train").Tags()["scalars"]
                if t.startswith("batch_") or "steps_per_second" in t]
    small_model().fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[
        mc.callbacks.TensorBoard(tmp_path / "b", write_steps_per_second=True, update_freq=1)])
    train = read(ea, tmp_path / "b", "train")
    assert [s for s, _ in scalars(train, "epoch_steps_per_second")] == [0, 1]
    assert [s for s, _ in scalars(train, "batch_steps_per_second")] == list(range(1, 7))
    assert all(v > 0 for _, v in scalars(train, "epoch_steps_per_second")
               + scalars(train, "batch_steps_per_second"))


def test_learning_rate_of_a_schedule_and_of_a_scheduler_callback(ea, tmp_path):
    x, y = data()
    schedule = mc.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    model = small_model(mc.optimizers.SGD(learning_rate=schedule))
    model.fit(x, y, batch_size=16, epochs=3, verbose=0,
              callbacks=[mc.callbacks.TensorBoard(tmp_path / "schedule")])
    got = scalars(read(ea, tmp_path / "schedule", "train"), "epoch_learning_rate")
    # the rate of the next step, at the update count at the epoch's end (3 a epoch)
    np.testing.assert_allclose([v for _, v in got],
                               [np.float32(0.1 * 0.5 ** (3 * (e + 1))) for e in range(3)],
                               rtol=1e-6)
    model = small_model(mc.optimizers.SGD(learning_rate=0.1))
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[
        LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1)),
        mc.callbacks.TensorBoard(tmp_path / "callback")])
    got = scalars(read(ea, tmp_path / "callback", "train"), "epoch_learning_rate")
    np.testing.assert_allclose([v for _, v in got], np.float32([0.1, 0.05, 0.1 / 3]),
                               rtol=1e-6)


# ---------------------------------------------------------------------------------
# histograms, images, the model
# ---------------------------------------------------------------------------------
def test_weight_histograms_every_histogram_freq_epochs(ea, tmp_path):
    x, y = data()
    model = small_model(batch_norm=True)
    weights = {}
    keep = LambdaCallback(on_epoch_end=lambda epoch, logs: weights.update(
        {epoch: model.get_weights()}))
    model.fit(x, y, batch_size=16, epochs=3, verbose=0,
              callbacks=[mc.callbacks.TensorBoard(tmp_path, histogram_freq=2), keep])
    train = read(ea, tmp_path, "train")
    names = ["conv/kernel", "conv/bias", "bn/gamma", "bn/beta", "bn/moving_mean",
             "bn/moving_variance", "dense/kernel", "dense/bias"]
    trainable = [n for n in names if "moving" not in n]
    assert set(train.Tags()["histograms"]) == (
        {f"sequential/{n}/histogram" for n in names}
        | {f"sequential/{n}/gradient" for n in trainable})
    for name, index in zip(names, range(len(names))):
        events = train.Histograms(f"sequential/{name}/histogram")
        assert [e.step for e in events] == [0, 2]
        for event in events:
            h, w = event.histogram_value, weights[event.step][index]
            assert h.num == w.size
            assert h.min == pytest.approx(w.min(), abs=1e-7)
            assert h.max == pytest.approx(w.max(), abs=1e-7)
            assert h.sum == pytest.approx(w.astype(np.float64).sum(), rel=1e-5, abs=1e-5)
            assert sum(h.bucket) == w.size
    assert "apply" not in vars(model.optimizer)  # the gradient watch is gone after fit


def reference_gradients(model, x, y):
    """The gradient of the loss on (x, y) without changing the model (learning rate 0):
    the mean of the per-half gradients of two halves under 32 (each one plain step,
    never split), i.e. the whole batch's gradient of a mean loss."""
    halves = (slice(0, len(x) // 2), slice(len(x) // 2, len(x)))
    total = None
    for part in halves:
        model.train_on_batch(x[part], y[part])
        grads = [g for layer in model.layers for g in layer.get_gradients()]
        grads = [g * (len(x[part]) / len(x)) for g in grads]
        total = grads if total is None else [a + b for a, b in zip(total, grads)]
    return total


@pytest.mark.parametrize("batch_size", [20, 64])
def test_gradient_histograms_are_the_last_batchs(ea, tmp_path, batch_size):
    """20: one plain step a batch; 64: the step that runs half the batch per thread (where
    numba's kernels allow it), whose gradients no layer keeps."""
    x, y = data(n=2 * batch_size, seed=1)
    model = small_model(mc.optimizers.SGD(learning_rate=0.0))  # the weights stay put
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=False,
              callbacks=[mc.callbacks.TensorBoard(tmp_path, histogram_freq=1)])
    last = slice(batch_size, None)
    if batch_size == 64 and not split_step.suits(model, x[last]):
        pytest.skip("this backend runs no split step")
    expected = reference_gradients(model, x[last], y[last])
    train = read(ea, tmp_path, "train")
    for name, grad in zip(["conv/kernel", "conv/bias", "dense/kernel", "dense/bias"],
                          expected):
        (event,) = train.Histograms(f"sequential/{name}/gradient")
        h = event.histogram_value
        assert event.step == 0 and h.num == grad.size
        assert h.min == pytest.approx(grad.min(), rel=1e-4, abs=1e-7)
        assert h.max == pytest.approx(grad.max(), rel=1e-4, abs=1e-7)
        assert h.sum == pytest.approx(grad.astype(np.float64).sum(), rel=1e-4, abs=1e-6)


def test_weight_images_as_keras_draws_them(ea, tmp_path):
    x, y = data()
    model = small_model()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[
        mc.callbacks.TensorBoard(tmp_path, histogram_freq=1, write_images=True)])
    train = read(ea, tmp_path, "train")
    assert set(train.Tags()["images"]) == {f"sequential/{n}/image" for n in
                                           ["conv/kernel", "conv/bias", "dense/kernel",
                                            "dense/bias"]}
    # a Dense kernel (32, 3): one image, the longer side across; a bias: one column
    (kernel,) = train.Images("sequential/dense/kernel/image")
    assert (kernel.height, kernel.width) == (3, 32)
    (bias,) = train.Images("sequential/dense/bias/image")
    assert (bias.height, bias.width) == (3, 1)


def test_write_graph_writes_the_models_keras_json(ea, tmp_path):
    from minicnn.keras_files import keras_config
    from tensorboard.plugins.graph import keras_util
    x, y = data()
    model = small_model()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[mc.callbacks.TensorBoard(tmp_path)])
    train = read(ea, tmp_path, "train")
    assert train.PluginTagToContent("graph_keras_model") == {"keras": b"1"}
    (event,) = train.Tensors("keras")
    config = json.loads(event.tensor_proto.string_val[0])
    assert event.step == 0 and config == json.loads(json.dumps(keras_config(model)))
    graph = keras_util.keras_model_to_graph_def(config)  # what the Graphs tab draws
    assert [n.name for n in graph.node][1:] == [f"sequential/{n}" for n in
                                                ("conv", "flat", "dense")]
    model.fit(x, y, epochs=1, verbose=0,
              callbacks=[mc.callbacks.TensorBoard(tmp_path / "no", write_graph=False)])
    assert read(ea, tmp_path / "no", "train").Tags()["tensors"] == []


def test_weight_paths_are_keras_weight_paths(keras):
    """Keras 3's ``weight.path``: Sequential models put their names in front; a
    functional model does not."""
    def build(lib, seq_class, model_class, input_fn):
        inp = input_fn((4,))
        inner = seq_class([lib.layers.Dense(2, name="d2")], name="inner")
        functional = model_class(inp, inner(lib.layers.Dense(3, name="d1")(inp)))
        inner = seq_class([lib.layers.Dense(2, name="d4")], name="inner")
        nested = seq_class([lib.layers.Dense(3, name="d3"), inner], name="outer")
        return functional, nested

    k_functional, k_nested = build(keras, keras.Sequential, keras.Model, keras.Input)
    k_nested.build((None, 4))
    m_functional, m_nested = build(mc, mc.Sequential, mc.Model, mc.Input)
    m_nested.build((4,))
    for k_model, m_model in ((k_functional, m_functional), (k_nested, m_nested)):
        assert [p for p, _, _ in weight_paths(m_model)] == [w.path for w in k_model.weights]


# ---------------------------------------------------------------------------------
# against Keras 3's own callback, writing through a recording tf.summary
# ---------------------------------------------------------------------------------
def test_what_keras_writes_directories_tags_steps_values(ea, keras, tmp_path):
    """Two batches an epoch, updates written every two: Keras (on TensorFlow) drops
    every summary of an epoch's end, epoch_loss included, when the batches counted so
    far are not a multiple of update_freq (its record_if condition is still set;
    tensorflow/tensorflow#49109), which minicnn does not copy."""
    x, y = data(n=32)
    options = dict(histogram_freq=1, update_freq=2, write_images=True,
                   write_steps_per_second=True)
    fit = dict(batch_size=16, epochs=2, verbose=0, shuffle=False, validation_data=(x, y))
    k_model = keras.Sequential([
        keras.Input((6, 6, 1), name="input_layer"),
        keras.layers.Conv2D(2, 3, activation="relu", name="conv"),
        keras.layers.Flatten(name="flat"), keras.layers.Dense(3, activation="softmax",
                                                             name="dense")],
        name="sequential")
    k_model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy",
                    metrics=["accuracy"])
    model = small_model(mc.optimizers.SGD(0.1))
    model.set_weights(k_model.get_weights())
    with pytest.MonkeyPatch.context() as monkeypatch:
        recorder = record_keras_summaries(keras, monkeypatch)
        k_model.fit(x, y, callbacks=[keras.callbacks.TensorBoard(tmp_path / "k", **options)],
                    **fit)
    model.fit(x, y, callbacks=[mc.callbacks.TensorBoard(tmp_path / "m", **options)], **fit)
    expected = {(run, kind, tag, step): value for run, kind, tag, value, step
                in recorder.records}
    written = {}
    for run in ("train", "validation"):
        acc = read(ea, tmp_path / "m", run)
        for kind, events in (("scalar", acc.Scalars), ("histogram", acc.Histograms),
                             ("image", acc.Images), ("tensor", acc.Tensors)):
            for tag in acc.Tags()[{"scalar": "scalars"}.get(kind, kind + "s")]:
                for e in events(tag):
                    written[run, kind, tag, e.step] = e
    # 2 epochs of 4 train, 2 validation, 2 evaluation scalars, 4 histograms, 4 images;
    # batches 2 and 4 of 3 scalars; the model
    assert len(expected) == 2 * (4 + 2 + 2 + 4 + 4) + 2 * 3 + 1
    gradients = {key for key in written if key[2].endswith("/gradient")}
    assert set(written) - gradients == set(expected)  # minicnn's one addition aside
    for (run, kind, tag, step), value in expected.items():
        got = written[run, kind, tag, step]
        if kind == "scalar" and "steps_per_second" not in tag:
            assert got.value == pytest.approx(value, rel=1e-4), (run, tag, step)
        elif kind == "histogram":
            h = got.histogram_value
            assert (h.num, h.min, h.max) == pytest.approx(
                (value.size, value.min(), value.max()), rel=1e-4, abs=1e-6), tag
        elif kind == "tensor":  # the model's JSON: the same layers
            mine = json.loads(got.tensor_proto.string_val[0])
            assert mine["class_name"] == value["class_name"]
            assert [(layer["class_name"], layer["config"]["name"]) for layer in
                    mine["config"]["layers"]] == [
                (layer["class_name"], layer["config"]["name"]) for layer in
                value["config"]["layers"]]


# ---------------------------------------------------------------------------------
# Keras programs, options minicnn does not have, the optional package, MPI
# ---------------------------------------------------------------------------------
def test_a_keras_program_runs_unchanged(ea, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import minicnn as keras
    x, y = data()
    model = keras.Sequential([keras.layers.Conv2D(4, 3, activation="relu",
                                                  input_shape=(6, 6, 1)),
                              keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    tensorboard_callback = keras.callbacks.TensorBoard(log_dir="./logs", histogram_freq=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the defaults (write_graph=True) warn of nothing
        model.fit(x, y, epochs=2, validation_split=0.25, verbose=0,
                  callbacks=[tensorboard_callback])
        model.evaluate(x, y, verbose=0, callbacks=[tensorboard_callback])
    assert sorted(os.listdir("logs")) == ["train", "validation"]
    assert "epoch_loss" in read(ea, "logs", "validation").Tags()["scalars"]


def test_options_minicnn_lacks_warn_and_training_goes_on(ea, tmp_path):
    with pytest.warns(UserWarning, match="profile_batch=5 is ignored"):
        tb = mc.callbacks.TensorBoard(tmp_path, profile_batch=5)
    with pytest.warns(UserWarning, match="embeddings_freq=1 is ignored.*Embedding"):
        tb2 = mc.callbacks.TensorBoard(tmp_path / "e", embeddings_freq=1,
                                       embeddings_metadata="meta.tsv")
    x, y = data()
    small_model().fit(x, y, epochs=1, verbose=0, callbacks=[tb, tb2])
    assert "epoch_loss" in read(ea, tmp_path, "train").Tags()["scalars"]
    # Keras's own checks of the arguments
    for bad in (-1, (5, 2), "a,b", [1, 2, 3]):
        with pytest.raises(ValueError, match="profile_batch must be"):
            mc.callbacks.TensorBoard(tmp_path, profile_batch=bad)
    for bad in (0, "epochs", 1.5):
        with pytest.raises(ValueError, match="update_freq"):
            mc.callbacks.TensorBoard(tmp_path, update_freq=bad)


def test_without_tensorboardx_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails
    with pytest.raises(ImportError, match=r"pip install minicnn\[tensorboard\]"):
        mc.callbacks.TensorBoard()


def test_importing_minicnn_does_not_import_tensorboardx():
    code = ("import sys, minicnn, minicnn.callbacks; "
            "assert 'tensorboardX' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_only_rank_0_writes(ea, tmp_path):
    """Under MPI only rank 0 runs fit's callbacks; evaluate runs them on every rank, so
    the callback checks the rank itself."""
    x, y = data()
    model = small_model()
    model.optimizer._communicator = types.SimpleNamespace(rank=1, size=1)
    tb = mc.callbacks.TensorBoard(tmp_path)
    tb.set_model(model)
    tb.on_test_begin()
    tb.on_test_end({"loss": 1.0})
    tb.on_epoch_end(0, {"loss": 1.0, "val_loss": 2.0})
    tb.on_train_end()
    assert not os.path.exists(tmp_path / "train") and not os.path.exists(
        tmp_path / "validation")
