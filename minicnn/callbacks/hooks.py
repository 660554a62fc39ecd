"""Callbacks made of hooks: LambdaCallback (your functions as hooks) and
TerminateOnNaN."""
import numpy as np

from . import Callback


class LambdaCallback(Callback):
    """A callback made of functions: ``on_epoch_begin(epoch, logs)``,
    ``on_epoch_end(epoch, logs)``, ``on_train_begin(logs)``, ``on_train_end(logs)``,
    ``on_train_batch_begin(batch, logs)``, ``on_train_batch_end(batch, logs)``; any
    other hook (``on_test_begin=...``, ``on_predict_batch_end=...``) by keyword, as
    Keras sets ``**kwargs`` as attributes."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 **kwargs):
        super().__init__()
        self.__dict__.update(kwargs)
        if on_epoch_begin is not None:
            self.on_epoch_begin = on_epoch_begin
        if on_epoch_end is not None:
            self.on_epoch_end = on_epoch_end
        if on_train_begin is not None:
            self.on_train_begin = on_train_begin
        if on_train_end is not None:
            self.on_train_end = on_train_end
        if on_train_batch_begin is not None:
            self.on_train_batch_begin = on_train_batch_begin
        if on_train_batch_end is not None:
            self.on_train_batch_end = on_train_batch_end


class TerminateOnNaN(Callback):
    """Stop training when a batch's loss is NaN or Inf: ``model.stop_training`` (the
    epoch then ends as Keras ends it: validation and ``on_epoch_end`` run), or a
    RuntimeError with ``raise_error=True``. minicnn's ``fit(terminate_on_nan=True)``,
    the default, stops at such a batch by itself and keeps the weights of the last
    finite step; this callback still sees the batch (and raises if asked to)."""

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch, logs=None):
        logs = logs or {}
        loss = logs.get("loss")
        if loss is not None:
            if np.isnan(loss) or np.isinf(loss):
                if self.raise_error:
                    raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. "
                                       f"Loss value: {loss}. Terminating training "
                                       f"immediately.")
                print(f"Batch {batch}: Invalid loss, terminating training")
                self.model.stop_training = True
