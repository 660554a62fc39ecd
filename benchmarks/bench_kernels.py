"""Convolution and max-pooling kernels: minicnn's backends against PyTorch CPU and a
naive NumPy im2col, measured in the same run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_kernels.py
    python benchmarks/bench_kernels.py --backends cupy     # on an NVIDIA GPU
    python benchmarks/bench_kernels.py --smoke             # one tiny shape, seconds

The implementations are timed in turns (one call of each, then again), so a change
in the machine's load hits all alike. Prints, per shape, the median milliseconds of
forward and forward+backward, the effective GFLOP/s (2*N*OH*OW*F*KH*KW*C per pass;
forward+backward counts three passes: y, dW and dX), the fraction of the float32
GEMM peak this script measures on the same machine, and the ratios against PyTorch
and the naive baseline. Writes benchmarks/results/<machine kind>/bench_kernels.json and .png.

``--backends`` picks the minicnn backends (default: every CPU backend that runs
here). With ``cupy`` the peer is PyTorch on the same GPU ("torch-cuda", cuDNN at its
defaults; ``--cudnn-benchmark`` adds a column with ``torch.backends.cudnn.benchmark``
on), each GPU call is timed between two device synchronisations after two warm-up
calls (the first compiles the CUDA kernels), the GPU's float32 GEMM peak is measured
with CuPy (8192^3), and the extra device memory one call needs is reported (CuPy's
pool high-water mark, PyTorch's max_memory_allocated). PyTorch CPU and the naive
baseline run only when a CPU backend is measured too. A GPU run writes
bench_kernels_gpu.json and .png instead.
"""
import argparse
import os
import sys
from contextlib import nullcontext

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
# --smoke: one small shape of each
SMOKE_CONV_SHAPES = [(8, 14, 14, 6, 16, 5, 1, "valid")]
SMOKE_POOL_SHAPES = [(8, 12, 12, 8, 3, 2)]


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
# The implementations' names: minicnn-<backend>, torch (CPU), torch-cuda (cuDNN at
# its defaults), torch-cuda-cudnn-benchmark (torch.backends.cudnn.benchmark=True),
# naive (NumPy on the CPU).
TORCH_CUDA, TORCH_CUDA_TUNED = _common.TORCH_CUDA, _common.TORCH_CUDA_TUNED
is_gpu_impl = _common.is_gpu_name


def on_backend(backend, *arrays):
    """The host arrays as arrays of ``backend``'s module (CuPy arrays for cupy)."""
    if backend not in _common.GPU_BACKENDS:
        return arrays
    import cupy
    return tuple(cupy.asarray(a) for a in arrays)


def minicnn_conv(backend, x, w, b, s, padding, backward):
    x, w, b = on_backend(backend, x, w, b)

    def run():
        mc.backend.set_backend(backend)
        y, cache = conv2d_forward(x, w, b, (s, s), padding)
        if backward:
            conv2d_backward(mc.backend.get_array_module(y).ones_like(y), cache)
    return run


class _CudnnBenchmark:
    """Runs a block with ``torch.backends.cudnn.benchmark`` set to ``flag`` (None:
    as it is), then puts the previous value back."""

    def __init__(self, torch, flag):
        self.cudnn, self.flag = torch.backends.cudnn, flag

    def __enter__(self):
        self.previous = self.cudnn.benchmark
        if self.flag is not None:
            self.cudnn.benchmark = self.flag

    def __exit__(self, *exc):
        self.cudnn.benchmark = self.previous
        return False


def torch_conv(torch, x, w, b, s, padding, backward, device="cpu", cudnn_benchmark=None):
    """On ``device="cuda"`` the tensors live on the GPU and each call starts without
    gradients (no accumulation into the previous call's); ``cudnn_benchmark`` sets
    ``torch.backends.cudnn.benchmark`` for the call."""
    def tensor(a):
        t = torch.from_numpy(np.ascontiguousarray(a))
        return (t if device == "cpu" else t.to(device)).requires_grad_(backward)

    xt, wt, bt = tensor(x.transpose(0, 3, 1, 2)), tensor(w.transpose(3, 2, 0, 1)), tensor(b)
    pad = 0 if padding == "valid" else (w.shape[0] - 1) // 2  # the shapes here are symmetric
    flags = _CudnnBenchmark(torch, cudnn_benchmark) if device != "cpu" else nullcontext()

    def run():
        with flags:
            if backward:
                if device != "cpu":
                    xt.grad = wt.grad = bt.grad = None
                y = torch.nn.functional.conv2d(xt, wt, bt, stride=s, padding=pad)
                y.backward(torch.ones_like(y))
            else:
                with torch.no_grad():
                    torch.nn.functional.conv2d(xt, wt, bt, stride=s, padding=pad)
    return run


def minicnn_pool(backend, x, k, s, backward):
    (x,) = on_backend(backend, x)

    def run():
        mc.backend.set_backend(backend)
        y, cache = pool2d_forward(x, (k, k), (s, s), "valid", "max")
        if backward:
            pool2d_backward(mc.backend.get_array_module(y).ones_like(y), cache)
    return run


def torch_pool(torch, x, k, s, backward, device="cpu", cudnn_benchmark=None):
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    xt = (xt if device == "cpu" else xt.to(device)).requires_grad_(backward)
    flags = _CudnnBenchmark(torch, cudnn_benchmark) if device != "cpu" else nullcontext()

    def run():
        with flags:
            if backward:
                if device != "cpu":
                    xt.grad = None
                y = torch.nn.functional.max_pool2d(xt, k, s)
                y.backward(torch.ones_like(y))
            else:
                with torch.no_grad():
                    torch.nn.functional.max_pool2d(xt, k, s)
    return run


def device_bytes_of_call(impl, fn, torch):
    """Device memory one call of a GPU implementation needs beyond what is already
    allocated (its inputs): CuPy's pool growth from an emptied pool, or PyTorch's peak
    allocation above the allocation before the call."""
    if impl.startswith("minicnn-"):
        _common.cupy_pool_reset()
        before = _common.cupy_pool_bytes()
        fn()
        return _common.cupy_pool_bytes() - before
    _common.torch_peak_reset(torch)
    before = torch.cuda.memory_allocated()
    fn()
    return _common.torch_peak_bytes(torch) - before


def conv_flops(n, h, w, c, f, k, s, padding):
    _, (oh, ow) = resolve_padding((h, w), (k, k), (s, s), padding)
    return 2 * n * oh * ow * f * k * k * c


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed calls per implementation (default 5; 20 for GPU ones)")
    parser.add_argument("--quick", action="store_true", help="first two conv shapes only")
    _common.add_backend_options(parser)
    _common.add_output_options(parser)
    args = parser.parse_args(argv)
    backends = _common.select_backends(mc, args.backends, "bench_kernels.py")
    cpu_backends = [b for b in backends if b not in _common.GPU_BACKENDS]
    gpu = len(cpu_backends) < len(backends)

    info = _common.environment(512 if args.smoke else 2048)
    _common.print_environment(info)
    torch = _common.torch_or_none()
    torch_gpu = _common.torch_cuda_or_none(torch) if gpu else None
    results = {"environment": info}
    if gpu:
        gpu_info = _common.gpu_environment(torch)
        _common.print_environment(gpu_info)
        info.update(gpu_info)
    peak = gpu_peak = None
    if cpu_backends:
        peak = info["gemm_peak_gflops"]
        results["gemm_peak_gflops"] = peak
        print(f"float32 GEMM peak (NumPy's BLAS, {512 if args.smoke else 2048}^3): "
              f"{peak:.1f} GFLOP/s")
    if gpu:
        size = 1024 if args.smoke else 8192
        gpu_peak = _common.gpu_gemm_peak(size)
        results["gpu_gemm_peak_gflops"] = gpu_peak
        print(f"GPU float32 GEMM peak (cupy.matmul, {size}^3): {gpu_peak:.1f} GFLOP/s")
    results["cases"] = []
    if args.smoke:
        results["smoke"] = True

    impls = _common.framework_names(backends, torch, torch_gpu, args.cudnn_benchmark)
    if cpu_backends:
        impls.append("naive")
    gpu_impls = [i for i in impls if is_gpu_impl(i)]
    repeats = args.repeats or (2 if args.smoke else 5)
    repeats_for = {"naive": max(2, repeats // 2)}
    if args.repeats is None and not args.smoke:
        repeats_for.update({i: 20 for i in gpu_impls})  # GPU calls take milliseconds
    sync_for = {i: (torch_gpu.cuda.synchronize if i.startswith("torch") else _common.cupy_sync)
                for i in gpu_impls}
    timing = {"repeats_for": repeats_for, "sync_for": sync_for,
              "pause": bool(cpu_backends) and not args.smoke,  # nothing to settle on a GPU
              "warmup": 2 if gpu else 1}  # a GPU implementation's first call compiles
    failures = {}
    peak_of = {i: (gpu_peak if i in gpu_impls else peak) for i in impls}

    def measure(case, fns, flops_g=None):
        """Time ``fns`` (name -> call) on one case; an implementation that fails on it
        is reported and recorded, and the others go on."""
        failed = {}
        medians = _common.interleaved_medians(fns, repeats, failures=failed, **timing)
        case["ms"] = {impl: 1000 * t for impl, t in medians.items()}
        if flops_g is not None:
            case["gflops"] = {i: flops_g / (t / 1000) for i, t in case["ms"].items()}
            case["peak_fraction"] = {i: g / peak_of[i] for i, g in case["gflops"].items()}
        memory = {}
        for impl in gpu_impls:
            if impl in case["ms"]:
                try:
                    memory[impl] = device_bytes_of_call(impl, fns[impl], torch_gpu) / 2 ** 20
                except Exception as exc:
                    _common.report_failure(impl, exc, failed, "no memory figure for it here")
        if memory:
            case["device_mb"] = memory
        if failed:
            case["failures"] = failed
            failures.update({f"{impl} on {case['name']} {case['pass']}": why
                             for impl, why in failed.items()})
        results["cases"].append(case)

    conv_shapes = SMOKE_CONV_SHAPES if args.smoke else \
        CONV_SHAPES[:2] if args.quick else CONV_SHAPES
    rng = np.random.default_rng(0)
    with _common.MachineLoad() as load:
        for shape in conv_shapes:
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
                    elif impl in (TORCH_CUDA, TORCH_CUDA_TUNED):
                        fns[impl] = torch_conv(torch, x, wt, b, s, padding, backward, "cuda",
                                               True if impl == TORCH_CUDA_TUNED else None)
                    else:
                        fns[impl] = minicnn_conv(impl.split("-")[1], x, wt, b, s, padding,
                                                 backward)
                measure(case, fns, gflop)
                del fns
        pool_shapes = SMOKE_POOL_SHAPES if args.smoke else POOL_SHAPES
        for n, h, w, c, k, s in pool_shapes:
            x = rng.standard_normal((n, h, w, c), dtype=np.float32)
            name = f"maxpool {k}/{s} {n}x{h}x{w}x{c}"
            case = {"name": name, "pass": "fwd+bwd", "ms": {}}
            fns = {}
            for impl in impls:
                if impl == "naive":
                    fns[impl] = lambda: naive_maxpool(x, k, s, True)  # noqa: E731
                elif impl == "torch":
                    fns[impl] = torch_pool(torch, x, k, s, True)
                elif impl in (TORCH_CUDA, TORCH_CUDA_TUNED):
                    fns[impl] = torch_pool(torch, x, k, s, True, "cuda",
                                           True if impl == TORCH_CUDA_TUNED else None)
                else:
                    fns[impl] = minicnn_pool(impl.split("-")[1], x, k, s, True)
            measure(case, fns)
            del fns
    mc.backend.set_backend("numpy")
    results["other_processes_cpu_fraction"] = load.other_fraction
    if failures:
        results["failures"] = failures

    width = {i: max(15, len(i) + 2) for i in impls}

    def cell(ms, impl):
        return f"{ms[impl]:>{width[impl] - 2}.1f}ms" if impl in ms else \
            f"{'failed':>{width[impl]}}"

    best = [i for i in impls if i.startswith("minicnn") and i not in gpu_impls]
    gpu_minicnn = [i for i in impls if i.startswith("minicnn") and i in gpu_impls]
    header = f"\n{'case':<44}{'pass':<9}" + "".join(f"{i:>{width[i]}}" for i in impls)
    if best:
        header += f"{'best/torch':>12}{'x naive':>9}{'of peak':>9}"
    for g in gpu_minicnn:
        short = g.split("-", 1)[1]
        header += f"{short + '/torch-cuda':>17}{short + ' of peak':>14}"
    print(header)
    for case in results["cases"]:
        ms = case["ms"]
        line = f"{case['name']:<44}{case['pass']:<9}" + "".join(cell(ms, i) for i in impls)
        ran = [i for i in best if i in ms]
        if ran:
            fastest = min(ran, key=lambda i: ms[i])
            vs_torch = f"{ms['torch'] / ms[fastest]:.2f}" if "torch" in ms else "-"
            peak_text = (f"{case['peak_fraction'][fastest]:.2f}" if "peak_fraction" in case
                         else "-")
            case["best_minicnn"], case["best_over_torch_throughput"] = fastest, (
                ms["torch"] / ms[fastest] if "torch" in ms else None)
            naive_text = "-"
            if "naive" in ms:
                case["speedup_over_naive"] = ms["naive"] / ms[fastest]
                naive_text = f"{case['speedup_over_naive']:.1f}"
            line += f"{vs_torch:>12}{naive_text:>9}{peak_text:>9}"
        elif best:
            line += f"{'-':>12}{'-':>9}{'-':>9}"
        for g in gpu_minicnn:
            short = g.split("-", 1)[1]
            ratio = ms[TORCH_CUDA] / ms[g] if g in ms and TORCH_CUDA in ms else None
            if ratio is not None:
                case[f"{short}_over_torch_cuda_throughput"] = ratio
            if g in ms and TORCH_CUDA_TUNED in ms:
                case[f"{short}_over_torch_cuda_cudnn_benchmark_throughput"] = \
                    ms[TORCH_CUDA_TUNED] / ms[g]
            frac = case.get("peak_fraction", {}).get(g)
            line += (f"{(f'{ratio:.2f}' if ratio is not None else '-'):>17}"
                     f"{(f'{frac:.2f}' if frac is not None else '-'):>14}")
        print(line)
    if best:
        print(f"(best/torch: throughput of the fastest minicnn backend over PyTorch's; "
              f"other processes used {100 * load.other_fraction:.0f}% of the CPUs meanwhile)")
    if gpu_minicnn:
        print("(GPU: the ratio that matters is minicnn-cupy against PyTorch on the same GPU, "
              "cupy/torch-cuda = torch-cuda's time over minicnn-cupy's, higher is better; "
              "'of peak' is against the GPU GEMM peak above"
              + (f"; {TORCH_CUDA_TUNED} is PyTorch with torch.backends.cudnn.benchmark=True"
                 if TORCH_CUDA_TUNED in impls else "") + ")")
        print("device memory one call needs beyond its inputs (MB):")
        for case in results["cases"]:
            if case.get("device_mb"):
                print(f"  {case['name']:<44}{case['pass']:<9}" + "  ".join(
                    f"{i} {mb:,.1f}" for i, mb in case["device_mb"].items()))
    if torch_gpu is None and gpu:
        print("(no CUDA build of PyTorch here: no GPU peer figures)")
    _common.report_failures(failures)
    if _common.writes_files(args):
        name = _common.results_name("bench_kernels", gpu)
        _common.write_results(name, results, args.out)
        groups = [f"{c['name']} {c['pass']}" for c in results["cases"]]
        _common.bar_plot(name, "Kernel time (ms, lower is better)", groups,
                         {i: [c["ms"].get(i) for c in results["cases"]] for i in impls},
                         "milliseconds", args.out)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
