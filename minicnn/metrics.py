"""Accuracy metrics as Keras 3 computes them, by name and as objects.

``metrics=["accuracy"]`` (or ``"acc"``, any case) in ``compile``: Keras 3.15
(``keras/src/trainers/compile_utils.py``, ``get_metric`` and
``is_binary_or_sparse_categorical``) picks the accuracy from the **shapes** of the
targets and the outputs alone; the loss plays no part:

    binary       if  y_pred.shape[-1] == 1                       -> binary_accuracy
    sparse       elif rank(y_true) < rank(y_pred)
                      or (y_true.shape[-1] == 1 and y_pred.shape[-1] > 1)
                                                                 -> sparse_categorical_accuracy
    categorical  otherwise                                       -> categorical_accuracy

So a sigmoid output of 1 unit gets binary accuracy whatever the loss (mean squared
error included), ``binary_crossentropy`` on 4 sigmoid units gets *categorical*
accuracy, and binary accuracy thresholds whatever the outputs are (logits included,
with ``from_logits=True``) at 0.5. The log key is the string exactly as given
(``"acc"`` logs ``acc``, ``"ACC"`` logs ``ACC``). minicnn applies the rule to the
targets as the loss prepared them (sparse labels squeezed to ``(N,)``), which decides
every case as the raw targets do.

Other strings name a metric class as ``keras.metrics.get`` does: the class name or its
snake_case (``"binary_accuracy"``, ``"BinaryAccuracy"``, case-sensitive), with default
arguments; the log key is again the string as given. A metric object logs under its
``name`` (``TopKCategoricalAccuracy(k=2)`` -> ``top_k_categorical_accuracy``;
``Accuracy()`` is Keras's *exact equality* ``y_true == y_pred``, not argmax). When
several metrics share a key, Keras logs the later ones as ``key_1``, ``key_2``, ...:
``unique_names`` makes those keys (for compile to apply).

Comparisons follow XLA on the CPU, where Keras-JAX computes them: subnormal floats
count as zero (1e-40 ties with 0 and with 1e-39), and argmax puts a negative zero
below +0.0 (Keras's own fix). Ties go to the first maximum; in top-k every class tied
with the target is in.

The functions (``binary_accuracy`` ...) return what Keras's do, element- or
sample-wise; compile uses ``(name, fn)`` from ``get``, where ``fn(y_true, y_pred)``
gives one value per sample (the mean over every axis but the first, as Keras's
``Mean`` reduces them), so that a batch's value is their mean.
"""
from .backend import floatx, get_array_module

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


# ============================================================================
# metric objects
# ============================================================================
class Metric:
    """A Keras-style stateful mean of per-sample values: ``update_state`` adds a batch,
    ``result()`` is the mean so far (a Python float), ``reset_state`` forgets;
    ``metric(y_true, y_pred)`` updates and returns the result, as in Keras.
    ``per_sample(y_true, y_pred)`` is the stateless function compile uses."""

    def __init__(self, name, dtype=None):
        self.name = name
        self.dtype = dtype or floatx()
        self.reset_state()

    def fn(self, y_true, y_pred):
        raise NotImplementedError

    def per_sample(self, y_true, y_pred):
        return per_sample(self.fn(y_true, y_pred))

    def reset_state(self):
        self._total, self._count = 0.0, 0.0

    def update_state(self, y_true, y_pred, sample_weight=None):
        xp = get_array_module(y_pred)
        values = self.per_sample(xp.asarray(y_true), xp.asarray(y_pred))
        if sample_weight is None:
            self._total += float(values.sum())
            self._count += values.shape[0]
            return
        weights = xp.asarray(sample_weight, dtype=_RESULT).reshape(-1)
        if weights.shape[0] not in (1, values.shape[0]):
            raise ValueError(f"{type(self).__name__}: sample_weight must hold one weight per "
                             f"sample ({values.shape[0]}). Received: sample_weight.shape="
                             f"{tuple(xp.asarray(sample_weight).shape)}")
        weights = xp.broadcast_to(weights, values.shape)
        self._total += float((values * weights).sum())
        self._count += float(weights.sum())

    def result(self):
        return self._total / self._count if self._count else 0.0

    def __call__(self, y_true, y_pred, sample_weight=None):
        self.update_state(y_true, y_pred, sample_weight=sample_weight)
        return self.result()

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


class Accuracy(Metric):
    """Keras's ``Accuracy``: how often ``y_true == y_pred`` exactly."""

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(name, dtype)

    def fn(self, y_true, y_pred):
        return accuracy(y_true, y_pred)


class BinaryAccuracy(Metric):
    """How often ``(y_pred > threshold) == y_true``."""

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        self.threshold = threshold
        super().__init__(name, dtype)

    def fn(self, y_true, y_pred):
        return binary_accuracy(y_true, y_pred, self.threshold)

    def get_config(self):
        return dict(super().get_config(), threshold=self.threshold)


class CategoricalAccuracy(Metric):
    """How often ``argmax(y_true) == argmax(y_pred)`` (one-hot targets)."""

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(name, dtype)

    def fn(self, y_true, y_pred):
        return categorical_accuracy(y_true, y_pred)


class SparseCategoricalAccuracy(Metric):
    """How often the integer label equals ``argmax(y_pred)``."""

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(name, dtype)

    def fn(self, y_true, y_pred):
        return sparse_categorical_accuracy(y_true, y_pred)


class TopKCategoricalAccuracy(Metric):
    """How often ``argmax(y_true)`` is among the ``k`` highest scores."""

    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        self.k = k
        super().__init__(name, dtype)

    def fn(self, y_true, y_pred):
        return top_k_categorical_accuracy(y_true, y_pred, self.k)

    def get_config(self):
        return dict(super().get_config(), k=self.k)


class SparseTopKCategoricalAccuracy(Metric):
    """How often the integer label is among the ``k`` highest scores."""

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None,
                 from_sorted_ids=False):
        self.k, self.from_sorted_ids = k, from_sorted_ids
        super().__init__(name, dtype)

    def fn(self, y_true, y_pred):
        return sparse_top_k_categorical_accuracy(y_true, y_pred, self.k,
                                                 self.from_sorted_ids)

    def get_config(self):
        config = dict(super().get_config(), k=self.k)
        if self.from_sorted_ids:
            config["from_sorted_ids"] = True
        return config


# the metric classes (a closed table: looked up here only, never as attributes)
CLASSES = {cls.__name__: cls for cls in (
    Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
    TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy)}

# the strings keras.metrics.get knows for them: class names and their snake_case
_BY_NAME = dict(CLASSES, **{
    "accuracy": Accuracy, "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy})

_AUTO = ("accuracy", "acc")  # resolved from the shapes, any case (Keras's rule)


def _function_metric(fn):
    def values(y_true, y_pred):
        return per_sample(get_array_module(y_pred).asarray(fn(y_true, y_pred)))
    return values


def get(identifier, loss=None):
    """A metric as ``compile`` takes it -> ``(log name, fn)``, ``fn(y_true, y_pred)``
    giving per-sample values.

    - ``"accuracy"`` / ``"acc"`` (any case): ``accuracy_values``, which applies Keras
      3's shape rule (module docstring) to every batch; the name is the string as given
    - another string: a metric class by its name or snake_case name (Keras's table,
      case-sensitive), with its defaults; the name is the string as given
    - a ``Metric`` object (or class, made with its defaults): its ``name``
    - a function ``fn(y_true, y_pred)`` (``metrics.binary_accuracy``, or one's own):
      its ``__name__``; its values are reduced to one per sample

    ``loss``: the compiled loss, accepted so that compile can pass it. Keras 3 does not
    consult it (its rule reads only the shapes; checked on Keras 3.15.1), and neither
    does minicnn.
    """
    del loss  # see the docstring: Keras 3 resolves "accuracy" from the shapes alone
    if isinstance(identifier, str):
        if identifier.lower() in _AUTO:
            return identifier, accuracy_values
        if identifier in _BY_NAME:
            return identifier, _BY_NAME[identifier]().per_sample
    elif isinstance(identifier, type) and issubclass(identifier, Metric):
        metric = identifier()
        return metric.name, metric.per_sample
    elif isinstance(identifier, Metric):
        return identifier.name, identifier.per_sample
    elif callable(identifier) and isinstance(getattr(identifier, "__name__", None), str):
        return identifier.__name__, _function_metric(identifier)
    raise ValueError(f"unknown metric; expected a Metric instance, a function or one of "
                     f"{sorted(set(_BY_NAME) | set(_AUTO))}. Received: metric={identifier!r}")


def unique_names(names):
    """Log keys as Keras 3 makes them when several metrics share a name: the first
    keeps it, later ones get ``_1``, ``_2``, ... (``["acc", "acc"]`` ->
    ``["acc", "acc_1"]``)."""
    seen, out = {}, []
    for name in names:
        if name not in seen:
            seen[name] = 1
            out.append(name)
        else:
            out.append(f"{name}_{seen[name]}")
            seen[name] += 1
    return out
