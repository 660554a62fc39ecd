"""Typed configs and closed tables: what a model file's config values may be.

A file names classes and gives their arguments; minicnn looks a class up only in its
own tables (``lookup``: never as an attribute, never by import) and checks every
argument it knows against the type it must have (``check_types``), so a string where
a bool belongs, or a list of lists where a size belongs, is an error naming the key,
the place and the file (``minicnn.file_checks``, step 3).
"""
from .file_checks import refuse


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _ints(v):
    return _is_int(v) or (isinstance(v, (list, tuple)) and all(_is_int(i) for i in v))


def _ints_or_none(v):
    return v is None or _ints(v)


def _str_or_none(v):
    return v is None or isinstance(v, str)


def _bool(v):
    return isinstance(v, bool)


def _str(v):
    return isinstance(v, str)


def _nested_ints(v):
    return _ints(v) or (isinstance(v, (list, tuple)) and all(_ints(i) for i in v))


def _numbers(v):
    return _is_number(v) or (isinstance(v, (list, tuple)) and all(_numbers(i) for i in v))


def _dict_or_none(v):
    return v is None or isinstance(v, dict)


def _int_or_none(v):
    return v is None or _is_int(v)


# The type of every argument a file may give a layer, an optimizer or a loss.
ARGUMENT_TYPES = {
    "name": (_str, "a string"), "filters": (_is_int, "an integer"),
    "units": (_is_int, "an integer"), "kernel_size": (_ints, "an integer or a list of them"),
    "strides": (_ints_or_none, "an integer, a list of them or null"),
    "pool_size": (_ints, "an integer or a list of them"),
    "padding": (lambda v: _str(v) or _nested_ints(v), "a string, or sizes"),
    "data_format": (_str_or_none, "a string or null"),
    "activation": (_str_or_none, "an activation's name or null"),
    "use_bias": (_bool, "true or false"), "rate": (_is_number, "a number"),
    "seed": (_int_or_none, "an integer or null"), "axis": (_ints, "an integer or a list of them"),
    "momentum": (_is_number, "a number"), "epsilon": (_is_number, "a number"),
    "center": (_bool, "true or false"), "scale": (_bool, "true or false"),
    "synchronized": (_bool, "true or false"), "learning_rate": (lambda v: _is_number(v) or isinstance(v, dict),
                      "a number or a schedule"),
    "beta_1": (_is_number, "a number"), "beta_2": (_is_number, "a number"),
    "nesterov": (_bool, "true or false"), "from_logits": (_bool, "true or false"),
    "amsgrad": (_bool, "true or false"), "use_ema": (_bool, "true or false"),
    "trainable": (_bool, "true or false"),
    "keepdims": (_bool, "true or false"), "interpolation": (_str, "a string"),
    "size": (_ints, "an integer or a list of them"),
    "cropping": (_nested_ints, "sizes"),
    "target_shape": (_ints, "a list of sizes"),
    "offset": (_numbers, "a number or a list of numbers"),
    "max_value": (lambda v: v is None or _is_number(v), "a number or null"),
    "negative_slope": (_is_number, "a number"), "threshold": (_is_number, "a number"),
    "alpha": (_is_number, "a number"),
    # a regularizer: Keras's serialized dict (minicnn.regularizers checks its contents)
    "kernel_regularizer": (_dict_or_none, "a serialized regularizer (an object) or null"),
    "bias_regularizer": (_dict_or_none, "a serialized regularizer (an object) or null"),
    "activity_regularizer": (_dict_or_none, "a serialized regularizer (an object) or null"),
    "input_shape": (lambda v: v is None or (isinstance(v, list) and all(
        i is None or _is_int(i) for i in v)), "a list of sizes"),
}


# where one class's argument has another type than the same name elsewhere
CLASS_ARGUMENT_TYPES = {"Rescaling": {"scale": (_numbers, "a number or a list of numbers")}}


def check_types(path, where, config, class_name=None):
    """``config`` (a dict from a file) with every known key's value of its type (for
    ``class_name`` where its arguments differ); an error names the key, the place and
    the value."""
    if not isinstance(config, dict):
        refuse(path, f"{where}: expected a JSON object, found {type(config).__name__}")
    special = CLASS_ARGUMENT_TYPES.get(class_name, {})
    for key, value in config.items():
        if not isinstance(key, str):
            refuse(path, f"{where}: key {key!r} is not a string")
        check = special.get(key) or ARGUMENT_TYPES.get(key)
        if check is not None and not check[0](value):
            refuse(path, f"{where}: {key} must be {check[1]}, the file holds {value!r}")
    return config


def lookup(path, table, name, what):
    """``table[name]`` for a class name from a file; never an attribute lookup."""
    if not isinstance(name, str) or name not in table:
        refuse(path, f"{what} {name!r} is not one minicnn has (it has {sorted(table)})")
    return table[name]
