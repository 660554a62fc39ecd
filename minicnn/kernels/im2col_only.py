"""What a kernel set without numba's extra paths answers (``cuda`` and ``reference``
import these): it convolves every layer as im2col + one matrix product (no direct
or Winograd convolution), and a training step never runs two half batches on two
threads (``minicnn.split_step``) -- on a GPU one device runs the whole batch at once,
and the reference set's plain Python loops hold the GIL, so two threads would only
take turns."""
import contextlib

SPLIT_BATCH_ON_THREADS = False
# no BatchNormalization or Dropout kernels: those ops run their array code
NORMALIZATION_DTYPES = ()


def direct_conv_suits(c, f, kh, kw, sh, sw):
    """Never: no direct convolution kernel here."""
    return False


def winograd_suits(c, f, kh, kw, sh, sw):
    """Never: no Winograd transforms here."""
    return False


def serial_only():
    """Nothing to make serial: SPLIT_BATCH_ON_THREADS is False."""
    return contextlib.nullcontext()
