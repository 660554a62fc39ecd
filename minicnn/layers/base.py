"""The layer protocol shared by every layer.

A layer owns its weights (in Keras order and layout), runs one op from
``minicnn.ops`` forward and keeps that op's cache, and on ``backward(dy)``
hands the cache back to the op to get the input gradient and weight gradients.

Subclasses fill in four hooks:

- ``_check_input_shape(shape)``  rank and size rules for a sample shape (no batch axis)
- ``_output_shape(shape)``       the sample shape of the output
- ``_build(shape)``              create weights with ``add_weight``
- ``_forward(x, training)`` / ``_backward(dy)``  call the ops; ``_backward``
  returns dx and stores weight gradients with ``_set_gradients``.

Regularizers: ``minicnn.layers.regularization``; weights: ``minicnn.layers.weights``.
"""
import re

import numpy as np

from .. import backend
from .regularization import Regularization
from .weights import Weights
from ..backend import as_array, to_device, to_host


def _snake_case(name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _format_shape(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"


class Layer(Regularization, Weights):
    """Base class: naming, building, weights, input checks and the protocol."""

    def __init__(self, name=None, input_shape=None, check_numerics=None, trainable=True,
                 activity_regularizer=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) "
                            f"{sorted(kwargs)}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"{type(self).__name__}: name must be a non-empty string. "
                             f"Received: name={name!r}")
        self.name = name or backend.unique_name(_snake_case(type(self).__name__))
        if input_shape is not None:
            input_shape = self._validated_sample_shape(input_shape, "input_shape")
        self.input_shape_arg = input_shape   # as given by the user; None if not given
        self.check_numerics = check_numerics
        self.built = False
        self.input_shape = None              # sample shape this layer was built for
        self.dtype = None
        self._weights = []                   # [(name, array, trainable)], Keras order
        self._grads = None
        self._cache = None
        self._out_shape = None
        self._input_gradient = True
        self._cache_on_device = False        # where the last forward ran (host or device)
        if not isinstance(trainable, bool):
            raise TypeError(f"{type(self).__name__}: trainable must be True or False. "
                            f"Received: trainable={trainable!r}")
        self._trainable = trainable
        self._inbound = []                   # graph.Node of each symbolic call
        self.activity_regularizer = activity_regularizer
        # the last call's output (in a box that the next call empties: only the last
        # call of a shared layer adds the activity gradient) and its penalty / batch
        self._activity_box = [None]
        self._activity_loss = None

    # -- freezing and the graph --------------------------------------------------
    @property
    def trainable(self):
        """False freezes the layer, as in Keras: its weights move to
        ``non_trainable_weights``, ``fit`` leaves them unchanged, and a frozen
        BatchNormalization runs in inference mode even in training."""
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        if not isinstance(value, bool):
            raise self._error(TypeError, f"trainable must be True or False. Received: "
                                         f"{value!r}")
        self._trainable = value

    def __call__(self, x, training=False):
        """``layer(x)``: on an array, build on first use and run forward (inference mode
        unless ``training=True``), returning the backend's array; on a symbolic
        tensor (``minicnn.Input``), record the call in the graph and return the
        output's symbolic tensor."""
        from .. import graph
        if graph.is_symbolic(x) or (isinstance(x, (list, tuple)) and x
                                    and graph.is_symbolic(x[0])):
            return graph.call_symbolic(self, x)
        return self.forward(x, training=training)  # builds on first use

    def _node(self, what):
        if not self._inbound:
            raise self._error(AttributeError, f"has never been called on a symbolic tensor, so "
                                              f"it has no defined {what}")
        if len(self._inbound) > 1:
            raise self._error(AttributeError, f"has been called {len(self._inbound)} times, so "
                                              f"its {what} is ambiguous")
        return self._inbound[0]

    @property
    def input(self):
        """The symbolic tensor this layer was called on (in a model's graph)."""
        inputs = self._node("input").inputs
        return inputs[0] if len(inputs) == 1 else inputs

    @property
    def output(self):
        """The symbolic tensor this layer produced (in a model's graph)."""
        return self._node("output").output

    # -- messages ----------------------------------------------------------------
    def _who(self):
        return f"{type(self).__name__} '{self.name}'"

    def _error(self, exc_type, message):
        return exc_type(f"{self._who()}: {message}")

    def _validated_sample_shape(self, shape, what):
        try:
            shape = tuple(shape)
        except TypeError:
            raise TypeError(f"{type(self).__name__}: {what} must be a tuple of sizes. "
                            f"Received: {what}={shape!r}") from None
        for d in shape:
            ok = d is None or (isinstance(d, (int, np.integer)) and not isinstance(d, bool)
                               and d > 0)
            if not ok:
                raise ValueError(f"{type(self).__name__}: {what} must hold positive ints "
                                 f"(or None). Received: {what}={shape!r}")
        return tuple(None if d is None else int(d) for d in shape)

    # -- hooks for subclasses ------------------------------------------------------
    def _check_input_shape(self, shape):
        pass

    def _output_shape(self, shape):
        return shape

    def _build(self, shape):
        pass

    def _forward(self, x, training):
        raise NotImplementedError

    def _backward(self, dy):
        raise NotImplementedError

    def _require_image(self, shape):
        """A rank-4 image batch in the layer's ``data_format``."""
        self._require_rank(shape, 4, "(batch, channels, height, width)"
                           if self.data_format == "channels_first"
                           else "(batch, height, width, channels)")

    def _require_rank(self, shape, rank, layout):
        """``rank`` counts the batch axis; ``shape`` does not include it."""
        ok = len(shape) + 1 >= rank[0] if isinstance(rank, tuple) else len(shape) + 1 == rank
        if not ok:
            wanted = f"at least {rank[0]}" if isinstance(rank, tuple) else str(rank)
            raise self._error(ValueError, f"expected input of rank {wanted} {layout}, "
                                          f"received shape {_format_shape((None,) + shape)} "
                                          f"(rank {len(shape) + 1})")

    # -- protocol ------------------------------------------------------------------
    def compute_output_shape(self, input_shape):
        """The output's sample shape (no batch axis) for a sample ``input_shape``."""
        shape = self._validated_sample_shape(input_shape, "input_shape")
        self._check_input_shape(shape)
        return self._output_shape(shape)

    def build(self, input_shape):
        """Create the weights for inputs of sample shape ``input_shape`` (no batch axis)."""
        shape = self._validated_sample_shape(input_shape, "input_shape")
        self._check_input_shape(shape)
        self._output_shape(shape)  # raises if the output would be empty
        self.dtype = backend.floatx()
        self._weights = []
        self._build(shape)
        self.input_shape = shape
        self.built = True

    def _check_data(self, x, what):
        if x.dtype.kind not in "biuf":
            raise self._error(TypeError, f"{what} must be a real numeric array (float, int or "
                                         f"bool), received dtype {x.dtype}")
        flag = backend.check_numerics() if self.check_numerics is None else self.check_numerics
        if flag and x.dtype.kind == "f":
            xp = backend.get_array_module(x)
            bad = int((~xp.isfinite(x)).sum())
            if bad:
                raise self._error(ValueError, f"{what} contains NaN or Inf ({bad} of {x.size} "
                                              f"values are not finite)")

    def _as_array(self, x, what):
        try:
            return as_array(x)
        except ValueError as exc:
            raise self._error(ValueError, f"{what} must be a rectangular numeric array "
                                          f"({exc})") from None

    def forward(self, x, training=False):
        """Compute the layer's output for a batch ``x``; keeps what backward needs."""
        x = self._as_array(x, "input")
        if x.ndim == 0:
            raise self._error(ValueError, "expected a batch of inputs, received a scalar")
        self._check_data(x, "input")
        sample = tuple(x.shape[1:])
        if not self.built:
            self.build(sample)
        else:
            self._check_input_shape(sample)
            self._check_built_shape(sample)
            self._output_shape(sample)  # raises if this input makes the output empty
        if self._weights and not backend.on_current_backend(self._weights[0][1]):
            self._move_weights()
        y = self._on_device(lambda: self._forward(to_device(x, dtype=self.dtype), bool(training)),
                            len(x), "forward")
        self._out_shape = tuple(y.shape)
        self._cache_on_device = backend.get_backend() == "cupy"
        self._grads = None
        if self._activity_regularizer is not None:
            self._record_activity(y)
        return y

    def _move_weights(self):
        """The backend changed since the weights were made (e.g. numpy -> cupy): copy
        them to where it computes. The optimizer moves its slots the same way."""
        self._weights = [(n, to_device(v, dtype=self.dtype), t) for n, v, t in self._weights]
        self._cache, self._out_shape, self._grads = None, None, None

    def _on_device(self, run, batch, what):
        """``run()``, with a GPU out-of-memory error re-raised as a MemoryError that names
        the layer, the batch and the remedies. It is raised outside the ``except``, so it
        does not chain to CuPy's error, whose traceback would keep the failed pass's
        arrays alive in device memory while the caller tries again with a smaller batch."""
        try:
            return run()
        except Exception as exc:
            on_gpu = backend.is_out_of_memory(exc)
            if not on_gpu and not isinstance(exc, MemoryError):
                raise
            place = "GPU" if on_gpu else "host"
            reason = f"{exc.__class__.__name__}: {str(exc).rstrip('.')}"
        self._cache = None
        budget = backend.im2col_budget(*self.weights)
        raise self._error(MemoryError, f"the {place} ran out of memory in the {what} pass on a "
                                       f"batch of {batch} ({reason}). Use a smaller "
                                       f"batch_size, or lower the im2col budget with "
                                       f"minicnn.backend.set_im2col_budget(num_bytes) (now "
                                       f"{budget} bytes per matrix)")

    def _check_same_place(self):
        if self._cache_on_device != (backend.get_backend() == "cupy"):
            raise self._error(RuntimeError, f"the backend changed to '{backend.get_backend()}' "
                                            "between forward() and backward(); run forward() "
                                            "again on the new backend")

    def _check_built_shape(self, sample):
        """Sizes fixed by the weights (channels, features) must not change, nor the
        rank, unless the layer works on any rank (Dense acts on the last axis)."""
        if sample == self.input_shape:
            return
        expected = _format_shape((None,) + self.input_shape)
        if self.fixed_rank and len(sample) != len(self.input_shape):
            raise self._error(ValueError, f"expected input shape {expected}, received "
                                          f"{_format_shape((None,) + sample)}")
        for axis in self._fixed_axes(len(sample)):
            if self.input_shape[axis] is not None and sample[axis] != self.input_shape[axis]:
                raise self._error(ValueError,
                                  f"expected input shape {expected} (axis {axis % len(sample) + 1}"
                                  f" of size {self.input_shape[axis]}), received "
                                  f"{_format_shape((None,) + sample)}")

    fixed_rank = True    # Dense, Activation and Dropout accept other ranks after build
    has_weights = False  # Conv2D, Dense and BatchNormalization create weights in build

    def _fixed_axes(self, sample_rank):
        """Sample axes whose size the weights fix (e.g. the channel axis of Conv2D);
        negative indices count from the end."""
        return ()

    def backward(self, dy, input_gradient=True):
        """Gradient of ``sum(y * dy)`` for the last forward: returns dL/dx and keeps
        dL/dw for ``get_gradients()``. ``input_gradient=False`` lets a layer skip dL/dx
        where that saves work (the first layer of a model needs none); it may then
        return None."""
        dy = self._checked_dy(dy)
        self._check_data(dy, "dy")
        self._input_gradient = bool(input_gradient)
        return self._on_device(lambda: self._backward(self._with_activity_gradient(
            to_device(dy, dtype=self.dtype))), len(dy), "backward")

    def _checked_dy(self, dy):
        """``dy`` as an array of the last output's shape, on the backend forward ran on."""
        if self._out_shape is None:
            raise self._error(RuntimeError, "backward() called before forward()")
        dy = self._as_array(dy, "dy")
        if tuple(dy.shape) != self._out_shape:
            raise self._error(ValueError, f"backward expected dy of shape {self._out_shape} "
                                          f"(the last output), received {tuple(dy.shape)}")
        self._check_same_place()
        return dy

    def backward_from_logits(self, dz):
        """For a layer ending in softmax: the backward pass that starts at the softmax
        *input*, given ``dz = dL/dz`` (the model's fused softmax + cross-entropy)."""
        if getattr(self, "activation", None) != "softmax":
            raise self._error(ValueError, "backward_from_logits needs a softmax activation, "
                                          f"this layer has {getattr(self, 'activation', None)!r}")
        if self._out_shape is None or tuple(dz.shape) != self._out_shape:
            raise self._error(ValueError, f"backward_from_logits expected dz of shape "
                                          f"{self._out_shape}, received {tuple(dz.shape)}")
        self._check_same_place()
        self._input_gradient = True
        return self._on_device(lambda: self._backward_linear(to_device(dz, dtype=self.dtype)),
                               len(dz), "backward")

    def _backward_linear(self, dz):
        """The backward pass below the fused activation (layers with one override it)."""
        raise NotImplementedError

    def release_cache(self):
        """Forget what the last forward kept for backward (a model calls this after each
        training step and inference batch); backward then needs a new forward. The
        activity penalty the forward recorded stays (the loss reads it afterwards)."""
        self._cache, self._out_shape = None, None
        self._activity_box[0] = None

    def call_state(self):
        """What the last forward kept for backward (a shared layer's graph keeps one per
        call, ``minicnn.network``)."""
        return self._cache, self._out_shape, self._cache_on_device, self._activity_box

    def restore_call_state(self, state):
        self._cache, self._out_shape, self._cache_on_device, self._activity_box = state

    def _set_gradients(self, grads):
        """``grads``: the trainable weights' gradients in ``trainable_weights`` order."""
        self._grads = list(grads)

    def get_gradients(self):
        """dL/dw of the trainable weights after ``backward``, in get_weights() order."""
        if not self.built and self.has_weights:
            raise self._error(RuntimeError, "get_gradients() needs forward() and backward() "
                                            "to run first")
        if not self.trainable_weights:
            return []
        if self._grads is None:
            raise self._error(RuntimeError, "get_gradients() needs backward() to run first")
        grads = [g if reg is None else g + reg.gradient(w) for g, w, reg in
                 zip(self._grads, self.trainable_weights, self.weight_regularizers())]
        return [to_host(g) for g in grads]

    def get_config(self):
        """The constructor arguments that rebuild this layer (used by model saving)."""
        return {"name": self.name}

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"
