"""Activation layers with arguments: Softmax, ReLU, LeakyReLU and ELU.

Each is Keras 3's layer of the same name (argument names, defaults, validation,
numbers) and a thin shell over a forward/backward pair of
``minicnn.ops.activations`` (the formulas are written out there). They work on
inputs of any rank, element by element (Softmax: along ``axis``), have no
weights, and return their input's shape.

``ReLU()`` with its defaults computes exactly ``Activation("relu")`` (the same
op, with the numba/CUDA kernel where there is one), ``Softmax()`` exactly
``Activation("softmax")``, ``ELU()`` ``Activation("elu")``, and
``LeakyReLU(s)`` ``ReLU(negative_slope=s)``. Note the defaults differ where
Keras's do: ``LeakyReLU()`` has slope 0.3, the activation name ``"leaky_relu"``
slope 0.2.
"""
import math
import numbers
import warnings

from ..ops.activations import (elu_backward, elu_forward, leaky_relu_backward,
                               leaky_relu_forward, relu_backward, relu_forward,
                               softmax_backward, softmax_forward)
from .base import Layer, _format_shape


def _real(value, layer, arg, minimum=None, allow_inf=False):
    """A real number (not a bool, not NaN; infinite only where allowed) -> float,
    else an error that names the layer and the argument, as Keras words it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise (ValueError if value is None else TypeError)(
            f"{layer}: {arg} must be a number{' >= 0' if minimum is not None else ''}. "
            f"Received: {arg}={value!r}")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not (allow_inf and value > 0)):
        raise ValueError(f"{layer}: {arg} must be a finite number. Received: {arg}={value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{layer}: {arg} cannot be negative. Received: {arg}={value!r}")
    return value


class _Elementwise(Layer):
    """Shared by the four layers: any rank of input, output shape = input shape."""
    fixed_rank = False

    def _check_input_shape(self, shape):
        self._require_rank(shape, (1,), "(batch, ...)")


class Softmax(_Elementwise):
    """``y = exp(x - max) / sum(exp(x - max))`` along ``axis`` (an int, or a list of
    ints normalised together; counted with the batch axis, default the last).

    Backward: ``dx = y * (dy - sum_axis(dy * y))``.
    """

    def __init__(self, axis=-1, input_shape=None, name=None, **kwargs):
        self.axis = self._validated_axis(axis)
        super().__init__(name=name, input_shape=input_shape, **kwargs)

    @staticmethod
    def _validated_axis(axis):
        def is_int(a):
            return isinstance(a, numbers.Integral) and not isinstance(a, bool)
        if is_int(axis):
            return int(axis)
        if isinstance(axis, (list, tuple)) and axis and all(is_int(a) for a in axis):
            return [int(a) for a in axis]
        raise TypeError(f"Softmax: axis must be an int or a non-empty list of ints. "
                        f"Received: axis={axis!r}")

    def _axes(self):
        return self.axis if isinstance(self.axis, list) else [self.axis]

    def _check_input_shape(self, shape):
        super()._check_input_shape(shape)
        rank = len(shape) + 1
        seen = set()
        for a in self._axes():
            if not -rank <= a < rank:
                raise self._error(ValueError, f"axis {a} is out of range for input of rank "
                                              f"{rank} (shape {_format_shape((None,) + shape)}); "
                                              f"expected an axis in [{-rank}, {rank - 1}]")
            if a % rank in seen:
                raise self._error(ValueError, f"axis {self.axis} names axis {a % rank} twice "
                                              f"for input of rank {rank}")
            seen.add(a % rank)

    @property
    def activation(self):
        """"softmax" when this layer normalises the last axis alone, as
        ``Activation("softmax")`` does (a model may then start its backward walk at the
        softmax input, fused with a cross-entropy loss); None otherwise."""
        return "softmax" if self._axes() == [-1] else None

    def _forward(self, x, training):
        y, self._cache = softmax_forward(x, self.axis)
        return y

    def _backward(self, dy):
        return softmax_backward(dy, self._cache)

    def _backward_linear(self, dz):
        return dz  # the gradient at the softmax input is the gradient of this layer's input

    def get_config(self):
        return {"name": self.name, "axis": self.axis}


class ReLU(_Elementwise):
    """Keras's ReLU with arguments:

        y = negative_slope * (x - threshold)   for x <= threshold
        y = min(x, max_value)                  for x > threshold

    ``max_value=None`` is no ceiling; all three are numbers >= 0. The defaults are
    plain ``relu``. Backward: ``dy`` times the slope of that piecewise line (see
    ``minicnn.ops.activations.relu_forward`` for the slope Keras takes at a kink).
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, input_shape=None,
                 name=None, **kwargs):
        self.max_value = None if max_value is None else _real(max_value, "ReLU", "max_value",
                                                              minimum=0.0, allow_inf=True)
        self.negative_slope = _real(negative_slope, "ReLU", "negative_slope", minimum=0.0)
        self.threshold = _real(threshold, "ReLU", "threshold", minimum=0.0)
        super().__init__(name=name, input_shape=input_shape, **kwargs)

    def _forward(self, x, training):
        y, self._cache = relu_forward(x, self.negative_slope, self.max_value, self.threshold)
        return y

    def _backward(self, dy):
        return relu_backward(dy, self._cache)

    def get_config(self):
        return {"name": self.name, "max_value": self.max_value,
                "negative_slope": self.negative_slope, "threshold": self.threshold}


class LeakyReLU(_Elementwise):
    """``y = x`` for ``x >= 0``, ``negative_slope * x`` below (``negative_slope >= 0``,
    default 0.3). Backward: ``dy`` for ``x >= 0``, ``negative_slope * dy`` below.

    Keras's deprecated ``alpha=`` is accepted for ``negative_slope``, with Keras's warning.
    """

    def __init__(self, negative_slope=0.3, input_shape=None, name=None, **kwargs):
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
            warnings.warn("LeakyReLU: argument `alpha` is deprecated. Use `negative_slope` "
                          "instead.", stacklevel=2)
        self.negative_slope = _real(negative_slope, "LeakyReLU", "negative_slope", minimum=0.0)
        super().__init__(name=name, input_shape=input_shape, **kwargs)

    def _forward(self, x, training):
        y, self._cache = leaky_relu_forward(x, self.negative_slope)
        return y

    def _backward(self, dy):
        return leaky_relu_backward(dy, self._cache)

    def get_config(self):
        return {"name": self.name, "negative_slope": self.negative_slope}


class ELU(_Elementwise):
    """``y = x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` elsewhere (default alpha 1.0;
    Keras accepts any number, negative too). Backward: ``dy`` for ``x > 0``,
    ``dy * (y + alpha)`` elsewhere (so the slope at 0 is alpha, as in Keras).
    """

    def __init__(self, alpha=1.0, input_shape=None, name=None, **kwargs):
        self.alpha = _real(alpha, "ELU", "alpha")
        super().__init__(name=name, input_shape=input_shape, **kwargs)

    def _forward(self, x, training):
        y, self._cache = elu_forward(x, self.alpha)
        return y

    def _backward(self, dy):
        return elu_backward(dy, self._cache)

    def get_config(self):
        return {"name": self.name, "alpha": self.alpha}
