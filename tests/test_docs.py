"""Every page of docs/ runs: its ```python blocks are executed in order, in one
namespace per page, in a scratch folder (so the checks written in them -- asserts
against the loop reference, gradient checks -- hold on the current code)."""
import os
import re
from pathlib import Path

import pytest

import minicnn as mc

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(DOCS.glob("[0-9][0-9]-*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def test_the_book_has_its_pages():
    assert len(PAGES) >= 11, [p.name for p in PAGES]


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_page_code_runs(page, tmp_path, monkeypatch):
    blocks = BLOCK.findall(page.read_text(encoding="utf-8"))
    assert blocks, f"{page.name} has no python block"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MINICNN_OFFLINE", "1")
    namespace = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    for number, code in enumerate(blocks, start=1):
        try:
            exec(compile(code, f"{page.name} block {number}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"{page.name}, python block {number} failed: "
                                 f"{exc.__class__.__name__}: {exc}") from exc
    mc.backend.set_backend(mc.backend.default_backend())


def test_figures_the_pages_show_exist():
    for page in PAGES:
        for figure in re.findall(r"\]\((figures/[^)]+\.png)\)", page.read_text()):
            assert (DOCS / figure).is_file(), f"{page.name} shows {figure}, which "\
                "docs/make_figures.py has not made"


def _gradient_table(text):
    """The rows of check_model's table: gradient name, shape, method and result."""
    return re.findall(r"^(\S+)\s+(\([\d, ]+\))\s+(elementwise|\d directions)\s+\S+\s+(pass|FAIL)$",
                      text, re.M)


def test_walkthrough_runs_its_checks_pass_and_the_docs_show_its_output():
    import subprocess
    import sys
    root = DOCS.parent
    result = subprocess.run([sys.executable, str(root / "examples" / "backprop_walkthrough.py")],
                            capture_output=True, text=True, timeout=300, cwd=root,
                            env=dict(os.environ, MINICNN_OFFLINE="1"))
    assert result.returncode == 0, result.stderr
    printed = result.stdout
    assert "trace of one training step" in printed and "FAIL" not in printed
    before, after = map(float, re.search(r"loss on these 8 images: ([\d.]+) before, "
                                         r"([\d.]+) after", printed).groups())
    assert after < before
    shown = (DOCS / "README.md").read_text(encoding="utf-8")
    assert _gradient_table(printed) and _gradient_table(printed) == _gradient_table(shown)
    layers = re.findall(r"^  (\w+) \((\w+)\)\s+\(", printed, re.M)
    assert layers and layers == re.findall(r"^  (\w+) \((\w+)\)\s+\(", shown, re.M)


def test_links_in_the_docs_point_at_files_that_exist():
    for page in [DOCS / "README.md", *PAGES]:
        for target in re.findall(r"\]\((\.\./[^)#]+)\)", page.read_text(encoding="utf-8")):
            assert (DOCS / target).resolve().exists(), f"{page.name} links {target}"
