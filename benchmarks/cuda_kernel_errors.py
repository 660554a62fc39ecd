"""The largest differences of the CUDA kernels, run on the CPU by the emulation, from
the NumPy ops (the numpy backend) and from the numba kernels, over a sweep of window
sizes, strides, paddings, ties and NaN, in float32 and float64.

    python benchmarks/cuda_kernel_errors.py

Prints, per kernel and float type, the largest absolute difference and that difference
over the largest reference value (NaN matching NaN counts as equal). Needs g++.
"""
import itertools
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import minicnn as mc  # noqa: E402
from minicnn import ops  # noqa: E402
from minicnn.kernels import cuda, numba_cpu  # noqa: E402
from minicnn.ops.activations import EPILOGUE_KINDS, _bias_row  # noqa: E402
from minicnn.shapes import resolve_padding  # noqa: E402
from test_cuda_kernels import _EmulatedCupy  # noqa: E402  (RawModule through the emulation)

sys.modules["cupy"] = _EmulatedCupy
mc.backend.set_backend("numpy")
rng = np.random.default_rng(0)
worst = {}


def rec(key, actual, expected):
    """Keep the largest |actual - expected| and its ratio to max |expected| per key."""
    a64, e64 = actual.astype(np.float64), expected.astype(np.float64)
    both = ~(np.isnan(a64) & np.isnan(e64)) & np.isfinite(e64)
    diff = np.abs(a64 - e64)[both]
    largest = float(diff.max()) if diff.size else 0.0
    scale = float(np.abs(e64[both]).max()) if both.any() else 1.0
    old = worst.get(key, (0.0, 0.0, 0))
    worst[key] = (max(old[0], largest), max(old[1], largest / max(scale, 1e-300)), old[2] + 1)


for dtype in (np.float32, np.float64):
    for padding, k, s in itertools.product(["valid", "same", "full"], [(1,1),(2,2),(3,3),(5,5),(3,2),(11,11)], [(1,1),(2,2),(3,1),(4,4)]):
        h = w = 13 if k[0] < 11 else 23
        n, c = 2, 3
        pads, (oh, ow) = resolve_padding((h, w), k, s, padding)
        x = rng.standard_normal((n, h, w, c)).astype(dtype)
        col_e = ops.im2col(x, k, s, pads, (oh, ow))
        col = np.empty_like(col_e)
        cuda.im2col(x, *k, *s, pads[0][0], pads[1][0], oh, ow, 0.0, col)
        rec(("im2col", dtype.__name__), col, col_e)
        dcol = rng.standard_normal(col.shape).astype(dtype)
        dx_e = ops.col2im(dcol, x.shape, k, s, pads)
        dx = np.empty_like(x); cuda.col2im(dcol, *s, pads[0][0], pads[1][0], dx)
        rec(("col2im vs numpy", dtype.__name__), dx, dx_e)
        dxn = np.empty_like(x); numba_cpu.col2im(dcol, *s, pads[0][0], pads[1][0], dxn)
        rec(("col2im vs numba", dtype.__name__), dx, dxn)
        if padding == "full" or k[0] > 5:
            continue
        for mode in ("max", "min", "avg"):
            for values in ("normal", "ties", "nan"):
                if mode == "avg" and values == "nan":
                    continue
                xx = rng.integers(-1, 2, x.shape).astype(dtype) if values == "ties" else x.copy()
                if values == "nan":
                    xx[rng.random(x.shape) < 0.1] = np.nan
                y_e, cache = ops.pool2d_forward(xx, k, s, padding, mode)
                dy = rng.standard_normal(y_e.shape).astype(dtype)
                dx_e = ops.pool2d_backward(dy, cache)
                win = (*k, *s, pads[0][0], pads[1][0])
                y = np.empty_like(y_e); dxp = np.empty_like(xx)
                if mode == "avg":
                    cuda.avg_pool_forward(xx, *win, y); cuda.avg_pool_backward(dy, *win, dxp)
                else:
                    wn = np.empty(y.shape, np.int32)
                    cuda.extreme_pool_forward(xx, *win, mode == "max", y, wn)
                    cuda.extreme_pool_backward(dy, wn, *win, dxp)
                rec((f"{mode} pool forward", dtype.__name__), y, y_e)
                rec((f"{mode} pool backward", dtype.__name__), dxp, dx_e)
    for act in ("linear", "relu", "tanh"):
        z = (rng.standard_normal((4096, 7)) * 4).astype(dtype); b = rng.standard_normal(7).astype(dtype)
        dy = rng.standard_normal(z.shape).astype(dtype)
        y_e, cache = ops.bias_activation_forward(z.copy(), b, act)
        dz_e = ops.activation_backward(dy, cache)
        y = z.copy(); cuda.bias_activation(y.reshape(-1), _bias_row(b), EPILOGUE_KINDS[act])
        rec((f"epilogue {act}", dtype.__name__), y, y_e)
        if act != "linear":
            dz = np.empty_like(dy); cuda.activation_gradient(dy.reshape(-1), y.reshape(-1), EPILOGUE_KINDS[act], dz.reshape(-1))
            rec((f"{act} gradient", dtype.__name__), dz, dz_e)
    ws = [rng.standard_normal((300,)).astype(dtype) for _ in range(2)]
    w_e = ws[0].copy(); opt = mc.optimizers.Adam(1e-3); m = np.zeros_like(w_e); v = np.zeros_like(w_e); w = ws[0].copy()
    for t in range(1, 6):
        g = (rng.standard_normal(300) * 10.0 ** rng.integers(-8, 2)).astype(dtype)
        opt.apply([g], [w_e])
        alpha = 1e-3 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        cuda.adam_update(w, g, m, v, 1 - 0.9, 1 - 0.999, alpha, 1e-7)
    rec(("adam (5 steps)", dtype.__name__), w, w_e)
for (name, dt), (m, rel, count) in sorted(worst.items()):
    print(f"{name:<26}{dt:<9} max abs {m:.3g}   max abs / max|ref| {rel:.3g}   ({count} cases)")
