"""Specialised kernels, one module per kind of device; nothing else imports numba,
and nothing else launches CUDA code.

``numba_cpu``: compiled CPU loops, used by ``minicnn.ops`` on the ``numba`` backend
(with ``numba_winograd``, its Winograd transforms, and ``numba_launch``, which runs
each kernel serially or in parallel by size).
``cuda``: CUDA kernels (``.cu`` sources) launched through CuPy on the ``cupy`` backend.
``reference``: the same kernels as plain Python loops, for the ``reference`` backend.
(``im2col_only``: what ``cuda`` and ``reference`` answer for the paths they lack.)

All expose the same functions with the same arguments (im2col, col2im, the
poolings, the bias + activation epilogue, the activation gradient, Adam), so an op
asks ``backend.kernels_for(array)`` for the set that serves its arrays and calls it
without knowing which one it got. Each set also says which paths it has: the rules
``direct_conv_suits`` and ``winograd_suits`` (numba's direct and Winograd
convolutions; the others answer False) and ``SPLIT_BATCH_ON_THREADS`` with
``serial_only`` (whether a training step may run two half batches on two threads).
"""
