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
from scipy.special import expit, log_softmax
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


def test_from_logits_gradient_with_soft_targets_not_summing_to_one():
    """Keras: -sum(y log_softmax(z)), whose gradient is (softmax(z) sum(y) - y)/N; it is
    (p - y)/N only for targets that sum to 1."""
    z = np.random.default_rng(4).normal(size=(4, 3))
    y = np.random.default_rng(5).uniform(0, 1, (4, 3))  # rows sum to anything
    loss = losses.CategoricalCrossentropy(from_logits=True)
    expected = (scipy_softmax(z, axis=-1) * y.sum(axis=1, keepdims=True) - y) / 4
    np.testing.assert_allclose(loss.gradient(y, z), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(numeric_grad(lambda a: loss(y, a), z), expected, atol=1e-8)


# ============================================================================
# binary cross-entropy (Keras 3: clip, no renormalization, mean over the last axis)
# ============================================================================
def keras_bce(y, p):
    """Per sample: clip to [1e-7, 1 - 1e-7], -(y log c + (1 - y) log(1 - c)), mean_last."""
    c = np.clip(p, 1e-7, 1 - 1e-7)
    return (-(y * np.log(c) + (1 - y) * np.log(1 - c))).mean(axis=-1)


def keras_bce_logits(y, z):
    return (y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z)).mean(axis=-1)


@pytest.mark.parametrize("p, y, expected", [
    ([0.0], [1.0], CLIPPED_TRUE_CLASS),           # p = 0 for a positive: clipped to 1e-7
    ([1.0], [0.0], CLIPPED_TRUE_CLASS),           # p = 1 for a negative: 1 - p clipped
    ([1.0], [1.0], 1.00000005e-7),                # -log(1 - 1e-7)
    ([0.5], [1.0], math.log(2)),
    ([0.2, 0.2], [1.0, 0.0], (-math.log(0.2) - math.log(0.8)) / 2),  # not renormalized
    ([0.9, 0.9, 0.9], [1.0, 1.0, 1.0], -math.log(0.9)),  # rows need not sum to 1
    ([0.3], [0.25], -(0.25 * math.log(0.3) + 0.75 * math.log(0.7))),  # soft target
])
def test_bce_clips_without_renormalizing(p, y, expected):
    value = losses.BinaryCrossentropy()(np.array([y]), np.array([p]))
    assert type(value) is float
    assert value == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize("shape", [(5, 1), (5, 3), (3, 2, 2, 4)])
def test_bce_is_the_mean_over_the_last_axis_then_the_batch(shape):
    rng = np.random.default_rng(0)
    p, y = rng.uniform(0, 1, shape), rng.integers(0, 2, shape).astype(float)
    p.flat[0] = 0.0
    loss = losses.BinaryCrossentropy()
    per_sample = loss.per_sample(*loss.prepare(y, p))
    assert per_sample.shape == shape[:-1]
    np.testing.assert_allclose(per_sample, keras_bce(y, p), rtol=1e-12)
    assert loss(y, p) == pytest.approx(keras_bce(y, p).mean(), rel=1e-12)


@pytest.mark.parametrize("shape", [(4, 1), (3, 2, 3)])
def test_bce_gradient_matches_central_differences(shape):
    rng = np.random.default_rng(1)
    p, y = rng.uniform(0.05, 0.95, shape), rng.uniform(0, 1, shape)
    loss = losses.BinaryCrossentropy()
    expected = (-y / p + (1 - y) / (1 - p)) / p.size
    np.testing.assert_allclose(loss.gradient(y, p), expected, rtol=1e-12)
    np.testing.assert_allclose(numeric_grad(lambda a: loss(y, a), p), expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bce_gradient_is_zero_where_clipped_and_half_on_a_bound(dtype):
    """JAX's clip = minimum(maximum(p, lo), hi) splits a tie's gradient: exactly on
    1e-7 or 1 - 1e-7 (in p's own float type) the gradient is half the open one."""
    lo, hi = dtype(1e-7), dtype(1 - 1e-7)
    p = np.array([[0.0, 1.0, lo, hi, 0.25, 1e-9]], dtype=dtype)
    y = np.array([[1, 0, 0, 1, 1, 0]], dtype=dtype)
    grad = losses.BinaryCrossentropy().gradient(y, p)
    assert grad.dtype == dtype
    with np.errstate(divide="ignore"):
        open_ = (-y / p.astype("f8") + (1 - y) / (1 - p.astype("f8"))) / 6
    np.testing.assert_allclose(grad[0, :2], 0)
    np.testing.assert_allclose(grad[0, 2:4], 0.5 * open_[0, 2:4], rtol=1e-6)
    np.testing.assert_allclose(grad[0, 4], open_[0, 4], rtol=1e-6)
    assert grad[0, 5] == 0


def test_cce_gradient_is_half_where_the_renormalized_probability_is_on_a_bound():
    """The same tie rule through the renormalization (checked live against jax.grad
    below): p = [1e-7, 1 - 1e-7] sums to 1 exactly, so both are on a bound."""
    p = np.array([[1e-7, 1 - 1e-7], [0.5, 0.5]])
    y = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert p[0].sum() == 1.0
    expected = np.array([[0.5 / 2, (0.5 - 0.5 / (1 - 1e-7)) / 2], [-0.5, 0.5]])
    for grad in cce_gradients(y, p):
        np.testing.assert_allclose(grad, expected, rtol=1e-12)


def test_bce_from_logits_is_finite_for_huge_logits():
    z = np.array([[1000.0, -1000.0, 0.0, 30.0]])
    y = np.array([[0.0, 0.0, 1.0, 1.0]])
    loss = losses.BinaryCrossentropy(from_logits=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value, grad = loss(y, z), loss.gradient(y, z)
    assert value == pytest.approx((1000 + 0 + math.log(2) + math.log1p(math.exp(-30))) / 4,
                                  rel=1e-12)
    # (sigmoid(z) - y)/4, written without the cancellation of sigmoid(30) - 1
    np.testing.assert_allclose(grad, ((1 - y) * expit(z) - y * expit(-z)) / 4, rtol=1e-12,
                               atol=1e-300)
    assert grad[0, 3] == pytest.approx(-math.exp(-30) / (1 + math.exp(-30)) / 4, rel=1e-12)


def test_bce_from_logits_gradient_matches_central_differences():
    rng = np.random.default_rng(2)
    z, y = rng.normal(size=(3, 4)) * 3, rng.uniform(0, 1, (3, 4))
    loss = losses.BinaryCrossentropy(from_logits=True)
    np.testing.assert_allclose(loss.gradient(y, z), numeric_grad(lambda a: loss(y, a), z),
                               rtol=1e-6, atol=1e-10)


def test_bce_by_name_class_table_and_config():
    assert isinstance(losses.get("binary_crossentropy"), losses.BinaryCrossentropy)
    assert losses.CLASSES["BinaryCrossentropy"] is losses.BinaryCrossentropy
    assert losses.BinaryCrossentropy(from_logits=True).get_config() == {"from_logits": True}
    assert losses.BinaryCrossentropy().name == "binary_crossentropy"
    assert not isinstance(losses.BinaryCrossentropy(), losses.CategoricalCrossentropy)


@pytest.mark.parametrize("y_shape, output_shape", [((6,), (1,)), ((6, 2), (3,)),
                                                   ((6, 1, 3), (3,))])
def test_bce_targets_must_have_the_outputs_shape(y_shape, output_shape):
    loss = losses.BinaryCrossentropy()
    loss.check_targets(np.zeros((6,) + output_shape), output_shape, "Model 'm': fit() (y)")
    with pytest.raises(ValueError, match=r"Model 'm': fit\(\) \(y\)"):
        loss.check_targets(np.zeros(y_shape), output_shape, "Model 'm': fit() (y)")
    with pytest.raises(TypeError, match="Model 'm'"):
        loss.check_targets(np.array([["a"]] * 6), (1,), "Model 'm'")
    with pytest.raises(ValueError, match="same shape"):
        loss(np.zeros(y_shape), np.full((6,) + output_shape, 0.5))


# ============================================================================
# properties (hypothesis)
# ============================================================================
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

PROPS = settings(max_examples=60, deadline=None)


def _arrays(shape, low, high):
    return hnp.arrays(np.float64, shape, elements=st.floats(low, high, allow_nan=False))


@PROPS
@given(st.data())
def test_bce_from_logits_equals_bce_of_sigmoid_where_nothing_clips(data):
    shape = data.draw(st.sampled_from([(1, 1), (3, 1), (2, 4), (2, 2, 3)]))
    z = data.draw(_arrays(shape, -12, 12))
    y = data.draw(_arrays(shape, 0, 1))
    p = 1 / (1 + np.exp(-z))
    logits, probs = losses.BinaryCrossentropy(from_logits=True), losses.BinaryCrossentropy()
    assert logits(y, z) == pytest.approx(probs(y, p), rel=1e-9, abs=1e-12)
    assert logits(y, z) >= 0
    # chain rule through the sigmoid: dL/dz = dL/dp * p (1 - p)
    np.testing.assert_allclose(logits.gradient(y, z), probs.gradient(y, p) * p * (1 - p),
                               rtol=1e-7, atol=1e-15)


@PROPS
@given(st.data())
def test_cross_entropy_gradients_match_central_differences(data):
    k = data.draw(st.integers(2, 4))
    n = data.draw(st.integers(1, 3))
    kind = data.draw(st.sampled_from(["bce", "cce", "cce_logits", "bce_logits"]))
    if kind.endswith("logits"):
        x = data.draw(_arrays((n, k), -5, 5))
    else:
        x = data.draw(_arrays((n, k), 0.1, 0.9))  # central differences need p away from 0
    y = data.draw(_arrays((n, k), 0, 1))
    loss = {"bce": losses.BinaryCrossentropy(), "cce": losses.CategoricalCrossentropy(),
            "cce_logits": losses.CategoricalCrossentropy(from_logits=True),
            "bce_logits": losses.BinaryCrossentropy(from_logits=True)}[kind]
    np.testing.assert_allclose(loss.gradient(y, x), numeric_grad(lambda a: loss(y, a), x),
                               rtol=1e-5, atol=1e-8)


# ============================================================================
# live: Keras 3 (JAX backend, CPU) computes the same values and jax.grad gradients
# ============================================================================
# Keras 3.15 on numpy 2 warns about its own Variable.__array__ in get_weights().
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


# the `keras` fixture (Keras 3 on JAX, or a skip) is tests/conftest.py's


def _probs(rng, shape, normalized):
    """Probabilities with every edge case Keras's clip has: exact 0 and 1, below and
    above the limits, and values away from them."""
    p = rng.uniform(0.01, 1.0, shape)
    if normalized:
        p /= p.sum(axis=-1, keepdims=True)
    flat = p.reshape(-1)
    flat[:6] = [0.0, 1.0, 1e-9, 1 - 1e-9, 0.5, 1e-3]
    return p


def _loss_case(name, rng, dtype):
    """(Keras class name, kwargs, y_true, y_pred) for a case id."""
    k = 4
    if name.startswith("bce"):
        shape = {"bce_n1": (7, 1), "bce_nk": (5, k), "bce_4d": (3, 2, 2, k)}[name[:6]]
        y = rng.integers(0, 2, shape).astype(dtype)
        y.reshape(-1)[-2:] = [0.3, 0.8]  # soft targets too
        if name.endswith("logits"):
            z = rng.normal(size=shape) * 6
            z.reshape(-1)[:3] = [40.0, -40.0, 0.0]
            return "BinaryCrossentropy", {"from_logits": True}, y, z.astype(dtype)
        return "BinaryCrossentropy", {}, y, _probs(rng, shape, False).astype(dtype)
    labels = rng.integers(0, k, 6)
    labels[:2] = [1, 0]  # row 0 has p = 0 on its class, row 1 has p = 1
    sparse = name.startswith("sparse")
    y = labels.reshape(-1, 1) if name.endswith("n1") else labels if sparse \
        else np.eye(k, dtype=dtype)[labels]
    cls = "SparseCategoricalCrossentropy" if sparse else "CategoricalCrossentropy"
    if "soft" in name:
        y = rng.uniform(0, 1, (6, k)).astype(dtype)  # rows need not sum to 1
    if "logits" in name:
        z = rng.normal(size=(6, k)) * 5
        z[0] = [30.0, -30.0, 0.0, 3.0]
        return cls, {"from_logits": True}, y, z.astype(dtype)
    return cls, {}, y, _probs(rng, (6, k), normalized="raw" not in name).astype(dtype)


LOSS_CASES = ["bce_n1", "bce_nk", "bce_4d", "bce_n1_logits", "bce_nk_logits", "bce_4d_logits",
              "cce", "cce_raw", "cce_soft", "cce_logits", "cce_soft_logits",
              "sparse_n", "sparse_n1", "sparse_logits", "sparse_n1_logits", "mse"]


def _keras_value_and_grad(keras, cls, kwargs, y, p, x64):
    import jax
    with jax.enable_x64(x64):
        loss = getattr(keras.losses, cls)(dtype="float64" if x64 else None, **kwargs)
        # jitted: one XLA compilation instead of one per primitive (seconds, eagerly)
        value, grad = jax.jit(jax.value_and_grad(lambda q: loss(y, q)))(p)
        return float(value), np.asarray(grad)


@pytest.mark.parametrize("x64", [True, False], ids=["float64", "float32"])
@pytest.mark.parametrize("case", LOSS_CASES)
def test_loss_value_and_gradient_match_keras(keras, case, x64):
    """Keras's value and jax.grad of it, in float64 (JAX x64; Keras's ops.mean still
    goes through float32, so BCE and MSE agree to ~1e-7 there) and in float32 (Keras's
    default)."""
    dtype = np.float64 if x64 else np.float32
    rng = np.random.default_rng(LOSS_CASES.index(case))
    if case == "mse":
        cls, kwargs = "MeanSquaredError", {}
        y, p = rng.normal(size=(5, 3)).astype(dtype), rng.normal(size=(5, 3)).astype(dtype)
    else:
        cls, kwargs, y, p = _loss_case(case, rng, dtype)
    expected, expected_grad = _keras_value_and_grad(keras, cls, kwargs, y, p, x64)
    ours = getattr(losses, cls)(**kwargs)
    value, grad = ours(y, p), ours.gradient(y, p)
    assert grad.dtype == dtype and grad.shape == p.shape
    exact = x64 and cls.endswith("CategoricalCrossentropy")
    rtol = 1e-12 if exact else 2e-6 if x64 else 2e-5
    assert value == pytest.approx(expected, rel=rtol)
    scale = np.abs(expected_grad).max()
    np.testing.assert_allclose(grad, expected_grad, rtol=rtol, atol=rtol * scale * 1e-3)


@pytest.mark.parametrize("x64", [True, False], ids=["float64", "float32"])
@pytest.mark.parametrize("cls", ["BinaryCrossentropy", "CategoricalCrossentropy"])
def test_gradient_on_a_clip_bound_matches_keras(keras, cls, x64):
    """Exactly on 1e-7 or 1 - 1e-7 (in the array's float type) jax.grad gives half."""
    dtype = np.float64 if x64 else np.float32
    p = np.array([[1e-7, 1 - 1e-7], [0.5, 0.5]], dtype=dtype)
    y = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=dtype)
    _, expected = _keras_value_and_grad(keras, cls, {}, y, p, x64)
    np.testing.assert_allclose(getattr(losses, cls)().gradient(y, p), expected, rtol=1e-6)


@pytest.mark.parametrize("loss_name, activation, units, target", [
    ("bce", "sigmoid", 1, "binary"),
    ("bce", "sigmoid", 3, "multi"),
    ("bce_logits", None, 3, "multi"),
    ("cce_logits", None, 3, "one_hot"),
    ("sparse_logits", None, 3, "sparse"),
])
def test_one_training_step_matches_keras(keras, loss_name, activation, units, target):
    """A Dense model, the same weights, one SGD step on one batch: Keras's reported loss
    and new weights (the loss's gradient walked back through the model)."""
    import minicnn as mc
    rng = np.random.default_rng(7)
    x = rng.normal(size=(8, 5)).astype("f4") * 2
    y = {"binary": rng.integers(0, 2, (8, 1)).astype("f4"),
         "multi": rng.integers(0, 2, (8, 3)).astype("f4"),
         "one_hot": np.eye(3, dtype="f4")[rng.integers(0, 3, 8)],
         "sparse": rng.integers(0, 3, 8)}[target]

    def make_loss(module):
        cls = {"bce": "BinaryCrossentropy", "cce": "CategoricalCrossentropy",
               "sparse": "SparseCategoricalCrossentropy"}[loss_name.split("_")[0]]
        return getattr(module, cls)(from_logits=loss_name.endswith("logits"))

    k_model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(units, activation)])
    k_model.compile(keras.optimizers.SGD(0.5), make_loss(keras.losses))
    ours = mc.Sequential([mc.layers.Dense(units, activation=activation, input_shape=(5,))])
    ours.set_weights(k_model.get_weights())
    ours.compile(mc.optimizers.SGD(0.5), make_loss(losses))
    expected = float(k_model.train_on_batch(x, y))
    assert ours.train_on_batch(x, y) == pytest.approx(expected, rel=1e-5)
    for a, b in zip(ours.get_weights(), k_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
