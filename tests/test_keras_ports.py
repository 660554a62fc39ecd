"""Keras's introductory programs, transcribed in examples/keras_ports/ with their imports
changed and nothing else, run offline on the shipped data (with fewer epochs, the one
edit made here, so CI stays short)."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORTS = os.path.join(ROOT, "examples", "keras_ports")


def test_only_the_imports_differ_from_keras():
    source = open(os.path.join(PORTS, "mnist_convnet.py")).read()
    code = source.split('"""', 2)[2]  # after the module docstring
    assert "import minicnn as keras" in code and "from minicnn import layers" in code
    assert "minicnn" not in code.replace("import minicnn as keras", "").replace(
        "from minicnn import layers", "")


@pytest.mark.parametrize("program, epochs, accuracy", [("mnist_convnet.py", 2, 0.85)])
def test_a_keras_program_runs_and_learns(tmp_path, program, epochs, accuracy):
    source = open(os.path.join(PORTS, program)).read()
    short, count = re.subn(r"^epochs = \d+$", f"epochs = {epochs}", source, flags=re.M)
    assert count == 1
    script = tmp_path / program
    script.write_text(short)
    env = dict(os.environ, MINICNN_OFFLINE="1", HOME=str(tmp_path))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=600, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    found = re.search(r"Test accuracy: ([0-9.]+)", run.stdout)
    assert found and float(found.group(1)) >= accuracy, run.stdout[-2000:]
