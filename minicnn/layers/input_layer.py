"""``InputLayer``: the layer that makes an input's symbolic tensor.

``keras.Input(shape)`` is ``InputLayer(shape=shape).output``. In a functional model
the input layers head ``model.layers`` (as in Keras: ``model.layers[0]`` of
``Model(inputs, outputs)`` is an InputLayer); they hold no weights and compute
nothing, so the graph engine (``minicnn.network``) never runs them. As the first entry
of a ``Sequential`` model an InputLayer gives the input shape, as ``Input`` does, and
is not among that model's ``layers`` (Keras 3).
"""
from .base import Layer


class InputLayer(Layer):
    """Keras's ``InputLayer(shape=None, batch_size=None, dtype=None, batch_shape=None,
    name=None)``; ``output`` is its symbolic tensor."""

    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=None,
                 batch_shape=None, input_tensor=None, optional=False, name=None, **kwargs):
        from ..graph import _input_tensor
        from .. import backend
        name = name or backend.unique_name("input_layer")
        super().__init__(name=name, **kwargs)
        tensor = _input_tensor(shape, batch_size=batch_size, dtype=dtype, sparse=sparse,
                               batch_shape=batch_shape, name=name, tensor=input_tensor,
                               optional=optional)
        tensor.input_layer = self
        self._output_tensor = tensor
        self.batch_shape = tensor.shape
        self.input_shape = tuple(tensor.shape[1:])
        self.dtype = tensor.dtype
        self.built = True
        self.trainable = False

    @property
    def output(self):
        return self._output_tensor

    def _forward(self, x, training):
        return x

    def _backward(self, dy):
        return dy

    def get_config(self):
        return {"batch_shape": list(self.batch_shape), "dtype": self.dtype,
                "name": self.name}

    def __repr__(self):
        return f"<InputLayer name={self.name!r} batch_shape={self.batch_shape}>"
