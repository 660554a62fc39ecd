"""The data of ``fit``, ``evaluate`` and ``predict``, one epoch of batches at a time.

Three kinds of data arrive, as in Keras 3 (``keras/src/trainers/data_adapters``):

- arrays (one per input and per target, as ``minicnn.model_data`` puts them): checked
  whole before the first step, then sliced into batches, shuffled each pass;
- an iterable of batches: a generator, a list of ``(x, y)`` tuples, any object with
  ``__iter__``. Each batch is ``(x, y)`` or ``(x, y, sample_weight)`` (for ``predict``
  also ``(x,)`` or ``x`` alone); a list is read as a tuple, as Keras's
  ``unpack_x_y_sample_weight`` reads it. A generator is read once and never shuffled;
- a ``PyDataset`` (``minicnn.utils.PyDataset`` or any object with ``__len__``,
  ``__getitem__`` and ``on_epoch_end``): batch ``i`` is ``dataset[i]``; ``shuffle``
  permutes the batch order of each pass (as Keras does, with the model's shuffling
  generator here); ``workers > 1`` fetches batches ahead on a pool of threads.

``EpochIterator`` turns any of them into epochs with Keras's rules on ``steps``
(``steps_per_epoch``, ``validation_steps``, ``steps``): without it an epoch is one
pass over the data, and a source of unknown length (a generator) runs until it is
exhausted, its length learned on the way; with it, an epoch is that many batches and
a pass goes on from one epoch to the next. A pass that runs out before an epoch has
its ``steps`` ends that epoch early with Keras's warning; a generator, which cannot
start again, then stops training. Streamed batches are checked one by one as arrays
are checked whole (shapes, NaN/Inf, label ranges), each error naming the batch.
"""
import collections.abc
import itertools
import math
import numbers
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import model_data, step_memory
from .utils import PyDataset

RAN_OUT = ("Your input ran out of data; interrupting training. Make sure that your dataset "
           "or generator can generate at least `steps_per_epoch * epochs` batches. You may "
           "need to use the `.repeat()` function when building your dataset.")


def _who(model):
    return f"{type(model).__name__} '{model.name}'"


def is_pydataset(x):
    """A PyDataset: batches by index (Keras's ``PyDataset``, or an object shaped like it)."""
    kind = type(x)
    return isinstance(x, PyDataset) or (
        not isinstance(x, (np.ndarray, list, tuple, dict, str)) and
        hasattr(kind, "__getitem__") and hasattr(kind, "on_epoch_end") and
        (hasattr(kind, "__len__") or hasattr(kind, "num_batches")))


def _is_batch(item):
    """A tuple that reads as ``(x, ...)``: its first entry holds arrays, not a number
    (``[(1., 2.), (3., 4.)]`` stays a 2x2 array)."""
    return (isinstance(item, tuple) and 1 <= len(item) <= 3 and
            (isinstance(item[0], (list, tuple, dict)) or getattr(item[0], "ndim", 0) >= 1))


def is_batches(x):
    """An iterable of batches rather than arrays: an iterator or generator, a list or
    tuple of batch tuples, or another iterable that is not array-like."""
    if x is None or isinstance(x, (np.ndarray, dict, str, bytes)) or is_pydataset(x) \
            or hasattr(x, "__array__") or hasattr(x, "__cuda_array_interface__"):
        return False
    if isinstance(x, (list, tuple)):
        return len(x) > 0 and all(_is_batch(item) for item in x)
    return isinstance(x, collections.abc.Iterable)


def is_streamed(x):
    return is_pydataset(x) or is_batches(x)


def unpack(batch):
    """``(x, y, sample_weight)`` of a batch, with None for what it lacks (Keras's
    ``unpack_x_y_sample_weight``)."""
    if isinstance(batch, list):
        batch = tuple(batch)
    if not isinstance(batch, tuple):
        return batch, None, None
    if 1 <= len(batch) <= 3:
        return batch + (None,) * (3 - len(batch))
    raise ValueError("Data is expected to be in format `x`, `(x,)`, `(x, y)`, or "
                     f"`(x, y, sample_weight)`, found a tuple of {len(batch)} entries")


def check_steps(model, what, name, value):
    """None, or a positive whole number of batches."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{_who(model)}: {what} expects {name} to be a positive integer or "
                         f"None. Received: {name}={value!r}")
    return int(value)


# ---------------------------------------------------------------------------------
# the sources: each makes passes (iterators of batches) and has epoch hooks
# ---------------------------------------------------------------------------------
class ArrayBatches:
    """Arrays already checked whole: a pass slices them (views when not shuffled;
    ``order``, the pass's permutation, is kept for ``BackupAndRestore``)."""
    streamed, one_shot = False, False

    def __init__(self, x, y, weights, batch_size, shuffle=False, rng=None):
        self.x, self.y, self.weights = x, y, weights
        self.count, self.batch_size = model_data.rows(x), batch_size
        self.num_batches = math.ceil(self.count / batch_size)
        self.shuffle, self.rng, self.order = shuffle, rng, None

    def new_pass(self, order=None, start=0):
        if order is None and self.shuffle:
            order = self.rng.permutation(self.count)
        self.order = order
        return self._batches(order, start)

    def _batches(self, order, start):
        x, y, weights, size = self.x, self.y, self.weights, self.batch_size
        for step in range(start, self.num_batches):
            idx = (slice(step * size, (step + 1) * size) if order is None
                   else order[step * size:(step + 1) * size])
            yield (model_data.take(x, idx), None if y is None else model_data.take(y, idx),
                   None if weights is None else weights[idx])

    def on_epoch_begin(self):
        pass

    def on_epoch_end(self):
        pass


class IterableBatches:
    """Any iterable: a list (or an object whose ``iter()`` is new each time) starts a
    new pass each time; a generator (its own iterator) is read once."""
    streamed, order = True, None

    def __init__(self, data):
        self.data = data
        self.one_shot = isinstance(data, collections.abc.Iterator)  # its own iterator
        self.num_batches = (len(data) if not self.one_shot and hasattr(data, "__len__")
                            else None)

    def new_pass(self, order=None, start=0):
        return itertools.islice(iter(self.data), start, None)

    def on_epoch_begin(self):
        pass

    def on_epoch_end(self):
        pass


class PyDatasetBatches:
    """A PyDataset: ``dataset[i]`` in index order (permuted when shuffled), fetched
    ahead by ``workers`` threads when ``workers > 1``; its ``on_epoch_begin`` /
    ``on_epoch_end`` run at each epoch's start and end."""
    streamed, one_shot = True, False

    def __init__(self, model, what, dataset, shuffle=False, rng=None):
        if getattr(dataset, "use_multiprocessing", False):
            raise ValueError(f"{_who(model)}: {what} cannot read a PyDataset with "
                             f"use_multiprocessing=True: minicnn fetches batches on threads "
                             f"(workers > 1), never in other processes")
        self.dataset, self.shuffle, self.rng, self.order = dataset, shuffle, rng, None
        # Keras's num_batches (len(dataset); None: an endless dataset)
        self.num_batches = (dataset.num_batches if hasattr(dataset, "num_batches")
                            else len(dataset))
        self.workers = int(getattr(dataset, "workers", 1) or 1)
        self.queue = max(int(getattr(dataset, "max_queue_size", 10) or 1), self.workers)

    def new_pass(self, order=None, start=0):
        if self.num_batches is None:
            indices = itertools.count(start)
        else:
            if order is None:
                order = (self.rng.permutation(self.num_batches) if self.shuffle
                         else np.arange(self.num_batches))
            self.order = order
            indices = (int(i) for i in order[start:])
        if self.workers > 1:
            return self._fetched_ahead(indices)
        return (self.dataset[i] for i in indices)

    def _fetched_ahead(self, indices):
        """Up to ``max_queue_size`` batches on their way while the model trains on the
        current one; the pool ends with the pass (or when the pass is closed)."""
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="minicnn-pydataset")
        pending = collections.deque()
        try:
            for i in itertools.islice(indices, self.queue):
                pending.append(pool.submit(self.dataset.__getitem__, i))
            while pending:
                batch = pending.popleft().result()
                for i in itertools.islice(indices, 1):
                    pending.append(pool.submit(self.dataset.__getitem__, i))
                yield batch
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True)

    def on_epoch_begin(self):
        getattr(self.dataset, "on_epoch_begin", lambda: None)()

    def on_epoch_end(self):
        self.dataset.on_epoch_end()


def source(model, what, data, shuffle=False, rng=None):
    """The source of ``data``, a PyDataset or an iterable of batches."""
    if is_pydataset(data):
        return PyDatasetBatches(model, what, data, shuffle, rng)
    return IterableBatches(data)


# ---------------------------------------------------------------------------------
# epochs of batches, with Keras's rules on steps
# ---------------------------------------------------------------------------------
class EpochIterator:
    """Epochs of ``(step, x, y, sample_weight)`` from a source.

    ``steps`` None: an epoch is a pass (a generator's first pass runs until it is
    exhausted: ``num_batches`` is learned then). ``steps`` given: an epoch is that many
    batches and the pass goes on where the last epoch left it; a pass that runs out
    first ends the epoch with Keras's warning (``ran_out``), and a generator that has
    ended is ``exhausted``. Streamed batches are checked as they come (``targets``:
    each batch must hold y, as fit and evaluate need)."""

    def __init__(self, model, what, source, steps=None, targets=True, check_numerics=True,
                 class_weight=None, training=False):
        self.model, self.what, self.source, self.steps = model, what, source, steps
        self.targets, self.check_numerics = targets, check_numerics
        self.class_weight, self.training = class_weight, training
        self._pass, self.seen = None, 0  # the current pass and how many batches it gave
        self.exhausted = self.ran_out = self.resumed = False
        self._memory_checked = not source.streamed
        self._resume = None

    @property
    def num_batches(self):
        """Batches per epoch: ``steps``, else the source's length (None: unknown yet)."""
        return self.steps or self.source.num_batches

    def resume(self, order, seen, step):
        """Make the next epoch continue a pass interrupted after ``seen`` batches (with
        the permutation ``order``), numbering its first batch ``step``."""
        self._resume = (order, seen, step)

    def epoch(self):
        """The batches of one epoch, between the source's epoch hooks."""
        source = self.source
        source.on_epoch_begin()
        try:
            self.ran_out, self.resumed = False, self._resume is not None
            step = 0
            if self._resume is not None:
                order, seen, step = self._resume
                self._resume = None
                self._pass, self.seen = source.new_pass(order, seen), seen
            elif self._pass is None or self.steps is None:
                self._pass, self.seen = source.new_pass(), 0
            steps = self.num_batches
            while steps is None or step < steps:
                if source.num_batches and self.seen >= source.num_batches:
                    self._end_pass()
                    break
                try:
                    batch = next(self._pass)
                except StopIteration:
                    if source.num_batches is None:
                        source.num_batches = self.seen  # learned, as Keras learns it
                    self.exhausted = source.one_shot
                    self._end_pass()
                    break
                self.seen += 1
                batch = self._checked(batch, self.seen - 1) if source.streamed else batch
                yield (step,) + tuple(batch)
                step += 1
            if source.num_batches and self.seen >= source.num_batches:
                self._pass = None  # the next epoch starts a new pass
        finally:
            source.on_epoch_end()

    def _end_pass(self):
        self._pass = None
        if self.steps:  # fewer batches than asked for: Keras warns
            self.ran_out = True
            warnings.warn(RAN_OUT, stacklevel=5)  # at the call of fit or evaluate

    def close(self):
        """End the pass in progress (a PyDataset's fetching threads with it); the model
        lets go of its fit's data (``model._fit_data``, BackupAndRestore's view of it)."""
        if self._pass is not None and hasattr(self._pass, "close"):
            self._pass.close()
        self._pass = None
        if getattr(self.model, "_fit_data", None) is self:
            self.model._fit_data = None

    def _checked(self, batch, index):
        """A streamed batch as the model takes it, checked as arrays are checked."""
        model, what = self.model, f"{self.what} (batch {index})"
        x, y, weights = unpack(batch)
        if x is None:
            raise ValueError(f"{_who(model)}: {what} holds no inputs (x is None)")
        x = model_data.inputs(model, x, what)
        if not model.built and model._single_input:  # from its first batch, as Keras builds
            model.build(tuple(x.shape[1:]))
        if not self.targets:  # predict's: y, if any, is not used (as in Keras)
            model._check_samples(x, what)
            model_data.check_counts(model, x, None, what)
            y = weights = None
        else:
            y, weights = self._checked_targets(x, y, weights, what, batch)
        if not self._memory_checked:  # once, on the first batch: its size
            step_memory.check(model, model_data.rows(x), self.what, training=self.training)
            self._memory_checked = True
        return x, y, weights

    def _checked_targets(self, x, y, weights, what, batch):
        model = self.model
        if y is None:
            raise ValueError(f"{_who(model)}: {what} has no targets: {self.what} needs "
                             f"batches (x, y) or (x, y, sample_weight). Received: a batch "
                             f"{type(batch).__name__} of x alone")
        y = model_data.targets(model, y, what)
        model._check_xy(x, y, what)
        if self.check_numerics:
            model._check_finite(what, named(model, x, y))
        check_targets(model, y, what)
        return y, model_data.sample_weights(model, y, weights, self.class_weight, what)


def named(model, x, y, prefix=""):
    """The arrays of ``x`` and ``y`` with names for messages."""
    return (model_data.named(prefix + "x", x, model.input_names)
            + model_data.named(prefix + "y", y, model.output_names))


def check_targets(model, y, what):
    """Every target of every output, at once, against the output's shape."""
    single = model._single_output
    samples = [model._sample_out] if single else model._sample_out
    for objective, targets, sample in zip(model._objectives, [y] if single else y, samples):
        if objective.loss is not None:
            name = "" if single else f" for output {objective.prefix[:-1]!r}"
            objective.loss.check_targets(targets, sample, f"{_who(model)}: {what}{name}")
