"""Keras's ``keras.datasets.mnist``: ``load_data()`` with Keras 3's result.

    (x_train, y_train), (x_test, y_test) = minicnn.datasets.mnist.load_data()
    # x: uint8 (60000, 28, 28) and (10000, 28, 28); y: uint8 (60000,) and (10000,)

Read from, in order: Keras's own copy ``$KERAS_HOME/datasets/<path>`` (by default
``~/.keras/datasets/mnist.npz``; an absolute ``path`` is used as it is), then the
places ``minicnn.datasets.load_mnist()`` searches (``$MINICNN_DATA``,
``~/.minicnn/datasets/mnist``, Keras's folder, as IDX files or ``mnist.npz``), then a
download of Keras's ``mnist.npz`` (SHA-256 checked; ``MINICNN_OFFLINE=1`` skips it)
into ``~/.minicnn/datasets/mnist``, and, with none of these, the 4,000/1,000-image
subset shipped with minicnn, with a one-line notice on standard error. The npz file is
read without unpickling.
"""
from . import _keras_mnist

__all__ = ["load_data"]


def load_data(path="mnist.npz"):
    """``(x_train, y_train), (x_test, y_test)``: uint8 images (N, 28, 28), uint8 labels (N,)."""
    return _keras_mnist(path)
