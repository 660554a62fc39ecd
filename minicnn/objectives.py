"""What ``compile`` asks of each output: its loss, the loss's weight, its metrics.

A model with one output has one loss and logs ``loss`` and its metrics by name. A model
with several outputs (a functional graph) has one ``Objective`` per output, named after
the layer that makes the output, and trains on Keras 3's total

    loss = sum over outputs of loss_weight[i] * mean loss of output i

so the backward walk starts at every output with ``loss_weight[i] * dL_i/d output_i``
(``minicnn.network`` adds what reaches a shared tensor from several outputs). Keras's
logs name the parts ``<output>_loss`` (where two or more outputs have a loss) and
``<output>_<metric>``:

    model.compile(loss=["sparse_categorical_crossentropy", "mse"],
                  loss_weights=[1.0, 0.5], metrics=[["accuracy"], ["mae"]])
    # logs: loss, cls_loss, reg_loss, cls_accuracy, reg_mae

``loss``, ``loss_weights`` and ``metrics`` take what Keras 3 takes for several
outputs: one loss for every output, a list in the outputs' order, or a dict keyed by
the outputs' names (every output named; None: that output has no loss and trains
nothing); metrics as a list of lists (one per output) or a dict.
"""
import numbers

from . import losses as losses_module, metrics as metrics_module


class Objective:
    """One output's loss (None: the output is not trained on), the loss's weight, and
    its metrics as ``(log name, fn)``; ``prefix`` is ``""`` for a model's only output
    and ``"<output name>_"`` otherwise."""

    def __init__(self, prefix, loss, weight, metrics):
        self.prefix, self.loss, self.weight = prefix, loss, weight
        # the names as compile took them (to compile again from a file), and the logs'
        self.metric_ids = [name for name, _ in metrics]
        names = metrics_module.unique_names(self.metric_ids)  # Keras's _1, _2
        self.metric_names = [prefix + name for name in names]
        self.metric_fns = [fn for _, fn in metrics]

    @property
    def loss_name(self):
        return self.prefix + "loss"


def _per_output(model, value, names, what, single_ok=True, every=False):
    """``value`` (one, a list in the outputs' order, or a dict by output name) as a list
    with one entry per output (None where a dict leaves an output out; ``every``: a
    dict must name every output, as Keras wants of losses, None allowed)."""
    who = f"{type(model).__name__} '{model.name}': compile()"
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(f"{who} received {what} for {unknown}, which are not outputs of "
                             f"the model; its outputs are {names}")
        missing = [name for name in names if name not in value]
        if every and missing:
            raise ValueError(f"{who} expects {what} keyed by every output {names} (None for "
                             f"an output without one). Missing: {missing}")
        return [value.get(name) for name in names]
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise ValueError(f"{who} expects {what} to be one per output ({len(names)}: "
                             f"{names}) or a dict keyed by those names. Received "
                             f"{len(value)}: {value!r}")
        return list(value)
    if not single_ok:
        raise ValueError(f"{who} expects {what} to be a list of {len(names)} (one per output "
                         f"{names}) or a dict keyed by those names. Received: {value!r}")
    return [value] * len(names)


def _weight(model, value):
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{type(model).__name__} '{model.name}': compile() expects each loss "
                         f"weight to be a number. Received: {value!r}")
    return float(value)


def _metrics(entry):
    if entry is None:
        return []
    items = entry if isinstance(entry, (list, tuple)) else [entry]
    return [metrics_module.get(item) for item in items]


def resolve(model, loss, metrics=None, loss_weights=None):
    """The model's objectives, one per output, for ``compile``'s arguments."""
    if model._single_output:
        if isinstance(loss, (list, tuple, dict)) or loss_weights is not None:
            names = model.output_names
            loss = _per_output(model, loss, names, "loss")[0]
            weight = _weight(model, _per_output(model, loss_weights, names,
                                                "loss_weights")[0])
        else:
            weight = 1.0
        if loss is None:
            raise ValueError(f"{type(model).__name__} '{model.name}': compile() needs a loss")
        if isinstance(metrics, dict):
            metrics = _per_output(model, metrics, model.output_names, "metrics")[0]
        return [Objective("", losses_module.get(loss), weight,
                          [metrics_module.get(m) for m in (metrics or [])])]
    names = model.output_names
    losses = _per_output(model, loss, names, "loss", every=True)
    if all(entry is None for entry in losses):
        raise ValueError(f"{type(model).__name__} '{model.name}': compile() needs a loss for "
                         f"at least one of the outputs {names}")
    weights = _per_output(model, loss_weights, names, "loss_weights")
    per_metrics = ([None] * len(names) if metrics is None
                   else _per_output(model, metrics, names, "metrics", single_ok=False))
    objectives = []
    for name, entry, weight, metric in zip(names, losses, weights, per_metrics):
        objectives.append(Objective(f"{name}_",
                                    None if entry is None else losses_module.get(entry),
                                    _weight(model, weight), _metrics(metric)))
    return objectives


def separate_losses(objectives):
    """Whether the logs hold each output's loss beside the total: where two or more
    outputs have one (with one, Keras logs the total alone)."""
    return sum(o.loss is not None for o in objectives) > 1


def log_names(objectives):
    """The logs' keys in Keras's order: the total loss, each output's loss, each
    output's metrics."""
    parts = [o.loss_name for o in objectives if o.loss is not None]
    return (["loss"] + (parts if separate_losses(objectives) else [])
            + [name for o in objectives for name in o.metric_names])
