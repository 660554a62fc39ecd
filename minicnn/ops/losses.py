"""Losses as Keras 3 computes them, and their gradients.

Cross-entropy on probabilities follows Keras exactly:

    1. renormalize   p <- p / sum(p)           (rows that do not sum to 1 are rescaled)
    2. clip          p <- clip(p, 1e-7, 1 - 1e-7)
    3. loss          L_n = -sum_k y_k log p_k,   and the batch loss is mean_n L_n

Its gradient with respect to the probabilities is the derivative of exactly
these three steps. With ``S = sum(p)``, ``q = p / S`` and ``open_k = 1`` where
``q_k`` was not clipped (a clipped value is a constant, so its derivative is 0):

    dL/dp_j = ( sum_k y_k open_k  -  y_j open_j / q_j ) / (S * N)

For a one-hot row this is ``(1 - 1/p_true)/N`` on the true class and ``1/N``
elsewhere, and the whole row is 0 where the true class was clipped.

Softmax followed by cross-entropy has the famous simple gradient
``dL/dz = (p - y) / N``. ``softmax_cross_entropy_*`` use it directly: it needs no
division by p, so it stays finite and exact for logits in the thousands.

Deliberate difference from Keras: where Keras's clipping is active for a row
(true-class probability below 1e-7 or above 1 - 1e-7), Keras's gradient through
softmax is exactly 0 for that row. The fused gradient here keeps the true
``(p - y)/N`` instead, so a confidently *wrong* sample still teaches the model
(for a confidently right one the difference is below 1e-7/N). The loss *value*
is Keras's in both cases. The unfused path (``categorical_crossentropy_backward``
then ``activation_backward(..., softmax)``) reproduces Keras's zero rows exactly.

Clipping's derivative, as JAX's autodiff of ``jnp.clip`` gives it (verified with
``jax.grad``): 1 strictly inside [1e-7, 1 - 1e-7], 0 outside, and **1/2 on a bound
exactly** (``clip = minimum(maximum(p, lo), hi)`` and JAX splits a tie's gradient
between the two arguments). The bounds are taken in the array's own float type, as
JAX's weakly typed Python floats are (float32 1 - 1e-7 is 0.99999988).

Binary cross-entropy (Keras 3, ``keras.losses.binary_crossentropy``), per element then
averaged over the last axis; there is no renormalization:

    probabilities:  c = clip(p, 1e-7, 1 - 1e-7);   l = -(y log c + (1 - y) log(1 - c))
    logits:         l = y softplus(-z) + (1 - y) softplus(z)    (= -y log_sigmoid(z) - ...)

The batch loss is the mean over every element, so the gradients are
``(-y/c + (1 - y)/(1 - c)) * clip'(p) / size`` and ``((1 - y) sigmoid(z) - y sigmoid(-z)) / size``
(the latter is ``(sigmoid(z) - y) / size``, written so that it keeps its digits for
large ``|z|``, as JAX's autodiff of log_sigmoid does).

Categorical cross-entropy from logits is ``-sum_k y_k log_softmax(z)_k``; its gradient is
``(softmax(z) * sum_k y_k - y) / N``, which is ``(p - y) / N`` for targets that sum to 1.
"""
from ..backend import get_array_module

EPSILON = 1e-7  # keras.config.epsilon()


def _bounds(p):
    """The clip limits in ``p``'s own float type (as JAX casts Keras's Python floats)."""
    kind = p.dtype.type if p.dtype.kind == "f" else float
    return kind(EPSILON), kind(1 - EPSILON)


def _clip(p):
    xp = get_array_module(p)
    lo, hi = _bounds(p)
    return xp.clip(p, lo, hi)


def clip_derivative(p):
    """d clip(p, 1e-7, 1 - 1e-7) / dp as JAX computes it: 1 inside, 0 outside, 1/2 on a
    bound exactly (see the module docstring)."""
    lo, hi = _bounds(p)
    inside = (p > lo) & (p < hi)
    on_bound = (p == lo) | (p == hi)
    return inside.astype(p.dtype) + 0.5 * on_bound.astype(p.dtype)


def _renormalize_and_clip(p):
    s = p.sum(axis=-1, keepdims=True)
    q = p / s
    return s, q, _clip(q)


def categorical_crossentropy(y_true, y_pred):
    """Per-sample Keras cross-entropy of probabilities ``y_pred`` (..., K) against
    one-hot (or soft) targets ``y_true``. Returns an array of shape ``y_pred.shape[:-1]``."""
    xp = get_array_module(y_pred)
    _, _, q = _renormalize_and_clip(y_pred)
    return -(y_true * xp.log(q)).sum(axis=-1)


def categorical_crossentropy_backward(y_true, y_pred):
    """Gradient of the batch-mean Keras cross-entropy with respect to ``y_pred``."""
    s, q, clipped = _renormalize_and_clip(y_pred)
    open_ = clip_derivative(q)  # 0 where clipping replaced the value, 1/2 on a bound
    n = y_pred.size // y_pred.shape[-1]
    xp = get_array_module(y_pred)
    yo = y_true * open_
    # Where q was clipped (q = 0 included) its term is 0; divide by 1 there, not by q.
    return (yo.sum(axis=-1, keepdims=True) - yo / xp.where(open_ > 0, q, 1)) / (s * n)


def categorical_crossentropy_from_logits(y_true, logits):
    """Per-sample ``-sum_k y_k log_softmax(z)_k`` (max-shifted, as ``jax.nn.log_softmax``)."""
    xp = get_array_module(logits)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_p = shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))
    return -(y_true * log_p).sum(axis=-1)


def categorical_crossentropy_from_logits_backward(y_true, logits):
    """Gradient of the batch mean: ``(softmax(z) * sum_k y_k - y) / N``."""
    from .activations import softmax
    n = logits.size // logits.shape[-1]
    return (softmax(logits) * y_true.sum(axis=-1, keepdims=True) - y_true) / n


def binary_crossentropy(y_true, y_pred):
    """Per-sample Keras binary cross-entropy of probabilities: clip to [1e-7, 1 - 1e-7]
    (no renormalization), then the mean over the last axis."""
    xp = get_array_module(y_pred)
    c = _clip(y_pred)
    return (-(y_true * xp.log(c) + (1 - y_true) * xp.log(1 - c))).mean(axis=-1)


def binary_crossentropy_backward(y_true, y_pred):
    """Gradient of the batch mean (the mean over every element) with respect to the
    probabilities; 0 where clipped, half on a bound (JAX's rule)."""
    c = _clip(y_pred)
    return (-y_true / c + (1 - y_true) / (1 - c)) * clip_derivative(y_pred) / y_pred.size


def binary_crossentropy_from_logits(y_true, logits):
    """Per-sample ``mean_last(y softplus(-z) + (1 - y) softplus(z))``: finite for any
    finite logits (Keras: ``-y log_sigmoid(z) - (1 - y) log_sigmoid(-z)``)."""
    xp = get_array_module(logits)
    return (y_true * xp.logaddexp(0, -logits)
            + (1 - y_true) * xp.logaddexp(0, logits)).mean(axis=-1)


def binary_crossentropy_from_logits_backward(y_true, logits):
    """``((1 - y) sigmoid(z) - y sigmoid(-z)) / size`` = ``(sigmoid(z) - y) / size``."""
    from .activations import sigmoid
    return ((1 - y_true) * sigmoid(logits) - y_true * sigmoid(-logits)) / logits.size


def one_hot(labels, num_classes, dtype, owner="one_hot", checked=False):
    """Integer labels of shape (N,) or (N, 1) -> one-hot (N, num_classes).
    Integral floats (3.0) are accepted; anything else is an error naming ``owner``.
    ``checked=True``: the labels came from ``check_labels`` already (which reads their
    values, a wait for the GPU when they are on one), so they are used as they are."""
    xp = get_array_module(labels)
    if not checked:
        labels = check_labels(labels, num_classes, owner)
    return (labels[:, None] == xp.arange(num_classes)[None, :]).astype(dtype)


def check_labels(labels, num_classes, owner="one_hot"):
    """Sparse labels of shape (N,) or (N, 1), integers (or integral floats) in
    [0, num_classes), returned as an (N,) integer array; else an error naming ``owner``.
    A model checks its labels on the host, before they move to a GPU."""
    xp = get_array_module(labels)
    labels = labels.reshape(labels.shape[0], -1)
    if labels.shape[1] != 1:
        raise ValueError(f"{owner}: sparse labels must have shape (N,) or (N, 1). "
                         f"Received: labels.shape={labels.shape}")
    labels = labels[:, 0]
    if labels.dtype.kind not in "iu":
        whole = (xp.isfinite(labels) & (labels == xp.round(labels))) \
            if labels.dtype.kind == "f" else xp.zeros(labels.shape, dtype=bool)
        if not bool(whole.all()):
            first_bad = labels[int(xp.argmin(whole))]
            raise TypeError(f"{owner}: sparse labels must be integers. Received: dtype="
                            f"{labels.dtype}, e.g. label {first_bad!r}")
        labels = labels.astype(xp.int64)
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"{owner}: sparse labels must lie in [0, {num_classes}). Received: "
                         f"labels in [{int(labels.min())}, {int(labels.max())}]")
    return labels


def mean_squared_error(y_true, y_pred):
    """Per-sample mean of squared errors over the last axis (Keras's definition)."""
    return ((y_pred - y_true) ** 2).mean(axis=-1)


def mean_squared_error_backward(y_true, y_pred):
    """Gradient of the mean over all elements: ``2 (o - y) / size``."""
    return 2 * (y_pred - y_true) / y_pred.size


def softmax_cross_entropy_forward(logits, y_true):
    """Softmax of ``logits`` then Keras's cross-entropy, fused.

    Returns ``(loss, cache)`` with ``loss`` the batch mean (Keras's value).
    """
    from .activations import softmax
    p = softmax(logits)
    return categorical_crossentropy(y_true, p).mean(), (p, y_true)


def softmax_cross_entropy_backward(cache):
    """``dL/dlogits = (softmax(logits) - y) / N``: finite for any finite logits."""
    p, y_true = cache
    n = p.size // p.shape[-1]
    return (p - y_true) / n
