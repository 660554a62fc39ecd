"""A strict stand-in for CuPy, so the ``cupy`` code path of minicnn runs in CI without a GPU.

``install()`` registers it as ``sys.modules["cupy"]``; the pytest fixture ``cupy_standin``
does so for one test (or hands out the real CuPy where a GPU can run it). Its ``ndarray``
wraps a private NumPy array but behaves like device memory:

* it never turns into a NumPy array by itself: ``numpy.asarray(a)``, ``numpy.add(a, 1)``,
  ``numpy.sum(a)`` raise TypeError. The ways to the host are ``a.get()``,
  ``cupy.asnumpy(a)`` and ``float()/int()/bool()/repr()`` of an array, each counted in
  ``cupy.transfers["device_to_host"]``;
* it never takes a NumPy array as an operand (``a + host``, ``a[...] = host``,
  ``cupy.maximum(a, host)``): on a GPU that is an error or a hidden copy. Python and NumPy
  *scalars* are fine, as in CuPy. Host data comes in through ``cupy.asarray``,
  ``cupy.array`` and ``a.set`` (counted in ``cupy.transfers["host_to_device"]``);
* the module has only names real CuPy has, with CuPy's signatures; anything else is an
  AttributeError, so code that passes here does not fail on a GPU for want of a function.

It is stricter than CuPy on purpose where CuPy would hide a host computation, a copy or
a wrong read: CuPy dispatches ``numpy.sum(a)`` to ``cupy.sum`` and accepts
``cupy.sum(host)``, ``a[...] = host_0d``, Python ints as kernel arguments (as long long,
whatever the kernel declares) and non-contiguous arrays in raw kernels.

``get_default_memory_pool().set_limit(size=...)`` makes allocations past the limit raise
``cupy.cuda.memory.OutOfMemoryError``, to test what the library does on a full device.
``RawModule``/``RawKernel`` run CUDA source with ``minicnn.kernels.cuda.emulation``.
"""
import ast
import functools
import importlib.machinery
import importlib.util
import inspect
import math
import operator
import re
import sys
import types
import weakref

import numpy
import pytest

STANDIN_EXTRAS = ("transfers",)  # the test hooks: names real CuPy does not have
_DEVICE_BYTES = 16 * 2**30  # memory of the pretend device (memGetInfo, set_limit(fraction))
_PY_SCALARS = (bool, int, float, complex)


# ----------------------------------------------------------------------------------
# bookkeeping: copies between host and device, device memory
# ----------------------------------------------------------------------------------
class _Transfers(dict):
    """``{"host_to_device": n, "device_to_host": m}``; ``log`` holds a
    ``(direction, shape, dtype)`` per copy; ``reset()`` starts again."""

    def __init__(self):
        super().__init__(host_to_device=0, device_to_host=0)
        self.log = []

    def reset(self):
        self.update(host_to_device=0, device_to_host=0)
        self.log.clear()

    def _record(self, direction, array):
        self[direction] += 1
        self.log.append((direction, array.shape, str(array.dtype)))


transfers = _Transfers()


class CUDARuntimeError(RuntimeError):
    _NAMES = {2: "cudaErrorMemoryAllocation: out of memory",
              100: "cudaErrorNoDevice: no CUDA-capable device is detected",
              101: "cudaErrorInvalidDevice: invalid device ordinal"}

    def __init__(self, status):
        self.status = status
        super().__init__(self._NAMES.get(status, "cudaErrorUnknown: unknown error"))


class CUDADriverError(RuntimeError):
    _NAMES = {1: "CUDA_ERROR_INVALID_VALUE: invalid argument",
              500: "CUDA_ERROR_NOT_FOUND: named symbol not found"}

    def __init__(self, status):
        self.status = status
        super().__init__(self._NAMES.get(status, "CUDA_ERROR_UNKNOWN: unknown error"))


class OutOfMemoryError(MemoryError):
    """CuPy's error, with CuPy's constructor and message."""
    __module__ = "cupy.cuda.memory"

    def __init__(self, size, total, limit=0):
        self._size, self._total, self._limit = size, total, limit
        if limit == 0:
            msg = f"Out of memory allocating {size:,} bytes"
            if total != -1:
                msg += f" (allocated so far: {total:,} bytes)."
        else:
            msg = (f"Out of memory allocating {size:,} bytes (allocated so far: {total:,} "
                   f"bytes, limit set to: {limit:,} bytes).")
        super().__init__(msg)


class MemoryPool:
    """Counts the bytes of the live NumPy buffers behind stand-in arrays (a view counts
    with its base); a buffer's bytes are released when it is garbage-collected."""
    __module__ = "cupy.cuda.memory"

    def __init__(self):
        self._live = {}  # id(buffer) -> bytes
        self._used = 0
        self._limit = 0

    def used_bytes(self):
        return self._used

    def total_bytes(self):  # freed blocks are not kept for reuse
        return self._used

    def free_all_blocks(self, stream=None):
        pass

    def set_limit(self, size=None, fraction=None):
        if size is not None and fraction is not None:
            raise ValueError("size and fraction cannot be specified at one time")
        if fraction is not None:
            if not 0 <= fraction <= 1:
                raise ValueError(f"memory limit fraction out of range: {fraction}")
            size = fraction * _DEVICE_BYTES
        if size is not None and size < 0:
            raise ValueError(f"memory limit size out of range: {size}")
        self._limit = int(size or 0)  # 0: no limit

    def get_limit(self):
        return self._limit

    def _reserve(self, nbytes):
        """Raise OutOfMemoryError if ``nbytes`` more do not fit under the limit."""
        if self._limit and self._used + nbytes > self._limit:
            raise OutOfMemoryError(nbytes, self._used, self._limit)

    def _track(self, buffer):
        root = buffer  # the array that owns the memory
        while True:
            base = root.base  # an array, or for broadcast views a holder of one
            base = base if isinstance(base, numpy.ndarray) else getattr(base, "base", None)
            if not isinstance(base, numpy.ndarray):
                break
            root = base
        key = id(root)
        if key not in self._live:
            self._reserve(root.nbytes)
            self._live[key] = root.nbytes
            self._used += root.nbytes
            weakref.finalize(root, self._release, key).atexit = False

    def _release(self, key):
        self._used -= self._live.pop(key)


_pool = MemoryPool()


def get_default_memory_pool():
    return _pool


# ----------------------------------------------------------------------------------
# what may enter a device operation
# ----------------------------------------------------------------------------------
def _host_array_error(what, value):
    return TypeError(
        f"{what}: a numpy.ndarray {value.shape} (host memory) cannot meet a cupy.ndarray "
        "(device memory) in a device operation; copy it with cupy.asarray() first. "
        f"Unsupported type {type(value)}")


def _operand(x, what):
    """The NumPy value behind an operand: a stand-in array's buffer, or a Python or
    NumPy scalar (CuPy passes those to its kernels by value)."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, (_PY_SCALARS, numpy.generic)):
        return x
    if isinstance(x, numpy.ndarray):
        raise _host_array_error(what, x)
    raise TypeError(f"{what}: Unsupported type {type(x)}")


def _array_arg(a, what):
    """The buffer of an argument that must be a device array. (CuPy functions given a
    NumPy array here would compute on the host or copy it silently.)"""
    if isinstance(a, ndarray):
        return a._a
    if isinstance(a, numpy.ndarray):
        raise _host_array_error(what, a)
    raise TypeError(f"{what}: expected a cupy.ndarray. Received: {type(a)}")


def _out(out, what):
    return None if out is None else _array_arg(out, f"{what} (out=)")


def _wrap(value):
    """A NumPy result as a stand-in array (NumPy scalars become 0-d arrays, as in CuPy)."""
    return ndarray._from_buffer(numpy.asarray(value))


def _result(value, out, what=None):
    """``value`` as a new array, or in ``out`` (where NumPy has not written it already)."""
    if out is None:
        return _wrap(value)
    if what is not None:
        _out(out, what)[...] = value
    return out


def _to_host(a):
    transfers._record("device_to_host", a._a)
    return a._a.copy()


def _check_dtype(dtype):
    dtype = numpy.dtype(dtype)
    if dtype.kind not in "biufc" or dtype in (numpy.longdouble, numpy.clongdouble):
        raise ValueError(f"Unsupported dtype {dtype}")
    return dtype


def _allocate(shape, dtype, order, make):
    """A new array ``make(shape, dtype, order)``, refused before any memory is taken
    when it does not fit under the pool's limit."""
    dtype = _check_dtype(dtype)
    shape = (shape,) if isinstance(shape, (int, numpy.integer)) else tuple(shape)
    nbytes = math.prod(shape) * dtype.itemsize
    _pool._reserve(nbytes)
    try:
        return ndarray._from_buffer(make(shape, dtype, order))
    except MemoryError:
        raise OutOfMemoryError(nbytes, _pool.used_bytes(), _pool.get_limit()) from None


# ----------------------------------------------------------------------------------
# the device array
# ----------------------------------------------------------------------------------
class _Flags:
    def __init__(self, a):
        self.c_contiguous = bool(a.flags.c_contiguous)
        self.f_contiguous = bool(a.flags.f_contiguous)
        self.owndata = a.base is None

    def __getitem__(self, name):
        return getattr(self, name.lower())


class _MemoryPointer:
    def __init__(self, ptr):
        self.ptr, self.device_id = ptr, 0


def _operators(op, symbol):
    """``a <op> x``, ``x <op> a`` and ``a <op>= x`` for a stand-in array ``a``."""
    def forward(self, other):
        return _wrap(op(self._a, _operand(other, f"cupy.ndarray {symbol} x")))

    def reflected(self, other):
        return _wrap(op(_operand(other, f"x {symbol} cupy.ndarray"), self._a))

    def inplace(self, other):  # NumPy's in-place operator on the buffer: operator.iadd, ...
        in_place_op = getattr(operator, "i" + op.__name__.rstrip("_"))
        in_place_op(self._a, _operand(other, f"cupy.ndarray {symbol}= x"))
        return self
    return forward, reflected, inplace


class ndarray:
    """A device array: a private NumPy buffer that leaves only through a counted copy."""
    __module__ = "cupy"
    __slots__ = ("_a",)  # like CuPy's extension type: no attributes can be added
    # NumPy then defers its operators to ours (``numpy.float32(2) * a`` works) and
    # refuses ufuncs: ``numpy.exp(a)`` in device code is a bug, even where CuPy would
    # dispatch it; the library calls ``xp.exp``.
    __array_ufunc__ = None

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is not None or strides is not None:
            raise NotImplementedError("the CuPy stand-in does not wrap raw device memory")
        self._a = _allocate(shape, dtype, order, numpy.empty)._a

    @classmethod
    def _from_buffer(cls, buffer):
        _pool._track(buffer)
        self = object.__new__(cls)
        self._a = buffer
        return self

    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(f"numpy.{func.__name__} was called with a cupy.ndarray: device code "
                        f"calls the array module (xp.{func.__name__}); .get() copies to the host")

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: _Flags(self._a))
    data = property(lambda self: _MemoryPointer(self._a.__array_interface__["data"][0]))
    device = property(lambda self: Device(0))
    T = property(lambda self: _wrap(self._a.T))

    # -- copies between host and device (counted) ------------------------------------
    def get(self, stream=None, order="C", out=None, blocking=True):
        if out is None:
            return numpy.asarray(_to_host(self), order=order)
        if not isinstance(out, numpy.ndarray):
            raise TypeError("Only numpy.ndarray can be obtained from cupy.ndarray")
        if out.shape != self.shape or out.dtype != self.dtype:
            raise ValueError(f"Shape or dtype mismatch: {out.shape} {out.dtype}, "
                             f"array {self.shape} {self.dtype}")
        out[...] = _to_host(self)
        return out

    def set(self, arr, stream=None):
        if not isinstance(arr, numpy.ndarray):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        if arr.dtype != self.dtype:
            raise TypeError(f"{arr.dtype} array cannot be set to {self.dtype} array")
        if arr.shape != self.shape:
            raise ValueError(f"Shape mismatch. Old shape: {self.shape}, new shape: {arr.shape}")
        transfers._record("host_to_device", arr)
        self._a[...] = arr

    def item(self):
        return _to_host(self).item()

    def tolist(self):
        return _to_host(self).tolist()

    # Conversions to Python copy to the host, as CuPy's do (NumPy's rules decide which
    # shapes convert); so do repr and str.
    def __bool__(self):
        return bool(_to_host(self))

    def __int__(self):
        return int(_to_host(self))

    def __float__(self):
        return float(_to_host(self))

    def __repr__(self):
        return repr(_to_host(self))

    def __str__(self):
        return str(_to_host(self))

    def __format__(self, spec):
        return format(_to_host(self), spec)

    def __reduce__(self):  # pickle goes through the host, like CuPy's
        return array, (self.get(),)

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    # -- shape and type ----------------------------------------------------------------
    def reshape(self, *shape, order="C"):
        return _wrap(self._a.reshape(*shape, order=order))

    def transpose(self, *axes):
        return _wrap(self._a.transpose(*axes))

    def squeeze(self, axis=None):
        return _wrap(self._a.squeeze(axis))

    def ravel(self, order="C"):
        return _wrap(self._a.ravel(order))

    def view(self, dtype=None, type=None):
        return _wrap(self._a.view() if dtype is None else self._a.view(dtype))

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        dtype = _check_dtype(dtype)
        if not copy and dtype == self.dtype:
            return self
        return _wrap(self._a.astype(dtype, order=order, casting=casting or "unsafe"))

    def copy(self, order="C"):
        return _wrap(self._a.copy(order))

    def fill(self, value):
        value = _operand(value, "cupy.ndarray.fill")
        if numpy.ndim(value) != 0:
            raise ValueError("non-scalar cupy.ndarray cannot be used for fill")
        self._a.fill(value)

    # -- reductions and friends ---------------------------------------------------------
    def sum(self, axis=None, dtype=None, out=None, keepdims=False):
        sums = self._a.sum(axis, dtype=dtype, out=_out(out, "sum"), keepdims=keepdims)
        return _result(sums, out)

    def prod(self, axis=None, dtype=None, out=None, keepdims=False):
        products = self._a.prod(axis, dtype=dtype, out=_out(out, "prod"), keepdims=keepdims)
        return _result(products, out)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False):
        means = self._a.mean(axis, dtype=dtype, out=_out(out, "mean"), keepdims=keepdims)
        return _result(means, out)

    def max(self, axis=None, out=None, keepdims=False):
        return _result(self._a.max(axis, out=_out(out, "max"), keepdims=keepdims), out)

    def min(self, axis=None, out=None, keepdims=False):
        return _result(self._a.min(axis, out=_out(out, "min"), keepdims=keepdims), out)

    def argmax(self, axis=None, out=None, dtype=None, keepdims=False):
        index = self._a.argmax(axis, keepdims=keepdims)
        return _result(index.astype(dtype or index.dtype), out, "argmax")

    def argmin(self, axis=None, out=None, dtype=None, keepdims=False):
        index = self._a.argmin(axis, keepdims=keepdims)
        return _result(index.astype(dtype or index.dtype), out, "argmin")

    def all(self, axis=None, out=None, keepdims=False):
        return _result(self._a.all(axis, out=_out(out, "all"), keepdims=keepdims), out)

    def any(self, axis=None, out=None, keepdims=False):
        return _result(self._a.any(axis, out=_out(out, "any"), keepdims=keepdims), out)

    def clip(self, min=None, max=None, out=None):
        low, high = (None if v is None else _operand(v, "clip") for v in (min, max))
        return _result(self._a.clip(low, high, out=_out(out, "clip")), out)

    def round(self, decimals=0, out=None):
        return _result(self._a.round(decimals, out=_out(out, "round")), out)

    def dot(self, b, out=None):
        return _result(self._a.dot(_array_arg(b, "cupy.ndarray.dot"), out=_out(out, "dot")), out)

    # -- indexing ---------------------------------------------------------------------
    def __getitem__(self, key):
        return _wrap(self._a[_index(key)])

    def __setitem__(self, key, value):
        self._a[_index(key)] = _operand(value, "cupy.ndarray[...] = value")

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of unsized object")
        return len(self._a)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self)))

    # -- operators: every operand passes _operand ---------------------------------------
    __add__, __radd__, __iadd__ = _operators(operator.add, "+")
    __sub__, __rsub__, __isub__ = _operators(operator.sub, "-")
    __mul__, __rmul__, __imul__ = _operators(operator.mul, "*")
    __truediv__, __rtruediv__, __itruediv__ = _operators(operator.truediv, "/")
    __floordiv__, __rfloordiv__, __ifloordiv__ = _operators(operator.floordiv, "//")
    __mod__, __rmod__, __imod__ = _operators(operator.mod, "%")
    __pow__, __rpow__, __ipow__ = _operators(operator.pow, "**")
    __and__, __rand__, __iand__ = _operators(operator.and_, "&")
    __or__, __ror__, __ior__ = _operators(operator.or_, "|")
    __xor__, __rxor__, __ixor__ = _operators(operator.xor, "^")
    __lshift__, __rlshift__, __ilshift__ = _operators(operator.lshift, "<<")
    __rshift__, __rrshift__, __irshift__ = _operators(operator.rshift, ">>")
    __matmul__, __rmatmul__, _ = _operators(operator.matmul, "@")  # CuPy has no @=
    # Python reflects comparisons itself (``host < a`` tries ``a > host``).
    __lt__ = _operators(operator.lt, "<")[0]
    __le__ = _operators(operator.le, "<=")[0]
    __gt__ = _operators(operator.gt, ">")[0]
    __ge__ = _operators(operator.ge, ">=")[0]
    __eq__ = _operators(operator.eq, "==")[0]
    __ne__ = _operators(operator.ne, "!=")[0]
    __hash__ = None
    __neg__ = lambda self: _wrap(-self._a)  # noqa: E731
    __pos__ = lambda self: _wrap(+self._a)  # noqa: E731
    __abs__ = lambda self: _wrap(abs(self._a))  # noqa: E731
    __invert__ = lambda self: _wrap(~self._a)  # noqa: E731


del ndarray._


def _index(key):
    """An index for the buffer: stand-in arrays by their buffer; NumPy arrays and lists
    are accepted as CuPy does, by copying them to the device (counted)."""
    if isinstance(key, tuple):
        return tuple(_index(k) for k in key)
    if isinstance(key, ndarray):
        return key._a
    if isinstance(key, (numpy.ndarray, list)):
        key = numpy.asarray(key)
        transfers._record("host_to_device", key)
    return key


# ----------------------------------------------------------------------------------
# module functions, registered into the stand-in under CuPy's names
# ----------------------------------------------------------------------------------
_API = {}


def _api(fn=None, *, name=None):
    def register(f):
        f.__name__ = f.__qualname__ = name or f.__name__
        f.__module__ = "cupy"
        _API[f.__name__] = f
        return f
    return register(fn) if fn is not None else register


class ufunc:
    """An element-wise function: NumPy's, on the buffers of the operands."""
    __module__ = "cupy"

    def __init__(self, name):
        self.__name__, self._f = name, getattr(numpy, name)
        self.nin, self.nout = self._f.nin, self._f.nout

    def __call__(self, *args, out=None, dtype=None, casting="same_kind"):
        if len(args) != self.nin:
            raise TypeError(f"Wrong number of arguments for {self.__name__!r}")
        inputs = [_operand(x, f"cupy.{self.__name__}") for x in args]
        return _result(self._f(*inputs, out=_out(out, f"cupy.{self.__name__}"), dtype=dtype,
                               casting=casting), out)

    def __repr__(self):
        return f"<ufunc '{self.__name__}'>"


for _name in ("add subtract multiply divide true_divide floor_divide power remainder "
              "negative absolute sign maximum minimum fmax fmin exp expm1 exp2 log log1p log2 "
              "log10 logaddexp sqrt square reciprocal tanh sinh cosh sin cos tan arctan "
              "floor ceil trunc rint isfinite isnan isinf equal not_equal less less_equal "
              "greater greater_equal logical_and logical_or logical_not logical_xor "
              "bitwise_and bitwise_or bitwise_xor invert signbit copysign").split():
    _API[_name] = ufunc(_name)
_API["abs"] = _API["absolute"]

# cupy.<name>(a, ...) that are the method of a device array: CuPy's parameters after ``a``.
_FROM_METHODS = {
    "sum": ("sum", "axis=None dtype=None out=None keepdims=False"),
    "prod": ("prod", "axis=None dtype=None out=None keepdims=False"),
    "mean": ("mean", "axis=None dtype=None out=None keepdims=False"),
    "amax": ("max", "axis=None out=None keepdims=False"),
    "amin": ("min", "axis=None out=None keepdims=False"),
    "max": ("max", "axis=None out=None keepdims=False"),
    "min": ("min", "axis=None out=None keepdims=False"),
    "argmax": ("argmax", "axis=None dtype=None out=None keepdims=False"),
    "argmin": ("argmin", "axis=None dtype=None out=None keepdims=False"),
    "all": ("all", "axis=None out=None keepdims=False"),
    "any": ("any", "axis=None out=None keepdims=False"),
    "round": ("round", "decimals=0 out=None"),
    "around": ("round", "decimals=0 out=None"),
    "dot": ("dot", "b out=None"),
    "squeeze": ("squeeze", "axis=None"),
    "ravel": ("ravel", "order='C'"),
}


def _from_method(name, method, params):
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    signature = inspect.Signature([inspect.Parameter("a", kind)] + [
        inspect.Parameter(p, kind, **({"default": ast.literal_eval(d[0])} if d else {}))
        for p, *d in (item.split("=") for item in params.split())])

    def function(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        a = bound.arguments.pop("a")
        _array_arg(a, f"cupy.{name}")
        return getattr(a, method)(**bound.arguments)
    function.__signature__ = signature
    return _api(function, name=name)


for _name, (_method, _params) in _FROM_METHODS.items():
    _from_method(_name, _method, _params)


@_api
def asarray(a, dtype=None, order=None, *, copy=None, blocking=False):
    if isinstance(a, ndarray):  # no copy unless needed: the same array, as in CuPy
        out = numpy.asarray(a._a, dtype=dtype, order=order, copy=copy)
        return a if out is a._a else _wrap(out)
    if copy is False:
        raise ValueError("host data cannot be used on the device without a copy")
    return array(a, dtype=dtype, order=order or "K")


@_api
def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    if isinstance(obj, ndarray):
        return _wrap(numpy.array(obj._a, dtype=dtype, copy=copy, order=order, ndmin=ndmin))
    host = numpy.array(obj, dtype=dtype, order=order, ndmin=ndmin)  # a copy, to upload
    _check_dtype(host.dtype)
    _pool._reserve(host.nbytes)
    transfers._record("host_to_device", host)
    return _wrap(host)


@_api
def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    if isinstance(a, ndarray):
        return a.get(stream, order, out, blocking)
    if out is None:  # host data stays where it is, as in CuPy
        return numpy.asarray(a, order=order)
    out[...] = a
    return out


@_api
def get_array_module(*args):
    return _MODULE if any(isinstance(a, ndarray) for a in args) else numpy


@_api
def empty(shape, dtype=float, order="C"):
    return _allocate(shape, dtype, order, numpy.empty)


@_api
def zeros(shape, dtype=float, order="C"):
    return _allocate(shape, dtype, order, numpy.zeros)


@_api
def ones(shape, dtype=float, order="C"):
    return _allocate(shape, dtype, order, numpy.ones)


@_api
def full(shape, fill_value, dtype=None, order="C"):
    value = _operand(fill_value, "cupy.full")
    dtype = numpy.result_type(value) if dtype is None else dtype
    return _allocate(shape, dtype, order, lambda s, d, o: numpy.full(s, value, d, o))


def _like(make, a, dtype, order, shape, what):
    a = _array_arg(a, what)
    if order in ("K", "A"):  # the prototype's layout
        order = "F" if a.flags.f_contiguous and not a.flags.c_contiguous else "C"
    return _allocate(a.shape if shape is None else shape, dtype or a.dtype, order, make)


@_api
def empty_like(prototype, dtype=None, order="K", subok=None, shape=None):
    return _like(numpy.empty, prototype, dtype, order, shape, "cupy.empty_like")


@_api
def zeros_like(a, dtype=None, order="K", subok=None, shape=None):
    return _like(numpy.zeros, a, dtype, order, shape, "cupy.zeros_like")


@_api
def ones_like(a, dtype=None, order="K", subok=None, shape=None):
    return _like(numpy.ones, a, dtype, order, shape, "cupy.ones_like")


@_api
def full_like(a, fill_value, dtype=None, order="K", subok=None, shape=None):
    value = _operand(fill_value, "cupy.full_like")
    return _like(lambda s, d, o: numpy.full(s, value, d, o), a, dtype, order, shape,
                 "cupy.full_like")


@_api
def arange(start, stop=None, step=1, dtype=None):
    bounds = [None if v is None else _operand(v, "cupy.arange") for v in (start, stop, step)]
    return _wrap(numpy.arange(*bounds, dtype=dtype))


@_api
def pad(array, pad_width, mode="constant", **kwargs):
    return _wrap(numpy.pad(_array_arg(array, "cupy.pad"), pad_width, mode, **kwargs))


@_api
def concatenate(tup, axis=0, out=None, *, dtype=None, casting="same_kind"):
    parts = [_array_arg(a, "cupy.concatenate") for a in tup]
    return _result(numpy.concatenate(parts, axis, _out(out, "cupy.concatenate"), dtype=dtype,
                                     casting=casting), out)


@_api
def stack(tup, axis=0, out=None, *, dtype=None, casting="same_kind"):
    parts = [_array_arg(a, "cupy.stack") for a in tup]
    return _result(numpy.stack(parts, axis, _out(out, "cupy.stack"), dtype=dtype,
                               casting=casting), out)


@_api
def where(condition, x=None, y=None):
    if (x is None) != (y is None):
        raise ValueError("Must give either both or neither of x and y")
    condition = _array_arg(condition, "cupy.where")
    if x is None:
        return tuple(_wrap(i) for i in numpy.nonzero(condition))
    return _wrap(numpy.where(condition, _operand(x, "cupy.where"), _operand(y, "cupy.where")))


@_api
def clip(a, a_min, a_max, out=None):
    _array_arg(a, "cupy.clip")
    return a.clip(a_min, a_max, out)


@_api
def take_along_axis(a, indices, axis):
    return _wrap(numpy.take_along_axis(_array_arg(a, "cupy.take_along_axis"),
                                       _array_arg(indices, "cupy.take_along_axis"), axis))


@_api
def broadcast_to(array, shape):
    return _wrap(numpy.broadcast_to(_array_arg(array, "cupy.broadcast_to"), shape))


@_api
def moveaxis(a, source, destination):
    return _wrap(numpy.moveaxis(_array_arg(a, "cupy.moveaxis"), source, destination))


@_api
def ascontiguousarray(a, dtype=None):
    buffer = _array_arg(a, "cupy.ascontiguousarray")
    out = numpy.ascontiguousarray(buffer, dtype=dtype)
    return a if out is buffer else _wrap(out.reshape(buffer.shape))  # 0-d stays 0-d


@_api
def tile(A, reps):
    return _wrap(numpy.tile(_array_arg(A, "cupy.tile"), reps))


@_api
def matmul(*args, axes=None, axis=None, keepdims=False, casting="same_kind", dtype=None,
           signature=None, order="K", out=None):
    if len(args) != 2:
        raise TypeError(f"matmul takes 2 arrays. Received: {len(args)}")
    x1, x2 = (_array_arg(x, "cupy.matmul") for x in args)
    optional = {k: v for k, v in dict(axes=axes, axis=axis, signature=signature,
                                      keepdims=keepdims or None).items() if v is not None}
    return _result(numpy.matmul(x1, x2, out=_out(out, "cupy.matmul"), casting=casting,
                                dtype=dtype, order=order, **optional), out)


@_api
def einsum(*operands, **kwargs):
    subscripts, arrays = operands[0], [_array_arg(a, "cupy.einsum") for a in operands[1:]]
    return _wrap(numpy.einsum(subscripts, *arrays, **kwargs))


@_api
def reshape(a, newshape, order="C", *, copy=None):
    _array_arg(a, "cupy.reshape")
    return a.reshape(newshape, order=order)


@_api
def transpose(a, axes=None):
    return _wrap(numpy.transpose(_array_arg(a, "cupy.transpose"), axes))


@_api
def expand_dims(a, axis):
    return _wrap(numpy.expand_dims(_array_arg(a, "cupy.expand_dims"), axis))


@_api
def is_available():
    return True


_API["get_default_memory_pool"] = get_default_memory_pool


# ----------------------------------------------------------------------------------
# cupy.cuda: one device, the null stream
# ----------------------------------------------------------------------------------
def _check_device(device_id):
    if device_id != 0:
        raise CUDARuntimeError(101)


class Device:
    __module__ = "cupy.cuda.device"

    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)

    def use(self):
        _check_device(self.id)
        return self

    def synchronize(self):
        _check_device(self.id)

    @property
    def mem_info(self):
        _check_device(self.id)
        total = _pool.get_limit() or _DEVICE_BYTES
        return max(total - _pool.used_bytes(), 0), total

    __enter__ = use
    __exit__ = lambda self, *exc: None  # noqa: E731
    __int__ = lambda self: self.id  # noqa: E731
    __repr__ = lambda self: f"<CUDA Device {self.id}>"  # noqa: E731


def get_device_id():
    return 0


class Stream:
    __module__ = "cupy.cuda.stream"
    null = None  # the default stream, set below

    def __init__(self, null=False, non_blocking=False, ptds=False):
        self.ptr = 0 if null else id(self)

    def synchronize(self):
        pass

    def use(self):
        return self

    __enter__ = use
    __exit__ = lambda self, *exc: None  # noqa: E731


Stream.null = Stream(null=True)


def get_current_stream(device_id=-1):
    return Stream.null


_RUNTIME = {"getDeviceCount": lambda: 1, "getDevice": lambda: 0,
            "setDevice": lambda device: _check_device(int(device)),
            "deviceSynchronize": lambda: None, "memGetInfo": lambda: Device(0).mem_info,
            "CUDARuntimeError": CUDARuntimeError, "is_hip": False}


# ----------------------------------------------------------------------------------
# raw kernels, run by the CPU emulation of CUDA
# ----------------------------------------------------------------------------------
def _launch_dims(value, what, limits, total_limit):
    """A grid or block as three sizes. CuPy types them as tuples (an int is a
    TypeError there) and raises sizes below 1 to 1; sizes a GPU refuses are refused
    here too (CUDA_ERROR_INVALID_VALUE) instead of being run."""
    if not isinstance(value, tuple):
        raise TypeError(f"Argument '{what}' has incorrect type (expected tuple, got "
                        f"{type(value).__name__})")
    if not 1 <= len(value) <= 3:  # CuPy would ignore entries past the third
        raise ValueError(f"{what} must have 1 to 3 entries. Received: {value!r}")
    dims = tuple(max(1, operator.index(d)) for d in value + (1, 1))[:3]
    if any(d > limit for d, limit in zip(dims, limits)) or math.prod(dims) > total_limit:
        err = CUDADriverError(1)
        err.add_note(f"{what} {dims}: a CUDA {what} has at most {limits}"
                     + (f" and {total_limit} threads in all" if what == "block" else ""))
        raise err
    return dims


def _kernel_arg(name, i, value):
    """The buffer or scalar the kernel gets for one argument."""
    if isinstance(value, ndarray):
        if not value._a.flags.c_contiguous:  # the kernel would read it as C-ordered
            raise TypeError(f"kernel {name}: argument {i} is a cupy.ndarray that is not "
                            f"C-contiguous (strides {value.strides}); pass "
                            "cupy.ascontiguousarray(x)")
        return value._a  # the array's own buffer, so the kernel's writes land in it
    if isinstance(value, numpy.ndarray):
        raise TypeError(f"kernel {name}: argument {i} is a numpy.ndarray (host memory); a "
                        "device kernel needs a cupy.ndarray")
    if isinstance(value, numpy.generic):
        return value
    if isinstance(value, _PY_SCALARS):
        # CuPy passes an int as long long and a float as double whatever the kernel
        # declares: wrong bytes for an int or float parameter.
        raise TypeError(f"kernel {name}: argument {i} is a Python {type(value).__name__}; "
                        "pass a NumPy scalar of the parameter's exact type (numpy.int32, ...)")
    raise TypeError(f"kernel {name}: argument {i}: Unsupported type {type(value)}")


def _emulation_module(code, name_expressions):
    from minicnn.kernels.cuda import emulation
    return emulation.Module(code, list(name_expressions))


def _not_found(note):
    err = CUDADriverError(500)
    err.add_note(note)
    return err


class RawKernel:
    __module__ = "cupy"

    def __init__(self, code, name, options=(), backend="nvrtc", *, translate_cucomplex=False,
                 enable_cooperative_groups=False, jitify=None):
        if not isinstance(code, str) or not isinstance(name, str):
            raise TypeError("code and name must be str")
        if not isinstance(options, tuple):
            raise TypeError(f"options must be a tuple, not {type(options).__name__}")
        self.code, self.name, self.options, self.backend = code, name, options, backend
        self.name_expressions = None
        self._emulated = None  # compiled at the first use, as CuPy does

    @property
    def kernel(self):
        return self._compile()

    def _compile(self):
        if self._emulated is None:
            # Without name_expressions CuPy finds a kernel by its symbol, which is the
            # source name only for an extern "C" kernel (C++ mangles the others).
            if not re.search(r'extern\s+"C"\s*(\{[^}]*)?__global__\s+void\s+'
                             + re.escape(self.name) + r"\s*\(", self.code):
                raise _not_found(f"{self.name!r} is not an extern \"C\" __global__ function "
                                 "of the source; template kernels need name_expressions")
            self._emulated = _emulation_module(self.code, [self.name])
        return self._emulated

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None):
        grid = _launch_dims(grid, "grid", (2**31 - 1, 65535, 65535), math.inf)
        block = _launch_dims(block, "block", (1024, 1024, 64), 1024)
        if shared_mem:
            raise NotImplementedError("the CPU emulation of CUDA has no shared memory")
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"args must be a tuple. Received: {type(args).__name__}")
        values = tuple(_kernel_arg(self.name, i, a) for i, a in enumerate(args))
        self._compile().launch(self.name, grid, block, values)


class RawModule:
    __module__ = "cupy"

    def __init__(self, *, code=None, path=None, options=(), backend="nvrtc",
                 translate_cucomplex=False, enable_cooperative_groups=False,
                 name_expressions=None, jitify=None):
        if (code is None) == (path is None):
            raise TypeError("Exactly one of `code` and `path` keyword arguments must be given.")
        if path is not None:
            raise NotImplementedError("the CuPy stand-in compiles CUDA source only (code=)")
        if not isinstance(code, str):
            raise TypeError(f"code must be str, not {type(code).__name__}")
        if not isinstance(options, tuple):
            raise TypeError(f"options must be a tuple, not {type(options).__name__}")
        self.code, self.options, self.backend = code, options, backend
        self.name_expressions = None if name_expressions is None else tuple(name_expressions)
        self._emulated = None  # every name expression, compiled at the first get_function

    def get_function(self, name):
        kernel = RawKernel(self.code, name, self.options, self.backend)
        kernel.name_expressions = self.name_expressions
        if self.name_expressions is None:
            kernel._compile()  # CuPy compiles and looks the kernel up here
        elif name not in self.name_expressions:
            raise _not_found(f"{name!r} is not one of the name_expressions "
                             f"{self.name_expressions}")
        else:
            if self._emulated is None:
                self._emulated = _emulation_module(self.code, self.name_expressions)
            kernel._emulated = self._emulated
        return kernel


_API.update(ndarray=ndarray, RawKernel=RawKernel, RawModule=RawModule)


# ----------------------------------------------------------------------------------
# the module objects, and putting them in place of ``cupy``
# ----------------------------------------------------------------------------------
def _module(name, attributes, package=False):
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=package)
    if package:
        module.__path__ = []
    module.__dict__.update(attributes)
    return module


_NUMPY_NAMES = ("bool bool_ int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 "
                "float64 complex64 complex128 dtype finfo iinfo newaxis inf nan pi e").split()
_runtime = _module("cupy.cuda.runtime", _RUNTIME)
_memory = _module("cupy.cuda.memory", {"OutOfMemoryError": OutOfMemoryError,
                                       "MemoryPool": MemoryPool})
_device = _module("cupy.cuda.device", {"Device": Device, "get_device_id": get_device_id})
_stream = _module("cupy.cuda.stream", {"Stream": Stream, "get_current_stream": get_current_stream})
_cuda = _module("cupy.cuda", {
    "runtime": _runtime, "memory": _memory, "device": _device, "stream": _stream,
    "driver": _module("cupy.cuda.driver", {"CUDADriverError": CUDADriverError}),
    "Device": Device, "get_device_id": get_device_id, "Stream": Stream,
    "get_current_stream": get_current_stream, "MemoryPool": MemoryPool,
    "is_available": is_available}, package=True)
_MODULE = _module("cupy", {**{n: getattr(numpy, n) for n in _NUMPY_NAMES}, **_API,
                           "cuda": _cuda, "transfers": transfers}, package=True)
# the submodules that ``import cupy.cuda.xxx`` finds in real CuPy
_SYS_MODULES = {m.__name__: m for m in (_MODULE, _cuda, _runtime, _memory, _device, _stream)}

_saved = None  # what sys.modules held under cupy.* before install()


def _cupy_keys():
    return [k for k in sys.modules if k == "cupy" or k.startswith("cupy.")]


def install():
    """Make ``import cupy`` give the stand-in, with fresh transfer counts and no memory
    limit; returns the module."""
    global _saved
    if _saved is None:
        _saved = {k: sys.modules.pop(k) for k in _cupy_keys()}
        sys.modules.update(_SYS_MODULES)
    transfers.reset()
    _pool.set_limit(size=0)
    return _MODULE


def uninstall():
    """Put back what ``cupy`` was before ``install()`` (usually nothing)."""
    global _saved
    if _saved is None:
        return
    for k in _cupy_keys():
        del sys.modules[k]
    sys.modules.update(_saved)
    _saved = None
    _pool.set_limit(size=0)


def is_standin(module):
    return module is _MODULE


@functools.lru_cache(maxsize=None)
def _working_real_cupy():
    """The real CuPy when it imports and sees a CUDA device, else None."""
    if _saved is not None:
        raise RuntimeError("looking for the real CuPy while the stand-in is installed")
    if importlib.util.find_spec("cupy") is None:
        return None
    try:
        import cupy
        return cupy if cupy.cuda.runtime.getDeviceCount() > 0 else None
    except Exception:  # no driver, no device, a broken install
        return None


@pytest.fixture
def cupy_standin():
    """The ``cupy`` module for one test: the real CuPy where a GPU can run it, else the
    stand-in, installed as ``sys.modules["cupy"]`` until the test ends. A test that
    reads ``transfers`` or sets memory limits checks ``is_standin(module)`` first."""
    if _saved is not None:  # installed already, by the caller
        yield _MODULE
        return
    real = _working_real_cupy()
    if real is not None:
        yield real
        return
    module = install()
    try:
        yield module
    finally:
        uninstall()
