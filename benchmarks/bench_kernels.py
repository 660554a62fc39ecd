"""Convolution and max-pooling kernels: minicnn's backends against PyTorch CPU and a
naive NumPy im2col, measured in the same run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_kernels.py

The implementations are timed in turns (one call of each, then again), so a change
in the machine's load hits all alike. Prints, per shape, the median milliseconds of
forward and forward+backward, the effective GFLOP/s (2*N*OH*OW*F*KH*KW*C per pass;
forward+backward counts three passes: y, dW and dX), the fraction of the float32
GEMM peak this script measures on the same machine, and the ratios against PyTorch
and the naive baseline. Writes benchmarks/results/bench_kernels.json and .png.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

import minicnn as mc  # noqa: E402
from minicnn.ops import conv2d_backward, conv2d_forward, pool2d_backward, pool2d_forward  # noqa: E402
from minicnn.shapes import resolve_padding  # noqa: E402

# (N, H, W, Cin, Cout, k, stride, padding)
CONV_SHAPES = [
    (128, 14, 14, 6, 16, 5, 1, "valid"),
    (32, 224, 224, 3, 96, 11, 4, "valid"),
    (32, 26, 26, 96, 256, 5, 1, "same"),
    (32, 56, 56, 64, 64, 3, 1, "same"),
]
# (N, H, W, C, pool, stride)
POOL_SHAPES = [(32, 54, 54, 96, 2, 2), (32, 54, 54, 96, 3, 2)]


# ---------------------------------------------------------------------------------
# the textbook baseline: fancy-indexing im2col and np.add.at col2im
# ---------------------------------------------------------------------------------
def _naive_indices(h, w, k, s, padding):
    pads, (oh, ow) = resolve_padding((h, w), (k, k), (s, s), padding)
    rows = np.repeat(np.arange(k), k)[None, :] + s * np.repeat(np.arange(oh), ow)[:, None]
    cols = np.tile(np.arange(k), k)[None, :] + s * np.tile(np.arange(ow), oh)[:, None]
    return pads, (oh, ow), rows, cols


def naive_conv(x, w, b, s, padding, backward):
    n, h, wd, c = x.shape
    k, f = w.shape[0], w.shape[3]
    pads, (oh, ow), rows, cols = _naive_indices(h, wd, k, s, padding)
    xpad = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    col = xpad[:, rows, cols, :].reshape(n * oh * ow, k * k * c)
    y = col @ w.reshape(-1, f) + b
    if not backward:
        return y
    dy = np.ones_like(y)
    dw, db = col.T @ dy, dy.sum(0)
    dxpad = np.zeros_like(xpad)
    np.add.at(dxpad, (slice(None), rows, cols, slice(None)),
              (dy @ w.reshape(-1, f).T).reshape(n, oh * ow, k * k, c))
    return dxpad, dw, db


def naive_maxpool(x, k, s, backward):
    n, h, wd, c = x.shape
    _, (oh, ow), rows, cols = _naive_indices(h, wd, k, s, "valid")
    col = x[:, rows, cols, :]                       # (N, OH*OW, K*K, C)
    arg = col.argmax(axis=2)
    y = np.take_along_axis(col, arg[:, :, None, :], axis=2)
    if not backward:
        return y
    dcol = np.zeros_like(col)
    np.put_along_axis(dcol, arg[:, :, None, :], 1.0, axis=2)
    dx = np.zeros_like(x)
    np.add.at(dx, (slice(None), rows, cols, slice(None)), dcol)
    return dx


# ---------------------------------------------------------------------------------
# one callable per (implementation, pass)
# ---------------------------------------------------------------------------------
def minicnn_conv(backend, x, w, b, s, padding, backward):
    def run():
        mc.backend.set_backend(backend)
        y, cache = conv2d_forward(x, w, b, (s, s), padding)
        if backward:
            conv2d_backward(np.ones_like(y), cache)
    return run


def torch_conv(torch, x, w, b, s, padding, backward):
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_(backward)
    wt = torch.from_numpy(w.transpose(3, 2, 0, 1).copy()).requires_grad_(backward)
    bt = torch.from_numpy(b).requires_grad_(backward)
    pad = 0 if padding == "valid" else (w.shape[0] - 1) // 2  # the shapes here are symmetric

    def run():
        if backward:
            y = torch.nn.functional.conv2d(xt, wt, bt, stride=s, padding=pad)
            y.backward(torch.ones_like(y))
        else:
            with torch.no_grad():
                torch.nn.functional.conv2d(xt, wt, bt, stride=s, padding=pad)
    return run


def minicnn_pool(backend, x, k, s, backward):
    def run():
        mc.backend.set_backend(backend)
        y, cache = pool2d_forward(x, (k, k), (s, s), "valid", "max")
        if backward:
            pool2d_backward(np.ones_like(y), cache)
    return run


def torch_pool(torch, x, k, s, backward):
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_(backward)

    def run():
        if backward:
            y = torch.nn.functional.max_pool2d(xt, k, s)
            y.backward(torch.ones_like(y))
        else:
            with torch.no_grad():
                torch.nn.functional.max_pool2d(xt, k, s)
    return run


def conv_flops(n, h, w, c, f, k, s, padding):
    _, (oh, ow) = resolve_padding((h, w), (k, k), (s, s), padding)
    return 2 * n * oh * ow * f * k * k * c


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="first two conv shapes only")
    args = parser.parse_args(argv)
    info = _common.environment()
    _common.print_environment(info)
    torch = _common.torch_or_none()
    backends = mc.backend.available()
    peak = _common.gemm_peak()
    print(f"float32 GEMM peak (NumPy's BLAS, 2048^3): {peak:.1f} GFLOP/s")

    impls = [f"minicnn-{b}" for b in backends] + (["torch"] if torch else []) + ["naive"]
    results = {"environment": info, "gemm_peak_gflops": peak, "cases": []}
    rng = np.random.default_rng(0)
    with _common.MachineLoad() as load:
        for shape in CONV_SHAPES[:2] if args.quick else CONV_SHAPES:
            n, h, w, c, f, k, s, padding = shape
            x = rng.standard_normal((n, h, w, c), dtype=np.float32)
            wt = (rng.standard_normal((k, k, c, f), dtype=np.float32) * 0.1)
            b = np.zeros(f, np.float32)
            flops = conv_flops(n, h, w, c, f, k, s, padding)
            name = f"conv {n}x{h}x{w}x{c}->{f} k{k} s{s} {padding}"
            for backward in (False, True):
                case = {"name": name, "pass": "fwd+bwd" if backward else "fwd", "ms": {}}
                gflop = flops * (3 if backward else 1) / 1e9
                fns = {}
                for impl in impls:
                    if impl == "naive":
                        fns[impl] = (lambda backward=backward:
                                     naive_conv(x, wt, b, s, padding, backward))
                    elif impl == "torch":
                        fns[impl] = torch_conv(torch, x, wt, b, s, padding, backward)
                    else:
                        fns[impl] = minicnn_conv(impl.split("-")[1], x, wt, b, s, padding,
                                                 backward)
                medians = _common.interleaved_medians(
                    fns, args.repeats, repeats_for={"naive": max(2, args.repeats // 2)})
                case["ms"] = {impl: 1000 * t for impl, t in medians.items()}
                case["gflops"] = {i: gflop / (t / 1000) for i, t in case["ms"].items()}
                case["peak_fraction"] = {i: g / peak for i, g in case["gflops"].items()}
                results["cases"].append(case)
        for n, h, w, c, k, s in POOL_SHAPES:
            x = rng.standard_normal((n, h, w, c), dtype=np.float32)
            name = f"maxpool {k}/{s} {n}x{h}x{w}x{c}"
            case = {"name": name, "pass": "fwd+bwd", "ms": {}}
            fns = {}
            for impl in impls:
                if impl == "naive":
                    fns[impl] = lambda: naive_maxpool(x, k, s, True)  # noqa: E731
                elif impl == "torch":
                    fns[impl] = torch_pool(torch, x, k, s, True)
                else:
                    fns[impl] = minicnn_pool(impl.split("-")[1], x, k, s, True)
            medians = _common.interleaved_medians(fns, args.repeats)
            case["ms"] = {impl: 1000 * t for impl, t in medians.items()}
            results["cases"].append(case)
    mc.backend.set_backend("numpy")
    results["other_processes_cpu_fraction"] = load.other_fraction

    best = [i for i in impls if i.startswith("minicnn")]
    print(f"\n{'case':<44}{'pass':<9}" + "".join(f"{i:>15}" for i in impls)
          + f"{'best/torch':>12}{'x naive':>9}{'of peak':>9}")
    for case in results["cases"]:
        ms = case["ms"]
        fastest = min(best, key=lambda i: ms[i])
        vs_torch = f"{ms['torch'] / ms[fastest]:.2f}" if "torch" in ms else "-"
        peak_text = f"{case['peak_fraction'][fastest]:.2f}" if "peak_fraction" in case else "-"
        case["best_minicnn"], case["best_over_torch_throughput"] = fastest, (
            ms["torch"] / ms[fastest] if "torch" in ms else None)
        case["speedup_over_naive"] = ms["naive"] / ms[fastest]
        print(f"{case['name']:<44}{case['pass']:<9}"
              + "".join(f"{ms[i]:>13.1f}ms" for i in impls)
              + f"{vs_torch:>12}{case['speedup_over_naive']:>9.1f}{peak_text:>9}")
    print(f"(best/torch: throughput of the fastest minicnn backend over PyTorch's; "
          f"other processes used {100 * load.other_fraction:.0f}% of the CPUs meanwhile)")
    _common.write_results("bench_kernels", results)
    groups = [f"{c['name']} {c['pass']}" for c in results["cases"]]
    _common.bar_plot("bench_kernels", "Kernel time (ms, lower is better)", groups,
                     {i: [c["ms"].get(i) for c in results["cases"]] for i in impls},
                     "milliseconds")


if __name__ == "__main__":
    main()
