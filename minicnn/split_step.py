"""Half the batch per core: one training step of a small model on two threads.

A LeNet-5 step is some forty small operations. Spread over two cores one operation
at a time (threaded BLAS, numba's parallel loops), each operation pays for waking the
other core and mostly waits for it: two MPI processes with one thread each trained
LeNet-5 1.34x faster than one process with two threads. This module does the same
inside one process: the batch is cut in two halves, each half runs forward and
backward through its own shallow copy of the layers (same weights, own caches and
gradients) on its own thread, with single-threaded BLAS and serial kernels, and the
two gradients are added:

    out  = concatenate(forward(first half), forward(second half))   # two threads
    loss, dL/dout = the loss of the whole batch, as without halves   # one thread
    grads_1, grads_2 = backward(dL/dout halves)                      # two threads
    grads = grads_1 + grads_2

Every sum over the batch (dW, db) is thereby taken in two parts and added: the same
numbers up to float rounding. The cut (at len(x) // 2) and the order of the addition
depend only on the batch, never on how many cores there are, so a run gives the same
bits on any machine.

The halves run the model's graph (``minicnn.network``) through the copies, so a
functional model with residual adds, concatenations or shared layers splits as a
chain does. Only where it is the same computation: layers without state that a step
changes or randomness it draws (Conv2D, Dense, the poolings, the merge, reshaping
and activation layers: ``_SAME_LAYERS``), and the two that need the whole batch:

- BatchNormalization: its statistics are those of the whole batch. Each half adds
  up its own sums and the two halves exchange them (``_Exchange``: a barrier between
  the threads) -- exactly how ``synchronized=True`` adds them over the ranks of an
  MPI run; the backward pass's sums likewise. The moving statistics are updated
  once, from the first half's copy.
- Dropout: the original layer draws the step's key once, as the whole-batch step
  would, and each half computes its rows' part of that one mask (the mask is a hash
  of the key and each unit's index: ``minicnn.ops.dropout``). Same masks, split or
  not.
- The augmentation layers (RandomFlip, RandomTranslation, ...): the original layer
  draws the whole batch's parameters, each half applies its rows of them. The draws
  are made before the halves start, in the order of the layers, as the whole-batch
  step makes them; a random layer called twice in a graph keeps the step whole.

And only with a kernel set that says its kernels can run on two threads at once
(``SPLIT_BATCH_ON_THREADS``: numba), batches of SPLIT_MIN_BATCH or more, and one
process (under MPI every rank has its cores already).
"""
import copy
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import backend

# Below this a step is too short for the hand-over between threads to pay off.
SPLIT_MIN_BATCH = 64
_SAME_LAYERS = ("Conv2D", "Dense", "Flatten", "Activation", "MaxPooling2D",
                "AveragePooling2D", "MinPooling2D", "GlobalAveragePooling2D",
                "GlobalMaxPooling2D", "ZeroPadding2D", "Cropping2D", "UpSampling2D", "Reshape",
                "Rescaling", "Identity", "Softmax", "ReLU", "LeakyReLU", "ELU",
                # the merge layers: a graph's residual adds and concatenations
                "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate")
_WHOLE_BATCH_LAYERS = ("BatchNormalization", "Dropout", "RandomFlip", "RandomTranslation",
                       "RandomRotation", "RandomZoom", "RandomCrop", "RandomContrast",
                       "RandomBrightness")  # see the module docstring
_WORKER = []  # the second thread, started on first use
_BLAS = []    # threadpoolctl's controller of the BLAS libraries, made on first use


def suits(model, x):
    """Whether ``model``'s training step on batch ``x`` runs as two halves."""
    if not (model._single_input and model._single_output) \
            or len(x) < SPLIT_MIN_BATCH or model.optimizer.communicator.size != 1:
        return False
    if not all(type(layer).__name__ in _SAME_LAYERS + _WHOLE_BATCH_LAYERS
               for layer in model._layers):
        return False
    shared = model._graph.shared if getattr(model, "_graph", None) is not None else ()
    if any(id(layer) in shared for layer in model._layers if _draws(layer)):
        return False
    kernels = backend.kernels_for(x, *[w for layer in model._layers for w in layer.weights])
    return kernels is not None and kernels.SPLIT_BATCH_ON_THREADS


class _Exchange:
    """Adds a vector over the two halves, as the ranks of an MPI run add theirs: each
    half deposits its part and waits for the other; both then compute part 0 + part 1
    (the same bits on both threads).

    One barrier per exchange: consecutive exchanges use alternate slots, so a half
    that has gone on to the next exchange deposits where the other may still be
    reading only after that other has reached the next barrier, that is, has read."""

    def __init__(self):
        self.barrier = threading.Barrier(2)
        self.slots = [[None, None], [None, None]]
        self.count = [0, 0]  # exchanges made by each half

    def sum_for(self, half):
        def total(vector):
            parts = self.slots[self.count[half] % 2]
            self.count[half] += 1
            parts[half] = vector
            self.barrier.wait()
            return parts[0] + parts[1]
        return total


def _draws(layer):
    """Whether a training step of ``layer`` draws random numbers."""
    return type(layer).__name__ == "Dropout" or hasattr(layer, "rows_of")


def _halves(model, parts, exchange):
    """Two lists of shallow copies of the model's layers (same weights, own caches and
    gradients), set up for their halves as the module docstring says."""
    copies = [[], []]
    batch = parts[1].stop
    for layer in model._layers:
        pair = [copy.copy(layer) for _ in parts]
        kind = type(layer).__name__
        if kind == "Dropout" and layer.rate > 0:
            key = layer.draw_key()
            for half, part in zip(pair, parts):
                half._step_key, half._row_offset = key, part.start
        elif hasattr(layer, "rows_of"):
            # the draw needs only the batch's shape: a view of one zero, no copy
            shape_only = np.broadcast_to(np.zeros((), np.float32), (batch,) + layer.input_shape)
            drawn = layer.draw(shape_only)
            for half, part in zip(pair, parts):
                half._step_draw = layer.rows_of(drawn, part, batch)
        elif kind == "BatchNormalization":
            for k, half in enumerate(pair):
                half._sum_over_halves = exchange.sum_for(k)
        for k in range(2):
            copies[k].append(pair[k])
    return copies


def _join(model, copies):
    """What a step's forward changed in the copies, back into the model's layers: the
    moving statistics (replaced, not changed in place, in the first half's copy)."""
    for layer, half in zip(model._layers, copies[0]):
        if type(layer).__name__ == "BatchNormalization":
            layer._weights = half._weights


def _on_both(run, exchange=None):
    """[run(0), run(1)]: the second half on the worker thread, the first here. When
    one half fails, the other is released from any exchange it waits in, and the
    first failure that is not that release is raised."""
    if not _WORKER:
        _WORKER.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="minicnn-half"))

    def guarded(k):
        try:
            return run(k)
        except BaseException:
            if exchange is not None:
                exchange.barrier.abort()
            raise
    second = _WORKER[0].submit(guarded, 1)
    results, errors = [None, None], [None, None]
    try:
        results[0] = guarded(0)
    except BaseException as exc:
        errors[0] = exc
    try:
        results[1] = second.result()
    except BaseException as exc:
        errors[1] = exc
    failures = [e for e in errors if e is not None]
    if failures:
        raise next((e for e in failures if not isinstance(e, threading.BrokenBarrierError)),
                   failures[0])
    return results


def _single_threaded_blas():
    """A context in which BLAS products use one thread each (restored afterwards)."""
    if not _BLAS:
        from threadpoolctl import ThreadpoolController
        _BLAS.append(ThreadpoolController().select(user_api="blas"))
    return _BLAS[0].limit(limits=1)


def forward_backward(model, x, y, sample_weight=None):
    """One step's forward, loss and backward on two halves of ``(x, y)``.

    Returns ``(out, per_sample, y_dev, grads)``: the model's output for the whole
    batch, the per-sample losses and targets (``model._loss_value``), and the
    trainable weights' gradients in weight order. The weights are not changed."""
    kernels = backend.kernels_for(x)
    cut = len(x) // 2
    parts = (slice(0, cut), slice(cut, len(x)))
    exchange = _Exchange()
    copies = _halves(model, parts, exchange)
    with _single_threaded_blas(), kernels.serial_only():
        outs = _on_both(lambda k: model.forward_through(copies[k], x[parts[k]]), exchange)
        _join(model, copies)
        xp = backend.get_array_module(*outs)
        out = xp.concatenate(outs)
        per_sample, y_dev = model._loss_value(y, out, sample_weight)
        grad, from_logits = model._loss_gradient(y_dev, out, sample_weight)
        _on_both(lambda k: model.backward_through(copies[k], grad[parts[k]], from_logits,
                                                  input_gradient=False), exchange)
    first, second = (model.gradients_of(layers) for layers in copies)
    return out, per_sample, y_dev, [a + b for a, b in zip(first, second)]
