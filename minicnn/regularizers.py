"""Keras 3's weight and activity regularizers: penalties added to the loss.

A regularizer maps an array ``x`` (a weight, or a layer's output) to one number, the
penalty, which training adds to the loss it minimises:

| regularizer            | penalty                                    | d penalty / dx             |
|------------------------|--------------------------------------------|----------------------------|
| ``L1(l1=0.01)``        | ``l1 * sum(|x|)``                          | ``l1 * s(x)``              |
| ``L2(l2=0.01)``        | ``l2 * sum(x**2)``                         | ``2 * l2 * x``             |
| ``L1L2(l1=0, l2=0)``   | ``l1 * sum(|x|) + l2 * sum(x**2)``         | the sum of the two         |

``s(x)`` is the slope of ``|x|``: +1 for ``x >= 0`` (zero included: JAX's derivative
of ``abs`` at 0 is 1, and minicnn's numbers are Keras-on-JAX's), -1 for ``x < 0``.

Where the penalties go (``minicnn.trainer``), as Keras 3 does it:

- ``kernel_regularizer`` / ``bias_regularizer`` (Conv2D, Dense): the penalty of the
  weight; its gradient is added to the weight's gradient before the optimizer step. Only
  trainable weights count: a frozen layer's weights add nothing (Keras sums the
  penalties over ``model.trainable_weights``).
- ``activity_regularizer`` (every layer): the penalty of the layer's *output*, divided
  by the batch size ``N`` (so that its weight against the loss does not change with
  the batch size); ``d(penalty / N) / d output`` is added to the gradient arriving at the
  layer's output in the backward pass. It counts whenever the layer runs, training or
  not, so ``evaluate`` reports it too (and a frozen layer's activity still counts).
  A layer called several times in one model counts its last call only (Keras 3.15).

The reported ``loss`` is then ``mean loss over the batch + sum of all penalties``.

Keras's exact quirks kept: ``L1`` keeps its factor as a float32 number (``L1(0.01)``'s
config says ``l1=0.009999999776482582``, and a float64 penalty uses that value);
the strings are ``"l1"``, ``"l2"``, ``"l1l2"`` and the class names ``"L1"``, ``"L2"``,
``"L1L2"``, each with the class's defaults, so ``"l1l2"`` is ``L1L2(0, 0)`` (no
penalty) and ``"l1_l2"`` is refused (Keras 3.15 refuses it too, despite its docs).
A serialized regularizer is Keras's dict::

    {"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.01},
     "registered_name": None}

>>> L2(0.5)(np.ones((2, 2), "float32"))
array(2., dtype=float32)
"""
import math

import numpy as np

from .backend import get_array_module

__all__ = ["Regularizer", "L1", "L2", "L1L2", "get", "serialize", "deserialize"]


def _validate_float_arg(value, name):
    """Keras's check: a non-negative finite int or float (as ``float``)."""
    if (not isinstance(value, (float, int)) or math.isinf(value) or math.isnan(value)
            or value < 0):
        raise ValueError(f"Invalid value for argument {name}: expected a non-negative float."
                         f" Received: {name}={value!r}")
    return float(value)


def _cast(value, x):
    """A Python (or NumPy) number as a 0-d array of ``x``'s dtype, where ``x`` lives."""
    xp = get_array_module(x)
    return xp.asarray(value, dtype=x.dtype)


class Regularizer:
    """Base class. A subclass defines ``__call__(x)`` (the penalty, a 0-d array in x's
    dtype), ``gradient(x)`` (d penalty / dx, x's shape and dtype) and ``get_config()``."""

    def __call__(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not implement __call__")

    def gradient(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not implement gradient")

    def get_config(self):
        raise NotImplementedError(f"{self} does not implement get_config()")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _l1_penalty(factor, x):
    xp = get_array_module(x)
    return xp.asarray(_cast(factor, x) * xp.abs(x).sum())


def _l1_gradient(factor, x):
    xp = get_array_module(x)
    slope = xp.where(x >= 0, 1, -1).astype(x.dtype)  # JAX: d|x|/dx at 0 is +1
    return _cast(factor, x) * slope


def _l2_penalty(factor, x):
    xp = get_array_module(x)
    return xp.asarray(_cast(factor, x) * (x * x).sum())


def _l2_gradient(factor, x):
    return _cast(factor, x) * (2 * x)


class L1(Regularizer):
    """``l1 * sum(|x|)``. Keras keeps ``l1`` as a float32 number; so does this class."""

    def __init__(self, l1=0.01):
        l1 = 0.01 if l1 is None else l1
        self.l1 = float(np.float32(_validate_float_arg(l1, "l1")))

    def __call__(self, x):
        return _l1_penalty(self.l1, x)

    def gradient(self, x):
        return _l1_gradient(self.l1, x)

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * sum(x**2)``."""

    def __init__(self, l2=0.01):
        l2 = 0.01 if l2 is None else l2
        self.l2 = _validate_float_arg(l2, "l2")

    def __call__(self, x):
        return _l2_penalty(self.l2, x)

    def gradient(self, x):
        return _l2_gradient(self.l2, x)

    def get_config(self):
        return {"l2": self.l2}


class L1L2(Regularizer):
    """``l1 * sum(|x|) + l2 * sum(x**2)``; both factors default to 0 (Keras's class
    defaults; only its docs speak of 0.01)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _validate_float_arg(0.0 if l1 is None else l1, "l1")
        self.l2 = _validate_float_arg(0.0 if l2 is None else l2, "l2")

    def __call__(self, x):
        total = _cast(0.0, x)
        if self.l1 != 0.0:
            total = total + _l1_penalty(self.l1, x)
        if self.l2 != 0.0:
            total = total + _l2_penalty(self.l2, x)
        return get_array_module(x).asarray(total)

    def gradient(self, x):
        xp = get_array_module(x)
        grad = xp.zeros_like(x)
        if self.l1 != 0.0:
            grad = grad + _l1_gradient(self.l1, x)
        if self.l2 != 0.0:
            grad = grad + _l2_gradient(self.l2, x)
        return grad

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


# The closed table a file's (or a caller's) class name is looked up in: never an attribute.
CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}
# Keras's strings: the class names and their snake_case forms (each with its defaults).
_STRINGS = {"L1": L1, "L2": L2, "L1L2": L1L2, "l1": L1, "l2": L2, "l1l2": L1L2}
# Keras names minicnn does not implement, with the reason given in the error.
_NOT_HERE = {"l1_l2": "Keras 3 refuses 'l1_l2' too; use 'l1l2' (L1L2(0, 0)) or "
                      "L1L2(l1=0.01, l2=0.01)",
             "Regularizer": "the base class has no penalty",
             "regularizer": "the base class has no penalty",
             "OrthogonalRegularizer": "minicnn does not implement OrthogonalRegularizer",
             "orthogonal_regularizer": "minicnn does not implement OrthogonalRegularizer"}


def serialize(regularizer):
    """Keras's serialized form: a dict naming the class and its config (None: None)."""
    if regularizer is None:
        return None
    return {"module": "keras.regularizers", "class_name": type(regularizer).__name__,
            "config": regularizer.get_config(), "registered_name": None}


def _fail(identifier, where, why=None):
    prefix = f"{where}: " if where else ""
    raise ValueError(f"{prefix}Could not interpret regularizer identifier: {identifier!r}"
                     + (f" ({why})" if why else f". Use None, {sorted(_STRINGS)}, an "
                        f"instance of minicnn.regularizers.L1, L2 or L1L2, or Keras's "
                        f"serialized dict"))


def deserialize(config, where=None):
    """A regularizer from Keras's serialized dict (``class_name`` looked up in CLASSES)."""
    if not isinstance(config, dict):
        _fail(config, where, "a serialized regularizer is a dict")
    # shared_object_id: Keras's mark of one object serialized in several places
    unknown = set(config) - {"module", "class_name", "config", "registered_name",
                             "shared_object_id"}
    if unknown:
        _fail(config, where, f"unknown keys {sorted(unknown)}")
    name = config.get("class_name")
    if config.get("module", "keras.regularizers") != "keras.regularizers":
        _fail(config, where, f"module {config.get('module')!r} is not keras.regularizers")
    if config.get("registered_name") is not None:
        _fail(config, where, "a registered (custom) regularizer cannot be read")
    if not isinstance(name, str) or name not in CLASSES:
        why = _NOT_HERE.get(name) if isinstance(name, str) else None
        _fail(config, where, why or f"class_name must be one of {sorted(CLASSES)}")
    args = config.get("config") or {}
    if not isinstance(args, dict):
        _fail(config, where, "its config is not a dict")
    cls = CLASSES[name]
    allowed = {"L1": ("l1",), "L2": ("l2",), "L1L2": ("l1", "l2")}[name]
    extra = set(args) - set(allowed)
    if extra:
        _fail(config, where, f"{name} takes {list(allowed)}, not {sorted(extra)}")
    try:
        return cls(**args)
    except ValueError as exc:
        _fail(config, where, str(exc))


def get(identifier, where=None):
    """A regularizer from ``identifier``: None, an instance, one of the classes (made
    with its defaults), one of Keras's strings, or Keras's serialized dict. ``where``
    (e.g. ``"Dense: kernel_regularizer"``) starts the ValueError a bad one raises."""
    if identifier is None:
        return None
    if isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Regularizer) \
            and identifier is not Regularizer:
        return identifier()
    if isinstance(identifier, str):
        if identifier in _STRINGS:
            return _STRINGS[identifier]()
        _fail(identifier, where, _NOT_HERE.get(identifier))
    if isinstance(identifier, dict):
        return deserialize(identifier, where)
    if callable(identifier):
        _fail(identifier, where, "minicnn needs the penalty's gradient too: subclass "
                                 "minicnn.regularizers.Regularizer and define __call__ "
                                 "and gradient")
    _fail(identifier, where)


# ---------------------------------------------------------------------------------
# a model's penalties (the training step, evaluate and check_model read these)
# ---------------------------------------------------------------------------------
def _leaf_layers(layers, seen=None):
    """The layers holding weights, inner models' layers included, each once, in
    ``trainable_weights`` order."""
    seen = set() if seen is None else seen
    for layer in layers:
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if hasattr(layer, "_graph") and hasattr(layer, "_layers"):
            yield from _leaf_layers(layer._layers, seen)
        else:
            yield layer


def has_activity(model):
    """Whether any layer of ``model`` (inner models included) has an activity
    regularizer."""
    return any(getattr(layer, "activity_regularizer", None) is not None
               for layer in _leaf_layers(model._layers))


def model_penalty(model, layers=None):
    """The sum of every penalty of ``model``'s last forward (a 0-d array), or None:
    each layer's activity penalty / batch size (a shared layer's last call only, as
    Keras 3.15 counts it), then each trainable weight's (once). ``layers``: substitutes
    of ``model._layers`` that ran the forward (check_model's float64 twins)."""
    total = None
    leaves = list(_leaf_layers(model._layers if layers is None else layers))
    terms = [layer.activity_penalty() for layer in leaves
             if getattr(layer, "activity_regularizer", None) is not None]
    terms += [layer.weight_penalty() for layer in leaves if hasattr(layer, "weight_penalty")]
    for term in terms:
        if term is not None:
            total = term if total is None else total + term
    return total


def weight_gradients(model):
    """d(weight penalties)/dw for every trainable weight of ``model``, in
    ``trainable_weights`` order (None for a weight without a regularizer)."""
    grads = []
    for layer in _leaf_layers(model._layers):
        if not hasattr(layer, "weight_regularizers"):
            grads += [None] * len(layer.trainable_weights)
            continue
        grads += [None if reg is None else reg.gradient(w)
                  for w, reg in zip(layer.trainable_weights, layer.weight_regularizers())]
    return grads
