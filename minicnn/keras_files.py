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

Only JSON and plain arrays are read: nothing in a file is executed or unpickled, and a
layer minicnn does not have (a Lambda layer among them) or a functional graph is
refused, naming the file and the layer.
"""
import io
import json
import os
import re
import time
import zipfile

import numpy as np

from . import saving

KERAS_SUFFIXES = (".keras", ".weights.h5", ".h5")
_POLICY = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
           "registered_name": None}
# Keras arguments minicnn takes as they are, per layer class; others must hold Keras's
# default (listed with it) or the file is refused.
_ARGUMENTS = {
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "data_format", "activation",
               "use_bias"),
    "MaxPooling2D": ("pool_size", "strides", "padding", "data_format"),
    "AveragePooling2D": ("pool_size", "strides", "padding", "data_format"),
    "Dense": ("units", "activation", "use_bias"),
    "Flatten": ("data_format",),
    "Dropout": ("rate", "seed"),
    "BatchNormalization": ("axis", "momentum", "epsilon", "center", "scale", "synchronized"),
    "Activation": ("activation",),
}
_DEFAULTS = {"dilation_rate": ((1, 1), 1), "groups": (1,), "noise_shape": (None,),
             "renorm": (False,), "trainable": (True,),
             "quantization_config": (None,), "lora_rank": (None,), "lora_alpha": (None,)}
_IGNORED = {"name", "dtype", "kernel_initializer", "bias_initializer", "beta_initializer",
            "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer",
            "kernel_regularizer", "bias_regularizer", "activity_regularizer",
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


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("Keras's .keras, .weights.h5 and .h5 files need h5py: "
                          "pip install h5py (or minicnn[keras-files])") from None
    return h5py


def snake_case(class_name):
    """Keras's name for a class: ``MaxPooling2D`` -> ``max_pooling2d``."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def layer_keys(layers):
    """The ``/layers/<key>`` of each layer: its class's snake_case name, numbered from
    the second layer of that class on (``dense``, ``dense_1``, ...), whatever its name."""
    counts, keys = {}, []
    for layer in layers:
        base = snake_case(type(layer).__name__)
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
        if type(layer).__name__ not in _ARGUMENTS:
            reason = f"{type(layer).__name__} has no Keras equivalent"
        elif getattr(layer, "padding", None) == "full":
            reason = "padding='full' has no Keras equivalent"
        if reason:
            raise ValueError(
                f"Sequential '{model.name}': cannot write {os.fspath(path)!r} in a Keras "
                f"format: layer '{layer.name}' ({reason}). Save it to a path ending in "
                f"'.npz' (minicnn's own format), which keeps every minicnn feature")


def _optimizer_vars(model):
    """Keras's ``optimizer/vars`` list, or None when there is no optimizer state yet."""
    opt = model.optimizer
    if opt is None or not opt.slot_names:
        return None
    state = opt.get_state()
    if any(slot not in state for slot in opt.slot_names):
        return None  # no step taken yet: Keras writes nothing either
    values = [np.array(state["iterations"], dtype=np.int64),
              np.array(opt.learning_rate, dtype=np.float32)]
    for i in range(len(state[opt.slot_names[0]])):
        values.extend(np.asarray(state[slot][i]) for slot in opt.slot_names)
    return values


def _write_weights(model, file):
    h5py = _h5py()
    with h5py.File(file, "w") as f:
        f.create_group("layers")
        for layer, key in zip(model.layers, layer_keys(model.layers)):
            group = f.create_group(f"layers/{key}/vars")
            group.attrs["name"] = layer.name
            for i, value in enumerate(layer.get_weights()):
                group.create_dataset(str(i), data=value)
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
    cls = type(layer).__name__
    config = {"name": layer.name, "trainable": True, "dtype": dict(_POLICY)}
    for key, value in layer.get_config().items():
        if key in _ARGUMENTS[cls]:
            config[key] = list(value) if isinstance(value, tuple) else value
    entry = {"module": "keras.layers", "class_name": cls, "config": config,
             "registered_name": None}
    if layer.weights:
        entry["build_config"] = {"input_shape": [None, *layer.input_shape]}
    return entry


def _compile_config(model):
    if model.loss is None:
        return None
    opt = model.optimizer
    name = type(opt).__name__
    loss = model.loss.name  # minicnn's loss names are Keras's
    if model.loss.get_config().get("from_logits"):
        loss = {"module": "keras.losses", "class_name": type(model.loss).__name__,
                "config": dict(model.loss.get_config(), name=model.loss.name,
                               reduction="sum_over_batch_size"),
                "registered_name": None}
    return {"optimizer": {"module": "keras.optimizers", "class_name": name,
                          "config": dict(opt.get_config(), name=snake_case(name)),
                          "registered_name": None},
            "loss": loss, "loss_weights": None, "metrics": list(model.metric_names) or None,
            "weighted_metrics": None, "run_eagerly": False, "steps_per_execution": 1,
            "jit_compile": False}


def keras_config(model):
    """The ``config.json`` of a ``.keras`` archive for ``model``."""
    layers = [{"module": "keras.layers", "class_name": "InputLayer",
               "config": {"batch_shape": [None, *model.input_shape], "dtype": "float32",
                          "sparse": False, "ragged": False, "name": "input_layer",
                          "optional": False}, "registered_name": None}]
    layers += [_keras_layer_config(layer) for layer in model.layers]
    config = {"module": "keras", "class_name": "Sequential",
              "config": {"name": model.name, "trainable": True, "dtype": dict(_POLICY),
                         "layers": layers},
              "registered_name": None,
              "build_config": {"input_shape": [None, *model.input_shape]}}
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
        raise ValueError(f"Sequential '{model.name}': {method} writes Keras's format to a path "
                         f"ending in '{suffix}', or minicnn's own format to another suffix "
                         f"(e.g. '.npz'); legacy '.h5' is read by load_model only. "
                         f"Received: {os.fspath(path)!r}")
    writer(model, path)
    return True


# ---------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------
def _refuse(path, what):
    raise ValueError(f"{os.fspath(path)!r}: {what}")


def _open_h5(path, source=None):
    h5py = _h5py()
    try:
        return h5py.File(source if source is not None else path, "r")
    except (OSError, ValueError) as exc:
        _refuse(path, f"not an HDF5 file, or truncated or corrupt ({exc})")


def _read_weights_file(f, path):
    """``({key: [arrays]}, [optimizer arrays] or None)`` from a .weights.h5 layout."""
    if "layers" not in f:
        _refuse(path, "no /layers group: not a Keras 3 weights file")
    layers = {}
    for key, group in f["layers"].items():
        vars_ = group.get("vars", {})
        layers[key] = [np.asarray(vars_[str(i)]) for i in range(len(vars_))]
    optimizer = None
    if "optimizer" in f and "vars" in f["optimizer"]:
        vars_ = f["optimizer"]["vars"]
        optimizer = [np.asarray(vars_[str(i)]) for i in range(len(vars_))]
    return layers, optimizer


def _set_layer_weights(model, by_key, path):
    keys = layer_keys(model.layers)
    extra = sorted(set(k for k, v in by_key.items() if v) - set(keys))
    if extra:
        _refuse(path, f"holds weights for layers {extra} that Sequential '{model.name}' "
                      f"does not have (its layers: {keys})")
    for layer, key in zip(model.layers, keys):
        values = by_key.get(key, [])
        if len(values) != len(layer.weights):
            _refuse(path, f"layer '{layer.name}' ({key} in the file) has {len(layer.weights)} "
                          f"weights, the file holds {len(values)}")
        if values:
            try:
                layer.set_weights(values)
            except (ValueError, TypeError) as exc:
                _refuse(path, str(exc))


def _set_optimizer(model, values, path):
    opt = model.optimizer
    if opt is None or values is None:
        return
    weights = model.trainable_weights
    per_weight = len(opt.slot_names)
    if len(values) != 2 + per_weight * len(weights):
        _refuse(path, f"the optimizer state holds {len(values)} arrays; a "
                      f"{type(opt).__name__} of this model has {2 + per_weight * len(weights)}")
    state = {"iterations": int(values[0])}
    for s, slot in enumerate(opt.slot_names):
        state[slot] = [values[2 + i * per_weight + s] for i in range(len(weights))]
    for slot in opt.slot_names:
        for value, weight in zip(state[slot], weights):
            if tuple(value.shape) != tuple(weight.shape):
                _refuse(path, f"optimizer slot {slot!r} of shape {tuple(value.shape)} does not "
                              f"fit a weight of shape {tuple(weight.shape)}")
    opt.set_state(state)


def _archive_weights(path):
    try:
        with zipfile.ZipFile(path) as z:
            return io.BytesIO(z.read("model.weights.h5"))
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        _refuse(path, f"not a Keras 3 .keras archive, or truncated or corrupt ({exc})")


def load_weights(model, path):
    """Weights (and the optimizer's state) from a ``.weights.h5`` file or from the
    weights inside a ``.keras`` archive, as Keras's ``load_weights`` reads both."""
    source = _archive_weights(path) if keras_format(path) == "keras" else None
    with _open_h5(path, source) as f:
        layers, optimizer = _read_weights_file(f, path)
    _set_layer_weights(model, layers, path)
    _set_optimizer(model, optimizer, path)


def _layer_from_config(entry, path):
    from .models import LAYER_CLASSES
    cls_name = entry.get("class_name") if isinstance(entry, dict) else None
    config = dict(entry.get("config") or {}) if isinstance(entry, dict) else {}
    name = config.get("name", "?")
    if cls_name not in _ARGUMENTS:
        _refuse(path, f"layer '{name}' is a {cls_name}, which minicnn does not have "
                      f"(it reads {sorted(_ARGUMENTS)}); nothing in the file was executed")
    kwargs = {"name": name}
    for key, value in config.items():
        if key in _ARGUMENTS[cls_name]:
            if key == "activation" and not isinstance(value, str):
                _refuse(path, f"layer '{name}': activation {value!r} is not a built-in name")
            kwargs[key] = tuple(value) if isinstance(value, list) else value
        elif key in _DEFAULTS:
            if value not in _DEFAULTS[key] and not (isinstance(value, list)
                                                   and tuple(value) in _DEFAULTS[key]):
                _refuse(path, f"layer '{name}': {key}={value!r} is not supported by minicnn")
        elif key in _IGNORED:
            if key.endswith(("regularizer", "constraint")) and value is not None:
                _refuse(path, f"layer '{name}': {key}={value!r} is not supported by minicnn")
        else:
            _refuse(path, f"layer '{name}': unknown {cls_name} argument {key!r}")
    try:
        return LAYER_CLASSES[cls_name](**kwargs)
    except (TypeError, ValueError) as exc:
        _refuse(path, f"layer '{name}': {exc}")


def _model_from_config(config, path):
    from .models import Sequential
    if not isinstance(config, dict) or config.get("class_name") != "Sequential":
        kind = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        _refuse(path, f"holds a {kind} model; minicnn reads Sequential models only "
                      "(a functional graph cannot be represented)")
    body = config.get("config") or {}
    entries = list(body.get("layers") or [])
    input_shape = None
    if entries and entries[0].get("class_name") == "InputLayer":
        first = entries.pop(0).get("config", {})
        input_shape = first.get("batch_shape") or first.get("batch_input_shape")
    elif entries:  # Keras 2 style: the first layer carries batch_input_shape
        input_shape = entries[0].get("config", {}).pop("batch_input_shape", None)
    if input_shape is None:
        input_shape = (config.get("build_config") or {}).get("input_shape")
    if input_shape is None:
        _refuse(path, "the model has no input shape (it was never built)")
    model = Sequential([_layer_from_config(e, path) for e in entries],
                       name=body.get("name"))
    model.build(tuple(input_shape))
    return model


def _compile_from_config(model, compiled, path):
    from . import losses, optimizers
    if not compiled:
        return
    spec = compiled.get("optimizer")
    if isinstance(spec, str):
        spec = {"class_name": {"adam": "Adam", "sgd": "SGD"}.get(spec, spec), "config": {}}
    cls_name = spec.get("class_name") if isinstance(spec, dict) else None
    allowed = {"Adam": ("learning_rate", "beta_1", "beta_2", "epsilon"),
               "SGD": ("learning_rate", "momentum", "nesterov")}
    if cls_name not in allowed:
        _refuse(path, f"optimizer {cls_name!r}: minicnn has Adam and SGD")
    kwargs = {}
    for key, value in (spec.get("config") or {}).items():
        if key in allowed[cls_name]:
            kwargs[key] = value
        elif key == "amsgrad" and value:
            _refuse(path, "Adam(amsgrad=True) is not supported by minicnn")
        elif key in ("weight_decay", "clipnorm", "global_clipnorm", "clipvalue",
                     "loss_scale_factor", "gradient_accumulation_steps",
                     "ema_overwrite_frequency") and value is not None:
            _refuse(path, f"optimizer argument {key}={value!r} is not supported by minicnn")
        elif key == "use_ema" and value:
            _refuse(path, "optimizer argument use_ema=True is not supported by minicnn")
        elif isinstance(value, dict):
            _refuse(path, f"optimizer argument {key}: a schedule is not supported by minicnn")
    optimizer = getattr(optimizers, cls_name)(**kwargs)
    loss = compiled.get("loss")
    if isinstance(loss, dict):
        loss_cls = loss.get("class_name")
        known = {type(losses.get(name)).__name__ for name in losses._BY_NAME}
        if loss_cls not in known:
            _refuse(path, f"loss {loss_cls!r} is not one minicnn has (it has {sorted(known)})")
        config = loss.get("config") or {}
        loss = getattr(losses, loss_cls)(**({"from_logits": config["from_logits"]}
                                            if "from_logits" in config else {}))
    metrics = compiled.get("metrics") or []
    if isinstance(metrics, dict) or any(not isinstance(m, str) for m in metrics):
        _refuse(path, f"metrics {metrics!r}: minicnn reads metrics given by name")
    try:
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    except (TypeError, ValueError) as exc:
        _refuse(path, f"compile settings: {exc}")


def load_keras(path):
    try:
        with zipfile.ZipFile(path) as z:
            config = json.loads(z.read("config.json").decode("utf-8"))
            weights = z.read("model.weights.h5")
    except (zipfile.BadZipFile, KeyError, OSError, json.JSONDecodeError,
            UnicodeDecodeError) as exc:
        _refuse(path, f"not a Keras 3 .keras archive, or truncated or corrupt ({exc})")
    model = _model_from_config(config, path)
    _compile_from_config(model, config.get("compile_config"), path)
    with _open_h5(path, io.BytesIO(weights)) as f:
        layers, optimizer = _read_weights_file(f, path)
    _set_layer_weights(model, layers, path)
    _set_optimizer(model, optimizer, path)
    return model


def _json_attr(f, name, path):
    value = f.attrs.get(name)
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        _refuse(path, f"its {name} attribute is not JSON ({exc})")


def _names(attribute):
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in attribute]


def load_legacy_h5(path):
    with _open_h5(path) as f:
        config = _json_attr(f, "model_config", path)
        if config is None:
            _refuse(path, "no model_config: a legacy weights-only file (load it with "
                          "load_weights into a model of its architecture) or not a Keras file")
        model = _model_from_config(config, path)
        training = _json_attr(f, "training_config", path)
        if training:
            _compile_from_config(model, dict(training, optimizer=training.get(
                "optimizer_config")), path)
        group = f["model_weights"] if "model_weights" in f else f
        for layer in model.layers:
            if layer.name not in group:
                if layer.weights:
                    _refuse(path, f"no weights for layer '{layer.name}'")
                continue
            names = _names(group[layer.name].attrs.get("weight_names", []))
            values = [np.asarray(group[layer.name][n]) for n in names]
            if len(values) != len(layer.weights):
                _refuse(path, f"layer '{layer.name}' has {len(layer.weights)} weights, the "
                              f"file holds {len(values)}")
            if values:
                layer.set_weights(values)
        if model.optimizer is not None and "optimizer_weights" in f:
            opt_group = f["optimizer_weights"]
            names = _names(opt_group.attrs.get("weight_names", []))
            _set_optimizer(model, [np.asarray(opt_group[n]) for n in names], path)
    return model
