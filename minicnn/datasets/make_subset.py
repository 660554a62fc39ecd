"""Make the small Fashion-MNIST subset shipped inside minicnn, reproducibly.

    apt-get install dataset-fashion-mnist       # the full IDX files (Debian)
    python -m minicnn.datasets.make_subset      # writes minicnn/datasets/data/fashion-mnist-subset/

Stratified: 1,000 training and 200 test images of each of the 10 classes,
chosen by a fixed seed, in a fixed shuffled order, written as gzip IDX files with
a zero timestamp, so running it twice gives identical bytes.
"""
import argparse
import os

import numpy as np

from .idx import read_idx, write_idx_gz

TRAIN_PER_CLASS = 1000
TEST_PER_CLASS = 200
SEED = 20201122
OUT_DIR = os.path.join(os.path.dirname(__file__), "data", "fashion-mnist-subset")

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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="/usr/share/datasets/fashion-mnist",
                        help="folder with the full Fashion-MNIST IDX files")
    parser.add_argument("--out", default=OUT_DIR)
    args = parser.parse_args(argv)
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
