"""The metric functions, as ``keras.metrics.*`` compute them: the accuracies (with
Keras 3's rule for ``"accuracy"``, see ``minicnn.metrics``) and the regression errors.
Each returns Keras's element- or sample-wise values; ``per_sample`` reduces them to one
per sample, as Keras's ``Mean`` does before averaging."""
from ..backend import get_array_module

_RESULT = "float64"  # 0/1 per element: exact; their means are accumulated in float64


# ============================================================================
# the functions, as keras.metrics.* compute them
# ============================================================================
def _same_rank(y_true, y_pred):
    """Keras's ``squeeze_or_expand_to_same_rank`` (``expand_rank_1=True``): when the
    ranks differ by one and the longer has a last axis of 1, squeeze it (or, when the
    shorter is rank 1, expand that one instead)."""
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        if y_pred.ndim == 1:
            y_pred = y_pred[:, None]
        else:
            y_true = y_true.reshape(y_true.shape[:-1])
    if y_pred.ndim == y_true.ndim + 1 and y_pred.shape[-1] == 1:
        if y_true.ndim == 1:
            y_true = y_true[:, None]
        else:
            y_pred = y_pred.reshape(y_pred.shape[:-1])
    return y_true, y_pred


def _float(y_pred):
    return y_pred if y_pred.dtype.kind == "f" else y_pred.astype("float64")


# XLA on the CPU (where Keras-JAX runs its metrics) compares floats with subnormals
# flushed to zero (FTZ/DAZ): 1e-45 == 0 and 1e-40 < 1e-39 is False there. Softmax
# outputs of a confident model are often subnormal in float32, so top-k ranks and
# argmax ties follow this rule; minicnn flushes before it compares, as XLA does.
def _flushed(x):
    """``x`` with its subnormal values (either sign) replaced by 0, for comparing."""
    if x.dtype.kind != "f":
        return x
    xp = get_array_module(x)
    return xp.where(abs(x) < xp.finfo(x.dtype).tiny, xp.zeros((), x.dtype), x)


def _argmax(x):
    """Keras-JAX's ``ops.argmax`` on the CPU: the first maximum (the first NaN where
    there is one), in at least float32, with subnormals flushed to zero and every
    negative zero (-0.0 and the negative subnormals) moved to ``-tiny`` so that it loses
    to +0.0 (Keras's fix for the flush, jax-ml/jax#24280)."""
    if x.dtype.kind != "f":
        return x.argmax(axis=-1)
    xp = get_array_module(x)
    if x.dtype.itemsize < 4:
        x = x.astype("float32")
    tiny = xp.finfo(x.dtype).tiny
    zero_like = abs(x) < tiny
    x = xp.where(zero_like & xp.signbit(x), x.dtype.type(-tiny),
                 xp.where(zero_like, xp.zeros((), x.dtype), x))
    return x.argmax(axis=-1)


def accuracy(y_true, y_pred):
    """``y_true == y_pred`` element-wise (Keras's ``Accuracy``: exact equality, for
    class ids; on probabilities it is almost always 0)."""
    xp = get_array_module(y_pred)
    y_pred = _float(xp.asarray(y_pred))
    y_true = xp.asarray(y_true).astype(y_pred.dtype)
    y_true, y_pred = _same_rank(y_true, y_pred)
    return (_flushed(y_true) == _flushed(y_pred)).astype(_RESULT)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """``(y_pred > threshold) == y_true`` element-wise: strictly greater (0.5 is class
    0), compared in ``y_pred``'s float type, and ``y_true`` is compared exactly (a soft
    target 0.7 never matches)."""
    xp = get_array_module(y_pred)
    y_pred, y_true = _float(xp.asarray(y_pred)), xp.asarray(y_true)
    y_true, y_pred = _same_rank(y_true, y_pred)
    predicted = (_flushed(y_pred) > y_pred.dtype.type(threshold)).astype(y_true.dtype)
    return (_flushed(y_true) == predicted).astype(_RESULT)


def categorical_accuracy(y_true, y_pred):
    """``argmax(y_true) == argmax(y_pred)`` over the last axis (ties: the first
    maximum, in both), one value per sample (per position of a dense output)."""
    xp = get_array_module(y_pred)
    y_true, y_pred = _argmax(xp.asarray(y_true)), xp.asarray(y_pred)
    shape = y_true.shape
    if y_true.ndim == y_pred.ndim:  # Keras: targets one rank above the outputs
        y_true = y_true.reshape(y_true.shape[:-1])
    matches = (y_true == _argmax(y_pred)).astype(_RESULT)
    return matches.reshape(shape) if y_true.shape != shape else matches


def sparse_categorical_accuracy(y_true, y_pred):
    """``label == argmax(y_pred)``, labels of shape (N,) or (N, 1) compared as
    ``y_pred``'s float type (a label 2.0 matches class 2, 1.5 matches nothing)."""
    xp = get_array_module(y_pred)
    y_pred = _float(xp.asarray(y_pred))
    y_true = xp.asarray(y_true).astype(y_pred.dtype)
    shape = y_true.shape
    squeezed = y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1
    if squeezed:
        y_true = y_true.reshape(y_true.shape[:-1])
    matches = (y_true == _argmax(y_pred).astype(y_pred.dtype)).astype(_RESULT)
    if squeezed:
        matches = matches.reshape(shape)
    if matches.ndim > 1 and matches.shape[-1] == 1:
        matches = matches.reshape(matches.shape[:-1])
    return matches


def in_top_k(targets, predictions, k):
    """Keras-JAX's ``ops.in_top_k``: the target's rank is 1 + the number of classes
    scored *strictly* higher, so ties are all in (equal scores: every class is top-1);
    a NaN score at the target counts as -inf. Targets are indices as JAX's gather takes
    them: a negative one counts from the end (-1 is the last class), and one outside
    [-classes, classes) has no score (JAX fills NaN), so it is in only when k exceeds
    the number of classes."""
    xp = get_array_module(predictions)
    predictions = _flushed(predictions)
    classes = predictions.shape[-1]
    targets = xp.where(targets < 0, targets + classes, targets)
    valid = (targets >= 0) & (targets < classes)
    at = xp.take_along_axis(predictions, xp.where(valid, targets, 0)[:, None], axis=-1)
    at = xp.where(valid[:, None] & ~xp.isnan(at), at, -xp.inf)
    rank = 1 + (predictions > at).sum(axis=-1)
    return rank <= k


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """Whether ``argmax(y_true)`` is among the ``k`` highest scores (``in_top_k``)."""
    xp = get_array_module(y_pred)
    y_pred = xp.asarray(y_pred)
    y_true = _argmax(xp.asarray(y_true))
    shape = y_true.shape
    matches = in_top_k(y_true.reshape(-1).astype("int32"),
                       y_pred.reshape(-1, y_pred.shape[-1]), k)
    return matches.astype(_RESULT).reshape(shape)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5, from_sorted_ids=False):
    """Whether the integer label is among the ``k`` highest scores (labels cast to
    int32 as Keras does, so 2.7 is label 2). ``from_sorted_ids=True``: ``y_pred``
    holds class ids sorted by score, and a label matches when it is among the first
    ``k``."""
    xp = get_array_module(y_pred)
    y_pred = xp.asarray(y_pred)
    y_true = xp.asarray(y_true)
    shape = y_true.shape
    y_pred = y_pred.reshape(-1, y_pred.shape[-1]) if y_pred.ndim > 2 else y_pred
    if from_sorted_ids:
        labels = y_true.reshape(-1).astype(y_pred.dtype)
        matches = (labels[:, None] == y_pred[:, :k]).any(axis=1)
    else:
        matches = in_top_k(y_true.reshape(-1).astype("int32"), y_pred, k)
    return matches.astype(_RESULT).reshape(shape)


def per_sample(values):
    """One value per sample: the mean over every axis but the first (Keras's ``Mean``
    metric reduces a metric function's values so before averaging them)."""
    values = values.astype(_RESULT, copy=False)
    if values.ndim == 0:
        return values.reshape(1)
    return values.reshape(values.shape[0], -1).mean(axis=1) if values.ndim > 1 else values


def is_binary_or_sparse_categorical(y_true, y_pred):
    """Keras 3's rule for ``"accuracy"`` (compile_utils), from the shapes alone."""
    is_binary = y_pred.shape[-1] == 1
    is_sparse = (y_true.ndim < y_pred.ndim
                 or (y_true.shape[-1] == 1 and y_pred.shape[-1] > 1))
    return is_binary, is_sparse


def accuracy_values(y_true, y_pred):
    """Per-sample 1.0 / 0.0 correctness of ``metrics=["accuracy"]``, resolved by
    Keras 3's shape rule (``is_binary_or_sparse_categorical``):

    - a single output unit (N, 1): binary accuracy, ``(y_pred > 0.5) == y_true``
    - integer labels (N,) or (N, 1) with y_pred (N, K): label == argmax(y_pred)
    - one-hot (or soft) targets shaped like y_pred: argmax(y_true) == argmax(y_pred)
    """
    xp = get_array_module(y_pred)
    y_true, y_pred = xp.asarray(y_true), xp.asarray(y_pred)
    is_binary, is_sparse = is_binary_or_sparse_categorical(y_true, y_pred)
    if is_binary:
        return per_sample(binary_accuracy(y_true, y_pred))
    if is_sparse:
        return per_sample(sparse_categorical_accuracy(y_true, y_pred))
    return per_sample(categorical_accuracy(y_true, y_pred))


def mean_absolute_error(y_true, y_pred):
    """``mean(|y_true - y_pred|)`` over the last axis (Keras's ``mae``)."""
    y_true, y_pred = _same_rank(y_true, _float(y_pred))
    return abs(y_true - y_pred).mean(axis=-1)


def mean_squared_error(y_true, y_pred):
    """``mean((y_true - y_pred)**2)`` over the last axis (Keras's ``mse`` metric)."""
    y_true, y_pred = _same_rank(y_true, _float(y_pred))
    return ((y_true - y_pred) ** 2).mean(axis=-1)
