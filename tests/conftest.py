"""Shared fixtures: every test starts with the default backend (numba where it is
installed), float32, default names and no numerics checking, whatever the previous
test changed.

Hypothesis profiles: "ci", loaded where the environment variable CI is set (CI
services set CI=true), draws the same examples on every run (derandomized, no example
database), has no deadline and no timing health check (a loaded runner must not fail
a test that passes elsewhere) and prints the blob that replays a failure
(``@reproduce_failure``); "dev", the default elsewhere, draws new examples each run
and keeps the ones that failed in .hypothesis/. Tests that set their own settings
(``@settings(max_examples=60, ...)``) keep those; the profile fills in the rest. Pick
one explicitly with ``--hypothesis-profile=ci`` (or ``HYPOTHESIS_PROFILE=ci``).
"""
import os

import pytest
from hypothesis import HealthCheck, settings

import minicnn as mc
from kernel_spy import spy_kernels

# Both built on hypothesis's own defaults, not on whatever profile is loaded now
# (hypothesis loads its built-in "ci" by itself wherever a CI variable exists, even
# CI=false, and a profile registered without a parent would inherit it).
_DEFAULTS = settings.get_profile("default")
settings.register_profile(
    "ci", parent=_DEFAULTS, derandomize=True, database=None, print_blob=True,
    deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", parent=_DEFAULTS, print_blob=True)


def _hypothesis_profile():
    """"ci" where CI is set (to anything but an empty string, 0, false or no), "dev"
    elsewhere; HYPOTHESIS_PROFILE overrides both."""
    chosen = os.environ.get("HYPOTHESIS_PROFILE")
    if chosen:
        return chosen
    ci = os.environ.get("CI", "").strip().lower()
    return "ci" if ci not in ("", "0", "false", "no") else "dev"


# Loaded here, when pytest imports this conftest, before any test module makes its own
# settings objects: those inherit what they leave unset from the profile loaded now.
# (--hypothesis-profile on the command line is loaded later and wins.)
settings.load_profile(_hypothesis_profile())


@pytest.fixture(autouse=True)
def _fresh_state():
    mc.backend.set_backend(mc.backend.default_backend())
    mc.backend.set_floatx("float32")
    mc.backend.set_check_numerics(False)
    mc.backend.set_im2col_budget(None)
    mc.backend.clear_session()
    yield
    mc.backend.set_floatx("float32")
    mc.backend.set_check_numerics(False)
    mc.backend.set_backend(mc.backend.default_backend())


@pytest.fixture
def float64():
    """Layers built inside the test compute in float64 (for gradient checks)."""
    mc.backend.set_floatx("float64")
    yield


@pytest.fixture
def numba_kernels():
    """A KernelSpy on the numba kernel set for the whole test (tests/kernel_spy.py):
    ``numba_kernels.assert_ran({...})`` after the code under test. In hypothesis tests
    use ``with kernel_spy.spy_kernels() as spy:`` in the body instead."""
    if "numba" not in mc.backend.available():
        pytest.skip("numba does not import here")
    with spy_kernels("numba") as spy:
        yield spy


@pytest.fixture(scope="module")
def keras():
    """Keras 3 on its JAX backend, imported for the live checks; the test is skipped
    where it is not installed (or runs another backend)."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    pytest.importorskip("jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip(f"the live checks need Keras's JAX backend, not "
                    f"{keras.backend.backend()!r}")
    return keras
