"""The numba kernels that may run in parallel: each is compiled serial and parallel,
both give the same bits, and a call takes the parallel one only from
PARALLEL_MIN_VALUES values on (benchmarks/bench_parallel_launch.py measured where)."""
import numpy as np
import pytest

import minicnn as mc

pytestmark = pytest.mark.skipif("numba" not in mc.backend.available(),
                                reason="numba does not import here")

KERNELS = ["im2col", "col2im", "extreme_pool_forward", "extreme_pool_backward",
           "avg_pool_forward", "avg_pool_backward", "direct_conv_forward",
           "direct_conv_weight_gradient", "winograd_input_transform",
           "winograd_output_transform", "winograd_gradient_transform",
           "winograd_input_gradient"]


def kernels():
    from minicnn.kernels import numba_cpu
    return numba_cpu


@pytest.mark.parametrize("name", KERNELS)
def test_every_parallel_kernel_has_both_compilations(name):
    kernel = getattr(kernels(), name)
    assert kernel.parallel.targetoptions.get("parallel") is True
    assert not kernel.serial.targetoptions.get("parallel")
    assert kernel.serial.py_func.__qualname__ == kernel.parallel.py_func.__qualname__ + "_serial"


def test_serial_and_parallel_give_the_same_bits():
    k = kernels()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((9, 11, 10, 3)).astype(np.float32)
    w = rng.standard_normal((5, 5, 3, 4)).astype(np.float32)
    dy = rng.standard_normal((9, 11, 10, 4)).astype(np.float32)
    out = {}
    for how in ("serial", "parallel"):
        col = np.empty((9, 5, 5, 3, 3, 3), np.float32)
        getattr(k.im2col, how)(x, 3, 3, 2, 2, 1, 1, 5, 5, 0.0, col)
        dx = np.empty_like(x)
        getattr(k.col2im, how)(col, 2, 2, 1, 1, dx)
        y = np.empty((9, 11, 10, 4), np.float32)
        getattr(k.direct_conv_forward, how)(x, w, 2, 2, y)
        dw = np.empty_like(w)
        getattr(k.direct_conv_weight_gradient, how)(x, dy, 2, 2, dw)
        pooled, winner = np.empty((9, 5, 5, 3), np.float32), np.empty((9, 5, 5, 3), np.int32)
        getattr(k.extreme_pool_forward, how)(x, 3, 3, 2, 2, 1, 1, True, pooled, winner)
        out[how] = (col, dx, y, dw, pooled, winner)
    for name, a, b in zip(("col", "dx", "y", "dw", "pooled", "winner"), out["serial"],
                          out["parallel"]):
        if name == "dw":  # its dot products are reassociated (fastmath): two compilations
            # may vectorise them differently, which rounds each sum of 990 products
            # differently (seen: 4e-6 on values up to 65)
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6 * np.abs(b).max())
            continue
        assert np.array_equal(a, b), (name, np.argwhere(a != b)[:5], a[a != b][:5], b[a != b][:5])


def test_the_parallel_compilation_runs_from_the_threshold_on(monkeypatch):
    from minicnn.kernels import numba_launch
    k = kernels()
    calls = []
    monkeypatch.setattr(k.avg_pool_forward, "parallel", lambda *a: calls.append("parallel"))
    monkeypatch.setattr(k.avg_pool_forward, "serial", lambda *a: calls.append("serial"))
    monkeypatch.setattr(numba_launch, "PARALLEL_MIN_VALUES", 1000)
    small, large = np.zeros((1, 10, 10, 9)), np.zeros((1, 10, 10, 10))  # 900, 1000 values
    for x in (small, large):
        k.avg_pool_forward(x, 2, 2, 2, 2, 0, 0, np.zeros((1, 5, 5, x.shape[3])))
    assert calls == ["serial", "parallel"]


def test_the_launch_benchmark_runs_its_smoke_configuration(tmp_path):
    import json
    import os
    import subprocess
    import sys
    script = os.path.join(os.path.dirname(__file__), "..", "benchmarks",
                          "bench_parallel_launch.py")
    result = subprocess.run([sys.executable, script, "--smoke", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    written = json.loads((tmp_path / "bench_parallel_launch.json").read_text())
    assert len(written["cases"]) == 5 and all(c["runs"] == "serial" for c in written["cases"])
