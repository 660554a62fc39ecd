"""``parallel_when_large``: each parallel numba kernel compiled twice, run in parallel
only when its data is large enough to pay for starting the threads.

Starting a numba parallel loop (workqueue layer) costs far more than a loop over a
small array: a kernel whose iterations do nothing took ~0.2 ms here, and in a
training step each launch follows NumPy and BLAS calls, after which the worker
threads have to be woken again. ``benchmarks/bench_parallel_launch.py`` times both
compilations of LeNet-5's kernels in turns (AMD EPYC, 2 cores; serial time /
parallel time, below 1: one thread is faster):

    batch        128 images   512 images   2048 images
    im2col       0.74         1.01         1.42
    col2im       0.66         0.79         1.13
    avg pool     1.14         1.33         1.32
    max pool     0.85         0.96         1.64
    direct conv  0.83         1.10         1.58

so below about two million values (the largest array a kernel touches: 0.6M-1.9M
at batch 128, 2.4M-7.7M at 512) one thread is faster for most kernels (average
pooling lost 14% there), and a LeNet-5 step with these kernels serial took 0.94x the
time (interleaved runs, batch 128).

The serial twin is the same Python source compiled without ``parallel``, where
``prange`` is a plain range: the same loops in the same order, so both give the same
bits (except where a kernel lets LLVM reassociate a sum, the direct convolution's
weight gradient: there the two compilations may round differently). Which one runs
depends on the array sizes alone, never on the number of cores.
"""
import contextlib
import functools
import types

import numpy as np
from numba import njit

PARALLEL_MIN_VALUES = 2 * 2**20
# set while a training step runs its halves on two threads (minicnn.split_step): numba's
# workqueue threads must not be started from two threads at once, and the cores are
# taken already
_SERIAL_ONLY = [0]


def _serial_twin(fn):
    """A copy of ``fn`` under its own name, so numba's disk cache keeps the two
    compilations apart."""
    twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial",
                              fn.__defaults__, fn.__closure__)
    twin.__qualname__ = fn.__qualname__ + "_serial"
    twin.__module__ = fn.__module__
    twin.__doc__ = fn.__doc__
    return twin


def parallel_when_large(fn):
    """Decorator: ``fn`` compiled with ``parallel=True`` and without; each call runs
    the parallel one only when its largest array argument has PARALLEL_MIN_VALUES
    values or more, and not inside ``serial_only()`` (``.parallel`` and ``.serial``
    are the two compiled kernels). Both release the GIL (``nogil``), so threads can
    run the serial ones side by side."""
    @functools.wraps(fn)
    def run(*args):
        largest = max(a.size for a in args if isinstance(a, np.ndarray))
        parallel = largest >= PARALLEL_MIN_VALUES and not _SERIAL_ONLY[0]
        return (run.parallel if parallel else run.serial)(*args)

    run.parallel = njit(parallel=True, cache=True, nogil=True)(fn)
    run.serial = njit(cache=True, nogil=True)(_serial_twin(fn))
    return run


@contextlib.contextmanager
def serial_only():
    """Within: every kernel runs its serial compilation."""
    _SERIAL_ONLY[0] += 1
    try:
        yield
    finally:
        _SERIAL_ONLY[0] -= 1
