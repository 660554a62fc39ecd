"""Sequential models, optimizers, fit, callbacks, saving, summaries and metrics.

Expected values come from /work/shared/reference/keras-semantics.md ("doc §n", each
verified against Keras 3) or are computed in the test from formulas written out
here (softmax, cross-entropy, the Keras update rules). Nothing expected is computed
by the minicnn function under test; where two minicnn paths are compared (fit
against train_on_batch, a resumed run against an uninterrupted one) the point of
the test is that they agree bitwise.
"""
import csv
import importlib
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import minicnn as mc
from minicnn import callbacks, metrics, optimizers
from minicnn.layers import BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D
from minicnn.models import Sequential, load_model
from minicnn.utils import set_random_seed

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


# ============================================================================
# helpers and fixtures
# ============================================================================
@pytest.fixture
def examples(monkeypatch):
    """Import a module of examples/ by name: ``examples("lenet5").lenet5()``."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return importlib.import_module


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def one_hot(labels, classes=3):
    return np.eye(classes)[np.asarray(labels).reshape(-1)]


def cce(y, p):
    """Keras's categorical cross-entropy, mean over the batch (doc §6)."""
    p = p / p.sum(axis=-1, keepdims=True)
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(np.mean(-(y * np.log(p)).sum(axis=-1)))


def make_data(n=10, features=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    labels = rng.integers(0, classes, size=n)
    return x, labels


def make_images(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 6, 6, 2), dtype=np.float32), rng.integers(0, 3, size=n)


def mlp(seed=0):
    set_random_seed(seed)
    return Sequential([Dense(5, activation="tanh", input_shape=(4,)),
                       Dense(3, activation="softmax")])


def small_cnn(seed=0):
    """Conv + BatchNormalization + pooling + Dense: every kind of weight, no dropout."""
    set_random_seed(seed)
    return Sequential([Conv2D(3, 3, activation="relu", input_shape=(6, 6, 2)),
                       BatchNormalization(),
                       MaxPooling2D(2),
                       Flatten(),
                       Dense(3, activation="softmax")])


def twin(factory, model):
    """A second model from ``factory`` holding ``model``'s weights."""
    other = factory()
    other.set_weights(model.get_weights())
    return other


def compiled(model, optimizer=None, loss="sparse_categorical_crossentropy",
             metrics=("accuracy",)):
    model.compile(optimizer=optimizer if optimizer is not None else optimizers.SGD(0.1),
                  loss=loss, metrics=list(metrics))
    return model


def assert_same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for i, (u, v) in enumerate(zip(wa, wb)):
        assert u.shape == v.shape and u.dtype == v.dtype, i
        assert np.array_equal(u, v), f"weight {i} differs"


def keras_size(n_params, itemsize=4):
    """Keras's readable size: bytes in B/KB/MB with 1024 steps, two decimals (doc §8)."""
    size = float(n_params * itemsize)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} TB"


def count_line(n):
    return f"{n:,} ({keras_size(n)})"


def table_rows(text):
    """The (layer, output shape, params) cells of a summary table; a cell wrapped
    over several lines is joined with spaces."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("┡")) + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("└"))
    rows, block = [], []
    for line in lines[start:end] + ["├"]:
        if line.startswith("├"):
            if block:
                rows.append(tuple(" ".join(part for part in column if part)
                                  for column in zip(*block)))
            block = []
        else:
            block.append([cell.strip() for cell in line.strip("│").split("│")])
    return rows


def summary_text(model):
    printed = []
    model.summary(print_fn=printed.append)
    return "\n".join(printed)


class BatchLogger(callbacks.Callback):
    def __init__(self):
        self.logs = []

    def on_train_batch_end(self, batch, logs=None):
        self.logs.append(dict(logs))


# ============================================================================
# 1. summaries and parameter counts (doc §8, §9)
# ============================================================================
MODEL_A = [("conv2d (Conv2D)", "(None, 26, 26, 32)", "320"),
           ("conv2d_1 (Conv2D)", "(None, 24, 24, 32)", "9,248"),
           ("conv2d_2 (Conv2D)", "(None, 22, 22, 32)", "9,248"),
           ("flatten (Flatten)", "(None, 15488)", "0"),
           ("dense (Dense)", "(None, 128)", "1,982,592"),
           ("dense_1 (Dense)", "(None, 10)", "1,290")]
MODEL_B = [("conv2d (Conv2D)", "(None, 14, 14, 32)", "320"),
           ("conv2d_1 (Conv2D)", "(None, 7, 7, 32)", "9,248"),
           ("conv2d_2 (Conv2D)", "(None, 4, 4, 32)", "9,248"),
           ("flatten (Flatten)", "(None, 512)", "0"),
           ("dense (Dense)", "(None, 128)", "65,664"),
           ("dense_1 (Dense)", "(None, 10)", "1,290")]
MODEL_C = [("conv2d (Conv2D)", "(None, 26, 26, 32)", "320"),
           ("max_pooling2d (MaxPooling2D)", "(None, 13, 13, 32)", "0"),
           ("conv2d_1 (Conv2D)", "(None, 11, 11, 32)", "9,248"),
           ("max_pooling2d_1 (MaxPooling2D)", "(None, 5, 5, 32)", "0"),
           ("flatten (Flatten)", "(None, 800)", "0"),
           ("dense (Dense)", "(None, 128)", "102,528"),
           ("dense_1 (Dense)", "(None, 10)", "1,290")]
MODEL_D = [("conv2d (Conv2D)", "(None, 28, 28, 6)", "456"),
           ("average_pooling2d (AveragePooling2D)", "(None, 14, 14, 6)", "0"),
           ("conv2d_1 (Conv2D)", "(None, 10, 10, 16)", "2,416"),
           ("average_pooling2d_1 (AveragePooling2D)", "(None, 5, 5, 16)", "0"),
           ("flatten (Flatten)", "(None, 400)", "0"),
           ("dense (Dense)", "(None, 120)", "48,120"),
           ("dense_1 (Dense)", "(None, 84)", "10,164"),
           ("dense_2 (Dense)", "(None, 10)", "850")]
MODEL_E = [("conv2d (Conv2D)", "(None, 54, 54, 96)", "34,944"),
           ("max_pooling2d (MaxPooling2D)", "(None, 26, 26, 96)", "0"),
           ("batch_normalization (BatchNormalization)", "(None, 26, 26, 96)", "384"),
           ("conv2d_1 (Conv2D)", "(None, 26, 26, 256)", "614,656"),
           ("max_pooling2d_1 (MaxPooling2D)", "(None, 12, 12, 256)", "0"),
           ("batch_normalization_1 (BatchNormalization)", "(None, 12, 12, 256)", "1,024"),
           ("conv2d_2 (Conv2D)", "(None, 10, 10, 384)", "885,120"),
           ("batch_normalization_2 (BatchNormalization)", "(None, 10, 10, 384)", "1,536"),
           ("conv2d_3 (Conv2D)", "(None, 8, 8, 384)", "1,327,488"),
           ("batch_normalization_3 (BatchNormalization)", "(None, 8, 8, 384)", "1,536"),
           ("conv2d_4 (Conv2D)", "(None, 6, 6, 256)", "884,992"),
           ("max_pooling2d_2 (MaxPooling2D)", "(None, 2, 2, 256)", "0"),
           ("batch_normalization_4 (BatchNormalization)", "(None, 2, 2, 256)", "1,024"),
           ("flatten (Flatten)", "(None, 1024)", "0"),
           ("dense (Dense)", "(None, 4096)", "4,198,400"),
           ("dropout (Dropout)", "(None, 4096)", "0"),
           ("batch_normalization_5 (BatchNormalization)", "(None, 4096)", "16,384"),
           ("dense_1 (Dense)", "(None, 4096)", "16,781,312"),
           ("dropout_1 (Dropout)", "(None, 4096)", "0"),
           ("batch_normalization_6 (BatchNormalization)", "(None, 4096)", "16,384"),
           ("dense_2 (Dense)", "(None, 17)", "69,649")]

# (module, function, rows, total, trainable, non-trainable)
SUMMARY_CASES = {
    "A-padding": ("keras_tutorials", "padding_demo", MODEL_A, 2_002_698, 2_002_698, 0),
    "B-strides": ("keras_tutorials", "strides_demo", MODEL_B, 85_770, 85_770, 0),
    "C-pooling": ("keras_tutorials", "pooling_demo", MODEL_C, 113_386, 113_386, 0),
    "D-lenet-cifar": ("keras_tutorials", "lenet_cifar", MODEL_D, 62_006, 62_006, 0),
    "E-alexnet": ("alexnet", "alexnet", MODEL_E, 24_834_833, 24_815_697, 19_136),
}

# Model A at terminal width 80: a 76-character table (doc §8; the rows the doc elides
# follow its pattern).
SUMMARY_A_80 = """\
Model: "sequential"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ conv2d (Conv2D)                 │ (None, 26, 26, 32)     │           320 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_1 (Conv2D)               │ (None, 24, 24, 32)     │         9,248 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_2 (Conv2D)               │ (None, 22, 22, 32)     │         9,248 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ flatten (Flatten)               │ (None, 15488)          │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense (Dense)                   │ (None, 128)            │     1,982,592 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense_1 (Dense)                 │ (None, 10)             │         1,290 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 2,002,698 (7.64 MB)
 Trainable params: 2,002,698 (7.64 MB)
 Non-trainable params: 0 (0.00 B)"""


def test_keras_size_helper_matches_the_doc_examples():
    assert count_line(2_002_698) == "2,002,698 (7.64 MB)"
    assert count_line(62_006) == "62,006 (242.21 KB)"
    assert count_line(124_014) == "124,014 (484.43 KB)"
    assert count_line(0) == "0 (0.00 B)"


@pytest.mark.parametrize("case", SUMMARY_CASES)
def test_summary_rows_and_totals_match_keras(case, examples):
    module, function, rows, total, trainable, non_trainable = SUMMARY_CASES[case]
    model = getattr(examples(module), function)()
    assert model.count_params() == total
    text = summary_text(model)
    assert text.splitlines()[0] == 'Model: "sequential"'
    assert table_rows(text) == rows
    tail = text.splitlines()[-3:]
    assert tail == [f" Total params: {count_line(total)}",
                    f" Trainable params: {count_line(trainable)}",
                    f" Non-trainable params: {count_line(non_trainable)}"]


def test_alexnet_totals_literal(examples):
    text = summary_text(examples("alexnet").alexnet())
    assert " Total params: 24,834,833 (94.74 MB)" in text
    assert " Trainable params: 24,815,697 (94.66 MB)" in text
    assert " Non-trainable params: 19,136 (74.75 KB)" in text


def test_summary_of_model_a_is_keras_table_at_width_80(examples, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("LINES", "24")
    examples("keras_tutorials").padding_demo().summary()
    out = capsys.readouterr().out
    assert out.rstrip("\n") == SUMMARY_A_80
    table = [line for line in out.splitlines() if line[:1] in "┏┃┡│├└"]
    assert {len(line) for line in table} == {76}
    assert "\x1b" not in out  # no ANSI codes when not a TTY


def test_summary_print_fn_gets_the_same_text(examples, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    model = examples("keras_tutorials").padding_demo()
    model.summary()
    printed = capsys.readouterr().out
    assert summary_text(model).splitlines() == printed.splitlines()
    assert capsys.readouterr().out == ""  # print_fn: nothing on stdout


def test_summary_wraps_long_layer_names(examples, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    examples("keras_tutorials").lenet_cifar().summary()
    lines = capsys.readouterr().out.splitlines()
    first = "│ average_pooling2d               │ (None, 14, 14, 6)      │             0 │"
    second = "│ (AveragePooling2D)              │                        │               │"
    i = lines.index(first)
    assert lines[i + 1] == second


def test_summary_after_adam_fit_shows_optimizer_params(examples):
    model = examples("keras_tutorials").lenet_cifar()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    assert "Optimizer params" not in summary_text(model)  # Adam not built yet
    rng = np.random.default_rng(0)
    model.fit(rng.random((4, 32, 32, 3), dtype=np.float32), np.arange(4), epochs=1,
              verbose=0)
    tail = summary_text(model).splitlines()[-4:]
    assert tail[0].startswith(" Total params: 186,020 (")     # 62,006 + 124,014
    assert tail[1:] == [" Trainable params: 62,006 (242.21 KB)",
                        " Non-trainable params: 0 (0.00 B)",
                        " Optimizer params: 124,014 (484.43 KB)"]


def test_lenet5_example_has_61706_params(examples):
    model = examples("lenet5").lenet5()
    conv1 = 5 * 5 * 1 * 6 + 6              # 'same': 28x28x6
    conv2 = 5 * 5 * 6 * 16 + 16            # on 14x14x6 -> 10x10x16, pooled 5x5x16
    dense = (400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    assert conv1 + conv2 + dense == 61_706
    assert model.count_params() == 61_706
    text = summary_text(model)
    assert " Total params: 61,706 (241.04 KB)" in text
    assert table_rows(text)[:3] == [
        ("conv2d (Conv2D)", "(None, 28, 28, 6)", "156"),
        ("average_pooling2d (AveragePooling2D)", "(None, 14, 14, 6)", "0"),
        ("conv2d_1 (Conv2D)", "(None, 10, 10, 16)", "2,416")]


# ============================================================================
# 2. the Sequential API
# ============================================================================
def test_list_constructor_and_add_build_the_same_model():
    a = Sequential([Dense(5, input_shape=(4,)), Dense(3)])
    b = Sequential()
    layers = [Dense(5, input_shape=(4,)), Dense(3)]
    for layer in layers:
        b.add(layer)
    assert b.layers == layers and all(x is y for x, y in zip(b.layers, layers))
    assert [w.shape for w in a.get_weights()] == [w.shape for w in b.get_weights()] \
        == [(4, 5), (5,), (5, 3), (3,)]
    assert a.count_params() == b.count_params() == 4 * 5 + 5 + 5 * 3 + 3


def test_input_shape_on_a_later_layer_is_ignored():
    model = Sequential([Dense(5, input_shape=(4,)), Dense(3, input_shape=(99,))])
    assert [w.shape for w in model.get_weights()] == [(4, 5), (5,), (5, 3), (3,)]
    assert model.predict(np.zeros((2, 4), np.float32)).shape == (2, 3)


@pytest.mark.parametrize("layers, shape", [
    (lambda: [Conv2D(2, 3), Flatten(), Dense(3)], (8, 8, 1)),
    (lambda: [Dense(3)], (4,)),
], ids=["conv", "dense"])
def test_build_with_or_without_the_batch_axis(layers, shape):
    with_batch, without = Sequential(layers()), Sequential(layers())
    with_batch.build((None,) + shape)
    without.build(shape)
    assert [w.shape for w in with_batch.get_weights()] == \
        [w.shape for w in without.get_weights()]
    assert with_batch.count_params() == without.count_params()
    x = np.zeros((2,) + shape, np.float32)
    assert with_batch.predict(x).shape == without.predict(x).shape == (2, 3)


def test_get_weights_order_and_set_weights_round_trip():
    model = small_cnn()
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(3, 3, 2, 3), (3,),          # Conv2D kernel, bias
                                          (3,), (3,), (3,), (3,),      # gamma, beta, mm, mv
                                          (12, 3), (3,)]               # Dense kernel, bias
    assert all(isinstance(w, np.ndarray) and w.dtype == np.float32 for w in weights)
    rng = np.random.default_rng(5)
    new = [rng.uniform(0.5, 1.5, w.shape).astype(np.float32) for w in weights]
    model.set_weights(new)
    for got, want in zip(model.get_weights(), new):
        assert np.array_equal(got, want)
    # get_weights returns copies
    model.get_weights()[0][...] = 0
    assert np.array_equal(model.get_weights()[0], new[0])


def test_set_weights_computes_the_dense_function():
    model = Sequential([Dense(3, activation="softmax", input_shape=(4,))])
    rng = np.random.default_rng(1)
    kernel, bias = rng.normal(size=(4, 3)), rng.normal(size=3)
    model.set_weights([kernel, bias])
    x, _ = make_data(7)
    np.testing.assert_allclose(model.predict(x), softmax(x @ kernel + bias), atol=1e-6)


@pytest.mark.parametrize("drop", [1, -1])
def test_set_weights_with_a_wrong_count_errors_clearly(drop):
    model = small_cnn()
    weights = model.get_weights()
    weights = weights[:-1] if drop == 1 else weights + [np.zeros(3, np.float32)]
    with pytest.raises(ValueError, match=rf"expected 8\b.*received {len(weights)}\b"):
        model.set_weights(weights)


def test_set_weights_with_a_wrong_shape_errors_clearly():
    model = small_cnn()
    weights = model.get_weights()
    weights[-2] = np.zeros((3, 12), np.float32)
    with pytest.raises(ValueError, match=r"\(12, 3\)"):
        model.set_weights(weights)


def test_predict_returns_numpy_in_batches_not_dividing_n():
    model = Sequential([Dense(3, activation="softmax", input_shape=(4,))])
    kernel, bias = model.get_weights()
    x, _ = make_data(10)
    out = model.predict(x, batch_size=4)
    assert type(out) is np.ndarray and out.shape == (10, 3)
    np.testing.assert_allclose(out, softmax(x.astype(np.float64) @ kernel + bias), atol=1e-6)
    assert np.array_equal(out, model.predict(x, batch_size=32))


def test_evaluate_returns_loss_and_accuracy_or_a_float():
    set_random_seed(3)
    x, labels = make_data(10)
    model = compiled(Sequential([Dense(3, activation="softmax", input_shape=(4,))]))
    kernel, bias = model.get_weights()
    p = softmax(x.astype(np.float64) @ kernel + bias)
    result = model.evaluate(x, labels, batch_size=4)
    assert isinstance(result, list) and len(result) == 2
    loss, accuracy = result
    assert loss == pytest.approx(cce(one_hot(labels), p), rel=1e-5)
    assert accuracy == pytest.approx(np.mean(p.argmax(axis=1) == labels))

    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    only_loss = model.evaluate(x, labels, batch_size=3)
    assert isinstance(only_loss, float)
    assert only_loss == pytest.approx(cce(one_hot(labels), p), rel=1e-5)


# ============================================================================
# 3. optimizers (doc §7)
# ============================================================================
def keras_sgd(w0, grads, lr, momentum=0.0, nesterov=False):
    w, v = w0.astype(np.float64), np.zeros(w0.shape)
    for g in grads:
        if momentum == 0:
            w = w - lr * g
            continue
        v = momentum * v - lr * g
        w = w + momentum * v - lr * g if nesterov else w + v
    return w


def keras_adam(w0, grads, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    w, m, v = w0.astype(np.float64), np.zeros(w0.shape), np.zeros(w0.shape)
    for t, g in enumerate(grads, start=1):
        m = m + (1 - beta_1) * (g - m)
        v = v + (1 - beta_2) * (g * g - v)
        alpha = lr * math.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
        w = w - alpha * m / (np.sqrt(v) + epsilon)
    return w


def textbook_adam(w0, grads, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    w, m, v = w0.astype(np.float64), np.zeros(w0.shape), np.zeros(w0.shape)
    for t, g in enumerate(grads, start=1):
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        w = w - lr * (m / (1 - beta_1 ** t)) / (np.sqrt(v / (1 - beta_2 ** t)) + epsilon)
    return w


OPTIMIZER_CASES = {
    "sgd": (lambda: optimizers.SGD(0.1), lambda w, gs: keras_sgd(w, gs, 0.1)),
    "momentum": (lambda: optimizers.SGD(0.1, momentum=0.9),
                 lambda w, gs: keras_sgd(w, gs, 0.1, 0.9)),
    "nesterov": (lambda: optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                 lambda w, gs: keras_sgd(w, gs, 0.1, 0.9, nesterov=True)),
    "adam": (lambda: optimizers.Adam(0.01), lambda w, gs: keras_adam(w, gs, lr=0.01)),
    "adam-betas": (lambda: optimizers.Adam(0.05, beta_1=0.5, beta_2=0.8, epsilon=1e-3),
                   lambda w, gs: keras_adam(w, gs, 0.05, 0.5, 0.8, 1e-3)),
}


@pytest.mark.parametrize("floatx, tol", [("float32", 1e-6), ("float64", 1e-12)])
@pytest.mark.parametrize("case", OPTIMIZER_CASES)
def test_three_steps_of_apply_follow_keras_rules(case, floatx, tol):
    make_optimizer, reference = OPTIMIZER_CASES[case]
    mc.backend.set_floatx(floatx)
    set_random_seed(0)
    layer = Dense(3)
    layer.build((4,))
    start = layer.get_weights()
    rng = np.random.default_rng(42)
    grads = [[rng.normal(size=w.shape) for w in start] for _ in range(3)]  # per step
    opt = make_optimizer()
    for step_grads in grads:
        opt.apply([g.astype(floatx) for g in step_grads], layer.trainable_weights)
    assert opt.iterations == 3
    for i, (got, w0) in enumerate(zip(layer.get_weights(), start)):
        want = reference(w0, [step[i] for step in grads])
        assert got.dtype == np.dtype(floatx)
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_adam_adds_epsilon_to_sqrt_of_uncorrected_v():
    """With gradients ~1e-7 Keras's form and the textbook form differ (doc §7)."""
    w0 = np.linspace(-1, 1, 12).reshape(4, 3)
    rng = np.random.default_rng(3)
    grads = [rng.normal(size=w0.shape) * 1e-7 for _ in range(3)]
    w = w0.copy()
    opt = optimizers.Adam()
    for g in grads:
        opt.apply([g], [w])
    keras, textbook = keras_adam(w0, grads), textbook_adam(w0, grads)
    assert np.abs(keras - textbook).max() > 1e-5  # the two forms really differ here
    np.testing.assert_allclose(w, keras, rtol=0, atol=1e-12)


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
@pytest.mark.parametrize("floatx, tol", [("float32", 1e-6), ("float64", 1e-12)])
def test_one_sgd_step_of_train_on_batch_is_keras(loss, floatx, tol):
    mc.backend.set_floatx(floatx)
    set_random_seed(1)
    model = Sequential([Dense(3, activation="softmax", input_shape=(4,))])
    model.compile(optimizer=optimizers.SGD(0.01), loss=loss)
    x, labels = make_data(6, seed=2)
    x = x.astype(floatx)
    y = one_hot(labels)
    w0, b0 = (w.astype(np.float64) for w in model.get_weights())
    p = softmax(x.astype(np.float64) @ w0 + b0)
    n = len(x)

    returned = model.train_on_batch(x, y if loss.startswith("categorical") else labels)

    assert isinstance(returned, float)
    assert returned == pytest.approx(cce(y, p), rel=tol, abs=tol)  # pre-update loss
    w1, b1 = model.get_weights()
    np.testing.assert_allclose(w1, w0 - 0.01 * x.T.astype(np.float64) @ (p - y) / n,
                               rtol=tol, atol=tol)
    np.testing.assert_allclose(b1, b0 - 0.01 * (p - y).sum(axis=0) / n, rtol=tol, atol=tol)
    assert model.optimizer.iterations == 1


def test_one_sgd_step_with_mse_on_a_linear_layer(float64):
    set_random_seed(1)
    model = Sequential([Dense(2, input_shape=(4,))])
    model.compile(optimizer=optimizers.SGD(0.05), loss="mse")
    x, _ = make_data(5, seed=4)
    x = x.astype(np.float64)
    y = np.random.default_rng(9).normal(size=(5, 2))
    w0, b0 = model.get_weights()
    out = x @ w0 + b0
    grad = 2 * (out - y) / out.size                # dL/dout of the mean (doc §6)
    loss = model.train_on_batch(x, y)
    assert loss == pytest.approx(np.mean((out - y) ** 2), rel=1e-12)
    w1, b1 = model.get_weights()
    np.testing.assert_allclose(w1, w0 - 0.05 * x.T @ grad, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b1, b0 - 0.05 * grad.sum(axis=0), rtol=1e-12, atol=1e-12)


def test_optimizer_strings_give_keras_defaults():
    model = Sequential([Dense(3, input_shape=(4,))])
    model.compile(optimizer="sgd", loss="mse")
    sgd = model.optimizer
    assert isinstance(sgd, optimizers.SGD)
    assert (sgd.learning_rate, sgd.momentum, sgd.nesterov) == (0.01, 0.0, False)
    model.compile(optimizer="adam", loss="mse")
    adam = model.optimizer
    assert isinstance(adam, optimizers.Adam)
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == \
        (0.001, 0.9, 0.999, 1e-7)
    assert adam.iterations == 0
    default = optimizers.Adam()
    assert (default.learning_rate, default.epsilon) == (0.001, 1e-7)


def test_iterations_count_training_steps():
    x, labels = make_data(10)
    model = compiled(mlp(), optimizers.Adam())
    model.fit(x, labels, batch_size=4, epochs=2, verbose=0)
    assert model.optimizer.iterations == 2 * math.ceil(10 / 4)
    model.train_on_batch(x[:3], labels[:3])
    assert model.optimizer.iterations == 7


# ============================================================================
# 4. fit
# ============================================================================
@pytest.mark.parametrize("metric_names, validation, keys", [
    (["accuracy"], None, {"loss", "accuracy"}),
    ([], None, {"loss"}),
    (["accuracy"], "data", {"loss", "accuracy", "val_loss", "val_accuracy"}),
    (["accuracy"], "split", {"loss", "accuracy", "val_loss", "val_accuracy"}),
    ([], "data", {"loss", "val_loss"}),
])
def test_history_keys(metric_names, validation, keys):
    x, labels = make_data(12)
    model = compiled(mlp(), metrics=metric_names)
    kwargs = {"data": {"validation_data": (x[:4], labels[:4])},
              "split": {"validation_split": 0.25}}.get(validation, {})
    history = model.fit(x, labels, batch_size=5, epochs=3, verbose=0, **kwargs)
    assert isinstance(history, callbacks.History)
    assert set(history.history) == keys
    assert all(len(values) == 3 for values in history.history.values())
    assert history.epoch == [0, 1, 2]


def test_epoch_loss_is_the_sample_weighted_mean_of_batch_losses():
    x, labels = make_data(10)
    a = compiled(mlp())
    b = compiled(twin(mlp, a))
    logger = BatchLogger()
    history = a.fit(x, labels, batch_size=4, epochs=1, shuffle=False, verbose=0,
                    callbacks=[logger])
    batches = [slice(0, 4), slice(4, 8), slice(8, 10)]
    results = [b.train_on_batch(x[s], labels[s]) for s in batches]
    sizes = [4, 4, 2]
    for k in range(3):  # Keras's running means, weighted by batch size
        seen = sum(sizes[:k + 1])
        loss = sum(n * r[0] for n, r in zip(sizes[:k + 1], results)) / seen
        accuracy = sum(n * r[1] for n, r in zip(sizes[:k + 1], results)) / seen
        assert logger.logs[k]["loss"] == pytest.approx(loss, rel=1e-12)
        assert logger.logs[k]["accuracy"] == pytest.approx(accuracy, rel=1e-12)
    assert history.history["loss"][0] == pytest.approx(
        (4 * results[0][0] + 4 * results[1][0] + 2 * results[2][0]) / 10, rel=1e-12)
    assert history.history["loss"][0] != pytest.approx(np.mean([r[0] for r in results]),
                                                       rel=1e-9)  # not the plain mean
    assert_same_weights(a, b)


def test_shuffling_is_reproducible_with_seed():
    x, labels = make_data(24)
    first = compiled(mlp())
    runs = {name: compiled(twin(mlp, first)) for name in ("same", "other", "none")}
    first.fit(x, labels, batch_size=5, epochs=2, seed=7, verbose=0)
    runs["same"].fit(x, labels, batch_size=5, epochs=2, seed=7, verbose=0)
    runs["other"].fit(x, labels, batch_size=5, epochs=2, seed=8, verbose=0)
    runs["none"].fit(x, labels, batch_size=5, epochs=2, shuffle=False, verbose=0)
    assert_same_weights(first, runs["same"])
    for name in ("other", "none"):
        assert not np.array_equal(first.get_weights()[0], runs[name].get_weights()[0]), name


@pytest.mark.parametrize("shuffle", [False, True])
def test_validation_split_takes_the_last_samples(shuffle):
    x, labels = make_data(10)
    split = math.floor(10 * (1 - 0.25))  # Keras: floor(N * (1 - split)) = 7
    a = compiled(mlp())
    b = compiled(twin(mlp, a))
    ha = a.fit(x, labels, batch_size=3, epochs=2, validation_split=0.25, shuffle=shuffle,
               seed=1, verbose=0)
    hb = b.fit(x[:split], labels[:split], batch_size=3, epochs=2, shuffle=shuffle, seed=1,
               validation_data=(x[split:], labels[split:]), verbose=0)
    assert ha.history == hb.history
    assert_same_weights(a, b)
    # the last epoch's val_loss is the loss of the trained model on the last 3 samples
    p = softmax(np.tanh(x[split:] @ a.get_weights()[0] + a.get_weights()[1])
                @ a.get_weights()[2] + a.get_weights()[3])
    assert ha.history["val_loss"][-1] == pytest.approx(cce(one_hot(labels[split:]), p),
                                                       rel=1e-5)


@pytest.mark.parametrize("n, split", [(2, 0.9), (4, 0.8)])
def test_validation_split_leaving_no_training_samples_errors(n, split):
    """Keras raises a ValueError when floor(N * (1 - split)) is 0."""
    x, labels = make_data(n)
    model = compiled(mlp())
    with pytest.raises(ValueError, match="validation"):
        model.fit(x, labels, validation_split=split, verbose=0)


def test_fit_verbose_0_prints_nothing(capsys):
    x, labels = make_data(12)
    model = compiled(mlp())
    model.fit(x, labels, batch_size=4, epochs=2, verbose=0, validation_split=0.25)
    out, err = capsys.readouterr()
    assert out == "" and err == ""


STEP_LINE = r"(\d+)/\1 - \d+s - \d+(\.\d+)?(s|ms|us)/step - accuracy: \d\.\d{4} - loss: \d\.\d{4}"


def test_fit_verbose_2_prints_one_line_per_epoch(capsys):
    x, labels = make_data(12)
    model = compiled(mlp())
    model.fit(x, labels, batch_size=3, epochs=2, verbose=2,
              validation_data=(x[:4], labels[:4]))
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 4
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    for line in lines[1::2]:
        assert re.fullmatch(STEP_LINE.replace("(\\d+)/\\1", "4/4")
                            + r" - val_accuracy: \d\.\d{4} - val_loss: \d\.\d{4}", line), line


def test_fit_verbose_2_single_epoch_has_no_epoch_header(capsys):
    """Keras's ProgbarLogger prints "Epoch i/n" only when epochs > 1
    (keras/src/callbacks/progbar_logger.py: ``if self.verbose and self.epochs > 1``)."""
    x, labels = make_data(12)
    compiled(mlp()).fit(x, labels, batch_size=3, epochs=1, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and re.fullmatch(STEP_LINE, lines[0]), lines


def test_fit_verbose_1_shows_a_progress_bar(capsys, monkeypatch):
    """On a terminal (here pretended: pytest captures the output) fit draws tqdm's bar."""
    import minicnn.training
    monkeypatch.setattr(minicnn.training, "_interactive", lambda stream: True)
    x, labels = make_data(12)
    compiled(mlp()).fit(x, labels, batch_size=3, epochs=2, verbose=1)
    out, err = capsys.readouterr()
    assert "Epoch 1/2" in out.splitlines() and "Epoch 2/2" in out.splitlines()
    shown = out + err
    assert "4/4" in shown and "━" in shown
    assert re.search(r"accuracy: \d\.\d{4} - loss: \d\.\d{4}", shown)


def test_fit_log_in_a_file_is_one_clean_line_per_epoch(tmp_path):
    """verbose=1 (and "auto") with output redirected to a file, as in a CI log: one
    line per epoch, no carriage-return redraws of a bar."""
    script = tmp_path / "train.py"
    script.write_text(
        "import numpy as np, minicnn as mc\n"
        "from minicnn.layers import Dense\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.standard_normal((200, 4)).astype('float32'); y = rng.integers(0, 3, 200)\n"
        "m = mc.Sequential([Dense(3, activation='softmax', input_shape=(4,))])\n"
        "m.compile('sgd', 'sparse_categorical_crossentropy', metrics=['accuracy'])\n"
        "m.fit(x, y, batch_size=4, epochs=3)\n")
    log = tmp_path / "log.txt"
    with open(log, "w") as out:
        subprocess.run([sys.executable, str(script)], stdout=out, stderr=subprocess.STDOUT,
                       check=True, timeout=300)
    text = log.read_text()
    assert "\r" not in text and "\x1b" not in text, repr(text[:300])
    lines = text.splitlines()
    assert lines[0::2] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"], lines
    assert all(re.fullmatch(STEP_LINE, line) for line in lines[1::2]), lines
    assert len(lines) == 6


# ============================================================================
# 5. callbacks
# ============================================================================
class StubModel:
    """Records stop_training and the weights EarlyStopping takes and restores."""

    def __init__(self):
        self.stop_training = False
        self.current = None
        self.restored = None

    def get_weights(self):
        return [self.current.copy()]

    def set_weights(self, weights):
        self.restored = [np.array(w) for w in weights]


def drive(callback, values, monitor="val_loss"):
    """Feed scripted monitored values; the stub's weights at epoch e are all e."""
    model = StubModel()
    callback.set_model(model)
    callback.on_train_begin()
    stopped = None
    for epoch, value in enumerate(values):
        model.current = np.full(2, float(epoch))
        callback.on_epoch_end(epoch, {monitor: value, "loss": 0.5})
        if model.stop_training:
            stopped = epoch
            break
    callback.on_train_end()
    return stopped, model


# (monitor, kwargs, values, epoch it stops at, epoch whose weights are restored)
EARLY_STOPPING_CASES = {
    "brief-example": ("val_loss", {"patience": 2}, [1.0, 0.9, 0.95, 0.96, 0.5], 3, 1),
    "patience-0": ("val_loss", {"patience": 0}, [1.0, 0.9, 0.95, 0.8], 2, 1),
    "equal-is-no-improvement": ("val_loss", {"patience": 1}, [1.0, 1.0, 0.5], 1, 0),
    "min-delta": ("val_loss", {"patience": 2, "min_delta": 0.1}, [1.0, 0.95, 0.92, 0.5], 2, 0),
    "accuracy-is-maximized": ("val_accuracy", {"patience": 2},
                              [0.5, 0.6, 0.55, 0.58, 0.9], 3, 1),
    "mode-max": ("score", {"patience": 1, "mode": "max"}, [1.0, 2.0, 1.5], 2, 1),
    "never-stops": ("val_loss", {"patience": 1}, [1.0, 0.9, 0.8], None, 2),
}


@pytest.mark.parametrize("case", EARLY_STOPPING_CASES)
def test_early_stopping_scripted(case):
    monitor, kwargs, values, stop_epoch, best_epoch = EARLY_STOPPING_CASES[case]
    cb = callbacks.EarlyStopping(monitor=monitor, restore_best_weights=True, **kwargs)
    stopped, model = drive(cb, values, monitor)
    assert stopped == stop_epoch
    assert cb.stopped_epoch == (stop_epoch or 0)
    assert model.restored is not None
    assert np.array_equal(model.restored[0], np.full(2, float(best_epoch)))


def test_early_stopping_without_restore_leaves_the_weights():
    cb = callbacks.EarlyStopping(patience=2)
    stopped, model = drive(cb, [1.0, 0.9, 0.95, 0.96])
    assert stopped == 3 and model.restored is None


def test_early_stopping_in_fit_stops_and_restores_best_weights():
    x, labels = make_data(12)
    model = compiled(mlp())
    scores = [1.0, 0.9, 0.95, 0.96, 0.1, 0.1]

    class Script(callbacks.Callback):  # injects a scripted "score" and records weights
        weights = []

        def on_epoch_end(self, epoch, logs=None):
            logs["score"] = scores[epoch]
            self.weights.append(self.model.get_weights())

    script = Script()
    stopper = callbacks.EarlyStopping(monitor="score", mode="min", patience=2,
                                      restore_best_weights=True)
    history = model.fit(x, labels, batch_size=4, epochs=6, verbose=0,
                        callbacks=[script, stopper])
    assert len(history.history["loss"]) == 4 and len(script.weights) == 4
    for got, want in zip(model.get_weights(), script.weights[1]):
        assert np.array_equal(got, want)


class SaveRecorder:
    def __init__(self):
        self.saved = []

    def save(self, path):
        self.saved.append(("model", path))

    def save_weights(self, path):
        self.saved.append(("weights", path))


@pytest.mark.parametrize("monitor, values, saved_epochs", [
    ("val_loss", [1.0, 0.8, 0.8, 0.9, 0.7], [1, 2, 5]),
    ("val_accuracy", [0.5, 0.4, 0.6, 0.6], [1, 3]),
])
def test_model_checkpoint_save_best_only(monitor, values, saved_epochs, tmp_path):
    pattern = str(tmp_path / "ckpt-{epoch:02d}.keras")
    cb = callbacks.ModelCheckpoint(pattern, monitor=monitor, save_best_only=True)
    model = SaveRecorder()
    cb.set_model(model)
    cb.on_train_begin()
    for epoch, value in enumerate(values):
        cb.on_epoch_end(epoch, {monitor: value, "loss": 1.0})
    assert model.saved == [("model", str(tmp_path / f"ckpt-{e:02d}.keras"))
                           for e in saved_epochs]


def test_model_checkpoint_every_epoch_and_weights_only(tmp_path):
    cb = callbacks.ModelCheckpoint(str(tmp_path / "w-{epoch:02d}-{loss:.2f}.weights.h5"),
                                   save_weights_only=True)
    model = SaveRecorder()
    cb.set_model(model)
    cb.on_train_begin()
    for epoch, loss in enumerate([0.5, 0.25, 0.75]):
        cb.on_epoch_end(epoch, {"loss": loss})
    assert model.saved == [("weights", str(tmp_path / name)) for name in
                           ("w-01-0.50.weights.h5", "w-02-0.25.weights.h5",
                            "w-03-0.75.weights.h5")]


def test_model_checkpoint_in_fit_writes_loadable_files(tmp_path):
    x, labels = make_data(12)
    model = compiled(mlp())
    checkpoint = callbacks.ModelCheckpoint(str(tmp_path / "ckpt-{epoch:02d}.keras"))
    model.fit(x, labels, batch_size=4, epochs=3, verbose=0,
              validation_data=(x[:4], labels[:4]), callbacks=[checkpoint])
    assert sorted(os.listdir(tmp_path)) == ["ckpt-01.keras", "ckpt-02.keras", "ckpt-03.keras"]
    assert_same_weights(load_model(tmp_path / "ckpt-03.keras"), model)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_csv_logger_writes_header_and_one_row_per_epoch(tmp_path):
    x, labels = make_data(12)
    path = tmp_path / "log.csv"
    history = compiled(mlp()).fit(x, labels, batch_size=4, epochs=3, verbose=0,
                                  validation_data=(x[:4], labels[:4]),
                                  callbacks=[callbacks.CSVLogger(str(path))])
    rows = read_csv(path)
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert len(rows) == 4
    for epoch, row in enumerate(rows[1:]):
        assert row[0] == str(epoch)
        for key, value in zip(rows[0][1:], row[1:]):
            assert float(value) == pytest.approx(history.history[key][epoch], rel=1e-12)


def test_csv_logger_append_adds_rows_without_a_second_header(tmp_path):
    x, labels = make_data(12)
    path = tmp_path / "log.csv"
    model = compiled(mlp())
    model.fit(x, labels, epochs=2, verbose=0, callbacks=[callbacks.CSVLogger(str(path))])
    model.fit(x, labels, epochs=1, verbose=0,
              callbacks=[callbacks.CSVLogger(str(path), append=True)])
    rows = read_csv(path)
    assert rows[0] == ["epoch", "accuracy", "loss"]
    assert [row[0] for row in rows[1:]] == ["0", "1", "0"]


# ============================================================================
# 6. Ctrl-C during fit
# ============================================================================
class InterruptAt(callbacks.Callback):
    """Sends SIGINT to this process at the end of global training step ``step``."""

    def __init__(self, step):
        self.step, self.seen = step, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.step:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signals need the main thread")
def test_ctrl_c_stops_fit_cleanly_after_the_step():
    x, labels = make_data(12)
    a = compiled(mlp())
    b = compiled(twin(mlp, a))
    before = signal.getsignal(signal.SIGINT)
    interrupt = InterruptAt(5)  # epoch 2, step 2 of 3

    history = a.fit(x, labels, batch_size=4, epochs=3, shuffle=False, verbose=0,
                    callbacks=[interrupt])

    assert interrupt.seen == 5  # no step after the interrupted one
    assert isinstance(history, callbacks.History) and history is a.history
    assert len(history.history["loss"]) == 1  # only epoch 1 completed
    for s in [slice(0, 4), slice(4, 8), slice(8, 12), slice(0, 4), slice(4, 8)]:
        b.train_on_batch(x[s], labels[s])
    assert_same_weights(a, b)
    assert a.optimizer.iterations == 5
    assert signal.getsignal(signal.SIGINT) is before
    if before is signal.default_int_handler:  # Ctrl-C raises again after fit
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(2)


# ============================================================================
# 7. saving
# ============================================================================
def trained_cnn(steps=2, optimizer=None):
    model = compiled(small_cnn(), optimizer or optimizers.Adam(0.01))
    x, labels = make_images(8 * steps)
    for i in range(steps):
        model.train_on_batch(x[8 * i:8 * i + 8], labels[8 * i:8 * i + 8])
    return model


def assert_same_optimizer_state(a, b):
    assert type(a) is type(b) and a.get_config() == b.get_config()
    sa, sb = a.get_state(), b.get_state()
    assert sa.keys() == sb.keys() and sa["iterations"] == sb["iterations"]
    for slot in sa:
        if slot != "iterations":
            assert len(sa[slot]) == len(sb[slot])
            for u, v in zip(sa[slot], sb[slot]):
                assert u.dtype == v.dtype and np.array_equal(u, v), slot


@pytest.mark.parametrize("name", ["model.keras", "model", "model.npz", "model.mcnn"])
def test_save_and_load_model_round_trip_bitwise(name, tmp_path):
    model = trained_cnn()
    path = tmp_path / name
    model.save(str(path))
    assert os.listdir(tmp_path) == [name]  # exactly that name, no temp file left
    loaded = load_model(str(path))
    assert [type(l).__name__ for l in loaded.layers] == [type(l).__name__ for l in model.layers]
    assert_same_weights(loaded, model)
    assert loaded.optimizer.iterations == 2
    assert_same_optimizer_state(loaded.optimizer, model.optimizer)
    x, _ = make_images(5, seed=3)
    assert np.array_equal(loaded.predict(x), model.predict(x))


def test_load_model_accepts_a_pathlib_path(tmp_path):
    model = trained_cnn(steps=1)
    model.save(tmp_path / "m.keras")
    assert_same_weights(load_model(tmp_path / "m.keras"), model)


def test_sgd_momentum_state_round_trips(tmp_path):
    model = trained_cnn(optimizer=optimizers.SGD(0.1, momentum=0.9, nesterov=True))
    model.save(str(tmp_path / "sgd.keras"))
    assert_same_optimizer_state(load_model(str(tmp_path / "sgd.keras")).optimizer,
                                model.optimizer)


@pytest.mark.parametrize("name", ["w.weights.h5", "w", "w.npz"])
def test_save_weights_and_load_weights_round_trip_bitwise(name, tmp_path):
    model = trained_cnn()
    path = str(tmp_path / name)
    model.save_weights(path)
    assert os.listdir(tmp_path) == [name]
    other = small_cnn(seed=1)
    assert not np.array_equal(other.get_weights()[0], model.get_weights()[0])
    other.load_weights(path)
    assert_same_weights(other, model)


@pytest.mark.parametrize("name", ["full.keras", "full.npz"])
def test_load_weights_reads_a_full_model_file(tmp_path, name):
    model = trained_cnn()
    model.save(str(tmp_path / name))
    other = small_cnn(seed=1)
    other.load_weights(str(tmp_path / name))
    assert_same_weights(other, model)


def test_resumed_training_equals_uninterrupted_training(tmp_path):
    x, labels = make_images(20)
    whole = compiled(small_cnn(), optimizers.Adam(0.01))
    first_half = compiled(twin(small_cnn, whole), optimizers.Adam(0.01))
    whole.fit(x, labels, batch_size=6, epochs=2, shuffle=False, verbose=0)

    first_half.fit(x, labels, batch_size=6, epochs=1, shuffle=False, verbose=0)
    first_half.save(str(tmp_path / "ckpt.keras"))
    resumed = load_model(str(tmp_path / "ckpt.keras"))
    resumed.fit(x, labels, batch_size=6, epochs=1, shuffle=False, verbose=0)

    assert resumed.optimizer.iterations == whole.optimizer.iterations == 8
    assert_same_weights(resumed, whole)
    assert_same_optimizer_state(resumed.optimizer, whole.optimizer)


def test_save_overwrites_atomically(tmp_path, monkeypatch):
    model = trained_cnn()
    path = tmp_path / "m.npz"
    model.save(str(path))
    model.save(str(path))  # overwriting leaves no temp file either
    assert os.listdir(tmp_path) == ["m.npz"]
    good = path.read_bytes()

    def broken_savez(file, *args, **kwds):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    model.train_on_batch(*make_images(4, seed=9))
    with pytest.raises(OSError):
        model.save(str(path))
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["m.npz"]
    assert path.read_bytes() == good  # the old file is intact


class Evil:
    """Unpickling this object would create the file ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def bad_files(tmp_path):
    """name -> path of files that are not loadable minicnn models."""
    model = trained_cnn(steps=1)
    good = tmp_path / "good.keras"
    model.save(str(good))
    data = good.read_bytes()
    files = {"truncated": tmp_path / "truncated.keras",
             "plain-npz": tmp_path / "plain.npz",
             "text": tmp_path / "notes.txt",
             "empty": tmp_path / "empty.keras"}
    files["truncated"].write_bytes(data[:len(data) // 2])
    np.savez(files["plain-npz"], a=np.arange(3), b=np.ones((2, 2)))
    files["text"].write_text("this is not a model\n")
    files["empty"].write_bytes(b"")
    return files, model


@pytest.mark.parametrize("kind", ["truncated", "plain-npz", "text", "empty"])
@pytest.mark.parametrize("loader", ["load_model", "load_weights"])
def test_bad_files_fail_with_a_clear_error_naming_the_file(kind, loader, tmp_path):
    files, model = bad_files(tmp_path)
    path = str(files[kind])
    with pytest.raises(ValueError, match=re.escape(path)):
        if loader == "load_model":
            load_model(path)
        else:
            model.load_weights(path)


@pytest.mark.parametrize("loader", ["load_model", "load_weights"])
def test_loading_never_unpickles(loader, tmp_path):
    model = trained_cnn(steps=1)
    good = tmp_path / "good.keras"
    model.save(str(good))
    with np.load(good, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    marker = tmp_path / "pwned"
    arrays["weights/0000"] = np.array([Evil(str(marker))], dtype=object)
    evil = tmp_path / "evil.keras"
    with open(evil, "wb") as f:
        np.savez(f, **arrays)  # pickles the object array
    with pytest.raises(ValueError, match=re.escape(str(evil))):
        if loader == "load_model":
            load_model(str(evil))
        else:
            model.load_weights(str(evil))
    assert not marker.exists()


# ============================================================================
# 8. one epoch on the shipped Fashion-MNIST subset
# ============================================================================
@pytest.mark.slow
def test_lenet5_one_epoch_on_the_subset_beats_chance(examples):
    lenet5 = examples("lenet5")
    set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = lenet5.load_data(mc.datasets.subset_dir())
    assert x_train.shape == (10_000, 28, 28, 1) and x_test.shape == (2_000, 28, 28, 1)
    model = lenet5.lenet5()
    model.compile(optimizer=optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=128, epochs=1, seed=0, verbose=0)
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=512)
    assert accuracy >= 0.70, (loss, accuracy)  # chance is 0.10


# ============================================================================
# 9. metrics
# ============================================================================
PROBS = np.array([[0.1, 0.7, 0.2],
                  [0.8, 0.1, 0.1],
                  [0.2, 0.3, 0.5],
                  [0.3, 0.4, 0.3]])
LABELS = np.array([1, 0, 1, 2])
CORRECT = np.array([1.0, 1.0, 0.0, 0.0])


@pytest.mark.parametrize("y_true", [one_hot(LABELS), LABELS, LABELS.reshape(-1, 1)],
                         ids=["one-hot", "(N,)", "(N,1)"])
def test_accuracy_for_one_hot_and_integer_labels(y_true):
    assert np.array_equal(metrics.accuracy_values(y_true, PROBS), CORRECT)
    name, fn = metrics.get("accuracy")
    assert name == "accuracy" and np.mean(fn(y_true, PROBS)) == 0.5


@pytest.mark.parametrize("loss, targets", [
    ("categorical_crossentropy", lambda labels: one_hot(labels)),
    ("sparse_categorical_crossentropy", lambda labels: labels),
    ("sparse_categorical_crossentropy", lambda labels: labels.reshape(-1, 1)),
], ids=["one-hot", "(N,)", "(N,1)"])
def test_accuracy_metric_in_evaluate_and_fit(loss, targets):
    set_random_seed(2)
    x, labels = make_data(11, seed=5)
    model = compiled(Sequential([Dense(3, activation="softmax", input_shape=(4,))]),
                     loss=loss)
    kernel, bias = model.get_weights()
    predicted = (x.astype(np.float64) @ kernel + bias).argmax(axis=1)
    _, accuracy = model.evaluate(x, targets(labels), batch_size=4)
    assert accuracy == pytest.approx(np.mean(predicted == labels))
    history = model.fit(x, targets(labels), batch_size=4, epochs=1, verbose=0)
    assert 0.0 <= history.history["accuracy"][0] <= 1.0


def test_steps_and_inference_batches_leave_no_forward_caches():
    """What layers keep for backward is dropped once a model's step or inference batch
    is done, so it never lives on beside the next step's (twice the memory)."""
    model = Sequential([Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1)),
                        MaxPooling2D(2), Flatten(), Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = np.random.default_rng(0).random((10, 8, 8, 1)), np.arange(10) % 3
    for run in (lambda: model.train_on_batch(x, y), lambda: model.predict(x, batch_size=4),
                lambda: model.evaluate(x, y, batch_size=4),
                lambda: model.fit(x, y, batch_size=4, epochs=1, verbose=0)):
        run()
        assert all(layer._cache is None for layer in model.layers)
