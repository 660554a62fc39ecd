"""minicnn: a small, readable CNN library with explicit backprop.

    import minicnn as mc
    from minicnn.layers import Conv2D, MaxPooling2D, Dense, Flatten

The layers live in ``minicnn.layers``, the pure forward/backward ops they call in
``minicnn.ops``, and the slow loop versions of convolution and pooling (the
oracle the tests compare against) in ``minicnn.reference``.
"""
from . import hostmemory

if hostmemory.wanted():
    hostmemory.keep_freed_memory()  # see minicnn/hostmemory.py: training steps reuse memory

from . import (backend, datasets, distributed, initializers, layers, losses,  # noqa: E402
               metrics, models, ops, optimizers, reference, regularizers, training,
               utils)
from . import callbacks, saving  # noqa: E402
from .models import Model, Sequential  # noqa: E402
from .graph import Input  # noqa: E402
from .backend import floatx, set_floatx  # noqa: E402
from .namespace import not_implemented  # noqa: E402

__version__ = "0.1.0"

__all__ = ["backend", "callbacks", "datasets", "distributed", "initializers", "layers", "losses",
           "metrics", "models", "ops", "optimizers", "reference", "regularizers", "saving",
           "training", "utils",
           "Input", "Model", "Sequential", "floatx", "set_floatx", "__version__"]


def __getattr__(name):
    """``import minicnn as keras`` reads as Keras's namespace; what Keras has and minicnn
    does not is an AttributeError saying so."""
    raise not_implemented(__name__, name, __all__)
