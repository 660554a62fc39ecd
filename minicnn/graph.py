"""Symbolic tensors: what ``minicnn.Input`` returns and what a layer called on one gives.

A ``KerasTensor`` holds no values, only a shape (with ``None`` for the batch axis), a
dtype, and the ``Node`` that made it: the layer and the tensors it was called on.
Calling a layer on one builds the layer for that shape and returns the output's
tensor, so ``x = Input((28, 28, 1)); y = Conv2D(6, 5)(x)`` records the graph
``x -> conv2d -> y`` as Keras's functional API does. A ``Sequential`` model records
the same graph for its layers, so ``layer.input`` and ``layer.output`` name them.
"""
from . import backend


class Node:
    """One call of ``layer`` on ``inputs`` (KerasTensors), giving ``output``; ``multi``:
    the layer was called on a list (a merge layer), so it takes and returns lists."""

    def __init__(self, layer, inputs, output, multi=False):
        self.layer, self.inputs, self.output = layer, list(inputs), output
        self.multi = multi


class KerasTensor:
    """A symbolic tensor: shape ``(None, ...)``, dtype, and the node that produced it
    (None for an ``Input``, whose ``input_layer`` is the InputLayer that made it)."""

    def __init__(self, shape, dtype=None, name=None, node=None):
        self.shape = tuple(shape)
        self.dtype = dtype or backend.floatx()
        self.name = name or backend.unique_name("keras_tensor")
        self.node = node
        self.input_layer = None

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return (f"<KerasTensor shape={self.shape}, dtype={self.dtype}, "
                f"name={self.name}>")


def _sizes(shape, what):
    if shape is None:
        raise ValueError(f"Input: {what} is required. Received: {what}=None")
    try:
        shape = tuple(shape)
    except TypeError:
        shape = (shape,)
    for d in shape:
        if not (d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0)):
            raise ValueError(f"Input: {what} must hold positive ints (or None). Received: "
                             f"{what}={shape!r}")
    return shape


def Input(shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, name=None,
          tensor=None, optional=False):
    """A symbolic input of sample shape ``shape`` (Keras's ``keras.Input``): the first
    entry of a ``Sequential`` model, or the start of a functional graph. As in Keras it
    is the output of an ``InputLayer`` (``tensor.input_layer``), which heads a
    functional model's ``layers``."""
    from .layers.input_layer import InputLayer
    return InputLayer(shape, batch_size=batch_size, dtype=dtype, sparse=sparse,
                      batch_shape=batch_shape, input_tensor=tensor, optional=optional,
                      name=name).output


def _input_tensor(shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None,
                  name=None, tensor=None, optional=False):
    """The symbolic tensor of an input (what ``InputLayer`` makes)."""
    if sparse or tensor is not None or optional:
        raise ValueError("Input: sparse, tensor and optional inputs are not implemented in "
                         "minicnn")
    if batch_shape is not None:
        full = _sizes(batch_shape, "batch_shape")
        if len(full) < 1:
            raise ValueError(f"Input: batch_shape needs a batch axis. Received: {batch_shape}")
    else:
        full = (batch_size,) + _sizes(shape, "shape")
    return KerasTensor(full, dtype=dtype, name=name or backend.unique_name("input_layer"))


def is_symbolic(x):
    return isinstance(x, KerasTensor)


def call_symbolic(layer, tensor):
    """``layer`` called on a KerasTensor (or a list of them, for a merge layer): built
    for the sample shape(s), its output's tensor recorded with the node that made it."""
    multi = isinstance(tensor, (list, tuple))
    tensors = list(tensor) if multi else [tensor]
    if not all(isinstance(t, KerasTensor) for t in tensors):
        raise TypeError(f"{layer._who()}: a symbolic call takes KerasTensors (from "
                        f"minicnn.Input or another layer's call). Received: {tensor!r}")
    samples = [t.shape[1:] for t in tensors]
    sample = samples if multi else samples[0]
    if not layer.built:
        layer.build(sample)
    out = layer.compute_output_shape(sample)
    result = KerasTensor((tensors[0].shape[0],) + tuple(out), dtype=layer.dtype,
                         name=backend.unique_name("keras_tensor"))
    result.node = Node(layer, tensors, result, multi=multi)
    layer._inbound.append(result.node)
    return result
