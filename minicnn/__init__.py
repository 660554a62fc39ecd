"""minicnn: a small, readable CNN library with explicit backprop.

    import minicnn as mc
    from minicnn.layers import Conv2D, MaxPooling2D, Dense, Flatten

The layers live in ``minicnn.layers``, the pure forward/backward ops they call in
``minicnn.ops``, and the slow loop versions of convolution and pooling (the
oracle the tests compare against) in ``minicnn.reference``.
"""
from . import backend, initializers, layers, losses, ops, reference, utils
from .backend import floatx, set_floatx

__version__ = "0.1.0"

__all__ = ["backend", "initializers", "layers", "losses", "ops", "reference", "utils",
           "floatx", "set_floatx", "__version__"]
