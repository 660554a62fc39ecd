"""Every .cu file of minicnn/kernels/cuda compiles for real GPUs: with nvcc for sm_80
(A100) and sm_90 (H100/H200), warnings as errors, and with NVRTC exactly as the
cupy backend compiles it at run time (the source text, ``NVRTC_OPTIONS`` and the
name expressions of ``kernels.cuda``). Neither needs a GPU; each test is skipped,
with the reason, where its compiler is absent. (CI installs CuPy and NVRTC for the
second: see .ci/run.)"""
import importlib.util
import shutil
import subprocess

import pytest

from minicnn.kernels import cuda
from minicnn.kernels.cuda import emulation

ARCHS = ["sm_80", "sm_90"]
# what CuPy's RawModule adds to the options it is given (cupy/cuda/compiler.py)
CUPY_ADDS = ("-ftz=true", "--device-as-default-execution-space")


def _with_instantiations(filename):
    """The source plus one explicit instantiation per name expression: nvcc, unlike
    NVRTC, compiles only the template instances a file asks for."""
    code = cuda.source(filename)
    signatures = emulation.kernel_signatures(code, cuda.name_expressions(filename))
    lines = [f"template __global__ void {name}({', '.join(p.ctype for p in params)});"
             for name, params in signatures.items()]
    return code + "\n" + "\n".join(lines) + "\n"


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc (the CUDA toolkit) is not installed")
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("filename", cuda.SOURCES)
def test_kernels_compile_with_nvcc(filename, arch, tmp_path):
    src = tmp_path / filename
    src.write_text(_with_instantiations(filename))
    out = tmp_path / f"{filename}.{arch}.cubin"
    result = subprocess.run(["nvcc", "-cubin", f"-arch={arch}", *cuda.NVRTC_OPTIONS, "-ftz=true",
                             "-Werror", "all-warnings", "-o", str(out), str(src)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 1000
    # every kernel and both float types made it into the binary
    symbols = out.read_bytes()
    for name in cuda.kernel_names(filename):
        assert symbols.count(name.encode()) >= 2, f"{name} missing from the {arch} binary"


def _nvrtc_problem():
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed (pip install cupy-cuda13x nvidia-cuda-nvrtc)"
    try:
        from cupy.cuda import compiler
        from cupy_backends.cuda.libs import nvrtc
        nvrtc.getVersion()
        compiler._NVRTCProgram  # noqa: B018  (the class RawModule compiles through)
    except Exception as exc:  # no NVRTC library, or a CuPy without that class
        return f"NVRTC cannot be loaded through CuPy ({exc.__class__.__name__}: {exc})"
    return None


@pytest.mark.skipif(_nvrtc_problem() is not None, reason=str(_nvrtc_problem()))
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("filename", cuda.SOURCES)
def test_kernels_compile_with_nvrtc_as_the_backend_does(filename, arch):
    """RawModule(code, options, name_expressions) compiles through NVRTC with the
    options given plus what CuPy adds: ``-ftz=true`` (float32 subnormals flush to
    zero), the target (``-arch``, chosen from the device, fixed here) and
    ``--device-as-default-execution-space``. A RawModule cannot be made without a
    device, so its compiler is called directly."""
    from cupy.cuda import compiler
    names = cuda.name_expressions(filename)
    program = compiler._NVRTCProgram(cuda.source(filename), "kern.cu", name_expressions=names,
                                     method="cubin")
    binary, mapping = program.compile(cuda.NVRTC_OPTIONS + CUPY_ADDS + (f"-arch={arch}",))
    assert len(binary) > 1000
    assert sorted(mapping) == sorted(names)  # every float32/float64 instance has a symbol
