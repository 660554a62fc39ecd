"""Accuracy metrics as Keras 3 computes them (minicnn.metrics).

Closed forms first (no Keras needed): the functions on hand-made cases (thresholds,
ties, NaN, label shapes), ``metrics.get`` (names and Keras's shape rule for
"accuracy"), the metric objects, and ``fit``'s reported epoch metrics against the
same metrics computed by hand from the model's predictions. Then properties
(hypothesis), then live comparisons with Keras 3 (JAX backend, CPU), skipped
without it: every function on random data with ties, NaN and odd label shapes, the
metric objects' running means, and whole ``fit`` histories (keys and values) of a
Keras model and a minicnn model with the same weights.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minicnn as mc
from minicnn import losses, metrics
from minicnn.metrics import (binary_accuracy, categorical_accuracy, sparse_categorical_accuracy,
                             sparse_top_k_categorical_accuracy, top_k_categorical_accuracy)

# Keras 3.15 on numpy 2 warns about its own Variable.__array__ in get_weights().
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


# ============================================================================
# binary accuracy
# ============================================================================
BIN_Y = np.array([[1], [0], [1], [0], [0], [1], [1], [0]], dtype=np.float32)
BIN_P = np.array([[0.9], [0.1], [0.2], [0.8], [0.5], [0.5], [0.51], [0.49]], dtype=np.float32)
# strictly above 0.5 is class 1: 0.5 is class 0 (so [0] is right and [1] is wrong there)
BIN_RIGHT = np.array([1, 1, 0, 0, 1, 0, 1, 1], dtype=np.float64)


@pytest.mark.parametrize("how", ["function", "object", "by name", "accuracy (N, 1)",
                                 "accuracy labels (N,)"])
def test_binary_accuracy_is_prediction_above_threshold_equals_target(how):
    """Fails if the comparison is inverted (`<`: every value flips) or made `>=` (the
    two 0.5 rows flip)."""
    y = BIN_Y.reshape(-1) if how == "accuracy labels (N,)" else BIN_Y
    values = {"function": lambda: binary_accuracy(y, BIN_P).reshape(-1),
              "object": lambda: metrics.BinaryAccuracy().per_sample(y, BIN_P),
              "by name": lambda: metrics.get("binary_accuracy")[1](y, BIN_P),
              "accuracy (N, 1)": lambda: metrics.get("accuracy")[1](y, BIN_P),
              "accuracy labels (N,)": lambda: metrics.get("accuracy")[1](y, BIN_P)}[how]()
    np.testing.assert_array_equal(values, BIN_RIGHT)


def test_binary_accuracy_threshold_soft_targets_and_ties_in_float32():
    m = metrics.BinaryAccuracy(threshold=0.3)
    p = np.array([[0.3], [0.31], [0.29]], dtype=np.float32)
    # float32 0.3 is not above the threshold 0.3 taken in float32 (Keras compares so)
    np.testing.assert_array_equal(m.per_sample(np.array([[0], [1], [0]]), p), [1, 1, 1])
    # a soft target is compared exactly: 0.7 matches neither 0 nor 1
    np.testing.assert_array_equal(binary_accuracy(np.array([[0.7], [1.0]]),
                                                  np.array([[0.9], [0.9]])).ravel(), [0, 1])
    # NaN is never above the threshold: it predicts 0
    np.testing.assert_array_equal(binary_accuracy(np.array([[0], [1]]),
                                                  np.array([[np.nan], [np.nan]])).ravel(), [1, 0])


def test_binary_accuracy_on_several_units_is_the_mean_per_sample():
    y = np.array([[1, 0, 1, 1], [0, 0, 0, 0]])
    p = np.array([[0.9, 0.2, 0.1, 0.7], [0.6, 0.7, 0.8, 0.9]])
    assert binary_accuracy(y, p).shape == (2, 4)
    np.testing.assert_array_equal(metrics.get("binary_accuracy")[1](y, p), [0.75, 0.0])


# ============================================================================
# categorical, sparse, top-k, exact
# ============================================================================
PROBS = np.array([[0.1, 0.7, 0.2],
                  [0.4, 0.4, 0.2],     # a tie: the first maximum (class 0) is predicted
                  [0.2, 0.3, 0.5],
                  [0.3, 0.4, 0.3]])
LABELS = np.array([1, 1, 2, 2])
RIGHT = np.array([1.0, 0.0, 1.0, 0.0])


def test_categorical_accuracy_ties_take_the_first_maximum():
    one_hot = np.eye(3)[LABELS]
    np.testing.assert_array_equal(categorical_accuracy(one_hot, PROBS), RIGHT)
    # ties in the targets too: [0.5, 0.5, 0] is class 0
    np.testing.assert_array_equal(categorical_accuracy([[0.5, 0.5, 0.0]], [[0.4, 0.6, 0.0]]),
                                  [0.0])


@pytest.mark.parametrize("labels", [LABELS, LABELS.reshape(-1, 1), LABELS.astype(np.float32)],
                         ids=["(N,)", "(N,1)", "float"])
def test_sparse_categorical_accuracy_label_shapes(labels):
    values = sparse_categorical_accuracy(labels, PROBS)
    assert values.shape == (4,)
    np.testing.assert_array_equal(values, RIGHT)
    # a label that is not a whole number matches no class
    np.testing.assert_array_equal(sparse_categorical_accuracy([1.5], [[0.1, 0.8, 0.1]]), [0])


def test_top_k_counts_ties_in_and_wraps_negative_labels():
    # every score equal: each class has rank 1, so even top-1 is right
    flat = np.full((3, 4), 0.25)
    np.testing.assert_array_equal(top_k_categorical_accuracy(np.eye(4)[:3], flat, k=1), [1, 1, 1])
    p = np.array([[0.1, 0.5, 0.4, 0.0], [0.4, 0.3, 0.2, 0.1]])
    np.testing.assert_array_equal(sparse_top_k_categorical_accuracy([2, 2], p, k=2), [1, 0])
    np.testing.assert_array_equal(sparse_top_k_categorical_accuracy([2, 2], p, k=3), [1, 1])
    assert metrics.SparseTopKCategoricalAccuracy().k == metrics.TopKCategoricalAccuracy().k == 5
    # JAX's gather: -1 is the last class; beyond the classes there is no score
    np.testing.assert_array_equal(sparse_top_k_categorical_accuracy([-1, 4], p, k=3), [0, 0])
    np.testing.assert_array_equal(sparse_top_k_categorical_accuracy([-1, 4], p, k=5), [1, 1])
    # a NaN score at the label counts as -inf; NaN elsewhere outranks nothing
    nan = np.array([[np.nan, 0.1, 0.2], [0.3, np.nan, 0.1]])
    np.testing.assert_array_equal(sparse_top_k_categorical_accuracy([0, 0], nan, k=1), [0, 1])


def test_comparisons_flush_subnormals_and_argmax_puts_negative_zero_last():
    """As XLA on the CPU compares (and Keras's argmax fix for it): subnormal scores are
    0, so they tie with each other and with 0; -0.0 (and a negative subnormal) loses
    to +0.0 in argmax."""
    p = np.array([[0.0, 1e-45, 0.0],          # all zero: class 0
                  [-1e-45, 0.0, 0.0],         # negative "zero" loses: class 1
                  [1e-45, 2e-45, 0.0],        # all zero: class 0
                  [-0.0, 0.0, -1.0],          # -0.0 < +0.0: class 1
                  [1e-39, 1e-40, 1e-38]], dtype=np.float32)
    np.testing.assert_array_equal(sparse_categorical_accuracy([0, 1, 0, 1, 0], p), 1)
    np.testing.assert_array_equal(categorical_accuracy(np.eye(3)[[0, 1, 0, 1, 0]], p), 1)
    # the target's 1e-40 ties with every other subnormal: only 0.9 is above it
    q = np.array([[1e-40, 1e-42, 0.9, 1e-39, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(sparse_top_k_categorical_accuracy([0], q, k=2), [1])
    np.testing.assert_array_equal(binary_accuracy([[0.0]], np.array([[1e-45]], "f4"),
                                                  threshold=0.0), [[1]])


def test_sparse_top_k_from_sorted_ids():
    ids = np.array([[2, 0, 1], [1, 2, 0]])
    np.testing.assert_array_equal(
        sparse_top_k_categorical_accuracy([0, 0], ids, k=2, from_sorted_ids=True), [1, 0])
    m = metrics.SparseTopKCategoricalAccuracy(k=2, from_sorted_ids=True)
    assert m.get_config()["from_sorted_ids"] is True


def test_accuracy_class_is_exact_equality():
    """Keras's ``Accuracy`` compares values, not argmax: on probabilities it is ~0."""
    np.testing.assert_array_equal(metrics.accuracy([[1], [2], [3], [4]], [[0], [2], [3], [4]])
                                  .ravel(), [0, 1, 1, 1])
    assert metrics.Accuracy()(np.eye(3)[LABELS], PROBS) == 0.0


def test_dense_outputs_give_one_value_per_sample():
    """(N, H, W, K) outputs: one match per position, the mean per sample."""
    rng = np.random.default_rng(0)
    p = rng.uniform(size=(3, 2, 2, 4))
    labels = p.argmax(axis=-1)
    labels[0, 0, 0] = (labels[0, 0, 0] + 1) % 4  # one wrong position in sample 0
    for name, y in [("categorical_accuracy", np.eye(4)[labels]),
                    ("sparse_categorical_accuracy", labels),
                    ("accuracy", labels[..., None])]:
        np.testing.assert_array_equal(metrics.get(name)[1](y, p), [0.75, 1, 1])


# ============================================================================
# metrics.get: log names and Keras's rule for "accuracy"
# ============================================================================
def _which(fn, y, p):
    """Which accuracy ``fn`` computes, told apart on data where all three differ."""
    return fn(y, p).tolist()


@pytest.mark.parametrize("identifier, name", [
    ("accuracy", "accuracy"), ("acc", "acc"), ("ACC", "ACC"), ("Accuracy", "Accuracy"),
    ("binary_accuracy", "binary_accuracy"), ("BinaryAccuracy", "BinaryAccuracy"),
    ("categorical_accuracy", "categorical_accuracy"),
    ("sparse_categorical_accuracy", "sparse_categorical_accuracy"),
    ("top_k_categorical_accuracy", "top_k_categorical_accuracy"),
    ("sparse_top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy"),
    (metrics.TopKCategoricalAccuracy(k=2), "top_k_categorical_accuracy"),
    (metrics.BinaryAccuracy(threshold=0.3, name="ba3"), "ba3"),
    (metrics.Accuracy(), "accuracy"),
    (metrics.SparseCategoricalAccuracy, "sparse_categorical_accuracy"),
    (metrics.binary_accuracy, "binary_accuracy"),
])
def test_log_names_are_keras_s(identifier, name):
    """Strings log as given (Keras: ``metric_name = identifier``), objects by ``.name``,
    functions by ``__name__`` (all checked live below)."""
    got, fn = metrics.get(identifier)
    assert got == name and callable(fn)


@pytest.mark.parametrize("y_shape, p_shape, expected", [
    ((6,), (6, 3), "sparse"),
    ((6, 1), (6, 3), "sparse"),
    ((6, 3), (6, 3), "categorical"),
    ((6, 1), (6, 1), "binary"),
    ((6,), (6, 1), "binary"),
])
@pytest.mark.parametrize("loss", [None, losses.BinaryCrossentropy(),
                                  losses.SparseCategoricalCrossentropy(),
                                  losses.MeanSquaredError()], ids=["none", "bce", "sparse", "mse"])
def test_accuracy_resolves_from_the_shapes_alone(y_shape, p_shape, expected, loss):
    rng = np.random.default_rng(3)
    p = rng.uniform(size=p_shape)
    y = rng.integers(0, 2, y_shape) if expected != "categorical" else np.eye(3)[
        rng.integers(0, 3, 6)]
    fn = metrics.get("accuracy", loss=loss)[1]
    reference = {"binary": binary_accuracy, "sparse": sparse_categorical_accuracy,
                 "categorical": categorical_accuracy}[expected]
    np.testing.assert_array_equal(fn(y, p), metrics.per_sample(reference(y, p)))
    assert metrics.get("accuracy")[1] is fn  # the same function with or without a loss


def test_accuracy_rule_picks_binary_first_and_categorical_for_multi_label():
    """Keras's order: one output unit is binary whatever else holds; binary
    cross-entropy on several units gets categorical accuracy (argmax)."""
    assert metrics.is_binary_or_sparse_categorical(np.zeros((4, 1)), np.zeros((4, 1))) \
        == (True, False)
    assert metrics.is_binary_or_sparse_categorical(np.zeros(4), np.zeros((4, 1))) \
        == (True, True)
    y = np.array([[1, 0, 1], [0, 1, 1]])
    p = np.array([[0.9, 0.1, 0.8], [0.7, 0.2, 0.9]])
    np.testing.assert_array_equal(metrics.get("accuracy", losses.BinaryCrossentropy())[1](y, p),
                                  [1, 0])


@pytest.mark.parametrize("bad", ["top_k", "Acc_", "f1", 3, None, {"class_name": "Accuracy"}])
def test_unknown_metrics_raise_value_error(bad):
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.get(bad)


def test_unique_names_follow_keras():
    assert metrics.unique_names(["acc", "acc", "loss_x", "acc"]) == ["acc", "acc_1", "loss_x",
                                                                     "acc_2"]
    assert metrics.unique_names(["a", "b"]) == ["a", "b"]


def test_class_table():
    assert set(metrics.CLASSES) == {"Accuracy", "BinaryAccuracy", "CategoricalAccuracy",
                                    "SparseCategoricalAccuracy", "TopKCategoricalAccuracy",
                                    "SparseTopKCategoricalAccuracy", "MeanAbsoluteError",
                                    "MeanSquaredError"}


# ============================================================================
# metric objects: running means
# ============================================================================
def test_metric_objects_keep_a_running_mean():
    m = metrics.SparseCategoricalAccuracy()
    assert m(LABELS[:2], PROBS[:2]) == 0.5
    m.update_state(LABELS[2:], PROBS[2:])
    assert m.result() == 0.5
    m.update_state([2], [[0, 0, 1]])
    assert m.result() == pytest.approx(3 / 5)
    m.reset_state()
    assert m.result() == 0.0
    m.update_state(LABELS, PROBS, sample_weight=[1, 0, 3, 0])
    assert m.result() == 1.0
    with pytest.raises(ValueError, match="one weight per sample"):
        m.update_state(LABELS, PROBS, sample_weight=[1, 2])
    assert metrics.BinaryAccuracy(threshold=0.7).get_config() == {
        "name": "binary_accuracy", "dtype": "float32", "threshold": 0.7}
    assert metrics.TopKCategoricalAccuracy(k=3).get_config()["k"] == 3


# ============================================================================
# fit reports the metrics of the predictions it trained on
# ============================================================================
def _fit_one_batch(units, activation, loss, y, metric_list, seed=0):
    """A Dense model trained one epoch on one batch (batch_size = N, no shuffling):
    the epoch's metrics are those of the predictions before the single update."""
    mc.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(len(y), 5)).astype(np.float32)
    model = mc.Sequential([mc.layers.Dense(units, activation=activation, input_shape=(5,))])
    model.compile(optimizer=mc.optimizers.SGD(0.5), loss=loss, metrics=metric_list)
    p = model.predict(x, batch_size=len(y)).astype(np.float64)
    history = model.fit(x, y, batch_size=len(y), epochs=1, shuffle=False, verbose=0)
    return p, history.history


def _in_top(labels, p, k):
    order = np.argsort(-p, axis=1, kind="stable")[:, :k]
    return (order == labels[:, None]).any(axis=1)


def test_fit_epoch_accuracy_equals_accuracy_by_hand_sparse():
    labels = np.random.default_rng(1).integers(0, 4, 32)
    p, logs = _fit_one_batch(4, "softmax", "sparse_categorical_crossentropy", labels,
                             ["accuracy", metrics.SparseTopKCategoricalAccuracy(k=2)])
    by_hand = np.mean(p.argmax(axis=1) == labels)
    assert 0 < by_hand < 1
    assert logs["accuracy"] == [by_hand]
    assert logs["sparse_top_k_categorical_accuracy"] == [np.mean(_in_top(labels, p, 2))]


def test_fit_epoch_accuracy_equals_accuracy_by_hand_one_hot():
    labels = np.random.default_rng(2).integers(0, 4, 32)
    p, logs = _fit_one_batch(4, "softmax", "categorical_crossentropy", np.eye(4)[labels],
                             ["acc", metrics.TopKCategoricalAccuracy(k=3)], seed=2)
    assert set(logs) == {"loss", "acc", "top_k_categorical_accuracy"}
    assert logs["acc"] == [np.mean(p.argmax(axis=1) == labels)]
    assert logs["top_k_categorical_accuracy"] == [np.mean(_in_top(labels, p, 3))]


def test_fit_epoch_binary_accuracy_equals_accuracy_by_hand():
    """A sigmoid unit with binary cross-entropy: "accuracy" is binary accuracy. An
    inverted comparison would report 1 - the value (which is not 0.5 here)."""
    y = np.random.default_rng(8).integers(0, 2, (32, 1)).astype(np.float32)
    p, logs = _fit_one_batch(1, "sigmoid", "binary_crossentropy", y,
                             ["accuracy", "binary_accuracy",
                              metrics.BinaryAccuracy(threshold=0.7, name="ba7")], seed=8)
    by_hand = np.mean((p > 0.5) == (y == 1))
    assert by_hand != 0.5
    assert logs["accuracy"] == logs["binary_accuracy"] == [by_hand]
    assert logs["ba7"] == [np.mean((p > 0.7) == (y == 1))]


def test_fit_multi_label_accuracy_is_categorical_binary_accuracy_is_per_unit():
    y = np.random.default_rng(4).integers(0, 2, (32, 3)).astype(np.float32)
    p, logs = _fit_one_batch(3, "sigmoid", "binary_crossentropy", y,
                             ["accuracy", "binary_accuracy"], seed=4)
    assert logs["accuracy"] == [pytest.approx(np.mean(p.argmax(axis=1) == y.argmax(axis=1)),
                                              rel=1e-12)]
    assert logs["binary_accuracy"] == [pytest.approx(np.mean((p > 0.5) == (y == 1)), rel=1e-12)]


# ============================================================================
# properties (hypothesis)
# ============================================================================
PROPS = settings(max_examples=60, deadline=None)


@st.composite
def scores_and_labels(draw, ties=True):
    n, k = draw(st.integers(1, 6)), draw(st.integers(2, 6))
    values = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]) if ties else \
        st.floats(-10, 10, allow_nan=False, allow_subnormal=False)  # (subnormals: XLA's
    # flush to zero, tested on its own)
    p = draw(hnp.arrays(np.float64, (n, k), elements=values))
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    return p, labels


@PROPS
@given(scores_and_labels())
def test_sparse_and_one_hot_forms_agree(data):
    p, labels = data
    one_hot = np.eye(p.shape[1])[labels]
    np.testing.assert_array_equal(sparse_categorical_accuracy(labels, p),
                                  categorical_accuracy(one_hot, p))
    for k in (1, 2, 3):
        np.testing.assert_array_equal(sparse_top_k_categorical_accuracy(labels, p, k=k),
                                      top_k_categorical_accuracy(one_hot, p, k=k))
    # the auto rule reads the same shapes
    np.testing.assert_array_equal(metrics.accuracy_values(labels, p),
                                  metrics.accuracy_values(labels[:, None], p))


@PROPS
@given(scores_and_labels(ties=False))
def test_top_k_properties(data):
    p, labels = data
    k = p.shape[1]
    assert sparse_top_k_categorical_accuracy(labels, p, k=k).all()  # every class is in
    top = [sparse_top_k_categorical_accuracy(labels, p, k=j) for j in range(1, k + 1)]
    assert all((a <= b).all() for a, b in zip(top, top[1:]))       # monotone in k
    if len(np.unique(p, axis=None)) == p.size:                        # no ties: top-1 = argmax
        np.testing.assert_array_equal(top[0], sparse_categorical_accuracy(labels, p))
    np.testing.assert_array_equal(top[0], _in_top(labels, p, 1) | (
        p[np.arange(len(p)), labels] == p.max(axis=1)))


@PROPS
@given(st.data())
def test_binary_accuracy_properties(data):
    shape = data.draw(st.sampled_from([(4, 1), (3, 3), (2, 2, 2)]))
    p = data.draw(hnp.arrays(np.float64, shape, elements=st.sampled_from(
        [0.0, 0.3, 0.5, 0.5000001, 0.7, 1.0])))
    y = data.draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0])))
    t = data.draw(st.sampled_from([0.3, 0.5, 0.7]))
    right = binary_accuracy(y, p, threshold=t)
    # against the definition, and flipping every target flips every element
    np.testing.assert_array_equal(right, ((p > t) == (y == 1)).astype(float))
    np.testing.assert_array_equal(right + binary_accuracy(1 - y, p, threshold=t), 1)
    np.testing.assert_allclose(metrics.BinaryAccuracy(threshold=t).per_sample(y, p),
                               right.reshape(shape[0], -1).mean(axis=1))


# ============================================================================
# live: Keras 3 computes the same values and the same fit logs
# ============================================================================
# the `keras` fixture (Keras 3 on JAX, or a skip) is tests/conftest.py's


_JITTED = {}


def keras_fn(keras, name, y, p, **kwargs):
    """Keras's metric function, jitted (one compilation per shape, not one per op)."""
    import jax
    key = (name, tuple(sorted(kwargs.items())))
    if key not in _JITTED:
        # keras.metrics exports every one but the exact-equality ``accuracy`` function
        fn = getattr(keras.metrics, name, None) or getattr(
            __import__("keras.src.metrics.accuracy_metrics").src.metrics.accuracy_metrics, name)
        _JITTED[key] = jax.jit(lambda a, b: fn(a, b, **kwargs))
    return np.asarray(_JITTED[key](y, p))


def _tied_scores(rng, shape, nan=True):
    """float32 scores on a coarse grid (many ties), some NaN."""
    p = (rng.integers(0, 5, shape) / 4).astype(np.float32)
    if nan:
        p.reshape(-1)[rng.integers(0, p.size, max(1, p.size // 15))] = np.nan
    return p


LIVE_CASES = [
    # function, kwargs, y kind, shape of y_pred
    ("binary_accuracy", {}, "binary", (12, 1)),
    ("binary_accuracy", {}, "binary_flat", (12, 1)),
    ("binary_accuracy", {}, "binary", (6, 4)),
    ("binary_accuracy", {"threshold": 0.25}, "soft", (6, 4)),
    ("binary_accuracy", {}, "binary", (3, 2, 2, 2)),
    ("categorical_accuracy", {}, "one_hot", (12, 4)),
    ("categorical_accuracy", {}, "soft", (12, 4)),
    ("categorical_accuracy", {}, "one_hot", (3, 2, 2, 4)),
    ("sparse_categorical_accuracy", {}, "labels", (12, 4)),
    ("sparse_categorical_accuracy", {}, "labels_n1", (12, 4)),
    ("sparse_categorical_accuracy", {}, "labels", (3, 2, 2, 4)),
    ("top_k_categorical_accuracy", {}, "one_hot", (12, 7)),
    ("top_k_categorical_accuracy", {"k": 2}, "one_hot", (12, 4)),
    ("top_k_categorical_accuracy", {"k": 1}, "one_hot", (3, 2, 2, 4)),
    ("sparse_top_k_categorical_accuracy", {}, "labels", (12, 7)),
    ("sparse_top_k_categorical_accuracy", {"k": 2}, "labels_n1", (12, 4)),
    ("sparse_top_k_categorical_accuracy", {"k": 2}, "labels_wild", (12, 4)),
    ("sparse_top_k_categorical_accuracy", {"k": 2, "from_sorted_ids": True}, "sorted_ids",
     (12, 4)),
    ("accuracy", {}, "ids", (12, 4)),
]


def _targets(rng, kind, shape):
    n, k = shape[0], shape[-1]
    lead = shape[:-1]
    return {"binary": lambda: rng.integers(0, 2, shape).astype(np.float32),
            "binary_flat": lambda: rng.integers(0, 2, n).astype(np.float32),
            "soft": lambda: _tied_scores(rng, shape, nan=False),
            "one_hot": lambda: np.eye(k, dtype=np.float32)[rng.integers(0, k, lead)],
            "labels": lambda: rng.integers(0, k, lead),
            "labels_n1": lambda: rng.integers(0, k, (n, 1)),
            "labels_wild": lambda: rng.integers(-k - 2, k + 2, n),  # wraps and misses
            "sorted_ids": lambda: rng.integers(0, k, n),
            "ids": lambda: rng.integers(0, k, shape).astype(np.float32)}[kind]()


@pytest.mark.parametrize("name, kwargs, kind, shape", LIVE_CASES,
                         ids=[f"{c[0]}-{c[2]}-{'x'.join(map(str, c[3]))}"
                              + "".join(f"-{k}{v}" for k, v in c[1].items()) for c in LIVE_CASES])
def test_metric_functions_match_keras(keras, name, kwargs, kind, shape):
    rng = np.random.default_rng(LIVE_CASES.index((name, kwargs, kind, shape)))
    for trial in range(3):
        y = _targets(rng, kind, shape)
        p = _tied_scores(rng, shape, nan=trial > 0)
        if kind in ("ids", "sorted_ids"):  # class ids, not scores
            p = rng.integers(0, shape[-1], shape).astype(np.float32)
        expected = keras_fn(keras, name, y, p, **kwargs)
        ours = getattr(metrics, name)(y, p, **kwargs)
        assert ours.shape == expected.shape
        np.testing.assert_array_equal(ours, expected)


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_metric_functions_match_keras_on_drawn_scores(keras, data):
    """Any float32 scores (ties, NaN, infinities, huge and tiny values)."""
    floats = st.one_of(st.sampled_from([0.0, -0.0, 0.5, 1.0, np.nan, np.inf, -np.inf, 1e-45,
                                        -1e-45, 1e-40, -1e-40, 1.1754944e-38]),
                       st.floats(width=32, allow_nan=False, allow_infinity=False))
    p = data.draw(hnp.arrays(np.float32, (5, 4), elements=floats))
    labels = data.draw(hnp.arrays(np.int64, (5,), elements=st.integers(0, 3)))
    binary = data.draw(hnp.arrays(np.float32, (5, 4), elements=st.sampled_from([0.0, 1.0])))
    one_hot = np.eye(4, dtype=np.float32)[labels]
    for name, y in [("binary_accuracy", binary), ("categorical_accuracy", one_hot),
                    ("sparse_categorical_accuracy", labels),
                    ("top_k_categorical_accuracy", one_hot),
                    ("sparse_top_k_categorical_accuracy", labels)]:
        kwargs = {"k": 2} if "top_k" in name else {}
        np.testing.assert_array_equal(getattr(metrics, name)(y, p, **kwargs),
                                      keras_fn(keras, name, y, p, **kwargs), err_msg=name)


@pytest.mark.parametrize("name, cls", [("mean_absolute_error", "MeanAbsoluteError"),
                                       ("mean_squared_error", "MeanSquaredError")])
@pytest.mark.parametrize("y_shape, p_shape", [((6, 3), (6, 3)), ((6,), (6, 1)),
                                              ((6, 1), (6,)), ((4, 2, 3, 2), (4, 2, 3, 2))])
def test_regression_metrics_match_keras(keras, name, cls, y_shape, p_shape):
    rng = np.random.default_rng(5)
    y = rng.standard_normal(y_shape).astype(np.float32)
    p = rng.standard_normal(p_shape).astype(np.float32)
    np.testing.assert_allclose(getattr(metrics, name)(y, p), keras_fn(keras, name, y, p),
                               rtol=1e-6)
    ours, theirs = getattr(metrics, cls)(), getattr(keras.metrics, cls)()
    assert ours(y, p) == pytest.approx(float(theirs(y, p)), rel=1e-6)
    assert ours.name == theirs.name and metrics.get(name)[0] == name
    assert metrics.get("mae")[0] == "mae" and metrics.get("mse")[0] == "mse"


@pytest.mark.parametrize("cls, kwargs, kind, shape", [
    ("BinaryAccuracy", {"threshold": 0.6}, "binary", (8, 3)),
    ("CategoricalAccuracy", {}, "one_hot", (8, 4)),
    ("SparseCategoricalAccuracy", {}, "labels_n1", (8, 4)),
    ("TopKCategoricalAccuracy", {"k": 2}, "one_hot", (8, 4)),
    ("SparseTopKCategoricalAccuracy", {"k": 3}, "labels", (8, 5)),
    ("Accuracy", {}, "ids", (8, 1)),
])
def test_metric_objects_match_keras(keras, cls, kwargs, kind, shape):
    """Running means over batches, with and without sample weights, and the configs
    (batches of other sizes: test_metric_objects_keep_a_running_mean)."""
    rng = np.random.default_rng(11)
    ours, theirs = getattr(metrics, cls)(**kwargs), getattr(keras.metrics, cls)(**kwargs)
    for rows, weighted in [(8, False), (8, True)]:  # one shape: Keras compiles once
        y = _targets(rng, kind, (rows,) + shape[1:])
        p = rng.integers(0, shape[-1], (rows,) + shape[1:]).astype(np.float32) \
            if kind == "ids" else _tied_scores(rng, (rows,) + shape[1:], nan=False)
        w = rng.uniform(0, 2, rows).astype(np.float32) if weighted else None
        ours.update_state(y, p, sample_weight=w)
        theirs.update_state(y, p, sample_weight=w)
        assert ours.result() == pytest.approx(float(theirs.result()), rel=1e-6)
    assert ours.name == theirs.name
    assert ours.get_config() == theirs.get_config()


FIT_CASES = {
    # loss, units, activation, targets, metrics (as strings, or classes with kwargs)
    "sparse": ("sparse_categorical_crossentropy", 4, "softmax", "labels_n1",
               ["accuracy", "ACC", "sparse_top_k_categorical_accuracy",
                ("SparseTopKCategoricalAccuracy", {"k": 2, "name": "top2"}),
                "SparseCategoricalAccuracy"]),
    "one_hot": ("categorical_crossentropy", 4, "softmax", "one_hot",
                ["accuracy", "categorical_accuracy", ("TopKCategoricalAccuracy", {"k": 2}),
                 ("Accuracy", {"name": "exact"})]),
    "binary": ("binary_crossentropy", 1, "sigmoid", "binary",
               ["accuracy", "binary_accuracy", ("BinaryAccuracy", {"threshold": 0.7,
                                                                   "name": "ba7"})]),
    "multi_label": ("binary_crossentropy", 3, "sigmoid", "binary",
                    ["Accuracy", "BinaryAccuracy", "binary_accuracy"]),
    "logits": (("BinaryCrossentropy", {"from_logits": True}), 1, None, "binary", ["accuracy"]),
    "mse_one_unit": ("mse", 1, None, "binary", ["acc"]),
}


@pytest.mark.parametrize("case", list(FIT_CASES))
def test_fit_history_matches_keras(keras, case):
    """The same model and weights trained one epoch on one batch (so the logged metrics
    are those of the initial predictions): the same log keys and the same values."""
    loss, units, activation, kind, metric_list = FIT_CASES[case]
    rng = np.random.default_rng(sorted(FIT_CASES).index(case))
    x = rng.normal(size=(24, 5)).astype(np.float32) * 2
    y = _targets(rng, kind, (24, units))

    def build(module):
        made = [getattr(module.metrics, m[0])(**m[1]) if isinstance(m, tuple) else m
                for m in metric_list]
        return (getattr(module.losses, loss[0])(**loss[1]) if isinstance(loss, tuple)
                else loss), made

    k_model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(units, activation)])
    k_loss, k_metrics = build(keras)
    k_model.compile(keras.optimizers.SGD(0.1), k_loss, metrics=k_metrics)
    initial = [np.array(w) for w in k_model.get_weights()]
    expected = k_model.fit(x, y, batch_size=24, epochs=1, shuffle=False, verbose=0).history

    ours = mc.Sequential([mc.layers.Dense(units, activation=activation, input_shape=(5,))])
    ours.set_weights(initial)
    m_loss, m_metrics = build(mc)
    ours.compile(mc.optimizers.SGD(0.1), m_loss, metrics=m_metrics)
    logs = ours.fit(x, y, batch_size=24, epochs=1, shuffle=False, verbose=0).history
    assert sorted(logs) == sorted(expected)
    for key in expected:
        assert logs[key][0] == pytest.approx(expected[key][0], rel=1e-5), key
