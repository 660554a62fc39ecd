"""Regenerate the Keras reference fixtures in tests/reference/data/.

    KERAS_BACKEND=jax JAX_PLATFORMS=cpu python tests/reference/generate.py

(the two variables are set to these values by default). Builds every case of
``cases.all_cases()`` with real Keras 3 on the JAX backend (CPU, float32), runs it,
and writes one deterministic .npz per case (inputs, weights, outputs, gradients,
updated weights), removes fixtures of cases that no longer exist, and records the
versions used in data/VERSIONS.json. Running it twice gives byte-identical files.
Needs keras and jax; minicnn is not used.

A subset, leaving every other fixture as it is:

    python tests/reference/generate.py SUBSTRING [SUBSTRING ...]   # ids containing one
    python tests/reference/generate.py --missing                   # cases without a fixture

A subset is only written with the Keras, JAX and numpy versions of VERSIONS.json (one
fixture set, one set of versions); with other versions, regenerate everything.
"""
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference import cases  # noqa: E402


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    missing = "--missing" in argv
    only = [a for a in argv if a != "--missing"]   # optional: ids containing one of these
    subset = missing or bool(only)
    cases.DATA_DIR.mkdir(parents=True, exist_ok=True)
    all_cases = cases.all_cases()
    ids = [c["id"] for c in all_cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    if subset and cases.VERSIONS_FILE.exists():
        stored, now = cases.stored_versions(), cases.keras_versions()
        if stored != now:
            sys.exit(f"the fixtures were made with {stored}, this environment has {now}: "
                     f"regenerate every fixture (no arguments), not a subset")
    start = time.perf_counter()
    for i, case in enumerate(all_cases):
        if only and not any(s in case["id"] for s in only):
            continue
        if missing and cases.fixture_path(case).exists():
            continue
        t0 = time.perf_counter()
        inputs = cases.make_inputs(case)
        expected, meta = cases.keras_expected(case, inputs)
        cases.save_fixture(case, inputs, expected, meta)
        print(f"[{i + 1:3d}/{len(all_cases)}] {case['id']} ({time.perf_counter() - t0:.1f}s)",
              flush=True)
    if not subset:
        for path in sorted(cases.DATA_DIR.glob("*.npz")):
            if path.stem not in set(ids):
                print(f"removing stale fixture {path.name}")
                path.unlink()
    if not subset or not cases.VERSIONS_FILE.exists():
        cases.VERSIONS_FILE.write_text(json.dumps(cases.keras_versions(), indent=2,
                                                  sort_keys=True) + "\n")
    total = sum(p.stat().st_size for p in cases.DATA_DIR.iterdir())
    print(f"{len(all_cases)} cases in {time.perf_counter() - start:.0f}s; "
          f"{total / 1e6:.2f} MB in {cases.DATA_DIR}")


if __name__ == "__main__":
    main()
