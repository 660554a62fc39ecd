"""SGD and Adam with Keras 3's exact update rules.

An optimizer keeps one set of slots (momentum, Adam's m and v) per variable, in
the order the variables are given, and updates the variables *in place*, so the
layers that own them see the new values.

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
gradients are tiny.
"""
import math
import numbers

import numpy as np

from .backend import get_array_module, kernels_for, to_device, to_host


def _check_number(owner, name, value, low=None, high=None, low_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be a finite number. Received: {name}={value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{owner}: {name} must be {'>' if low_open else '>='} {low}. "
                         f"Received: {name}={value!r}")
    if high is not None and value > high:
        raise ValueError(f"{owner}: {name} must be <= {high}. Received: {name}={value!r}")
    return float(value)


class Optimizer:
    """Base class: slot bookkeeping, ``apply``, and state for saving.

    ``communicator`` is the set of processes whose gradients an update averages: one
    process (``minicnn.distributed.LOCAL``, the identity) unless
    ``minicnn.distributed.DistributedOptimizer`` gave it the ranks of an MPI run."""
    slot_names = ()
    _communicator = None

    @property
    def communicator(self):
        if self._communicator is None:
            from .distributed import LOCAL
            return LOCAL
        return self._communicator

    @communicator.setter
    def communicator(self, value):
        self._communicator = value

    def __init__(self, learning_rate):
        self.learning_rate = _check_number(type(self).__name__, "learning_rate",
                                           learning_rate, 0, low_open=False)
        self.iterations = 0
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
        self.iterations += 1
        for i, (g, v) in enumerate(zip(grads, variables)):
            self._update(i, g.astype(v.dtype, copy=False), v)

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
    def get_config(self):
        return {"learning_rate": self.learning_rate}

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

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        super().__init__(learning_rate)
        self.momentum = _check_number("SGD", "momentum", momentum, 0, 1)
        self.nesterov = bool(nesterov)
        self.slot_names = ("momentum",) if self.momentum > 0 else ()

    def _update(self, i, g, w):
        lr = self.learning_rate
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
        return {"learning_rate": self.learning_rate, "momentum": self.momentum,
                "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam, in Keras 3's formulation (see the module docstring)."""
    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        super().__init__(learning_rate)
        self.beta_1 = _check_number("Adam", "beta_1", beta_1, 0, 1)
        self.beta_2 = _check_number("Adam", "beta_2", beta_2, 0, 1)
        self.epsilon = _check_number("Adam", "epsilon", epsilon, 0)

    def _update(self, i, g, w):
        xp = get_array_module(w)
        m, v = self._slots["m"][i], self._slots["v"][i]
        t = self.iterations
        alpha = self.learning_rate * math.sqrt(1 - self.beta_2 ** t) / (1 - self.beta_1 ** t)
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
        return {"learning_rate": self.learning_rate, "beta_1": self.beta_1,
                "beta_2": self.beta_2, "epsilon": self.epsilon}


_BY_NAME = {"sgd": SGD, "adam": Adam}
# the classes a model file may name: looked up here only, never as attributes
CLASSES = {"SGD": SGD, "Adam": Adam}


def get(identifier):
    """``"sgd"``, ``"adam"`` (Keras defaults) or an Optimizer instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"unknown optimizer; expected an Optimizer or one of {sorted(_BY_NAME)}. "
                     f"Received: optimizer={identifier!r}")
