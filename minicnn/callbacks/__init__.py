"""Training callbacks with Keras 3's names, arguments and behaviour: the ``Callback``
hooks and ``CallbackList``, History, EarlyStopping, ModelCheckpoint, CSVLogger,
LearningRateScheduler, ReduceLROnPlateau, LambdaCallback, TerminateOnNaN,
TensorBoard and BackupAndRestore.

``fit``, ``evaluate`` and ``predict`` (``minicnn.training``) call the hooks at the
moments Keras 3 calls them, through a ``CallbackList`` that holds the callbacks in the
order given, then the History (``fit`` only)::

    set_model, set_params({"verbose", "epochs", "steps"})
    fit:       on_train_begin
                 on_epoch_begin(epoch)
                   on_train_batch_begin(step), on_train_batch_end(step, running logs)
                   validation: on_test_begin, on_test_batch_begin/end, on_test_end
                 on_epoch_end(epoch, logs with the val_ entries)
               on_train_end(the last epoch's logs)
    evaluate:  on_test_begin, on_test_batch_begin(step), on_test_batch_end(step, running
               logs), on_test_end(logs)
    predict:   on_predict_begin, on_predict_batch_begin(step),
               on_predict_batch_end(step, {"outputs": the batch's outputs}), on_predict_end

Each call gives every callback the same fresh dict (sorted by key, values as Python
floats, as Keras's ``pythonify_logs`` makes it): a callback that adds an entry (as
ReduceLROnPlateau and LearningRateScheduler add ``learning_rate``) shows it to the
callbacks after it and to the History, not to the training loop. ``stop_training``
set by a callback stops ``fit`` after the batch in progress (the epoch still ends:
validation and ``on_epoch_end`` run); ``stop_evaluating`` / ``stop_predicting`` stop
``evaluate`` / ``predict`` after the batch.
"""
class Callback:
    """Base class: every hook of Keras 3's ``Callback``, doing nothing.

    ``self.model`` is set by ``set_model`` and ``self.params`` (``{"verbose", "epochs",
    "steps"}``) by ``set_params`` before the first hook. As in Keras,
    ``on_train_batch_begin``/``on_train_batch_end`` call the older aliases
    ``on_batch_begin``/``on_batch_end`` unless overridden."""

    params = None  # for subclasses that do not call __init__
    model = None

    def __init__(self):
        self.params = None
        self.model = None

    def set_params(self, params):
        self.params = params

    def set_model(self, model):
        self.model = model

    def on_batch_begin(self, batch, logs=None):
        """A backwards compatibility alias for ``on_train_batch_begin``."""

    def on_batch_end(self, batch, logs=None):
        """A backwards compatibility alias for ``on_train_batch_end``."""

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_batch_begin(self, batch, logs=None):
        pass

    def on_predict_batch_end(self, batch, logs=None):
        pass

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass


def _pythonify_logs(logs):
    """Keras's ``pythonify_logs``: a new dict sorted by key, nested dicts flattened,
    values as Python floats where they are numbers (arrays, e.g. predict's
    ``outputs``, stay as they are)."""
    result = {}
    for key, value in sorted((logs or {}).items()):
        if isinstance(value, dict):
            result.update(_pythonify_logs(value))
            continue
        if getattr(value, "ndim", 0) == 0:
            try:
                value = float(value)
            except Exception:  # noqa: BLE001 - Keras keeps what float() refuses
                pass
        result[key] = value
    return result


def _flatten(callbacks):
    if isinstance(callbacks, (list, tuple)):
        return [cb for item in callbacks for cb in _flatten(item)]
    return [callbacks]


class CallbackList(Callback):
    """Calls every hook on each callback in turn, as Keras's ``CallbackList``:
    ``CallbackList(callbacks=None, add_history=False, add_progbar=False, model=None,
    **params)``. ``params`` (``verbose``, ``epochs``, ``steps``) go to ``set_params``.
    ``add_history`` appends a ``History`` unless one is in ``callbacks`` (``fit`` does);
    ``add_progbar`` is accepted and does nothing (minicnn's loop draws its own
    progress). ``fit``/``evaluate``/``predict`` take one as ``callbacks`` and use it
    as it is (no ``set_model``/``set_params``), as Keras does for validation.

    An object that lacks a hook (one written for minicnn's older, shorter list) is
    skipped for that hook."""

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None,
                 **params):
        super().__init__()
        self.callbacks = _flatten(callbacks) if callbacks else []
        self._history = None
        for cb in self.callbacks:
            if isinstance(cb, History):
                self._history = cb
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        self.set_model(model)
        self.set_params(params)

    def set_params(self, params):
        self.params = params
        if params:
            for cb in self.callbacks:
                setter = getattr(cb, "set_params", None)
                if setter is not None:
                    setter(params)

    def set_model(self, model):
        if model is None:
            return
        super().set_model(model)
        if self._history is not None:
            model.history = self._history
        for cb in self.callbacks:
            cb.set_model(model)

    def _call(self, hook, *args, **kwargs):
        for cb in self.callbacks:
            method = getattr(cb, hook, None)
            if method is not None:
                method(*args, **kwargs)

    # Keras's calling conventions: logs by position for the epoch and begin/end hooks,
    # by keyword for the batch hooks (a LambdaCallback's functions see the same)
    def on_batch_begin(self, batch, logs=None):
        self._call("on_batch_begin", batch, logs=_pythonify_logs(logs))

    def on_batch_end(self, batch, logs=None):
        self._call("on_batch_end", batch, logs=_pythonify_logs(logs))

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, _pythonify_logs(logs))

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, _pythonify_logs(logs))

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs=_pythonify_logs(logs))

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs=_pythonify_logs(logs))

    def on_test_batch_begin(self, batch, logs=None):
        self._call("on_test_batch_begin", batch, logs=_pythonify_logs(logs))

    def on_test_batch_end(self, batch, logs=None):
        self._call("on_test_batch_end", batch, logs=_pythonify_logs(logs))

    def on_predict_batch_begin(self, batch, logs=None):
        self._call("on_predict_batch_begin", batch, logs=_pythonify_logs(logs))

    def on_predict_batch_end(self, batch, logs=None):
        self._call("on_predict_batch_end", batch, logs=_pythonify_logs(logs))

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", _pythonify_logs(logs))

    def on_train_end(self, logs=None):
        self._call("on_train_end", _pythonify_logs(logs))

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", _pythonify_logs(logs))

    def on_test_end(self, logs=None):
        self._call("on_test_end", _pythonify_logs(logs))

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", _pythonify_logs(logs))

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", _pythonify_logs(logs))


class History(Callback):
    """``history.history`` maps each log key to its list of per-epoch values."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self


# the callbacks, by what they do (they build on the classes above)
from .monitoring import CSVLogger, EarlyStopping, ModelCheckpoint  # noqa: E402
from .learning_rate import LearningRateScheduler, ReduceLROnPlateau  # noqa: E402
from .hooks import LambdaCallback, TerminateOnNaN  # noqa: E402
from .backup import BackupAndRestore  # noqa: E402
from .tensorboard import TensorBoard  # noqa: E402 - tensorboardX only when constructed

__all__ = ["Callback", "CallbackList", "History", "EarlyStopping", "ModelCheckpoint",
           "CSVLogger", "LearningRateScheduler", "ReduceLROnPlateau", "LambdaCallback",
           "TerminateOnNaN", "TensorBoard", "BackupAndRestore"]
