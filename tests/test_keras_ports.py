"""Keras's introductory programs, transcribed in examples/keras_ports/ with their imports
changed and nothing else, run offline on the data subsets shipped with minicnn (pointed
at with MINICNN_DATA, so a full copy installed on the machine is not read) with fewer
epochs, the one edit made here, so CI stays short; a program that prints no test accuracy
gets one line printing the score it computed."""
import os
import re
import subprocess
import sys

import pytest

from minicnn.datasets import subset_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORTS = os.path.join(ROOT, "examples", "keras_ports")

# Each program's import lines as ported (the originals: `import keras`, `from keras
# import layers`, and the TensorFlow tutorial's `import tensorflow as tf`).
IMPORTS = {
    "mnist_convnet.py": ("import minicnn as keras", "from minicnn import layers"),
    "basic_classification.py": ("import minicnn as keras",),
    "intro_for_engineers.py": ("import minicnn as keras",),
}
# The epochs a program trains for: its `epochs = N` line or its `model.fit(..., epochs=N)`.
EPOCHS = re.compile(r"^(epochs = |model\.fit\(.*\bepochs=)\d+", re.M)
# The line added to a program that computes its test score and prints none.
PRINT_SCORE = {"intro_for_engineers.py": 'print("Test accuracy:", score[1])\n'}
# Files a program writes into the current folder, given the epochs it ran.
WRITES = {"intro_for_engineers.py": lambda epochs: [
    *(f"model_at_epoch_{epoch}.keras" for epoch in range(1, epochs + 1)), "final_model.keras"]}


def _code(source):
    """The program without its docstrings and comments."""
    code = re.sub(r'"""[\s\S]*?"""', "", source)
    return "\n".join(line for line in code.splitlines() if not line.lstrip().startswith("#"))


@pytest.mark.parametrize("program", sorted(IMPORTS))
def test_only_the_imports_differ_from_keras(program):
    source = open(os.path.join(PORTS, program)).read()
    code = source.split('"""', 2)[2]  # after the module docstring
    rest = code
    for line in IMPORTS[program]:
        assert re.search(rf"^{re.escape(line)}$", code, re.M), line
        rest = rest.replace(line, "")
    assert "minicnn" not in rest
    # Nothing of Keras or TensorFlow left to import, and no `tf.keras.` left to call.
    assert not re.search(r"^\s*(import|from)\s+(keras|tensorflow)\b", code, re.M)
    assert "tf." not in _code(code)


@pytest.mark.parametrize("program, epochs, accuracy", [
    ("mnist_convnet.py", 2, 0.85),
    # all of its 10 epochs: the 10,000-image subset trains a Dense net in seconds
    ("basic_classification.py", 10, 0.8),
    # 2 of its 20 epochs on 3,400 images: far from trained (0.56 to 0.74 in 7 runs),
    # well above chance
    ("intro_for_engineers.py", 2, 0.3),
])
def test_a_keras_program_runs_and_learns(tmp_path, program, epochs, accuracy):
    source = open(os.path.join(PORTS, program)).read()
    short, count = EPOCHS.subn(rf"\g<1>{epochs}", source)
    assert count == 1
    script = tmp_path / program
    script.write_text(short + PRINT_SCORE.get(program, ""))
    data = tmp_path / "data"  # MINICNN_DATA's <name>/ folders, the shipped subsets
    data.mkdir()
    for name in ("mnist", "fashion-mnist"):
        os.symlink(subset_dir(name), data / name)
    env = dict(os.environ, MINICNN_OFFLINE="1", HOME=str(tmp_path),
               KERAS_HOME=str(tmp_path / ".keras"), MINICNN_DATA=str(data))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=600, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    found = re.search(r"Test accuracy: ([0-9.]+)", run.stdout)
    assert found and float(found.group(1)) >= accuracy, run.stdout[-2000:]
    for name in WRITES.get(program, lambda epochs: [])(epochs):
        assert (tmp_path / name).is_file(), (name, sorted(os.listdir(tmp_path)))
