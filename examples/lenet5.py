"""LeNet-5 on Fashion-MNIST: the model of the Keras tutorials, trained with minicnn.

    python examples/lenet5.py                  # full data if installed, else the shipped subset
    python examples/lenet5.py --epochs 5 --batch-size 128 --seed 0

Prints Keras's training log and the test accuracy, saves the trained model
(``lenet5.npz``, reloadable with ``minicnn.models.load_model``) and, when
matplotlib is installed, a training-curve PNG.
"""
import argparse
import os

import numpy as np

import minicnn as mc
from minicnn.layers import AveragePooling2D, Conv2D, Dense, Flatten
from minicnn.models import Sequential


def lenet5(input_shape=(28, 28, 1), classes=10):
    """LeNet-5 as in the Keras notebooks: 61,706 parameters on 28x28x1 inputs."""
    return Sequential([
        Conv2D(6, 5, padding="same", activation="tanh", input_shape=input_shape),
        AveragePooling2D(2),
        Conv2D(16, 5, activation="tanh"),
        AveragePooling2D(2),
        Flatten(),
        Dense(120, activation="tanh"),
        Dense(84, activation="tanh"),
        Dense(classes, activation="softmax"),
    ])


def load_data(path):
    (x_train, y_train), (x_test, y_test) = mc.datasets.load_fashion_mnist(path)
    scale = np.float32(1 / 255)
    return ((x_train[..., None] * scale, y_train), (x_test[..., None] * scale, y_test))


def plot_history(history, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install minicnn[plot]): no training-curve plot")
        return
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for key, ax in (("loss", ax_loss), ("accuracy", ax_acc)):
        ax.plot(epochs, history[key], "o-", label=f"train {key}")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], "s--", label=f"test {key}")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("LeNet-5 on Fashion-MNIST (minicnn)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"training curves saved to {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--backend", default=mc.backend.get_backend(),
                        help=f"one of {mc.backend.available()}")
    parser.add_argument("--data", default=None,
                        help="folder with the Fashion-MNIST IDX files (default: search, "
                             "else the subset shipped with minicnn)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--out", default=".", help="folder for the model and the plot")
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    parser.add_argument("--distributed", action="store_true",
                        help="data-parallel over the ranks of an MPI run: "
                             "mpiexec -n 2 python examples/lenet5.py --distributed "
                             "(each rank trains on its part of the data, --batch-size rows "
                             "per rank and step)")
    args = parser.parse_args(argv)

    mc.backend.set_backend(args.backend)
    mc.utils.set_random_seed(args.seed)
    ranks = mc.distributed.init() if args.distributed else mc.distributed.LOCAL
    say = print if ranks.rank == 0 else (lambda *a, **k: None)
    (x_train, y_train), (x_test, y_test) = load_data(args.data)
    say(f"Fashion-MNIST: {len(x_train)} training and {len(x_test)} test images")

    model = lenet5()
    optimizer = mc.optimizers.Adam(args.learning_rate)
    if args.distributed:
        optimizer = mc.distributed.DistributedOptimizer(optimizer)
        mc.distributed.broadcast_weights(model)  # one starting point on every rank
        x_train, y_train = mc.distributed.shard(x_train, y_train)
        x_test, y_test = mc.distributed.shard(x_test, y_test)
        say(f"{ranks.size} ranks, {len(x_train)} training images each")
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    if ranks.rank == 0:
        model.summary()
    history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                        validation_data=(x_test, y_test), seed=args.seed,
                        verbose=args.verbose)
    test = ranks.mean_logs(model.evaluate(x_test, y_test, batch_size=512, return_dict=True))
    loss, accuracy = test["loss"], test["accuracy"]
    say(f"test accuracy: {accuracy:.4f} (loss {loss:.4f})")

    if ranks.rank == 0:  # every rank holds the same weights: one writes them
        os.makedirs(args.out, exist_ok=True)
        model_path = os.path.join(args.out, "lenet5.npz")
        model.save(model_path)
        print(f"model saved to {model_path}")
        plot_history(history.history, os.path.join(args.out, "lenet5_training.png"))
    return accuracy


if __name__ == "__main__":
    main()
