"""``import minicnn as keras``: what a name Keras has and minicnn lacks raises."""


def not_implemented(module, name, available):
    """The AttributeError for ``module.name`` that minicnn does not have: it says so,
    and lists what the module has, instead of Python's bare missing-attribute error."""
    if name.startswith("__"):  # Python's own probes (__path__, __wrapped__, ...)
        return AttributeError(f"module {module!r} has no attribute {name!r}")
    have = ", ".join(sorted(n for n in available if not n.startswith("_")))
    return AttributeError(f"{module}.{name} is not implemented in minicnn (it may exist in "
                          f"Keras). {module} has: {have}")
