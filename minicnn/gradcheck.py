"""Numerical gradient checks: the proof that each backward pass is right.

For a function ``y = f(x)`` and an upstream gradient ``dy``, the analytic
backward pass claims to compute ``d/dx sum(f(x) * dy)``. Central differences
estimate the same thing one entry at a time:

    grad[i] ~ ( sum(f(x + h e_i) * dy) - sum(f(x - h e_i) * dy) ) / (2 h)

with an error of order h**2. In float64 with h around 1e-6 the two agree to
about 1e-8 relative; a wrong backward pass is off by order 1.
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
    """Check a whole gradient at once along one random direction ``v``:
    ``(f(x + h v) - f(x - h v)) / 2h`` should equal ``sum(analytic * v)``.

    ``f`` returns a scalar and reads ``x``, which is perturbed in place and restored.
    Two evaluations instead of two per entry: what large tensors need.
    Returns the relative error of the two directional derivatives.
    """
    v = np.random.default_rng(seed).standard_normal(x.shape)
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
