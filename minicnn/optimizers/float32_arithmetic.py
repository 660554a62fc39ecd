"""The arithmetic and argument checks of ``minicnn.optimizers.schedules``: float32
rounding as Keras's schedules compute (``_f32``; XLA's flush of subnormals to zero),
IEEE ``pow`` and ``cos`` in float32, a fused multiply-add as XLA compiles ``a * b + c``
inside ``ops.cond`` (``_fma``), and the checks of each schedule's arguments and step."""
import math
import numbers

import numpy as np

_SMALLEST_NORMAL = 2.0 ** -126  # float32's; XLA on CPU flushes anything smaller to zero
_PI = float(np.float32(math.pi))


def _f32(x):
    """``x`` rounded to float32 (to nearest, ties to even; too large -> inf), with a
    result below float32's smallest normal number flushed to 0.0 as XLA does."""
    with np.errstate(over="ignore"):
        y = float(np.float32(x))
    return 0.0 if abs(y) < _SMALLEST_NORMAL else y


def _pow(base, exponent):
    """float32 ``base ** exponent`` from float32 inputs: IEEE pow's special values (a
    negative base with a fractional exponent is NaN, an overflow inf) where Python's
    ``**`` would raise or return a complex number."""
    if base < 0 and exponent != math.floor(exponent):
        return math.nan
    if base == 0 and exponent < 0:
        return math.inf
    try:
        return _f32(math.pow(base, exponent))
    except OverflowError:
        return math.inf


def _cos(x):
    return _f32(math.cos(x))


def _fma(a, b, c):
    """float32 ``a * b + c`` rounded once (a fused multiply-add), for float32 values: what
    XLA makes of ``a * b + c`` inside compiled code (the branches of Keras's
    ``ops.cond``). a * b is exact in float64; the sum's rounding error (TwoSum) settles
    the one case where rounding twice, to float64 then to float32, differs: a float64
    sum exactly halfway between two float32 values."""
    p = a * b
    s = p + c
    z = s - p
    error = (p - (s - z)) + (c - z)  # s + error == p + c exactly
    if error and math.isfinite(s):
        m, _ = math.frexp(s)
        if (m * 2 ** 25).is_integer() and not (m * 2 ** 24).is_integer():
            s = math.nextafter(s, math.copysign(math.inf, error))
    return _f32(s)


# -- argument checks ------------------------------------------------------------------
def _check_number(owner, name, value, low=None, high=None, low_open=False):
    """A finite real number (not a bool) within the bounds; returned as given (a
    numpy scalar as the Python number it holds), so get_config shows it as Keras does."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be a finite number. Received: {name}={value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{owner}: {name} must be {'>' if low_open else '>='} {low}. "
                         f"Received: {name}={value!r}")
    if high is not None and value > high:
        raise ValueError(f"{owner}: {name} must be <= {high}. Received: {name}={value!r}")
    return value.item() if isinstance(value, np.generic) else value


def _check_rate(owner, name, value):
    """A learning rate >= 0 that is a float: Keras computes the whole schedule in the
    dtype of ``initial_learning_rate``, so an int there makes it integer arithmetic
    (decay_rate=0.5 becomes 0, pi becomes 3): refused rather than mirrored."""
    value = _check_number(owner, name, value, 0)
    if isinstance(value, numbers.Integral):
        raise ValueError(f"{owner}: {name} must be a float, not an int: Keras computes the "
                         f"schedule in {name}'s dtype, and with an int that is integer "
                         f"arithmetic (decay_rate=0.5 becomes 0). Write {float(value)!r}. "
                         f"Received: {name}={value!r}")
    return value


def _check_bool(owner, name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{owner}: {name} must be True or False. Received: {name}={value!r}")
    return bool(value)


def _check_name(owner, value):
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{owner}: name must be a string. Received: name={value!r}")
    return value


_MAX_STEP = 2 ** 63 - 1  # int64's largest, the widest counter Keras keeps (JAX's is int32)


def _check_step(owner, step):
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, numbers.Integral) \
            or not 0 <= step <= _MAX_STEP:
        raise ValueError(f"{owner}: step must be an integer from 0 to 2**63 - 1 (the "
                         f"optimizer's iteration count before the update). "
                         f"Received: step={step!r}")
    return int(step)
