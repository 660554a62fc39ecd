"""What ``fit``, ``evaluate`` and ``predict`` accept as data, checked before the first
step and made into ``EpochIterator``s (``minicnn.data_adapters``).

Arrays are checked whole, as before any step: shapes, NaN/Inf, every label, the
memory a step needs; ``validation_split`` takes the last samples, unshuffled (Keras's
rule). Streamed data (an iterable of batches, a PyDataset) brings its own batches,
so the arguments that describe arrays are refused with it, in Keras's words where
Keras refuses them too: ``y`` and ``sample_weight`` (they belong in the batches),
``validation_split`` (nothing to split), ``class_weight`` for a generator;
``batch_size`` is refused as well (Keras ignores it: "do not specify the
batch_size"). ``shuffle`` does not apply to an iterable (Keras's warning says so).
"""
import collections.abc
import math
import numbers
import warnings

from . import model_data, step_memory
from .data_adapters import (ArrayBatches, EpochIterator, check_steps,
                            check_targets, is_pydataset, is_streamed, named, source)


def _who(model):
    return f"{type(model).__name__} '{model.name}'"


def _describe(value):
    return f"{type(value).__name__} {value!r}"[:200]


def check_batch_size(model, what, batch_size, count=None, steps=None):
    """Keras's default for None: ``ceil(count / steps)`` when ``steps`` is given for
    arrays, else 32; otherwise a positive whole number."""
    if batch_size is None:
        return max(math.ceil(count / steps), 1) if steps and count else 32
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
            or batch_size < 1:
        raise ValueError(f"{_who(model)}: {what} expects batch_size to be a "
                         f"positive integer (or None for 32). Received: "
                         f"batch_size={batch_size!r}")
    return int(batch_size)


def _kind(data):
    if is_pydataset(data):
        return "PyDataset"
    return "generator" if isinstance(data, collections.abc.Iterator) else "iterable of batches"


def _stream(model, what, x, y, sample_weight, class_weight, batch_size, shuffle=False,
            rng=None):
    """The source of streamed ``x``, after refusing what only arrays take."""
    kind = _kind(x)
    a = "an" if kind.startswith("iterable") else "a"
    if y is not None:
        raise ValueError(f"{_who(model)}: When providing `x` as {a} {kind}, `y` should not be "
                         f"passed. Instead, the targets should be included as part of the "
                         f"{kind}.")
    if sample_weight is not None:
        raise ValueError(f"{_who(model)}: When providing `x` as {a} {kind}, `sample_weights` "
                         f"should not be passed. Instead, the sample weights should be "
                         f"included as part of the {kind}.")
    if class_weight is not None and kind == "generator":
        raise ValueError(f"{_who(model)}: Argument `class_weight` is not supported for "
                         f"Python generator inputs. Received: class_weight={class_weight}")
    if batch_size is not None:
        raise ValueError(f"{_who(model)}: {what} takes no batch_size when x is {a} {kind}: "
                         f"its batches come as it makes them. Received: "
                         f"batch_size={batch_size!r}")
    if shuffle and kind != "PyDataset":
        warnings.warn(f"`shuffle=True` was passed, but will be ignored since the data `x` "
                      f"was provided as {a} {kind}. The {kind} is expected to yield "
                      f"already-shuffled data.", stacklevel=5)
    return source(model, what, x, shuffle=shuffle, rng=rng)


def _arrays(model, what, x, y, sample_weight=None, class_weight=None):
    """Arrays as the model takes them, their shapes checked, one weight per sample."""
    if x is None or y is None:
        raise ValueError(f"{_who(model)}: {what} needs x and y (or x as an iterable of "
                         f"(x, y) batches or a PyDataset). Received: "
                         f"{'x' if x is None else 'y'}=None")
    x, y = model_data.inputs(model, x, what), model_data.targets(model, y, what)
    model._check_xy(x, y, what)
    return x, y, model_data.sample_weights(model, y, sample_weight, class_weight, what)


def fit_data(model, x, y, batch_size, steps_per_epoch, shuffle, rng, sample_weight,
             class_weight, validation_data, validation_split, validation_steps,
             check_numerics, epochs_left):
    """fit's training and validation data: two ``EpochIterator``s (validation: None)."""
    what = "fit()"
    steps_per_epoch = check_steps(model, what, "steps_per_epoch", steps_per_epoch)
    validation_steps = check_steps(model, what, "validation_steps", validation_steps)
    if isinstance(validation_split, bool) or not isinstance(validation_split, numbers.Real) \
            or not 0 <= validation_split < 1:
        raise ValueError(f"{_who(model)}: fit() expects validation_split to be a "
                         f"number in [0, 1). Received: validation_split={validation_split!r}")
    val_streamed = is_streamed(validation_data)
    if validation_data is not None and not val_streamed and (
            not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3)):
        raise ValueError(f"{_who(model)}: fit() expects validation_data=(x_val, y_val) or "
                         f"(x_val, y_val, sample_weight_val), a generator or a PyDataset. "
                         f"Received: {_describe(validation_data)}")
    if is_streamed(x):
        if validation_split:
            raise ValueError(f"{_who(model)}: Argument `validation_split` is only supported "
                             f"for tensors or NumPy arrays. Found incompatible type in the "
                             f"input: {type(x)}")
        train = EpochIterator(model, what, _stream(model, what, x, y, sample_weight,
                                                   class_weight, batch_size, shuffle, rng),
                              steps_per_epoch, check_numerics=check_numerics,
                              class_weight=class_weight, training=True)
        val_weights = val_batch = None
    else:
        x, y, weights = _arrays(model, what, x, y, sample_weight, class_weight)
        count = model_data.rows(x)
        val_weights = None
        if validation_split and validation_data is None:
            split = int(count * (1 - validation_split))  # Keras: the last samples, unshuffled
            if split in (0, count):
                raise ValueError(f"{_who(model)}: {count} samples cannot be split "
                                 f"into training and validation sets with validation_split="
                                 f"{validation_split}; use more data or a different split")
            validation_data = (model_data.take(x, slice(split, None)),
                               model_data.take(y, slice(split, None)))
            x, y = model_data.take(x, slice(0, split)), model_data.take(y, slice(0, split))
            if weights is not None:  # Keras splits the sample weights alike
                weights, val_weights = weights[:split], weights[split:]
            count = split
        batch_size = check_batch_size(model, what, batch_size, count, steps_per_epoch)
        val_batch = batch_size
        train = EpochIterator(model, what, ArrayBatches(x, y, weights, batch_size, shuffle, rng),
                              steps_per_epoch)
    val = None
    if validation_data is not None and not val_streamed:
        val = _validation_arrays(model, validation_data, val_weights)
        if train.source.streamed:  # Keras's batch size for them: 32, or from the steps
            val_batch = check_batch_size(model, what, None, model_data.rows(val[0]),
                                         validation_steps)
    # every value and every target, before the first step: a bad one changes no weight
    checked = [] if train.source.streamed else [(train.source.x, train.source.y, "")]
    checked += [] if val is None else [(val[0], val[1], "validation ")]
    if check_numerics and checked:
        model._check_finite(what, [pair for x_, y_, prefix in checked
                                   for pair in named(model, x_, y_, prefix)])
    for _, y_, prefix in checked:
        check_targets(model, y_, f"fit() ({prefix}y)")
    if not train.source.streamed:
        step_memory.check(model, min(train.source.batch_size, train.source.count), what,
                          training=True)
    if validation_data is None:
        return train, None
    if val is not None:
        return train, EpochIterator(model, "fit() (validation_data)",
                                    ArrayBatches(*val, val_batch), validation_steps)
    if epochs_left > 1 and validation_steps is None and _kind(validation_data) == "generator":
        raise ValueError(f"{_who(model)}: fit() received validation_data as a generator, "
                         f"which can be read once, for {epochs_left} epochs: pass "
                         f"validation_steps (each epoch then reads that many batches), or "
                         f"a PyDataset or a list of batches, which can be read again")
    return train, EpochIterator(model, "fit() (validation_data)",
                                source(model, "fit() (validation_data)", validation_data),
                                validation_steps, check_numerics=check_numerics)


def _validation_arrays(model, given, split_weights):
    """Validation arrays ``(x, y, weights)``: the split's, or validation_data's."""
    x = model_data.inputs(model, given[0], "fit() (validation x)")
    y = model_data.targets(model, given[1], "fit() (validation y)")
    model._check_xy(x, y, "fit() (validation_data)")
    if len(given) == 3 and given[2] is not None:
        return x, y, model_data.sample_weights(model, y, given[2], None,
                                               "fit() (validation_data)")
    return x, y, split_weights


def evaluate_data(model, x, y, batch_size, steps, sample_weight, check_numerics,
                  what="evaluate()"):
    """evaluate's data as an ``EpochIterator``, checked."""
    steps = check_steps(model, what, "steps", steps)
    if is_streamed(x):
        return EpochIterator(model, what, _stream(model, what, x, y, sample_weight, None,
                                                  batch_size), steps,
                             check_numerics=check_numerics)
    x, y, weights = _arrays(model, what, x, y, sample_weight)
    if check_numerics:
        model._check_finite(what, named(model, x, y))
    check_targets(model, y, f"{what} (y)")
    count = model_data.rows(x)
    batch_size = check_batch_size(model, what, batch_size, count, steps)
    step_memory.check(model, min(batch_size, count), what, training=False)
    return EpochIterator(model, what, ArrayBatches(x, y, weights, batch_size), steps)


def predict_data(model, x, batch_size, steps):
    """predict's data as an ``EpochIterator`` (batches of x; a y in them is unused)."""
    what = "predict()"
    steps = check_steps(model, what, "steps", steps)
    if is_streamed(x):
        return EpochIterator(model, what, _stream(model, what, x, None, None, None,
                                                  batch_size), steps, targets=False)
    x = model_data.inputs(model, x, what)
    model._check_samples(x, what)
    count = model_data.rows(x)
    batch_size = check_batch_size(model, what, batch_size, count, steps)
    if count:
        step_memory.check(model, min(batch_size, count), what, training=False)
    return EpochIterator(model, what, ArrayBatches(x, None, None, batch_size), steps,
                         targets=False)


__all__ = ["fit_data", "evaluate_data", "predict_data", "check_batch_size"]
