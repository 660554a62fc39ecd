"""Sequential: a stack of layers, trained by an explicit backward walk.

One training step is the whole story of backprop, written out:

    out = x
    for layer in layers:               out = layer.forward(out, training=True)
    loss, grad = loss(y, out), dL/dout
    for layer in reversed(layers):     grad = layer.backward(grad)
    optimizer.apply(every layer's get_gradients(), every layer's trainable weights)

When the last layer ends in softmax and the loss is cross-entropy, the step
starts the backward walk at the softmax *input* with ``(p - y) / N``
(see ``minicnn.ops.losses``): simpler, and exact for any logits.

This module is the model's structure and its single step; the loop that runs steps
over a data set (``fit``, ``evaluate``, ``predict``) is ``minicnn.training``.
"""
import math
import os

import numpy as np

from . import backend, keras_files, loading, losses as losses_module, split_step, training
from . import metrics as metrics_module, optimizers as optimizers_module, saving
from .backend import as_array, get_array_module, to_device, to_host
from .layers import AveragePooling2D, Conv2D, Layer, MaxPooling2D, MinPooling2D
from .loading import LAYER_CLASSES  # noqa: F401  (the classes a file may name)
from .layers.base import _format_shape
from .summary import format_summary
from .utils import global_rng

class Sequential:
    """A linear stack of layers with Keras's model API.

    >>> model = Sequential([Conv2D(6, 5, activation="tanh", input_shape=(28, 28, 1)),
    ...                     Flatten(), Dense(10, activation="softmax")])
    >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
    ...               metrics=["accuracy"])
    """

    def __init__(self, layers=None, name=None, trainable=True):
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"Sequential: name must be a non-empty string. Received: "
                             f"name={name!r}")
        self.name = name or backend.unique_name("sequential")
        self.layers = []
        self.built = False
        self._sample_in = None       # sample shapes, no batch axis
        self._sample_out = None
        self._input_tensor = None    # a minicnn.Input given as the first entry
        self._inputs = self._nodes = None  # the symbolic graph of the built model
        self._trainable = True
        self.optimizer = None
        self.loss = None
        self.metric_names = []
        self.stop_training = False
        self.history = None
        self._shuffle_rng = self._shuffle_seed = None  # made by the first fit
        for layer in layers or []:
            self.add(layer)
        if trainable is not True:
            self.trainable = trainable

    # -- Keras's attributes -------------------------------------------------------------
    @property
    def input_shape(self):
        """Keras's ``(None, *sample shape)`` of the inputs (the model must be built)."""
        self._require_built("input_shape")
        return (None,) + tuple(self._sample_in)

    @property
    def output_shape(self):
        self._require_built("output_shape")
        return (None,) + tuple(self._sample_out)

    @property
    def inputs(self):
        """The model's symbolic input tensors (one), as ``keras.Model.inputs``."""
        self._require_built("inputs")
        return list(self._inputs)

    @property
    def outputs(self):
        self._require_built("outputs")
        return [self._nodes[-1].output] if self._nodes else list(self._inputs)

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
            raise TypeError(f"Sequential '{self.name}': trainable must be True or False. "
                            f"Received: {value!r}")
        self._trainable = value
        for layer in self.layers:
            layer.trainable = value

    def __call__(self, x, training=False):
        """``model(x)``: the forward pass on an array (inference mode unless
        ``training=True``), building the model on first use; the backend's array."""
        from .graph import is_symbolic
        if is_symbolic(x):
            raise NotImplementedError(f"Sequential '{self.name}': calling a model on a symbolic "
                                      "tensor (a model inside a functional graph) is not "
                                      "implemented in minicnn yet")
        x = as_array(x)
        if self.built:
            self._check_samples(x, "calling the model")
        out = self.forward(x, training=training)
        if not training:
            self._release_caches()
        return out

    def get_layer(self, name=None, index=None):
        """The layer called ``name``, or at position ``index``, as Keras's get_layer."""
        if (name is None) == (index is None):
            raise ValueError(f"Sequential '{self.name}': get_layer() takes a layer name or an "
                             f"index, not {'both' if name is not None else 'neither'}. "
                             f"Received: name={name!r}, index={index!r}")
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, int) \
                    or not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"Sequential '{self.name}': was asked to retrieve layer at "
                                 f"index {index!r} but model only has {len(self.layers)} "
                                 f"layers")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"Sequential '{self.name}': no such layer: {name!r}. Existing "
                         f"layers are: {[layer.name for layer in self.layers]}")

    def pop(self, rebuild=True):
        """Remove and return the last layer; the model is rebuilt without it."""
        if not self.layers:
            raise IndexError(f"Sequential '{self.name}': there are no layers in the model")
        layer = self.layers.pop()
        self._forget_graph()
        if rebuild and self.built:
            self._build_from(0, self._sample_in)
        return layer

    # -- building ---------------------------------------------------------------------
    def add(self, layer):
        from .graph import is_symbolic
        if is_symbolic(layer):  # minicnn.Input: the input shape, not a layer
            if self.layers or self._input_tensor is not None:
                raise ValueError(f"Sequential '{self.name}': an Input may only be the first "
                                 f"entry of the model. Received: {layer!r}")
            self._input_tensor = layer
            self.build(layer.shape)
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a minicnn layer. Received: {layer!r}")
        if any(existing.name == layer.name for existing in self.layers):
            raise ValueError(f"Sequential '{self.name}': a layer named '{layer.name}' is "
                             "already in the model; layer names must be unique")
        self.layers.append(layer)
        # As in Keras, input_shape counts only on the first layer.
        if len(self.layers) == 1 and layer.input_shape_arg is not None:
            self.build(layer.input_shape_arg)
        elif self.built:
            self._build_from(len(self.layers) - 1, self._sample_out)

    def _sample_shape(self, input_shape):
        shape = tuple(input_shape)
        if shape and shape[0] is None:
            return shape[1:]
        first = self.layers[0] if self.layers else None
        if isinstance(first, (Conv2D, MaxPooling2D, AveragePooling2D, MinPooling2D)) \
                and len(shape) == 4:
            return shape[1:]
        return shape

    def build(self, input_shape=None):
        """Build every layer for inputs of ``input_shape`` ((None, 28, 28, 1) or (28, 28, 1))."""
        if input_shape is None:
            first = self.layers[0] if self.layers else None
            if first is None or first.input_shape_arg is None:
                raise ValueError(f"Sequential '{self.name}': build() needs an input shape "
                                 "(or input_shape= on the first layer)")
            input_shape = first.input_shape_arg
        self._sample_in = self._sample_shape(input_shape)
        self._build_from(0, self._sample_in)

    def _forget_graph(self):
        for node in self._nodes or []:
            if node in node.layer._inbound:
                node.layer._inbound.remove(node)
        self._inputs = self._nodes = None

    def _record_graph(self):
        """The symbolic graph of the built model: an Input, then each layer called on
        the previous layer's output (``layer.input`` / ``layer.output`` name them)."""
        from .graph import Input, call_symbolic
        self._forget_graph()
        tensor = self._input_tensor or Input(self._sample_in)
        self._inputs, self._nodes = [tensor], []
        for layer in self.layers:
            tensor = call_symbolic(layer, tensor)
            self._nodes.append(tensor.node)

    def _build_from(self, start, shape):
        for layer in self.layers[start:]:
            if not layer.built:
                layer.build(shape)
            elif layer.input_shape != tuple(shape):
                raise ValueError(f"{layer._who()} was built for inputs "
                                 f"{_format_shape((None,) + layer.input_shape)} but receives "
                                 f"{_format_shape((None,) + tuple(shape))} in this model")
            shape = layer.compute_output_shape(shape)
        self._sample_out = shape
        self.built = True
        self._record_graph()

    def _require_built(self, what):
        if not self.built:
            raise ValueError(f"Sequential '{self.name}': {what} needs the model to be built; "
                             "give input_shape= to the first layer or call build(input_shape)")

    def count_params(self):
        self._require_built("count_params()")
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, line_length=None, print_fn=None):
        """Print Keras 3's summary table."""
        self._require_built("summary()")
        text = format_summary(self, line_length)
        (print_fn or print)(text)

    # -- weights ------------------------------------------------------------------------
    def get_weights(self):
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        self._require_built("set_weights()")
        weights = list(weights)
        expected = sum(len(layer.weights) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"Sequential '{self.name}': set_weights expected {expected} arrays, "
                             f"received {len(weights)}")
        start = 0
        for layer in self.layers:
            count = len(layer.weights)
            layer.set_weights(weights[start:start + count])
            start += count

    @property
    def weights(self):
        """Every weight array (the backend's, not copies), layer by layer in Keras order."""
        return [w for layer in self.layers for w in layer.weights]

    @property
    def trainable_weights(self):
        return [w for layer in self.layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self):
        return [w for layer in self.layers for w in layer.non_trainable_weights]

    # -- forward and backward -------------------------------------------------------------
    def forward(self, x, training=False):
        """Run ``x`` through every layer; builds the model on first use."""
        if not self.built:
            self.build(tuple(np.shape(x))[1:])
        return self.forward_through(self.layers, x, training)

    @staticmethod
    def forward_through(layers, x, training=True):
        """``x`` through ``layers`` (the model's, or copies of them sharing its weights)."""
        for layer in layers:
            x = layer.forward(x, training=training)
        return x

    def backward(self, grad, from_logits=False, input_gradient=True):
        """Walk the layers backwards from ``grad = dL/doutput``; returns dL/dinput.
        ``from_logits=True``: ``grad`` is dL/d(softmax input) of the last layer.
        ``input_gradient=False``: training needs no dL/dinput, so the first layer may
        skip it (and None is returned)."""
        return self.backward_through(self.layers, grad, from_logits, input_gradient)

    @staticmethod
    def backward_through(layers, grad, from_logits=False, input_gradient=True):
        """``backward`` over ``layers`` (the model's, or the copies a forward ran through)."""
        if from_logits:
            grad = layers[-1].backward_from_logits(grad)
            layers = layers[:-1]
        for i, layer in reversed(list(enumerate(layers))):
            grad = layer.backward(grad, input_gradient=input_gradient or i > 0)
        return grad

    # -- compile and train ------------------------------------------------------------------
    def compile(self, optimizer="adam", loss=None, metrics=None):
        if loss is None:
            raise ValueError(f"Sequential '{self.name}': compile() needs a loss")
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = losses_module.get(loss)
        self.metric_names, self._metric_fns = [], []
        for metric in metrics or []:
            name, fn = metrics_module.get(metric)
            self.metric_names.append(name)
            self._metric_fns.append(fn)

    def _fused_softmax_loss(self):
        """True when the backward walk can start at the softmax input with (p - y)/N."""
        last = self.layers[-1]
        return (isinstance(self.loss, losses_module.CategoricalCrossentropy)
                and not self.loss.from_logits
                and getattr(last, "activation", None) == "softmax")

    def _require_compiled(self, what):
        if self.loss is None:
            raise ValueError(f"Sequential '{self.name}': {what} needs compile() first")

    def _loss_value(self, y, out):
        """Per-sample losses of a batch (Keras's values) and the targets, checked and cast
        where they arrived (the host) and then moved to the backend, once."""
        y, out = self.loss.prepare(as_array(y), out)
        y = to_device(y)
        return self.loss.per_sample(y, out), y

    def _batch_logs(self, y_dev, out, per_sample):
        """The batch's loss and metrics as Python floats, copied to the host together:
        one transfer (and on a GPU one wait) per batch. ``y_dev``: the labels as
        ``_loss_value`` returned them (on the backend)."""
        xp = get_array_module(out)
        values = [per_sample.mean()] + [fn(y_dev, out).mean() for fn in self._metric_fns]
        host = to_host(xp.stack([v.astype("float64") for v in values]))
        return dict(zip(["loss"] + self.metric_names, host.tolist()))

    def _release_caches(self):
        """Drop what the layers kept for a backward pass once a step (or an inference
        batch) is done: the next forward replaces it anyway, and until then it would
        double the memory a step needs (on a GPU, what limits the batch size)."""
        for layer in self.layers:
            layer.release_cache()

    def _loss_gradient(self, y_dev, out):
        """Where the backward walk starts: ``(grad, from_logits)``. With softmax + cross-
        entropy that is dL/d(softmax input) = (p - y) / N (no division by p, exact for any
        logits, ``from_logits=True``); otherwise the loss's dL/d(output)."""
        if self._fused_softmax_loss():
            return (out - self.loss.dense_targets(y_dev, out)) / len(out), True
        return self.loss.prepared_gradient(y_dev, out), False

    @staticmethod
    def gradients_of(layers):
        """The trainable weights' gradients of the last backward through ``layers``, in
        weight order."""
        return [g for layer in layers if layer.trainable_weights for g in layer._grads]

    def _train_step(self, x, y, finite_only=False):
        """One step; returns the batch's logs (pre-update, as Keras reports them).
        ``finite_only``: when the loss is NaN or Inf, change nothing (the weights and
        the moving statistics stay those of the last step) and return the logs with
        ``logs["applied"] = False``."""
        kept = [list(layer._weights) for layer in self.layers] if finite_only else None
        grads = None
        if self.built and split_step.suits(self, x):  # half the batch per core
            out, per_sample, y_dev, grads = split_step.forward_backward(self, x, y)
        else:
            out = self.forward(x, training=True)
            per_sample, y_dev = self._loss_value(y, out)
        logs = self._batch_logs(y_dev, out, per_sample)  # before the update: the same one
        # copy per batch; the ranks of a distributed run decide together: all or none
        if finite_only and not self.optimizer.communicator.all(math.isfinite(logs["loss"])):
            for layer, weights in zip(self.layers, kept):  # moving statistics are replaced,
                layer._weights = weights                    # not changed in place
            self._release_caches()
            return dict(logs, applied=False)
        if grads is None:
            grad, from_logits = self._loss_gradient(y_dev, out)
            self.backward(grad, from_logits=from_logits, input_gradient=False)
            grads = self.gradients_of(self.layers)
        self.optimizer.apply(grads, self.trainable_weights)
        self._release_caches()
        return logs

    def trace(self, x, y, print_fn=print):
        """Walk one training step on ``(x, y)`` layer by layer and print what every layer
        computes forward and passes backward (``minicnn.trace``); returns it as data.
        The model does not change."""
        from .trace import format_trace, trace_step
        self._check_xy(x, y, "trace()")
        data = trace_step(self, x, y)
        if print_fn is not None:
            print_fn(format_trace(data))
        return data

    def train_on_batch(self, x, y):
        """One step on one batch; returns the pre-update loss (and metrics) as Keras does."""
        self._require_compiled("train_on_batch()")
        self._check_xy(x, y, "train_on_batch()")
        logs = self._train_step(x, y)
        return self._as_result(logs)

    def _as_result(self, logs):
        values = [logs["loss"]] + [logs[name] for name in self.metric_names]
        return values[0] if len(values) == 1 else values

    def _check_samples(self, x, what):
        """Inputs whose samples differ from the shape the model was built for are an
        error, even where the layers could run them (a conv/pool stack can turn 9x9 and
        8x8 images into the same number of features)."""
        if not self.built or self._sample_in is None:
            return
        shape = tuple(x.shape) if hasattr(x, "shape") else tuple(np.shape(x))
        expected, received = tuple(self._sample_in), shape[1:]
        fits = len(expected) == len(received) and all(
            e is None or e == r for e, r in zip(expected, received))
        if not fits:
            raise ValueError(f"Sequential '{self.name}': {what} expects inputs of shape "
                             f"{_format_shape((None,) + expected)} (the shape the model was "
                             f"built for). Received: inputs of shape {shape}")

    def _check_finite(self, what, arrays):
        """One vectorised pass per array: NaN or Inf in the data is an error naming the
        array and the first bad element (``check_numerics=False`` skips this)."""
        for name, a in arrays:
            if a is None or np.asarray(a).dtype.kind not in "fc":
                continue
            xp = get_array_module(a)
            bad = ~xp.isfinite(a)
            if bool(bad.any()):
                index = tuple(int(i) for i in np.unravel_index(int(bad.argmax()), a.shape))
                value = to_host(a[index]).item() if index else to_host(a).item()
                raise ValueError(
                    f"Sequential '{self.name}': {what} received {name} holding NaN or Inf: "
                    f"{name}[{', '.join(map(str, index))}] = {value} is the first (sample "
                    f"{index[0] if index else 0}). Clean the data, or pass "
                    f"check_numerics=False to skip this check")

    def _check_xy(self, x, y, what="the data"):
        self._check_samples(x, what)
        if len(x) != len(y):
            raise ValueError(f"Sequential '{self.name}': x and y must have the same number of "
                             f"samples. Received: {len(x)} inputs and {len(y)} targets")
        if len(x) == 0:
            raise ValueError(f"Sequential '{self.name}': received an empty dataset")

    def _shuffling(self, seed):
        """The model's shuffling generator: made from ``seed`` (again whenever fit gets
        another seed), or from the global generator on the first fit without one."""
        if seed is not None and seed != self._shuffle_seed:
            self._shuffle_rng, self._shuffle_seed = np.random.default_rng(seed), seed
        elif self._shuffle_rng is None:
            self._shuffle_rng = np.random.default_rng(int(global_rng().integers(2**63)))
        return self._shuffle_rng

    def fit(self, x, y, batch_size=32, epochs=1, verbose="auto", validation_data=None,
            validation_split=0.0, shuffle=True, callbacks=None, initial_epoch=0, seed=None,
            check_numerics=True, terminate_on_nan=True):
        """Train for ``epochs`` epochs of mini-batches; returns a ``History``. The loop
        is ``minicnn.training.fit``, which documents every argument."""
        return training.fit(self, x, y, batch_size=batch_size, epochs=epochs, verbose=verbose,
                            validation_data=validation_data, validation_split=validation_split,
                            shuffle=shuffle, callbacks=callbacks, initial_epoch=initial_epoch,
                            seed=seed, check_numerics=check_numerics,
                            terminate_on_nan=terminate_on_nan)

    # -- inference -------------------------------------------------------------------------
    def predict(self, x, batch_size=32, verbose=0):
        """Outputs for ``x`` in inference mode, as one host (NumPy) array."""
        return training.predict(self, x, batch_size=batch_size, verbose=verbose)

    def evaluate(self, x, y, batch_size=32, verbose=0, return_dict=False, check_numerics=True):
        """Loss (and metrics) over ``(x, y)`` in inference mode, averaged over samples.
        ``check_numerics``: refuse data holding NaN or Inf (see ``fit``)."""
        return training.evaluate(self, x, y, batch_size=batch_size, verbose=verbose,
                                 return_dict=return_dict, check_numerics=check_numerics)

    # -- saving ------------------------------------------------------------------------------
    def get_config(self):
        return {"name": self.name, "input_shape": list(self._sample_in or []),
                "layers": [{"class_name": type(layer).__name__,
                            "config": dict(layer.get_config(), **(
                                {} if layer.trainable else {"trainable": False}))}
                           for layer in self.layers]}

    def save_weights(self, path):
        """Write every layer's weights to ``path`` (exactly that name), atomically: a
        Keras 3 weights file for ``.weights.h5`` (with the optimizer's state, as Keras
        writes it), minicnn's own format for other suffixes (not ``.h5`` or ``.keras``)."""
        self._require_built("save_weights()")
        if keras_files.write(self, path, "save_weights"):
            return
        header = {"kind": "weights",
                  "layers": [[layer.name, [list(w.shape) for w in layer.weights]]
                             for layer in self.layers]}
        saving.write_archive(path, header, saving.indexed("weights", self.get_weights()))

    def load_weights(self, path):
        """Load weights written by ``save_weights`` or ``save``: minicnn's files, Keras 3's
        ``.weights.h5`` and ``.keras`` (with the optimizer's state where they hold one and
        the model is compiled); shapes must match."""
        self._require_built("load_weights()")
        if keras_files.keras_format(path) in ("weights.h5", "keras"):
            return keras_files.load_weights(self, path)
        loading.load_npz_weights(self, path)

    def save(self, path):
        """Architecture, weights and optimizer state in one file (exactly ``path``): a
        Keras 3 archive for ``.keras``, minicnn's own format for other suffixes (which
        also keeps the random state of training, so resuming from it is exact)."""
        self._require_built("save()")
        if keras_files.write(self, path, "save"):
            return
        header = {"kind": "model", "model": self.get_config()}
        arrays = saving.indexed("weights", self.get_weights())
        if self.loss is not None:
            header["compile"] = {
                "optimizer": {"class_name": type(self.optimizer).__name__,
                              "config": self.optimizer.get_config()},
                "loss": {"class_name": type(self.loss).__name__,
                         "config": self.loss.get_config()},
                "metrics": self.metric_names}
            state = self.optimizer.get_state()
            header["compile"]["iterations"] = state.pop("iterations")
            for slot, values in state.items():
                arrays.update(saving.indexed(f"optimizer/{slot}", values))
        header["random"] = self._random_state()
        saving.write_archive(path, header, arrays)

    def _random_state(self):
        """Where the random streams of training stand: the shuffling generator (and the
        seed it came from) and every seeded Dropout's generator, so that training
        resumed from a file draws what it would have drawn without the break."""
        return {"shuffle": None if self._shuffle_rng is None else
                {"seed": self._shuffle_seed, "state": self._shuffle_rng.bit_generator.state},
                "layers": {layer.name: layer._rng.bit_generator.state for layer in self.layers
                           if getattr(layer, "_rng", None) is not None}}

    def _set_random_state(self, saved, path):
        saved = saved or {}
        layers = saved.get("layers") if isinstance(saved, dict) else None
        if not isinstance(saved, dict) or not isinstance(layers or {}, dict):
            raise ValueError(f"{os.fspath(path)!r}: its random state is not a JSON object")
        shuffle = saved.get("shuffle")
        if shuffle is not None:
            if not isinstance(shuffle, dict) or not isinstance(shuffle.get("seed"),
                                                               (int, type(None))):
                raise ValueError(f"{os.fspath(path)!r}: its shuffling state is not valid")
            self._shuffle_rng = _generator(shuffle.get("state"), path)
            self._shuffle_seed = shuffle.get("seed")
        for layer in self.layers:
            state = (layers or {}).get(layer.name)
            if state is not None and getattr(layer, "_rng", None) is not None:
                layer._rng = _generator(state, path)

    def __repr__(self):
        return f"<Sequential name={self.name!r} layers={len(self.layers)}>"


def load_model(path):
    """Rebuild a model saved with ``Sequential.save``: architecture, weights, and
    (if it was compiled) optimizer state, so training resumes exactly. Also opens
    Keras 3's ``.keras`` archives and legacy Keras ``.h5`` model files of Sequential
    models made of the layers minicnn has (see ``minicnn.keras_files``)."""
    fmt = keras_files.keras_format(path)
    if fmt == "keras":
        return keras_files.load_keras(path)
    if fmt == "h5":
        return keras_files.load_legacy_h5(path)
    if fmt == "weights.h5":
        raise ValueError(f"{os.fspath(path)!r} holds weights only: build the model and call "
                         f"load_weights")
    return loading.load_npz_model(path)


# the NumPy bit generators a file may name; anything else is refused, never looked up
_BIT_GENERATORS = {"PCG64": np.random.PCG64, "PCG64DXSM": np.random.PCG64DXSM,
                   "Philox": np.random.Philox, "SFC64": np.random.SFC64,
                   "MT19937": np.random.MT19937}


def _generator(state, path):
    """A NumPy Generator continuing from a saved ``bit_generator.state``."""
    kind = state.get("bit_generator") if isinstance(state, dict) else None
    if kind not in _BIT_GENERATORS:
        raise ValueError(f"{path!r}: unknown random generator {kind!r} in the file "
                         f"(known: {sorted(_BIT_GENERATORS)})")
    bits = _BIT_GENERATORS[kind]()
    try:
        bits.state = state
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"{path!r}: invalid {kind} generator state ({exc})") from None
    return np.random.Generator(bits)
