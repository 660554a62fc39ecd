"""``model.trace(x, y)``: one training step, every number a learner wants to see.

The step is the one ``train_on_batch`` takes, walked layer by layer (node by node
through a functional model's graph: a shared layer has a row per call, its weights
at the first of them):

    forward:   each layer's output -- shape, mean, std, min, max, and for relu the
               share of zeros in this batch (about half on a fresh network: that is
               relu doing its job) and the dead channels (zero for every sample and
               position of the batch: those pass no gradient at all), for tanh/sigmoid
               the share of saturated values (|tanh| > 0.99, sigmoid < 0.01 or
               > 0.99), where the local gradient all but vanishes;
    loss:      the batch loss;
    backward:  in the order backprop visits the layers, the gradient arriving at each
               layer's output (dL/d out) and the one it passes down to its input
               (dL/d in), each as its root mean square per element, and for each
               trainable weight its gradient's RMS and the ratio |update| / |weight|
               of the step the optimizer would take.

Per-element RMS, not whole-tensor norms: a norm grows with the tensor's size, so
norms of layers of different sizes do not compare (a 2x2 average pooling halves the
norm of the gradient it passes down; per element, where its windows tile the input,
it divides it by 4). Vanishing or
exploding gradients show as RMS values shrinking or growing by orders of magnitude
from the last layer to the first. (The norms are in the returned data too.)

|update| / |weight|, the rule of thumb (CS231n): with plain or momentum SGD, about
1e-3 per step is a healthy rate; much smaller means that layer barely learns, much
larger that it jumps around. Two conditions: the weight must not be near zero (a
fresh bias is 0: no ratio is shown), and it says little on Adam's first step, which
moves every weight by about the learning rate whatever its gradient (m/sqrt(v) is
g/|g| then): the ratio is then lr over the initial weights' scale. The model is not changed: the update is
computed on copies of the weights and of the optimizer's state, and what the
forward pass moves on by itself (batch norm's moving statistics, dropout's random
generators) is put back afterwards.
"""
import numpy as np

from .backend import to_device, to_host
from .optimizers import Optimizer


def _stats(a, activation):
    a = np.asarray(to_host(a), dtype=np.float64)
    row = {"shape": tuple(a.shape), "mean": float(a.mean()), "std": float(a.std()),
           "min": float(a.min()), "max": float(a.max())}
    if activation == "relu":
        row["zero_fraction"] = float(np.mean(a <= 0))
        channels = a.reshape(-1, a.shape[-1]) if a.ndim > 1 else a.reshape(-1, 1)
        dead = np.all(channels <= 0, axis=0)  # zero for every sample and position
        row["dead_channels"], row["channels"] = int(dead.sum()), int(dead.size)
        row["dead_fraction"] = float(dead.mean())
    elif activation == "tanh":
        row["saturated_fraction"] = float(np.mean(np.abs(a) > 0.99))
    elif activation == "sigmoid":
        row["saturated_fraction"] = float(np.mean((a < 0.01) | (a > 0.99)))
    return row


def _next_updates(model, grads):
    """The change each trainable weight would see in the next step: the optimizer's
    own rule applied to copies (its slots included), so the model stays as it is."""
    optimizer = model.optimizer
    twin = type(optimizer)(**optimizer.get_config())
    twin.set_state(optimizer.get_state())  # the iteration count, and the slots if any
    before = [to_host(w).copy() for w in model.trainable_weights]
    after = [to_device(w.copy()) for w in before]
    twin.apply(grads, after)
    return [to_host(a) - b for a, b in zip(after, before)]


def trace_step(model, x, y):
    """The numbers of one training step of ``model`` on ``(x, y)`` (see the module
    docstring), as a dict; nothing in the model changes."""
    model._require_compiled("trace()")
    if not isinstance(model.optimizer, Optimizer):
        raise TypeError(f"{type(model).__name__} '{model.name}': trace() needs a minicnn "
                        f"optimizer")
    layers = model._layers
    kept = _KeptState(layers)
    try:
        return _trace(model, layers, x, y)
    finally:
        kept.restore()


class _KeptState:
    """What a training-mode forward changes besides the caches: the weight lists
    (batch norm replaces its moving statistics) and the random generators (dropout)."""

    def __init__(self, layers):
        from .utils import global_rng
        self.weights = [(layer, list(layer._weights)) for layer in layers]
        generators = [global_rng()] + [l._rng for l in layers if getattr(l, "_rng", None)]
        self.generators = [(g, g.bit_generator.state) for g in generators]

    def restore(self):
        for layer, weights in self.weights:
            layer._weights = weights
        for generator, state in self.generators:
            generator.bit_generator.state = state


def _norm(a):
    """The norm of an array, or of a list of them (a merge layer's inputs) taken as
    one vector; None for no gradient (an input that needs none)."""
    parts = [p for p in (a if isinstance(a, list) else [a]) if p is not None]
    if not parts:
        return 0.0
    return float(np.sqrt(sum(np.linalg.norm(np.asarray(to_host(p), dtype=np.float64)) ** 2
                             for p in parts)))


def _rms(a):
    """The root mean square per element of an array or a list of them (0 for none)."""
    parts = [p for p in (a if isinstance(a, list) else [a]) if p is not None]
    count = sum(int(np.size(to_host(p))) for p in parts)
    return _norm(a) / np.sqrt(count) if count else 0.0


def _trace(model, layers, x, y):
    """The step walked through the model's graph (``minicnn.network``): one forward
    row and one backward row per call of a layer, in the order the walks visit them."""
    forward = []

    def seen_forward(node, out):
        activation = getattr(node.layer, "activation", None)
        forward.append({"layer": node.layer.name, "class": type(node.layer).__name__,
                        "activation": activation, **_stats(out, activation)})
    if not model.built:  # a Sequential model without an input shape: built by its data
        model.build(tuple(np.shape(x))[1:])
    graph = model._graph
    single_in = model._single_input
    outs = graph.forward([x] if single_in else list(x), training=True, observe=seen_forward)
    out = outs[0] if model._single_output else outs
    per_sample, y_dev = model._loss_value(y, out)
    loss = float(to_host(per_sample.mean())) if model._single_output else \
        model._batch_logs(y_dev, out, per_sample)["loss"]

    backward = []

    def seen_backward(node, grad, fused, dx):
        arriving = ("logits" if fused else "output", _norm(grad), _rms(grad),
                    tuple(grad.shape))
        backward.append((node.layer, arriving, dx))
    grad, from_logits = model._loss_gradient(y_dev, out)
    single = model._single_output
    graph.backward([grad] if single else grad, [from_logits] if single else from_logits,
                   observe=seen_backward)

    updates = iter(_next_updates(model, model.gradients_of(model._layers)))
    changes = {id(layer): [next(updates) for _ in layer.trainable_weights]
               for layer in model._layers}
    rows, shown = [], set()
    for layer, (where, arriving_norm, arriving_rms, arriving_shape), passed in backward:
        weights = []
        if id(layer) not in shown:  # a shared layer's weights: at its first row
            shown.add(id(layer))
            names = [n for n, _, t in layer._weights if t and layer.trainable]
            for name, g, change in zip(names, layer._grads or [], changes[id(layer)]):
                w = to_host(layer._weight(name))
                weight_norm, update_norm = _norm(w), _norm(change)
                weights.append({"name": name, "shape": tuple(w.shape), "grad_norm": _norm(g),
                                "grad_rms": _rms(g),
                                "weight_norm": weight_norm, "update_norm": update_norm,
                                # a zero weight (a fresh bias) has no meaningful ratio
                                "update_ratio": (update_norm / weight_norm
                                                 if weight_norm > 0 else None)})
        rows.append({"layer": layer.name, "class": type(layer).__name__,
                     "grad_at": where, "grad_shape": arriving_shape,
                     # dL/d(this layer's output), arriving; dL/d(its input), passed down
                     "grad_output_norm": arriving_norm, "grad_output_rms": arriving_rms,
                     "grad_input_norm": _norm(passed), "grad_input_rms": _rms(passed),
                     "weights": weights})
    model._release_caches()
    return {"model": model.name, "class": type(model).__name__, "batch": len(outs[0]),
            "loss": loss, "forward": forward,
            "backward": rows}


def format_trace(data):
    """The trace as text: a forward table, the loss, a backward table."""
    names = [f"{row['layer']} ({row['class']})" for row in data["forward"]]
    width = max(len(n) for n in names + ["layer (class)"]) + 2
    lines = [f"trace of one training step: {data.get('class', 'Sequential')} "
             f"'{data['model']}', batch of "
             f"{data['batch']}", "forward (in layer order):",
             f"  {'layer (class)':<{width}}{'output shape':<20}{'mean':>10}{'std':>10}"
             f"{'min':>10}{'max':>10}  note"]
    for name, row in zip(names, data["forward"]):
        note = ""
        if "zero_fraction" in row:
            note = (f"zeros {100 * row['zero_fraction']:.1f}%, dead "
                    f"{row['dead_channels']} of {row['channels']} channels")
        elif "saturated_fraction" in row:
            note = f"saturated {row['activation']} {100 * row['saturated_fraction']:.1f}%"
        lines.append(f"  {name:<{width}}{str(row['shape']):<20}"
                     f"{row['mean']:>10.4f}{row['std']:>10.4f}{row['min']:>10.4f}"
                     f"{row['max']:>10.4f}  {note}")
    lines.append(f"loss: {data['loss']:.6f}")
    lines.append("backward (in the order backprop visits the layers):")
    lines.append(f"  {'layer':<{width}}{'gradient shape':<20}{'dL/d out':>12}"
                 f"{'dL/d in':>12}   weight gradients (rms grad, |update|/|weight|)")
    lines.append(f"  {'':<{width}}{'':<20}{'(rms)':>12}{'(rms)':>12}")
    for row in data["backward"]:
        arriving = f"{row['grad_output_rms']:.3e}" + ("*" if row["grad_at"] == "logits" else " ")
        weights = ", ".join(
            f"{w['name']} {w['grad_rms']:.2e} "
            + ("(weight 0)" if w["update_ratio"] is None else f"{w['update_ratio']:.1e}")
            for w in row["weights"])
        lines.append(f"  {row['layer']:<{width}}{str(row['grad_shape']):<20}{arriving:>12}"
                     f"{row['grad_input_rms']:>12.3e}   {weights}".rstrip())
    if any(row["grad_at"] == "logits" for row in data["backward"]):
        lines.append("  * softmax + cross-entropy: the gradient starts at the logits, "
                     "(p - y) / N")
    return "\n".join(lines)
