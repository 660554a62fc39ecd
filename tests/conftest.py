"""Shared fixtures: every test starts with the default backend (numba where it is
installed), float32, default names and no numerics checking, whatever the previous
test changed."""
import pytest

import minicnn as mc


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
