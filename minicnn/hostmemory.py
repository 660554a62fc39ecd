"""How freed host memory is kept: the C library's allocator settings for training.

A training step allocates and frees the same large arrays every time (im2col
columns, activations, their gradients: about 7 MB per step for LeNet-5 at batch
128). With glibc's default settings much of that memory goes back to the operating
system when it is freed (the top of the heap is trimmed, large blocks are unmapped)
and comes back on the next step as fresh pages, each paying a page fault on first
touch: measured on a 2-core AMD EPYC, 1,710 page faults per LeNet-5 step, and the
step 1.5x slower than with the memory kept (34 ms against 21-23 ms).

``keep_freed_memory()`` keeps it, as PyTorch's and CuPy's caching allocators do for
their own blocks: blocks up to 32 MiB come from the heap (glibc's largest mmap
threshold) and freed memory at the top of the heap is returned to the system only
beyond 256 MiB. minicnn calls it once when it is imported; the setting is the
process's, so it also applies to whatever else the process allocates. Set the
environment variable ``MINICNN_KEEP_FREED_MEMORY=0`` before importing minicnn to
leave the allocator as it is. Elsewhere than glibc (macOS, musl) it does nothing.
"""
import ctypes
import os
import sys

# mallopt parameter numbers from glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 * 2**20   # the largest value glibc accepts on 64-bit systems
TRIM_THRESHOLD = 256 * 2**20

_applied = None  # None: not tried yet; then True or False


def _glibc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        gnu_get_libc_version = libc.gnu_get_libc_version  # only glibc has it
    except (OSError, AttributeError):
        return None
    gnu_get_libc_version.restype = ctypes.c_char_p
    return libc


def keep_freed_memory():
    """Set glibc's thresholds so that freed training arrays are reused instead of
    returned to the system. Returns True where it took effect (glibc accepted both),
    False where it does not apply. Calling it again changes nothing."""
    global _applied
    if _applied is None:
        libc = _glibc()
        _applied = bool(libc is not None
                        and libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                        and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
    return _applied


def wanted():
    """Whether the environment lets minicnn set the allocator (it does unless
    ``MINICNN_KEEP_FREED_MEMORY`` is ``0``, ``false`` or ``no``)."""
    return os.environ.get("MINICNN_KEEP_FREED_MEMORY", "1").strip().lower() not in (
        "0", "false", "no")
