"""SGD, Adam, AdamW, Nadam, RMSprop and Adagrad with Keras 3's exact update rules.

An optimizer keeps one set of slots (momentum, Adam's m and v) per variable, in
the order the variables are given, and updates the variables *in place*, so the
layers that own them see the new values.

One step, in Keras 3's order (``Optimizer.apply``):

    lr = the learning rate at this step: a number, ``schedule(iterations)`` for a
         schedule (``minicnn.optimizers.schedules``), or ``fn()`` for a callable
    g  = clipped gradients: clipnorm (each gradient to that norm), global_clipnorm
         (all of them together to that norm) or clipvalue (each value to
         [-c, c]); at most one of the three
    w <- w - w * weight_decay * lr             (decoupled weight decay, if set)
    w <- the optimizer's rule below with lr and g
    iterations += 1

SGD (lr = learning rate, mu = momentum), per variable w with gradient g:

    plain:     w <- w - lr * g
    momentum:  v <- mu * v - lr * g;   w <- w + v
    nesterov:  v <- mu * v - lr * g;   w <- w + mu * v - lr * g

Adam, at step t = 1, 2, ...:

    m <- m + (1 - beta_1) * (g - m)
    v <- v + (1 - beta_2) * (g**2 - v)
    w <- w - lr * sqrt(1 - beta_2**t) / (1 - beta_1**t) * m / (sqrt(v) + epsilon)

Note epsilon is added to sqrt of the *uncorrected* v: this is Keras's form, not
the textbook ``lr * m_hat / (sqrt(v_hat) + epsilon)``; they differ when
gradients are tiny. AdamW is Adam with ``weight_decay=0.004`` by default.

RMSprop (rho, momentum mu, epsilon; centered keeps the mean gradient a too):

    s <- rho * s + (1 - rho) * g**2
    a <- rho * a + (1 - rho) * g                       (centered only)
    step = lr * g / sqrt(s - a**2 + epsilon)  (centered)  or  / sqrt(s + epsilon)
    w <- w - step, or with momentum: p <- mu * p + step;  w <- w - p

Adagrad (the accumulator starts at ``initial_accumulator_value``):

    s <- s + g**2;   w <- w - lr * g / sqrt(s + epsilon)

Nadam (Keras's momentum schedule u_t = beta_1 * (1 - 0.5 * 0.96**t), and the
product of the u's so far, kept as the optimizer's ``u_product``):

    m <- m + (1 - beta_1) * (g - m);   v <- v + (1 - beta_2) * (g**2 - v)
    m_hat = u_{t+1} m / (1 - prod_{t+1}) + (1 - u_t) g / (1 - prod_t)
    w <- w - lr * m_hat / (sqrt(v / (1 - beta_2**t)) + epsilon)
"""
import functools
import inspect
import math
import numbers

import numpy as np

from ..backend import get_array_module, kernels_for, to_device, to_host
from .float32_arithmetic import _check_number as _checked_number


def _check_number(owner, name, value, low=None, high=None, low_open=False):
    """A finite real number within the bounds, as a float (the error names the owner
    and the argument)."""
    return float(_checked_number(owner, name, value, low, high, low_open))


def _arity_takes_step(fn):
    try:
        return len(inspect.signature(fn).parameters) > 0
    except (TypeError, ValueError):
        return False


_cached_takes_step = functools.lru_cache(maxsize=64)(_arity_takes_step)


def _takes_step(fn):
    """Whether a learning-rate callable takes the step count (Keras calls it with
    none); asked once per (hashable) callable, not at every step."""
    try:
        return _cached_takes_step(fn)
    except TypeError:  # an unhashable callable object
        return _arity_takes_step(fn)


class Optimizer:
    """Base class: slot bookkeeping, ``apply``, and state for saving.

    ``communicator`` is the set of processes whose gradients an update averages: one
    process (``minicnn.distributed.LOCAL``, the identity) unless
    ``minicnn.distributed.DistributedOptimizer`` gave it the ranks of an MPI run."""
    slot_names = ()
    # Keras's order of the optimizer's variables in a weights file, after the step count
    # and (unless it is a schedule) the learning rate: each variable's slots in turn
    # ("interleaved"), or each slot for every variable in turn ("blocks"); then the
    # scalars of ``keras_scalars`` (Nadam's u_product)
    keras_layout = "interleaved"
    keras_scalars = ()
    _communicator = None

    @property
    def communicator(self):
        if self._communicator is None:
            from ..distributed import LOCAL
            return LOCAL
        return self._communicator

    @communicator.setter
    def communicator(self, value):
        self._communicator = value

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None):
        owner = type(self).__name__
        from .schedules import LearningRateSchedule
        if not isinstance(learning_rate, LearningRateSchedule) and not (
                callable(learning_rate) and not isinstance(learning_rate, numbers.Number)):
            learning_rate = _check_number(owner, "learning_rate", learning_rate, 0)
        self.learning_rate = learning_rate
        self.weight_decay = None if weight_decay is None else _check_number(
            owner, "weight_decay", weight_decay, 0)
        clips = {"clipnorm": clipnorm, "clipvalue": clipvalue,
                 "global_clipnorm": global_clipnorm}
        if sum(v is not None for v in clips.values()) > 1:
            given = ", ".join(f"{k}={v}" for k, v in clips.items())
            raise ValueError(f"{owner}: only one of clipnorm, clipvalue and global_clipnorm can "
                             f"be set. Received: {given}")
        for key, value in clips.items():
            setattr(self, key, None if value is None else _check_number(owner, key, value, 0))
        self.iterations = 0
        self._lr = None
        self._slots = None  # one list per slot name, one array per variable
        self._slots_checked = False

    def _ensure_slots(self, variables):
        if self._slots is None:
            self._slots = {name: [get_array_module(v).zeros_like(v) for v in variables]
                           for name in self.slot_names}
            return
        first = next((a for arrays in self._slots.values() for a in arrays), None)
        if first is not None and variables and \
                get_array_module(first) is not get_array_module(variables[0]):
            # the model moved to another backend (host <-> device): the slots follow
            self._slots = {name: [to_device(a) for a in arrays]
                           for name, arrays in self._slots.items()}
        count = len(next(iter(self._slots.values()))) if self._slots else len(variables)
        if count != len(variables):
            raise ValueError(f"{type(self).__name__}: this optimizer was used with {count} "
                             f"variables and now receives {len(variables)}; use a new "
                             "optimizer for a different model")
        if self._slots_checked:
            return
        self._slots_checked = True  # once after the slots were set: they keep their shapes
        for name, arrays in self._slots.items():
            for i, (slot, variable) in enumerate(zip(arrays, variables)):
                if tuple(slot.shape) != tuple(variable.shape):
                    raise ValueError(f"{type(self).__name__}: slot {name!r} of variable {i} has "
                                     f"shape {tuple(slot.shape)}, the variable "
                                     f"{tuple(variable.shape)}")

    def apply(self, grads, variables):
        """One step: update every variable in place from its gradient (Keras's order:
        gradients first)."""
        grads, variables = list(grads), list(variables)
        if len(grads) != len(variables):
            raise ValueError(f"{type(self).__name__}: {len(grads)} gradients for "
                             f"{len(variables)} variables")
        for i, (g, v) in enumerate(zip(grads, variables)):
            if tuple(g.shape) != tuple(v.shape):
                raise ValueError(f"{type(self).__name__}: gradient {i} has shape "
                                 f"{tuple(g.shape)}, its variable {tuple(v.shape)}")
        grads = self.communicator.average(grads)  # the identity on one process
        self._ensure_slots(variables)
        self._lr = self.current_learning_rate()  # at the step count before this step
        grads = self._clipped([g.astype(v.dtype, copy=False) for g, v in zip(grads, variables)])
        if self.weight_decay:
            for v in variables:  # decoupled: from the weights themselves, before the rule
                v -= v * v.dtype.type(self.weight_decay) * v.dtype.type(self._lr)
        self._before_updates()
        self.iterations += 1
        for i, (g, v) in enumerate(zip(grads, variables)):
            self._update(i, g, v)

    def current_learning_rate(self):
        """The learning rate of the next step: the number, the schedule's value at the
        step count so far, or what the callable returns (called with no argument as
        Keras calls it, or with the step count if it takes one)."""
        from .schedules import LearningRateSchedule
        lr = self.learning_rate
        if isinstance(lr, LearningRateSchedule):
            return float(lr(self.iterations))
        if callable(lr):
            return float(lr(self.iterations) if _takes_step(lr) else lr())
        return lr

    def _clipped(self, grads):
        """Keras's clipping: per-gradient norm, global norm or value (one of them)."""
        if self.clipnorm:
            out = []
            for g in grads:
                xp = get_array_module(g)
                norm = xp.sqrt((g * g).sum())
                c = g.dtype.type(self.clipnorm)
                out.append(g * c / xp.maximum(norm, c))  # unchanged below the norm
            return out
        if self.global_clipnorm:  # on the device, no wait: Keras's clip_by_global_norm
            xp = get_array_module(*grads)
            norm = xp.sqrt(sum((g * g).sum() for g in grads))
            c = norm.dtype.type(self.global_clipnorm)
            scale = c * xp.minimum(1 / norm, 1 / c) + (norm - norm)  # NaN for a NaN norm
            return [g * scale.astype(g.dtype) for g in grads]
        if self.clipvalue:
            c = self.clipvalue
            return [get_array_module(g).clip(g, -c, c) for g in grads]
        return grads

    def _before_updates(self):
        """A hook run once per step before the variables' updates (Nadam's product)."""

    def apply_gradients(self, grads_and_vars):
        grads_and_vars = list(grads_and_vars)
        self.apply([g for g, _ in grads_and_vars], [v for _, v in grads_and_vars])

    def _update(self, i, g, v):
        raise NotImplementedError

    def count_slot_params(self):
        """Slot values plus the iteration counter and learning rate, as Keras counts
        its optimizer's variables (2 per variable for Adam, + 2)."""
        if self._slots is None:  # not used yet: Keras shows no optimizer line either
            return 0
        return sum(int(np.prod(a.shape)) for arrays in self._slots.values() for a in arrays) + 2

    # -- saving ---------------------------------------------------------------------
    def _learning_rate_config(self):
        from .schedules import LearningRateSchedule, serialize
        if isinstance(self.learning_rate, LearningRateSchedule):
            return serialize(self.learning_rate)
        if callable(self.learning_rate):
            raise ValueError(f"{type(self).__name__}: a learning rate given as a function "
                             f"cannot be saved; use a schedule from "
                             f"minicnn.optimizers.schedules")
        return self.learning_rate

    def get_config(self):
        """The constructor's arguments (Keras's names; the clipping and weight decay
        ones only where set)."""
        config = {"learning_rate": self._learning_rate_config()}
        for key in ("weight_decay", "clipnorm", "clipvalue", "global_clipnorm"):
            if getattr(self, key) is not None:
                config[key] = getattr(self, key)
        return config

    def get_state(self):
        """``{"iterations": int, "<slot>": [host arrays]}``: everything a resumed run needs."""
        state = {"iterations": self.iterations}
        for name, arrays in (self._slots or {}).items():
            state[name] = [to_host(a).copy() for a in arrays]
        return state

    def set_state(self, state):
        self.iterations = int(state["iterations"])
        present = [n for n in self.slot_names if n in state]
        if present and len(present) != len(self.slot_names):
            raise ValueError(f"{type(self).__name__}: saved state has slots {present}, "
                             f"expected {list(self.slot_names)}")
        self._slots = {n: [to_device(a) for a in state[n]] for n in present} or None
        self._slots_checked = False


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.momentum = _check_number("SGD", "momentum", momentum, 0, 1)
        self.nesterov = bool(nesterov)
        self.slot_names = ("momentum",) if self.momentum > 0 else ()

    def _update(self, i, g, w):
        lr = self._lr
        if self.momentum == 0:
            w -= lr * g
            return
        v = self._slots["momentum"][i]
        v *= self.momentum
        v -= lr * g
        if self.nesterov:
            w += self.momentum * v - lr * g
        else:
            w += v

    def get_config(self):
        return dict(super().get_config(), momentum=self.momentum, nesterov=self.nesterov)


class Adam(Optimizer):
    """Adam, in Keras 3's formulation (see the module docstring)."""
    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        owner = type(self).__name__
        self.beta_1 = _check_number(owner, "beta_1", beta_1, 0, 1)
        self.beta_2 = _check_number(owner, "beta_2", beta_2, 0, 1)
        self.epsilon = _check_number(owner, "epsilon", epsilon, 0)

    def _update(self, i, g, w):
        xp = get_array_module(w)
        m, v = self._slots["m"][i], self._slots["v"][i]
        t = self.iterations
        alpha = self._lr * math.sqrt(1 - self.beta_2 ** t) / (1 - self.beta_1 ** t)
        fast = kernels_for(w, g, m, v)
        if (fast is not None and w.dtype in fast.ADAM_DTYPES
                and w.dtype == g.dtype == m.dtype == v.dtype
                and all(a.flags.c_contiguous for a in (w, g, m, v))):
            scalar = w.dtype.type  # the update's scalars in the weights' own precision
            fast.adam_update(w.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1),
                             scalar(1 - self.beta_1), scalar(1 - self.beta_2), scalar(alpha),
                             scalar(self.epsilon))
            return
        m += (1 - self.beta_1) * (g - m)
        v += (1 - self.beta_2) * (g * g - v)
        w -= alpha * m / (xp.sqrt(v) + self.epsilon)

    def get_config(self):
        return dict(super().get_config(), beta_1=self.beta_1, beta_2=self.beta_2,
                    epsilon=self.epsilon)


from .rules import Adagrad, AdamW, Nadam, RMSprop  # noqa: E402  (they build on Adam)
from . import schedules  # noqa: E402,F401

_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "nadam": Nadam, "rmsprop": RMSprop,
            "adagrad": Adagrad}
# the classes a model file may name: looked up here only, never as attributes
CLASSES = {cls.__name__: cls for cls in (SGD, Adam, AdamW, Nadam, RMSprop, Adagrad)}


def get(identifier):
    """A name (``"sgd"``, ``"adam"``, ``"adamw"``, ``"nadam"``, ``"rmsprop"``,
    ``"adagrad"``: Keras's defaults) or an Optimizer instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"unknown optimizer; expected an Optimizer or one of {sorted(_BY_NAME)}. "
                     f"Received: optimizer={identifier!r}")
