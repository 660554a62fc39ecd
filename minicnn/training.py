"""The training loop: ``fit``, ``evaluate`` and ``predict`` over mini-batches.

``Sequential`` (``minicnn.models``) holds a model's structure and one step of it
(forward, loss, backward, update: ``_train_step``); this module runs those steps over
a data set: batching and shuffling, the running logs and the progress bar, callbacks,
validation, the checks on the data before training, and Ctrl-C between steps. The
model's methods of the same names call these functions.
"""
import math
import numbers
import signal
import sys
import threading
import time

import numpy as np

from . import callbacks as callbacks_module, model_data, step_memory
from .backend import to_host


def fit(model, x, y, batch_size=32, epochs=1, verbose="auto", validation_data=None,
        validation_split=0.0, shuffle=True, callbacks=None, initial_epoch=0, seed=None,
        check_numerics=True, terminate_on_nan=True, sample_weight=None, class_weight=None):
    """Train for ``epochs`` epochs of mini-batches; returns a ``History``.

    ``seed`` seeds the model's shuffling generator (default: drawn once from the
    generator of ``minicnn.utils.set_random_seed``); the generator then goes on
    from epoch to epoch and from one ``fit`` to the next, and ``save`` keeps its
    state, so training resumed from a file shuffles as if it had never stopped.
    ``check_numerics``: refuse data holding NaN or Inf (one pass over x, y and the
    validation data before training). ``terminate_on_nan``: stop when a batch's
    loss is NaN or Inf, keeping the weights of the last step with a finite loss
    (Keras's TerminateOnNaN, on by default here). Ctrl-C stops cleanly after the
    step in progress, keeping the weights of the last completed step.
    """
    model._require_compiled("fit()")
    who = f"{type(model).__name__} '{model.name}'"
    batch_size = _check_batch_size(model, "fit()", batch_size)
    epochs = _check_count(model, "fit()", "epochs", epochs)
    initial_epoch = _check_count(model, "fit()", "initial_epoch", initial_epoch)
    given_verbose = verbose  # the callbacks' params get it as given ("auto"), as Keras's
    verbose = _check_verbose(model, "fit()", verbose)
    if isinstance(validation_split, bool) or not isinstance(validation_split, numbers.Real) \
            or not 0 <= validation_split < 1:
        raise ValueError(f"{who}: fit() expects validation_split to be a "
                         f"number in [0, 1). Received: validation_split={validation_split!r}")
    if validation_data is not None and (not isinstance(validation_data, (tuple, list))
                                        or len(validation_data) not in (2, 3)):
        raise ValueError(f"{who}: fit() expects validation_data=(x_val, y_val) or (x_val, "
                         f"y_val, sample_weight_val). Received: "
                         f"{_describe(validation_data)}")
    x, y = model_data.inputs(model, x, "fit()"), model_data.targets(model, y, "fit()")
    model._check_xy(x, y, "fit()")
    count = model_data.rows(x)
    weights = model_data.sample_weights(model, y, sample_weight, class_weight, "fit()")
    val_weights = None
    if validation_split and validation_data is None:
        split = int(count * (1 - validation_split))  # Keras: the last samples, unshuffled
        if split in (0, count):
            raise ValueError(f"{who}: {count} samples cannot be split "
                             f"into training and validation sets with validation_split="
                             f"{validation_split}; use more data or a different split")
        validation_data = (model_data.take(x, slice(split, None)),
                           model_data.take(y, slice(split, None)))
        x, y = model_data.take(x, slice(0, split)), model_data.take(y, slice(0, split))
        if weights is not None:  # Keras splits the sample weights alike
            weights, val_weights = weights[:split], weights[split:]
        count = split
    elif validation_data is not None:
        given = validation_data
        validation_data = (model_data.inputs(model, given[0], "fit() (validation x)"),
                           model_data.targets(model, given[1], "fit() (validation y)"))
        if len(given) == 3 and given[2] is not None:
            val_weights = model_data.sample_weights(model, validation_data[1], given[2], None,
                                                    "fit() (validation_data)")
    if validation_data is not None:
        model._check_xy(*validation_data, "fit() (validation_data)")
    if check_numerics:
        model._check_finite("fit()", _named(model, x, y) + (
            _named(model, *validation_data, "validation ")
            if validation_data is not None else []))
    # every target, before the first step: a bad label anywhere changes no weight
    _check_targets(model, y, "fit() (y)")
    if validation_data is not None:
        _check_targets(model, validation_data[1], "fit() (validation y)")
    step_memory.check(model, min(batch_size, count), "fit()", training=True)
    # The processes training together (one, unless the optimizer is distributed): only
    # rank 0 prints and runs the callbacks; the epoch's figures are the ranks' mean.
    ranks = model.optimizer.communicator
    say = print if ranks.rank == 0 else _silent
    verbose = verbose if ranks.rank == 0 else 0
    rng = model._shuffling(seed)

    steps = math.ceil(count / batch_size)
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
    nonfinite = None
    training_logs = {}
    with _DeferredInterrupt() as interrupt:
        cbs.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch)
            _share_learning_rate(model, ranks)  # a LearningRateScheduler's, from rank 0
            order = rng.permutation(count) if shuffle else np.arange(count)
            progress = _Progress(verbose, epoch, epochs, steps)
            totals, seen, logs = {}, 0, {}
            for step in range(steps):
                idx = order[step * batch_size:(step + 1) * batch_size]
                cbs.on_train_batch_begin(step)
                batch_logs = model._train_step(
                    model_data.take(x, idx), model_data.take(y, idx),
                    finite_only=terminate_on_nan,
                    sample_weight=None if weights is None else weights[idx])
                if batch_logs.pop("applied", True) is False:
                    nonfinite = (epoch, step)
                    # the callbacks see the batch as Keras's do (TerminateOnNaN too)
                    cbs.on_train_batch_end(step, {
                        k: (totals.get(k, 0.0) + v * len(idx)) / (seen + len(idx))
                        for k, v in batch_logs.items()})
                    break
                seen += len(idx)
                for key, value in batch_logs.items():  # Keras's running, sample-weighted mean
                    totals[key] = totals.get(key, 0.0) + value * len(idx)
                logs = {k: totals[k] / seen for k in totals}
                progress.update(step + 1, logs)
                cbs.on_train_batch_end(step, logs)
                # a Ctrl-C on any rank stops them all; so does rank 0's callbacks' stop
                # (Keras checks stop_training after every batch): one collective call
                if ranks.size > 1:
                    flags = ranks.sum(np.array([interrupt.requested, model.stop_training],
                                               dtype=np.int64))
                    interrupt.requested = bool(flags[0])
                    model.stop_training = bool(flags[1])
                if interrupt.requested:
                    break
                if model.stop_training:
                    break  # the epoch still ends: validation and on_epoch_end, as in Keras
            if nonfinite is not None:
                progress.close(logs if seen else {}, interrupted=True)
                say(f"Training stopped: the loss became {batch_logs['loss']} in epoch "
                      f"{epoch + 1}, step {step + 1}/{steps}; the weights are those of the "
                      f"last step with a finite loss (fit(terminate_on_nan=False) trains "
                      f"on).")
                model.stop_training = True
                break
            if interrupt.requested:
                progress.close(logs, interrupted=True)
                say(f"Training interrupted in epoch {epoch + 1}, step {step + 1}/{steps}; "
                      "the weights are those after that step.")
                break
            if validation_data is not None:  # the test hooks run, on fit's callbacks
                val = evaluate(model, *validation_data, batch_size=batch_size, verbose=0,
                               return_dict=True, check_numerics=False, callbacks=cbs,
                               sample_weight=val_weights)
                logs.update({f"val_{k}": v for k, v in val.items()})
            logs = ranks.mean_logs(logs)
            logs = dict(sorted(logs.items(), key=lambda kv: (kv[0].startswith("val_"),
                                                              kv[0])))
            progress.close(logs)
            cbs.on_epoch_end(epoch, logs)  # a copy: what callbacks add stays theirs
            training_logs = logs
            model.stop_training = ranks.broadcast(model.stop_training)  # rank 0's callbacks
            _share_learning_rate(model, ranks)  # a ReduceLROnPlateau's, from rank 0
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
def _describe(value):
    return f"{type(value).__name__} {value!r}"[:200]


def _check_batch_size(model, what, batch_size):
    """Keras's default for None (32); else a positive whole number."""
    if batch_size is None:
        return 32
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
            or batch_size < 1:
        raise ValueError(f"{type(model).__name__} '{model.name}': {what} expects batch_size to be a "
                         f"positive integer (or None for 32). Received: "
                         f"batch_size={batch_size!r}")
    return int(batch_size)


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


def _named(model, x, y, prefix=""):
    """The arrays of ``x`` and ``y`` with names for messages."""
    return (model_data.named(prefix + "x", x, model.input_names)
            + model_data.named(prefix + "y", y, model.output_names))


def _check_targets(model, y, what):
    """Every target of every output, at once, against the output's shape."""
    single = model._single_output
    samples = [model._sample_out] if single else model._sample_out
    for objective, targets, sample in zip(model._objectives, [y] if single else y, samples):
        if objective.loss is not None:
            name = "" if single else f" for output {objective.prefix[:-1]!r}"
            objective.loss.check_targets(targets, sample, f"{type(model).__name__} "
                                                          f"'{model.name}': {what}{name}")


def _callback_list(model, callbacks, verbose, steps):
    """evaluate's and predict's callbacks: a CallbackList as it is (fit's, during
    validation), else one made as Keras makes it (epochs=1)."""
    if isinstance(callbacks, callbacks_module.CallbackList):
        return callbacks
    return callbacks_module.CallbackList(callbacks, model=model, verbose=verbose, epochs=1,
                                         steps=steps)


def predict(model, x, batch_size=32, verbose=0, callbacks=None):
    """Outputs for ``x`` in inference mode, as one host (NumPy) array (a list of them,
    one per output, for a model with several outputs). ``callbacks``: their predict
    hooks run (``on_predict_batch_end`` gets ``{"outputs": the batch's outputs}``)."""
    batch_size = _check_batch_size(model, "predict()", batch_size)
    _check_verbose(model, "predict()", verbose)
    x = model_data.inputs(model, x, "predict()")
    model._check_samples(x, "predict()")
    count = model_data.rows(x)
    if count:
        step_memory.check(model, min(batch_size, count), "predict()", training=False)
    cbs = _callback_list(model, callbacks, verbose, math.ceil(count / batch_size))
    model.stop_predicting = False
    cbs.on_predict_begin()
    outs = []
    for step, i in enumerate(range(0, count, batch_size)):
        cbs.on_predict_batch_begin(step)
        out = model.forward(model_data.take(x, slice(i, i + batch_size)), training=False)
        outs.append([to_host(o) for o in out] if isinstance(out, list) else to_host(out))
        model._release_caches()
        cbs.on_predict_batch_end(step, {"outputs": outs[-1]})
        if model.stop_predicting:
            break
    cbs.on_predict_end()
    if model._single_output:
        return np.concatenate(outs, axis=0)
    return [np.concatenate(parts, axis=0) for parts in zip(*outs)]


def evaluate(model, x, y, batch_size=32, verbose=0, return_dict=False, check_numerics=True,
             callbacks=None, sample_weight=None):
    """Loss (and metrics) over ``(x, y)`` in inference mode, averaged over samples.
    ``check_numerics``: refuse data holding NaN or Inf (see ``fit``). ``callbacks``:
    their test hooks run (``on_test_batch_end`` gets the running means).
    ``sample_weight``: the loss is ``sum(w * loss) / N`` (Keras's; metrics unweighted)."""
    model._require_compiled("evaluate()")
    batch_size = _check_batch_size(model, "evaluate()", batch_size)
    given_verbose = verbose
    verbose = _check_verbose(model, "evaluate()", verbose)
    x, y = model_data.inputs(model, x, "evaluate()"), model_data.targets(model, y, "evaluate()")
    model._check_xy(x, y, "evaluate()")
    if check_numerics:
        model._check_finite("evaluate()", _named(model, x, y))
    _check_targets(model, y, "evaluate() (y)")
    count = model_data.rows(x)
    weights = model_data.sample_weights(model, y, sample_weight, None, "evaluate()")
    step_memory.check(model, min(batch_size, count), "evaluate()", training=False)
    cbs = _callback_list(model, callbacks, given_verbose, math.ceil(count / batch_size))
    model.stop_evaluating = False
    cbs.on_test_begin()
    totals, seen = {}, 0
    for step, i in enumerate(range(0, count, batch_size)):
        cbs.on_test_batch_begin(step)
        part = slice(i, i + batch_size)
        xb, yb = model_data.take(x, part), model_data.take(y, part)
        out = model.forward(xb, training=False)
        model._release_caches()
        per_sample, y_dev = model._loss_value(yb, out,
                                              None if weights is None else weights[part])
        logs = model._batch_logs(y_dev, out, per_sample)
        size = model_data.rows(xb)
        seen += size
        for key, value in logs.items():
            totals[key] = totals.get(key, 0.0) + value * size
        if cbs.callbacks:  # Keras's running means so far
            cbs.on_test_batch_end(step, {k: v / seen for k, v in totals.items()})
        if model.stop_evaluating:
            break
    logs = {k: v / seen for k, v in totals.items()}  # seen == count unless stopped
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
    a notebook) or one line per epoch (verbose=2, and verbose=1 on any other stream)."""

    def __init__(self, verbose, epoch, epochs, steps):
        if verbose == 1 and not _interactive(sys.stdout):
            verbose = 2  # a CI log or a file: one line per epoch, not redrawn bars
        self.verbose, self.steps = verbose, steps
        self.start = time.perf_counter()
        self.bar = None
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
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix_str("- " + self._format(logs), refresh=False)

    def close(self, logs, interrupted=False):
        if self.bar is not None:
            self.bar.set_postfix_str("- " + self._format(logs), refresh=False)  # close() draws it
            self.bar.close()
        elif self.verbose == 2 and not interrupted:
            elapsed = time.perf_counter() - self.start
            print(f"{self.steps}/{self.steps} - {elapsed:.0f}s - "
                  f"{1000 * elapsed / self.steps:.0f}ms/step - {self._format(logs)}")
