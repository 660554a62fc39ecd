"""The benchmark scripts' GPU options (``--backends cupy``) and their ``--smoke`` runs.

- Without a usable GPU, asking a script for the cupy backend ends it at once with
  one line that says why (set_backend's message), not a traceback.
- With one (``-m gpu``), each script's smoke run on cupy exits 0 and prints a
  minicnn-cupy figure.
- The CPU paths still run in their smoke configuration (numpy backend; PyTorch's
  columns where it is installed), writing their results only where --out says.
- Where the project's CuPy stand-in is present, the cupy code of the scripts (device
  inputs, synchronised timing, memory-pool readings) runs through it in-process.
"""
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

import minicnn as mc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.join(ROOT, "benchmarks")
SCRIPTS = ("bench_kernels.py", "bench_lenet5.py", "bench_alexnet.py")
# What each script prints for a framework that ran: a table cell, an epoch, a step.
FIGURE = {"bench_kernels.py": r"^(conv|maxpool) .*?\d+\.\d+ms",
          "bench_lenet5.py": r"^{name}\s+epochs \d+\.\d+s",
          "bench_alexnet.py": r"^{name}\s+step \d+\.\d+ s"}


def run_script(script, *args, timeout=120):
    env = dict(os.environ, MINICNN_OFFLINE="1")  # the shipped data subset, no download
    return subprocess.run([sys.executable, os.path.join(BENCHMARKS, script), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


def cupy_runs_here():
    return "cupy" in mc.backend.available()


def printed_figure(script, output, name):
    """Whether ``output`` has a figure of framework ``name``."""
    if script == "bench_kernels.py":
        header = next((line for line in output.splitlines() if line.startswith("case")), "")
        return name in header.split() and re.search(FIGURE[script], output, re.M) is not None
    return re.search(FIGURE[script].format(name=re.escape(name)), output, re.M) is not None


# ---------------------------------------------------------------------------------
# no GPU: one clear line
# ---------------------------------------------------------------------------------
@pytest.mark.skipif(cupy_runs_here(), reason="the cupy backend can run on this machine")
@pytest.mark.parametrize("script", SCRIPTS)
def test_cupy_without_a_gpu_ends_with_one_line(script):
    with pytest.raises(RuntimeError) as why:
        mc.backend.set_backend("cupy")
    result = run_script(script, "--backends", "cupy", "--smoke", timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert "\n" not in message, message
    assert message.startswith(f"{script}: cannot benchmark the 'cupy' backend here: ")
    assert " ".join(str(why.value).split()) in message
    assert "minicnn-cupy" not in result.stdout  # it stopped before measuring anything


# ---------------------------------------------------------------------------------
# a GPU: the smoke runs on cupy
# ---------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not cupy_runs_here(), reason="needs CuPy and a CUDA device")
@pytest.mark.parametrize("script", SCRIPTS)
def test_cupy_smoke_run_on_the_gpu(script, tmp_path):
    result = run_script(script, "--backends", "cupy", "--smoke", "--out", str(tmp_path),
                        timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert printed_figure(script, result.stdout, "minicnn-cupy"), result.stdout
    assert "FAILED" not in result.stdout
    written = json.loads((tmp_path / script.replace(".py", "_gpu.json")).read_text())
    assert "gpu" in written["environment"]
    assert written["environment"]["cupy"]


# ---------------------------------------------------------------------------------
# the CPU paths, in their smoke configuration
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("script", SCRIPTS)
def test_cpu_smoke_run(script, tmp_path):
    result = run_script(script, "--backends", "numpy", "--smoke", "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert printed_figure(script, result.stdout, "minicnn-numpy"), result.stdout
    written = json.loads((tmp_path / script.replace(".py", ".json")).read_text())
    assert written["smoke"] is True
    assert "gpu" not in written["environment"]
    assert not (tmp_path / script.replace(".py", "_gpu.json")).exists()


def test_smoke_run_writes_nothing_without_out():
    results = os.path.join(BENCHMARKS, "results")
    before = {f: os.stat(os.path.join(results, f)).st_mtime_ns for f in os.listdir(results)}
    result = run_script("bench_lenet5.py", "--backends", "numpy", "--smoke", "--epochs", "1",
                        "--images", "128")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no result files written" in result.stdout
    after = {f: os.stat(os.path.join(results, f)).st_mtime_ns for f in os.listdir(results)}
    assert after == before


# ---------------------------------------------------------------------------------
# the cupy code paths through the CuPy stand-in (no GPU needed)
# ---------------------------------------------------------------------------------
def _load(script):
    spec = importlib.util.spec_from_file_location(script[:-3], os.path.join(BENCHMARKS, script))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def standin_cupy(monkeypatch):
    """The real CuPy where a GPU runs it, else the project's stand-in in its place."""
    standin = pytest.importorskip("cupy_standin")
    if not hasattr(standin, "install"):
        pytest.skip("the CuPy stand-in has no install()")
    monkeypatch.setenv("MINICNN_OFFLINE", "1")
    for path in (BENCHMARKS, os.path.join(ROOT, "examples")):
        monkeypatch.syspath_prepend(path)
    if cupy_runs_here():
        import cupy
        yield cupy
        return
    module = standin.install()
    try:
        yield module
    finally:
        standin.uninstall()


@pytest.mark.parametrize("script, extra", [
    ("bench_kernels.py", []),
    ("bench_lenet5.py", ["--images", "128", "--epochs", "1"]),
])
def test_cupy_paths_in_process(standin_cupy, script, extra, tmp_path, capsys):
    code = _load(script).main(["--backends", "cupy", "--smoke", "--out", str(tmp_path), *extra])
    out = capsys.readouterr().out
    assert code == 0, out
    assert printed_figure(script, out, "minicnn-cupy"), out
    written = json.loads((tmp_path / script.replace(".py", "_gpu.json")).read_text())
    if script == "bench_kernels.py":
        assert written["gpu_gemm_peak_gflops"] > 0
        assert all("minicnn-cupy" in case["ms"] for case in written["cases"])
        assert all("minicnn-cupy" in case["device_mb"] for case in written["cases"])
    else:
        cupy_figures = written["frameworks"]["minicnn-cupy"]
        assert cupy_figures["images_per_second"] > 0
        assert cupy_figures["device_peak_mb"] >= 0
        assert cupy_figures["warmup_seconds"] > 0


def test_alexnet_cupy_worker_in_process(standin_cupy):
    worker = _load("bench_alexnet.py").worker_minicnn
    times, device_bytes = worker("cupy", batch=2, steps=1, warmup=1)
    assert len(times) == 2 and all(t > 0 for t in times)
    assert device_bytes > 0


def test_a_failing_implementation_is_reported_and_the_others_go_on(standin_cupy, tmp_path,
                                                                    capsys, monkeypatch):
    bench = _load("bench_kernels.py")

    def broken(*args, **kwargs):
        raise RuntimeError("pooling broke")
    monkeypatch.setattr(bench, "pool2d_forward", broken)
    code = bench.main(["--backends", "cupy", "--smoke", "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 1
    assert "FAILED: minicnn-cupy on maxpool" in captured.out
    assert "pooling broke" in captured.err  # the traceback, for whoever reads the run
    written = json.loads((tmp_path / "bench_kernels_gpu.json").read_text())
    conv, pool = written["cases"][0], written["cases"][-1]
    assert "minicnn-cupy" in conv["ms"]
    assert "minicnn-cupy" not in pool["ms"] and "pooling broke" in pool["failures"]["minicnn-cupy"]


@pytest.mark.parametrize("model, isa, kind", [
    ("AMD EPYC", "AVX2", "amd-epyc-avx2"),
    ("AMD EPYC 7B13 64-Core Processor", "AVX2", "amd-epyc-avx2"),
    ("Intel(R) Xeon(R) Platinum 8480C", "AVX-512+AMX", "intel-xeon-avx512-amx"),
    ("Intel(R) Xeon(R) CPU @ 2.20GHz", "AVX-512", "intel-xeon-avx512"),
])
def test_results_are_kept_per_machine_kind(model, isa, kind):
    sys.path.insert(0, BENCHMARKS)
    try:
        import _common
    finally:
        sys.path.remove(BENCHMARKS)
    assert _common.machine_kind(model, isa) == kind
    assert _common.results_dir() == os.path.join(_common.RESULTS, _common.machine_kind())
    info = _common.environment(256)
    assert info["isa"].split("+")[0] in ("SSE", "AVX2", "AVX-512")
    assert info["gemm_peak_gflops"] > 0 and info["cpu"]
