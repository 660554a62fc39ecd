"""Keras's ``keras.utils`` helpers: ``set_random_seed``, ``to_categorical``, ``normalize``,
and ``PyDataset``, the base class of data sets read one batch at a time.

``set_random_seed(s)`` makes weight initialisation and unseeded dropout masks repeat
from run to run, and seeds Python's ``random`` and NumPy's global generator as
``keras.utils.set_random_seed`` does. ``to_categorical`` and ``normalize`` return what
Keras 3 returns for NumPy input (``keras/src/utils/numerical_utils.py``).
"""
import itertools
import random

import numpy as np

__all__ = ["set_random_seed", "to_categorical", "normalize", "PyDataset", "Sequence"]

_RNG = np.random.default_rng()


def set_random_seed(seed):
    """Reseed the generator behind initializers and unseeded Dropout layers, and, as
    Keras does, Python's ``random`` and NumPy's global ``np.random`` (with
    ``seed % 2**32``, the range NumPy's legacy seeding takes)."""
    global _RNG
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"set_random_seed: seed must be a non-negative int. Received: {seed!r}")
    seed = int(seed)
    _RNG = np.random.default_rng(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def global_rng():
    """The shared NumPy Generator (host side; arrays are moved to the backend after)."""
    return _RNG


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


class PyDataset:
    """A data set read one batch at a time, as Keras's ``keras.utils.PyDataset``.

    A subclass defines ``__len__`` (the number of batches) and ``__getitem__(i)`` (batch
    ``i``: ``(x, y)``, ``(x, y, sample_weight)``, or x alone for ``predict``), and may
    define ``on_epoch_begin`` / ``on_epoch_end``, which ``fit`` calls at each epoch's
    start and end (to reshuffle, say). ``fit(dataset)`` reads the batches in index
    order, or in a new random order each epoch with ``shuffle=True`` (Keras's rule;
    the model's shuffling generator draws it); ``evaluate`` and ``predict`` in order.
    A subclass can say it is endless by a ``num_batches`` property returning None (fit
    then needs ``steps_per_epoch``).

    ``workers``: with more than 1, that many threads fetch the next batches while the
    model trains on the current one (at most ``max_queue_size`` ahead): useful when
    ``__getitem__`` waits on files or on code that releases the GIL, as image
    decoding does. ``use_multiprocessing=True`` (Keras's worker processes) is refused:
    minicnn never copies a data set into other processes.

        class Batches(minicnn.utils.PyDataset):
            def __init__(self, x, y, batch_size, **kwargs):
                super().__init__(**kwargs)
                self.x, self.y, self.batch_size = x, y, batch_size

            def __len__(self):
                return math.ceil(len(self.x) / self.batch_size)

            def __getitem__(self, i):
                part = slice(i * self.batch_size, (i + 1) * self.batch_size)
                return self.x[part], self.y[part]
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        if not _is_int(workers) or workers < 0:
            raise ValueError(f"{type(self).__name__}: workers must be an int >= 0. "
                             f"Received: workers={workers!r}")
        if not _is_int(max_queue_size) or max_queue_size < 1:
            raise ValueError(f"{type(self).__name__}: max_queue_size must be an int >= 1. "
                             f"Received: max_queue_size={max_queue_size!r}")
        if use_multiprocessing:
            raise ValueError(f"{type(self).__name__}: use_multiprocessing=True is not "
                             f"supported: minicnn fetches batches on threads; pass "
                             f"workers=n (n > 1) for n threads")
        self.workers, self.use_multiprocessing = int(workers), False
        self.max_queue_size = int(max_queue_size)

    def __getitem__(self, index):
        """Batch ``index``."""
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    @property
    def num_batches(self):
        """The number of batches (``len(self)``); None for an endless data set."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError(f"{type(self).__name__} must define __len__ (or a "
                                  f"num_batches property)")

    def __iter__(self):
        count = self.num_batches
        for index in (range(count) if count is not None else itertools.count()):
            yield self[index]

    def on_epoch_begin(self):
        """Called at the start of every epoch."""

    def on_epoch_end(self):
        """Called at the end of every epoch."""


Sequence = PyDataset  # Keras's older name for it


def _host(x):
    from .backend import _is_cupy_array
    return x.get() if _is_cupy_array(x) else x


def to_categorical(x, num_classes=None):
    """Class indices -> one-hot rows, as ``keras.utils.to_categorical``.

    ``x`` (any shape, array-like of integers; floats are truncated as Keras does) gives
    a float64 array of shape ``x.shape + (num_classes,)``, except that a last axis of
    size 1 is dropped first (labels ``(N, 1)`` give ``(N, num_classes)``; a 1-D ``(1,)``
    input keeps its axis). ``num_classes=None`` (or 0) means ``max(x) + 1``.

    Where Keras's result is an accident, minicnn raises a ValueError instead: a
    negative index (NumPy's indexing would silently set the last class), an index
    ``>= num_classes`` (Keras: a bare IndexError), an empty ``x`` without
    ``num_classes``.
    """
    if num_classes is not None and (not _is_int(num_classes) or num_classes < 0):
        raise ValueError("to_categorical: num_classes must be a positive int (or None to "
                         f"infer it as max(x) + 1). Received: num_classes={num_classes!r}")
    try:
        x = np.array(_host(x), dtype="int64")
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError("to_categorical: x must hold integer class indices. Received: "
                         f"{type(x).__name__} that cannot become int64 ({exc})") from None
    input_shape = x.shape
    # Drop a last axis of size 1: labels (N, 1) -> (N, num_classes).
    if input_shape and input_shape[-1] == 1 and len(input_shape) > 1:
        input_shape = tuple(input_shape[:-1])
    x = x.reshape(-1)
    if not num_classes:
        if x.size == 0:
            raise ValueError("to_categorical: cannot infer num_classes from an empty x; "
                             "pass num_classes")
        num_classes = int(np.max(x)) + 1
    if x.size and (x.min() < 0 or x.max() >= num_classes):
        bad = int(x.min()) if x.min() < 0 else int(x.max())
        raise ValueError(f"to_categorical: class indices must be in 0..{num_classes - 1} "
                         f"(num_classes={num_classes}). Received: {bad}")
    batch_size = x.shape[0]
    categorical = np.zeros((batch_size, num_classes))
    categorical[np.arange(batch_size), x] = 1
    return np.reshape(categorical, input_shape + (num_classes,))


def normalize(x, axis=-1, order=2):
    """``x`` divided by its ``order``-norm along ``axis``, as ``keras.utils.normalize``
    does for NumPy input: a zero norm divides by 1 (zeros stay zeros), integer input
    gives float64, float input keeps its dtype, ``axis=None`` takes NumPy's norm of the
    whole array, and a 1-D ``x`` comes back shaped ``(1, n)`` (Keras's ``atleast_1d``).

    One difference: Keras's NumPy code turns ``axis=0`` into ``-1`` when it puts the
    norm back (``axis or -1``), so ``axis=0`` on a 2-D or larger array divides by the
    wrong norms or fails to broadcast; minicnn normalizes along axis 0 as asked.
    Non-NumPy input (lists, CuPy arrays) is taken as a NumPy array.
    """
    x = np.asarray(_host(x))
    if not (axis is None or _is_int(axis)
            or (isinstance(axis, tuple) and all(_is_int(a) for a in axis))):
        raise TypeError("normalize: axis must be None, an int or a tuple of ints. "
                        f"Received: axis={axis!r}")
    try:
        norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    except (ValueError, TypeError) as exc:
        kind = TypeError if isinstance(exc, TypeError) else ValueError
        raise kind(f"normalize: cannot take the norm of order {order!r} along axis "
                   f"{axis!r} of an array of shape {x.shape} and dtype {x.dtype} "
                   f"({exc})") from None
    norm[norm == 0] = 1
    return x / np.expand_dims(norm, -1 if axis is None else axis)


def __getattr__(name):
    """What ``keras.utils`` has and minicnn does not (plot_model, PyDataset, ...) is an
    AttributeError that says so."""
    from .namespace import not_implemented
    raise not_implemented(__name__, name, __all__ + ["global_rng"])
