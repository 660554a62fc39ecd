"""A model's data as it takes it: one array per input and per output.

A model with one input takes an array; with several, a list in the order of
``model.inputs`` or a dict keyed by the inputs' names (``Input(name=...)``). Targets
likewise, by the outputs' names (the names of the layers that make them); an output
compiled without a loss or metrics takes None. These helpers put ``x`` and ``y`` in that form
once, when ``fit``/``evaluate``/``predict``/``train_on_batch`` receive them, and
count, slice and name them in the loop, so the loop reads the same for one array as
for several.
"""
import numpy as np

from .backend import as_array


def _who(model):
    return f"{type(model).__name__} '{model.name}'"


def _structured(model, data, names, single, label, what, optional=()):
    if isinstance(data, dict):
        missing = [n for n in names if n not in data and n not in optional]
        unknown = sorted(set(data) - set(names))
        if missing or unknown:
            raise ValueError(f"{_who(model)}: {what} expects {label} keyed by {names}. "
                             f"Received keys {sorted(data)}")
        data = [data.get(n) for n in names]
    elif single:
        return as_array(data)
    if not isinstance(data, (list, tuple)) or len(data) != len(names):
        count = len(data) if isinstance(data, (list, tuple)) else "one array"
        raise ValueError(f"{_who(model)}: {what} expects {label} as a list of {len(names)} "
                         f"arrays (for {names}) or a dict keyed by those names. Received: "
                         f"{count}")
    arrays = []
    for name, a in zip(names, data):
        if a is None and name not in optional:
            raise ValueError(f"{_who(model)}: {what} received None for {label} "
                             f"{name!r}, which the model needs")
        arrays.append(None if a is None else as_array(a))
    return arrays[0] if single else arrays


def inputs(model, x, what):
    """``x`` as the model takes it: an array, or a list in the inputs' order."""
    return _structured(model, x, model.input_names, model._single_input, "x", what)


def targets(model, y, what):
    """``y`` as the compiled model takes it: an array, or a list in the outputs' order
    (None for an output without a loss)."""
    optional = [o.prefix[:-1] for o in model._objectives
                if o.loss is None and not o.metric_fns]
    return _structured(model, y, model.output_names, model._single_output, "y", what,
                       optional)


def arrays(data):
    return [a for a in (data if isinstance(data, list) else [data]) if a is not None]


def rows(data):
    """The number of samples (of the first array)."""
    return len(arrays(data)[0])


def take(data, index):
    """The samples ``index`` (a slice or an index array) of every array."""
    if isinstance(data, list):
        return [None if a is None else a[index] for a in data]
    return data[index]


def named(label, data, names):
    """``(name, array)`` pairs for messages: ``x`` for one array, ``x['name']``
    for each of several."""
    if not isinstance(data, list):
        return [(label, data)]
    return [(f"{label}[{name!r}]", a) for name, a in zip(names, data) if a is not None]


def check_counts(model, x, y, what):
    """Every input and target holds the same number of samples, at least one."""
    counts = [len(a) for a in arrays(x)]
    target_counts = [len(a) for a in arrays(y)] if y is not None else []
    if len(set(counts + target_counts)) > 1:
        raise ValueError(f"{_who(model)}: x and y must have the same number of samples. "
                         f"Received: {counts if len(counts) > 1 else counts[0]} inputs and "
                         f"{target_counts if len(target_counts) > 1 else target_counts[0]} "
                         f"targets")
    if counts[0] == 0:
        raise ValueError(f"{_who(model)}: received an empty dataset")


def sample_weights(model, y, sample_weight, class_weight, what):
    """One float64 weight per sample, or None: ``sample_weight`` as given (shape (N,)
    or (N, 1), finite, >= 0), or from ``class_weight`` ({class: weight}) by each
    target's class (the label, or the argmax of a one-hot row; one output only), as
    Keras makes them; not both at once (Keras refuses that too)."""
    count = rows(y)
    if sample_weight is not None and class_weight is not None:
        raise ValueError(f"{_who(model)}: {what} takes sample_weight or class_weight, not "
                         f"both (as Keras)")
    weights = None
    if sample_weight is not None:
        weights = np.asarray(sample_weight, dtype=np.float64)
        if weights.shape not in ((count,), (count, 1)):
            raise ValueError(f"{_who(model)}: {what} expects sample_weight with one weight "
                             f"per sample, shape ({count},). Received: shape "
                             f"{weights.shape}")
        weights = weights.reshape(count)
    if class_weight is not None:
        if not isinstance(class_weight, dict) or not model._single_output:
            raise ValueError(f"{_who(model)}: {what} expects class_weight as a dict "
                             f"{{class: weight}} for a model with one output. Received: "
                             f"{str(class_weight)[:80]}")
        targets = np.asarray(y if not isinstance(y, list) else y[0])
        classes = (targets.argmax(axis=-1) if targets.ndim > 1 and targets.shape[-1] > 1
                   else targets.reshape(count)).astype(np.int64)
        missing = sorted(set(classes.tolist()) - {int(k) for k in class_weight})
        if missing:
            raise ValueError(f"{_who(model)}: {what}: class_weight has no weight for the "
                             f"classes {missing[:10]} found in y")
        table = {int(k): float(v) for k, v in class_weight.items()}
        by_class = np.array([table[c] for c in classes.tolist()], dtype=np.float64)
        weights = by_class
    if weights is not None and not (np.isfinite(weights).all() and (weights >= 0).all()):
        raise ValueError(f"{_who(model)}: {what} received sample weights that are "
                         f"negative, NaN or Inf")
    return weights
