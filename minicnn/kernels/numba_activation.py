"""The element-wise activations the compiled epilogues apply (Conv2D's and Dense's
bias + activation pass in ``numba_cpu``, the Winograd output transform in
``numba_winograd``): one definition, so every path rounds alike."""
import numpy as np
from numba import njit

LINEAR, RELU, TANH = 0, 1, 2


@njit(inline="always", error_model="numpy")
def tanh32(x):
    """float32 tanh as a rational function (odd degree-13 over even degree-6
    polynomial, clamped at |x| = 7.9053, where tanh rounds to +-1 in float32): the
    approximation Eigen uses and XLA, hence JAX and Keras, compute on CPU. Largest
    error 3.3e-7 absolute (5 ulp just below +-1); NaN stays NaN. Unlike a call to libm's
    tanhf it is plain arithmetic, so the loop below is vectorised (AVX2: 8 at once)."""
    c = np.float32(7.90531110763549805)
    # comparisons, not min()/max(): a NaN must stay NaN, and numba's min() does not vectorise
    if x > c:
        x = c
    if x < -c:
        x = -c
    x2 = x * x
    p = np.float32(-2.76076847742355e-16)
    p = p * x2 + np.float32(2.00018790482477e-13)
    p = p * x2 + np.float32(-8.60467152213735e-11)
    p = p * x2 + np.float32(5.12229709037114e-08)
    p = p * x2 + np.float32(1.48572235717979e-05)
    p = p * x2 + np.float32(6.37261928875436e-04)
    p = p * x2 + np.float32(4.89352455891786e-03)
    q = np.float32(1.19825839466702e-06)
    q = q * x2 + np.float32(1.18534705686654e-04)
    q = q * x2 + np.float32(2.26843463243900e-03)
    q = q * x2 + np.float32(4.89352518554385e-03)
    return x * p / q


@njit(inline="always")
def activate(v, kind):
    """activation ``kind`` of one value: LINEAR, RELU (NaN passes) or TANH (tanh32)."""
    if kind == RELU:
        return v if not v < 0 else np.float32(0)  # NaN passes through, as np.maximum
    if kind == TANH:
        return tanh32(v)
    return v
