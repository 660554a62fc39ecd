"""Keras 3's own model files, read and written: ``.weights.h5``, ``.keras`` and (read
only) the legacy ``.h5``. Needs h5py (``pip install "minicnn[keras-files]"``).

What Keras writes, as Keras 3.15 writes it (the tests check every fact against Keras):

- ``.weights.h5``: an HDF5 file with ``/layers/<key>/vars/<i>``, the i-th weight of a
  layer in Keras's order (kernel, bias; BatchNormalization: gamma, beta, moving_mean,
  moving_variance). ``<key>`` is *not* the layer's name: it is the snake_case class
  name counted over the layers of that class in model order (``conv2d``, ``conv2d_1``,
  ...). Weightless layers have an empty ``vars`` group. A compiled optimizer sits
  under ``/optimizer/vars/<i>``: the step count, the learning rate, then its slots per
  trainable weight in weight order (Adam: momentum and velocity, minicnn's ``m`` and
  ``v``; SGD with momentum: momentum).
- ``.keras``: a zip of ``config.json`` (the architecture and the compile settings as
  JSON), ``metadata.json`` and ``model.weights.h5`` (the layout above).
- legacy ``.h5``: the architecture and compile settings as JSON attributes of the root,
  weights under ``/model_weights/<layer name>/`` listed by a ``weight_names`` attribute,
  the optimizer's under ``/optimizer_weights/`` in the order of its own ``weight_names``.

This module holds those facts and writes the files; ``minicnn.keras_reading`` reads
them (only JSON and plain arrays: nothing in a file is executed or unpickled, and a
layer minicnn does not have, a Lambda layer among them, is refused naming the file and
the layer); ``minicnn.keras_graph`` is a functional model's graph in the config.
"""
import io
import json
import os
import re
import time
import zipfile

import numpy as np

from . import keras_graph, saving
from .file_checks import _h5py

KERAS_SUFFIXES = (".keras", ".weights.h5", ".h5")
_MINICNN_MEMBER = "minicnn.json"  # minicnn's random state in a .keras; Keras ignores it
_POLICY = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
           "registered_name": None}
# Keras arguments minicnn takes as they are, per layer class; others must hold Keras's
# default (listed with it) or the file is refused.
_REGULARIZED = ("kernel_regularizer", "bias_regularizer", "activity_regularizer")
_ARGUMENTS = {
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "data_format", "activation",
               "use_bias") + _REGULARIZED,
    "MaxPooling2D": ("pool_size", "strides", "padding", "data_format"),
    "AveragePooling2D": ("pool_size", "strides", "padding", "data_format"),
    "Dense": ("units", "activation", "use_bias") + _REGULARIZED,
    "Flatten": ("data_format",),
    "Dropout": ("rate", "seed"),
    "BatchNormalization": ("axis", "momentum", "epsilon", "center", "scale", "synchronized"),
    "Activation": ("activation",),
    "Add": (), "Subtract": (), "Multiply": (), "Average": (), "Maximum": (), "Minimum": (),
    "Concatenate": ("axis",), "GlobalAveragePooling2D": ("data_format", "keepdims"),
    "GlobalMaxPooling2D": ("data_format", "keepdims"), "ZeroPadding2D": ("padding", "data_format"),
    "Cropping2D": ("cropping", "data_format"),
    "UpSampling2D": ("size", "data_format", "interpolation"), "Reshape": ("target_shape",),
    "Rescaling": ("scale", "offset"), "Identity": (), "Softmax": ("axis",),
    "ReLU": ("max_value", "negative_slope", "threshold"), "LeakyReLU": ("negative_slope",),
    "ELU": ("alpha",),
    # the augmentation layers (their `seed` draws from NumPy, not Keras's generator)
    "RandomFlip": ("mode", "seed", "data_format"),
    "RandomTranslation": ("height_factor", "width_factor", "fill_mode", "interpolation",
                          "seed", "fill_value", "data_format"),
    "RandomRotation": ("factor", "fill_mode", "fill_value", "interpolation", "seed",
                       "data_format"),
    "RandomZoom": ("height_factor", "width_factor", "fill_mode", "interpolation", "seed",
                   "fill_value", "data_format"),
    "RandomCrop": ("height", "width", "seed", "data_format"),
    "RandomContrast": ("factor", "value_range", "seed", "data_format"),
    "RandomBrightness": ("factor", "value_range", "seed", "data_format"),
}
_DEFAULTS = {"dilation_rate": ((1, 1), 1), "groups": (1,), "noise_shape": (None,),
             "renorm": (False,),
             "quantization_config": (None,), "lora_rank": (None,), "lora_alpha": (None,)}
_IGNORED = {"name", "dtype", "kernel_initializer", "bias_initializer", "beta_initializer",
            "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer",
            "beta_regularizer", "gamma_regularizer", "kernel_constraint", "bias_constraint",
            "beta_constraint", "gamma_constraint", "renorm_clipping", "renorm_momentum"}


def keras_format(path):
    """``"weights.h5"``, ``"keras"``, ``"h5"`` or None (minicnn's own format)."""
    name = os.fspath(path).lower()
    if name.endswith(".weights.h5"):
        return "weights.h5"
    if name.endswith(".keras"):
        return "keras"
    if name.endswith(".h5"):
        return "h5"
    return None


def snake_case(class_name):
    """Keras's name for a class: ``MaxPooling2D`` -> ``max_pooling2d``."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _keras_class(layer):
    """Keras's class name for a layer (a functional model is Keras's ``Functional``)."""
    return "Functional" if type(layer).__name__ == "Model" else type(layer).__name__


def layer_keys(layers):
    """The ``/layers/<key>`` of each layer: its class's snake_case name, numbered from
    the second layer of that class on (``dense``, ``dense_1``, ...), whatever its name."""
    counts, keys = {}, []
    for layer in layers:
        base = snake_case(_keras_class(layer))
        count = counts.get(base, 0)
        keys.append(base if count == 0 else f"{base}_{count}")
        counts[base] = count + 1
    return keys


# ---------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------
def check_writable(model, path):
    """A model with a layer Keras does not have cannot go into a Keras file."""
    for layer in model.layers:
        reason = None
        if hasattr(layer, "_graph"):  # a model inside the model: Keras nests it too
            check_writable(layer, path)
            continue
        if type(layer).__name__ == "InputLayer":  # written with the graph (keras_graph)
            continue
        if type(layer).__name__ not in _ARGUMENTS:
            reason = f"{type(layer).__name__} has no Keras equivalent"
        elif getattr(layer, "padding", None) == "full":
            reason = "padding='full' has no Keras equivalent"
        if reason:
            raise ValueError(
                f"{type(model).__name__} '{model.name}': cannot write {os.fspath(path)!r} in a "
                f"Keras "
                f"format: layer '{layer.name}' ({reason}). Save it to a path ending in "
                f"'.npz' (minicnn's own format), which keeps every minicnn feature")


def _optimizer_vars(model):
    """Keras's ``optimizer/vars`` list, or None when there is no optimizer state yet:
    the step count, the learning rate (not for a schedule), the slots in the
    optimizer's ``keras_layout``, then its ``keras_scalars``."""
    from .optimizers.schedules import LearningRateSchedule
    opt = model.optimizer
    if opt is None or not opt.slot_names:
        return None
    state = opt.get_state()
    if any(slot not in state for slot in opt.slot_names):
        return None  # no step taken yet: Keras writes nothing either
    values = [np.array(state["iterations"], dtype=np.int64)]
    if not isinstance(opt.learning_rate, LearningRateSchedule):
        values.append(np.array(opt.current_learning_rate(), dtype=np.float32))
    count = len(state[opt.slot_names[0]])
    if opt.keras_layout == "blocks":
        values.extend(np.asarray(state[slot][i]) for slot in opt.slot_names
                      for i in range(count))
    else:
        values.extend(np.asarray(state[slot][i]) for i in range(count)
                      for slot in opt.slot_names)
    values.extend(np.array(state[name], dtype=np.float32) for name in opt.keras_scalars)
    return values


def _write_layers(f, prefix, model):
    """``<prefix>/layers/<key>/vars/<i>`` for every layer; a model inside the model
    gets its own ``layers`` group under its key, as Keras nests them."""
    f.create_group(f"{prefix}layers")
    for layer, key in zip(model.layers, layer_keys(model.layers)):
        group = f.create_group(f"{prefix}layers/{key}/vars")
        group.attrs["name"] = layer.name
        if hasattr(layer, "_graph"):
            _write_layers(f, f"{prefix}layers/{key}/", layer)
            continue
        for i, value in enumerate(layer.get_weights()):
            group.create_dataset(str(i), data=value)


def _write_weights(model, file):
    h5py = _h5py()
    with h5py.File(file, "w") as f:
        _write_layers(f, "", model)
        values = _optimizer_vars(model)
        if values is not None:
            group = f.create_group("optimizer/vars")
            group.attrs["name"] = snake_case(type(model.optimizer).__name__)
            for i, value in enumerate(values):
                group.create_dataset(str(i), data=value)
        f.create_group("vars").attrs["name"] = model.name


def save_weights(model, path):
    check_writable(model, path)
    saving.atomic_write(path, lambda f: _write_weights(model, f))


def _keras_layer_config(layer):
    if hasattr(layer, "_graph"):  # a model inside the model: its own config, uncompiled
        entry = keras_config(layer)
        entry.pop("compile_config", None)
        return entry
    cls = type(layer).__name__
    config = {"name": layer.name, "trainable": layer.trainable, "dtype": dict(_POLICY)}
    for key, value in layer.get_config().items():
        if key in _ARGUMENTS[cls]:
            config[key] = list(value) if isinstance(value, tuple) else value
        elif key == "activity_regularizer" and value is not None:  # any layer, as Keras's
            config[key] = value                                      # base Layer writes it
    entry = {"module": "keras.layers", "class_name": cls, "config": config,
             "registered_name": None}
    if layer.weights:
        entry["build_config"] = {"input_shape": [None, *layer.input_shape]}
    return entry


def _keras_loss(loss):
    """A loss as Keras's compile config names it: its name, or the serialized object
    where it has arguments (``from_logits``)."""
    if loss is None or not loss.get_config().get("from_logits"):
        return None if loss is None else loss.name  # minicnn's loss names are Keras's
    return {"module": "keras.losses", "class_name": type(loss).__name__,
            "config": dict(loss.get_config(), name=loss.name, reduction="sum_over_batch_size"),
            "registered_name": None}


def _compile_config(model):
    if model.loss is None:
        return None
    opt = model.optimizer
    name = type(opt).__name__
    objectives = model._objectives
    if model._single_output:
        loss, weights = _keras_loss(model.loss), None
        metrics = list(objectives[0].metric_ids) or None
    else:
        loss = [_keras_loss(o.loss) for o in objectives]
        weights = [o.weight for o in objectives]
        metrics = [list(o.metric_ids) for o in objectives]
        metrics = metrics if any(metrics) else None
    return {"optimizer": {"module": "keras.optimizers", "class_name": name,
                          "config": dict(opt.get_config(), name=snake_case(name)),
                          "registered_name": None},
            "loss": loss, "loss_weights": weights, "metrics": metrics,
            "weighted_metrics": None, "run_eagerly": False, "steps_per_execution": 1,
            "jit_compile": False}


def keras_config(model):
    """The ``config.json`` of a ``.keras`` archive for ``model``."""
    if type(model).__name__ != "Sequential":
        config = keras_graph.functional_config(model, _keras_layer_config)
        compiled = _compile_config(model)
        if compiled is not None:
            config["compile_config"] = compiled
        return config
    layers = [{"module": "keras.layers", "class_name": "InputLayer",
               "config": {"batch_shape": [None, *model._sample_in], "dtype": "float32",
                          "sparse": False, "ragged": False, "name": "input_layer",
                          "optional": False}, "registered_name": None}]
    layers += [_keras_layer_config(layer) for layer in model.layers]
    config = {"module": "keras", "class_name": "Sequential",
              "config": {"name": model.name, "trainable": model.trainable,
                         "dtype": dict(_POLICY),
                         "layers": layers},
              "registered_name": None,
              "build_config": {"input_shape": [None, *model._sample_in]}}
    compiled = _compile_config(model)
    if compiled is not None:
        config["compile_config"] = compiled
    return config


def save_keras(model, path):
    check_writable(model, path)
    from . import __version__
    weights = io.BytesIO()
    _write_weights(model, weights)
    metadata = {"keras_version": "3", "saved_by": f"minicnn {__version__}",
                "date_saved": time.strftime("%Y-%m-%d@%H:%M:%S")}

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("metadata.json", json.dumps(metadata))
            z.writestr("config.json", json.dumps(keras_config(model)))
            z.writestr("model.weights.h5", weights.getvalue())
            # where shuffling and Dropout stand, so training resumes exactly
            z.writestr(_MINICNN_MEMBER, json.dumps({"random": model._random_state()}))
    saving.atomic_write(path, write)


def write(model, path, method):
    """Write ``model`` to ``path`` in Keras's format for ``method`` (``"save"`` or
    ``"save_weights"``) when its suffix names one; False for minicnn's own format.
    A Keras suffix that ``method`` does not write is refused, naming the one it does."""
    fmt = keras_format(path)
    if fmt is None:
        return False
    writer, suffix = {"save": (save_keras, ".keras"),
                      "save_weights": (save_weights, ".weights.h5")}[method]
    if fmt != suffix.lstrip("."):
        raise ValueError(f"{type(model).__name__} '{model.name}': {method} writes Keras's format to a path "
                         f"ending in '{suffix}', or minicnn's own format to another suffix "
                         f"(e.g. '.npz'); legacy '.h5' is read by load_model only. "
                         f"Received: {os.fspath(path)!r}")
    writer(model, path)
    return True
