"""A functional model's graph in Keras 3's ``.keras`` config, written and read.

Keras writes a functional model (``"class_name": "Functional"``) as its layers in
order, each with ``inbound_nodes``: the tensors it was called on, each named by
``keras_history = [layer name, node index (the call), tensor index]``; the model's inputs are
``InputLayer`` entries, and ``input_layers`` / ``output_layers`` name the ends. A
layer called on a list (a merge layer) has that list as its one argument.

Reading turns that into minicnn's own graph description (inputs by index, layers by
name) and builds it with ``loading.build_graph_model``, which sizes the graph before
it allocates anything. A layer with more than one inbound node is a shared layer:
each node is one call, and ``keras_history``'s middle number says which call made a
tensor.
"""
from . import loading
from .config_types import check_types
from .file_checks import refuse


def _tensor(tensor, history):
    return {"class_name": "__keras_tensor__",
            "config": {"shape": list(tensor.shape), "dtype": "float32",
                       "keras_history": history}}


def functional_config(model, layer_entry):
    """Keras's config of ``model`` (a ``minicnn.Model``); ``layer_entry(layer)`` gives
    one layer's Keras entry (``keras_files``)."""
    graph = model._graph
    history, layers = {}, []
    for tensor in graph.inputs:
        layers.append({"module": "keras.layers", "class_name": "InputLayer",
                       "config": {"batch_shape": list(tensor.shape), "dtype": "float32",
                                  "sparse": False, "ragged": False, "name": tensor.name,
                                  "optional": False},
                       "registered_name": None, "name": tensor.name, "inbound_nodes": []})
        history[id(tensor)] = [tensor.name, 0, 0]
    calls = {}  # each layer's calls in the order they run: its inbound_nodes
    for node in graph.nodes:
        calls.setdefault(id(node.layer), []).append(node)
        history[id(node.output)] = [node.layer.name, graph.call[id(node)], 0]
    for layer in graph.layers:
        entry = dict(layer_entry(layer), name=layer.name)
        entry["inbound_nodes"] = []
        for node in calls[id(layer)]:
            args = [_tensor(t, history[id(t)]) for t in node.inputs]
            entry["inbound_nodes"].append({"args": [args] if node.multi else args,
                                           "kwargs": {}})
        layers.append(entry)

    def ends(tensors, single):
        names = [history[id(t)] for t in tensors]
        return names[0] if single else names
    return {"module": "keras.src.models.functional", "class_name": "Functional",
            "config": {"name": model.name, "trainable": model.trainable, "layers": layers,
                       "input_layers": ends(graph.inputs, model._single_input),
                       "output_layers": ends(graph.outputs, model._single_output)},
            "registered_name": "Functional", "build_config": {"input_shape": None}}


def _history(arg, path, where):
    if not isinstance(arg, dict) or arg.get("class_name") != "__keras_tensor__":
        refuse(path, f"{where}: an argument is not a Keras tensor ({str(arg)[:100]})")
    config = check_types(path, where, arg.get("config") or {})
    history = config.get("keras_history")
    if not isinstance(history, list) or len(history) != 3 or not isinstance(history[0], str) \
            or not isinstance(history[1], int) or isinstance(history[1], bool) \
            or history[1] < 0 or history[2] != 0:
        refuse(path, f"{where}: keras_history {str(history)[:100]} is not [layer name, call, 0] "
                     f"(layers with several outputs are not implemented in minicnn)")
    return history[0], history[1]


def _ref(history, input_names):
    """A tensor named by Keras's ``[layer name, call]`` as ``loading.build_graph_model``
    names it."""
    name, call = history
    if name in input_names:
        return {"input": input_names.index(name)}
    return {"layer": name, "call": call}


def _ends(value, path, what):
    """``input_layers`` / ``output_layers``: one [name, 0, 0] or a list of them."""
    single = isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)
    items = [value] if single else value
    if not isinstance(items, list) or not items:
        refuse(path, f"{what} is not a list of [layer name, 0, 0]")
    return [_history({"class_name": "__keras_tensor__", "config": {"keras_history": item}},
                     path, what) for item in items], single


def functional_from_config(config, path, layer_from_entry):
    """A ``minicnn.Model`` from Keras's functional config; ``layer_from_entry(entry)``
    makes one layer from its Keras entry (``keras_files``)."""
    body = check_types(path, "the model's config", config.get("config") or {})
    entries = body.get("layers")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        refuse(path, "the model's layers are not a list of objects")
    input_names, shapes, graph_entries, layers = [], [], [], []
    for entry in entries:
        if entry.get("class_name") == "InputLayer":
            first = check_types(path, "an input layer", entry.get("config") or {})
            shape = first.get("batch_shape") or first.get("batch_input_shape")
            if not isinstance(shape, list) or len(shape) < 2:
                refuse(path, f"input layer {first.get('name')!r} has no batch_shape")
            input_names.append(first.get("name"))
            shapes.append(shape[1:])
            continue
        nodes = entry.get("inbound_nodes")
        where = f"layer {entry.get('name')!r}"
        if not isinstance(nodes, list) or not nodes or not all(isinstance(n, dict)
                                                               for n in nodes):
            refuse(path, f"{where} has no list of calls (inbound_nodes)")
        layer = layer_from_entry(entry)
        for node in nodes:
            args, kwargs = node.get("args"), node.get("kwargs") or {}
            # Keras records BatchNormalization's call with mask=None: no argument at all
            if not isinstance(args, list) or len(args) != 1 or not isinstance(kwargs, dict) \
                    or any(value is not None for value in kwargs.values()):
                refuse(path, f"{where}: its call is not one tensor or one list of tensors "
                             f"without arguments (kwargs {str(kwargs)[:80]})")
            multi = isinstance(args[0], list)
            names = [_history(a, path, where) for a in (args[0] if multi else args)]
            graph_entries.append({"layer": layer.name, "inbound": names, "multi": multi})
        layers.append(layer)
    outputs, single_output = _ends(body.get("output_layers"), path, "output_layers")
    inputs, _ = _ends(body.get("input_layers"), path, "input_layers")
    for entry in graph_entries:  # every input layer is known now, wherever it was listed
        entry["inbound"] = [_ref(n, input_names) for n in entry["inbound"]]
    inputs = [name for name, _ in inputs]
    if inputs != input_names:
        refuse(path, f"input_layers {inputs} are not the input layers {input_names} in order")
    described = {"name": body.get("name"), "inputs": shapes, "input_names": input_names,
                 "single_output": single_output,
                 "outputs": [_ref(n, input_names) for n in outputs]}
    return loading.build_graph_model(path, described, graph_entries, layers)
