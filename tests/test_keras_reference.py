"""minicnn against stored Keras 3 results (tests/reference/data/*.npz).

The fixtures were produced by real Keras (JAX backend, CPU, float32) with
``python tests/reference/generate.py``; the versions are in
tests/reference/data/VERSIONS.json. This module needs neither keras nor jax.
What each case compares and at which tolerance (and why) is in
tests/reference/cases.py (``TOLERANCES``); the per-family error summary is printed
at the end of the session (``pytest -s``) and written to
tests/.keras_reference_summary.txt.
"""
import json

import numpy as np
import pytest

import minicnn as mc
from reference import cases
from reference.compare import keras_summary  # noqa: F401  (the session fixture)

FIXTURES = sorted(cases.DATA_DIR.glob("*.npz"))
MAX_TOTAL_BYTES = 5_000_000
# Every backend minicnn can run here must match Keras (the API promises the same results
# on every backend), the loop backend "reference" included (about 10 s for all cases);
# the summary reports numpy as "reference", others as "reference:<backend>".
BACKENDS = mc.backend.available() + ["reference"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    mc.backend.set_backend(request.param)
    yield request.param
    mc.backend.set_backend("numpy")


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_minicnn_matches_keras_fixture(path, backend, keras_summary):  # noqa: F811
    case, data, meta = cases.load_fixture(path)
    source = "reference" if backend == "numpy" else f"reference:{backend}"
    cases.check_case(case, data, keras_summary.checker(source, case), meta)


def test_fixtures_match_case_definitions():
    """Every case of cases.py has a fixture made from the same definition (else:
    regenerate with ``python tests/reference/generate.py``)."""
    defined = {c["id"]: c for c in cases.all_cases()}
    stored = {p.stem: p for p in FIXTURES}
    assert sorted(set(defined) - set(stored)) == [], "cases without a fixture"
    assert sorted(set(stored) - set(defined)) == [], "fixtures of removed cases"
    stale = []
    for case_id, path in stored.items():
        case, data, _ = cases.load_fixture(path)
        if json.dumps(case, sort_keys=True) != json.dumps(defined[case_id], sort_keys=True):
            stale.append(case_id)
            continue
        for key, value in cases.make_inputs(defined[case_id]).items():
            if not np.array_equal(data[key], value):
                stale.append(f"{case_id}:{key}")
    assert stale == [], "fixtures made from other definitions or inputs"


def test_fixture_files_are_small_and_versioned():
    total = sum(p.stat().st_size for p in cases.DATA_DIR.iterdir())
    assert total < MAX_TOTAL_BYTES, f"fixtures take {total} bytes"
    versions = cases.stored_versions()
    for name in ("keras", "jax", "numpy"):
        assert versions.get(name), f"VERSIONS.json lacks the {name} version"
    assert versions["keras"].startswith("3.")


def test_every_layer_loss_and_activation_has_a_keras_case():
    """A layer, loss or activation name that minicnn exports has at least one case here
    (so a new one does not go unchecked against Keras)."""
    from minicnn import layers, losses
    from minicnn.ops.activations import ACTIVATION_ALIASES, ACTIVATIONS
    all_cases = cases.all_cases()
    used_layers = {c.get("layer") for c in all_cases}
    no_numbers = ("Input", "InputLayer", "Layer")   # graph placeholders and the base class
    # The random augmentation layers: Keras draws their transforms from its own
    # generator, so a stored output cannot be reproduced; tests/test_augmentation.py
    # compares their pixels with live Keras at one-value factor ranges instead.
    from test_augmentation import LIVE_CHECKED
    no_numbers += LIVE_CHECKED
    missing = [n for n in layers.__all__ if n not in no_numbers and n not in used_layers]
    assert missing == [], f"layers without a Keras case: {missing}"
    used_losses = {(c["loss"], json.dumps(c.get("loss_args", {}), sort_keys=True))
                   for c in all_cases if c["kind"] == "loss"}
    wanted = [(n, json.dumps(args, sort_keys=True)) for n in losses.CLASSES
              for args in ([{}, {"from_logits": True}] if n != "MeanSquaredError" else [{}])]
    assert [w for w in wanted if w not in used_losses] == [], "losses without a Keras case"
    names = set(ACTIVATIONS) | set(ACTIVATION_ALIASES)
    for layer in ("Activation", "Dense", "Conv2D"):
        used = {c["args"]["activation"] for c in all_cases if c.get("layer") == layer}
        assert sorted(names - used) == [], f"activations without a Keras case for {layer}"
