"""Keras's ``keras.datasets.fashion_mnist``: ``load_data()`` with Keras 3's result.

    (x_train, y_train), (x_test, y_test) = minicnn.datasets.fashion_mnist.load_data()
    # x: uint8 (60000, 28, 28) and (10000, 28, 28); y: uint8 (60000,) and (10000,)

Read from, in order: Keras's own copy, the four gzip IDX files in
``$KERAS_HOME/datasets/fashion-mnist/`` (by default ``~/.keras/datasets/fashion-mnist/``:
``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``), then the places
``minicnn.datasets.load_fashion_mnist()`` searches (``$MINICNN_DATA``,
``~/.minicnn/datasets/fashion-mnist``, ``/usr/share/datasets/fashion-mnist``), then a
download (SHA-256 checked; ``MINICNN_OFFLINE=1`` skips it) into
``~/.minicnn/datasets/fashion-mnist``, and, with none of these, the 10,000/2,000-image
subset shipped with minicnn, with a one-line notice on standard error.
"""
from . import _keras_fashion_mnist

__all__ = ["load_data"]


def load_data():
    """``(x_train, y_train), (x_test, y_test)``: uint8 images (N, 28, 28), uint8 labels (N,)."""
    return _keras_fashion_mnist()
