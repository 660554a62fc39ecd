"""The training recipe of examples/fashion_mnist_best.py and the benchmarks around it run
end to end on the shipped subset (their figures need the full data and minutes: see
the README); what each writes is what the README reads."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import minicnn as mc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
SUBSET = os.path.join(ROOT, "minicnn", "datasets", "data", "fashion-mnist-subset")

pytestmark = pytest.mark.skipif("numba" not in mc.backend.available(),
                                reason="the recipe trains on the numba backend")


@pytest.fixture
def recipe(monkeypatch):
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    import fashion_mnist_best
    sys.path.pop(0)
    original = fashion_mnist_best.load_data

    def few(path=None):  # 640 training and 200 test images: one epoch in seconds
        (x, y), (xt, yt) = original(path)
        return (x[:640], y[:640]), (xt[:200], yt[:200])
    monkeypatch.setattr(fashion_mnist_best, "load_data", few)
    yield fashion_mnist_best
    mc.backend.set_backend("numpy")


def test_the_recipe_trains_and_reports_its_curve(recipe, tmp_path):
    path = str(tmp_path / "run.json")
    accuracy, seconds = recipe.main(["--epochs", "2", "--data", SUBSET, "--json", path,
                                     "--backend", "numba"])
    with open(path) as f:
        run = json.load(f)
    assert run["test_accuracy"] == accuracy and 0 <= accuracy <= 1
    assert [p["epoch"] for p in run["curve"]] == [1, 2]
    assert 0 < run["curve"][0]["train_seconds"] < run["curve"][1]["train_seconds"] == \
        pytest.approx(seconds, abs=0.01)
    assert accuracy > 0.3  # far above chance after two epochs of 640 images


def test_the_recipe_model_is_the_documented_one(recipe):
    model = recipe.recipe_model()
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds[:2] == ["RandomFlip", "RandomTranslation"]
    assert kinds.count("Conv2D") == 4 and kinds.count("BatchNormalization") == 4
    assert [layer.filters for layer in model.layers
            if isinstance(layer, mc.layers.Conv2D)] == [24, 24, 48, 48]
    optimizer = recipe.recipe_optimizer(steps_per_epoch=10, epochs=3)
    rates = [float(optimizer.learning_rate(step)) for step in (0, 10, 30)]
    np.testing.assert_allclose(rates, [1e-4, 3e-3, 0.0], atol=1e-9)  # warm-up, peak, end


def run_script(*args, timeout=600):
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def test_the_accuracy_benchmark_runs_minicnn_and_writes_its_curves(tmp_path):
    frameworks = ["minicnn"] + (["torch"] if _has("torch") else [])
    out = run_script(os.path.join(ROOT, "benchmarks", "accuracy_fmnist.py"), "--smoke",
                     "--out", str(tmp_path), "--data", SUBSET, "--frameworks", *frameworks)
    with open(tmp_path / "accuracy_fmnist.json") as f:
        result = json.load(f)
    assert sorted(result["curves"]) == sorted(frameworks) and not result["failures"]
    for curve in result["curves"].values():
        assert len(curve) == 2 and curve[0][0] < curve[1][0]
    assert "final" in out and "minicnn" in out


def test_the_normalization_benchmark_prints_its_targets(tmp_path):
    out = run_script(os.path.join(ROOT, "benchmarks", "bench_normalization.py"), "--smoke",
                     "--out", str(tmp_path))
    assert "BatchNormalization + Dropout take" in out
    with open(tmp_path / "bench_normalization.json") as f:
        result = json.load(f)
    assert "minicnn modern" in result["ms_per_step"] and result["smoke"]


def _has(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True
