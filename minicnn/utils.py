"""Seeding. ``set_random_seed(s)`` makes weight initialisation and unseeded
dropout masks repeat from run to run, like ``keras.utils.set_random_seed``."""
import numpy as np

_RNG = np.random.default_rng()


def set_random_seed(seed):
    """Reseed the generator behind initializers and unseeded Dropout layers."""
    global _RNG
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"set_random_seed: seed must be a non-negative int. Received: {seed!r}")
    _RNG = np.random.default_rng(int(seed))


def global_rng():
    """The shared NumPy Generator (host side; arrays are moved to the backend after)."""
    return _RNG
