"""Dense, Flatten, Activation and Dropout."""
import math
import numbers

import numpy as np

from .. import initializers, regularizers
from ..ops.activations import (activation_backward, activation_forward,
                               bias_activation_forward, normalize_activation)
from ..ops.dense import dense_backward, dense_forward, flatten_backward, flatten_forward
from ..ops.dropout import dropout_backward, dropout_forward
from ..ops.sums import bias_gradient
from ..shapes import normalize_data_format, normalize_tuple
from ..utils import global_rng
from .base import Layer, _format_shape


class Dense(Layer):
    """Fully connected layer on the last axis: ``y = activation(x @ kernel + bias)``.

    Input (N, ..., in); kernel (in, units); output (N, ..., units).
    ``kernel_regularizer`` / ``bias_regularizer`` / ``activity_regularizer``: penalties
    added to the loss (``minicnn.regularizers``).
    """
    has_weights = True

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 input_shape=None, name=None, kernel_regularizer=None, bias_regularizer=None,
                 **kwargs):
        self.units = normalize_tuple(units, 1, "units", "Dense")[0]
        self.activation = normalize_activation(activation, "Dense")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer, "Dense",
                                                   "kernel_initializer")
        self.bias_initializer = initializers.get(bias_initializer, "Dense", "bias_initializer")
        self.kernel_regularizer = regularizers.get(kernel_regularizer,
                                                   "Dense: kernel_regularizer")
        self.bias_regularizer = regularizers.get(bias_regularizer, "Dense: bias_regularizer")
        super().__init__(name=name, input_shape=input_shape, **kwargs)

    def _check_input_shape(self, shape):
        self._require_rank(shape, (2,), "(batch, ..., features)")
        if shape[-1] is None:
            raise self._error(ValueError, "the last axis of the input must be known, "
                                          f"received shape {_format_shape((None,) + shape)}")

    fixed_rank = False  # acts on the last axis of any rank, as in Keras

    def _fixed_axes(self, sample_rank):
        return (-1,)

    def _output_shape(self, shape):
        return shape[:-1] + (self.units,)

    def _build(self, shape):
        self.add_weight("kernel", (shape[-1], self.units), self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer)

    def _forward(self, x, training):
        z, dense_cache = dense_forward(x, self._weight("kernel"))
        y, act_cache = bias_activation_forward(z, self._weight("bias"), self.activation)
        self._cache = (dense_cache, act_cache)
        return y

    def _backward(self, dy):
        return self._backward_linear(activation_backward(dy, self._cache[1]))

    def _backward_linear(self, dz):
        dx, dw, _ = dense_backward(dz, self._cache[0])
        self._set_gradients([dw, bias_gradient(dz)] if self.use_bias else [dw])
        return dx

    def get_config(self):
        return {"name": self.name, "units": self.units, "activation": self.activation,
                "use_bias": self.use_bias,
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "activity_regularizer": regularizers.serialize(self.activity_regularizer)}


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1*d2*...), in H, W, C order (channels_first input is
    transposed first, as Keras does)."""

    def __init__(self, data_format=None, input_shape=None, name=None, **kwargs):
        self.data_format = normalize_data_format(data_format, "Flatten")
        super().__init__(name=name, input_shape=input_shape, **kwargs)

    def _check_input_shape(self, shape):
        self._require_rank(shape, (2,), "(batch, ...)")

    def _fixed_axes(self, sample_rank):
        return tuple(range(sample_rank))  # the next layer's weights fix the flat size

    def _output_shape(self, shape):
        return (None,) if None in shape else (math.prod(shape),)

    def _forward(self, x, training):
        y, self._cache = flatten_forward(x, self.data_format)
        return y

    def _backward(self, dy):
        return flatten_backward(dy, self._cache)

    def get_config(self):
        return {"name": self.name, "data_format": self.data_format}


class Activation(Layer):
    """Applies an activation ('linear', 'relu', 'tanh', 'sigmoid', 'softmax')."""
    fixed_rank = False

    def __init__(self, activation, input_shape=None, name=None, **kwargs):
        self.activation = normalize_activation(activation, "Activation")
        super().__init__(name=name, input_shape=input_shape, **kwargs)

    def _check_input_shape(self, shape):
        self._require_rank(shape, (1,), "(batch, ...)")

    def _forward(self, x, training):
        y, self._cache = activation_forward(x, self.activation)
        return y

    def _backward(self, dy):
        return activation_backward(dy, self._cache)

    def _backward_linear(self, dz):
        return dz

    def get_config(self):
        return {"name": self.name, "activation": self.activation}


class Dropout(Layer):
    """Inverted dropout: in training, zero each unit with probability ``rate`` and
    scale the rest by ``1 / (1 - rate)``; at inference, the identity.

    Each training step draws one key (two 32-bit numbers) from the layer's generator
    and the mask is a hash of the key and each unit's index (``minicnn.ops.dropout``):
    with ``seed`` the layer draws the same sequence of masks every run, on every
    backend, whether the step runs the batch whole or in two halves. (These masks
    differ from those of minicnn 0.1's Dropout, which drew one float64 per unit, and
    from Keras's: a seed fixes a layer's masks within minicnn.)
    """
    fixed_rank = False

    def __init__(self, rate, seed=None, input_shape=None, name=None, **kwargs):
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
            raise ValueError(f"Dropout: rate must be a number in [0, 1) (rate 1 would drop "
                             f"every unit). Received: rate={rate!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                                 or seed < 0):
            raise ValueError(f"Dropout: seed must be None or a non-negative int. "
                             f"Received: seed={seed!r}")
        self.rate = float(rate)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)
        # set on the copies of a two-thread step (minicnn.split_step): the key drawn
        # once for the whole batch and the first row of this copy's half
        self._step_key, self._row_offset = None, 0
        super().__init__(name=name, input_shape=input_shape, **kwargs)

    def draw_key(self):
        """The next step's key, from the layer's generator (or the global one)."""
        rng = self._rng if self._rng is not None else global_rng()
        return tuple(int(k) for k in rng.integers(0, 2**32, size=2, dtype=np.uint64))

    def _check_input_shape(self, shape):
        self._require_rank(shape, (1,), "(batch, ...)")

    def _forward(self, x, training):
        key = None
        if training and self.rate > 0:
            key = self._step_key if self._step_key is not None else self.draw_key()
        offset = self._row_offset * (x.size // len(x)) if len(x) else 0
        y, self._cache = dropout_forward(x, self.rate, key, offset)
        return y

    def _backward(self, dy):
        return dropout_backward(dy, self._cache)

    def get_config(self):
        return {"name": self.name, "rate": self.rate, "seed": self.seed}
