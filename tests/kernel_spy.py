"""Which kernels of a backend's kernel set ran: a recording stand-in for the set.

Every op asks ``minicnn.backend.kernels_for`` for the kernel set that serves its arrays
(``minicnn.kernels.numba_cpu`` on the numba backend) and calls its functions. A test
that compares the numba backend with numpy proves little if numba's kernels never ran:
the op may have fallen back to the plain array code (float64 where a kernel serves
float32 only, a path rule that declines), and then it compares NumPy with itself.

``spy_kernels("numba")`` puts a ``KernelSpy`` in the backend's place for the set: it
hands out the real set's constants unchanged and its functions wrapped, so each call
is recorded (name and the dtype of its first array argument) before the real kernel
runs. A context manager, not only a fixture, because hypothesis reruns a test's body
without rerunning its fixtures::

    with spy_kernels() as spy:
        layer.forward(x)
    spy.assert_ran({"im2col", "bias_activation"})       # exactly these kernels
    spy.assert_ran({"im2col"}, exact=False)             # at least these
    spy.assert_ran(ARRAY_PATH)                          # none: the plain array code ran
"""
import contextlib
import threading

import numpy as np

import minicnn as mc

# What a set answers about itself (which path suits a layer, how large its buffers are,
# whether to run serially): asked, not run; recorded, but not counted as kernels.
RULES = frozenset({"direct_conv_suits", "winograd_suits", "winograd_bytes_per_image",
                   "serial_only"})

# No kernel of the set ran: the op took the plain array code of minicnn.ops.
ARRAY_PATH = frozenset()

# The kernels each convolution path runs on the numba backend, forward and backward
# with dx (col2im folds the direct path's dX like im2col's).
CONV_PATH_KERNELS = {
    "im2col": frozenset({"im2col", "col2im"}),
    "direct": frozenset({"direct_conv_forward", "direct_conv_weight_gradient", "col2im"}),
    "winograd": frozenset({"winograd_input_transform", "winograd_output_transform",
                           "winograd_gradient_transform", "winograd_input_gradient"}),
}


class KernelSpy:
    """Stands in for a kernel set (a module): attributes pass through, calls are
    recorded in ``calls`` as ``(name, dtype of the first array argument or None)``."""

    def __init__(self, kernels):
        self._kernels = kernels
        self._lock = threading.Lock()  # a split training step calls from two threads
        self.calls = []

    def __getattr__(self, name):
        value = getattr(self._kernels, name)
        if not callable(value) or isinstance(value, type):
            return value

        def recorded(*args, **kwargs):
            dtype = next((a.dtype for a in args if isinstance(a, np.ndarray)), None)
            with self._lock:
                self.calls.append((name, dtype))
            return value(*args, **kwargs)

        recorded.__name__ = name
        return recorded

    @property
    def ran(self):
        """The names of the kernels (not the rules) called so far."""
        return frozenset(name for name, _ in self.calls if name not in RULES)

    def count(self, name):
        return sum(1 for called, _ in self.calls if called == name)

    def dtypes(self, name):
        """The dtypes the kernel ``name`` was called on."""
        return {dtype for called, dtype in self.calls if called == name}

    def reset(self):
        with self._lock:
            self.calls.clear()

    def assert_ran(self, expected, exact=True, absent=()):
        """The kernels called are ``expected`` (``exact``) or include it, and none of
        ``absent``."""
        expected = frozenset(expected)
        ran = self.ran
        what = "the plain array path (no kernel)" if not expected else sorted(expected)
        if exact:
            assert ran == expected, f"expected {what} to run; ran {sorted(ran)}"
        else:
            assert expected <= ran, f"expected {what} to run; ran {sorted(ran)}"
        unwanted = ran & frozenset(absent)
        assert not unwanted, f"{sorted(unwanted)} ran, but must not; ran {sorted(ran)}"

    def assert_conv_path(self, path, exact=False):
        """The convolution path ``path`` ("im2col", "direct", "winograd") ran, by its
        kernels, and neither other path's own kernels did."""
        others = set().union(*(k for p, k in CONV_PATH_KERNELS.items() if p != path))
        self.assert_ran(CONV_PATH_KERNELS[path], exact=exact,
                        absent=others - CONV_PATH_KERNELS[path])


@contextlib.contextmanager
def spy_kernels(backend="numba"):
    """Within: the kernel set of ``backend`` ("numba" or "reference") is a KernelSpy
    that records every call the ops make to it. Nests (an inner spy records the calls
    an outer one sees too)."""
    real = mc.backend._kernel_set(backend)
    spy = KernelSpy(real)
    sets = mc.backend._KERNEL_SETS
    sets[backend] = spy
    try:
        # kernels_for must hand out what we put there, or the spy would record nothing
        # and a test of "the kernels ran" could never fail for the right reason
        assert mc.backend._kernel_set(backend) is spy, \
            "minicnn.backend no longer keeps its kernel sets in _KERNEL_SETS: update kernel_spy"
        yield spy
    finally:
        sets[backend] = real
