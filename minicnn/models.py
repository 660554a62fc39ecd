"""``Sequential``: a stack of layers, the model whose graph is one chain.

Each layer is called on the previous one's output, so the graph (``minicnn.graph``)
has one node per layer in a line and the engine that runs any graph
(``minicnn.network``) runs it: there is one implementation of forward and backward,
and a stack is its simplest case. What ``Sequential`` adds is building that chain:
``add``, ``pop``, an ``Input`` or ``input_shape`` for the first layer, or a build on
the first call.
"""
from . import backend
from .functional import Model
from .layers import AveragePooling2D, Conv2D, Layer, MaxPooling2D, MinPooling2D
from .layers.base import _format_shape
from .model_files import load_model  # noqa: F401  (minicnn.models.load_model)
from .network import Graph

__all__ = ["Model", "Sequential", "load_model"]


class Sequential(Model):
    """A linear stack of layers with Keras's model API.

    >>> model = Sequential([Conv2D(6, 5, activation="tanh", input_shape=(28, 28, 1)),
    ...                     Flatten(), Dense(10, activation="softmax")])
    >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
    ...               metrics=["accuracy"])
    """

    def __init__(self, layers=None, name=None, trainable=True):
        super().__init__(name=backend.unique_name("sequential") if name is None else name)
        self._input_tensor = None    # a minicnn.Input given as the first entry
        for layer in layers or []:
            self.add(layer)
        if trainable is not True:
            self.trainable = trainable

    @property
    def layers(self):
        """The layers, in order (an ``Input`` or ``InputLayer`` given first is not one,
        as in Keras 3)."""
        return self._layers

    def pop(self, rebuild=True):
        """Remove and return the last layer; the model is rebuilt without it."""
        if not self._layers:
            raise IndexError(f"Sequential '{self.name}': there are no layers in the model")
        layer = self._layers.pop()
        if self.built:
            if rebuild:
                self._build_from(0, self._sample_in)
            else:
                self._forget_graph()
                self.built = False
        return layer

    def add(self, layer):
        from .graph import is_symbolic
        from .layers import InputLayer
        if isinstance(layer, InputLayer):
            layer = layer.output
        if is_symbolic(layer):  # minicnn.Input: the input shape, not a layer
            if self._layers or self._input_tensor is not None:
                raise ValueError(f"Sequential '{self.name}': an Input may only be the first "
                                 f"entry of the model. Received: {layer!r}")
            self._input_tensor = layer
            self.build(layer.shape)
            return
        if not isinstance(layer, (Layer, Model)):  # a model is a layer of another model
            raise TypeError(f"Sequential.add expects a minicnn layer. Received: {layer!r}")
        if any(existing.name == layer.name for existing in self._layers):
            raise ValueError(f"Sequential '{self.name}': a layer named '{layer.name}' is "
                             "already in the model; layer names must be unique")
        self._layers.append(layer)
        # As in Keras, input_shape counts only on the first layer.
        if len(self._layers) == 1 and layer.input_shape_arg is not None:
            self.build(layer.input_shape_arg)
        elif self.built:
            self._build_from(len(self._layers) - 1, self._sample_out)

    def _sample_shape(self, input_shape):
        shape = tuple(input_shape)
        if shape and shape[0] is None:
            return shape[1:]
        first = self._layers[0] if self._layers else None
        if isinstance(first, (Conv2D, MaxPooling2D, AveragePooling2D, MinPooling2D)) \
                and len(shape) == 4:
            return shape[1:]
        return shape

    def build(self, input_shape=None):
        """Build every layer for inputs of ``input_shape`` ((None, 28, 28, 1) or (28, 28, 1))."""
        if input_shape is None:
            first = self._layers[0] if self._layers else None
            if first is None or first.input_shape_arg is None:
                raise ValueError(f"Sequential '{self.name}': build() needs an input shape "
                                 "(or input_shape= on the first layer)")
            input_shape = first.input_shape_arg
        self._sample_in = self._sample_shape(input_shape)
        self._build_from(0, self._sample_in)

    def _forget_graph(self):
        """Take this model's nodes off its layers (before the chain is recorded anew)."""
        for node in self._graph.nodes if self._graph is not None else []:
            if node in node.layer._inbound:
                node.layer._inbound.remove(node)
        self._graph = None

    def _record_graph(self):
        """The chain: an Input, then each layer called on the previous layer's output
        (``layer.input`` / ``layer.output`` name them), run by ``minicnn.network``."""
        from .graph import Input, call_symbolic
        self._forget_graph()
        first = self._input_tensor or Input(self._sample_in)
        tensor = first
        for layer in self._layers:
            tensor = call_symbolic(layer, tensor)
        self._set_graph(Graph([first], [tensor], owner=f"Sequential '{self.name}'"))

    def _build_from(self, start, shape):
        for layer in self._layers[start:]:
            if not layer.built:
                layer.build(shape)
            elif isinstance(layer, Model):
                layer.compute_output_shape(shape)  # raises unless built for ``shape``
            elif layer.input_shape != tuple(shape):
                raise ValueError(f"{layer._who()} was built for inputs "
                                 f"{_format_shape((None,) + layer.input_shape)} but receives "
                                 f"{_format_shape((None,) + tuple(shape))} in this model")
            shape = layer.compute_output_shape(shape)
        self._record_graph()
