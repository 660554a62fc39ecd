"""``model.summary()``: Keras 3's table, drawn with the same box characters.

    Model: "sequential"
    ┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
    ┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
    ┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
    │ conv2d (Conv2D)                 │ (None, 26, 26, 32)     │           320 │
    └─────────────────────────────────┴────────────────────────┴───────────────┘
     Total params: 320 (1.25 KB)

The table is as wide as the terminal allows (at most 88 characters, 76 on an
80-column terminal); a cell too long for its column wraps at spaces.
"""
import shutil
import textwrap

from .layers.base import _format_shape


def readable_size(num_bytes):
    """Bytes in B/KB/MB/... with 1024 steps and two decimals, as Keras prints them."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if num_bytes / 1024 < 1 or unit == "TB":
            return f"{num_bytes:.2f} {unit}"
        num_bytes /= 1024
    return f"{num_bytes:.2f} TB"


def _column_widths(line_length):
    inner = line_length - 4  # four vertical bars
    first = round(inner * 33 / 72)
    second = round(inner * 24 / 72)
    return first, second, inner - first - second


def _rule(left, fill, mid, right, widths):
    return left + mid.join(fill * w for w in widths) + right


def _row(cells, widths, bar, aligns):
    wrapped = [textwrap.wrap(text, w - 2) or [""] for text, w in zip(cells, widths)]
    lines = []
    for i in range(max(len(w) for w in wrapped)):
        parts = []
        for lines_of_cell, w, align in zip(wrapped, widths, aligns):
            text = lines_of_cell[i] if i < len(lines_of_cell) else ""
            parts.append(" " + (text.rjust(w - 2) if align == ">" else text.ljust(w - 2)) + " ")
        lines.append(bar + bar.join(parts) + bar)
    return lines


def _functional_widths(line_length):
    inner = line_length - 5  # five vertical bars
    widths = [round(inner * 0.3), round(inner * 0.24), max(round(inner * 0.13), 10)]
    return (*widths, inner - sum(widths))


def _rows(model):
    """``(name (type), output shape, params, connected to)`` per row: for a Sequential
    model one per layer; for a functional one also its inputs, and what each layer
    was called on (Keras's ``name[0][0]``)."""
    graph = model._graph
    sequential = type(model).__name__ == "Sequential"
    rows = []
    if not sequential:
        for tensor in graph.inputs:
            rows.append((f"{tensor.name} (InputLayer)", _format_shape(tensor.shape), 0, "-"))
    call = graph.call  # Keras's name[k][0]: the k-th call of a (shared) layer made it
    for node in graph.nodes:
        layer = node.layer
        sources = ", ".join(f"{t.node.layer.name}[{call[id(t.node)]}][0]" if t.node else
                            f"{t.name}[0][0]" for t in node.inputs)
        kind = "Functional" if type(layer).__name__ == "Model" else type(layer).__name__
        rows.append((f"{layer.name} ({kind})",
                     _format_shape(node.output.shape), layer.count_params(), sources))
    return rows, sequential


def format_summary(model, line_length=None):
    rows, sequential = _rows(model)
    if line_length is None:
        line_length = min(shutil.get_terminal_size((80, 24)).columns - 4,
                          88 if sequential else 110)
    if sequential:
        widths = _column_widths(max(line_length, 40))
        aligns, head = ("<", "<", ">"), ("Layer (type)", "Output Shape", "Param #")
    else:
        widths = _functional_widths(max(line_length, 60))
        aligns = ("<", "<", ">", "<")
        head = ("Layer (type)", "Output Shape", "Param #", "Connected to")
    lines = [f'Model: "{model.name}"',
             _rule("┏", "━", "┳", "┓", widths),
             *_row(head, widths, "┃", aligns),
             _rule("┡", "━", "╇", "┩", widths)]
    for i, (name, shape, params, sources) in enumerate(rows):
        if i:
            lines.append(_rule("├", "─", "┼", "┤", widths))
        cells = (name, shape, f"{params:,}") + (() if sequential else (sources,))
        lines += _row(cells, widths, "│", aligns)
    lines.append(_rule("└", "─", "┴", "┘", widths))
    trainable = sum(int(w.size) for w in model.trainable_weights)
    non_trainable = sum(int(w.size) for w in model.non_trainable_weights)
    itemsize = model.weights[0].dtype.itemsize if model.weights else 4
    optimizer_params = model.optimizer.count_slot_params() if model.optimizer else 0
    total = trainable + non_trainable + optimizer_params

    def count(n):
        return f"{n:,} ({readable_size(n * itemsize)})"

    lines.append(f" Total params: {count(total)}")
    lines.append(f" Trainable params: {count(trainable)}")
    lines.append(f" Non-trainable params: {count(non_trainable)}")
    if optimizer_params:
        lines.append(f" Optimizer params: {count(optimizer_params)}")
    return "\n".join(lines)
