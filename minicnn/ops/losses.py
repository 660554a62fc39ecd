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
"""
from ..backend import get_array_module

EPSILON = 1e-7  # keras.config.epsilon()


def _renormalize_and_clip(p):
    xp = get_array_module(p)
    s = p.sum(axis=-1, keepdims=True)
    q = p / s
    return s, q, xp.clip(q, EPSILON, 1 - EPSILON)


def categorical_crossentropy(y_true, y_pred):
    """Per-sample Keras cross-entropy of probabilities ``y_pred`` (..., K) against
    one-hot (or soft) targets ``y_true``. Returns an array of shape ``y_pred.shape[:-1]``."""
    xp = get_array_module(y_pred)
    _, _, q = _renormalize_and_clip(y_pred)
    return -(y_true * xp.log(q)).sum(axis=-1)


def categorical_crossentropy_backward(y_true, y_pred):
    """Gradient of the batch-mean Keras cross-entropy with respect to ``y_pred``."""
    s, q, clipped = _renormalize_and_clip(y_pred)
    open_ = (q == clipped)  # False where clipping replaced the value
    n = y_pred.size // y_pred.shape[-1]
    xp = get_array_module(y_pred)
    yo = y_true * open_
    # Where q was clipped (q = 0 included) its term is 0; divide by 1 there, not by q.
    return (yo.sum(axis=-1, keepdims=True) - yo / xp.where(open_, q, 1)) / (s * n)


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
