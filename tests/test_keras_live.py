"""minicnn against Keras 3 run now (JAX backend, CPU, float32); skipped without keras.

The same cases, inputs and comparisons as test_keras_reference.py (all from
tests/reference/cases.py), for a seeded subset of the random layer configurations
(``cases.live_cases()``), so that the module stays under two minutes.
"""
import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
pytest.importorskip("jax")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":
    pytest.skip(f"the live Keras checks need the JAX backend, keras uses "
                f"{keras.backend.backend()!r}", allow_module_level=True)

from reference import cases  # noqa: E402
from reference.compare import keras_summary  # noqa: E402,F401  (the session fixture)

LIVE = cases.live_cases()
# Keras 3.15 on numpy 2 warns about its own Variable.__array__ in get_weights().
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


@pytest.mark.parametrize("case", LIVE, ids=[c["id"] for c in LIVE])
def test_minicnn_matches_live_keras(case, keras_summary):  # noqa: F811
    inputs = cases.make_inputs(case)
    expected, meta = cases.keras_expected(case, inputs)
    cases.check_case(case, {**inputs, **expected}, keras_summary.checker("live", case), meta)
