"""A model file's compile settings and optimizer state, checked before use (the step of
``minicnn.loading`` that every loader shares):

- ``compile_model``: the optimizer, its learning-rate schedule and the losses from
  closed tables, the optimizer's arguments from ``optimizer_arguments()`` only, typed;
- ``set_optimizer_state``: a whole number of steps from 0 up, one slot per trainable
  weight of that weight's shape, finite (second moments and accumulators also >= 0),
  or no slots at all (no step taken yet), and the optimizer's finite scalars.
"""
import math

from . import file_checks
from .config_types import check_types, lookup
from .file_checks import read_checked, refuse

_NONNEGATIVE = {"moving_variance", "v", "velocity", "accumulator"}  # variances, sums of g**2
_COMMON = ("learning_rate", "weight_decay", "clipnorm", "clipvalue", "global_clipnorm")


def optimizer_arguments():
    """Each optimizer's arguments a file may set (Keras's names): the common ones and
    what the class's ``get_config`` lists, so a new optimizer needs no entry here."""
    from .optimizers import CLASSES
    return {name: _COMMON + tuple(k for k in cls().get_config() if k not in _COMMON)
            for name, cls in CLASSES.items()}



def compile_model(path, model, optimizer, optimizer_config, losses, metrics,
                  loss_weights=None):
    """``model.compile`` with the optimizer and loss classes named by the file.
    ``losses``: ``[(class name, config) or None]``, one per output; ``metrics``: a list
    of names (one output) or one list of names (or None) per output."""
    from . import losses as losses_module, optimizers as optimizers_module
    opt_cls = lookup(path, optimizers_module.CLASSES, optimizer, "optimizer")
    optimizer_config = dict(check_types(path, f"optimizer {optimizer}", optimizer_config or {}))
    unknown = sorted(set(optimizer_config) - set(optimizer_arguments()[optimizer]))
    if unknown:
        refuse(path, f"optimizer {optimizer}: unknown arguments {unknown}")
    if isinstance(optimizer_config.get("learning_rate"), dict):  # a schedule, by its table
        try:
            optimizer_config["learning_rate"] = optimizers_module.schedules.deserialize(
                optimizer_config["learning_rate"])
        except (TypeError, ValueError) as exc:
            raise file_checks.ModelFileError(path, f"the learning-rate schedule: {exc}") \
                from exc
    made = []
    for spec in losses:
        if spec is None:
            made.append(None)
            continue
        loss_cls = lookup(path, losses_module.CLASSES, spec[0], "loss")
        made.append(loss_cls(**check_types(path, f"loss {spec[0]}", spec[1] or {})))

    from .metrics import Metric

    def names(entry):  # names, or metric objects a Keras config serialized
        return isinstance(entry, list) and all(isinstance(m, (str, Metric)) for m in entry)
    single = len(losses) == 1
    if not (names(metrics) if single else isinstance(metrics, list) and all(
            m is None or names(m) for m in metrics)):
        refuse(path, f"metrics {metrics!r}: minicnn reads a list of metric names"
                     + ("" if single else " (or None) per output"))
    if loss_weights is not None and not (isinstance(loss_weights, list) and all(
            isinstance(w, (int, float)) and not isinstance(w, bool) for w in loss_weights)):
        refuse(path, f"loss_weights {loss_weights!r}: minicnn reads a list of numbers")
    try:
        model.compile(optimizer=opt_cls(**optimizer_config),
                      loss=made[0] if single else made, metrics=metrics,
                      loss_weights=loss_weights)
    except (TypeError, ValueError) as exc:
        raise file_checks.ModelFileError(path, f"compile settings: {exc}") from exc


def set_optimizer_state(path, model, iterations, slots, scalars=None):
    """The optimizer's state from ``iterations``, ``slots`` (``{slot name: [Stored,
    one per trainable weight]}``, or ``{}`` when the file holds none) and ``scalars``
    (``{name: float}``: Nadam's u_product)."""
    opt = model.optimizer
    state = {"iterations": file_checks.check_iterations(path, iterations)}
    scalars = scalars or {}
    if not isinstance(scalars, dict) or set(scalars) - set(opt.keras_scalars):
        refuse(path, f"the optimizer state has values {str(scalars)[:80]} that a "
                     f"{type(opt).__name__} does not have")
    for name, value in scalars.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) \
                or not math.isfinite(value):
            refuse(path, f"the optimizer's {name} is {value!r}, not a finite number")
        state[name] = float(value)
    weights = model.trainable_weights
    unknown = sorted(set(slots) - set(opt.slot_names))
    if unknown:
        refuse(path, f"the optimizer state has slots {unknown} that a {type(opt).__name__} "
                     f"does not have (it has {list(opt.slot_names)})")
    if slots:
        missing = [s for s in opt.slot_names if s not in slots]
        if missing:
            refuse(path, f"the optimizer state lacks the slots {missing} of "
                         f"{type(opt).__name__}")
    for slot, stored in slots.items():
        if len(stored) != len(weights):
            refuse(path, f"optimizer slot {slot!r} holds {len(stored)} arrays for "
                         f"{len(weights)} trainable weights")
        values = []
        for i, (item, weight) in enumerate(zip(stored, weights)):
            what = f"optimizer slot {slot!r} of trainable weight {i}"
            value = read_checked(path, item, what, weight.shape)
            file_checks.check_values(path, value, what, nonnegative=slot in _NONNEGATIVE)
            values.append(value.astype(weight.dtype, copy=False))
        state[slot] = values
    opt.set_state(state)
