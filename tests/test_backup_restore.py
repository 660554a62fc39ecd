"""BackupAndRestore: a fit killed by SIGKILL mid-epoch and resumed from its backup ends
with the weights of a run never interrupted, bit for bit (the optimizer's state, the
epoch's batch order, the shuffling generator, every layer's and the global random
generators, the steps already done); save_freq, delete_checkpoint,
double_checkpoint and the errors, with Keras 3's arguments."""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import minicnn as mc
from minicnn.callbacks import BackupAndRestore
from minicnn.layers import Dense, Dropout, Flatten

SCRIPT = textwrap.dedent('''
    import math, os, signal, sys
    import numpy as np
    import minicnn as mc
    from minicnn.layers import Dense, Dropout, Flatten

    mode, data_kind, backup, out, save_freq, kill_at = sys.argv[1:7]
    save_freq = save_freq if save_freq == "epoch" else int(save_freq)
    mc.utils.set_random_seed(0)
    layers = [mc.Input((4, 4, 1))]
    if hasattr(mc.layers, "RandomFlip"):  # augmentation: a seeded and an unseeded one
        layers += [mc.layers.RandomFlip("horizontal", seed=4), mc.layers.RandomContrast(0.3)]
    layers += [Flatten(), Dense(8, activation="relu"), Dropout(0.3, seed=3), Dropout(0.2),
               Dense(3, activation="softmax")]
    model = mc.Sequential(layers)
    model.compile(mc.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    rng = np.random.default_rng(1)
    x = rng.random((50, 4, 4, 1)).astype(np.float32)
    y = rng.integers(0, 3, 50)

    class Batches(mc.utils.PyDataset):
        def __len__(self):
            return 7

        def __getitem__(self, i):
            noise = np.random.random() * 1e-3  # NumPy's legacy global generator
            return x[8 * i:8 * i + 8] + noise, y[8 * i:8 * i + 8]

    class Kill(mc.callbacks.Callback):
        count = 0

        def on_train_batch_end(self, batch, logs=None):
            Kill.count += 1
            if mode == "kill" and Kill.count == int(kill_at):
                os.kill(os.getpid(), signal.SIGKILL)

    callbacks = [] if mode == "plain" else [mc.callbacks.BackupAndRestore(
        backup, save_freq=save_freq)]
    if data_kind == "arrays":
        args = dict(x=x, y=y, batch_size=8, epochs=4, validation_data=(x[:10], y[:10]))
    else:  # a PyDataset, shuffled, its passes going on across epochs
        args = dict(x=Batches(), epochs=5, steps_per_epoch=5)
    history = model.fit(**args, callbacks=callbacks + [Kill()], verbose=0)
    np.savez(out, *model.get_weights(), epochs=np.array(history.epoch))
''')


def run(tmp_path, mode, data_kind="arrays", save_freq="3", kill_at=0):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out = tmp_path / f"{mode}-{len(list(tmp_path.iterdir()))}.npz"
    proc = subprocess.run([sys.executable, str(script), mode, data_kind,
                           str(tmp_path / "backup"), str(out), save_freq, str(kill_at)],
                          capture_output=True, text=True, timeout=300,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if mode == "kill":
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        return None
    assert proc.returncode == 0, proc.stderr
    with np.load(out) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files) - 1)], saved["epochs"]


@pytest.mark.parametrize("data_kind, save_freq, kill_at", [
    ("arrays", "3", 17),      # epoch 3 of 4, step 3 of 7; the last backup after step 1
    ("arrays", "epoch", 12),  # mid-epoch 2: that epoch starts again from its backup
    ("pydataset", "4", 13)])  # a pass that goes on across epochs, shuffled batch order
def test_killed_fit_resumes_bit_for_bit(tmp_path, data_kind, save_freq, kill_at):
    plain, plain_epochs = run(tmp_path, "plain", data_kind)
    run(tmp_path, "kill", data_kind, save_freq, kill_at)
    assert os.path.exists(tmp_path / "backup" / "latest.npz")
    resumed, epochs = run(tmp_path, "resume", data_kind, save_freq)
    assert len(resumed) == len(plain)
    for a, b in zip(resumed, plain):
        np.testing.assert_array_equal(a, b)
    assert 0 < len(epochs) < len(plain_epochs)  # only the epochs left were run
    assert list(epochs) == list(plain_epochs[-len(epochs):])
    assert not os.path.exists(tmp_path / "backup")  # deleted once fit completed


def small_model():
    mc.utils.set_random_seed(0)
    m = mc.Sequential([mc.Input((4,)), Dense(6, activation="tanh"), Dropout(0.2, seed=1),
                       Dense(2, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy")
    return m


def data():
    rng = np.random.default_rng(2)
    return rng.standard_normal((24, 4)).astype(np.float32), rng.integers(0, 2, 24)


def test_save_freq_epoch_keeps_a_backup_that_a_new_fit_resumes(tmp_path):
    x, y = data()
    backup = tmp_path / "b"
    m = small_model()

    class Stop(mc.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt  # as a crash would end the process here

    with pytest.raises(KeyboardInterrupt):
        m.fit(x, y, epochs=5, verbose=0, callbacks=[BackupAndRestore(backup), Stop()])
    assert os.listdir(backup) == ["latest.npz"]
    m2 = small_model()  # a new process would start from the same initial weights
    history = m2.fit(x, y, epochs=5, verbose=0,
                     callbacks=[BackupAndRestore(backup, delete_checkpoint=False)])
    assert history.epoch == [2, 3, 4]  # Keras's rule: the epochs not yet done
    ref = small_model()
    ref.fit(x, y, epochs=5, verbose=0)
    for a, b in zip(m2.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert os.path.exists(backup / "latest.npz")  # delete_checkpoint=False
    again = small_model().fit(x, y, epochs=5, verbose=0, callbacks=[BackupAndRestore(backup)])
    assert again.epoch == [] and not os.path.exists(backup)  # all done: then deleted


def test_double_checkpoint_falls_back_on_the_previous_backup(tmp_path):
    x, y = data()
    backup = tmp_path / "b"
    m = small_model()
    m.fit(x, y, epochs=3, verbose=0, callbacks=[BackupAndRestore(
        backup, double_checkpoint=True, delete_checkpoint=False)])
    assert sorted(os.listdir(backup)) == ["latest.npz", "latest.npz.bkp"]
    (backup / "latest.npz").write_bytes(b"not a zip")
    history = small_model().fit(x, y, epochs=3, verbose=0, callbacks=[
        BackupAndRestore(backup, double_checkpoint=True)])
    assert history.epoch == [2]  # the previous backup, after epoch 2
    (backup.mkdir(), (backup / "latest.npz").write_bytes(b"not a zip"))
    with pytest.raises(ValueError, match="latest.npz"):
        small_model().fit(x, y, epochs=3, verbose=0, callbacks=[BackupAndRestore(backup)])


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="Empty `backup_dir`"):
        BackupAndRestore("")
    for bad in ("batch", 0, -2, False, 1.5):
        with pytest.raises(ValueError, match="save_freq"):
            BackupAndRestore(tmp_path, save_freq=bad)
    x, y = data()
    small_model().fit(x, y, epochs=1, verbose=0,
                      callbacks=[BackupAndRestore(tmp_path / "b", delete_checkpoint=False)])
    other = mc.Sequential([mc.Input((4,)), Dense(5), Dense(2, activation="softmax")])
    other.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="latest.npz"):
        other.fit(x, y, epochs=2, verbose=0, callbacks=[BackupAndRestore(tmp_path / "b")])
    unbuilt = mc.Sequential([Dense(2, activation="softmax")])
    unbuilt.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="must be built"):
        unbuilt.fit(iter([(x, y)]), verbose=0, callbacks=[BackupAndRestore(tmp_path / "c")])


def test_nothing_is_unpickled(tmp_path, monkeypatch):
    x, y = data()
    small_model().fit(x, y, epochs=2, verbose=0, callbacks=[
        BackupAndRestore(tmp_path / "b", delete_checkpoint=False)])
    import pickle

    def refuse(*args, **kwargs):
        raise AssertionError("unpickled")
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    history = small_model().fit(x, y, epochs=3, verbose=0,
                                callbacks=[BackupAndRestore(tmp_path / "b")])
    assert history.epoch == [2]
    assert mc.callbacks.BackupAndRestore is BackupAndRestore
    assert Flatten  # the layers the subprocess script uses are importable here
