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
and activation layers: ``_SAME_LAYERS``; a
BatchNormalization's statistics are those of the whole batch, a Dropout mask comes
from one generator), a kernel set that says its kernels can run on two threads at
once (``SPLIT_BATCH_ON_THREADS``: numba), batches of SPLIT_MIN_BATCH or more, and
one process (under MPI every rank has its cores already).
"""
import copy
from concurrent.futures import ThreadPoolExecutor

from . import backend

# Below this a step is too short for the hand-over between threads to pay off.
SPLIT_MIN_BATCH = 64
_SAME_LAYERS = ("Conv2D", "Dense", "Flatten", "Activation", "MaxPooling2D",
                "AveragePooling2D", "MinPooling2D", "GlobalAveragePooling2D",
                "GlobalMaxPooling2D", "ZeroPadding2D", "Cropping2D", "UpSampling2D", "Reshape",
                "Rescaling", "Identity", "Softmax", "ReLU", "LeakyReLU", "ELU",
                # the merge layers: a graph's residual adds and concatenations
                "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate")
_WORKER = []  # the second thread, started on first use
_BLAS = []    # threadpoolctl's controller of the BLAS libraries, made on first use


def suits(model, x):
    """Whether ``model``'s training step on batch ``x`` runs as two halves."""
    if not (model._single_input and model._single_output) \
            or len(x) < SPLIT_MIN_BATCH or model.optimizer.communicator.size != 1:
        return False
    if not all(type(layer).__name__ in _SAME_LAYERS for layer in model._layers):
        return False
    kernels = backend.kernels_for(x, *[w for layer in model._layers for w in layer.weights])
    return kernels is not None and kernels.SPLIT_BATCH_ON_THREADS


def _on_both(run):
    """[run(0), run(1)]: the second half on the worker thread, the first here."""
    if not _WORKER:
        _WORKER.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="minicnn-half"))
    second = _WORKER[0].submit(run, 1)
    try:
        first = run(0)
    finally:
        result = second.result()
    return [first, result]


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
    copies = [[copy.copy(layer) for layer in model._layers] for _ in parts]
    with _single_threaded_blas(), kernels.serial_only():
        outs = _on_both(lambda k: model.forward_through(copies[k], x[parts[k]]))
        xp = backend.get_array_module(*outs)
        out = xp.concatenate(outs)
        per_sample, y_dev = model._loss_value(y, out, sample_weight)
        grad, from_logits = model._loss_gradient(y_dev, out, sample_weight)
        _on_both(lambda k: model.backward_through(copies[k], grad[parts[k]], from_logits,
                                                  input_gradient=False))
    first, second = (model.gradients_of(layers) for layers in copies)
    return out, per_sample, y_dev, [a + b for a, b in zip(first, second)]
