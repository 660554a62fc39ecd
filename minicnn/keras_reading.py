"""Keras's files read: ``.keras`` archives, ``.weights.h5`` and legacy ``.h5`` models.

Every step goes through ``minicnn.file_checks`` (only the file's own bytes, bounded
sizes, arrays checked from their headers, typed configs, errors naming the file) and
``minicnn.loading`` (the one validation step between reading and using). The layout
read is the one ``minicnn.keras_files`` documents and writes; a functional model's
graph is ``minicnn.keras_graph``'s.
"""
import io
import zipfile

import numpy as np

from . import compile_settings, config_types, file_checks, keras_graph, loading, losses
from .file_checks import _h5py, refuse
from .keras_files import (_ARGUMENTS, _DEFAULTS, _IGNORED, _MINICNN_MEMBER, keras_format,
                          layer_keys)


def _weights_cap(model):
    """The most bytes a weights file of ``model`` may hold: its weights and two slots
    per trainable weight, at 8 bytes a value, plus room for HDF5's own structures."""
    values = sum(int(np.prod(w.shape)) for layer in model.layers for w in layer.weights)
    return 3 * 8 * values + 16 * 2**20 + 64 * 2**10 * (len(model.layers) + 1)


def _open_h5(path, source):
    """An HDF5 file over ``source`` (a regular file already opened, or bytes read from
    an archive), its whole tree checked before anything is read from it."""
    h5py = _h5py()
    f = h5py.File(source, "r")
    try:
        file_checks.check_h5_tree(f, path)
    except BaseException:
        f.close()
        raise
    return f


def _dataset(group, name, path, where):
    h5py = _h5py()
    item = group.get(name) if isinstance(group, h5py.Group) else None
    if not isinstance(item, h5py.Dataset):
        refuse(path, f"{where}: no dataset {name!r}")
    return file_checks.Stored.from_h5(item)


def _vars(group, path, where):
    """The datasets ``vars/0``, ``vars/1``, ... of a layer's or the optimizer's group."""
    h5py = _h5py()
    vars_ = group.get("vars") if isinstance(group, h5py.Group) else None
    if vars_ is None:
        return []
    if not isinstance(vars_, h5py.Group):
        refuse(path, f"{where}/vars is not a group")
    names = set(vars_)
    if names != {str(i) for i in range(len(names))}:
        refuse(path, f"{where}/vars holds {sorted(names)[:8]}, not 0, 1, 2, ...")
    return [_dataset(vars_, str(i), path, where) for i in range(len(names))]


def _read_layers(f, model, path, where=""):
    """Every layer's weights from a .weights.h5 layout (a model inside the model from
    the ``layers`` group under its key), each checked before reading."""
    h5py = _h5py()
    if not isinstance(f.get("layers"), h5py.Group):
        refuse(path, f"no {where}/layers group: not a Keras 3 weights file")
    keys = layer_keys(model.layers)
    stored = {key: _vars(group, path, f"{where}/layers/{key}")
              for key, group in f["layers"].items()}
    extra = sorted(k for k, v in stored.items() if v and k not in keys)
    if extra:
        refuse(path, f"holds weights for layers {extra} that {type(model).__name__} "
                     f"'{model.name}' does not have (its layers: {keys})")
    for layer, key in zip(model.layers, keys):
        if hasattr(layer, "_graph"):
            group = f["layers"].get(key)
            if not isinstance(group, h5py.Group):
                refuse(path, f"no {where}/layers/{key} group for the model '{layer.name}'")
            _read_layers(group, layer, path, f"{where}/layers/{key}")
            continue
        loading.set_weights(path, layer, stored.get(key, []),
                            f"layer '{layer.name}' ({key} in the file)")


def _read_optimizer(f, model, path):
    """The optimizer's state from ``/optimizer/vars``."""
    h5py = _h5py()
    opt = model.optimizer
    group = f.get("optimizer")
    if opt is None or not isinstance(group, h5py.Group):
        return
    stored = _vars(group, path, "/optimizer")
    if not stored:
        return
    _set_optimizer_vars(model, stored, path)


def _set_optimizer_vars(model, stored, path):
    """The optimizer's state from Keras's list of its variables (``/optimizer/vars``,
    or a legacy file's ``optimizer_weights``): the step count, the learning rate (not
    for a schedule), each trainable weight's slots in the optimizer's layout, then its
    scalars (``keras_files._optimizer_vars`` writes the same)."""
    from .optimizers.schedules import LearningRateSchedule
    opt = model.optimizer
    weights, per_weight = model.trainable_weights, len(opt.slot_names)
    lead = 1 if isinstance(opt.learning_rate, LearningRateSchedule) else 2
    expected = lead + per_weight * len(weights) + len(opt.keras_scalars)
    if len(stored) == lead and stored[0].shape == ():  # built, never stepped: no slots yet
        compile_settings.set_optimizer_state(path, model, stored[0].read(), {})
        return
    if len(stored) != expected:
        refuse(path, f"the optimizer state holds {len(stored)} arrays; a "
                     f"{type(opt).__name__} of this model has {expected}")
    if stored[0].shape != () or stored[0].dtype.kind not in "iuf":
        refuse(path, f"the optimizer's step count has shape {stored[0].shape} and dtype "
                     f"{stored[0].dtype}")
    if lead == 2:
        file_checks.read_checked(path, stored[1], "the optimizer's learning rate", ())
    n = len(weights)
    if opt.keras_layout == "blocks":
        slots = {slot: stored[lead + s * n:lead + (s + 1) * n]
                 for s, slot in enumerate(opt.slot_names)}
    else:
        slots = {slot: [stored[lead + i * per_weight + s] for i in range(n)]
                 for s, slot in enumerate(opt.slot_names)}
    scalars = {}
    for k, name in enumerate(opt.keras_scalars):
        item = stored[lead + per_weight * n + k]
        value = file_checks.read_checked(path, item, f"the optimizer's {name}", ())
        file_checks.check_values(path, value, f"the optimizer's {name}")
        scalars[name] = float(value)
    compile_settings.set_optimizer_state(path, model, stored[0].read(), slots, scalars)


def load_weights(model, path):
    """Weights (and the optimizer's state) from a ``.weights.h5`` file or from the
    weights inside a ``.keras`` archive, as Keras's ``load_weights`` reads both."""
    with file_checks.open_regular(path) as raw, file_checks.reading(path):
        if keras_format(path) == "keras":
            with zipfile.ZipFile(raw) as z:
                source = io.BytesIO(file_checks.read_member(
                    z, "model.weights.h5", _weights_cap(model), path))
        else:
            source = raw
        with _open_h5(path, source) as f:
            _read_layers(f, model, path)
            _read_optimizer(f, model, path)


def _layer_from_config(entry, path, depth=0):
    if not isinstance(entry, dict):
        refuse(path, f"a layer entry is {type(entry).__name__}, not an object")
    cls_name = entry.get("class_name")
    if cls_name in ("Sequential", "Functional", "Model"):  # a model inside the model
        if depth >= loading.NESTING:
            refuse(path, f"its models are nested more than {loading.NESTING} deep")
        model = _model_from_config(entry, path, depth + 1)
        trainable = (entry.get("config") or {}).get("trainable", True)
        if trainable is not True:
            model.trainable = bool(trainable)
        return model
    config = entry.get("config") or {}
    if not isinstance(config, dict):
        refuse(path, f"a layer's config is {type(config).__name__}, not an object")
    name = config.get("name", "?")
    if cls_name not in _ARGUMENTS:
        refuse(path, f"layer '{name}' is a {cls_name}, which minicnn does not have "
                     f"(it reads {sorted(_ARGUMENTS)}); nothing in the file was executed")
    kwargs = {"name": name}
    for key, value in config.items():
        if key in _ARGUMENTS[cls_name] or key in ("trainable", "activity_regularizer"):
            kwargs[key] = tuple(value) if isinstance(value, list) else value
        elif key in _DEFAULTS:
            if value not in _DEFAULTS[key] and not (isinstance(value, list)
                                                   and tuple(value) in _DEFAULTS[key]):
                refuse(path, f"layer '{name}': {key}={value!r} is not supported by minicnn")
        elif key in _IGNORED:
            if key.endswith(("regularizer", "constraint")) and value is not None:
                refuse(path, f"layer '{name}': {key}={value!r} is not supported by minicnn")
        else:
            refuse(path, f"layer '{name}': unknown {cls_name} argument {key!r}")
    return loading.make_layer(path, cls_name, kwargs)


def _model_from_config(config, path, depth=0):
    if isinstance(config, dict) and config.get("class_name") in ("Functional", "Model"):
        return keras_graph.functional_from_config(config, path,
                                                  lambda e: _layer_from_config(e, path, depth))
    if not isinstance(config, dict) or config.get("class_name") != "Sequential":
        kind = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        refuse(path, f"holds a {kind} model; minicnn reads Sequential and functional "
                     "models")
    body = config_types.check_types(path, "the model's config", config.get("config") or {})
    entries = body.get("layers") or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        refuse(path, "the model's layers are not a list of objects")
    entries = [dict(e) for e in entries]
    input_shape = None
    if entries and entries[0].get("class_name") == "InputLayer":
        first = config_types.check_types(path, "the input layer", entries.pop(0).get("config")
                                        or {})
        input_shape = first.get("batch_shape") or first.get("batch_input_shape")
    elif entries:  # Keras 2 style: the first layer carries batch_input_shape
        entries[0]["config"] = dict(config_types.check_types(
            path, "the first layer's config", entries[0].get("config") or {}))
        input_shape = entries[0]["config"].pop("batch_input_shape", None)
    if input_shape is None:
        build = config.get("build_config") or {}
        input_shape = build.get("input_shape") if isinstance(build, dict) else None
    if input_shape is None:
        refuse(path, "the model has no input shape (it was never built)")
    layers = [_layer_from_config(e, path, depth) for e in entries]
    return loading.build_model(path, layers, input_shape, body.get("name"))


def _compile_from_config(model, compiled, path):
    if not compiled:
        return
    compiled = config_types.check_types(path, "the compile settings", compiled)
    spec = compiled.get("optimizer")
    if isinstance(spec, str):
        from .optimizers import _BY_NAME
        named = _BY_NAME.get(spec.lower()) if isinstance(spec, str) else None
        spec = {"class_name": named.__name__ if named else spec, "config": {}}
    spec = config_types.check_types(path, "the optimizer", spec)
    cls_name = spec.get("class_name")
    allowed = compile_settings.optimizer_arguments()
    if cls_name not in allowed:
        refuse(path, f"optimizer {cls_name!r}: minicnn has {sorted(allowed)}")
    kwargs = {}
    config = config_types.check_types(path, f"optimizer {cls_name}", spec.get("config") or {})
    for key, value in config.items():
        if key in allowed[cls_name]:
            if value is not None:
                kwargs[key] = value  # a schedule's dict: compile_model makes it
        elif key == "amsgrad" and value:
            refuse(path, "Adam(amsgrad=True) is not supported by minicnn")
        elif key in ("loss_scale_factor", "gradient_accumulation_steps",
                     "ema_overwrite_frequency") and value is not None:
            refuse(path, f"optimizer argument {key}={value!r} is not supported by minicnn")
        elif key == "use_ema" and value:
            refuse(path, "optimizer argument use_ema=True is not supported by minicnn")
        elif isinstance(value, dict):
            refuse(path, f"optimizer argument {key}: {str(value)[:80]} is not supported by "
                         f"minicnn")
    single = model._single_output
    losses = compiled.get("loss")
    losses = [losses] if single or not isinstance(losses, list) else losses
    if not single and isinstance(compiled.get("loss"), dict):
        losses = [compiled["loss"].get(name) for name in model.output_names]
    metrics = compiled.get("metrics") or ([] if single else None)
    if not single and isinstance(metrics, dict):
        metrics = [metrics.get(name) for name in model.output_names]
    if not single and isinstance(metrics, list):
        metrics = [[m] if isinstance(m, (str, dict)) else m for m in metrics]
        metrics = [m if m is None else _metrics(path, m) for m in metrics]
    elif isinstance(metrics, list):
        metrics = _metrics(path, metrics)
    weights = compiled.get("loss_weights")
    if isinstance(weights, dict):
        weights = [weights.get(name, 1.0) for name in model.output_names]
    compile_settings.compile_model(path, model, cls_name, kwargs,
                          [_loss_spec(path, loss) for loss in losses], metrics, weights)


def _metrics(path, entries):
    """A list of metrics as Keras's compile config holds them: names, or serialized
    metric objects (``{"class_name": "SparseCategoricalAccuracy", "config": {"name":
    "acc", ...}}``), made from minicnn's closed table with their known arguments."""
    from . import metrics as metrics_module
    if not isinstance(entries, list):
        refuse(path, f"metrics {str(entries)[:100]}: not a list")
    made = []
    for entry in entries:
        if isinstance(entry, dict):
            cls = config_types.lookup(path, metrics_module.CLASSES,
                                      entry.get("class_name"), "metric")
            config = config_types.check_types(path, f"metric {entry.get('class_name')}",
                                              entry.get("config") or {})
            known = {k: v for k, v in config.items()
                     if k in ("name", "k", "threshold", "from_sorted_ids")}
            try:
                entry = cls(**known)
            except (TypeError, ValueError) as exc:
                refuse(path, f"metric {entry.get('class_name')}: {exc}")
        made.append(entry)
    return made


def _loss_spec(path, loss):
    """A loss as a Keras config names it (a string or a serialized object) ->
    ``(class name, config)``; None stays None (an output without a loss)."""
    if loss is None:
        return None
    if isinstance(loss, str):
        return type(losses.get(loss)).__name__ if loss in losses._BY_NAME else loss, {}
    loss = config_types.check_types(path, "the loss", loss)
    loss_cls = loss.get("class_name")
    config = config_types.check_types(path, f"loss {loss_cls}", loss.get("config") or {})
    return loss_cls, ({"from_logits": config["from_logits"]} if "from_logits" in config
                      else {})


def _random_state(z, model, path):
    """minicnn's random state, where a minicnn-written archive carries it."""
    if _MINICNN_MEMBER in z.namelist():
        extra = file_checks.parse_json(file_checks.read_member(
            z, _MINICNN_MEMBER, file_checks.MAX_JSON_BYTES, path), path, _MINICNN_MEMBER)
        if not isinstance(extra, dict):
            refuse(path, f"{_MINICNN_MEMBER} is not a JSON object")
        model._set_random_state(extra.get("random"), path)


def load_keras(path):
    with file_checks.open_regular(path) as raw, file_checks.reading(path):
        with zipfile.ZipFile(raw) as z:
            config = file_checks.parse_json(file_checks.read_member(
                z, "config.json", file_checks.MAX_JSON_BYTES, path), path, "config.json")
            with loading.one_load():
                model = _model_from_config(config, path)
            _compile_from_config(model, config.get("compile_config"), path)
            weights = file_checks.read_member(z, "model.weights.h5", _weights_cap(model), path)
            with _open_h5(path, io.BytesIO(weights)) as f:
                _read_layers(f, model, path)
                _read_optimizer(f, model, path)
            _random_state(z, model, path)
    return model


def _json_attr(f, name, path):
    value = file_checks.h5_attribute(f, name, path)
    if value is None:
        return None
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if not isinstance(value, (bytes, str)):
        refuse(path, f"its {name} attribute is not text")
    return file_checks.parse_json(value, path, f"its {name} attribute")


def _names(f, group, path):
    """The ``weight_names`` attribute of a legacy group, as strings."""
    names = file_checks.h5_attribute(group, "weight_names", path)
    names = [] if names is None else np.asarray(names).reshape(-1).tolist()
    if not all(isinstance(n, (bytes, str)) for n in names):
        refuse(path, f"{group.name}: weight_names are not text")
    return [n.decode("utf-8") if isinstance(n, bytes) else n for n in names]


def load_legacy_h5(path):
    h5py = _h5py()
    with file_checks.open_regular(path) as raw, file_checks.reading(path):
        with _open_h5(path, raw) as f:
            config = _json_attr(f, "model_config", path)
            if config is None:
                refuse(path, "no model_config: a legacy weights-only file (load it with "
                             "load_weights into a model of its architecture) or not a Keras "
                             "file")
            with loading.one_load():
                model = _model_from_config(config, path)
            training = _json_attr(f, "training_config", path)
            if training:
                if not isinstance(training, dict):
                    refuse(path, "its training_config is not a JSON object")
                _compile_from_config(model, dict(training, optimizer=training.get(
                    "optimizer_config")), path)
            group = f["model_weights"] if "model_weights" in f else f
            for layer in model.layers:
                sub = group.get(layer.name)
                if not isinstance(sub, h5py.Group):
                    if layer.weights:
                        refuse(path, f"no weights for layer '{layer.name}'")
                    continue
                stored = [_dataset(sub, n, path, f"layer '{layer.name}'")
                          for n in _names(f, sub, path)]
                loading.set_weights(path, layer, stored)
            if model.optimizer is not None and isinstance(f.get("optimizer_weights"),
                                                          h5py.Group):
                opt_group = f["optimizer_weights"]
                stored = [_dataset(opt_group, n, path, "the optimizer")
                          for n in _names(f, opt_group, path)]
                if stored:
                    _set_optimizer_vars(model, stored, path)
    return model
