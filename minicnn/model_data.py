"""A model's data as it takes it: one array per input and per output.

A model with one input takes an array; with several, a list in the order of
``model.inputs`` or a dict keyed by the inputs' names (``Input(name=...)``). Targets
likewise, by the outputs' names (the names of the layers that make them); an output
compiled without a loss or metrics takes None. These helpers put ``x`` and ``y`` in that form
once, when ``fit``/``evaluate``/``predict``/``train_on_batch`` receive them, and
count, slice and name them in the loop, so the loop reads the same for one array as
for several.
"""
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
