"""Keras-shaped layers. Each validates its arguments in ``__init__``, creates its
weights in ``build`` and calls the pure ops of ``minicnn.ops`` in forward/backward."""
from .activations import ELU, LeakyReLU, ReLU, Softmax
from .augmentation import (RandomBrightness, RandomContrast, RandomCrop, RandomFlip,
                           RandomRotation, RandomTranslation, RandomZoom)
from .base import Layer
from .conv import Conv2D
from .core import Activation, Dense, Dropout, Flatten
from .global_pooling import GlobalAveragePooling2D, GlobalMaxPooling2D
from .merging import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract
from .normalization import BatchNormalization
from .pooling import AveragePooling2D, MaxPooling2D, MinPooling2D
from .reshaping import Cropping2D, Identity, Rescaling, Reshape, UpSampling2D, ZeroPadding2D

from .input_layer import InputLayer  # noqa: E402
from ..graph import Input  # noqa: E402  (keras.layers.Input is keras.Input)

__all__ = ["Input", "InputLayer", "Layer", "Conv2D", "MaxPooling2D", "AveragePooling2D", "MinPooling2D", "Dense",
           "Flatten", "Activation", "Dropout", "BatchNormalization", "Add", "Subtract",
           "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
           "GlobalAveragePooling2D", "GlobalMaxPooling2D", "ZeroPadding2D", "Cropping2D",
           "UpSampling2D", "Reshape", "Rescaling", "Identity", "Softmax", "ReLU", "LeakyReLU",
           "ELU", "RandomFlip", "RandomTranslation", "RandomRotation", "RandomZoom",
           "RandomCrop", "RandomContrast", "RandomBrightness"]


def __getattr__(name):
    from ..namespace import not_implemented
    raise not_implemented(__name__, name, __all__)
