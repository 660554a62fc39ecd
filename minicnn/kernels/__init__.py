"""Specialised kernels, one module per backend; nothing else imports numba or cupy.

``numba_cpu``: compiled CPU loops for im2col, col2im and pooling, used by
``minicnn.ops`` when the ``numba`` backend is active.
"""
