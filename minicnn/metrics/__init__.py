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
from ..backend import floatx, get_array_module
from .functions import (_RESULT, accuracy, accuracy_values, binary_accuracy,  # noqa: F401
                        categorical_accuracy, in_top_k, is_binary_or_sparse_categorical,
                        mean_absolute_error, mean_squared_error, per_sample,
                        sparse_categorical_accuracy, sparse_top_k_categorical_accuracy,
                        top_k_categorical_accuracy)


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


class MeanAbsoluteError(Metric):
    """The mean of ``|y_true - y_pred|`` (Keras's ``mae``; a regression head's metric)."""

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(name, dtype)

    def fn(self, y_true, y_pred):
        return mean_absolute_error(y_true, y_pred)


class MeanSquaredError(Metric):
    """The mean of ``(y_true - y_pred)**2``."""

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(name, dtype)

    def fn(self, y_true, y_pred):
        return mean_squared_error(y_true, y_pred)


# the metric classes (a closed table: looked up here only, never as attributes)
CLASSES = {cls.__name__: cls for cls in (
    Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
    TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, MeanAbsoluteError,
    MeanSquaredError)}

# the strings keras.metrics.get knows for them: class names and their snake_case
_BY_NAME = dict(CLASSES, **{
    "accuracy": Accuracy, "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError})

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
