"""GlobalAveragePooling2D and GlobalMaxPooling2D over ``minicnn.ops.reshaping``:
one value per image and channel, as in Keras 3."""
import numpy as np

from ..ops.reshaping import (global_average_pooling2d_backward,
                             global_average_pooling2d_forward,
                             global_max_pooling2d_backward, global_max_pooling2d_forward)
from ..shapes import normalize_data_format
from .base import Layer


class _GlobalPooling2D(Layer):
    """(N, H, W, C) -> (N, C), or (N, 1, 1, C) with ``keepdims=True``;
    channels_first: (N, C, H, W) -> (N, C) or (N, C, 1, 1)."""
    _ops = None  # (forward, backward)

    def __init__(self, data_format=None, keepdims=False, input_shape=None, name=None,
                 **kwargs):
        owner = type(self).__name__
        self.data_format = normalize_data_format(data_format, owner)
        if not isinstance(keepdims, (bool, np.bool_)):
            raise TypeError(f"{owner}: `keepdims` must be True or False. "
                            f"Received: keepdims={keepdims!r}")
        self.keepdims = bool(keepdims)
        super().__init__(name=name, input_shape=input_shape, **kwargs)

    def _check_input_shape(self, shape):
        self._require_image(shape)

    def _output_shape(self, shape):
        if self.data_format == "channels_first":
            return (shape[0], 1, 1) if self.keepdims else (shape[0],)
        return (1, 1, shape[2]) if self.keepdims else (shape[2],)

    def _forward(self, x, training):
        y, self._cache = type(self)._ops[0](x, self.data_format, self.keepdims)
        return y

    def _backward(self, dy):
        return type(self)._ops[1](dy, self._cache)

    def get_config(self):
        return {"name": self.name, "data_format": self.data_format, "keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPooling2D):
    """The mean of every channel over the whole image (= AveragePooling2D with
    pool_size (H, W)). Backward: every pixel gets ``dy / (H * W)``."""
    _ops = (global_average_pooling2d_forward, global_average_pooling2d_backward)


class GlobalMaxPooling2D(_GlobalPooling2D):
    """The maximum of every channel over the whole image.

    Backward with ties: a channel's gradient is **split equally** among the k cells
    that hold its maximum (each gets ``dy / k``), as Keras does on JAX (checked on
    Keras 3.15.1 / jax 0.10.2: a 2x2 image ``[[1, 3], [3, 2]]`` with dy = 1 gives
    ``[[0, 0.5], [0.5, 0]]``, an all-ones 3x3 image gives 1/9 everywhere). This
    differs from MaxPooling2D, whose window sends all of dy to its first maximal
    cell, so with ties GlobalMaxPooling2D's gradient is not that of
    MaxPooling2D(pool_size=(H, W)); without ties the two agree.
    """
    _ops = (global_max_pooling2d_forward, global_max_pooling2d_backward)
