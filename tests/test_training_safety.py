"""Training never fails silently: inputs of another sample shape, NaN/Inf in the data,
a loss that turns NaN, resuming from a file, a process killed while saving."""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import minicnn as mc
from minicnn.layers import (BatchNormalization, Conv2D, Dense, Dropout, Flatten,
                            MaxPooling2D)
from minicnn.models import load_model


def conv_model(name="shapes"):
    """Built for 8x8 images; 9x9 images give the same number of features (3x3x2)."""
    model = mc.Sequential([Conv2D(2, 3, input_shape=(8, 8, 1)), MaxPooling2D(2), Flatten(),
                           Dense(3, activation="softmax")], name=name)
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


# ---------------------------------------------------------------------------------
# 1. inputs of another sample shape
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("call", ["predict", "evaluate", "fit", "train_on_batch"])
def test_another_sample_shape_is_refused(call):
    model = conv_model()
    x = np.zeros((5, 9, 9, 1), np.float32)
    y = np.zeros(5, int)
    # the layers themselves would run it: the flattened size is the same
    assert model.layers[-2].compute_output_shape(
        model.layers[1].compute_output_shape(model.layers[0].compute_output_shape(
            (9, 9, 1)))) == (18,)
    args = (x,) if call == "predict" else (x, y)
    with pytest.raises(ValueError) as info:
        getattr(model, call)(*args, **({"verbose": 0} if call == "fit" else {}))
    text = str(info.value)
    assert "'shapes'" in text and "(None, 8, 8, 1)" in text and "(5, 9, 9, 1)" in text


def test_validation_data_of_another_sample_shape_is_refused():
    model = conv_model()
    x, y = np.zeros((4, 8, 8, 1), np.float32), np.zeros(4, int)
    with pytest.raises(ValueError, match=r"validation_data.*\(None, 8, 8, 1\).*\(2, 9, 9, 1\)"):
        model.fit(x, y, validation_data=(np.zeros((2, 9, 9, 1), np.float32), np.zeros(2, int)),
                  verbose=0)


def test_the_right_shape_still_runs():
    model = conv_model()
    x, y = np.ones((4, 8, 8, 1), np.float32), np.zeros(4, int)
    model.fit(x, y, verbose=0)
    assert model.predict(x).shape == (4, 3)


# ---------------------------------------------------------------------------------
# 2. NaN and Inf in the data
# ---------------------------------------------------------------------------------
def mlp(name="numerics"):
    model = mc.Sequential([Dense(4, activation="tanh", input_shape=(3,)),
                           Dense(2, activation="softmax")], name=name)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("call", ["fit", "evaluate"])
def test_nonfinite_inputs_are_refused_naming_the_first(call, bad):
    x = np.ones((10, 3), np.float32)
    x[7, 2] = bad
    x[9, 0] = bad
    with pytest.raises(ValueError) as info:
        getattr(mlp(), call)(x, np.zeros(10, int), **({"verbose": 0} if call == "fit" else {}))
    text = str(info.value)
    assert "'numerics'" in text and "x[7, 2]" in text and "sample 7" in text
    assert "check_numerics=False" in text


def test_nonfinite_float_targets_are_refused():
    model = mc.Sequential([Dense(1, input_shape=(3,))], name="regression")
    model.compile("sgd", "mse")
    y = np.zeros((6, 1), np.float32)
    y[4, 0] = np.nan
    with pytest.raises(ValueError, match=r"'regression'.*\by\[4, 0\]"):
        model.fit(np.ones((6, 3), np.float32), y, verbose=0)


def test_nonfinite_validation_data_is_refused():
    x_val = np.ones((4, 3), np.float32)
    x_val[1, 1] = np.inf
    with pytest.raises(ValueError, match=r"validation x\[1, 1\]"):
        mlp().fit(np.ones((4, 3), np.float32), np.zeros(4, int), verbose=0,
                  validation_data=(x_val, np.zeros(4, int)))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_check_numerics_false_skips_the_check():
    x = np.ones((4, 3), np.float32)
    x[0, 0] = np.nan
    model = mlp()
    model.evaluate(x, np.zeros(4, int), check_numerics=False)  # no error: NaN loss
    model.fit(x, np.zeros(4, int), verbose=0, check_numerics=False, terminate_on_nan=False)


# ---------------------------------------------------------------------------------
# 3. a loss that turns NaN: fit stops and keeps the last finite step's weights
# ---------------------------------------------------------------------------------
def bn_model():
    mc.utils.set_random_seed(3)
    model = mc.Sequential([Dense(4, input_shape=(3,)), BatchNormalization(),
                           Dense(2, activation="softmax")], name="nan_stop")
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow, on purpose
def test_fit_stops_when_the_loss_turns_nan(capsys):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 3)).astype(np.float32)
    y = rng.integers(0, 2, 16)
    x[9] = 3e38  # finite, but the forward pass overflows: batch 3 (rows 8-11) has a NaN loss
    model = bn_model()
    history = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    out = capsys.readouterr().out
    assert "epoch 1, step 3/4" in out and "last step with a finite loss" in out
    assert model.stop_training and history.history == {}
    reference = bn_model()  # the same model, trained on the two finite batches only
    for start in (0, 4):
        reference.train_on_batch(x[start:start + 4], y[start:start + 4])
    for got, expected in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(got, expected)  # moving statistics included
    assert all(np.isfinite(w).all() for w in model.get_weights())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_terminate_on_nan_false_trains_on():
    x = np.ones((8, 3), np.float32)
    x[5] = 3e38
    model = bn_model()
    model.fit(x, np.zeros(8, int), batch_size=4, epochs=1, shuffle=False, verbose=0,
              terminate_on_nan=False)
    assert not model.stop_training
    assert not all(np.isfinite(w).all() for w in model.get_weights())


# ---------------------------------------------------------------------------------
# 4. resuming from a file is exact
# ---------------------------------------------------------------------------------
def resumable_model():
    model = mc.Sequential([
        Conv2D(3, 3, activation="relu", input_shape=(6, 6, 1)), BatchNormalization(),
        Flatten(), Dropout(0.3, seed=11), Dense(8, activation="tanh"), Dropout(0.2, seed=5),
        Dense(3, activation="softmax")], name="resume")
    model.compile(mc.optimizers.Adam(1e-2), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


@pytest.mark.parametrize("seed", [None, 123])
def test_resuming_from_a_file_equals_training_without_a_break(tmp_path, seed):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 6, 6, 1)).astype(np.float32)
    y = rng.integers(0, 3, 40)

    mc.utils.set_random_seed(0)
    straight = resumable_model()
    straight.fit(x, y, batch_size=8, epochs=3, shuffle=True, seed=seed, verbose=0)

    mc.utils.set_random_seed(0)
    first = resumable_model()
    first.fit(x, y, batch_size=8, epochs=2, shuffle=True, seed=seed, verbose=0)
    path = tmp_path / "after_epoch_2.mcnn"
    first.save(path)
    mc.utils.set_random_seed(999)  # whatever the process's generator does meanwhile
    resumed = load_model(path)
    resumed.fit(x, y, batch_size=8, epochs=1, shuffle=True, seed=seed, verbose=0)

    for got, expected in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(got, expected)
    for got, expected in zip(resumed.optimizer.get_state()["m"],
                             straight.optimizer.get_state()["m"]):
        np.testing.assert_array_equal(got, expected)


def test_a_file_naming_an_unknown_generator_is_refused(tmp_path):
    import json
    import zipfile
    model = resumable_model()
    model.fit(np.zeros((4, 6, 6, 1), np.float32), np.zeros(4, int), verbose=0)
    path = tmp_path / "m.mcnn"
    model.save(path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(bytes(arrays["__minicnn_header__"]).decode())
    header["random"]["shuffle"]["state"]["bit_generator"] = "os.system"
    arrays["__minicnn_header__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    assert zipfile.is_zipfile(path)
    with pytest.raises(ValueError, match="unknown random generator 'os.system'"):
        load_model(path)


# ---------------------------------------------------------------------------------
# 5. a process killed while saving leaves the previous file intact
# ---------------------------------------------------------------------------------
KILLED_SAVE = textwrap.dedent(r"""
    import sys, time
    import numpy as np
    import minicnn as mc
    from minicnn.layers import Dense
    path = sys.argv[1]
    mc.utils.set_random_seed(0)
    model = mc.Sequential([Dense(300, input_shape=(300,)), Dense(3)])
    model.compile("adam", "mse")
    model.save(path)                      # the good file
    model.set_weights([w + 1 for w in model.get_weights()])
    real_savez = np.savez
    def slow_savez(f, **arrays):          # write part of the archive, then stall
        f.write(b"PK\x03\x04" + b"\0" * 100000)
        f.flush()
        print("writing", flush=True)
        time.sleep(60)
    np.savez = slow_savez
    model.save(path)                      # killed in the middle of this
""")


def test_sigkill_during_save_leaves_the_previous_file(tmp_path):
    path = tmp_path / "model.mcnn"
    script = tmp_path / "save.py"
    script.write_text(KILLED_SAVE)
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        before = load_model(path).get_weights()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    model = load_model(path)  # the previous file, whole
    mc.utils.set_random_seed(0)
    expected = mc.Sequential([Dense(300, input_shape=(300,)), Dense(3)]).get_weights()
    for got, saved, first in zip(model.get_weights(), before, expected):
        np.testing.assert_array_equal(got, saved)
        np.testing.assert_array_equal(got, first)
