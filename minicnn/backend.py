"""Backend state: the float type, the array module and the backend registry.

Every op in ``minicnn.ops`` is written once against an *array module* ``xp``
(NumPy on the CPU, CuPy on a CUDA GPU). ``get_array_module(x)`` picks the module
that owns an array, so the same im2col, pooling and batch-norm code serves both.

A *backend* is a name (``"numpy"``, ``"numba"``, ``"cupy"``, ``"reference"``) that
decides where layers keep their weights and which specialised kernels they call:
``numpy`` runs the array code of ``minicnn.ops`` as written, ``numba`` swaps in the
compiled CPU loops of ``minicnn.kernels.numba_cpu`` where they pay, ``cupy`` runs the
same array code on a CUDA GPU with the CUDA kernels of ``minicnn.kernels.cuda``, and
``reference`` runs every kernel as the plainest Python loop
(``minicnn.kernels.reference``), slow by design, to learn from and compare with.

``kernels_for(*arrays)`` is the one dispatch point: an op hands it its arrays and
gets the kernel set that serves them (numba's for host arrays on the numba backend,
CUDA's for device arrays) or None (use the array code).
"""
import ctypes
import functools
import importlib.util
import sys

import numpy

_FLOATX = "float32"
_ALLOWED_FLOATX = ("float16", "float32", "float64")
# The default CPU backend is numba wherever it is installed: measured on a 2-core
# machine it trains LeNet-5 1.5-1.9x and the AlexNet variant 1.2-1.7x faster than the
# plain NumPy code (benchmarks/bench_lenet5.py, bench_alexnet.py). Without numba, numpy.
# (Chosen from whether numba is installed, without importing it; a numba that is
# installed but cannot import falls back to numpy with a warning.)
_BACKEND = "numba" if importlib.util.find_spec("numba") is not None else "numpy"
_CHECK_NUMERICS = False
_NAME_COUNTS = {}
# im2col matrices are built for a few images at a time, at most this many bytes: small
# enough to stay in the CPU's cache between im2col and the matrix product (measured
# 25-35% faster than one large matrix on the 3x3 and 5x5 AlexNet-sized layers), and a
# bound on memory for any batch size.
DEFAULT_IM2COL_BUDGET = 16 * 2**20
# On a GPU the products want to be large (a cuBLAS call on a few images leaves most
# of the device idle) and there is no cache to fit, only memory: 256 MiB holds a whole
# batch of 128 for AlexNet's 3x3 layers and splits its 11x11 and 5x5 layers in two to
# four, leaving room for the rest of a step on an 8 GiB card.
DEFAULT_DEVICE_IM2COL_BUDGET = 256 * 2**20
_IM2COL_BUDGET = None  # None: the default of the place the arrays live in


# ----------------------------------------------------------------------------
# float type
# ----------------------------------------------------------------------------
def floatx():
    """The default float type of new layers and computations, e.g. ``"float32"``."""
    return _FLOATX


def set_floatx(value):
    """Set the default float type (``"float32"`` or ``"float64"``; float16 is allowed
    but only meant for experiments). Layers built afterwards use it."""
    global _FLOATX
    if isinstance(value, str):
        name = value.lower()
    elif isinstance(value, (numpy.dtype, type)):
        try:
            name = str(numpy.dtype(value))
        except TypeError:
            name = None
    else:
        name = None
    if name not in _ALLOWED_FLOATX:
        raise ValueError(
            f"set_floatx: unknown float type; expected one of {_ALLOWED_FLOATX}. "
            f"Received: {value!r}")
    _FLOATX = name


# ----------------------------------------------------------------------------
# numerics checking (NaN/Inf in data)
# ----------------------------------------------------------------------------
def check_numerics():
    """Whether layers check their inputs for NaN/Inf by default."""
    return _CHECK_NUMERICS


def set_check_numerics(flag):
    """Make every layer whose ``check_numerics`` is None reject NaN/Inf inputs."""
    global _CHECK_NUMERICS
    _CHECK_NUMERICS = bool(flag)


# ----------------------------------------------------------------------------
# memory: how large one im2col matrix may grow
# ----------------------------------------------------------------------------
def im2col_budget(*arrays):
    """Bytes one im2col matrix may take for ``arrays`` (by default 16 MiB for host
    arrays, 256 MiB for device arrays, or what ``set_im2col_budget`` set); larger
    batches are convolved in chunks of images."""
    if _IM2COL_BUDGET is not None:
        return _IM2COL_BUDGET
    on_device = any(_is_cupy_array(a) for a in arrays) if arrays else _BACKEND == "cupy"
    return DEFAULT_DEVICE_IM2COL_BUDGET if on_device else DEFAULT_IM2COL_BUDGET


def set_im2col_budget(num_bytes):
    """Cap the im2col matrix at ``num_bytes`` on every backend (at least one image is
    always done at once); ``None`` restores the defaults (16 MiB on the CPU, 256 MiB
    on a GPU)."""
    global _IM2COL_BUDGET
    if num_bytes is not None and (isinstance(num_bytes, bool)
                                  or not isinstance(num_bytes, (int, numpy.integer))
                                  or num_bytes <= 0):
        raise ValueError(f"set_im2col_budget: expected a positive number of bytes (or None "
                         f"for the defaults). Received: {num_bytes!r}")
    _IM2COL_BUDGET = None if num_bytes is None else int(num_bytes)


# ----------------------------------------------------------------------------
# default names: conv2d, conv2d_1, conv2d_2, ... as in Keras
# ----------------------------------------------------------------------------
def unique_name(base):
    """``base`` the first time, then ``base_1``, ``base_2``, ... until clear_session()."""
    count = _NAME_COUNTS.get(base, 0)
    _NAME_COUNTS[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


def clear_session():
    """Restart default layer and model names from the beginning."""
    _NAME_COUNTS.clear()


# ----------------------------------------------------------------------------
# array modules
# ----------------------------------------------------------------------------
def _is_cupy_array(a):
    # no CuPy imported: no CuPy arrays exist (and importing it here would be slow)
    ndarray = getattr(sys.modules.get("cupy"), "ndarray", None)
    return ndarray is not None and isinstance(a, ndarray)


def get_array_module(*arrays):
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy``.

    Mixing host and device arrays in one op is an error with a message that
    says which is which, instead of CuPy's or NumPy's own confusing one.
    """
    if "cupy" not in sys.modules:  # no CuPy imported: every array is a host array
        return numpy
    kinds = {_is_cupy_array(a) for a in arrays if a is not None and hasattr(a, "shape")}
    if kinds == {True, False}:
        where = ", ".join(
            f"argument {i + 1} {tuple(a.shape)} on the "
            f"{'device (CuPy)' if _is_cupy_array(a) else 'host (NumPy)'}"
            for i, a in enumerate(arrays) if a is not None and hasattr(a, "shape"))
        raise TypeError(
            "minicnn: an operation received both NumPy (host) and CuPy (device) arrays; "
            "move them to one place first (minicnn.backend.to_host or to_device). "
            f"Received: {where}")
    if kinds == {True}:
        import cupy
        return cupy
    return numpy


def xp():
    """The array module of the current backend."""
    if _BACKEND == "cupy":
        import cupy
        return cupy
    return numpy


def as_array(a):
    """``a`` itself if it is already an array (NumPy or CuPy), else ``numpy.asarray(a)``."""
    return a if hasattr(a, "shape") and hasattr(a, "dtype") else numpy.asarray(a)


def to_host(a):
    """A NumPy array with the contents of ``a`` (a no-op for NumPy arrays)."""
    if _is_cupy_array(a):
        return a.get()
    return numpy.asarray(a)


def to_device(a, dtype=None):
    """``a`` as an array of the current backend's module, optionally cast."""
    mod = xp()
    if mod is numpy:
        return numpy.asarray(to_host(a) if _is_cupy_array(a) else a, dtype=dtype)
    return mod.asarray(a if _is_cupy_array(a) else numpy.asarray(a), dtype=dtype)


def on_current_backend(a):
    """Whether array ``a`` lives where the current backend computes (host or device)."""
    return _is_cupy_array(a) == (_BACKEND == "cupy")


# How CUDA says "out of memory" besides CuPy's OutOfMemoryError: cuBLAS workspaces, the
# driver (e.g. loading a kernel module on a full device) and the runtime.
_OUT_OF_MEMORY_TEXTS = ("CUBLAS_STATUS_ALLOC_FAILED", "CUDA_ERROR_OUT_OF_MEMORY",
                        "cudaErrorMemoryAllocation")


def is_out_of_memory(exc):
    """Whether ``exc`` says that the GPU ran out of memory."""
    cupy = sys.modules.get("cupy")
    if cupy is None:
        return False
    oom = getattr(getattr(getattr(cupy, "cuda", None), "memory", None), "OutOfMemoryError", None)
    return (oom is not None and isinstance(exc, oom)) or \
        any(text in str(exc) for text in _OUT_OF_MEMORY_TEXTS)


# ----------------------------------------------------------------------------
# backend registry
# ----------------------------------------------------------------------------
def _driver_facts():
    """``(CUDA version the driver supports, compute capability of device 0)``, e.g.
    ``((13, 0), (9, 0))``, asked of the NVIDIA driver itself (CuPy may be missing);
    None where there is no driver, and None for a capability it cannot tell."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
        version = ctypes.c_int()
        if lib.cuDriverGetVersion(ctypes.byref(version)) != 0:
            return None
    except (OSError, AttributeError):
        return None
    cuda = (version.value // 1000, version.value % 1000 // 10)
    device, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    if (lib.cuInit(0) != 0 or lib.cuDeviceGet(ctypes.byref(device), 0) != 0
            or lib.cuDeviceGetAttribute(ctypes.byref(major), 75, device) != 0    # ..._MAJOR
            or lib.cuDeviceGetAttribute(ctypes.byref(minor), 76, device) != 0):  # ..._MINOR
        return cuda, None
    return cuda, (major.value, minor.value)


# CUDA 13 dropped GPUs below compute capability 7.5 (Volta, Pascal, ...); its drivers
# still run them, so the extra is chosen from the GPU as well as from the driver.
_CUDA13_OLDEST_GPU = (7, 5)


def cupy_install_hint():
    """The pip command that installs the CuPy wheel matching this machine's driver and GPU."""
    facts = _driver_facts()
    if facts is None:
        return ("no NVIDIA driver was found on this machine; with one, install the extra "
                "that matches its CUDA version: pip install 'minicnn[cuda12]' or "
                "'minicnn[cuda13]'")
    (major, minor), capability = facts
    if major >= 13 and capability is not None and capability < _CUDA13_OLDEST_GPU:
        return (f"the driver supports CUDA {major}.{minor}, but CUDA 13 cannot compile for "
                f"this GPU (compute capability {capability[0]}.{capability[1]}): "
                "pip install 'minicnn[cuda12]'")
    extra = "cuda13" if major >= 13 else "cuda12"
    return f"the driver supports CUDA {major}.{minor}: pip install 'minicnn[{extra}]'"


@functools.lru_cache(maxsize=None)
def _kernels_problem(cupy):
    """None when this CuPy compiles minicnn's CUDA kernels for its device, else why not
    (checked once per CuPy module, so a GPU that the CUDA version cannot target is
    refused by set_backend, not in the middle of training)."""
    from .kernels import cuda
    try:
        cuda.compile_all()
    except Exception as exc:
        return (f"CuPy cannot compile minicnn's CUDA kernels for this GPU "
                f"({exc.__class__.__name__}: {str(exc).strip()[:500]}); {cupy_install_hint()}")
    return None


def _cupy_problem():
    """None when CuPy can run here, else a sentence saying what is missing."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken CUDA install
        return (f"CuPy is not installed or does not import ({exc.__class__.__name__}: {exc}); "
                f"{cupy_install_hint()}")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return (f"CuPy imports but no CUDA device can be used ({exc.__class__.__name__}: "
                f"{exc}); check the NVIDIA driver (nvidia-smi) and CUDA_VISIBLE_DEVICES")
    if count < 1:
        return "CuPy imports but no CUDA device is present (CUDA_VISIBLE_DEVICES may hide them)"
    if getattr(cupy.cuda.runtime, "is_hip", False):
        return ("this CuPy is built for AMD GPUs (ROCm); minicnn's kernels are CUDA and need "
                "an NVIDIA GPU")
    return _kernels_problem(cupy)


@functools.lru_cache(maxsize=None)
def _numba_problem():
    """None when numba imports, else why not."""
    try:
        import numba  # noqa: F401
    except Exception as exc:
        return f"numba is not installed or does not import ({exc.__class__.__name__}: {exc})"
    return None


# "reference", the loop backend, runs the kernels (im2col, col2im, pooling, the
# epilogue, Adam) as plain Python loops (minicnn.kernels.reference) and the matrix
# products as NumPy's: always there, slow by design, for learning; available() lists
# the others. (The loop oracle of the tests is another thing: minicnn/reference.py.)
_KNOWN = ("numpy", "numba", "cupy", "reference")
_PROBLEMS = {"numpy": lambda: None, "numba": _numba_problem, "cupy": lambda: _cupy_problem(),
             "reference": lambda: None}


def available():
    """The backends that can run on this machine, e.g. ``["numpy", "numba"]`` (the
    teaching backend ``"reference"`` always runs and is not listed)."""
    return [name for name in _KNOWN[:3] if _PROBLEMS[name]() is None]


def default_backend():
    """The backend minicnn starts with: numba where it can run, else numpy."""
    return "numba" if _numba_problem() is None else "numpy"


_KERNEL_SETS = {}


def _kernel_set(name):
    """The host kernel module of backend ``name``, imported once (an import statement
    in every op's call measured as a third of kernels_for's time)."""
    if name not in _KERNEL_SETS:
        if name == "reference":
            from .kernels import reference as kernels
        else:
            from .kernels import numba_cpu as kernels
        _KERNEL_SETS[name] = kernels
    return _KERNEL_SETS[name]


def kernels_for(*arrays):
    """The kernel set that serves ``arrays``, the one dispatch point of the ops:

    - host (NumPy) arrays on the numba backend: ``minicnn.kernels.numba_cpu``;
    - host arrays on the reference backend: ``minicnn.kernels.reference`` (plain loops);
    - device (CuPy) arrays of float32/float64: ``minicnn.kernels.cuda``;
    - anything else: None, meaning "run the array code of minicnn.ops as written".

    The sets have the same functions with the same arguments, so an op calls
    whichever it gets without asking which it is."""
    if isinstance(arrays[0], numpy.ndarray):
        name = get_backend()
        if name not in ("numba", "reference") or \
                not all(isinstance(a, numpy.ndarray) for a in arrays):
            return None
        return _kernel_set(name)
    if all(_is_cupy_array(a) for a in arrays):
        from .kernels import cuda
        if all(a.dtype in cuda.DTYPES for a in arrays):
            return cuda
    return None


def get_backend():
    """The name of the current backend."""
    global _BACKEND
    if _BACKEND == "numba" and _numba_problem() is not None:
        # The start-up default guessed numba from its presence; it cannot import.
        import warnings
        warnings.warn(f"minicnn: the numba backend cannot load ({_numba_problem()}); "
                      "using numpy")
        _BACKEND = "numpy"
    return _BACKEND


def set_backend(name):
    """Switch the backend used by layers built or run afterwards."""
    global _BACKEND
    key = str(name).lower()
    if key not in _KNOWN:
        raise ValueError(
            f"set_backend: unknown backend; expected one of {list(_KNOWN)}. Received: {name!r}")
    problem = _PROBLEMS[key]()
    if problem is not None:
        raise RuntimeError(f"set_backend({key!r}): {problem}")
    _BACKEND = key
