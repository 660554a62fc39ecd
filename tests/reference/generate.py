"""Regenerate the Keras reference fixtures in tests/reference/data/.

    KERAS_BACKEND=jax JAX_PLATFORMS=cpu python tests/reference/generate.py

(the two variables are set to these values by default). Builds every case of
``cases.all_cases()`` with real Keras 3 on the JAX backend (CPU, float32), runs it,
and writes one deterministic .npz per case (inputs, weights, outputs, gradients,
updated weights), removes fixtures of cases that no longer exist, and records the
versions used in data/VERSIONS.json. Running it twice gives byte-identical files.
Needs keras and jax; minicnn is not used.
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
    only = argv[0] if argv else None          # optional: only ids containing this string
    cases.DATA_DIR.mkdir(parents=True, exist_ok=True)
    all_cases = cases.all_cases()
    ids = [c["id"] for c in all_cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    start = time.perf_counter()
    for i, case in enumerate(all_cases):
        if only and only not in case["id"]:
            continue
        t0 = time.perf_counter()
        inputs = cases.make_inputs(case)
        expected, meta = cases.keras_expected(case, inputs)
        cases.save_fixture(case, inputs, expected, meta)
        print(f"[{i + 1:3d}/{len(all_cases)}] {case['id']} ({time.perf_counter() - t0:.1f}s)",
              flush=True)
    if not only:
        for path in sorted(cases.DATA_DIR.glob("*.npz")):
            if path.stem not in set(ids):
                print(f"removing stale fixture {path.name}")
                path.unlink()
    cases.VERSIONS_FILE.write_text(json.dumps(cases.keras_versions(), indent=2,
                                              sort_keys=True) + "\n")
    total = sum(p.stat().st_size for p in cases.DATA_DIR.iterdir())
    print(f"{len(all_cases)} cases in {time.perf_counter() - start:.0f}s; "
          f"{total / 1e6:.2f} MB in {cases.DATA_DIR}")


if __name__ == "__main__":
    main()
