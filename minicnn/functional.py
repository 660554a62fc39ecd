"""``Model``: a graph of layers, built, called and weighed (Keras's functional API).

    inputs = minicnn.Input((32, 32, 3))
    x = Conv2D(16, 3, padding="same", activation="relu")(inputs)
    y = Conv2D(16, 3, padding="same")(x)
    y = Add()([x, y])                       # a residual connection
    outputs = Dense(10, activation="softmax")(Flatten()(y))
    model = Model(inputs=inputs, outputs=outputs)

Calling layers on ``minicnn.Input`` records the graph (``minicnn.graph``); ``Model``
puts its nodes in order and runs them forward and backward (``minicnn.network``).
``Sequential`` (``minicnn.models``) is the model whose graph is one chain. Training
comes from ``Trainer`` (``minicnn.trainer``), files from ``FileMethods``
(``minicnn.model_files``).
"""
import numpy as np

from . import backend
from .backend import as_array
from .graph import KerasTensor, is_symbolic
from .layers.base import _format_shape
from .model_files import FileMethods
from .nesting import AsLayer
from .network import Graph
from .summary import format_summary
from .trainer import Trainer


class Model(Trainer, FileMethods, AsLayer):
    """A model over the graph from ``inputs`` to ``outputs`` (KerasTensors, or lists of
    them), as ``keras.Model(inputs=..., outputs=...)``; it may itself be used as a layer
    of another model (``minicnn.nesting``)."""

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True):
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"{type(self).__name__}: name must be a non-empty string. "
                             f"Received: name={name!r}")
        self.name = name or backend.unique_name("functional")
        self._layers = []            # the layers that compute, in the order they run
        self.built = False
        self._graph = None
        self._single_input = self._single_output = True
        self._sample_in = None       # sample shapes, no batch axis (lists: several)
        self._sample_out = None
        self._trainable = True
        self.optimizer = None
        self.loss = None
        self._objectives, self._log_names = [], []
        self.metric_names = []
        self.stop_training = False
        self.history = None
        self._shuffle_rng = self._shuffle_seed = None  # made by the first fit
        self._inbound = []           # graph.Node of each call inside another model
        if inputs is None and outputs is None and type(self) is not Model:
            return  # a subclass (Sequential) builds its own graph
        self._single_output = not isinstance(outputs, (list, tuple))
        ins = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        outs = [outputs] if self._single_output else list(outputs)
        self._single_input = len(ins) == 1  # one input takes an array, as in Keras
        for what, tensors in (("inputs", ins), ("outputs", outs)):
            if not tensors or not all(isinstance(t, KerasTensor) for t in tensors):
                raise TypeError(f"Model '{self.name}': {what} must be symbolic tensors "
                                f"(minicnn.Input and what layers called on it return). "
                                f"Received: {what}={inputs if what == 'inputs' else outputs!r}")
        self._set_graph(Graph(ins, outs, owner=f"Model '{self.name}'"))
        if trainable is not True:
            self.trainable = trainable

    def _set_graph(self, graph):
        self._graph = graph
        self._layers = graph.layers
        ins = [t.shape[1:] for t in graph.inputs]
        outs = [t.shape[1:] for t in graph.outputs]
        self._sample_in = ins[0] if self._single_input else ins
        self._sample_out = outs[0] if self._single_output else outs
        self.built = True

    @property
    def layers(self):
        """Keras's list: a functional model's input layers (``InputLayer``) among the
        layers that compute, in Keras's order (by depth, then as a depth-first walk
        from the outputs meets them)."""
        return list(self._layers if self._graph is None else self._graph.keras_layers)

    @property
    def input_shape(self):
        """Keras's ``(None, *sample shape)`` of the inputs (a list for several inputs)."""
        self._require_built("input_shape")
        shapes = [tuple(t.shape) for t in self._graph.inputs]
        return shapes[0] if self._single_input else shapes

    @property
    def output_shape(self):
        self._require_built("output_shape")
        shapes = [tuple(t.shape) for t in self._graph.outputs]
        return shapes[0] if self._single_output else shapes

    @property
    def inputs(self):
        """The model's symbolic input tensors, as ``keras.Model.inputs``."""
        self._require_built("inputs")
        return list(self._graph.inputs)

    @property
    def outputs(self):
        self._require_built("outputs")
        return list(self._graph.outputs)

    @property
    def input_names(self):
        """The inputs' names (``Input(name=...)``): the keys of a dict of inputs."""
        return [t.name for t in self._graph.inputs] if self._graph is not None else ["input"]

    @property
    def output_names(self):
        """The outputs' names, as Keras names them: the layers that make them. The keys
        of dicts of targets, losses and metrics, and the prefixes of their logs."""
        if self._graph is None:
            return [self._layers[-1].name] if self._layers else ["output"]
        return [t.node.layer.name if t.node is not None else t.name
                for t in self._graph.outputs]

    @property
    def input(self):
        return self.inputs[0]

    @property
    def output(self):
        return self.outputs[0]

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        """``model.trainable = False`` freezes every layer (as Keras 3 does); True
        unfreezes them all."""
        if not isinstance(value, bool):
            raise TypeError(f"{type(self).__name__} '{self.name}': "
                            f"trainable must be True or False. "
                            f"Received: {value!r}")
        self._trainable = value
        for layer in self.layers:
            layer.trainable = value

    def __call__(self, x, training=False):
        """``model(x)``: the forward pass on an array (inference mode unless
        ``training=True``), building the model on first use; the backend's array."""
        if is_symbolic(x) or (isinstance(x, (list, tuple)) and x and is_symbolic(x[0])):
            from .graph import call_symbolic
            return call_symbolic(self, x)  # the model as one layer of another graph
        x = as_array(x) if self._single_input else [as_array(a) for a in x]
        if self.built:
            self._check_samples(x, "calling the model")
        out = self.forward(x, training=training)
        if not training:
            self._release_caches()
        return out

    def get_layer(self, name=None, index=None):
        """The layer called ``name``, or at position ``index``, as Keras's get_layer."""
        if (name is None) == (index is None):
            raise ValueError(f"{type(self).__name__} '{self.name}': "
                             f"get_layer() takes a layer name or an "
                             f"index, not {'both' if name is not None else 'neither'}. "
                             f"Received: name={name!r}, index={index!r}")
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, int) \
                    or not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"{type(self).__name__} '{self.name}': "
                                 f"was asked to retrieve layer at "
                                 f"index {index!r} but model only has {len(self.layers)} "
                                 f"layers")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"{type(self).__name__} '{self.name}': no such layer: {name!r}. Existing "
                         f"layers are: {[layer.name for layer in self.layers]}")

    def build(self, input_shape=None):
        """A functional model is built by its graph; ``input_shape`` must be its own."""
        if input_shape is not None:
            self.compute_output_shape(self._sample_shape(input_shape))

    def _sample_shape(self, input_shape):
        shape = tuple(input_shape)
        expected = tuple(self._sample_in) if self._single_input else None
        if expected is not None and len(shape) == len(expected) + 1:
            return shape[1:]  # given with the batch axis
        return shape

    def _require_built(self, what):
        if not self.built:
            raise ValueError(f"{type(self).__name__} '{self.name}': "
                             f"{what} needs the model to be built; "
                             "give input_shape= to the first layer or call build(input_shape)")

    def count_params(self):
        self._require_built("count_params()")
        return sum(layer.count_params() for layer in self._layers)

    def summary(self, line_length=None, print_fn=None):
        """Print Keras 3's summary table."""
        self._require_built("summary()")
        text = format_summary(self, line_length)
        (print_fn or print)(text)

    def get_weights(self):
        return [w for layer in self._layers for w in layer.get_weights()]

    def set_weights(self, weights):
        self._require_built("set_weights()")
        weights = list(weights)
        expected = sum(len(layer.weights) for layer in self._layers)
        if len(weights) != expected:
            raise ValueError(f"{type(self).__name__} '{self.name}': "
                             f"set_weights expected {expected} arrays, "
                             f"received {len(weights)}")
        start = 0
        for layer in self._layers:
            count = len(layer.weights)
            layer.set_weights(weights[start:start + count])
            start += count

    @property
    def weights(self):
        """Every weight array (the backend's, not copies), layer by layer in Keras order."""
        return [w for layer in self._layers for w in layer.weights]

    @property
    def trainable_weights(self):
        return [w for layer in self._layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self):
        return [w for layer in self._layers for w in layer.non_trainable_weights]

    def forward(self, x, training=False):
        """Run ``x`` (a list for several inputs) through the graph; a Sequential model
        is built on first use. The output (a list for several outputs)."""
        if not self.built:
            self.build(tuple(np.shape(x))[1:])
        return self.forward_through(self._layers, x, training)

    def forward_through(self, layers, x, training=True):
        """``forward`` through ``layers``: the model's, or copies of them sharing its
        weights, in ``self._layers`` order (minicnn.network)."""
        outs = self._graph.forward([x] if self._single_input else list(x), training, layers)
        return outs[0] if self._single_output else outs

    def backward(self, grad, from_logits=False, input_gradient=True):
        """Walk the layers backwards from ``grad = dL/doutput``; returns dL/dinput.
        ``from_logits=True``: ``grad`` is dL/d(softmax input) of the last layer.
        ``input_gradient=False``: training needs no dL/dinput, so the first layer may
        skip it (and None is returned)."""
        return self.backward_through(self._layers, grad, from_logits, input_gradient)

    def backward_through(self, layers, grad, from_logits=False, input_gradient=True):
        """``backward`` over ``layers`` (the model's, or the copies a forward ran through):
        the graph walked in reverse, gradients of a tensor feeding several layers added
        (minicnn.network)."""
        single = self._single_output
        dxs = self._graph.backward([grad] if single else list(grad),
                                   [from_logits] if single else
                                   [from_logits] * len(grad) if isinstance(from_logits, bool)
                                   else list(from_logits),
                                   input_gradient, layers)
        return dxs[0] if self._single_input else dxs

    def _check_samples(self, x, what):
        """Inputs whose samples differ from the shape the model was built for are an
        error, even where the layers could run them (a conv/pool stack can turn 9x9 and
        8x8 images into the same number of features)."""
        if not self.built or self._sample_in is None:
            return
        if not self._single_input:
            if not isinstance(x, (list, tuple)) or len(x) != len(self._sample_in):
                raise ValueError(f"{type(self).__name__} '{self.name}': {what} expects a list "
                                 f"of {len(self._sample_in)} input arrays. Received: "
                                 f"{type(x).__name__}")
            for a, sample in zip(x, self._sample_in):
                self._check_one_input(a, sample, what)
            return
        self._check_one_input(x, self._sample_in, what)

    def _check_one_input(self, x, sample, what):
        shape = tuple(x.shape) if hasattr(x, "shape") else tuple(np.shape(x))
        expected, received = tuple(sample), shape[1:]
        fits = len(expected) == len(received) and all(
            e is None or e == r for e, r in zip(expected, received))
        if not fits:
            raise ValueError(f"{type(self).__name__} '{self.name}': {what} expects inputs of shape "
                             f"{_format_shape((None,) + expected)} (the shape the model was "
                             f"built for). Received: inputs of shape {shape}")

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} layers={len(self.layers)}>"
