"""Callbacks that set the optimizer's learning rate: LearningRateScheduler and
ReduceLROnPlateau (Keras 3's exact wait, cooldown and best rules)."""
import numbers
import warnings

import numpy as np

from . import Callback


# ---------------------------------------------------------------------------------
# the learning rate, read and set as Keras's callbacks do
# ---------------------------------------------------------------------------------
def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _floatx_type():
    from ..backend import floatx
    return np.dtype(floatx()).type


def _read_learning_rate(optimizer):
    """The learning rate the next step uses, as a float of the float type
    (``floatx``) it is computed in: Keras reads its learning-rate variable (float32
    by default), so 0.1 reads 0.10000000149011612 in both. For a schedule (or a
    callable), its value at the optimizer's step count."""
    if not hasattr(optimizer, "learning_rate"):
        raise ValueError('Optimizer must have a "learning_rate" attribute.')
    lr = optimizer.learning_rate
    if not _is_number(lr):
        current = getattr(optimizer, "current_learning_rate", None)
        if callable(current):
            lr = current()
        elif callable(lr):
            try:
                lr = lr(getattr(optimizer, "iterations", 0))
            except TypeError:
                lr = lr()
    return float(_floatx_type()(lr))


def _write_learning_rate(optimizer, value, owner):
    """Set a number learning rate; a schedule (or a callable) sets the learning rate
    at every step itself, so it cannot be set from outside: a TypeError, as Keras
    raises when its callbacks meet a ``LearningRateSchedule``."""
    current = optimizer.learning_rate
    if not _is_number(current):
        raise TypeError(
            f"{owner}: this optimizer was created with a learning rate schedule "
            f"({type(current).__name__}) as its `learning_rate`, hence its learning rate "
            f"is not settable. If you need the learning rate to be settable (by "
            f"{owner}), instantiate the optimizer with a float `learning_rate`.")
    optimizer.learning_rate = value


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of every epoch to ``schedule(epoch, lr)``
    (``lr``: the current learning rate), or ``schedule(epoch)`` for a function of
    one argument (tried when the call with two raises TypeError, as Keras does).
    The schedule must return a float (Python, NumPy float32 or float64). Adds
    ``logs["learning_rate"]`` at the end of every epoch."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def _update_optimizer_lr(self, optimizer, epoch):
        if not hasattr(optimizer, "learning_rate"):
            raise ValueError('Optimizer must have a "learning_rate" attribute.')
        try:  # Keras's: a TypeError anywhere in here means "a schedule of one argument"
            learning_rate = _read_learning_rate(optimizer)
            learning_rate = self.schedule(epoch, learning_rate)
        except TypeError:
            learning_rate = self.schedule(epoch)
        if not isinstance(learning_rate, (float, np.float32, np.float64)):
            raise ValueError(f"The output of the `schedule` function should be a float. "
                             f"Got: {learning_rate}")
        _write_learning_rate(optimizer, learning_rate, "LearningRateScheduler")
        return learning_rate

    def on_epoch_begin(self, epoch, logs=None):
        learning_rate = self._update_optimizer_lr(self.model.optimizer, epoch)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                  f"{learning_rate}.")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        logs["learning_rate"] = _read_learning_rate(self.model.optimizer)


def _metric_direction(model, name):
    """``"up"``, ``"down"`` or None for the compiled metric logged as ``name`` (without
    an output's prefix), as Keras's metrics carry it: accuracies up, mean absolute and
    squared errors down, a function of one's own unknown."""
    from .. import metrics as metrics_module
    from ..metrics import functions as metric_functions
    for objective in getattr(model, "_objectives", None) or []:
        ids = getattr(objective, "metric_ids", None) or []
        for metric_name, fn in zip(metrics_module.unique_names(ids),
                                   getattr(objective, "metric_fns", [])):
            if metric_name != name:
                continue
            owner = getattr(fn, "__self__", None)
            if isinstance(owner, metrics_module.Metric):
                errors = (metrics_module.MeanAbsoluteError, metrics_module.MeanSquaredError)
                return "down" if isinstance(owner, errors) else "up"
            if fn is metrics_module.accuracy_values:  # "accuracy" / "acc"
                return "up"
            wrapped = [c.cell_contents for c in (getattr(fn, "__closure__", None) or ())]
            if any(w is metric_functions.mean_absolute_error
                   or w is metric_functions.mean_squared_error for w in wrapped):
                return "down"  # Keras's loss functions given as metrics
            return None
    return None


class _MonitorCallback(Callback):
    """Keras's ``MonitorCallback``: which way ``monitor`` improves, decided at the first
    epoch's end (``mode="auto"``: a loss goes down, a metric the way Keras's metric of
    that name goes; otherwise a ValueError), and the comparison with ``min_delta``."""

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        if mode not in ["auto", "min", "max"]:
            warnings.warn(f"{type(self).__name__} mode '{mode}' is unknown, fallback to "
                          f"auto mode.", stacklevel=2)
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(min_delta)
        self.monitor_op = None

    def _set_monitor_op(self):
        if self.mode == "min":
            self.monitor_op = np.less
        elif self.mode == "max":
            self.monitor_op = np.greater
        else:
            metric_name = self.monitor.removeprefix("val_")
            if metric_name == "loss":
                self.monitor_op = np.less
            direction = _metric_direction(self.model, metric_name)
            if direction is not None:
                self.monitor_op = np.greater if direction == "up" else np.less
            if self.monitor_op is None:
                raise ValueError(
                    f"{type(self).__name__} callback received monitor={self.monitor}, but "
                    f"Keras isn't able to automatically determine whether that metric "
                    f"should be maximized or minimized. Pass `mode='max'` in order to "
                    f"monitor based on the highest metric value, or pass `mode='min'` in "
                    f"order to use the lowest value.")
        if self.monitor_op is np.less:
            self.min_delta *= -1

    def _is_improvement(self, monitor_value, reference_value):
        if reference_value is None:
            return True
        # Keras compares with keras.ops, which makes both Python floats tensors of
        # floatx: float32 by default, so an improvement of 1e-4 + 1e-9 on 1.0 is none
        as_float = _floatx_type()
        return bool(self.monitor_op(as_float(monitor_value - self.min_delta),
                                    as_float(reference_value)))


class ReduceLROnPlateau(_MonitorCallback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved by
    more than ``min_delta`` for ``patience`` epochs, then wait ``cooldown`` epochs
    before counting again; never below ``min_lr``. Keras 3's logic exactly:

        at each epoch's end (monitor present):
            in cooldown:        cooldown_counter -= 1; wait = 0
            improved on best:   best = current; wait = 0
            else, not in cooldown: wait += 1; if wait >= patience and
                lr > float32(min_lr): lr = max(lr * factor, min_lr);
                cooldown_counter = cooldown; wait = 0

    Adds ``logs["learning_rate"]`` (the learning rate before this epoch's change); a
    missing ``monitor`` warns and changes nothing. Extra keyword arguments are
    accepted and ignored, as in Keras."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, **kwargs):
        super().__init__(monitor, mode, min_delta=min_delta)
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0. "
                             f"Received factor={factor}")
        self.factor = factor
        self.min_lr = min_lr
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.cooldown_counter = 0
        self.wait = 0

    def _reset(self):
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def _reduce_optimizer_lr(self, optimizer, epoch):
        old_lr = _read_learning_rate(optimizer)
        if old_lr > np.float32(self.min_lr):
            new_lr = max(old_lr * self.factor, self.min_lr)
            _write_learning_rate(optimizer, new_lr, "ReduceLROnPlateau")
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                      f"{new_lr}.")
            return True
        return False

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs or {}
        logs["learning_rate"] = _read_learning_rate(self.model.optimizer)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric "
                          f"`{self.monitor}` which is not available. Available metrics "
                          f"are: {','.join(list(logs.keys()))}.", stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                if self._reduce_optimizer_lr(self.model.optimizer, epoch):
                    self.cooldown_counter = self.cooldown
                    self.wait = 0

    def in_cooldown(self):
        return self.cooldown_counter > 0
