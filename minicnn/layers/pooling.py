"""MaxPooling2D, AveragePooling2D and MinPooling2D over ``minicnn.ops.pool``."""
from ..ops.pool import pool2d_backward, pool2d_forward
from ..shapes import POOL_PADDINGS, normalize_data_format, normalize_padding, normalize_tuple
from .base import Layer
from .conv import spatial_output_shape


class _Pooling2D(Layer):
    mode = None

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid",
                 data_format="channels_last", input_shape=None, name=None, **kwargs):
        owner = type(self).__name__
        self.pool_size = normalize_tuple(pool_size, 2, "pool_size", owner)
        self.strides = self.pool_size if strides is None else \
            normalize_tuple(strides, 2, "strides", owner)
        self.padding = normalize_padding(padding, POOL_PADDINGS, owner)
        self.data_format = normalize_data_format(data_format, owner)
        super().__init__(name=name, input_shape=input_shape, **kwargs)

    def _check_input_shape(self, shape):
        self._require_image(shape)

    def _output_shape(self, shape):
        oh, ow = spatial_output_shape(self, shape, self.pool_size, self.strides, self.padding,
                                      self.data_format, "pool window")
        if self.data_format == "channels_first":
            return (shape[0], oh, ow)
        return (oh, ow, shape[2])

    def _forward(self, x, training):
        y, self._cache = pool2d_forward(x, self.pool_size, self.strides, self.padding,
                                        self.mode, self.data_format)
        return y

    def _backward(self, dy):
        return pool2d_backward(dy, self._cache)

    def get_config(self):
        return {"name": self.name, "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding, "data_format": self.data_format}


class MaxPooling2D(_Pooling2D):
    """Maximum of each window; padded cells never win. Backward routes each
    window's gradient to its first maximal cell (row-major), as Keras does."""
    mode = "max"


class AveragePooling2D(_Pooling2D):
    """Mean of each window's real cells (padding is not counted, as in Keras)."""
    mode = "avg"


class MinPooling2D(_Pooling2D):
    """Minimum of each window; equals ``-MaxPooling2D(-x)`` forward and backward."""
    mode = "min"
