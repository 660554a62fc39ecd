"""Seconds per training epoch of LeNet-5 on Fashion-MNIST (60,000 images, batch 128,
Adam): every minicnn backend against PyTorch CPU, in the same run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_lenet5.py
    MINICNN_OFFLINE=1 python benchmarks/bench_lenet5.py --backends cupy   # NVIDIA GPU
    python benchmarks/bench_lenet5.py --smoke                             # seconds

Each framework trains ``--epochs`` epochs (default 2), taking turns epoch by epoch
so that a change in the machine's load hits all alike; the first epoch includes any
JIT compilation, so "steady" is the median of the later epochs, "first-epoch
overhead" is the difference, and the ratio to PyTorch is the median over the later
rounds of (epoch time / PyTorch's epoch time in the same round). The JIT warm-up
with a warm on-disk cache is measured in fresh processes: the time from import to
the end of the first training step.
Writes benchmarks/results/<machine kind>/bench_lenet5.json and .png.

With ``--backends cupy`` the peer is PyTorch on the same GPU ("torch-cuda", cuDNN at
its defaults; ``--cudnn-benchmark`` adds it with ``torch.backends.cudnn.benchmark``
on), and the ratio that matters is minicnn-cupy's images/s over torch-cuda's. Both
take every batch from host memory (minicnn's ``fit`` moves it, PyTorch by
``.to("cuda")``); each epoch is timed between two device synchronisations; each GPU
framework first trains a few warm-up steps (CUDA kernel compilation, cuBLAS and
cuDNN set-up), timed apart. A GPU run trains 60,000 images per epoch by default (the
10,000-image subset shipped with minicnn repeated, where the full set is not
installed: an epoch's time does not depend on the pixels) for 3 epochs, reports the
device memory each GPU framework held at its peak (CuPy's memory pool high-water
mark, PyTorch's max_memory_allocated), and writes bench_lenet5_gpu.json and .png.
"""
import argparse
import os
import statistics
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import _common  # noqa: E402
from lenet5 import lenet5, load_data  # noqa: E402

import minicnn as mc  # noqa: E402


class Trainer:
    """One framework under test. ``epoch()`` trains one epoch. A GPU framework also
    has ``warmup()`` (a few steps, run once before the timed epochs), ``sync`` (its
    device synchronisation) and ``memory_before(first)``/``memory_after()`` (the
    device bytes it held at its peak, read after each epoch)."""

    def __init__(self, epoch, warmup=None, sync=None, memory_before=None, memory_after=None):
        self.epoch, self.warmup, self.sync = epoch, warmup, sync
        self.memory_before, self.memory_after = memory_before, memory_after


def warmup_images(count, batch_size):
    """Two full batches and the epoch's last, partial batch (another shape)."""
    return min(count, 2 * batch_size + count % batch_size)


def minicnn_trainer(backend, x, y, batch_size):
    """A LeNet-5 on ``backend``; each call of ``epoch`` trains one epoch."""
    mc.backend.set_backend(backend)
    mc.utils.set_random_seed(0)
    model = lenet5()
    model.compile(optimizer=mc.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])

    def epoch():
        mc.backend.set_backend(backend)
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, seed=0)

    if backend not in _common.GPU_BACKENDS:
        return Trainer(epoch)

    def warmup():
        mc.backend.set_backend(backend)
        n = warmup_images(len(x), batch_size)
        model.fit(x[:n], y[:n], batch_size=batch_size, epochs=1, verbose=0, seed=0)

    def memory_before(first):
        if first:  # the pool only grows from here: its size at the end is the peak
            _common.cupy_pool_reset()

    return Trainer(epoch, warmup, _common.cupy_sync, memory_before, _common.cupy_pool_bytes)


def torch_trainer(torch, x, y, batch_size, device="cpu", cudnn_benchmark=None):
    """PyTorch's LeNet-5. On ``device="cuda"`` each batch is gathered on the host and
    copied to the GPU, as minicnn's fit does; ``cudnn_benchmark`` sets
    ``torch.backends.cudnn.benchmark`` while it trains."""
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))
    if device != "cpu":
        model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    yt = torch.from_numpy(y.astype(np.int64))
    generator = torch.Generator().manual_seed(0)

    def steps(order):
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            xb, yb = xt[idx], yt[idx]
            if device != "cpu":
                xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()

    def epoch():
        steps(torch.randperm(len(xt), generator=generator))

    if device == "cpu":
        return Trainer(epoch)

    def with_cudnn_flag(fn):
        def run():
            previous = torch.backends.cudnn.benchmark
            if cudnn_benchmark is not None:
                torch.backends.cudnn.benchmark = cudnn_benchmark
            try:
                fn()
            finally:
                torch.backends.cudnn.benchmark = previous
        return run

    def warmup():
        steps(torch.arange(warmup_images(len(xt), batch_size)))

    return Trainer(with_cudnn_flag(epoch), with_cudnn_flag(warmup), torch.cuda.synchronize,
                   lambda first: _common.torch_peak_reset(torch),
                   lambda: _common.torch_peak_bytes(torch))


def isolated_torch_trainer(x, y, batch_size, device="cpu", cudnn_benchmark=None):
    """torch_trainer for a worker process, which imports PyTorch itself."""
    return torch_trainer(_common.torch_or_none(), x, y, batch_size, device, cudnn_benchmark)


def interleaved_epochs(trainers, epochs, failures=None):
    """Epoch times per framework, taking turns epoch by epoch (A, B, A, B, ...), so a
    change in the machine's load hits every framework alike; and the device bytes each
    GPU framework held at its peak. A framework that fails is reported, recorded in
    ``failures`` (when given) and left out of the later rounds."""
    times = {name: [] for name in trainers}
    peaks = {}
    for r in range(epochs):
        for name, trainer in trainers.items():
            if failures is not None and name in failures:
                continue
            _common.settle()  # the other library's threads stop spinning first
            try:
                if trainer.memory_before is not None:
                    trainer.memory_before(r == 0)
                times[name].append(_common.timed(trainer.epoch, trainer.sync))
                if trainer.memory_after is not None:
                    peaks[name] = max(peaks.get(name, 0), trainer.memory_after())
            except Exception as exc:
                if failures is None:
                    raise
                _common.report_failure(name, exc, failures)
    mc.backend.set_backend("numpy")
    return times, peaks


def take_images(x, y, count):
    """The first ``count`` images, or the whole set repeated up to ``count``."""
    if count is None or count == len(x):
        return x, y
    if count <= len(x):
        return x[:count], y[:count]
    reps = -(-count // len(x))
    print(f"{len(x)} images loaded, repeated to {count} (an epoch's time does not depend on "
          f"the pixels; install the full Fashion-MNIST for the real set)")
    return np.concatenate([x] * reps)[:count], np.concatenate([y] * reps)[:count]


WARMUP_SCRIPT = """
import time; start = time.perf_counter()
import sys, numpy as np; sys.path.insert(0, {examples!r})
import minicnn as mc; from lenet5 import lenet5
mc.backend.set_backend("numba")
model = lenet5(); model.compile("adam", "sparse_categorical_crossentropy")
model.train_on_batch(np.zeros((128, 28, 28, 1), np.float32), np.zeros(128, int))
print(time.perf_counter() - start)
"""


def jit_warmup_seconds(runs=3):
    """Fresh processes, each: import, build, one training step. The first run may
    fill numba's on-disk cache; the later runs show the warm-cache warm-up."""
    examples = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")
    code = WARMUP_SCRIPT.format(examples=os.path.abspath(examples))
    out = []
    for _ in range(runs):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True)
        out.append(float(result.stdout.strip().splitlines()[-1]))
    return out


TORCH_CUDA, TORCH_CUDA_TUNED = _common.TORCH_CUDA, _common.TORCH_CUDA_TUNED


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None,
                        help="timed epochs per framework (default 2; 3 with a GPU backend)")
    parser.add_argument("--batch-size", "--batch", type=int, default=128)
    parser.add_argument("--images", type=int, default=None,
                        help="images per epoch (default: the whole training set; 60,000 "
                             "with a GPU backend, repeating the shipped subset if needed)")
    _common.add_backend_options(parser)
    _common.add_output_options(parser)
    args = parser.parse_args(argv)
    backends = _common.select_backends(mc, args.backends, "bench_lenet5.py")
    cpu_backends = [b for b in backends if b not in _common.GPU_BACKENDS]
    gpu = len(cpu_backends) < len(backends)
    epochs = args.epochs or (3 if gpu and not args.smoke else 2)
    images = args.images or (256 if args.smoke else 60000 if gpu else None)
    if args.smoke:
        os.environ.setdefault("MINICNN_OFFLINE", "1")  # the shipped subset is plenty

    info = _common.environment(512 if args.smoke else 2048)
    _common.print_environment(info)
    torch = _common.torch_or_none()
    torch_gpu = _common.torch_cuda_or_none(torch) if gpu else None
    if gpu:
        gpu_info = _common.gpu_environment(torch)
        _common.print_environment(gpu_info)
        info.update(gpu_info)
    (x, y), _ = load_data(None)
    x, y = take_images(x, y, images)
    print(f"training images: {len(x)}")
    results = {"environment": info, "images": len(x), "batch_size": args.batch_size,
               "frameworks": {}}
    if args.smoke:
        results["smoke"] = True
    failures = {}
    # Each CPU framework trains in a process of its own (see _common.IsolatedTrainer: in
    # one process they change each other's heap and threads); the GPU ones stay here,
    # where their device work does not meet the other framework's host allocations.
    isolated = {f"minicnn-{b}": ("minicnn_trainer", b, x, y, args.batch_size)
                for b in cpu_backends}
    if torch is not None and cpu_backends:
        isolated["torch"] = ("isolated_torch_trainer", x, y, args.batch_size)
    makers = {name: (lambda spec=spec: _common.IsolatedTrainer("bench_lenet5", *spec))
              for name, spec in isolated.items()}
    for b in backends:
        if b in _common.GPU_BACKENDS:
            makers[f"minicnn-{b}"] = lambda b=b: minicnn_trainer(b, x, y, args.batch_size)
    if torch_gpu is not None:
        makers[TORCH_CUDA] = lambda: torch_trainer(torch, x, y, args.batch_size, "cuda")
        if args.cudnn_benchmark:
            makers[TORCH_CUDA_TUNED] = lambda: torch_trainer(torch, x, y, args.batch_size,
                                                             "cuda", cudnn_benchmark=True)
    trainers = {}
    for name, make in makers.items():
        try:
            trainers[name] = make()
        except Exception as exc:
            _common.report_failure(name, exc, failures)
    gpu_names = [n for n, t in trainers.items() if t.sync is not None]
    warmups = {}
    for name in gpu_names:  # CUDA kernels compile, cuBLAS and cuDNN set up: not timed
        try:
            warmups[name] = _common.timed(trainers[name].warmup, trainers[name].sync)
            print(f"{name:<16} warm-up ({warmup_images(len(x), args.batch_size)} images: "
                  f"kernel compilation, library set-up): {warmups[name]:.2f} s", flush=True)
        except Exception as exc:
            _common.report_failure(name, exc, failures)
    with _common.MachineLoad() as load:
        all_times, peaks = interleaved_epochs(trainers, epochs, failures)
        for name, times in all_times.items():
            if name in failures or not times:
                continue
            steady = statistics.median(times[1:]) if len(times) > 1 else times[0]
            r = results["frameworks"][name] = {
                "epoch_seconds": times, "steady": steady,
                "first_epoch_overhead": times[0] - steady,
                "images_per_second": len(x) / steady}
            memory = ""
            if name in warmups:
                r["warmup_seconds"] = warmups[name]
            if name in peaks:
                r["device_peak_mb"] = peaks[name] / 2 ** 20
                memory = f", device memory peak {r['device_peak_mb']:,.0f} MB"
            print(f"{name:<16} epochs {', '.join(f'{t:.2f}s' for t in times)}  steady "
                  f"{steady:.2f} s/epoch ({len(x) / steady:,.0f} img/s), first-epoch overhead "
                  f"{times[0] - steady:+.2f} s{memory}", flush=True)
        if "numba" in cpu_backends and not args.smoke:
            warm = jit_warmup_seconds()
            results["numba_warmup_seconds"] = warm
            print(f"numba: import + build + first training step in fresh processes: "
                  f"{', '.join(f'{t:.2f}s' for t in warm)} (the later runs use the warm cache)")
    for trainer in trainers.values():
        if isinstance(trainer, _common.IsolatedTrainer):
            trainer.close()
    results["other_processes_cpu_fraction"] = load.other_fraction
    frameworks = results["frameworks"]

    def over(name, ref):
        """Per round, this framework's epoch over the reference's epoch of the same round."""
        r, base = frameworks[name], frameworks[ref]
        pairs = list(zip(r["epoch_seconds"], base["epoch_seconds"]))
        return [a / b for a, b in (pairs[1:] or pairs)]

    if "torch" in frameworks:
        for name in [n for n in frameworks if n not in gpu_names]:
            r = frameworks[name]
            r["time_over_torch_per_round"] = over(name, "torch")
            r["time_over_torch"] = statistics.median(r["time_over_torch_per_round"])
            print(f"{name:<16} epoch time / PyTorch's (median over rounds): "
                  f"{r['time_over_torch']:.2f}  (rounds: "
                  f"{', '.join(f'{v:.2f}' for v in r['time_over_torch_per_round'])})")
    if TORCH_CUDA in frameworks:
        ref = frameworks[TORCH_CUDA]
        _common.print_gpu_peer_note()
        for name in [n for n in gpu_names if n in frameworks]:
            r = frameworks[name]
            r["time_over_torch_cuda_per_round"] = over(name, TORCH_CUDA)
            r["time_over_torch_cuda"] = statistics.median(r["time_over_torch_cuda_per_round"])
            r["images_per_second_over_torch_cuda"] = (r["images_per_second"]
                                                      / ref["images_per_second"])
            memory = ""
            if "device_peak_mb" in r and ref.get("device_peak_mb"):
                r["device_memory_over_torch_cuda"] = r["device_peak_mb"] / ref["device_peak_mb"]
                memory = f", device memory / torch-cuda's {r['device_memory_over_torch_cuda']:.2f}"
            print(f"{name:<16} images/s / torch-cuda's: "
                  f"{r['images_per_second_over_torch_cuda']:.2f}"
                  f"  (epoch time / torch-cuda's per round: "
                  f"{', '.join(f'{v:.2f}' for v in r['time_over_torch_cuda_per_round'])})"
                  f"{memory}")
        for name in [n for n in gpu_names if n in frameworks and n.startswith("minicnn-")]:
            ratio = frameworks[name]["images_per_second_over_torch_cuda"]
            _common.print_target(name, ratio)
    elif gpu and torch_gpu is None:
        print("(no CUDA build of PyTorch here: no GPU peer figures)")
    print(f"other processes used {100 * load.other_fraction:.0f}% of the CPUs meanwhile")
    _common.report_failures(failures, results)
    if _common.writes_files(args):
        name = _common.results_name("bench_lenet5", gpu)
        _common.write_results(name, results, args.out)
        names = list(frameworks)
        _common.bar_plot(name, "LeNet-5 epoch on Fashion-MNIST (s, lower is better)",
                         names, {"steady epoch": [frameworks[n]["steady"] for n in names]},
                         "seconds", args.out)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
