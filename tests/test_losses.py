"""Losses and their gradients as Keras 3 computes them (keras-semantics.md §6).

Cross-entropy on probabilities: renormalize p <- p / sum(p), clip to
[1e-7, 1 - 1e-7], L_n = -sum_k y_k log p_k; the loss objects return the batch
mean as a Python float. Expected values are the doc's numbers or the formulas
written out below (``keras_cce``), and gradients are checked against closed
forms from the doc and against central differences of the loss value.
"""
import math

import numpy as np
import pytest
from scipy.special import log_softmax
from scipy.special import softmax as scipy_softmax

from minicnn import losses, ops

CLIPPED_TRUE_CLASS = 16.118096  # -log(1e-7): doc §6, p = 0 for the true class


# ============================================================================
# helpers
# ============================================================================
def keras_cce(y, p):
    """Doc §6, per sample: renormalize, then clip, then -sum(y log p)."""
    q = np.clip(p / p.sum(axis=-1, keepdims=True), 1e-7, 1 - 1e-7)
    return -(y * np.log(q)).sum(axis=-1)


def one_hot(labels, k):
    return np.eye(k)[np.asarray(labels).reshape(-1)]


def numeric_grad(f, a, h=1e-6):
    """Central differences of the scalar f with respect to every entry of a."""
    a = np.array(a, dtype=np.float64)
    grad = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + h
        plus = f(a)
        a[idx] = old - h
        minus = f(a)
        a[idx] = old
        grad[idx] = (plus - minus) / (2 * h)
    return grad


def random_probs(n, k, seed=0, low=0.05, high=1.0, normalized=True):
    """Rows of positive values away from the clip limits (optionally not summing to 1)."""
    p = np.random.default_rng(seed).uniform(low, high, (n, k))
    return p / p.sum(axis=1, keepdims=True) if normalized else p


def random_labels(n, k, seed=1):
    return np.random.default_rng(seed).integers(0, k, n)


def soft_labels(n, k, seed=2):
    return random_probs(n, k, seed, 0.0, 1.0)


# ============================================================================
# categorical cross-entropy values
# ============================================================================
@pytest.mark.parametrize("p, label, expected", [
    ([0.0, 0.5, 0.5], 0, CLIPPED_TRUE_CLASS),   # p = 0: clipped to 1e-7
    ([1e-9, 0.5, 0.5], 0, CLIPPED_TRUE_CLASS),  # below 1e-7: clipped too
    ([1.0, 0.0, 0.0], 0, 1.0e-7),               # p = 1: clipped to 1 - 1e-7
    ([2.0, 1.0, 1.0], 0, math.log(2)),          # renormalized to [0.5, 0.25, 0.25]
    ([0.2, 0.2, 0.2], 1, math.log(3)),          # renormalized to 1/3 each
    ([3.0, 0.0, 1.0], 1, CLIPPED_TRUE_CLASS),   # renormalize, then clip
])
def test_cce_renormalizes_then_clips(p, label, expected):
    p, y = np.array([p]), one_hot([label], 3)
    assert ops.categorical_crossentropy(y, p)[0] == pytest.approx(expected, rel=1e-7)
    assert losses.CategoricalCrossentropy()(y, p) == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize("normalized", [True, False])
@pytest.mark.parametrize("labels", ["one_hot", "soft"])
def test_cce_batch_mean_matches_formula(normalized, labels):
    p = random_probs(6, 4, normalized=normalized)
    p[0, 2] = 0.0  # an exact zero in a row: still a finite loss
    y = one_hot(random_labels(6, 4), 4) if labels == "one_hot" else soft_labels(6, 4)
    np.testing.assert_allclose(ops.categorical_crossentropy(y, p), keras_cce(y, p), rtol=1e-12)
    value = losses.CategoricalCrossentropy()(y, p)
    assert isinstance(value, float)
    assert value == pytest.approx(keras_cce(y, p).mean(), rel=1e-12)


def test_cce_float32_inputs_give_a_python_float():
    p, y = random_probs(5, 3).astype(np.float32), one_hot(random_labels(5, 3), 3).astype("f4")
    value = losses.CategoricalCrossentropy()(y, p)
    assert type(value) is float
    assert value == pytest.approx(keras_cce(y.astype("f8"), p.astype("f8")).mean(), rel=1e-5)


# ============================================================================
# sparse categorical cross-entropy
# ============================================================================
@pytest.mark.parametrize("label_shape", ["(N,)", "(N, 1)"])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
def test_sparse_equals_cce_with_one_hot(label_shape, dtype):
    p = random_probs(6, 5, normalized=False)
    p[1, :] = [1e-9, 1.0, 1e-9, 1e-9, 1e-9]
    labels = random_labels(6, 5)
    labels[1] = 0  # a clipped row (exact zeros: see the test on them below)
    y = one_hot(labels, 5)
    sparse = labels.astype(dtype).reshape((6,) if label_shape == "(N,)" else (6, 1))
    expected = keras_cce(y, p).mean()
    assert losses.SparseCategoricalCrossentropy()(sparse, p) == pytest.approx(expected, rel=1e-12)
    assert losses.CategoricalCrossentropy()(y, p) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(losses.SparseCategoricalCrossentropy().gradient(sparse, p),
                               losses.CategoricalCrossentropy().gradient(y, p), rtol=1e-12)


# ============================================================================
# mean squared error
# ============================================================================
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4, 2)])
def test_mse_value_and_gradient(shape):
    rng = np.random.default_rng(0)
    y, o = rng.normal(size=shape), rng.normal(size=shape)
    np.testing.assert_allclose(ops.mean_squared_error(y, o), ((y - o) ** 2).mean(axis=-1))
    loss = losses.MeanSquaredError()
    value = loss(y, o)
    assert isinstance(value, float)
    assert value == pytest.approx(((y - o) ** 2).mean(), rel=1e-12)
    n, d = shape[0], int(np.prod(shape[1:]))
    expected = 2 * (o - y) / (n * d)
    np.testing.assert_allclose(loss.gradient(y, o), expected, rtol=1e-12)
    np.testing.assert_allclose(ops.mean_squared_error_backward(y, o), expected, rtol=1e-12)
    np.testing.assert_allclose(numeric_grad(lambda a: loss(y, a), o), expected, atol=1e-8)


# ============================================================================
# loss objects and names
# ============================================================================
@pytest.mark.parametrize("name, cls", [
    ("categorical_crossentropy", losses.CategoricalCrossentropy),
    ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
    ("mean_squared_error", losses.MeanSquaredError),
    ("mse", losses.MeanSquaredError),
])
def test_get_by_name(name, cls):
    loss = losses.get(name)
    assert isinstance(loss, cls)
    assert losses.get(loss) is loss


def test_get_unknown_name_raises():
    with pytest.raises(ValueError):
        losses.get("hinge_of_doom")


@pytest.mark.parametrize("loss, y", [
    (losses.CategoricalCrossentropy(), one_hot([0, 2, 1, 1], 3)),
    (losses.SparseCategoricalCrossentropy(), np.array([0, 2, 1, 1])),
    (losses.MeanSquaredError(), one_hot([0, 2, 1, 1], 3)),
], ids=["cce", "sparse", "mse"])
def test_loss_objects_return_the_batch_mean_as_float(loss, y):
    p = random_probs(4, 3)
    per_sample = [loss(y[i:i + 1], p[i:i + 1]) for i in range(4)]
    value = loss(y, p)
    assert type(value) is float
    assert value == pytest.approx(np.mean(per_sample), rel=1e-12)


# ============================================================================
# gradient of cross-entropy with respect to the probabilities
# ============================================================================
def cce_gradients(y, p):
    """The two public ways to get dL/dp: the op and the loss object."""
    return [ops.categorical_crossentropy_backward(y, p),
            losses.CategoricalCrossentropy().gradient(y, p)]


def test_cce_gradient_for_one_hot_rows_is_one_minus_y_over_p():
    """Doc §6: (1 - y/p)/N, not -y/(pN): the +1 comes from the renormalization."""
    p, y = random_probs(5, 4), one_hot(random_labels(5, 4), 4)
    for grad in cce_gradients(y, p):
        np.testing.assert_allclose(grad, (1 - y / p) / 5, rtol=1e-10)


@pytest.mark.parametrize("normalized", [True, False])
@pytest.mark.parametrize("labels", ["one_hot", "soft"])
def test_cce_gradient_matches_central_differences(normalized, labels):
    p = random_probs(4, 3, seed=3, low=0.1, normalized=normalized)
    y = one_hot(random_labels(4, 3), 3) if labels == "one_hot" else soft_labels(4, 3)
    numeric = numeric_grad(lambda a: losses.CategoricalCrossentropy()(y, a), p)
    for grad in cce_gradients(y, p):
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_cce_gradient_is_zero_where_the_true_class_is_clipped():
    p = np.array([[1e-9, 0.6, 0.4 - 1e-9],       # true class below 1e-7
                  [1 - 2e-9, 1e-9, 1e-9],         # true class above 1 - 1e-7
                  [0.2, 0.3, 0.5]])               # not clipped
    y = one_hot([0, 0, 2], 3)
    for grad in cce_gradients(y, p):
        np.testing.assert_array_equal(grad[:2], 0)
        np.testing.assert_allclose(grad[2], (1 - y[2] / p[2]) / 3, rtol=1e-12)


def test_cce_gradient_is_finite_with_exact_zero_probabilities():
    """Exact zeros (softmax underflow gives them) must not give 0/0. Keras's
    autodiff: a clipped entry contributes nothing, so with S = sum(p) the
    gradient is (sum_k y_k open_k - y_j open_j / q_j) / (S N): rows whose true
    class is clipped are 0, a zero in another class gets 1/(S N)."""
    p = np.array([[0.0, 0.6, 0.4],     # true class 0 has p = 0: row is 0
                  [1.0, 0.0, 0.0],     # true class 0 has p = 1: row is 0
                  [0.0, 0.5, 0.5]])    # true class 1; class 0 has p = 0
    y = one_hot([0, 0, 1], 3)
    expected = np.array([[0, 0, 0], [0, 0, 0], [1, 1 - 1 / 0.5, 1]]) / 3
    with np.errstate(all="ignore"):
        grads = cce_gradients(y, p)
    for grad in grads:
        np.testing.assert_allclose(grad, expected, atol=1e-15)


# ============================================================================
# softmax + cross-entropy (doc §6, and minicnn's fused gradient)
# ============================================================================
def fused(z, y):
    loss, cache = ops.softmax_cross_entropy_forward(z, y)
    return float(loss), ops.softmax_cross_entropy_backward(cache)


def unfused_gradient(z, y):
    """Keras's chain: dL/dp of the clipped cross-entropy, then the softmax Jacobian."""
    p = scipy_softmax(z, axis=-1)
    return ops.activation_backward(ops.categorical_crossentropy_backward(y, p), ("softmax", p))


def test_fused_gradient_is_p_minus_y_over_n():
    z = np.random.default_rng(0).normal(size=(5, 4)) * 3
    y = one_hot(random_labels(5, 4), 4)
    p = scipy_softmax(z, axis=-1)
    loss, grad = fused(z, y)
    assert loss == pytest.approx(keras_cce(y, p).mean(), rel=1e-12)
    np.testing.assert_allclose(grad, (p - y) / 5, rtol=1e-12, atol=1e-15)
    # without clipping, Keras's unfused chain gives the same (doc §6)
    np.testing.assert_allclose(unfused_gradient(z, y), (p - y) / 5, rtol=1e-9, atol=1e-15)


E = math.e
# logits, true class -> softmax p (written out), Keras's loss value
EXTREME_LOGITS = {
    "1000_right": ([1000, -1000, 0], 0, [1, 0, 0], 1e-7),
    "1000_wrong": ([1000, -1000, 0], 1, [1, 0, 0], CLIPPED_TRUE_CLASS),
    "3000_close": ([3000, 2999, -5000], 1, [E / (E + 1), 1 / (E + 1), 0], math.log(1 + E)),
    "3000_top": ([3000, 2999, -5000], 0, [E / (E + 1), 1 / (E + 1), 0], math.log(1 + 1 / E)),
    "3000_wrong": ([3000, 2999, -5000], 2, [E / (E + 1), 1 / (E + 1), 0], CLIPPED_TRUE_CLASS),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", list(EXTREME_LOGITS))
def test_fused_is_finite_and_exact_for_huge_logits(case, dtype):
    z, label, p, value = EXTREME_LOGITS[case]
    z, y, p = np.array([z], dtype=dtype), one_hot([label], 3).astype(dtype), np.array([p])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, grad = fused(z, y)
    assert np.all(np.isfinite(grad))
    # float32 rounds 1 - 1e-7 to 1 - 1.19e-7, so its tolerance is absolute
    rel, tol = (1e-6, 1e-6) if dtype == np.float32 else (1e-7, 1e-12)
    assert loss == pytest.approx(value, rel=rel, abs=tol)
    np.testing.assert_allclose(grad, p - y, rtol=tol, atol=tol)


@pytest.mark.parametrize("true_class, fused_row0", [
    (1, [1 / 3, -1 / 3, 6.87e-10]),  # confidently wrong: doc's [1/3, -1/3, 7e-10]
    (0, [-1.374e-9, 6.87e-10, 6.87e-10]),  # confidently right: p_true > 1 - 1e-7
])
def test_clipping_keras_zero_row_versus_fused_p_minus_y(true_class, fused_row0):
    """Row 0 has logits [20, 0, 0], so its true-class p is clipped. Keras's
    unfused chain gives exactly 0 for that row and (p - y)/N (N = 3, the full
    batch) for the others; the fused gradient keeps (p - y)/N for every row.
    Both report Keras's loss value."""
    z = np.array([[20.0, 0.0, 0.0], [0.5, -0.2, 0.1], [1.0, 2.0, 3.0]])
    y = one_hot([true_class, 0, 2], 3)
    p = scipy_softmax(z, axis=-1)

    keras_like = unfused_gradient(z, y)
    np.testing.assert_array_equal(keras_like[0], 0)
    np.testing.assert_allclose(keras_like[1:], (p[1:] - y[1:]) / 3, rtol=1e-9, atol=1e-15)

    loss, grad = fused(z, y)
    np.testing.assert_allclose(grad, (p - y) / 3, rtol=1e-12, atol=1e-18)
    np.testing.assert_allclose(grad[0], fused_row0, rtol=2e-3)
    assert loss == pytest.approx(keras_cce(y, p).mean(), rel=1e-12)
    if true_class == 1:
        assert keras_cce(y, p)[0] == pytest.approx(CLIPPED_TRUE_CLASS, rel=1e-6)


# ============================================================================
# from_logits=True
# ============================================================================
def from_logits_case(seed=0):
    z = np.random.default_rng(seed).normal(size=(5, 4)) * 4
    z[0] = [1000.0, -1000.0, 0.0, 5.0]  # no clipping with logits: loss 2000 for class 1
    labels = random_labels(5, 4)
    labels[0] = 1
    return z, labels


def test_from_logits_value_is_minus_y_log_softmax():
    z, labels = from_logits_case()
    y = one_hot(labels, 4)
    expected = -(y * log_softmax(z, axis=-1)).sum(axis=-1)
    assert expected[0] == pytest.approx(2000.0)
    for loss, target in [(losses.CategoricalCrossentropy(from_logits=True), y),
                         (losses.SparseCategoricalCrossentropy(from_logits=True), labels)]:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            value = loss(target, z)
        assert value == pytest.approx(expected.mean(), rel=1e-12)


def test_from_logits_gradient_is_softmax_minus_y_over_n():
    z, labels = from_logits_case()
    z[0] = [3.0, -1.0, 0.0, 2.0]  # moderate logits so central differences are exact
    y = one_hot(labels, 4)
    expected = (scipy_softmax(z, axis=-1) - y) / 5
    loss = losses.CategoricalCrossentropy(from_logits=True)
    np.testing.assert_allclose(loss.gradient(y, z), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(losses.SparseCategoricalCrossentropy(from_logits=True)
                               .gradient(labels, z), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(numeric_grad(lambda a: loss(y, a), z), expected, atol=1e-8)
