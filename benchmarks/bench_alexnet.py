"""Images per second of one training step of the AlexNet variant (224x224x3, 17
classes, batch 32, Adam) and the peak memory of the process: every minicnn backend
against PyTorch CPU.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_alexnet.py

Each framework runs in a fresh process, so its peak resident memory (ru_maxrss)
is its own; the frameworks take turns for ``--rounds`` rounds, and the throughput
ratio is the median over rounds of the ratio within a round. Writes benchmarks/results/bench_alexnet.json and .png.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _common  # noqa: E402


def worker_minicnn(backend, batch, steps):
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
    return [_timed(lambda: model.train_on_batch(x, y)) for _ in range(steps + 1)]


def worker_torch(batch, steps):
    import torch
    nn = torch.nn
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)

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
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.rand(batch, 3, 224, 224)
    y = torch.randint(0, 17, (batch,))

    def step():
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
    return [_timed(step) for _ in range(steps + 1)]


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_worker(framework, batch, steps):
    """Measure in a child process; returns its step times and peak RSS in MB."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", framework,
           "--batch-size", str(batch), "--steps", str(steps)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{framework} worker failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up")
    parser.add_argument("--rounds", type=int, default=2,
                        help="times each framework's worker runs, taking turns")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        if args.worker == "torch":
            times = worker_torch(args.batch_size, args.steps)
        else:
            times = worker_minicnn(args.worker.split("-")[1], args.batch_size, args.steps)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"step_seconds": times, "peak_mb": peak_mb}))
        return

    info = _common.environment()
    _common.print_environment(info)
    import minicnn as mc
    frameworks = [f"minicnn-{b}" for b in mc.backend.available() if b != "cupy"]
    if _common.torch_or_none() is not None:
        frameworks.append("torch")
    results = {"environment": info, "batch_size": args.batch_size, "frameworks": {}}
    rounds = {name: [] for name in frameworks}
    with _common.MachineLoad() as load:
        for _ in range(args.rounds):  # frameworks take turns, so load changes hit all alike
            for name in frameworks:
                rounds[name].append(run_worker(name, args.batch_size, args.steps))
    for name, runs in rounds.items():
        per_round = [statistics.median(r["step_seconds"][1:]) for r in runs]
        steady = statistics.median(per_round)
        r = {"rounds": runs, "steady_per_round": per_round, "steady_step_seconds": steady,
             "images_per_second": args.batch_size / steady,
             "peak_mb": max(run["peak_mb"] for run in runs)}
        results["frameworks"][name] = r
        print(f"{name:<16} step {steady:.2f} s ({r['images_per_second']:.1f} img/s; rounds "
              f"{', '.join(f'{t:.2f}' for t in per_round)} s), first step "
              f"{runs[0]['step_seconds'][0]:.2f} s, peak memory {r['peak_mb']:,.0f} MB")
    results["other_processes_cpu_fraction"] = load.other_fraction
    if "torch" in results["frameworks"]:
        ref = results["frameworks"]["torch"]
        for name, r in results["frameworks"].items():
            ratios = [b / a for a, b in zip(r["steady_per_round"], ref["steady_per_round"])]
            r["throughput_over_torch_per_round"] = ratios
            r["throughput_over_torch"] = statistics.median(ratios)
            r["memory_over_torch"] = r["peak_mb"] / ref["peak_mb"]
            print(f"{name:<16} throughput / PyTorch's {r['throughput_over_torch']:.2f} (median "
                  f"over rounds), peak memory / PyTorch's {r['memory_over_torch']:.2f}")
    print(f"other processes used {100 * load.other_fraction:.0f}% of the CPUs meanwhile")
    _common.write_results("bench_alexnet", results)
    names = list(results["frameworks"])
    _common.bar_plot("bench_alexnet", "AlexNet variant training step, batch "
                     f"{args.batch_size} (images/s, higher is better)", names,
                     {"images/s": [results["frameworks"][n]["images_per_second"]
                                   for n in names]}, "images per second")


if __name__ == "__main__":
    main()
