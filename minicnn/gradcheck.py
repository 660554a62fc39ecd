"""Numerical gradient checks: the proof that each backward pass is right.

For a function ``y = f(x)`` and an upstream gradient ``dy``, the analytic
backward pass claims to compute ``d/dx sum(f(x) * dy)``. Central differences
estimate the same thing one entry at a time:

    grad[i] ~ ( sum(f(x + h e_i) * dy) - sum(f(x - h e_i) * dy) ) / (2 h)

with an error of order h**2 (truncation) plus the float64 rounding of the two sums
divided by 2h, which grows as h shrinks. ``check_layer`` and ``check_model`` use
h = 1e-4 and pass a gradient at a relative error of at most 1e-5 (see THRESHOLD
below for the measurements behind both); right backward passes stay below it (a
batch norm's input gradient, among the largest, measured 2e-6), while a wrong one is
off by order 1. The classroom pieces below default to h = 1e-6, fine for the small
smooth functions they are shown on.

``check_layer(layer, x)`` and ``check_model(model, x, y)`` (at the end) do it for a
whole layer or model and print the table; the rest are the classroom pieces.
"""
import numpy as np

from .backend import to_host


def numerical_gradient(f, x, dy, h=1e-6):
    """Central-difference gradient of ``sum(f(x) * dy)`` with respect to ``x``.

    ``x`` is perturbed in place and restored, so it may be a weight array that
    ``f`` reads (that is how weight gradients are checked).
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError("numerical_gradient needs a contiguous array it can perturb in place")
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        plus = float(np.sum(to_host(f(x)) * dy))
        flat[i] = old - h
        minus = float(np.sum(to_host(f(x)) * dy))
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * h)
    return grad


def directional_error(f, x, analytic, seed=0, h=1e-6):
    """Check a whole gradient at once along one random unit direction ``v``:
    ``(f(x + h v) - f(x - h v)) / 2h`` should equal ``sum(analytic * v)``.

    ``f`` returns a scalar and reads ``x``, which is perturbed in place and restored.
    Two evaluations instead of two per entry: what large tensors need.
    Returns the relative error of the two directional derivatives.
    """
    v = np.random.default_rng(seed).standard_normal(x.shape)
    v /= np.linalg.norm(v)
    saved = x.copy()
    x += h * v
    plus = float(to_host(f(x)))
    x[...] = saved - h * v
    minus = float(to_host(f(x)))
    x[...] = saved
    numeric = (plus - minus) / (2 * h)
    exact = float(np.sum(np.asarray(to_host(analytic), dtype=np.float64) * v))
    return abs(numeric - exact) / max(1e-8, abs(numeric) + abs(exact))


def rel_error(a, b, floor=1e-8):
    """Largest elementwise ``|a - b| / max(floor, |a| + |b|)``; 0 for empty arrays."""
    a, b = np.asarray(to_host(a), dtype=np.float64), np.asarray(to_host(b), dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(floor, np.abs(a) + np.abs(b))))


def check_layer_gradients(layer, x, training=True, seed=0, h=1e-6, before_forward=None):
    """Compare a layer's backward pass with central differences.

    Builds the layer if needed, draws a random ``dy``, and returns
    ``{"x": err, <weight name>: err, ...}`` with ``rel_error`` per gradient.
    ``before_forward`` (optional) is called before every forward, e.g. to reset
    a dropout generator so every evaluation sees the same mask.
    """
    rng = np.random.default_rng(seed)
    x = np.array(x, dtype=np.float64)
    prepare = before_forward or (lambda: None)

    def run(inp):
        prepare()
        return layer.forward(inp, training=training)

    y = to_host(run(x))
    dy = rng.standard_normal(y.shape)
    dx = to_host(layer.backward(dy))
    analytic = dict(zip([n for n, _, t in layer._weights if t], layer.get_gradients()))
    errors = {"x": rel_error(dx, numerical_gradient(run, x, dy, h))}
    for name, value, trainable in layer._weights:
        if trainable:
            numeric = numerical_gradient(lambda _: run(x), value, dy, h)
            errors[name] = rel_error(analytic[name], numeric)
    return errors


# ---------------------------------------------------------------------------------
# the public checks: a table per layer or model
# ---------------------------------------------------------------------------------
THRESHOLD = 1e-5          # largest relative error a gradient may have and pass
# The step h = 1e-4 of check_layer/check_model: the layers are piecewise linear or mildly
# curved, so truncation stays far below the threshold, while a smaller step lets the
# rounding of the summed output dominate (a batch norm's input gradient measured 2e-6
# at 1e-4, 1.4e-5 at 1e-5 and 4e-4 at 1e-6).
ELEMENTWISE_UP_TO = 4096  # tensors up to this size are checked entry by entry
DIRECTIONS = 3            # larger ones along this many random directions


class _Float64:
    """Build and run in float64 on a host backend, then put the float type and the
    backend back as they were (also when the check raises)."""

    def __enter__(self):
        from . import backend
        self.floatx, self.backend = backend.floatx(), backend.get_backend()
        backend.set_floatx("float64")
        if self.backend == "cupy":  # perturbing weights in place needs host arrays
            backend.set_backend("numpy")
        return self

    def __exit__(self, *exc):
        from . import backend
        backend.set_floatx(self.floatx)
        backend.set_backend(self.backend)
        return False


def _twin(layer):
    """A float64 copy of ``layer``: same class, arguments and weights."""
    config = dict(layer.get_config(), name=layer.name)
    twin = type(layer)(**config)
    if layer.built:
        twin.build(layer.input_shape)
        twin.set_weights(layer.get_weights())
    return twin


def _fixed_randomness(layers):
    """A function that resets every dropout generator before a forward pass, so all
    the evaluations of a check see the same masks."""
    generators = [(layer, 1234 + i) for i, layer in enumerate(layers) if hasattr(layer, "_rng")]

    def reset():
        for layer, seed in generators:
            layer._rng = np.random.default_rng(seed)
    return reset


def _gradient_row(name, analytic, value, scalar_of, threshold, seed, h):
    """One row of the table: ``scalar_of()`` reads ``value`` (perturbed in place)."""
    analytic = np.asarray(to_host(analytic), dtype=np.float64)
    if value.size <= ELEMENTWISE_UP_TO:
        numeric = numerical_gradient(lambda _: scalar_of(), value, np.float64(1.0), h)
        # entries below a millionth of the gradient's largest are judged on that scale:
        # there a central difference's own rounding is as large as the entry itself
        scale = max(np.abs(analytic).max(initial=0), np.abs(numeric).max(initial=0))
        error = rel_error(analytic, numeric, floor=max(1e-8, 1e-6 * scale))
        method = "elementwise"
    else:
        error = max(directional_error(lambda _: scalar_of(), value, analytic, seed + k, h)
                    for k in range(DIRECTIONS))
        method = f"{DIRECTIONS} directions"
    return {"name": name, "shape": tuple(value.shape), "method": method,
            "max_rel_error": error, "passed": bool(error <= threshold)}


def _report(title, rows, threshold, print_fn):
    if print_fn is None:
        return
    width = max([len(r["name"]) for r in rows] + [9])
    lines = [f"{title} (float64 central differences, pass at max relative error <= "
             f"{threshold:g})",
             f"{'gradient':<{width}}  {'shape':<18}{'checked':<14}{'max rel error':>14}  result"]
    for r in rows:
        lines.append(f"{r['name']:<{width}}  {str(r['shape']):<18}{r['method']:<14}"
                     f"{r['max_rel_error']:>14.2e}  {'pass' if r['passed'] else 'FAIL'}")
    print_fn("\n".join(lines))


def check_layer(layer, x, training=True, threshold=THRESHOLD, seed=0, h=1e-4, print_fn=print):
    """Check ``layer``'s backward pass (its input gradient and every trainable weight's
    gradient) against central differences of ``sum(layer(x) * dy)`` for a random
    ``dy``, in float64 whatever the current float type (restored afterwards), on a
    float64 copy of the layer with the same weights.

    Prints a table (gradient, shape, how it was checked, max relative error, pass or
    FAIL at ``threshold``) and returns it as a list of dicts. Tensors of up to
    ``ELEMENTWISE_UP_TO`` values are checked entry by entry, larger ones along
    ``DIRECTIONS`` random directions."""
    with _Float64():
        x = np.array(to_host(x), dtype=np.float64)
        twin = _twin(layer)
        reset = _fixed_randomness([twin])
        reset()
        y = to_host(twin.forward(x, training=training))
        dy = np.random.default_rng(seed).standard_normal(y.shape)
        dx = twin.backward(dy)
        names = [n for n, _, t in twin._weights if t]
        analytic = [("input", dx, x)] + [(name, grad, twin._weight(name)) for name, grad
                                          in zip(names, twin.get_gradients() if names else [])]

        def scalar():
            reset()
            return float(np.sum(to_host(twin.forward(x, training=training)) * dy))
        rows = [_gradient_row(name, grad, value, scalar, threshold, seed, h)
                for name, grad, value in analytic]
    _report(f"check_layer: {type(layer).__name__} '{layer.name}'", rows, threshold, print_fn)
    return rows


def check_model(model, x, y, training=True, threshold=THRESHOLD, seed=0, h=1e-4,
                print_fn=print):
    """Check a compiled model's backward walk: the gradient of its loss on ``(x, y)``
    with respect to the input and every trainable weight, as a training step computes
    it (the fused softmax + cross-entropy start included), against central differences
    of the loss, in float64: the model's graph run through float64 copies of its
    layers (float type restored afterwards); a graph's merges, fan-out and shared
    layers, several inputs (``input 0``, ``input 1``...) and outputs (the total
    loss) included. Prints and returns the table of ``check_layer``, one row per weight
    (named ``layer/weight``).

    A relu (or max pooling) has kinks: a step ``h`` that moves a unit across one (easy
    for a bias, which shifts a whole channel) measures a slope the function does not
    have there and fails the row although the backward pass is right. Check such
    models with smooth activations, or with inputs kept away from the kinks."""
    model._require_compiled("check_model()")
    model._require_built("check_model()")
    if any(hasattr(layer, "_graph") for layer in model._layers):
        raise NotImplementedError(f"{type(model).__name__} '{model.name}': check_model() of a "
                                  f"model holding another model is not implemented in minicnn "
                                  f"yet; check the inner model on its own")
    graph, single = model._graph, model._single_output
    with _Float64():
        xs = [np.array(to_host(a), dtype=np.float64)
              for a in ([x] if model._single_input else x)]
        # the model's own graph, run through float64 twins of its layers
        twins = [_twin(layer) for layer in model._layers]
        reset = _fixed_randomness(twins)

        def output():
            reset()
            outs = graph.forward(xs, training=training, layers=twins)
            return outs[0] if single else outs

        def loss_value():
            out = output()
            per_sample, y_dev = model._loss_value(y, out)
            return model._batch_logs(y_dev, out, per_sample, layers=twins)["loss"]
        out = output()
        _, y_dev = model._loss_value(y, out)
        grad, from_logits = model._loss_gradient(y_dev, out)
        dxs = graph.backward([grad] if single else grad,
                             [from_logits] if single else from_logits, layers=twins)
        # all of them first: each evaluation clears them
        analytic = [("input" if len(xs) == 1 else f"input {i}", dx, a)
                    for i, (dx, a) in enumerate(zip(dxs, xs))]
        for layer in twins:
            names = [n for n, _, t in layer._weights if t]
            for name, grad in zip(names, layer.get_gradients() if names else []):
                analytic.append((f"{layer.name}/{name}", grad, layer._weight(name)))
        rows = [_gradient_row(name, grad, value, loss_value, threshold, seed, h)
                for name, grad, value in analytic]
        graph.release()
    _report(f"check_model: {type(model).__name__} '{model.name}'", rows, threshold, print_fn)
    return rows
