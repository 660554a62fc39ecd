"""The matrix product of the layers' 2-D matrices.

``matmul(a, b)`` is ``a @ b`` computed by ``dot``: the same BLAS call and the same
bits, but NumPy releases the GIL inside ``dot`` and, as of NumPy 2.4, not inside a
2-D ``matmul``. Two threads multiplying at once with ``@`` ran one after the other
(measured: twice the work took 2.06x the time, with ``dot`` 1.03x), which serialised
the two halves of a training step (``minicnn.split_step``) at every product.
NumPy's batched (3-D) matmul does release it; Winograd's sixteen products use that.
"""
from ..backend import get_array_module


def matmul(a, b):
    """``a @ b`` for a 1-D or 2-D ``a`` and a 2-D ``b`` (vector-matrix or matrix
    product), on the array module of the operands."""
    if b.ndim != 2 or a.ndim > 2:
        raise ValueError(f"matmul: expected a 1-D or 2-D and a 2-D operand, received shapes "
                         f"{a.shape} and {b.shape}")
    return get_array_module(a, b).dot(a, b)
