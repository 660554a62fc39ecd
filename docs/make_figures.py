"""Makes the figures of docs/ from the library itself:

    python docs/make_figures.py        # writes docs/figures/*.png

Deterministic (seeded), so a run reproduces the pictures the pages show."""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))

import minicnn as mc  # noqa: E402
from minicnn import plot  # noqa: E402


def main():
    out = os.path.join(HERE, "figures")
    os.makedirs(out, exist_ok=True)
    path = lambda name: os.path.join(out, name)  # noqa: E731
    plot.im2col_matrix(np.arange(16).reshape(4, 4), 3, path=path("im2col-4x4.png"))
    plot.conv_arithmetic(5, 3, 1, "valid", path=path("padding-valid.png"))
    plot.conv_arithmetic(6, 3, 2, "same", path=path("padding-same-odd.png"))
    plot.conv_arithmetic(4, 3, 1, "full", path=path("padding-full.png"))

    from lenet5 import lenet5
    mc.utils.set_random_seed(0)
    (x, y), (xt, yt) = mc.datasets.load_fashion_mnist()
    x, xt = x[:2000, :, :, None] / np.float32(255), xt[:500, :, :, None] / np.float32(255)
    model = lenet5()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y[:2000], batch_size=64, epochs=4, verbose=0, seed=0,
                        validation_data=(xt, yt[:500]))
    plot.training_curves(history, path=path("lenet5-curves.png"))
    plot.filters(model.layers[0], path=path("lenet5-filters.png"))
    plot.feature_maps(model, xt[0], path=path("lenet5-feature-maps.png"))
    print(f"figures written to {out}")


if __name__ == "__main__":
    main()
