"""Test accuracy of LeNet-5 on the full Fashion-MNIST after each of 5 epochs.

    apt-get install dataset-fashion-mnist          # or any folder minicnn searches
    python benchmarks/accuracy_lenet5.py           # seeds 0 1 2, batch 128, Adam 1e-3
    python benchmarks/accuracy_lenet5.py --seeds 0 --epochs 1

Prints, per seed, the test accuracy after every epoch and the wall time, then the
mean over seeds per epoch. The reference points on this model and schedule:
PyTorch 86.5% and Keras 87.1% after 5 epochs (means of seeds 0, 1, 2).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

import minicnn as mc
from minicnn.callbacks import Callback

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
from lenet5 import lenet5, load_data  # noqa: E402


class TestAccuracy(Callback):
    """Evaluates on the test set at the end of every epoch."""

    def __init__(self, x, y):
        self.x, self.y, self.accuracy = x, y, []

    def on_epoch_end(self, epoch, logs=None):
        self.accuracy.append(self.model.evaluate(self.x, self.y, batch_size=1000)[1])


def run(seed, epochs, batch_size, data):
    mc.backend.clear_session()
    mc.utils.set_random_seed(seed)
    model = lenet5()
    model.compile(optimizer=mc.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    tracker = TestAccuracy(data[1][0], data[1][1])
    start = time.perf_counter()
    model.fit(*data[0], batch_size=batch_size, epochs=epochs, seed=seed, verbose=0,
              callbacks=[tracker])
    return tracker.accuracy, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--data", default=None, help="Fashion-MNIST folder (default: search)")
    parser.add_argument("--backend", default=mc.backend.get_backend())
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    mc.backend.set_backend(args.backend)

    data = load_data(args.data)
    if len(data[0][0]) != 60000:
        print(f"warning: {len(data[0][0])} training images, not the full 60,000; "
              "install the full data set for comparable figures")
    results = {}
    for seed in args.seeds:
        accuracy, seconds = run(seed, args.epochs, args.batch_size, data)
        results[seed] = {"accuracy": accuracy, "seconds": seconds}
        per_epoch = "  ".join(f"{100 * a:.2f}%" for a in accuracy)
        print(f"seed {seed}: test accuracy per epoch {per_epoch}   ({seconds:.0f} s, "
              f"{seconds / args.epochs:.1f} s/epoch)", flush=True)
    mean = np.mean([r["accuracy"] for r in results.values()], axis=0)
    print("mean over seeds: " + "  ".join(f"{100 * a:.2f}%" for a in mean))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"backend": args.backend, "batch_size": args.batch_size,
                       "results": results, "mean": mean.tolist()}, f, indent=2)


if __name__ == "__main__":
    main()
