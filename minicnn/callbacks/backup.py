"""BackupAndRestore: training that survives being killed, resumed exactly where it
stood.

Keras 3's callback saves the weights and the epoch, and a resumed ``fit`` starts that
epoch again. minicnn's saves everything the next steps depend on, so that a run killed
at any moment (even by SIGKILL, mid-epoch) and resumed from its backup ends with the
very weights, bit for bit, of a run that was never interrupted:

- the weights and the optimizer's state (its slots, its step count, a learning rate a
  callback has changed);
- where the data stand: the epoch, the step within it (``save_freq`` a number of
  batches), the epoch's batch order (the permutation drawn from the model's shuffling
  generator) and how far the current pass has gone; the resumed ``fit`` skips the
  steps already done (a generator is read again from its start and the batches
  already trained on are passed over);
- every random generator training draws from: the shuffling generator, each layer's
  own (a seeded Dropout's, an augmentation layer's: any layer with a ``_rng``, in
  nested models too, matched by their place in the model), minicnn's global
  generator (``minicnn.utils.global_rng``), NumPy's legacy global generator and
  Python's ``random``.

Everything goes into one minicnn archive (``minicnn.saving``: plain arrays and a JSON
header, written to a temporary file and renamed over the last backup), so a kill
during a save leaves the previous backup whole, and reading one never unpickles.
What a backup does not hold: the running means of the interrupted epoch's logs (the
resumed epoch's logs cover its remaining steps), other callbacks' state (as in
Keras), and a PyDataset's own state beyond its batch order.
"""
import math
import numbers
import os
import random

import numpy as np

from . import Callback
from .. import compile_settings, file_checks, loading, saving
from ..file_checks import refuse
from ..utils import global_rng

LATEST = "latest.npz"  # the backup; with double_checkpoint the one before is LATEST.bkp


def _random_layers(model, prefix=""):
    """``(path, layer)`` for every layer with its own generator, nested models' too."""
    for layer in model._layers:
        name = prefix + layer.name
        if hasattr(layer, "_layers"):
            yield from _random_layers(layer, name + "/")
        elif getattr(layer, "_rng", None) is not None:
            yield name, layer


def _set_generator(path, rng, state, what):
    """Put ``rng`` (a NumPy Generator) where ``state`` says, in place: the loop, the
    layers and the data all keep the generator objects they hold."""
    kind = type(rng.bit_generator).__name__
    if not isinstance(state, dict) or state.get("bit_generator") != kind:
        refuse(path, f"{what} is not a {kind} generator state")
    try:
        rng.bit_generator.state = state
    except (TypeError, ValueError, KeyError) as exc:
        refuse(path, f"{what} is not a valid generator state ({exc})")


class BackupAndRestore(Callback):
    """Back up the training state into ``backup_dir`` and resume from it, as Keras 3's
    ``keras.callbacks.BackupAndRestore(backup_dir, save_freq="epoch",
    double_checkpoint=False, delete_checkpoint=True)``.

    ``save_freq``: ``"epoch"`` (at each epoch's end) or a number of batches.
    ``double_checkpoint``: keep the backup before the latest too, and resume from it
    when the latest cannot be read. ``delete_checkpoint``: remove the backup when
    ``fit`` completes (all epochs, or stopped by a callback or a NaN loss); after
    Ctrl-C it stays, to resume from. A new ``fit`` with the callback restores the
    backup in ``on_train_begin`` and goes on from the epoch and step it holds; the
    model, its compile settings and fit's arguments must be those of the run that
    wrote it. ``backup_dir`` is the callback's alone (Keras's rule too).
    """

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False,
                 delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("Empty `backup_dir` argument passed")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(
                save_freq, numbers.Integral) or save_freq < 1):
            raise ValueError(f"Invalid value for argument `save_freq`. Received: "
                             f"save_freq={save_freq!r}. Expected either 'epoch' or a "
                             f"positive integer value.")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.double_checkpoint = bool(double_checkpoint)
        self.delete_checkpoint = bool(delete_checkpoint)
        self._path = os.path.join(self.backup_dir, LATEST)
        self._previous = self._path + ".bkp"
        self._epoch, self._since_save, self._finished = 0, 0, False

    # -- the hooks -------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        model = self.model
        if not model.built:
            raise ValueError(f"To use the BackupAndRestore callback, your model must be "
                             f"built before you call `fit()`. {type(model).__name__} "
                             f"'{model.name}' is unbuilt. You can build it beforehand by "
                             f"calling it on a batch of data.")
        self._since_save, self._finished = 0, False
        paths = [p for p in (self._path, self._previous) if os.path.exists(p)]
        for i, path in enumerate(paths):
            try:
                self._restore(path)
                return
            except (OSError, ValueError):
                if i + 1 == len(paths):  # no older backup to fall back on
                    raise

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq != "epoch":
            self._since_save += 1
            if self._since_save >= self.save_freq:
                self._since_save = 0
                self._save(self._epoch, batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == (self.params or {}).get("epochs"):
            self._finished = True
        if self.save_freq == "epoch":
            self._save(epoch + 1, 0)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and (self._finished or self.model.stop_training):
            for path in (self._path, self._previous):
                if os.path.exists(path):
                    os.remove(path)
            try:
                os.rmdir(self.backup_dir)  # only if nothing else is in it
            except OSError:
                pass

    # -- writing ---------------------------------------------------------------------
    def _save(self, epoch, step):
        """One archive: the weights, the optimizer, the data's place, the generators."""
        model, data = self.model, getattr(self.model, "_fit_data", None)
        optimizer = model.optimizer
        state = optimizer.get_state()
        header = {"kind": "backup", "model": model.name, "epoch": epoch, "step": step,
                  "iterations": state.pop("iterations"),
                  "scalars": {n: state.pop(n) for n in optimizer.keras_scalars}}
        arrays = saving.indexed("weights", model.get_weights())
        for slot, values in state.items():
            arrays.update(saving.indexed(f"optimizer/{slot}", values))
        rate = getattr(optimizer, "learning_rate", None)
        if isinstance(rate, numbers.Real) and not isinstance(rate, bool):
            header["learning_rate"] = float(rate)
        # the pass in progress: how far it went, and its order (none when unshuffled)
        if data is not None and data._pass is not None and (step or data.steps):
            header["pass"] = {"seen": data.seen, "ordered": data.source.order is not None}
            if data.source.order is not None:
                arrays["data/order"] = np.asarray(data.source.order, dtype=np.int64)
        legacy = np.random.get_state()
        header["random"] = {
            "shuffle": None if model._shuffle_rng is None else
            {"seed": model._shuffle_seed, "state": model._shuffle_rng.bit_generator.state},
            "layers": [[name, layer._rng.bit_generator.state]  # in the model's order
                       for name, layer in _random_layers(model)],
            "global": global_rng().bit_generator.state,
            "numpy": [legacy[0], int(legacy[2]), int(legacy[3]), float(legacy[4])],
            "python": [random.getstate()[0], list(random.getstate()[1]),
                       random.getstate()[2]]}
        arrays["random/numpy_keys"] = legacy[1]
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint and os.path.exists(self._path):
            os.replace(self._path, self._previous)  # the latest becomes the previous
        saving.write_archive(self._path, header, arrays)

    # -- reading ---------------------------------------------------------------------
    def _restore(self, path):
        """Everything ``_save`` wrote, each array checked before it is read."""
        model = self.model
        with saving.Archive(path, kind="backup") as archive, file_checks.reading(path):
            header = archive.header
            index = 0
            for layer in model._layers:
                count = len(layer.weights)
                loading.set_weights(path, layer, [archive.stored(f"weights/{index + j:04d}")
                                                  for j in range(count)])
                index += count
            if archive.count("weights") != index:
                refuse(path, f"holds {archive.count('weights')} weights; the model has "
                             f"{index}")
            slots = {s: [archive.stored(f"optimizer/{s}/{i:04d}")
                         for i in range(archive.count(f"optimizer/{s}"))]
                     for s in sorted({n.split("/")[1] for n in archive.names
                                      if n.startswith("optimizer/")})}
            compile_settings.set_optimizer_state(path, model, header.get("iterations", 0),
                                                 slots, header.get("scalars"))
            rate = header.get("learning_rate")
            if isinstance(rate, float) and math.isfinite(rate) and isinstance(
                    getattr(model.optimizer, "learning_rate", None), numbers.Real):
                model.optimizer.learning_rate = rate
            self._restore_random(path, archive, header.get("random"))
            epoch, step = header.get("epoch"), header.get("step")
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                       for v in (epoch, step)):
                refuse(path, f"its epoch and step ({epoch!r}, {step!r}) are not counts")
            model._initial_epoch = epoch
            if epoch >= (self.params or {}).get("epochs", math.inf):
                self._finished = True  # nothing left to train: fit completes at once
            self._resume_data(path, archive, header.get("pass"), step)

    def _restore_random(self, path, archive, saved):
        model = self.model
        if not isinstance(saved, dict):
            refuse(path, "its random state is not a JSON object")
        shuffle = saved.get("shuffle")
        if shuffle is not None:
            if not isinstance(shuffle, dict):
                refuse(path, "its shuffling state is not a JSON object")
            model._shuffling(shuffle.get("seed"))  # the generator the fit will draw from
            _set_generator(path, model._shuffle_rng, shuffle.get("state"),
                           "the shuffling generator")
            data = getattr(model, "_fit_data", None)
            if data is not None:
                data.source.rng = model._shuffle_rng
        layers, mine = saved.get("layers"), list(_random_layers(model))
        if not isinstance(layers, list) or len(layers) != len(mine) or not all(
                isinstance(entry, list) and len(entry) == 2 for entry in layers):
            refuse(path, f"holds generators for {len(layers or [])} layers; the model has "
                         f"{len(mine)} layers with generators ({[n for n, _ in mine][:8]})")
        for (name, layer), (_, state) in zip(mine, layers):  # by place: names may differ
            _set_generator(path, layer._rng, state, f"the generator of layer {name!r}")
        _set_generator(path, global_rng(), saved.get("global"), "the global generator")
        legacy, python = saved.get("numpy"), saved.get("python")
        keys = archive.array("random/numpy_keys", (624,), "u")
        try:
            np.random.set_state((legacy[0], keys, legacy[1], legacy[2], legacy[3]))
            random.setstate((python[0], tuple(python[1]), python[2]))
        except (TypeError, ValueError, IndexError, KeyError, OverflowError) as exc:
            refuse(path, f"its NumPy or Python random state is not valid ({exc})")

    def _resume_data(self, path, archive, saved, step):
        """The pass to go on with: its order and the batches it already gave."""
        data = getattr(self.model, "_fit_data", None)
        if saved is None or data is None:  # at an epoch's end: the next starts afresh
            return
        seen = saved.get("seen") if isinstance(saved, dict) else None
        if not isinstance(seen, int) or isinstance(seen, bool) or seen < 0:
            refuse(path, f"its place in the data ({saved!r}) is not valid")
        order = None
        if saved.get("ordered"):
            count = archive.stored("data/order").shape
            order = archive.array("data/order", count, "i")
            size = getattr(data.source, "count", None) or data.source.num_batches
            if len(count) != 1 or size is None or count[0] != size or (
                    len(order) and (order.min() < 0 or order.max() >= size)):
                refuse(path, f"its batch order (shape {count}) does not fit the data "
                             f"given to fit ({size} samples or batches)")
        data.resume(order, seen, step)
