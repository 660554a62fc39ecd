"""One training step of a tiny network on a few Fashion-MNIST images, shown whole:

    python examples/backprop_walkthrough.py

Prints the trace of the step (every layer's output forward, every gradient backward,
the update each weight would get) and a float64 gradient check of the whole model,
then takes five steps and shows the loss go down. Deterministic (seeded): its output is
the same on every run and every CPU backend, up to float rounding.
"""
import numpy as np

import minicnn as mc
from minicnn.gradcheck import check_model
from minicnn.layers import AveragePooling2D, Conv2D, Dense, Flatten


def main():
    mc.utils.set_random_seed(0)
    # the subset shipped with minicnn, not whatever full copy this machine has: the same
    # 8 images everywhere, so the output matches docs/README.md
    (x, y), _ = mc.datasets.load_fashion_mnist(mc.datasets.subset_dir())
    x, y = x[:8, 6:22, 6:22, None] / np.float32(255), y[:8]   # 8 images, 16x16 centres
    model = mc.Sequential([
        Conv2D(4, 3, activation="tanh", input_shape=(16, 16, 1)), AveragePooling2D(2),
        Conv2D(6, 3, activation="tanh"), AveragePooling2D(2), Flatten(),
        Dense(10, activation="softmax")], name="tiny")
    model.compile(mc.optimizers.SGD(0.5), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.summary()

    print("\n--- one training step, layer by layer ---")
    model.trace(x, y)

    # (tanh, not relu: a relu has a kink at 0, and a finite-difference step that moves a
    # unit across it measures a slope the function does not have there)
    print("\n--- the same gradients by central differences (float64) ---")
    rows = check_model(model, x, y)
    assert all(row["passed"] for row in rows), "a gradient disagrees with its numerical check"

    print("\n--- taking five steps ---")
    before = model.evaluate(x, y)[0]
    for _ in range(5):
        model.train_on_batch(x, y)
    after = model.evaluate(x, y)[0]
    print(f"loss on these 8 images: {before:.4f} before, {after:.4f} after 5 steps")


if __name__ == "__main__":
    main()
