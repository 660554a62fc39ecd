"""Data that need not fit in memory: ``fit``/``evaluate``/``predict`` on iterables of
batches (generators, lists of tuples) and PyDatasets, with Keras 3's rules on
``steps_per_epoch``, ``validation_steps`` and ``steps`` (``minicnn.data_adapters``),
and ``minicnn.datasets.image_folder``. Streamed batches train exactly as the same
batches sliced from arrays do."""
import math
import os
import threading
import warnings

import numpy as np
import pytest

import minicnn as mc
from minicnn import data_adapters
from minicnn.layers import Concatenate, Dense, Dropout, Flatten

N, B = 20, 4  # samples, batch size: 5 batches


def data(seed=0, n=N):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3)).astype(np.float32), rng.integers(0, 2, n)


def model(seed=0, dropout=False):
    mc.utils.set_random_seed(seed)
    layers = [mc.Input((3,)), Dense(5, activation="tanh")]
    layers += [Dropout(0.3, seed=1)] if dropout else []
    m = mc.Sequential(layers + [Dense(2, activation="softmax")])
    m.compile(mc.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy",
              metrics=["accuracy"])
    return m


def batches(x, y, w=None, size=B):
    for i in range(0, len(x), size):
        part = slice(i, i + size)
        yield (x[part], y[part]) if w is None else (x[part], y[part], w[part])


class Batches(mc.utils.PyDataset):
    """Batch i of arrays; records the calls fit makes."""

    def __init__(self, x, y, size=B, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.size, self.calls, self.threads = x, y, size, [], set()

    def __len__(self):
        return math.ceil(len(self.x) / self.size)

    def __getitem__(self, i):
        self.calls.append(i)
        self.threads.add(threading.current_thread().name)
        part = slice(i * self.size, (i + 1) * self.size)
        return self.x[part], self.y[part]

    def on_epoch_begin(self):
        self.calls.append("begin")

    def on_epoch_end(self):
        self.calls.append("end")


class Steps(mc.callbacks.Callback):
    """The batches of each epoch and fit's params."""

    def on_train_begin(self, logs=None):
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(0)

    def on_train_batch_end(self, batch, logs=None):
        assert batch == self.epochs[-1]
        self.epochs[-1] += 1


def same(a, b):
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)


# ---------------------------------------------------------------------------------
# streamed batches train, evaluate and predict as the arrays they slice
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["generator", "list", "pydataset", "pydataset-threads"])
def test_streamed_equals_arrays_bit_for_bit(kind):
    x, y = data()
    xv, yv = data(1, 8)
    ref = model(dropout=True)
    ref_hist = ref.fit(x, y, batch_size=B, epochs=1, shuffle=False, verbose=0,
                       validation_data=(xv, yv))
    ours = model(dropout=True)
    stream = {"generator": lambda: batches(x, y), "list": lambda: list(batches(x, y)),
              "pydataset": lambda: Batches(x, y),
              "pydataset-threads": lambda: Batches(x, y, workers=2, max_queue_size=2)}[kind]
    hist = ours.fit(stream(), epochs=1, verbose=0, shuffle=False,
                    validation_data=Batches(xv, yv))
    same(ref, ours)
    assert hist.history == ref_hist.history
    assert ours.evaluate(stream()) == ref.evaluate(x, y, batch_size=B)
    np.testing.assert_array_equal(ours.predict(stream()), ref.predict(x, batch_size=B))


def test_several_epochs_of_a_list_and_sample_weights():
    x, y = data()
    w = np.random.default_rng(3).uniform(0, 2, N)
    ref = model()
    ref.fit(x, y, sample_weight=w, batch_size=B, epochs=3, shuffle=False, verbose=0)
    ours = model()
    ours.fit(list(batches(x, y, w)), epochs=3, shuffle=False, verbose=0)
    same(ref, ours)
    assert ours.evaluate(batches(x, y, w)) == ref.evaluate(x, y, sample_weight=w,
                                                            batch_size=B)


def test_multi_input_multi_output_batches_as_dicts():
    def build():
        mc.utils.set_random_seed(0)
        a, b = mc.Input((3,), name="a"), mc.Input((2,), name="b")
        h = Dense(4, activation="relu")(Concatenate()([a, b]))
        m = mc.Model([a, b], [Dense(2, activation="softmax", name="cls")(h),
                              Dense(1, name="reg")(h)])
        m.compile("adam", ["sparse_categorical_crossentropy", "mse"])
        return m
    rng = np.random.default_rng(0)
    xa, xb = rng.standard_normal((12, 3)), rng.standard_normal((12, 2))
    yc, yr = rng.integers(0, 2, 12), rng.standard_normal((12, 1))
    ref, ours = build(), build()
    ref.fit({"a": xa, "b": xb}, {"cls": yc, "reg": yr}, batch_size=4, shuffle=False,
            verbose=0)
    ours.fit([({"a": xa[i:i + 4], "b": xb[i:i + 4]}, {"cls": yc[i:i + 4], "reg": yr[i:i + 4]})
              for i in range(0, 12, 4)], shuffle=False, verbose=0)
    same(ref, ours)
    outs = ours.predict([([xa[i:i + 4], xb[i:i + 4]],) for i in range(0, 12, 4)])
    for got, want in zip(outs, ref.predict([xa, xb], batch_size=4)):
        np.testing.assert_array_equal(got, want)


def test_array_path_slices_without_copies():
    """Unshuffled array batches are views of the arrays (no copy per step)."""
    x, y = data()
    source = data_adapters.ArrayBatches(x, y, None, B)
    xb, yb, _ = next(source.new_pass())
    assert np.shares_memory(xb, x) and np.shares_memory(yb, y)


# ---------------------------------------------------------------------------------
# Keras's rules on steps
# ---------------------------------------------------------------------------------
def test_generator_without_steps_runs_until_exhausted_then_stops():
    x, y = data()
    m, steps = model(), Steps()
    params = []
    cb = mc.callbacks.LambdaCallback(on_train_begin=lambda logs: params.append(
        dict(steps.params)))
    with pytest.warns(UserWarning, match="ran out of data"):
        hist = m.fit(batches(x, y), epochs=3, verbose=0, shuffle=False,
                     callbacks=[steps, cb])
    assert steps.epochs == [5]  # the first epoch learned the length; no data was left
    assert params[0]["steps"] is None
    assert len(hist.history["loss"]) == 1


def test_generator_with_steps_per_epoch_goes_on_across_epochs():
    x, y = data(n=24)  # 6 batches: 3 epochs of 2, nothing left over, no warning
    ref = model()
    ref.fit(x, y, batch_size=B, epochs=1, shuffle=False, verbose=0)
    m, steps = model(), Steps()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.fit(batches(x, y), epochs=3, steps_per_epoch=2, shuffle=False, verbose=0,
              callbacks=[steps])
    assert steps.epochs == [2, 2, 2] and steps.params["steps"] == 2
    same(ref, m)


def test_generator_running_out_before_steps_warns_and_stops():
    x, y = data()  # 5 batches
    m, steps = model(), Steps()
    with pytest.warns(UserWarning, match="ran out of data") as record:
        hist = m.fit(batches(x, y), epochs=5, steps_per_epoch=2, shuffle=False, verbose=0,
                     callbacks=[steps])
    assert steps.epochs == [2, 2, 1]  # Keras's epochs; then training stops
    assert len(hist.history["loss"]) == 3
    assert sum("ran out" in str(r.message) for r in record) == 1


def test_generator_ending_at_an_epoch_boundary_stops():
    x, y = data(n=16)  # 4 batches, steps 2: the third epoch finds nothing
    m, steps = model(), Steps()
    with pytest.warns(UserWarning, match="ran out of data"):
        hist = m.fit(batches(x, y), epochs=4, steps_per_epoch=2, shuffle=False, verbose=0,
                     callbacks=[steps])
    assert steps.epochs == [2, 2, 0] and len(hist.history["loss"]) == 2


def test_an_iterable_of_unknown_length_learns_it():
    """A re-iterable without ``len``: the first pass runs until it ends, and later
    epochs take that many batches (Keras's learned ``num_batches``)."""
    x, y = data(n=24)

    class Growing:  # each pass one batch longer than the last
        passes = 0

        def __iter__(self):
            Growing.passes += 1
            return batches(x[:16 + 4 * Growing.passes], y[:16 + 4 * Growing.passes])
    m, steps = model(), Steps()
    m.fit(Growing(), epochs=2, shuffle=False, verbose=0, callbacks=[steps])
    assert steps.params["steps"] is None and steps.epochs == [5, 5]


def test_arrays_with_steps_per_epoch_follow_keras():
    """Keras: the pass goes on into the next epoch; a pass that ends first ends the
    epoch with a warning, and the next epoch starts a new pass."""
    x, y = data()
    m, steps = model(), Steps()
    with pytest.warns(UserWarning, match="ran out of data"):
        m.fit(x, y, batch_size=B, epochs=3, steps_per_epoch=3, shuffle=False, verbose=0,
              callbacks=[steps])
    assert steps.epochs == [3, 2, 3]
    m2, steps2 = model(), Steps()
    m2.fit(x, y, epochs=1, steps_per_epoch=2, verbose=0, callbacks=[steps2])
    assert steps2.epochs == [2]  # batch_size None with steps: ceil(N / steps) (Keras)


def test_pydataset_epoch_hooks_order_and_steps():
    x, y = data()
    ds = Batches(x, y)
    model().fit(ds, epochs=2, shuffle=False, verbose=0)
    assert ds.calls == ["begin", 0, 1, 2, 3, 4, "end"] * 2
    ds = Batches(x, y)
    with pytest.warns(UserWarning, match="ran out of data"):
        model().fit(ds, epochs=3, steps_per_epoch=3, shuffle=False, verbose=0)
    assert ds.calls == ["begin", 0, 1, 2, "end", "begin", 3, 4, "end",
                        "begin", 0, 1, 2, "end"]


def test_pydataset_shuffle_permutes_the_batches_each_epoch():
    """Keras shuffles a finite PyDataset's batch order when shuffle=True; here the
    model's shuffling generator draws it, so a seed repeats it."""
    x, y = data()
    runs = []
    for _ in range(2):
        ds = Batches(x, y)
        model().fit(ds, epochs=3, seed=5, verbose=0)
        epochs = [c for c in ds.calls if c not in ("begin", "end")]
        runs.append(epochs)
        for e in range(3):
            assert sorted(epochs[5 * e:5 * e + 5]) == [0, 1, 2, 3, 4]
    assert runs[0] == runs[1] and runs[0] != [0, 1, 2, 3, 4] * 3
    ds = Batches(x, y)
    model().evaluate(ds)
    model().predict(ds)
    assert [c for c in ds.calls if c not in ("begin", "end")] == [0, 1, 2, 3, 4] * 2


def test_validation_steps_and_a_generator_for_validation():
    x, y = data()
    xv, yv = data(1, 12)
    ref = model()
    ref_logs = [ref.fit(x, y, batch_size=B, epochs=1, shuffle=False, verbose=0,
                        validation_data=(xv[i:i + 4], yv[i:i + 4])).history["val_loss"][0]
                for i in range(0, 12, 4)]
    m = model()
    hist = m.fit(x, y, batch_size=B, epochs=3, shuffle=False, verbose=0,
                 validation_data=batches(xv, yv), validation_steps=1)
    assert hist.history["val_loss"] == ref_logs  # each epoch reads the next batch
    with pytest.raises(ValueError, match="validation_steps"):
        model().fit(x, y, epochs=2, validation_data=batches(xv, yv), verbose=0)


def test_threads_end_with_fit():
    x, y = data()
    before = threading.active_count()
    ds = Batches(x, y, workers=3, max_queue_size=4)
    with pytest.warns(UserWarning, match="ran out of data"):  # epoch 2: 3, 4 and no more
        model().fit(ds, epochs=2, steps_per_epoch=3, verbose=0, shuffle=False)
    assert threading.active_count() == before
    assert threading.main_thread().name not in ds.threads  # fetched on the pool's threads
    assert sorted(c for c in ds.calls if c not in ("begin", "end")) == [0, 1, 2, 3, 4]


def test_progress_with_unknown_steps(capsys):
    x, y = data()
    model().fit(batches(x, y), verbose=2, shuffle=False)
    assert "5/5 - " in capsys.readouterr().out


# ---------------------------------------------------------------------------------
# errors: arguments that only arrays take, and bad batches named by their index
# ---------------------------------------------------------------------------------
def test_arguments_refused_with_streamed_data():
    x, y = data()
    m = model()
    cases = [(dict(y=y), "`y` should not be passed"),
             (dict(sample_weight=np.ones(N)), "`sample_weights` should not be passed"),
             (dict(class_weight={0: 1, 1: 2}), "class_weight"),
             (dict(batch_size=4), "takes no batch_size"),
             (dict(validation_split=0.2), "validation_split"),
             (dict(steps_per_epoch=0), "steps_per_epoch")]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            m.fit(batches(x, y), verbose=0, shuffle=False, **kwargs)
    with pytest.raises(ValueError, match="use_multiprocessing"):
        Batches(x, y, use_multiprocessing=True)
    with pytest.raises(ValueError, match="empty dataset"):
        m.fit(iter([]), verbose=0, shuffle=False)


@pytest.mark.parametrize("bad, match", [
    ("nan", r"batch 2\).*NaN"), ("label", r"batch 2\)"), ("shape", r"batch 2\).*shape"),
    ("no_y", r"batch 2\) has no targets")])
def test_bad_batch_is_named(bad, match):
    x, y = data()
    parts = list(batches(x, y))
    xb, yb = parts[2]
    parts[2] = {"nan": lambda: (np.where(xb > 0, np.nan, xb), yb),
                "label": lambda: (xb, yb + 5),
                "shape": lambda: (xb[:, :2], yb),
                "no_y": lambda: (xb,)}[bad]()
    m = model()
    with pytest.raises(ValueError, match=match) as info:
        m.fit(iter(parts), verbose=0, shuffle=False)
    assert "Sequential 'sequential" in str(info.value)


def test_class_weight_with_a_pydataset():
    x, y = data()
    ref, ours = model(), model()
    ref.fit(x, y, batch_size=B, shuffle=False, verbose=0, class_weight={0: 0.5, 1: 2.0})
    ours.fit(Batches(x, y), shuffle=False, verbose=0, class_weight={0: 0.5, 1: 2.0})
    same(ref, ours)


def test_pydataset_is_keras_utils_pydataset():
    assert mc.utils.PyDataset is mc.utils.Sequence
    with pytest.raises(NotImplementedError):
        mc.utils.PyDataset()[0]


# ---------------------------------------------------------------------------------
# the streaming image folder
# ---------------------------------------------------------------------------------
@pytest.fixture
def folder(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    for name, count in (("b_dogs", 4), ("a_cats", 3)):
        (tmp_path / name).mkdir()
        for i in range(count):
            pixels = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / name / f"{i}.png")
    (tmp_path / "a_cats" / "notes.txt").write_text("not an image")
    return tmp_path


def test_image_folder_batches_equal_the_in_memory_folder(folder):
    x, y, names = mc.datasets.load_image_folder(folder, (6, 5))
    ds = mc.datasets.image_folder(folder, image_size=(6, 5), batch_size=3, shuffle=False)
    assert ds.class_names == names == ["a_cats", "b_dogs"] and len(ds) == 3
    got = [ds[i] for i in range(len(ds))]
    np.testing.assert_array_equal(np.concatenate([g[0] for g in got]), x.astype(np.float32))
    np.testing.assert_array_equal(np.concatenate([g[1] for g in got]), y)
    assert got[0][0].dtype == np.float32
    onehot = mc.datasets.image_folder(folder, image_size=(6, 5), shuffle=False,
                                      label_mode="categorical", color_mode="grayscale")
    xb, yb = onehot[0]
    assert xb.shape == (7, 6, 5, 1) and yb.shape == (7, 2) and yb.dtype == np.float32


def test_image_folder_decodes_only_the_batches_asked_for(folder, monkeypatch):
    ds = mc.datasets.image_folder(folder, image_size=(6, 5), batch_size=2, seed=0)
    opened = []
    real = ds._decode
    monkeypatch.setattr(ds, "_decode", lambda f: opened.append(f) or real(f))
    ds[1]
    assert len(opened) == 2


def test_image_folder_split_shuffle_and_training(folder):
    train, val = mc.datasets.image_folder(folder, image_size=(6, 5), batch_size=2, seed=3,
                                          validation_split=0.3, subset="both")
    assert len(val.file_paths) == 2 and len(train.file_paths) == 5
    assert not set(train.file_paths) & set(val.file_paths)
    again = mc.datasets.image_folder(folder, image_size=(6, 5), seed=3,
                                     validation_split=0.3, subset="validation")
    assert again.file_paths == val.file_paths
    with pytest.raises(ValueError, match="seed"):
        mc.datasets.image_folder(folder, validation_split=0.3, subset="training")
    first = list(train._order)
    mc.utils.set_random_seed(0)
    m = mc.Sequential([mc.Input((6, 5, 3)), mc.layers.Rescaling(1 / 255), Flatten(),
                       Dense(2, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = m.fit(train, validation_data=val, epochs=2, verbose=0)
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert list(train._order) != first or len(first) < 3  # reshuffled at epoch end
    assert m.predict(mc.datasets.image_folder(folder, image_size=(6, 5), labels=None,
                                              shuffle=False)).shape == (7, 2)


# ---------------------------------------------------------------------------------
# the rules, next to live Keras's
# ---------------------------------------------------------------------------------
def test_steps_rules_equal_keras(keras):
    """Batches per epoch for the cases where Keras's and minicnn's rules meet: a
    generator with steps_per_epoch running out, arrays with steps_per_epoch, a
    PyDataset with steps_per_epoch (its pass going on across epochs)."""
    x, y = data()

    def keras_model():
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
        m.compile("sgd", "sparse_categorical_crossentropy")
        return m

    class Counts(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.epochs = []

        def on_epoch_begin(self, epoch, logs=None):
            self.epochs.append(0)

        def on_train_batch_end(self, batch, logs=None):
            self.epochs[-1] += 1

    class KerasBatches(keras.utils.PyDataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return x[4 * i:4 * i + 4], y[4 * i:4 * i + 4]

    cases = [(lambda: batches(x, y), dict(epochs=3, steps_per_epoch=2)),
             (lambda: (x, y), dict(epochs=3, steps_per_epoch=3, batch_size=B)),
             ("pydataset", dict(epochs=3, steps_per_epoch=3))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for make, kwargs in cases:
            theirs, ours = Counts(), Steps()
            if make == "pydataset":
                keras_model().fit(KerasBatches(), shuffle=False, verbose=0, callbacks=[theirs],
                                  **kwargs)
                model().fit(Batches(x, y), shuffle=False, verbose=0, callbacks=[ours],
                            **kwargs)
            else:
                data_ = make()
                args = data_ if isinstance(data_, tuple) else (data_,)
                keras_model().fit(*args, shuffle=False, verbose=0, callbacks=[theirs],
                                  **kwargs)
                data_ = make()
                args = data_ if isinstance(data_, tuple) else (data_,)
                model().fit(*args, shuffle=False, verbose=0, callbacks=[ours], **kwargs)
            assert ours.epochs == theirs.epochs, (kwargs, ours.epochs, theirs.epochs)
            assert ours.params["steps"] == theirs.params["steps"]


def test_shuffle_warning_and_errors_as_keras(keras):
    x, y = data()
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy")
    for ours_model in (m, model()):
        with pytest.warns(UserWarning, match="`shuffle=True` was passed, but will be ignored"):
            ours_model.fit(batches(x, y), verbose=0)
        with pytest.raises(ValueError, match="`validation_split` is only supported"):
            ours_model.fit(batches(x, y), validation_split=0.5, verbose=0)
        with pytest.raises(ValueError, match="`y` should not be passed"):
            ours_model.fit(batches(x, y), y, verbose=0)
    assert os.environ.get("KERAS_BACKEND") == "jax"


def test_pydataset_order_as_keras(keras):
    """Keras reads a finite PyDataset in index order with shuffle=False and in a new
    permutation each epoch with shuffle=True (its extra fetch of batch 0 before
    training, to build the model, is left out)."""
    x, y = data()

    class KerasBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.calls = []

        def __len__(self):
            return 5

        def __getitem__(self, i):
            self.calls.append(i)
            return x[4 * i:4 * i + 4], y[4 * i:4 * i + 4]

    for shuffle in (False, True):
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
        m.compile("sgd", "sparse_categorical_crossentropy")
        theirs, ours = KerasBatches(), Batches(x, y)
        m.fit(theirs, epochs=2, shuffle=shuffle, verbose=0)
        model().fit(ours, epochs=2, shuffle=shuffle, verbose=0)
        theirs_epochs = theirs.calls[-10:]  # after the build's fetch
        ours_epochs = [c for c in ours.calls if c not in ("begin", "end")]
        for calls in (theirs_epochs, ours_epochs):
            assert sorted(calls[:5]) == sorted(calls[5:]) == [0, 1, 2, 3, 4]
            assert (calls == [0, 1, 2, 3, 4] * 2) is (not shuffle)
