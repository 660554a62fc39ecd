"""Keras's weight initializers, drawn on the host with NumPy.

fan_in / fan_out of a kernel: Dense (in, units) -> in, units;
Conv2D (kh, kw, in, f) -> kh*kw*in, kh*kw*f.

| name           | distribution                                                |
|----------------|-------------------------------------------------------------|
| glorot_uniform | U(-L, L), L = sqrt(6 / (fan_in + fan_out))   (Keras default) |
| glorot_normal  | truncated normal, stddev sqrt(2 / (fan_in + fan_out))       |
| he_uniform     | U(-L, L), L = sqrt(6 / fan_in)                              |
| he_normal      | truncated normal, stddev sqrt(2 / fan_in)                   |
| random_normal  | N(0, 0.05)        random_uniform: U(-0.05, 0.05)            |
| zeros, ones    | constants                                                   |

A truncated normal redraws values beyond two standard deviations; Keras
divides the stddev by 0.8796... so that the *truncated* distribution still has
the intended variance, and so do we.
"""
import numpy as np

from .utils import global_rng

_TRUNC_STD = 0.87962566103423978  # std of N(0, 1) truncated to [-2, 2]


def compute_fans(shape):
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_normal(rng, shape, stddev):
    values = rng.standard_normal(shape)
    bad = np.abs(values) > 2
    while bad.any():
        values[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(values) > 2
    return values * stddev


class Initializer:
    """Callable ``init(shape, dtype) -> numpy array``. With ``seed`` it draws from
    its own generator; without, from ``minicnn.utils``'s seeded global one."""

    def __init__(self, seed=None):
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def __call__(self, shape, dtype="float32"):
        rng = self._rng if self._rng is not None else global_rng()
        return np.asarray(self.sample(rng, tuple(shape)), dtype=dtype)

    def sample(self, rng, shape):
        raise NotImplementedError


class Zeros(Initializer):
    def sample(self, rng, shape):
        return np.zeros(shape)


class Ones(Initializer):
    def sample(self, rng, shape):
        return np.ones(shape)


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def sample(self, rng, shape):
        return rng.normal(self.mean, self.stddev, shape)


class RandomUniform(Initializer):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def sample(self, rng, shape):
        return rng.uniform(self.minval, self.maxval, shape)


class _Scaled(Initializer):
    """Variance scaling: ``scale / fan`` with fan = fan_in or the fans' mean."""
    scale, mode, distribution = 1.0, "fan_avg", "uniform"

    def sample(self, rng, shape):
        fan_in, fan_out = compute_fans(shape)
        fan = fan_in if self.mode == "fan_in" else (fan_in + fan_out) / 2
        variance = self.scale / max(1.0, fan)
        if self.distribution == "uniform":
            limit = np.sqrt(3 * variance)
            return rng.uniform(-limit, limit, shape)
        return _truncated_normal(rng, shape, np.sqrt(variance) / _TRUNC_STD)


class GlorotUniform(_Scaled):
    scale, mode, distribution = 1.0, "fan_avg", "uniform"


class GlorotNormal(_Scaled):
    scale, mode, distribution = 1.0, "fan_avg", "normal"


class HeUniform(_Scaled):
    scale, mode, distribution = 2.0, "fan_in", "uniform"


class HeNormal(_Scaled):
    scale, mode, distribution = 2.0, "fan_in", "normal"


_BY_NAME = {
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal,
    "he_uniform": HeUniform, "he_normal": HeNormal,
    "zeros": Zeros, "ones": Ones,
    "random_normal": RandomNormal, "random_uniform": RandomUniform,
}


def get(identifier, owner=None, arg_name="initializer"):
    """A name (case-insensitive) or an Initializer -> an Initializer instance."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    prefix = f"{owner}: " if owner else ""
    raise ValueError(f"{prefix}unknown {arg_name}; expected an Initializer or one of "
                     f"{sorted(_BY_NAME)}. Received: {arg_name}={identifier!r}")
