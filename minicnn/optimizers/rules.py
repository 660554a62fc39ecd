"""AdamW, Nadam, RMSprop and Adagrad: Keras 3's update rules (formulas in
``minicnn.optimizers``' docstring), on the same ``Optimizer`` base as SGD and Adam:
the learning rate (number, schedule or callable), clipping and decoupled weight decay
come from the base's ``apply``; each class here writes only its own rule."""
import math

from ..backend import get_array_module
from . import Adam, Optimizer, _check_number


class AdamW(Adam):
    """Adam with decoupled weight decay (``weight_decay=0.004`` by default, as Keras)."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, **kwargs):
        if weight_decay is None:
            raise ValueError("AdamW: weight_decay must be a number. Received: "
                             "weight_decay=None")
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         weight_decay=weight_decay, **kwargs)


class Nadam(Optimizer):
    """Adam with Nesterov momentum, in Keras 3's formulation (its momentum schedule
    u_t and their running product ``u_product``, part of the saved state)."""
    slot_names = ("momentum", "velocity")
    keras_scalars = ("u_product",)

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = _check_number("Nadam", "beta_1", beta_1, 0, 1)
        self.beta_2 = _check_number("Nadam", "beta_2", beta_2, 0, 1)
        self.epsilon = _check_number("Nadam", "epsilon", epsilon, 0)
        self.u_product = 1.0

    def _u(self, t):
        return self.beta_1 * (1.0 - 0.5 * 0.96 ** t)

    def _before_updates(self):
        self.u_product *= self._u(self.iterations + 1)

    def _update(self, i, g, w):
        xp = get_array_module(w)
        t = self.iterations  # this step's number (1, 2, ...): the base counted it
        u_t, u_next = self._u(t), self._u(t + 1)
        m, v = self._slots["momentum"][i], self._slots["velocity"][i]
        m += (g - m) * w.dtype.type(1 - self.beta_1)
        v += (g * g - v) * w.dtype.type(1 - self.beta_2)
        scalar = w.dtype.type
        m_hat = (scalar(u_next) * m / scalar(1 - self.u_product * u_next)
                 + scalar(1 - u_t) * g / scalar(1 - self.u_product))
        v_hat = v / scalar(1 - self.beta_2 ** t)
        w -= m_hat * scalar(self._lr) / (xp.sqrt(v_hat) + scalar(self.epsilon))

    def get_state(self):
        return dict(super().get_state(), u_product=self.u_product)

    def set_state(self, state):
        super().set_state({k: v for k, v in state.items() if k != "u_product"})
        self.u_product = float(state.get("u_product", self._product_at(self.iterations)))

    def _product_at(self, steps):
        """The product of u_1 .. u_steps (a state saved without it)."""
        return math.prod(self._u(t) for t in range(1, steps + 1))

    def get_config(self):
        return dict(super().get_config(), beta_1=self.beta_1, beta_2=self.beta_2,
                    epsilon=self.epsilon)


class RMSprop(Optimizer):
    """RMSprop: steps scaled by a running root mean square of the gradients."""
    keras_layout = "blocks"

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = _check_number("RMSprop", "rho", rho, 0, 1)
        self.momentum = _check_number("RMSprop", "momentum", momentum, 0, 1)
        self.epsilon = _check_number("RMSprop", "epsilon", epsilon, 0)
        self.centered = bool(centered)
        self.slot_names = (("velocity",) + (("momentum",) if self.momentum > 0 else ())
                           + (("average_gradient",) if self.centered else ()))

    def _update(self, i, g, w):
        xp = get_array_module(w)
        scalar = w.dtype.type
        s = self._slots["velocity"][i]
        s *= scalar(self.rho)
        s += scalar(1 - self.rho) * (g * g)
        if self.centered:
            a = self._slots["average_gradient"][i]
            a *= scalar(self.rho)
            a += scalar(1 - self.rho) * g
            denominator = s - a * a + scalar(self.epsilon)
        else:
            denominator = s + scalar(self.epsilon)
        step = scalar(self._lr) * g / xp.sqrt(denominator)
        if self.momentum > 0:
            p = self._slots["momentum"][i]
            p *= scalar(self.momentum)
            p += step
            w -= p
        else:
            w -= step

    def get_config(self):
        return dict(super().get_config(), rho=self.rho, momentum=self.momentum,
                    epsilon=self.epsilon, centered=self.centered)


class Adagrad(Optimizer):
    """Adagrad: steps scaled by the root of the sum of every squared gradient so far."""
    slot_names = ("accumulator",)

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = _check_number(
            "Adagrad", "initial_accumulator_value", initial_accumulator_value, 0)
        self.epsilon = _check_number("Adagrad", "epsilon", epsilon, 0)

    def _ensure_slots(self, variables):
        fresh = self._slots is None
        super()._ensure_slots(variables)
        if fresh:  # the accumulators start at initial_accumulator_value, not 0
            for a in self._slots["accumulator"]:
                a += a.dtype.type(self.initial_accumulator_value)

    def _update(self, i, g, w):
        xp = get_array_module(w)
        s = self._slots["accumulator"][i]
        s += g * g
        w -= w.dtype.type(self._lr) * g / xp.sqrt(s + w.dtype.type(self.epsilon))

    def get_config(self):
        return dict(super().get_config(),
                    initial_accumulator_value=self.initial_accumulator_value,
                    epsilon=self.epsilon)
