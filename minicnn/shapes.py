"""Argument normalisation and output-size arithmetic, shared by ops and layers.

Padding is resolved here once, into ``(before, after)`` pairs per spatial axis,
so every op and the loop reference agree on where the odd pixel goes.
"""
import numbers

CONV_PADDINGS = ("valid", "same", "full")
POOL_PADDINGS = ("valid", "same")
DATA_FORMATS = ("channels_last", "channels_first")


def _owner_prefix(owner):
    return f"{owner}: " if owner else ""


def normalize_tuple(value, n, arg_name, owner=None):
    """An int or a sequence of ``n`` ints -> a tuple of ``n`` positive ints.

    >>> normalize_tuple(3, 2, "kernel_size")
    (3, 3)
    """
    prefix = _owner_prefix(owner)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        items = (int(value),) * n
    else:
        try:
            items = tuple(value)
        except TypeError:
            raise TypeError(f"{prefix}`{arg_name}` must be an int or a tuple of {n} ints. "
                            f"Received: {arg_name}={value!r}") from None
        if len(items) != n:
            raise ValueError(f"{prefix}`{arg_name}` must be an int or a tuple of {n} ints. "
                             f"Received: {arg_name}={value!r}")
        for item in items:
            if not isinstance(item, numbers.Integral) or isinstance(item, bool):
                raise TypeError(f"{prefix}`{arg_name}` must contain only ints. "
                                f"Received: {arg_name}={value!r}")
        items = tuple(int(i) for i in items)
    if any(i <= 0 for i in items):
        raise ValueError(f"{prefix}`{arg_name}` must be positive. Received: {arg_name}={value!r}")
    return items


def normalize_choice(value, allowed, arg_name, owner=None):
    """A case-insensitive name checked against ``allowed``, returned lower-case."""
    if not isinstance(value, str) or value.lower() not in allowed:
        raise ValueError(f"{_owner_prefix(owner)}unknown {arg_name}; expected one of "
                         f"{list(allowed)}. Received: {arg_name}={value!r}")
    return value.lower()


def normalize_padding(value, allowed=CONV_PADDINGS, owner=None):
    return normalize_choice(value, allowed, "padding", owner)


def normalize_data_format(value, owner=None):
    if value is None:
        return "channels_last"
    return normalize_choice(value, DATA_FORMATS, "data_format", owner)


def pad_amounts(size, k, s, padding):
    """Zero-padding ``(before, after)`` on one spatial axis.

    ``same`` follows TensorFlow/Keras: the total is just enough for
    ``ceil(size / s)`` windows, and an odd pixel goes after (bottom/right).
    ``full`` pads ``k - 1`` on both sides, so every overlap is visited.
    """
    if padding == "valid":
        return 0, 0
    if padding == "same":
        out = -(-size // s)  # ceil(size / s) in integers
        total = max((out - 1) * s + k - size, 0)
        return total // 2, total - total // 2
    if padding == "full":
        return k - 1, k - 1
    raise ValueError(f"unknown padding; expected one of {list(CONV_PADDINGS)}. "
                     f"Received: padding={padding!r}")


def output_length(size, k, s, padding):
    """Output length on one axis: the windows of size ``k`` and stride ``s`` that fit
    into the padded input. May be <= 0 when nothing fits (callers report that)."""
    before, after = pad_amounts(size, k, s, padding)
    padded = size + before + after
    if padded < k:
        return 0
    return (padded - k) // s + 1


def resolve_padding(in_hw, kernel_size, strides, padding):
    """``((top, bottom), (left, right))`` and ``(out_h, out_w)`` for a 2-D window op."""
    pads = tuple(pad_amounts(n, k, s, padding) for n, k, s in zip(in_hw, kernel_size, strides))
    out = tuple(output_length(n, k, s, padding) for n, k, s in zip(in_hw, kernel_size, strides))
    return pads, out

