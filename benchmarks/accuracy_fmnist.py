"""Test accuracy against training time on the full Fashion-MNIST: the recipe of
``examples/fashion_mnist_best.py`` trained by minicnn, by Keras 3 (JAX backend, CPU)
and by PyTorch (CPU), each in its own process, one after the other.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/accuracy_fmnist.py
    python benchmarks/accuracy_fmnist.py --frameworks minicnn torch --epochs 3
    python benchmarks/accuracy_fmnist.py --smoke       # 2 small epochs each, seconds
    python benchmarks/accuracy_fmnist.py --frameworks keras --merge   # add one framework

``--merge`` keeps the curves of the frameworks not run now from the results file
already written for this machine kind (each run's environment is kept beside them).

A slow framework's sixteen epochs can be run at low priority beside other work and
timed alone over a few epochs afterwards (an epoch of a compiled step takes the same
time each time):

    nice -n 19 python benchmarks/accuracy_fmnist.py --frameworks keras --out /tmp/full
    python benchmarks/accuracy_fmnist.py --frameworks keras --stop-after 3 \
        --accuracies-from /tmp/full/accuracy_fmnist.json --merge

The second run times the first three epochs alone and places the full run's
accuracies at epoch 1's measured time plus the mean later epoch's per epoch; the
JSON's "retimed" says which curves were made so, with the epochs measured.

The same architecture, initial learning rate schedule (AdamW, linear warm-up over the
first epoch to 3e-3, cosine to 0), weight decay, batch size (128), dropout, batch
normalization (momentum 0.9, epsilon 1e-3) and augmentation (horizontal flips and
translations of up to 10% of the size, nearest pixel, zero fill) in all three. Keras
runs the very layers minicnn mirrors (``keras.layers.RandomTranslation``); PyTorch
has no such layer, so its translation is written here as the same integer shifts
(``round(U(-0.1, 0.1) * 28)``, zero fill) with a horizontal flip of probability 1/2.
Keras compiles its step with XLA (``jit_compile=True``: its default would run this
model eagerly because RandomTranslation opts out of XLA). Weights are each
framework's own initialisation (Glorot uniform in minicnn and
Keras, Kaiming uniform in PyTorch).

Each epoch's test accuracy is recorded with the training time so far: wall time of
the training epochs, the first included (JIT and XLA compilation count), the test
set's evaluation not. Prints a table, the time each framework took to reach 93%, the
ratios, and writes benchmarks/results/<machine kind>/accuracy_fmnist.json and .png.
Run nothing else meanwhile: the frameworks run in turns and each gets both cores.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FRAMEWORKS = ("minicnn", "keras", "torch")
TARGET = 0.93
PEAK, WEIGHT_DECAY, BATCH, WIDTHS, DROPOUT, SHIFT = 3e-3, 0.01, 128, (24, 48), 0.15, 0.07


def load(path, limit=None):
    sys.path.insert(0, os.path.join(HERE, "..", "examples"))
    from fashion_mnist_best import load_data
    (x, y), (xt, yt) = load_data(path)
    if limit:
        x, y, xt, yt = x[:limit], y[:limit], xt[:limit // 5], yt[:limit // 5]
    return x, y.astype(np.int64), xt, yt.astype(np.int64)


def warmup_cosine(step, steps_per_epoch, epochs):
    """The learning rate of step ``step`` (Keras's CosineDecay with a warm-up)."""
    warm, decay = steps_per_epoch, max(1, steps_per_epoch * (epochs - 1))
    if step < warm:
        return PEAK / 30 + (PEAK - PEAK / 30) * step / warm
    return PEAK * 0.5 * (1 + math.cos(math.pi * min(step - warm, decay) / decay))


def run_keras_like(mod, x, y, xt, yt, epochs, stop_after, prepare=lambda model: model,
                   **compile_options):
    """minicnn and Keras: one program, the module it imports being the difference."""
    L = mod.layers
    layers = [L.Input((28, 28, 1)), L.RandomFlip("horizontal"),
              L.RandomTranslation(SHIFT, SHIFT, fill_mode="constant", interpolation="nearest")]
    for filters in WIDTHS:
        for _ in range(2):
            layers += [L.Conv2D(filters, 3, padding="same", activation="relu"),
                       L.BatchNormalization(momentum=0.9)]
        layers += [L.MaxPooling2D(2), L.Dropout(DROPOUT)]
    layers += [L.Flatten(), L.Dense(10, activation="softmax")]
    model = prepare(mod.Sequential(layers))
    steps = -(-len(x) // BATCH)
    schedule = mod.optimizers.schedules.CosineDecay(
        PEAK / 30, decay_steps=max(1, steps * (epochs - 1)), alpha=0.0, warmup_target=PEAK,
        warmup_steps=steps)
    model.compile(optimizer=mod.optimizers.AdamW(schedule, weight_decay=WEIGHT_DECAY),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  **compile_options)
    curve, clock = [], {"train": 0.0}

    class Clock(mod.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            clock["start"] = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            clock["train"] += time.perf_counter() - clock["start"]
            started = time.perf_counter()
            _, accuracy = self.model.evaluate(xt, yt, batch_size=500, verbose=0)
            curve.append((clock["train"], float(accuracy)))
            print(f"epoch {epoch + 1}: {accuracy:.4f} after {clock['train']:.1f} s "
                  f"(evaluation {time.perf_counter() - started:.1f} s)", flush=True)
            if len(curve) >= stop_after:
                self.model.stop_training = True

    model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0, callbacks=[Clock()])
    return curve


def run_minicnn(x, y, xt, yt, epochs, stop_after):
    import minicnn
    minicnn.backend.set_backend("numba")
    minicnn.utils.set_random_seed(0)
    return run_keras_like(minicnn, x, y, xt, yt, epochs, stop_after)


def run_keras(x, y, xt, yt, epochs, stop_after):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
    keras.utils.set_random_seed(0)

    def compiled(model):
        # RandomTranslation declares itself not XLA-compilable (true of TensorFlow's
        # kernel), so Keras would run this whole model op by op, eagerly, even with
        # jit_compile=True (0.50 s a step here against 0.30 s compiled). Under JAX the
        # layer compiles: the declaration is overridden, and Keras runs at its fastest.
        for layer in model.layers:
            layer.supports_jit = True
        return model
    return run_keras_like(keras, x, y, xt, yt, epochs, stop_after, prepare=compiled,
                          jit_compile=True)


def run_torch(x, y, xt, yt, epochs, stop_after):
    import torch
    from torch import nn
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())
    layers, channels = [], 1
    for filters in WIDTHS:
        for _ in range(2):
            layers += [nn.Conv2d(channels, filters, 3, padding=1), nn.ReLU(),
                       nn.BatchNorm2d(filters, eps=1e-3, momentum=0.1)]
            channels = filters
        layers += [nn.MaxPool2d(2), nn.Dropout(DROPOUT)]
    layers += [nn.Flatten(), nn.Linear(channels * 7 * 7, 10)]
    model = nn.Sequential(*layers)
    steps = -(-len(x) // BATCH)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1.0, eps=1e-7,
                                  weight_decay=WEIGHT_DECAY)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, steps, epochs))
    loss_fn = nn.CrossEntropyLoss()
    xtr = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    ytr = torch.from_numpy(y)
    xte = torch.from_numpy(xt.transpose(0, 3, 1, 2).copy())
    rows = torch.arange(28)
    generator = torch.Generator().manual_seed(0)

    def augment(batch):
        n = len(batch)
        flip = torch.rand(n, generator=generator) < 0.5
        batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
        shift = torch.round((torch.rand(n, 2, generator=generator) * 2 - 1) * SHIFT * 28)
        padded = nn.functional.pad(batch, (3, 3, 3, 3))
        r = (rows[None, :] - shift[:, :1].long() + 3).clamp(0, 33)
        c = (rows[None, :] - shift[:, 1:].long() + 3).clamp(0, 33)
        return padded[torch.arange(n)[:, None, None], 0, r[:, :, None], c[:, None, :]][:, None]

    curve, elapsed = [], 0.0
    for epoch in range(epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(xtr), generator=generator)
        for i in range(0, len(order), BATCH):
            idx = order[i:i + BATCH]
            optimizer.zero_grad()
            loss_fn(model(augment(xtr[idx])), ytr[idx]).backward()
            optimizer.step()
            scheduler.step()
        elapsed += time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            predicted = torch.cat([model(xte[i:i + 500]).argmax(1)
                                   for i in range(0, len(xte), 500)])
        accuracy = float((predicted.numpy() == yt).mean())
        curve.append((elapsed, accuracy))
        print(f"epoch {epoch + 1}: {accuracy:.4f} after {elapsed:.1f} s", flush=True)
        if len(curve) >= stop_after:
            break
    return curve


def worker(args):
    x, y, xt, yt = load(args.data, 2000 if args.smoke else None)
    run = {"minicnn": run_minicnn, "keras": run_keras, "torch": run_torch}[args.worker]
    curve = run(x, y, xt, yt, args.epochs, args.stop_after or args.epochs)
    with open(args.result, "w") as f:
        json.dump({"curve": curve}, f)


def retime(accuracies, timed):
    """The accuracies of one run's epochs at the times of another run's first epochs:
    epoch 1 at its measured time (compilation included), every later epoch after the
    mean of the later epochs measured."""
    first = timed[0][0]
    later = (timed[-1][0] - first) / (len(timed) - 1)
    return [(first + k * later, accuracy) for k, (_, accuracy) in enumerate(accuracies)]


def time_to(curve, target):
    return next((t for t, accuracy in curve if accuracy >= target), None)


def plot(results, path, retimed=()):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, curve in results.items():
        label = (f"{name} (epochs timed apart, see the JSON's \"retimed\")"
                 if name in retimed else name)
        ax.plot([t / 60 for t, _ in curve], [100 * a for _, a in curve], "o-", ms=3,
                label=label)
    ax.axhline(100 * TARGET, color="gray", ls="--", lw=0.8)
    ax.set_xlabel("training time (minutes)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(84, 95)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Fashion-MNIST, the same recipe in three frameworks (2 CPU cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"plot written to {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS),
                        choices=FRAMEWORKS)
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--data", default=None, help="folder of the Fashion-MNIST files")
    parser.add_argument("--stop-after", type=int, metavar="K",
                        help="train only the first K epochs of the schedule (a timing run)")
    parser.add_argument("--accuracies-from", metavar="JSON",
                        help="take the accuracies from this earlier full run's results and "
                             "place its epochs at the times measured now (see above)")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other frameworks' curves from the existing results file")
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    _common.add_output_options(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.epochs = 2
    if args.worker:
        return worker(args)
    info = _common.environment()
    _common.print_environment(info)
    results, failures = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.frameworks:
            out = os.path.join(tmp, f"{name}.json")
            command = [sys.executable, os.path.abspath(__file__), "--worker", name,
                       "--result", out, "--epochs", str(args.epochs)]
            command += ["--stop-after", str(args.stop_after)] if args.stop_after else []
            command += ["--smoke"] if args.smoke else []
            command += ["--data", args.data] if args.data else []
            print(f"--- {name}", flush=True)
            done = subprocess.run(command)
            if done.returncode != 0 or not os.path.exists(out):
                failures[name] = f"exit status {done.returncode}"
                continue
            with open(out) as f:
                results[name] = json.load(f)["curve"]
    environments = {name: info for name in results}
    retimed = {}  # frameworks whose curve was placed at times measured apart
    if args.accuracies_from:
        with open(args.accuracies_from) as f:
            full = json.load(f)
        for name in list(results):
            accuracies = full["curves"].get(name)
            if not accuracies or len(accuracies) != args.epochs or len(results[name]) < 2:
                raise SystemExit(f"--accuracies-from: {args.accuracies_from} has no "
                                 f"{args.epochs}-epoch curve of {name}, or fewer than 2 "
                                 f"epochs were timed now")
            retimed[name] = {"accuracies_from": full["environment"],
                             "epochs_timed": results[name]}
            results[name] = retime(accuracies, results[name])
    if args.merge:
        merged_from = os.path.join(_common.results_dir(args.out), "accuracy_fmnist.json")
        with open(merged_from) as f:
            earlier = json.load(f)
        if earlier.get("epochs") != args.epochs:
            raise SystemExit(f"--merge: {merged_from} has {earlier.get('epochs')} epochs, "
                             f"this run {args.epochs}")
        for name, curve in earlier["curves"].items():
            if name not in args.frameworks:
                results[name] = curve
                environments[name] = earlier.get("environments", {}).get(
                    name, earlier["environment"])
                if name in earlier.get("retimed", {}):
                    retimed[name] = earlier["retimed"][name]
        results = {name: results[name] for name in FRAMEWORKS if name in results}
    print(f"\n{'framework':10s} {'final':>7s} {'best':>7s} {'minutes':>8s} "
          f"{'to ' + format(TARGET, '.0%'):>8s}")
    summary = {}
    for name, curve in results.items():
        reach = time_to(curve, TARGET)
        summary[name] = {"final_accuracy": curve[-1][1], "best_accuracy": max(a for _, a in curve),
                         "train_seconds": curve[-1][0], "seconds_to_target": reach}
        print(f"{name:10s} {curve[-1][1]:7.4f} {summary[name]['best_accuracy']:7.4f} "
              f"{curve[-1][0] / 60:8.2f} "
              f"{'-' if reach is None else format(reach / 60, '.2f'):>8s}")
    ours = summary.get("minicnn", {}).get("seconds_to_target")
    for peer in ("keras", "torch"):
        theirs = summary.get(peer, {}).get("seconds_to_target")
        if ours and theirs:
            print(f"minicnn's time to {TARGET:.0%} over {peer}'s: {ours / theirs:.2f}")
    _common.report_failures(failures)
    payload = {"environment": info, "epochs": args.epochs, "target": TARGET,
               "recipe": {"peak_lr": PEAK, "weight_decay": WEIGHT_DECAY, "batch_size": BATCH,
                          "widths": WIDTHS, "dropout": DROPOUT, "shift": SHIFT},
               "curves": results, "environments": environments, "summary": summary,
               "retimed": retimed, "failures": failures}
    _common.save_results("accuracy_fmnist", payload, args)
    if _common.writes_files(args) and results:
        plot(results, os.path.join(_common.results_dir(args.out), "accuracy_fmnist.png"),
             retimed)


if __name__ == "__main__":
    main()
