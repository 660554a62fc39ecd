"""Milliseconds per training step of small modern CNNs -- BatchNormalization after every
convolution, Dropout after every pooling -- against PyTorch CPU in the same run, and
the share of the step that BatchNormalization and Dropout take.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_normalization.py
    python benchmarks/bench_normalization.py --smoke        # seconds, checks every path

Models (Fashion-MNIST-sized input 28x28x1, batch 128, Adam, sparse cross-entropy):

    modern      4 x [Conv2D 3x3 'same' relu (16, 16, 32, 32) -> BatchNormalization],
                MaxPooling2D(2) + Dropout(0.25) after the 2nd and the 4th, Dense(10):
                BatchNormalization after each convolution, as Keras programs write it
    modern-bn-relu      the same with conv -> BatchNormalization -> Activation("relu")
    plain       the modern model without BatchNormalization and Dropout
    conv, conv+bn, conv+dropout    one Conv2D(16, 3, 'same', relu) [+ BN | + Dropout],
                Flatten, Dense(10)

minicnn's step is ``train_on_batch`` on the numba backend (the step of ``fit``:
forward, loss, backward, update); PyTorch's is zero_grad, forward, loss, backward,
Adam step, with its default threads (one per core). Each round times ``--steps`` steps
of every model in both frameworks in turns, so a change in the machine's load hits all
alike; a figure is the median over rounds of the per-step median, a ratio the median
over rounds of minicnn / PyTorch in that round. The share of BatchNormalization and
Dropout is 1 - plain / modern, each framework's own.
Writes benchmarks/results/<machine kind>/bench_normalization.json.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

import minicnn as mc  # noqa: E402

MODELS = ("modern", "modern-bn-relu", "plain", "conv", "conv+bn", "conv+dropout")


def minicnn_model(name):
    L = mc.layers
    layers = [L.Input((28, 28, 1))]
    if name.startswith("conv"):
        layers.append(L.Conv2D(16, 3, padding="same", activation="relu"))
        if name == "conv+bn":
            layers.append(L.BatchNormalization())
        if name == "conv+dropout":
            layers.append(L.Dropout(0.25))
    else:
        for i, filters in enumerate((16, 16, 32, 32)):
            if name == "modern-bn-relu":
                layers += [L.Conv2D(filters, 3, padding="same"), L.BatchNormalization(),
                           L.Activation("relu")]
            else:
                layers.append(L.Conv2D(filters, 3, padding="same", activation="relu"))
                if name == "modern":
                    layers.append(L.BatchNormalization())
            if i % 2:
                layers.append(L.MaxPooling2D(2))
                if name != "plain":
                    layers.append(L.Dropout(0.25))
    layers += [L.Flatten(), L.Dense(10, activation="softmax")]
    model = mc.models.Sequential(layers)
    model.compile(optimizer=mc.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def torch_model(torch, name):
    nn = torch.nn
    layers, channels = [], 1
    if name.startswith("conv"):
        layers += [nn.Conv2d(1, 16, 3, padding=1), nn.ReLU()]
        if name == "conv+bn":
            layers.append(nn.BatchNorm2d(16, eps=1e-3, momentum=0.01))
        if name == "conv+dropout":
            layers.append(nn.Dropout(0.25))
        features = 16 * 28 * 28
    else:
        for i, filters in enumerate((16, 16, 32, 32)):
            layers.append(nn.Conv2d(channels, filters, 3, padding=1))
            channels = filters
            bn = nn.BatchNorm2d(filters, eps=1e-3, momentum=0.01)
            if name == "modern-bn-relu":
                layers += [bn, nn.ReLU()]
            else:
                layers.append(nn.ReLU())
                if name == "modern":
                    layers.append(bn)
            if i % 2:
                layers.append(nn.MaxPool2d(2))
                if name != "plain":
                    layers.append(nn.Dropout(0.25))
        features = 32 * 7 * 7
    layers += [nn.Flatten(), nn.Linear(features, 10)]
    return nn.Sequential(*layers)


def minicnn_stepper(name, x, y):
    mc.utils.set_random_seed(0)
    model = minicnn_model(name)

    def step():
        model.train_on_batch(x, y)
    return step


def torch_stepper(torch, name, x, y):
    torch.manual_seed(0)
    model = torch_model(torch, name)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    yt = torch.from_numpy(y.astype(np.int64))

    def step():
        optimizer.zero_grad()
        loss_fn(model(xt), yt).backward()
        optimizer.step()
    return step


def step_medians(steppers, rounds, steps):
    """{name: [per-round median step seconds]}, taking turns round by round."""
    for step in steppers.values():  # JIT compilation and first-call set-up, untimed
        step()
        step()
    times = {name: [] for name in steppers}
    for _ in range(rounds):
        for name, step in steppers.items():
            _common.settle()
            samples = []
            for _ in range(steps):
                start = time.perf_counter()
                step()
                samples.append(time.perf_counter() - start)
            times[name].append(statistics.median(samples))
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=15, help="timed steps per round")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    _common.add_output_options(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.steps, args.batch_size = 1, 2, 32
    info = _common.environment()
    _common.print_environment(info)
    mc.backend.set_backend("numba")
    rng = np.random.default_rng(0)
    x = rng.random((args.batch_size, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, args.batch_size)
    torch = _common.torch_or_none()
    steppers = {}
    for name in args.models:
        steppers[f"minicnn {name}"] = minicnn_stepper(name, x, y)
        if torch is not None:
            steppers[f"torch {name}"] = torch_stepper(torch, name, x, y)
    times = step_medians(steppers, args.rounds, args.steps)
    results = {"environment": info, "batch_size": args.batch_size, "rounds": args.rounds,
               "steps_per_round": args.steps, "ms_per_step": {}, "ratio_to_torch": {}}
    print(f"\nms per step, batch {args.batch_size} (median of {args.rounds} rounds of "
          f"{args.steps} steps)")
    print(f"{'model':20s} {'minicnn':>9s} {'torch':>9s} {'ratio':>7s}")
    for name in args.models:
        ours = times[f"minicnn {name}"]
        results["ms_per_step"][f"minicnn {name}"] = 1e3 * statistics.median(ours)
        line = f"{name:20s} {1e3 * statistics.median(ours):9.1f}"
        if torch is not None:
            theirs = times[f"torch {name}"]
            ratio = statistics.median(a / b for a, b in zip(ours, theirs))
            results["ms_per_step"][f"torch {name}"] = 1e3 * statistics.median(theirs)
            results["ratio_to_torch"][name] = ratio
            line += f" {1e3 * statistics.median(theirs):9.1f} {ratio:7.2f}"
        print(line)
    if {"modern", "plain"} <= set(args.models):
        shares = {}
        for framework in ("minicnn", "torch") if torch is not None else ("minicnn",):
            full = times[f"{framework} modern"]
            plain = times[f"{framework} plain"]
            shares[framework] = statistics.median(1 - p / f for p, f in zip(plain, full))
            print(f"{framework}: BatchNormalization + Dropout take {100 * shares[framework]:.0f}% "
                  f"of the modern model's step")
        results["bn_dropout_share"] = shares
        if "modern" in results["ratio_to_torch"]:
            ratio = results["ratio_to_torch"]["modern"]
            print(f"targets: modern step <= 1.0x PyTorch's: {ratio:.2f} "
                  f"({'met' if ratio <= 1.0 else 'not met'}); BN + Dropout <= 25% of it: "
                  f"{100 * shares['minicnn']:.0f}% "
                  f"({'met' if shares['minicnn'] <= 0.25 else 'not met'})")
    _common.save_results("bench_normalization", results, args)
    mc.backend.set_backend("numpy")


if __name__ == "__main__":
    main()
