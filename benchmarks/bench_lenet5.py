"""Seconds per training epoch of LeNet-5 on Fashion-MNIST (60,000 images, batch 128,
Adam): every minicnn backend against PyTorch CPU, in the same run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_lenet5.py

Each framework trains ``--epochs`` epochs (default 2), taking turns epoch by epoch
so that a change in the machine's load hits all alike; the first epoch includes any
JIT compilation, so "steady" is the median of the later epochs, "first-epoch
overhead" is the difference, and the ratio to PyTorch is the median over the later
rounds of (epoch time / PyTorch's epoch time in the same round). The JIT warm-up
with a warm on-disk cache is measured in fresh processes: the time from import to
the end of the first training step.
Writes benchmarks/results/bench_lenet5.json and .png.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import _common  # noqa: E402
from lenet5 import lenet5, load_data  # noqa: E402

import minicnn as mc  # noqa: E402


def minicnn_trainer(backend, x, y, batch_size):
    """A LeNet-5 on ``backend``; each call of the returned function trains one epoch."""
    mc.backend.set_backend(backend)
    mc.utils.set_random_seed(0)
    model = lenet5()
    model.compile(optimizer=mc.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])

    def epoch():
        mc.backend.set_backend(backend)
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, seed=0)
    return epoch


def torch_trainer(torch, x, y, batch_size):
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    yt = torch.from_numpy(y.astype(np.int64))
    generator = torch.Generator().manual_seed(0)

    def epoch():
        order = torch.randperm(len(xt), generator=generator)
        for i in range(0, len(xt), batch_size):
            idx = order[i:i + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            optimizer.step()
    return epoch


def interleaved_epochs(trainers, epochs):
    """Epoch times per framework, taking turns epoch by epoch (A, B, A, B, ...), so a
    change in the machine's load hits every framework alike."""
    times = {name: [] for name in trainers}
    for _ in range(epochs):
        for name, epoch in trainers.items():
            _common.settle()  # the other library's threads stop spinning first
            start = time.perf_counter()
            epoch()
            times[name].append(time.perf_counter() - start)
    mc.backend.set_backend("numpy")
    return times


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--backends", nargs="+", default=None)
    args = parser.parse_args(argv)
    info = _common.environment()
    _common.print_environment(info)
    torch = _common.torch_or_none()
    (x, y), _ = load_data(None)
    print(f"training images: {len(x)}")
    results = {"environment": info, "images": len(x), "batch_size": args.batch_size,
               "frameworks": {}}
    trainers = {f"minicnn-{b}": minicnn_trainer(b, x, y, args.batch_size)
                for b in (args.backends or mc.backend.available())}
    if torch:
        trainers["torch"] = torch_trainer(torch, x, y, args.batch_size)
    with _common.MachineLoad() as load:
        all_times = interleaved_epochs(trainers, args.epochs)
        for name, times in all_times.items():
            steady = statistics.median(times[1:]) if len(times) > 1 else times[0]
            results["frameworks"][name] = {"epoch_seconds": times, "steady": steady,
                                           "first_epoch_overhead": times[0] - steady,
                                           "images_per_second": len(x) / steady}
            print(f"{name:<16} epochs {', '.join(f'{t:.2f}s' for t in times)}  steady "
                  f"{steady:.2f} s/epoch ({len(x) / steady:,.0f} img/s), first-epoch overhead "
                  f"{times[0] - steady:+.2f} s", flush=True)
        if "numba" in mc.backend.available():
            warm = jit_warmup_seconds()
            results["numba_warmup_seconds"] = warm
            print(f"numba: import + build + first training step in fresh processes: "
                  f"{', '.join(f'{t:.2f}s' for t in warm)} (the later runs use the warm cache)")
    results["other_processes_cpu_fraction"] = load.other_fraction
    if torch:
        ref = results["frameworks"]["torch"]
        for name, r in results["frameworks"].items():
            # per round, this framework's epoch over PyTorch's epoch of the same round
            pairs = list(zip(r["epoch_seconds"], ref["epoch_seconds"]))[1:] or \
                list(zip(r["epoch_seconds"], ref["epoch_seconds"]))
            r["time_over_torch_per_round"] = [a / b for a, b in pairs]
            r["time_over_torch"] = statistics.median(r["time_over_torch_per_round"])
            print(f"{name:<16} epoch time / PyTorch's (median over rounds): "
                  f"{r['time_over_torch']:.2f}  (rounds: "
                  f"{', '.join(f'{v:.2f}' for v in r['time_over_torch_per_round'])})")
    print(f"other processes used {100 * load.other_fraction:.0f}% of the CPUs meanwhile")
    _common.write_results("bench_lenet5", results)
    names = list(results["frameworks"])
    _common.bar_plot("bench_lenet5", "LeNet-5 epoch on Fashion-MNIST (s, lower is better)",
                     names, {"steady epoch": [results["frameworks"][n]["steady"] for n in names]},
                     "seconds")


if __name__ == "__main__":
    main()
