"""Pure forward/backward pairs over arrays.

Each ``*_forward`` returns ``(output, cache)``; each ``*_backward`` takes the
upstream gradient ``dy = dL/doutput`` and that cache and returns the input
gradient (and the parameter gradients, where there are parameters). Nothing
here keeps state: the layers in ``minicnn.layers`` hold weights and caches.
"""
from .activations import (ACTIVATIONS, activation_backward, activation_forward,
                          bias_activation_forward, softmax)
from .batchnorm import batchnorm_backward, batchnorm_forward
from .conv import conv2d_backward, conv2d_forward, conv2d_output_shape
from .dense import dense_backward, dense_forward, flatten_backward, flatten_forward
from .dropout import dropout_backward, dropout_forward
from .im2col import col2im, im2col
from .losses import (categorical_crossentropy, categorical_crossentropy_backward,
                     mean_squared_error, mean_squared_error_backward, one_hot,
                     softmax_cross_entropy_backward, softmax_cross_entropy_forward)
from .pool import POOL_MODES, pool2d_backward, pool2d_forward, pool2d_output_shape
from .sums import bias_gradient, column_sums

__all__ = [
    "ACTIVATIONS", "activation_backward", "activation_forward", "bias_activation_forward",
    "softmax", "bias_gradient", "column_sums",
    "batchnorm_backward", "batchnorm_forward",
    "conv2d_backward", "conv2d_forward", "conv2d_output_shape",
    "dense_backward", "dense_forward", "flatten_backward", "flatten_forward",
    "dropout_backward", "dropout_forward", "col2im", "im2col",
    "categorical_crossentropy", "categorical_crossentropy_backward",
    "mean_squared_error", "mean_squared_error_backward", "one_hot",
    "softmax_cross_entropy_backward", "softmax_cross_entropy_forward",
    "POOL_MODES", "pool2d_backward", "pool2d_forward", "pool2d_output_shape",
]
