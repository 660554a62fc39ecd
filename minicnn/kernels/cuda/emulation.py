"""Run this package's CUDA kernels on the CPU, to check what they compute without a GPU.

The ``.cu`` files are compiled by the system C++ compiler with ``cpu_emulation.h``
(which defines ``threadIdx``, ``blockIdx``, ``blockDim``, ``gridDim``, ``__global__``
and the few device functions the kernels use) and a generated launcher per kernel
that runs every thread of the launch grid in a loop. The shared library is loaded
with ctypes.

    >>> mod = Module(source_text, ["im2col<float>"])
    >>> mod.launch("im2col<float>", grid=8, block=256, args=(x, col, np.int32(n), ...))

``launch`` takes CuPy's calling convention (grid, block, a tuple of arguments) with
NumPy arrays standing for device memory, and is strict where a GPU would silently
compute garbage: every array must be C-contiguous with the dtype the kernel
declares for that pointer, every scalar a NumPy scalar of exactly the declared type.
Each array is run inside a copy framed by guard bytes (all ones: NaN for floats,
-1 for ints); a kernel that writes outside its array is caught when the guards are
checked after the launch, and one that reads outside gets NaN or -1, which the
comparisons against the NumPy ops notice.
"""
import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.join(HERE, "cpu_emulation.h")
CXX_FLAGS = ("-O2", "-std=c++14", "-shared", "-fPIC", "-ffp-contract=off", "-fno-fast-math",
             "-x", "c++")
GUARD_BYTES = 256
# CuPy compiles every kernel with -ftz=true (float32 subnormals read and written as 0);
# the emulation does the same in float32 launches (cpu_emulation.h).
FLUSH_FLOAT32_SUBNORMALS = True

# C parameter types and the NumPy types that must be passed for them
C_TYPES = {
    "float": np.float32, "double": np.float64, "int": np.int32, "long long": np.int64,
    "unsigned int": np.uint32, "unsigned char": np.uint8,
}
_CTYPES = {np.float32: ctypes.c_float, np.float64: ctypes.c_double, np.int32: ctypes.c_int32,
           np.int64: ctypes.c_int64, np.uint32: ctypes.c_uint32, np.uint8: ctypes.c_uint8}

_KERNEL = re.compile(r"(template\s*<\s*typename\s+(\w+)\s*>\s*)?__global__\s+void\s+(\w+)\s*"
                     r"\(([^)]*)\)", re.S)


def compiler():
    """The C++ compiler used (``$CXX`` or g++), or None when there is none."""
    return shutil.which(os.environ.get("CXX", "g++"))


class Param:
    """One kernel parameter: ``ctype`` (e.g. ``"const float*"``) and ``name``."""

    def __init__(self, text, template_name, template_arg):
        text = " ".join(text.replace("__restrict__", "").split())
        match = re.fullmatch(r"(.*?[\s*])(\w+)", text)
        if not match:
            raise ValueError(f"cannot parse kernel parameter {text!r}")
        ctype, self.name = match.group(1).strip(), match.group(2)
        if template_name:
            ctype = re.sub(rf"\b{template_name}\b", template_arg, ctype)
        self.ctype = " ".join(ctype.replace("*", " * ").split()).replace(" *", "*")
        self.pointer = self.ctype.endswith("*")
        base = self.ctype.rstrip("*").replace("const", "").strip()
        if base not in C_TYPES:
            raise ValueError(f"kernel parameter {text!r}: type {base!r} is not one of "
                             f"{sorted(C_TYPES)}")
        self.dtype = np.dtype(C_TYPES[base])
        self.const = self.ctype.startswith("const")


def kernel_signatures(code, name_expressions):
    """``{name expression: [Param, ...]}`` for the ``__global__`` kernels of ``code``;
    a template kernel is named with its argument, e.g. ``"im2col<float>"``."""
    found = {m.group(3): m for m in _KERNEL.finditer(code)}
    signatures = {}
    for expression in name_expressions:
        base, _, arg = expression.partition("<")
        arg = arg.rstrip(">").strip()
        if base not in found:
            raise ValueError(f"no __global__ kernel {base!r} in the source")
        template_name = found[base].group(2)
        if bool(template_name) != bool(arg):
            raise ValueError(f"{expression!r}: template arguments do not match the kernel")
        params = [p for p in found[base].group(4).split(",") if p.strip()]
        signatures[expression] = [Param(p, template_name, arg) for p in params]
    return signatures


def _launcher(index, expression, params):
    """C++ for ``launch_<index>``: unpack CUDA-style ``void** args`` and run the grid."""
    unpacked = ", ".join(f"*reinterpret_cast<{p.ctype}*>(args[{i}])"
                         for i, p in enumerate(params))
    flush = int(FLUSH_FLOAT32_SUBNORMALS and expression.endswith("<float>"))
    return (f'extern "C" void launch_{index}(const unsigned int* grid, '
            f"const unsigned int* block, void** args, int reverse)\n"
            f"{{\n    emu::run(grid, block, reverse, {flush}, "
            f"[&]() {{ {expression}({unpacked}); }});\n}}\n")


def _cache_dir():
    path = os.path.join(tempfile.gettempdir(), f"minicnn-cuda-emulation-{os.getuid()}")
    os.makedirs(path, exist_ok=True)
    return path


class Module:
    """The kernels ``name_expressions`` of CUDA source ``code``, compiled for the CPU.
    Compiled libraries are cached by the hash of everything that goes into them."""

    def __init__(self, code, name_expressions):
        cxx = compiler()
        if cxx is None:
            raise RuntimeError("CUDA kernel emulation needs a C++ compiler (g++ or $CXX); "
                               "none was found")
        self.signatures = kernel_signatures(code, list(name_expressions))
        self._index = {name: i for i, name in enumerate(self.signatures)}
        with open(HEADER, encoding="utf-8") as f:
            header = f.read()
        source = (header + "\n#line 1 \"kernel.cu\"\n" + code + "\n\n"
                  + "".join(_launcher(i, name, self.signatures[name])
                            for name, i in self._index.items()))
        key = hashlib.sha256("\0".join([cxx, *CXX_FLAGS, source]).encode()).hexdigest()[:24]
        library = os.path.join(_cache_dir(), f"{key}.so")
        if not os.path.exists(library):
            self._compile(cxx, source, library)
        self._lib = ctypes.CDLL(library)
        self._functions = {}
        for name, i in self._index.items():
            fn = getattr(self._lib, f"launch_{i}")
            fn.argtypes = [ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_uint),
                           ctypes.POINTER(ctypes.c_void_p), ctypes.c_int]
            fn.restype = None
            self._functions[name] = fn

    @staticmethod
    def _compile(cxx, source, library):
        work = tempfile.mkdtemp(prefix="build-", dir=os.path.dirname(library))
        try:
            src = os.path.join(work, "kernels.cpp")
            with open(src, "w", encoding="utf-8") as f:
                f.write(source)
            out = os.path.join(work, "kernels.so")
            result = subprocess.run([cxx, *CXX_FLAGS, src, "-o", out],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"the CUDA source does not compile for the CPU emulation "
                                   f"({cxx}):\n{result.stderr[-4000:]}")
            os.replace(out, library)  # atomic: a concurrent reader sees all or nothing
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def launch(self, name, grid, block, args, reverse=False):
        """Run kernel ``name`` over a ``grid`` x ``block`` launch, CuPy's way."""
        if name not in self.signatures:
            raise ValueError(f"kernel {name!r} was not compiled; this module has "
                             f"{sorted(self.signatures)}")
        params = self.signatures[name]
        args = tuple(args)
        if len(args) != len(params):
            raise TypeError(f"{name}: expected {len(params)} arguments "
                            f"({', '.join(p.name for p in params)}), received {len(args)}")
        dims = [self._dims(grid, "grid"), self._dims(block, "block")]
        keep, pointers, framed = [], [], []
        for param, value in zip(params, args):
            if param.pointer:
                buffer, inner = self._framed(name, param, value)
                framed.append((param, value, buffer, inner))
                holder = ctypes.c_void_p(inner.ctypes.data)
            else:
                holder = self._scalar(name, param, value)
            keep.append(holder)
            pointers.append(ctypes.cast(ctypes.pointer(holder), ctypes.c_void_p))
        argv = (ctypes.c_void_p * len(pointers))(*pointers)
        self._functions[name]((ctypes.c_uint * 3)(*dims[0]), (ctypes.c_uint * 3)(*dims[1]),
                              argv, int(bool(reverse)))
        for param, value, buffer, inner in framed:
            guard = buffer[:GUARD_BYTES], buffer[GUARD_BYTES + inner.nbytes:]
            if not all((g == 0xFF).all() for g in guard):
                raise RuntimeError(f"{name}: the kernel wrote outside array '{param.name}' "
                                   f"({value.size} values of {value.dtype})")
            if not param.const:
                value[...] = inner.reshape(value.shape)
            elif not np.array_equal(inner.view(np.uint8), value.view(np.uint8).reshape(-1)):
                raise RuntimeError(f"{name}: the kernel wrote to const array '{param.name}'")

    @staticmethod
    def _dims(value, what):
        dims = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
        if not 1 <= len(dims) <= 3 or any(int(d) < 1 for d in dims):
            raise ValueError(f"{what} must be 1 to 3 positive sizes. Received: {value!r}")
        return [int(d) for d in dims] + [1] * (3 - len(dims))

    @staticmethod
    def _framed(name, param, value):
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{name}: argument '{param.name}' ({param.ctype}) must be an array. "
                            f"Received: {type(value).__name__}")
        if value.dtype != param.dtype:
            raise TypeError(f"{name}: argument '{param.name}' is {param.ctype}, which needs "
                            f"{param.dtype} values. Received: {value.dtype}")
        if not value.flags.c_contiguous:
            raise TypeError(f"{name}: argument '{param.name}' must be C-contiguous (a kernel "
                            f"reads memory in order); received strides {value.strides}")
        buffer = np.full(2 * GUARD_BYTES + value.nbytes, 0xFF, dtype=np.uint8)
        inner = buffer[GUARD_BYTES:GUARD_BYTES + value.nbytes].view(value.dtype)
        inner[...] = value.reshape(-1)
        return buffer, inner

    @staticmethod
    def _scalar(name, param, value):
        if isinstance(value, np.ndarray) or type(value) is not param.dtype.type:
            raise TypeError(f"{name}: argument '{param.name}' is {param.ctype}; pass a "
                            f"numpy.{param.dtype.name} scalar. Received: {value!r} "
                            f"({type(value).__name__})")
        return _CTYPES[param.dtype.type](value)
