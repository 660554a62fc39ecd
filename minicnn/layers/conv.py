"""Conv2D: a thin layer over ``minicnn.ops.conv`` with an optional fused activation."""
from .. import initializers, regularizers
from ..ops.activations import (activation_backward, bias_activation_forward,
                               normalize_activation)
from ..ops.conv import conv2d_backward, conv2d_forward
from ..ops.sums import bias_gradient
from ..shapes import (CONV_PADDINGS, normalize_data_format, normalize_padding,
                      normalize_tuple, resolve_padding)
from .base import Layer, _format_shape


def spatial_output_shape(layer, shape, window, strides, padding, data_format, what):
    """(OH, OW) for a sample shape, with an error naming the layer if it is empty."""
    hw = shape[1:3] if data_format == "channels_first" else shape[0:2]
    if None in hw:
        out = [None if n is None else resolve_padding((n,), (k,), (s,), padding)[1][0]
                    for n, k, s in zip(hw, window, strides)]
    else:
        out = list(resolve_padding(hw, window, strides, padding)[1])
    if any(o is not None and o <= 0 for o in out):
        raise layer._error(ValueError, f"a {window[0]}x{window[1]} {what} with padding "
                                       f"'{padding}' does not fit an input of "
                                       f"{hw[0]}x{hw[1]} (input shape "
                                       f"{_format_shape((None,) + shape)}); the output would "
                                       f"be empty")
    return tuple(out)


class Conv2D(Layer):
    """2-D convolution (cross-correlation), Keras's Conv2D plus ``padding="full"``.

    Input (N, H, W, C) (or (N, C, H, W) with channels_first); kernel
    (KH, KW, C, filters); output (N, OH, OW, filters) with, per axis,
    valid: (H - K) // S + 1   same: ceil(H / S)   full: (H + K - 2) // S + 1.

    ``kernel_regularizer`` / ``bias_regularizer`` / ``activity_regularizer``: penalties
    added to the loss (``minicnn.regularizers``).

    >>> layer = Conv2D(6, 5, padding="same", activation="tanh")
    >>> layer.compute_output_shape((28, 28, 1))
    (28, 28, 6)
    """
    has_weights = True

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 data_format="channels_last", input_shape=None, name=None,
                 kernel_regularizer=None, bias_regularizer=None, **kwargs):
        owner = "Conv2D"
        self.filters = normalize_tuple(filters, 1, "filters", owner)[0]
        self.kernel_size = normalize_tuple(kernel_size, 2, "kernel_size", owner)
        self.strides = normalize_tuple(strides, 2, "strides", owner)
        self.padding = normalize_padding(padding, CONV_PADDINGS, owner)
        self.activation = normalize_activation(activation, owner)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer, owner,
                                                   "kernel_initializer")
        self.bias_initializer = initializers.get(bias_initializer, owner, "bias_initializer")
        self.data_format = normalize_data_format(data_format, owner)
        self.kernel_regularizer = regularizers.get(kernel_regularizer,
                                                   f"{owner}: kernel_regularizer")
        self.bias_regularizer = regularizers.get(bias_regularizer, f"{owner}: bias_regularizer")
        super().__init__(name=name, input_shape=input_shape, **kwargs)

    def _channel_axis(self):
        return 0 if self.data_format == "channels_first" else 2

    def _check_input_shape(self, shape):
        self._require_image(shape)
        if shape[self._channel_axis()] is None:
            raise self._error(ValueError, "the channel axis of the input must be known, "
                                          f"received shape {_format_shape((None,) + shape)}")

    def _fixed_axes(self, sample_rank):
        return (self._channel_axis(),)

    def _output_shape(self, shape):
        oh, ow = spatial_output_shape(self, shape, self.kernel_size, self.strides,
                                      self.padding, self.data_format, "kernel")
        if self.data_format == "channels_first":
            return (self.filters, oh, ow)
        return (oh, ow, self.filters)

    def _build(self, shape):
        channels = shape[self._channel_axis()]
        self.add_weight("kernel", self.kernel_size + (channels, self.filters),
                        self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer)

    def _forward(self, x, training):
        kernel, bias = self._weight("kernel"), self._weight("bias")
        if self.activation != "softmax":  # bias and activation are the op's epilogue
            y, conv_cache = conv2d_forward(x, kernel, bias, self.strides, self.padding,
                                           self.data_format, self.activation)
            self._cache = (conv_cache, None)
            return y
        # softmax acts along the last axis, whatever the data format: after the op
        z, conv_cache = conv2d_forward(x, kernel, None, self.strides, self.padding,
                                       self.data_format)
        y, act_cache = bias_activation_forward(z, bias, self.activation,
                                               self._channel_axis() + 1)
        self._cache = (conv_cache, act_cache)
        return y

    def _backward(self, dy):
        conv_cache, act_cache = self._cache
        if act_cache is not None:
            return self._backward_linear(activation_backward(dy, act_cache))
        dx, dw, db = conv2d_backward(dy, conv_cache, need_dx=self._input_gradient)
        self._set_gradients([dw, db] if self.use_bias else [dw])
        return dx

    def _backward_linear(self, dz):
        """Below a softmax (forward added the bias after the op)."""
        dx, dw, _ = conv2d_backward(dz, self._cache[0], need_dx=self._input_gradient)
        if self.use_bias:
            self._set_gradients([dw, bias_gradient(dz, self._channel_axis() + 1)])
        else:
            self._set_gradients([dw])
        return dx

    def get_config(self):
        return {"name": self.name, "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding,
                "activation": self.activation, "use_bias": self.use_bias,
                "data_format": self.data_format,
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "activity_regularizer": regularizers.serialize(self.activity_regularizer)}
