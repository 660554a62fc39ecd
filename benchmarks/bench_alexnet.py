"""Images per second of one training step of the AlexNet variant (224x224x3, 17
classes, batch 32, Adam) and the peak memory of the process: every minicnn backend
against PyTorch CPU.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_alexnet.py
    python benchmarks/bench_alexnet.py --backends cupy      # NVIDIA GPU, batch 128
    python benchmarks/bench_alexnet.py --smoke              # batch 2, one step, seconds

Each framework runs in a fresh process, so its peak resident memory (ru_maxrss)
is its own; the frameworks take turns for ``--rounds`` rounds, and the throughput
ratio is the median over rounds of the ratio within a round. Writes benchmarks/results/<machine kind>/bench_alexnet.json and .png.

With ``--backends cupy`` (each worker process sets its backend) the peer is PyTorch
on the same GPU ("torch-cuda", cuDNN at its defaults; ``--cudnn-benchmark`` adds it
with ``torch.backends.cudnn.benchmark`` on), and the figure that matters is
minicnn-cupy's images/s over torch-cuda's (the target: at least 0.5). A GPU run
defaults to batch 128, two warm-up steps (CUDA kernel compilation, cuBLAS and cuDNN
set-up) and ten timed steps, each between two device synchronisations; the batch
stays on the device for both frameworks (``--host-batches``: both copy it from host
memory every step). The memory compared is the device memory each held at its peak
(CuPy's memory pool high-water mark, PyTorch's max_memory_allocated). A GPU run
writes bench_alexnet_gpu.json and .png.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _common  # noqa: E402


TORCH_CUDA, TORCH_CUDA_TUNED = _common.TORCH_CUDA, _common.TORCH_CUDA_TUNED


def worker_minicnn(backend, batch, steps, warmup=1, host_batches=False):
    """Step times (warm-up steps first) and, on a GPU backend, the device bytes held
    at the peak (None on the CPU)."""
    sys.path.insert(0, os.path.join(HERE, "..", "examples"))
    import minicnn as mc
    from alexnet import alexnet
    mc.backend.set_backend(backend)
    mc.utils.set_random_seed(0)
    model = alexnet()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((batch, 224, 224, 3), dtype=np.float32)
    y = rng.integers(0, 17, batch)
    if backend not in _common.GPU_BACKENDS:
        return [_common.timed(lambda: model.train_on_batch(x, y))
                for _ in range(steps + warmup)], None
    if not host_batches:  # the batch stays on the device, as PyTorch's does
        import cupy
        x, y = cupy.asarray(x), cupy.asarray(y)
    _common.cupy_pool_reset()
    times = [_common.timed(lambda: model.train_on_batch(x, y), _common.cupy_sync)
             for _ in range(steps + warmup)]
    return times, _common.cupy_pool_bytes()


def worker_torch(batch, steps, warmup=1, device="cpu", cudnn_benchmark=False,
                 host_batches=False):
    import torch
    nn = torch.nn
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    if cudnn_benchmark:
        torch.backends.cudnn.benchmark = True

    def bn2d(c):
        return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)

    def bn1d(c):
        return nn.BatchNorm1d(c, eps=1e-3, momentum=0.01)

    model = nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(), nn.MaxPool2d(3, 2), bn2d(96),
        nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2), bn2d(256),
        nn.Conv2d(256, 384, 3), nn.ReLU(), bn2d(384),
        nn.Conv2d(384, 384, 3), nn.ReLU(), bn2d(384),
        nn.Conv2d(384, 256, 3), nn.ReLU(), nn.MaxPool2d(3, 2), bn2d(256), nn.Flatten(),
        nn.Linear(1024, 4096), nn.ReLU(), nn.Dropout(0.4), bn1d(4096),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.4), bn1d(4096), nn.Linear(4096, 17))
    gpu = device != "cpu"
    if gpu:
        model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.rand(batch, 3, 224, 224)
    y = torch.randint(0, 17, (batch,))
    if gpu and not host_batches:
        x, y = x.to(device), y.to(device)

    def step():
        xb, yb = (x.to(device), y.to(device)) if gpu and host_batches else (x, y)
        optimizer.zero_grad()
        loss_fn(model(xb), yb).backward()
        optimizer.step()
    if not gpu:
        return [_common.timed(step) for _ in range(steps + warmup)], None
    _common.torch_peak_reset(torch)
    times = [_common.timed(step, torch.cuda.synchronize) for _ in range(steps + warmup)]
    return times, _common.torch_peak_bytes(torch)


def run_worker(framework, batch, steps, warmup, host_batches=False, timeout=None):
    """Measure in a child process; returns its step times, its warm-up count, its peak
    RSS in MB and (GPU frameworks) its peak device memory in MB."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", framework,
           "--batch-size", str(batch), "--steps", str(steps), "--warmup", str(warmup)]
    if host_batches:
        cmd.append("--host-batches")
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise WorkerFailed(f"{framework} worker did not finish in {timeout} s", "") from None
    if out.returncode != 0:
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        raise WorkerFailed(lines[-1] if lines else f"exit status {out.returncode}",
                           f"{framework} worker failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


class WorkerFailed(RuntimeError):
    """A worker process failed: ``str()`` is its last error line, ``details`` its
    stderr."""

    def __init__(self, message, details):
        super().__init__(message)
        self.details = details


def run_in_worker(args):
    """The --worker side: measure one framework, print one JSON line."""
    if args.worker == "torch":
        times, device = worker_torch(args.batch_size, args.steps, args.warmup)
    elif args.worker in (TORCH_CUDA, TORCH_CUDA_TUNED):
        times, device = worker_torch(args.batch_size, args.steps, args.warmup, "cuda",
                                     args.worker == TORCH_CUDA_TUNED, args.host_batches)
    else:
        times, device = worker_minicnn(args.worker.split("-", 1)[1], args.batch_size,
                                       args.steps, args.warmup, args.host_batches)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {"step_seconds": times, "peak_mb": peak_mb}
    if args.warmup != 1:
        report["warmup"] = args.warmup
    if device is not None:
        report["device_peak_mb"] = device / 2 ** 20
    print(json.dumps(report))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", "--batch", type=int, default=None,
                        help="images per step (default 32; 128 with a GPU backend)")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps after the warm-up (default 3; 10 with a GPU backend)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed first steps (default 1; 2 with a GPU backend)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="times each framework's worker runs, taking turns (default 2)")
    _common.add_backend_options(parser)
    parser.add_argument("--host-batches", action="store_true",
                        help="GPU frameworks copy the batch from host memory every step "
                             "(default: it stays on the device)")
    parser.add_argument("--worker-timeout", type=float, default=None,
                        help="seconds a worker may take (default: none on the CPU, 300 s "
                             "with a GPU backend)")
    _common.add_output_options(parser)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        args.batch_size = args.batch_size or 32
        args.steps = 3 if args.steps is None else args.steps
        args.warmup = 1 if args.warmup is None else args.warmup
        run_in_worker(args)
        return 0

    import minicnn as mc
    backends = _common.select_backends(mc, args.backends, "bench_alexnet.py")
    cpu_backends = [b for b in backends if b not in _common.GPU_BACKENDS]
    gpu = len(cpu_backends) < len(backends)
    smoke = args.smoke
    batch = args.batch_size or ((8 if gpu else 2) if smoke else 128 if gpu else 32)
    steps = args.steps if args.steps is not None else (
        (2 if gpu else 1) if smoke else 10 if gpu else 3)
    warmup = args.warmup if args.warmup is not None else (2 if gpu and not smoke else 1)
    rounds = args.rounds or (1 if smoke else 2)
    timeout = args.worker_timeout or (300 if gpu else None)

    info = _common.environment(512 if smoke else 2048)
    _common.print_environment(info)
    torch = _common.torch_or_none()
    torch_gpu = _common.torch_cuda_or_none(torch) if gpu else None
    results = {"environment": info, "batch_size": batch, "frameworks": {}}
    if gpu:
        gpu_info = _common.gpu_environment(torch)
        _common.print_environment(gpu_info)
        info.update(gpu_info)
        size = 1024 if smoke else 8192
        results["gpu_gemm_peak_gflops"] = _common.gpu_gemm_peak(size)
        print(f"GPU float32 GEMM peak (cupy.matmul, {size}^3): "
              f"{results['gpu_gemm_peak_gflops']:.1f} GFLOP/s")
        results.update(steps=steps, warmup_steps=warmup,
                       batch_on_device=not args.host_batches)
    if smoke:
        results["smoke"] = True
    frameworks = _common.framework_names(backends, torch, torch_gpu, args.cudnn_benchmark)
    gpu_names = [n for n in frameworks if _common.is_gpu_name(n)]
    rounds_of = {name: [] for name in frameworks}
    failures = {}
    with _common.MachineLoad() as load:
        for _ in range(rounds):  # frameworks take turns, so load changes hit all alike
            for name in frameworks:
                if name in failures:
                    continue
                try:
                    rounds_of[name].append(run_worker(
                        name, batch, steps, warmup,
                        args.host_batches and name in gpu_names, timeout))
                except WorkerFailed as exc:
                    print(exc.details, file=sys.stderr)
                    failures[name] = str(exc)
                    print(f"{name} failed ({_common.one_line(exc)}); it is left out of what "
                          "follows", flush=True)
    for name, runs in rounds_of.items():
        if not runs:
            continue
        per_round = [statistics.median(r["step_seconds"][r.get("warmup", 1):]) for r in runs]
        steady = statistics.median(per_round)
        r = {"rounds": runs, "steady_per_round": per_round, "steady_step_seconds": steady,
             "images_per_second": batch / steady,
             "peak_mb": max(run["peak_mb"] for run in runs)}
        memory = f"peak memory {r['peak_mb']:,.0f} MB"
        if name in gpu_names:
            r["device_peak_mb"] = max(run.get("device_peak_mb", 0) for run in runs)
            memory = (f"peak device memory {r['device_peak_mb']:,.0f} MB (process RSS "
                      f"{r['peak_mb']:,.0f} MB)")
        results["frameworks"][name] = r
        digits = 4 if name in gpu_names else 2  # GPU steps take milliseconds
        print(f"{name:<16} step {steady:.{digits}f} s ({r['images_per_second']:.1f} img/s; "
              f"rounds {', '.join(f'{t:.{digits}f}' for t in per_round)} s), first step "
              f"{runs[0]['step_seconds'][0]:.2f} s, {memory}")
    results["other_processes_cpu_fraction"] = load.other_fraction
    done = results["frameworks"]
    if "torch" in done:
        ref = done["torch"]
        for name in [n for n in done if n not in gpu_names]:
            r = done[name]
            ratios = [b / a for a, b in zip(r["steady_per_round"], ref["steady_per_round"])]
            r["throughput_over_torch_per_round"] = ratios
            r["throughput_over_torch"] = statistics.median(ratios)
            r["memory_over_torch"] = r["peak_mb"] / ref["peak_mb"]
            print(f"{name:<16} throughput / PyTorch's {r['throughput_over_torch']:.2f} (median "
                  f"over rounds), peak memory / PyTorch's {r['memory_over_torch']:.2f}")
    if TORCH_CUDA in done:
        ref = done[TORCH_CUDA]
        _common.print_gpu_peer_note()
        for name in [n for n in done if n in gpu_names]:
            r = done[name]
            ratios = [b / a for a, b in zip(r["steady_per_round"], ref["steady_per_round"])]
            r["throughput_over_torch_cuda_per_round"] = ratios
            r["throughput_over_torch_cuda"] = statistics.median(ratios)
            if ref.get("device_peak_mb"):
                r["device_memory_over_torch_cuda"] = r["device_peak_mb"] / ref["device_peak_mb"]
            print(f"{name:<16} images/s / torch-cuda's {r['throughput_over_torch_cuda']:.2f} "
                  f"(median over rounds), peak device memory / torch-cuda's "
                  f"{r.get('device_memory_over_torch_cuda', float('nan')):.2f}")
        for name in [n for n in done if n in gpu_names and n.startswith("minicnn-")]:
            ratio = done[name]["throughput_over_torch_cuda"]
            _common.print_target(name, ratio, f"images/s over torch-cuda's at batch {batch}")
    elif gpu and torch_gpu is None:
        print("(no CUDA build of PyTorch here: no GPU peer figures)")
    print(f"other processes used {100 * load.other_fraction:.0f}% of the CPUs meanwhile")
    _common.report_failures(failures, results)
    if _common.writes_files(args):
        name = _common.results_name("bench_alexnet", gpu)
        _common.write_results(name, results, args.out)
        names = list(done)
        _common.bar_plot(name, "AlexNet variant training step, batch "
                         f"{batch} (images/s, higher is better)", names,
                         {"images/s": [done[n]["images_per_second"] for n in names]},
                         "images per second", args.out)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
