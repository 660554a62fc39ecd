"""From a checked file to a model: the one validation step every loader shares.

A loader (minicnn's ``.npz`` here, Keras's formats in ``minicnn.keras_files``) reads
its format and hands what it found to these functions, which check it against the
architecture before anything uses it:

- ``build_model``: every layer's class from the closed table ``LAYER_CLASSES``, its
  config type-checked, the architecture's size checked against the memory this
  process may use, before any weight is allocated;
- ``set_weights``: each array's shape and dtype compared with the layer's weight
  before the array is read, its values finite (a moving variance also >= 0);
- ``compile_model`` and ``set_optimizer_state`` (``minicnn.compile_settings``): the
  optimizer, its schedule and the losses from closed tables, typed configs; a whole
  number of steps and one slot per trainable weight of its shape, finite.

Each error is a ``file_checks.ModelFileError`` naming the file.
"""
import contextlib
import math
import os
import threading

from . import file_checks
from .compile_settings import _NONNEGATIVE, compile_model, set_optimizer_state
from .config_types import check_types, lookup
from .file_checks import read_checked, refuse
from . import layers as L

# the layer classes a file may name: looked up here only, never as attributes
LAYER_CLASSES = {cls.__name__: cls for cls in (
    L.Conv2D, L.MaxPooling2D, L.AveragePooling2D, L.MinPooling2D, L.Dense, L.Flatten,
    L.Activation, L.Dropout, L.BatchNormalization, L.Add, L.Subtract, L.Multiply, L.Average,
    L.Maximum, L.Minimum, L.Concatenate, L.GlobalAveragePooling2D, L.GlobalMaxPooling2D,
    L.ZeroPadding2D, L.Cropping2D, L.UpSampling2D, L.Reshape, L.Rescaling, L.Identity,
    L.Softmax, L.ReLU, L.LeakyReLU, L.ELU, L.RandomFlip, L.RandomTranslation, L.RandomRotation,
    L.RandomZoom, L.RandomCrop, L.RandomContrast, L.RandomBrightness)}
_MODEL_CLASSES = ("Sequential", "Model")  # a model saved as a layer of another
NESTING = 8                               # how deep models may sit inside models
_LOAD = threading.local()                 # the parameters one load has made so far


def make_layer(path, class_name, config, depth=0):
    """A layer of a class minicnn has, from a type-checked config; for ``Sequential``
    or ``Model``, a model used as a layer, made from its own config (``model_config``)."""
    if class_name in _MODEL_CLASSES and isinstance(config, dict):
        if depth >= NESTING:
            refuse(path, f"its models are nested more than {NESTING} deep")
        trainable = config.get("trainable", True)
        model = model_config(path, {k: v for k, v in config.items() if k != "trainable"},
                             depth + 1)
        if trainable is not True:
            model.trainable = bool(trainable)
        return model
    cls = lookup(path, LAYER_CLASSES, class_name, "layer class")
    config = check_types(path, f"layer {config.get('name', '?')!r} ({class_name})"
                         if isinstance(config, dict) else "a layer", config, class_name)
    try:
        return cls(**config)
    except (TypeError, ValueError) as exc:
        raise file_checks.ModelFileError(path, f"layer {config.get('name', '?')!r}: {exc}") \
            from exc


def build_model(path, layers, input_shape, name=None):
    """A built ``Sequential`` of ``layers``, once its size has been checked."""
    from .backend import floatx
    from .models import Sequential
    if not isinstance(input_shape, (list, tuple)) or not all(
            d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0)
            for d in input_shape):
        refuse(path, f"the model's input shape {input_shape!r} is not a list of sizes")
    if name is not None and not isinstance(name, str):
        refuse(path, f"the model's name {name!r} is not a string")
    input_shape = tuple(input_shape)
    model = Sequential(layers, name=name)
    sample = model._sample_shape(input_shape)
    try:
        # weights, gradients and up to two optimizer slots per weight
        count = file_checks.check_declared_size(path, model.layers, sample,
                                                _itemsize(floatx()), copies=4,
                                                already=_made())
        model.build(input_shape)
        _LOAD.made = _made() + count
    except (TypeError, ValueError) as exc:
        if isinstance(exc, file_checks.ModelFileError):
            raise
        raise file_checks.ModelFileError(path, f"its architecture does not build: {exc}") \
            from exc
    return model


def _saved_nodes(path, config, entries):
    """The calls of a functional model in minicnn's archive: its ``nodes`` list, or
    (files written before shared layers) one call per layer from the layers' own
    ``inbound`` and ``multi``."""
    if "nodes" in config:
        if not isinstance(config["nodes"], list):
            refuse(path, "its functional model's nodes are not a list")
        return config["nodes"]
    return [{"layer": (e.get("config") or {}).get("name"), "inbound": e.get("inbound"),
             "multi": e.get("multi")} for e in entries]


def _graph_ref(path, ref, what):
    """A tensor a saved graph names: ``{"input": i}`` or ``{"layer": name}`` (its first
    call) or ``{"layer": name, "call": k}`` -> ``("input", i)`` or ``(name, k)``."""
    if isinstance(ref, dict) and set(ref) == {"input"} and isinstance(ref["input"], int) \
            and not isinstance(ref["input"], bool):
        return "input", ref["input"]
    if isinstance(ref, dict) and set(ref) in ({"layer"}, {"layer", "call"}) and isinstance(
            ref["layer"], str) and isinstance(ref.get("call", 0), int) \
            and not isinstance(ref.get("call", 0), bool):
        return ref["layer"], ref.get("call", 0)
    refuse(path, f"{what} names {str(ref)[:100]}: not an input or a layer's call")


def build_graph_model(path, config, nodes, layers):
    """A functional ``Model`` from its saved graph: ``nodes`` are the layers' calls
    (``{"layer": name, "inbound": [tensor refs], "multi": bool}``; a shared layer has
    several), each made on the tensors it names once those exist, after the whole
    graph's size has been checked."""
    from .backend import floatx
    from .functional import Model
    from .graph import Input
    shapes = config.get("inputs")
    if not isinstance(shapes, list) or not shapes:
        refuse(path, "its functional model has no list of input shapes")
    names = config.get("input_names") or [None] * len(shapes)
    if not isinstance(names, list) or len(names) != len(shapes) or not all(
            n is None or (isinstance(n, str) and n) for n in names):
        refuse(path, f"input names {str(names)[:100]} are not one name per input")
    inputs = []
    for shape, name in zip(shapes, names):
        if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
            refuse(path, f"input shape {shape!r} is not a list of sizes")
        inputs.append(Input(tuple(shape), name=name))
    by_name = {}
    for layer in layers:
        if layer.name in by_name:
            refuse(path, f"two layers are named '{layer.name}'")
        by_name[layer.name] = layer
    # each node: (its layer, its tensor's key (layer name, call k), the keys it reads)
    plan, calls = [], {}
    for node in nodes:
        name = node.get("layer") if isinstance(node, dict) else None
        inbound = node.get("inbound") if isinstance(node, dict) else None
        if name not in by_name or not isinstance(inbound, list) or not inbound or \
                not isinstance(node.get("multi"), bool) or (len(inbound) > 1
                                                            and not node["multi"]):
            refuse(path, f"a call of layer {str(name)[:60]!r} has no valid list of inbound "
                         f"tensors")
        refs = [_graph_ref(path, ref, f"layer '{name}'") for ref in inbound]
        calls[name] = calls.get(name, -1) + 1
        plan.append((by_name[name], (name, calls[name]), refs, node["multi"]))
    outputs = [_graph_ref(path, ref, "an output") for ref in config.get("outputs") or [None]]
    order = _calls_in_order(path, plan, len(inputs))

    def walk(starts, step):
        """Each call's result from the results it names (``starts`` for the inputs);
        the results of the outputs."""
        done = {("input", i): start for i, start in enumerate(starts)}
        for i in order:
            layer, key, refs, multi = plan[i]
            args = [done[ref] for ref in refs]
            done[key] = step(layer, args if multi else args[0])
        missing = [ref for ref in outputs if ref not in done]
        if missing:
            refuse(path, f"an output names {missing[0]}: neither an input nor a layer's call")
        return [done[ref] for ref in outputs]

    count = 0

    def size(layer, sample):  # sized from the shapes alone: nothing is built yet
        nonlocal count
        try:
            count += sum(math.prod(s) for s in layer.declared_weight_shapes(sample))
            return layer.compute_output_shape(sample)
        except (TypeError, ValueError) as exc:
            raise file_checks.ModelFileError(path, f"its graph does not build: {exc}") from exc
    walk([t.shape[1:] for t in inputs], size)
    file_checks.check_size(path, _made() + count, _itemsize(floatx()), copies=4)
    outputs = walk(inputs, lambda layer, args: layer(args))
    _LOAD.made = _made() + count
    single = config.get("single_output", True)
    if not isinstance(single, bool) or (single and len(outputs) != 1):
        refuse(path, "its outputs are not a valid list")
    try:
        return Model(inputs if len(inputs) > 1 else inputs[0],
                     outputs[0] if single else outputs, name=config.get("name"))
    except (TypeError, ValueError) as exc:
        raise file_checks.ModelFileError(path, f"its graph does not build: {exc}") from exc


def _calls_in_order(path, plan, inputs):
    """The calls in an order where each comes after the calls it reads (Kahn's
    algorithm, earliest listed first): the order in which they are made."""
    import heapq
    made_by = {key: i for i, (_, key, _, _) in enumerate(plan)}
    waiting, readers, ready = [0] * len(plan), {}, []
    for i, (layer, _, refs, _) in enumerate(plan):
        for ref in refs:
            if ref[0] == "input" and 0 <= ref[1] < inputs:
                continue
            if ref not in made_by:
                refuse(path, f"layer '{layer.name}' names {ref}: neither an input nor a "
                             f"layer's call")
            waiting[i] += 1
            readers.setdefault(ref, []).append(i)
        if not waiting[i]:
            ready.append(i)
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for reader in readers.get(plan[i][1], []):
            waiting[reader] -= 1
            if not waiting[reader]:
                heapq.heappush(ready, reader)
    if len(order) != len(plan):
        stuck = next(plan[i][0] for i in range(len(plan)) if waiting[i])
        refuse(path, f"its graph has a cycle through layer '{stuck.name}'")
    return order


def _itemsize(dtype):
    import numpy as np
    return np.dtype(dtype).itemsize


def set_weights(path, layer, stored, where=None):
    """``layer``'s weights from ``stored`` (``file_checks.Stored``, one per weight in
    Keras's order), each checked before it is read."""
    where = where or f"layer '{layer.name}'"
    names, current = layer.weight_names, layer.weights
    if len(stored) != len(current):
        refuse(path, f"{where} has {len(current)} weights {names}, the file holds "
                     f"{len(stored)}")
    values = []
    for name, weight, item in zip(names, current, stored):
        what = f"weight '{name}' of {where}"
        value = read_checked(path, item, what, weight.shape)
        if name.rsplit("/", 1)[-1] in _NONNEGATIVE:  # also "<layer>/moving_variance"
            file_checks.check_values(path, value, what, nonnegative=True)
        values.append(value)
    if values:
        try:
            layer.set_weights(values)
        except (TypeError, ValueError) as exc:
            raise file_checks.ModelFileError(path, str(exc)) from exc


# ---------------------------------------------------------------------------------
# minicnn's own archive
# ---------------------------------------------------------------------------------
@contextlib.contextmanager
def one_load():
    """Count the parameters the models of one file allocate from zero (see ``_made``)."""
    _LOAD.made = 0
    try:
        yield
    finally:
        _LOAD.made = 0


def _made():
    """Parameters already allocated by this load (by the models inside the model)."""
    return getattr(_LOAD, "made", 0)


def model_config(path, config, depth=0):
    """A model (Sequential or functional) from the architecture ``get_config`` wrote,
    with the models it holds as layers, each sized before it is built."""
    config = check_types(path, "the model", config)
    entries = config.get("layers")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        refuse(path, "its model has no list of layer objects")
    layers = [make_layer(path, e.get("class_name"), e.get("config"), depth) for e in entries]
    if config.get("functional") is True:
        return build_graph_model(path, config, _saved_nodes(path, config, entries), layers)
    return build_model(path, layers, config.get("input_shape"), config.get("name"))


def load_npz_model(path):
    """A model from an archive ``Sequential.save`` wrote."""
    from . import saving
    path = os.fspath(path)
    with saving.Archive(path, kind="model") as archive:
        header = archive.header
        with file_checks.reading(path):
            with one_load():
                model = model_config(path, header.get("model"))
            _npz_weights(path, archive, model)
            compiled = header.get("compile")
            if compiled:
                compiled = check_types(path, "the compile settings", compiled)
                spec = check_types(path, "the compile settings' optimizer",
                                   compiled.get("optimizer"))
                losses = compiled.get("loss")
                losses = losses if isinstance(losses, list) else [losses]
                for i, entry in enumerate(losses):
                    if entry is not None:
                        entry = check_types(path, f"the compile settings' loss {i}", entry)
                        losses[i] = (entry.get("class_name"), entry.get("config"))
                compile_model(path, model, spec.get("class_name"), spec.get("config"), losses,
                              compiled.get("metrics", []), compiled.get("loss_weights"))
                slots = {}
                for slot in _slot_names(archive):
                    count = archive.count(f"optimizer/{slot}")
                    slots[slot] = [archive.stored(f"optimizer/{slot}/{i:04d}")
                                   for i in range(count)]
                set_optimizer_state(path, model, compiled.get("iterations", 0), slots,
                                    compiled.get("scalars"))
            model._set_random_state(header.get("random"), path)
    return model


def _slot_names(archive):
    return sorted({n.split("/")[1] for n in archive.names
                   if n.startswith("optimizer/") and n.count("/") == 2})


def _npz_weights(path, archive, model):
    expected = sum(len(layer.weights) for layer in model._layers)
    stored = archive.count("weights")
    if stored != expected or any(n.split("/")[0] not in ("weights", "optimizer")
                                 for n in archive.names):
        refuse(path, f"holds {stored} weight arrays (of {sorted(archive.names)[:6]}...); "
                     f"{type(model).__name__} '{model.name}' has {expected}")
    index = 0
    for layer in model._layers:
        items = [archive.stored(f"weights/{index + j:04d}") for j in range(len(layer.weights))]
        set_weights(path, layer, items)
        index += len(layer.weights)


def load_npz_weights(model, path):
    """Weights from an archive ``save_weights`` or ``save`` wrote, into ``model``."""
    from . import saving
    path = os.fspath(path)
    with saving.Archive(path) as archive:
        with file_checks.reading(path):
            if archive.header.get("kind") not in ("weights", "model"):
                refuse(path, f"holds {archive.header.get('kind')!r}, not weights")
            _npz_weights(path, archive, model)
