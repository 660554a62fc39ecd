"""Comparison helpers shared by the stored-fixture and the live Keras tests.

``assert_close`` is the one assertion every Keras comparison goes through. Its
criterion is numpy's ``allclose``, elementwise: ``|actual - expected| <= atol +
rtol * |expected|``; its message gives the number of offending entries, the largest
absolute and relative errors and the worst entry.

``Recorder`` keeps, per (source, case family), the number of cases, the number of
compared arrays and the largest absolute and relative errors observed (failing
comparisons included). The session fixture ``keras_summary`` prints the table at
the end of the session (visible with ``pytest -s``) and writes it to
``tests/.keras_reference_summary.txt``.

Relative error, as reported: ``|actual - expected| / |expected|`` over the entries
with ``|expected| > atol`` (below that the absolute criterion is the one that
applies, and a ratio to a near-zero expected value says nothing). Exact checks
(``atol = 0``) use every nonzero expected entry. Entries of gradients that nearly
cancel make this elementwise figure large even when every entry is right to a few
ulps of the array's scale, so the table also gives the normwise relative error
``max |actual - expected| / max |expected|`` (per array with ``max |expected| > atol``,
the worst over the family)
and the tolerance used: ``max |actual - expected| / (atol + rtol |expected|)``, which
must stay below 1.
"""
from pathlib import Path

import numpy as np
import pytest

SUMMARY_FILE = Path(__file__).resolve().parents[1] / ".keras_reference_summary.txt"


def measure(actual, expected, atol=0.0):
    """(max abs err, max rel err) of two same-shape arrays, as defined above."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.size == 0:
        return 0.0, 0.0
    diff = np.abs(a - e)
    diff = np.where(np.isnan(a) & np.isnan(e), 0.0, diff)   # NaN == NaN here
    max_abs = float(np.nanmax(np.where(np.isnan(diff), np.inf, diff)))
    big = np.abs(e) > atol
    max_rel = float((diff[big] / np.abs(e[big])).max()) if big.any() else 0.0
    return max_abs, max_rel


def assert_close(name, actual, expected, rtol, atol):
    """Raise AssertionError unless ``|actual - expected| <= atol + rtol*|expected|``
    everywhere (same shape required). Returns ``(max_abs_err, max_rel_err)``."""
    a = np.asarray(actual)
    e = np.asarray(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{name}: shape {a.shape} differs from Keras's {e.shape}")
    max_abs, max_rel = measure(a, e, atol)
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(a64 - e64) <= atol + rtol * np.abs(e64))
    bad &= ~(np.isnan(a64) & np.isnan(e64))
    if bad.any():
        worst = np.unravel_index(int(np.argmax(np.where(bad, np.abs(a64 - e64), -1.0))),
                                 a.shape) if a.ndim else ()
        raise AssertionError(
            f"{name}: {int(bad.sum())} of {a.size} entries differ beyond rtol={rtol:g}, "
            f"atol={atol:g}; max abs err {max_abs:.3e}, max rel err {max_rel:.3e}; worst at "
            f"index {tuple(int(i) for i in worst)}: minicnn {a64[worst]!r}, "
            f"Keras {e64[worst]!r}")
    return max_abs, max_rel


def _tolerance_used(a, e, rtol, atol):
    """max |a - e| / (atol + rtol |e|): below 1 passes (inf for a miss of an exact check)."""
    if a.size == 0:
        return 0.0
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    diff = np.abs(a64 - e64)
    bound = atol + rtol * np.abs(e64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(diff == 0, 0.0, diff / bound)
    ratio = np.where(np.isnan(a64) & np.isnan(e64), 0.0, ratio)
    return float(np.nan_to_num(ratio, nan=np.inf).max())


class Checker:
    """``assert_close`` bound to one case, recording every comparison."""

    def __init__(self, recorder, source, family, case_id):
        self.recorder, self.source, self.family, self.case_id = recorder, source, family, case_id
        recorder._stats(source, family)["cases"].add(case_id)

    def close(self, name, actual, expected, rtol, atol):
        stats = self.recorder._stats(self.source, self.family)
        a, e = np.asarray(actual), np.asarray(expected)
        if a.shape == e.shape:
            max_abs, max_rel = measure(a, e, atol)
            stats["arrays"] += 1
            if max_abs > stats["max_abs"]:
                stats["max_abs"], stats["worst"] = max_abs, f"{self.case_id}:{name}"
            stats["max_rel"] = max(stats["max_rel"], max_rel)
            scale = float(np.abs(e.astype(np.float64)).max()) if e.size else 0.0
            if scale > atol:   # as for the elementwise figure: not for arrays ~0
                stats["max_norm_rel"] = max(stats["max_norm_rel"], max_abs / scale)
            stats["used"] = max(stats["used"], _tolerance_used(a, e, rtol, atol))
        try:
            return assert_close(f"{self.case_id}: {name}", a, e, rtol, atol)
        except AssertionError:
            stats["failed"].add(self.case_id)
            raise

    def equal(self, name, actual, expected):
        """Exact equality (bit patterns aside from -0.0 == 0.0)."""
        return self.close(name, actual, expected, 0.0, 0.0)


class Recorder:
    def __init__(self):
        self.families = {}
        self.active = False

    def _stats(self, source, family):
        return self.families.setdefault((source, family), {
            "cases": set(), "arrays": 0, "max_abs": 0.0, "max_rel": 0.0, "max_norm_rel": 0.0,
            "used": 0.0, "worst": "", "failed": set()})

    def checker(self, source, case):
        return Checker(self, source, case["family"], case["id"])

    def table(self, header=""):
        lines = [header] if header else []
        lines.append(f"{'source':<15} {'family':<20} {'cases':>5} {'arrays':>6} "
                     f"{'max abs err':>11} {'max rel err':>11} {'normwise':>9} "
                     f"{'tol used':>8} {'failed':>6}  worst abs err at")
        for (source, family), s in sorted(self.families.items()):
            lines.append(f"{source:<15} {family:<20} {len(s['cases']):>5} {s['arrays']:>6} "
                         f"{s['max_abs']:>11.2e} {s['max_rel']:>11.2e} "
                         f"{s['max_norm_rel']:>9.1e} {s['used']:>8.3f} {len(s['failed']):>6}"
                         f"  {s['worst']}")
        return "\n".join(lines)


RECORDER = Recorder()


@pytest.fixture(scope="session")
def keras_summary():
    """The session's Recorder. Both Keras test modules import this fixture; the first
    instance set up is the last torn down, and it writes the table of everything."""
    owner = not RECORDER.active
    RECORDER.active = True
    yield RECORDER
    if owner and RECORDER.families:
        from .cases import summary_header
        text = RECORDER.table(summary_header())
        print("\n" + text)
        SUMMARY_FILE.write_text(text + "\n")
