"""The training loop: ``fit``, ``evaluate`` and ``predict`` over mini-batches.

``Sequential`` (``minicnn.models``) holds a model's structure and one step of it
(forward, loss, backward, update: ``_train_step``); this module runs those steps over
a data set: the epochs and their running logs, the progress bar, callbacks,
validation, and Ctrl-C between steps. The data arrive as batches from an
``EpochIterator`` (``minicnn.data_adapters``), the same loop for arrays (sliced and
shuffled there, checked whole before the first step: ``minicnn.loop_data``) and for
streamed data (generators, lists of batches, PyDatasets, checked batch by batch).
The model's methods of the same names call these functions.
"""
import numbers
import signal
import sys
import threading
import time
import warnings
from contextlib import closing

import numpy as np

from . import callbacks as callbacks_module, data_adapters, loop_data, model_data
from .backend import to_host


def fit(model, x=None, y=None, batch_size=None, epochs=1, verbose="auto",
        validation_data=None, validation_split=0.0, shuffle=True, callbacks=None,
        initial_epoch=0, seed=None, check_numerics=True, terminate_on_nan=True,
        sample_weight=None, class_weight=None, steps_per_epoch=None, validation_steps=None):
    """Train for ``epochs`` epochs of mini-batches; returns a ``History``.

    ``x`` and ``y`` are arrays (``batch_size`` of them per step, 32 by default), or
    ``x`` alone brings its batches: an iterable of ``(x, y)`` or ``(x, y,
    sample_weight)`` (a generator, a list of tuples) or a ``PyDataset``, read one batch
    at a time so the data need not fit in memory (``minicnn.data_adapters``: Keras's
    rules on ``steps_per_epoch`` and ``validation_steps``). ``validation_data`` is
    ``(x_val, y_val[, sample_weight_val])`` or streamed the same way.

    ``seed`` seeds the model's shuffling generator (default: drawn once from the
    generator of ``minicnn.utils.set_random_seed``); the generator then goes on
    from epoch to epoch and from one ``fit`` to the next, and ``save`` keeps its
    state, so training resumed from a file shuffles as if it had never stopped.
    ``check_numerics``: refuse data holding NaN or Inf (one pass over the arrays
    before training; each streamed batch as it comes). ``terminate_on_nan``: stop when
    a batch's loss is NaN or Inf, keeping the weights of the last step with a finite
    loss (Keras's TerminateOnNaN, on by default here). Ctrl-C stops cleanly after the
    step in progress, keeping the weights of the last completed step.
    """
    model._require_compiled("fit()")
    epochs = _check_count(model, "fit()", "epochs", epochs)
    initial_epoch = _check_count(model, "fit()", "initial_epoch", initial_epoch)
    given_verbose = verbose  # the callbacks' params get it as given ("auto"), as Keras's
    verbose = _check_verbose(model, "fit()", verbose)
    data, val_data = loop_data.fit_data(
        model, x, y, batch_size, steps_per_epoch, shuffle, None, sample_weight,
        class_weight, validation_data, validation_split, validation_steps, check_numerics,
        epochs - initial_epoch)
    # The processes training together (one, unless the optimizer is distributed): only
    # rank 0 prints and runs the callbacks; the epoch's figures are the ranks' mean.
    ranks = model.optimizer.communicator
    if ranks.size > 1 and data.source.streamed:
        raise ValueError(f"{type(model).__name__} '{model.name}': distributed fit() takes "
                         f"arrays (each rank's shard), not streamed batches")
    say = print if ranks.rank == 0 else _silent
    verbose = verbose if ranks.rank == 0 else 0
    data.source.rng = model._shuffling(seed)

    steps = data.num_batches  # None: a generator's length, unknown until it ends
    # Keras's list: the callbacks as given, then the History (one given is used instead)
    if ranks.rank == 0 and isinstance(callbacks, callbacks_module.CallbackList):
        cbs = callbacks  # used as it is, as Keras does
        if cbs._history is None:
            cbs._history = callbacks_module.History()
            cbs.callbacks.append(cbs._history)
            cbs._history.set_model(model)
    else:
        cbs = callbacks_module.CallbackList(callbacks if ranks.rank == 0 else None,
                                            add_history=True, model=model,
                                            verbose=given_verbose, epochs=epochs, steps=steps)
    history = cbs._history
    model.stop_training = False
    model.history = history
    model._fit_data = data  # BackupAndRestore's view of the pass (until fit closes it)
    nonfinite = None
    training_logs = {}
    # the passes in progress end with fit, however it ends (a PyDataset's threads too)
    with _DeferredInterrupt() as interrupt, closing(data), closing(val_data or data):
        cbs.on_train_begin()
        # where a BackupAndRestore's backup resumes (Keras's model._initial_epoch)
        initial_epoch = getattr(model, "_initial_epoch", None) or initial_epoch
        model._initial_epoch = None
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch)
            _share_learning_rate(model, ranks)  # a LearningRateScheduler's, from rank 0
            progress = _Progress(verbose, epoch, epochs, data.num_batches)
            totals, seen, logs, step = {}, 0, {}, None
            with closing(data.epoch()) as batches:
                for step, xb, yb, wb in batches:
                    size = model_data.rows(xb)
                    cbs.on_train_batch_begin(step)
                    batch_logs = model._train_step(xb, yb, finite_only=terminate_on_nan,
                                                   sample_weight=wb)
                    if batch_logs.pop("applied", True) is False:
                        nonfinite = (epoch, step)
                        # the callbacks see the batch as Keras's do (TerminateOnNaN too)
                        cbs.on_train_batch_end(step, {
                            k: (totals.get(k, 0.0) + v * size) / (seen + size)
                            for k, v in batch_logs.items()})
                        break
                    seen += size
                    for key, value in batch_logs.items():  # Keras's running, weighted mean
                        totals[key] = totals.get(key, 0.0) + value * size
                    logs = {k: totals[k] / seen for k in totals}
                    progress.update(step + 1, logs)
                    cbs.on_train_batch_end(step, logs)
                    # a Ctrl-C on any rank stops them all; so does rank 0's callbacks'
                    # stop (Keras checks stop_training after every batch): one call
                    if ranks.size > 1:
                        flags = ranks.sum(np.array([interrupt.requested,
                                                    model.stop_training], dtype=np.int64))
                        interrupt.requested = bool(flags[0])
                        model.stop_training = bool(flags[1])
                    if interrupt.requested:
                        break
                    if model.stop_training:
                        break  # the epoch still ends: validation and on_epoch_end, as Keras
            where = f"epoch {epoch + 1}, step {(step or 0) + 1}/{data.num_batches or '?'}"
            if nonfinite is not None:
                progress.close(logs if seen else {}, interrupted=True)
                say(f"Training stopped: the loss became {batch_logs['loss']} in {where}; "
                    f"the weights are those of the last step with a finite loss "
                    f"(fit(terminate_on_nan=False) trains on).")
                model.stop_training = True
                break
            if interrupt.requested:
                progress.close(logs, interrupted=True)
                say(f"Training interrupted in {where}; the weights are those after that "
                    "step.")
                break
            if step is None and not data.resumed:  # no batch at all: the data had ended
                progress.close({}, interrupted=True)
                if epoch == initial_epoch:
                    raise ValueError(f"{type(model).__name__} '{model.name}': fit() "
                                     f"received an empty dataset (x gave no batch)")
                if not data.ran_out:
                    warnings.warn(data_adapters.RAN_OUT, stacklevel=3)
                break
            if val_data is not None:  # the test hooks run, on fit's callbacks
                val = evaluate(model, val_data, verbose=0, return_dict=True,
                               callbacks=cbs)
                logs.update({f"val_{k}": v for k, v in val.items()})
            logs = ranks.mean_logs(logs)
            logs = dict(sorted(logs.items(), key=lambda kv: (kv[0].startswith("val_"),
                                                              kv[0])))
            progress.close(logs)
            cbs.on_epoch_end(epoch, logs)  # a copy: what callbacks add stays theirs
            training_logs = logs
            model.stop_training = ranks.broadcast(model.stop_training)  # rank 0's callbacks
            _share_learning_rate(model, ranks)  # a ReduceLROnPlateau's, from rank 0
            if data.exhausted and epoch + 1 < epochs and not model.stop_training:
                if not data.ran_out:  # a generator has ended: Keras's warning, then stop
                    warnings.warn(data_adapters.RAN_OUT, stacklevel=3)
                model.stop_training = True
            if model.stop_training:
                break
        cbs.on_train_end(training_logs)
    return history


def _share_learning_rate(model, ranks):
    """Every rank takes rank 0's learning rate, which rank 0's callbacks may have set
    (a number only: a schedule sets it at every step, the same on every rank)."""
    optimizer = model.optimizer
    if ranks.size > 1 and isinstance(getattr(optimizer, "learning_rate", None), numbers.Real):
        optimizer.learning_rate = ranks.broadcast(optimizer.learning_rate)


# ---------------------------------------------------------------------------------
# the arguments, checked before the first step
# ---------------------------------------------------------------------------------
def _check_count(model, what, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{type(model).__name__} '{model.name}': {what} expects {name} to be an integer "
                         f">= 0. Received: {name}={value!r}")
    return int(value)


def _check_verbose(model, what, verbose):
    if verbose == "auto" and isinstance(verbose, str):
        return 1
    if isinstance(verbose, bool) or not isinstance(verbose, numbers.Integral) \
            or verbose not in (0, 1, 2):
        raise ValueError(f"{type(model).__name__} '{model.name}': {what} expects verbose to be 'auto', 0, "
                         f"1 or 2. Received: verbose={verbose!r}")
    return int(verbose)


def _silent(*args, **kwargs):
    """What ranks other than 0 print: nothing."""


def _callback_list(model, callbacks, verbose, steps):
    """evaluate's and predict's callbacks: a CallbackList as it is (fit's, during
    validation), else one made as Keras makes it (epochs=1)."""
    if isinstance(callbacks, callbacks_module.CallbackList):
        return callbacks
    return callbacks_module.CallbackList(callbacks, model=model, verbose=verbose, epochs=1,
                                         steps=steps)


def predict(model, x, batch_size=None, verbose=0, callbacks=None, steps=None):
    """Outputs for ``x`` in inference mode, as one host (NumPy) array (a list of them,
    one per output, for a model with several outputs). ``x``: arrays, or batches of x
    (``x`` or ``(x,)``; a y in them is not used) from an iterable or a PyDataset;
    ``steps``: at most that many batches. ``callbacks``: their predict hooks run
    (``on_predict_batch_end`` gets ``{"outputs": the batch's outputs}``)."""
    _check_verbose(model, "predict()", verbose)
    data = loop_data.predict_data(model, x, batch_size, steps)
    cbs = _callback_list(model, callbacks, verbose, data.num_batches)
    model.stop_predicting = False
    cbs.on_predict_begin()
    outs = []
    with closing(data), closing(data.epoch()) as batches:
        for step, xb, _, _ in batches:
            cbs.on_predict_batch_begin(step)
            out = model.forward(xb, training=False)
            outs.append([to_host(o) for o in out] if isinstance(out, list) else to_host(out))
            model._release_caches()
            cbs.on_predict_batch_end(step, {"outputs": outs[-1]})
            if model.stop_predicting:
                break
    cbs.on_predict_end()
    if not outs:
        raise ValueError(f"{type(model).__name__} '{model.name}': predict() received no "
                         f"batch (empty data)")
    if model._single_output:
        return np.concatenate(outs, axis=0)
    return [np.concatenate(parts, axis=0) for parts in zip(*outs)]


def evaluate(model, x=None, y=None, batch_size=None, verbose=0, return_dict=False,
             check_numerics=True, callbacks=None, sample_weight=None, steps=None):
    """Loss (and metrics) over ``(x, y)`` in inference mode, averaged over samples.
    ``x``: arrays, or batches from an iterable or a PyDataset (as ``fit`` takes them;
    ``steps``: at most that many batches). ``check_numerics``: refuse data holding NaN
    or Inf (see ``fit``). ``callbacks``: their test hooks run (``on_test_batch_end``
    gets the running means). ``sample_weight``: the loss is ``sum(w * loss) / N``
    (Keras's; metrics unweighted). fit's validation passes its ``EpochIterator``."""
    model._require_compiled("evaluate()")
    given_verbose = verbose
    verbose = _check_verbose(model, "evaluate()", verbose)
    data = x if isinstance(x, data_adapters.EpochIterator) else loop_data.evaluate_data(
        model, x, y, batch_size, steps, sample_weight, check_numerics)
    cbs = _callback_list(model, callbacks, given_verbose, data.num_batches)
    model.stop_evaluating = False
    cbs.on_test_begin()
    totals, seen = {}, 0
    with closing(data.epoch()) as batches:
        for step, xb, yb, wb in batches:
            cbs.on_test_batch_begin(step)
            out = model.forward(xb, training=False)
            model._release_caches()
            per_sample, y_dev = model._loss_value(yb, out, wb)
            logs = model._batch_logs(y_dev, out, per_sample)
            size = model_data.rows(xb)
            seen += size
            for key, value in logs.items():
                totals[key] = totals.get(key, 0.0) + value * size
            if cbs.callbacks:  # Keras's running means so far
                cbs.on_test_batch_end(step, {k: v / seen for k, v in totals.items()})
            if model.stop_evaluating:
                break
    if data is not x:  # fit's validation pass may go on in the next epoch
        data.close()
    if not seen:
        raise ValueError(f"{type(model).__name__} '{model.name}': {data.what} received no "
                         f"batch (empty data, or a generator that has ended)")
    logs = {k: v / seen for k, v in totals.items()}  # every sample unless stopped
    cbs.on_test_end(logs)
    if verbose:
        print(" - ".join(f"{k}: {v:.4f}" for k, v in sorted(logs.items())))
    return logs if return_dict else model._as_result(logs)


class _DeferredInterrupt:
    """While active, Ctrl-C sets ``requested`` instead of raising mid-step, so
    training stops between steps with consistent weights. A second Ctrl-C raises."""

    def __enter__(self):
        self.requested = False
        self._old = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


def _interactive(stream):
    """A terminal, or a Jupyter/IPython kernel's output (where tqdm draws a widget)."""
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    return type(stream).__module__.split(".")[0] == "ipykernel"


class _Progress:
    """Keras-style epoch progress: a live bar (verbose=1, via tqdm, on a terminal or in
    a notebook) or one line per epoch (verbose=2, and verbose=1 on any other stream).
    ``steps`` None: the epoch's length is unknown (a generator's first pass)."""

    def __init__(self, verbose, epoch, epochs, steps):
        if verbose == 1 and not _interactive(sys.stdout):
            verbose = 2  # a CI log or a file: one line per epoch, not redrawn bars
        self.verbose, self.steps = verbose, steps
        self.start = time.perf_counter()
        self.bar, self.done = None, 0
        if verbose and epochs > 1:  # Keras prints no header for a single epoch
            print(f"Epoch {epoch + 1}/{epochs}")
        if verbose == 1:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=steps, ascii=" ━", dynamic_ncols=True, leave=True,
                            file=sys.stdout,
                            bar_format="{n_fmt}/{total_fmt} {bar:20} {elapsed}<{remaining}"
                                       " {rate_inv_fmt}{postfix}")

    @staticmethod
    def _format(logs):
        return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())

    def update(self, step, logs):
        self.done = step
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix_str("- " + self._format(logs), refresh=False)

    def close(self, logs, interrupted=False):
        if self.bar is not None:
            self.bar.set_postfix_str("- " + self._format(logs), refresh=False)  # close() draws it
            self.bar.close()
        elif self.verbose == 2 and not interrupted:
            elapsed, done = time.perf_counter() - self.start, self.done
            print(f"{done}/{self.steps or done} - {elapsed:.0f}s - "
                  f"{1000 * elapsed / max(done, 1):.0f}ms/step - {self._format(logs)}")
