"""Keras's ``keras.datasets.cifar10``: ``load_data()`` with Keras 3's result.

    (x_train, y_train), (x_test, y_test) = minicnn.datasets.cifar10.load_data()
    # x: uint8 (50000, 32, 32, 3) and (10000, 32, 32, 3) (channels_last);
    # y: uint8 (50000, 1) and (10000, 1)

minicnn never unpickles, so it does not read the python (pickle) batches that Keras
downloads (``~/.keras/datasets/cifar-10-batches-py``); it reads the *binary* version of
CIFAR-10 (``cifar-10-binary.tar.gz`` from https://www.cs.toronto.edu/~kriz/cifar.html,
extracted: ``cifar-10-batches-bin/data_batch_1.bin`` ... ``data_batch_5.bin``,
``test_batch.bin``; the same images and labels in the same order). Looked for, in order,
in Keras's folder ``$KERAS_HOME/datasets/cifar-10-batches-bin`` (by default
``~/.keras/datasets/cifar-10-batches-bin``), then the places
``minicnn.datasets.load_cifar10()`` searches (``$MINICNN_DATA/cifar-10``,
``$MINICNN_DATA``, ``~/.minicnn/datasets/cifar-10``, ``/usr/share/datasets/cifar-10``,
each holding the batches or a ``cifar-10-batches-bin`` folder). Nothing is downloaded
and no subset is shipped (no package on PyPI redistributes a CIFAR-10 sample): without
a copy, ``load_data()`` raises FileNotFoundError saying which file to put where.
"""
from . import _keras_cifar10

__all__ = ["load_data"]


def load_data():
    """``(x_train, y_train), (x_test, y_test)``: uint8 images (N, 32, 32, 3), uint8
    labels (N, 1)."""
    return _keras_cifar10()
