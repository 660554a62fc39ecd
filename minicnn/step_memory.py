"""How much memory a step will take, estimated before the first one runs.

A step that cannot get memory should be an error the caller can catch, never the end
of the process. NumPy's allocations raise ``MemoryError`` (each layer re-raises it
naming itself, the pass and the batch: ``Layer._on_device``), but OpenBLAS, when it
cannot map its work buffers, prints "Memory allocation still failed after 10
retries, giving up" and exits the process. So ``check`` estimates a step's peak from
the layers' shapes and refuses up front, naming the largest layer, when it exceeds
what this process may use (``file_checks.available_bytes``: physical memory, or what
an address-space limit leaves).

The estimate for a training step: every layer's input and output (what forward
keeps for backward), twice the largest layer's (its gradients in backward), the
im2col matrices, and the weights four times (weights, gradients, two optimizer
slots); inference needs the largest layer's input and output only.
"""
import math

import numpy as np

from . import backend
from .file_checks import available_bytes

_OVERHEAD = 256 * 2**20  # buffers of BLAS and numba threads, the interpreter's own


def estimate(model, batch, training=True):
    """``(bytes, largest_layer, its_bytes)`` for a step of ``batch`` samples."""
    itemsize = np.dtype(backend.floatx()).itemsize
    per_layer, weights = [], 0
    for node in model._graph.nodes:
        values = sum(math.prod(t.shape[1:]) for t in node.inputs + [node.output])
        per_layer.append((node.layer, values * batch * itemsize))
        weights += sum(int(np.prod(w.shape)) for w in node.layer.weights) * itemsize
    largest, largest_bytes = max(per_layer, key=lambda item: item[1])
    if training:
        total = sum(b for _, b in per_layer) + 2 * largest_bytes + 4 * weights
    else:
        total = largest_bytes + weights
    total += 2 * backend.im2col_budget() + _OVERHEAD
    return total, largest, largest_bytes


def check(model, batch, what, training=True):
    """Refuse a step that would not fit in memory, before it runs (CPU backends; on a
    GPU an out-of-memory error is raised by the layer that meets it)."""
    if not model.built or not model.layers or backend.get_backend() == "cupy" or \
            model._graph is None:
        return
    need, largest, largest_bytes = estimate(model, batch, training)
    have = available_bytes()
    if have is not None and need > have:
        raise MemoryError(
            f"{type(model).__name__} '{model.name}': {what} on batches of {batch} needs about "
            f"{need / 2**30:.1f} GiB (the largest layer, {largest._who()}, "
            f"{largest_bytes / 2**30:.1f} GiB of inputs and outputs), more than the "
            f"{have / 2**30:.1f} GiB this process may use. Use a smaller batch_size")
