"""Callbacks against live Keras 3 (JAX): the hooks ``fit``/``evaluate``/``predict`` call,
in Keras's order with Keras's indices, params and logs; ReduceLROnPlateau's wait /
cooldown / best logic on the same sequences of logs; LearningRateScheduler,
LambdaCallback and TerminateOnNaN in training. Keras runs where it is installed (the
``keras`` fixture skips otherwise); the minicnn-only checks run everywhere."""
import math
import warnings

import numpy as np
import pytest

import minicnn as mc
from minicnn import callbacks as mcc, training
from minicnn.layers import Dense

HOOKS = ["on_train_begin", "on_train_end", "on_test_begin", "on_test_end",
         "on_predict_begin", "on_predict_end"]
INDEXED_HOOKS = ["on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
                 "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end",
                 "on_predict_batch_begin", "on_predict_batch_end"]


def recorder(base):
    """A callback class on ``base`` (Keras's Callback or minicnn's) that records every
    hook: ``(name, index or None, logs as given)``, and ``set_params``."""

    class Recorder(base):
        def __init__(self):
            super().__init__()
            self.events = []

        def set_params(self, params):
            super().set_params(params)
            self.events.append(("set_params", None, dict(params)))

    def plain(name):
        def hook(self, logs=None):
            self.events.append((name, None, logs if logs is None else dict(logs)))
        return hook

    def indexed(name):
        def hook(self, index, logs=None):
            self.events.append((name, index, logs if logs is None else dict(logs)))
        return hook

    for name in HOOKS:
        setattr(Recorder, name, plain(name))
    for name in INDEXED_HOOKS:
        setattr(Recorder, name, indexed(name))
    return Recorder


def shape_of(events):
    """The hooks with their indices and their logs' keys, in order."""
    return [(name, index, None if logs is None else list(logs)) for name, index, logs
            in events]


def assert_same_values(ours, theirs):
    for (name, index, a), (_, _, b) in zip(ours, theirs):
        for key in a or {}:
            np.testing.assert_allclose(np.asarray(a[key]), np.asarray(b[key]), rtol=2e-5,
                                       atol=1e-6, err_msg=f"{name} {index} {key}")


def data(n=10, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 3)).astype(np.float32),
            rng.standard_normal((n, 2)).astype(np.float32))


def twin_models(keras, lr=0.1):
    """The same Dense(2) regression in Keras and minicnn: SGD, mse, mae, same weights."""
    theirs = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    theirs.compile(optimizer=keras.optimizers.SGD(lr), loss="mse", metrics=["mae"])
    ours = mc.Sequential([mc.Input((3,)), Dense(2)])
    ours.compile(mc.optimizers.SGD(lr), "mse", metrics=["mae"])
    ours.set_weights([np.asarray(w) for w in theirs.get_weights()])
    return ours, theirs


# ---------------------------------------------------------------------------------
# 1. the hooks: order, indices, params and logs, as Keras calls them
# ---------------------------------------------------------------------------------
def test_fit_with_validation_calls_keras_s_hooks_with_keras_s_logs(keras):
    x, y = data()
    ours, theirs = twin_models(keras)
    a, b = recorder(mcc.Callback)(), recorder(keras.callbacks.Callback)()
    kwargs = dict(batch_size=4, epochs=2, shuffle=False, verbose=0,
                  validation_data=(x[:5], y[:5]))
    history = ours.fit(x, y, callbacks=[a], **kwargs)
    theirs.fit(x, y, callbacks=[b], **kwargs)

    assert shape_of(a.events) == shape_of(b.events)
    assert a.events[0] == ("set_params", None, {"verbose": 0, "epochs": 2, "steps": 3})
    names = [name for name, _, _ in a.events]
    assert names.count("on_test_begin") == 2 and names.count("on_test_batch_end") == 4
    assert_same_values(a.events, b.events)  # running means, val_ entries, train_end's
    assert a.events[-1][2] == a.events[-2][2]  # on_train_end: the last epoch's logs
    assert history is ours.history and list(history.history) == \
        ["loss", "mae", "val_loss", "val_mae"]


def test_evaluate_and_predict_call_keras_s_hooks(keras):
    x, y = data(10)
    ours, theirs = twin_models(keras)
    a, b = recorder(mcc.Callback)(), recorder(keras.callbacks.Callback)()
    got = training.evaluate(ours, x, y, batch_size=4, callbacks=[a], return_dict=True)
    want = theirs.evaluate(x, y, batch_size=4, verbose=0, callbacks=[b], return_dict=True)
    assert shape_of(a.events) == shape_of(b.events)
    assert a.events[0][2] == {"verbose": 0, "epochs": 1, "steps": 3}
    assert_same_values(a.events, b.events)
    np.testing.assert_allclose(got["loss"], want["loss"], rtol=1e-5)

    a, b = recorder(mcc.Callback)(), recorder(keras.callbacks.Callback)()
    out = training.predict(ours, x, batch_size=4, callbacks=[a])
    theirs.predict(x, batch_size=4, verbose=0, callbacks=[b])
    assert shape_of(a.events) == shape_of(b.events)
    batches = [logs["outputs"] for name, _, logs in a.events
               if name == "on_predict_batch_end"]
    assert [o.shape for o in batches] == [(4, 2), (4, 2), (2, 2)]
    assert_same_values(a.events, b.events)  # the outputs themselves
    np.testing.assert_array_equal(np.concatenate(batches), out)


def test_params_take_verbose_as_given(keras):
    x, y = data(6)
    ours, theirs = twin_models(keras)
    a, b = recorder(mcc.Callback)(), recorder(keras.callbacks.Callback)()
    ours.fit(x, y, batch_size=4, callbacks=[a])  # verbose="auto": Keras passes "auto"
    theirs.fit(x, y, batch_size=4, callbacks=[b])
    assert a.events[0] == b.events[0] == ("set_params", None,
                                          {"verbose": "auto", "epochs": 1, "steps": 2})


def test_stop_flags_end_the_loops_after_the_batch(keras):
    """stop_training in a batch hook ends fit after that batch, the epoch still ends
    (validation, on_epoch_end); stop_evaluating / stop_predicting end their loops."""
    x, y = data(12)
    ours, theirs = twin_models(keras)
    results = []
    for model, lib in ((ours, mcc), (theirs, keras.callbacks)):
        class Stop(recorder(lib.Callback)):
            def on_train_batch_end(self, batch, logs=None):
                super().on_train_batch_end(batch, logs)
                if batch == 1:
                    self.model.stop_training = True

            def on_test_batch_end(self, batch, logs=None):
                super().on_test_batch_end(batch, logs)
                self.model.stop_evaluating = True

            def on_predict_batch_end(self, batch, logs=None):
                super().on_predict_batch_end(batch, logs)
                self.model.stop_predicting = True

        stop = Stop()
        history = model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0,
                            validation_data=(x, y), callbacks=[stop])
        ev = Stop()
        evaluated = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True,
                                   callbacks=[ev]) if model is theirs else \
            training.evaluate(model, x, y, batch_size=4, return_dict=True, callbacks=[ev])
        predicted = model.predict(x, batch_size=4, verbose=0, callbacks=[Stop()]) \
            if model is theirs else training.predict(model, x, batch_size=4,
                                                     callbacks=[Stop()])
        results.append((shape_of(stop.events), list(history.history),
                        len(history.history["loss"]), shape_of(ev.events), evaluated,
                        predicted.shape, ev.events))
    (ours_r, theirs_r) = results
    assert ours_r[:4] == theirs_r[:4]
    assert ours_r[2] == 1 and ours_r[5] == theirs_r[5] == (4, 2)
    # evaluate stopped after its first batch: the mean over those samples only
    np.testing.assert_allclose(ours_r[4]["loss"], theirs_r[4]["loss"], rtol=1e-5)
    assert ours_r[4]["loss"] == ours_r[6][-2][2]["loss"]  # on_test_batch_end 0's


def test_batch_aliases_and_a_given_history(keras):
    """on_batch_begin/on_batch_end stand for the train-batch hooks; a History among the
    callbacks is the one fit fills and returns."""
    x, y = data(10)
    ours, theirs = twin_models(keras)
    counts = []
    for model, lib in ((ours, mcc), (theirs, keras.callbacks)):
        class Alias(lib.Callback):
            seen = []

            def on_batch_begin(self, batch, logs=None):
                self.seen.append(("begin", batch))

            def on_batch_end(self, batch, logs=None):
                self.seen.append(("end", batch, sorted(logs)))

        alias, given = Alias(), lib.History()
        returned = model.fit(x, y, batch_size=4, epochs=1, verbose=0,
                             callbacks=[alias, given])
        assert returned is given and model.history is given
        counts.append((alias.seen, list(given.history)))
    assert counts[0] == counts[1]


# ---------------------------------------------------------------------------------
# 2. ReduceLROnPlateau: Keras's wait/cooldown/best logic, fed the same logs
# ---------------------------------------------------------------------------------
class Stub:
    """All ReduceLROnPlateau touches: model.optimizer.learning_rate, read and set."""

    def __init__(self, optimizer):
        self.optimizer = optimizer


PLATEAUS = {
    # name: (kwargs, monitored values per epoch; None = the key is missing)
    "plateau": (dict(monitor="loss", patience=2, factor=0.5), [1.0] * 7),
    "exactly_min_delta": (dict(monitor="loss", patience=1, min_delta=0.25),
                          [2.0, 1.75, 1.5, 1.25, 1.0, 0.75]),
    "less_than_min_delta": (dict(monitor="loss", patience=1, min_delta=1e-3),
                            [1.0, 0.9995, 0.999, 0.9985, 0.998, 0.9]),
    "min_delta_plus_1e-9": (dict(monitor="loss", patience=0, min_delta=1e-4),
                            [1.0, 1.0 - 1e-4 - 1e-9, 1.0 - 2e-4, 0.5]),
    "hits_min_lr_1e-4": (dict(monitor="loss", patience=0, factor=0.1, min_lr=1e-4,
                              cooldown=1), [1.0] * 9),
    "hits_min_lr_1e-3": (dict(monitor="loss", patience=1, factor=0.2, min_lr=1e-3),
                         [1.0] * 9),
    "cooldown_patience_0": (dict(monitor="val_loss", patience=0, cooldown=2, factor=0.5),
                            [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5]),
    "max_on_accuracy": (dict(monitor="val_accuracy", mode="max", patience=1, factor=0.5,
                             min_delta=0.01), [0.5, 0.6, 0.605, 0.61, 0.7, 0.7, 0.7]),
    "missing_monitor": (dict(patience=0), [None, None, 1.0, None, 1.0]),
}


def drive(cb, model, sequence, monitor, read_lr):
    """on_train_begin, then on_epoch_end with each value; the state after each epoch."""
    cb.set_model(model)
    cb.on_train_begin()
    states, messages = [], []
    for epoch, value in enumerate(sequence):
        logs = {"other": 3.0} if value is None else {"other": 3.0, monitor: value}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cb.on_epoch_end(epoch, logs)
        messages += [str(w.message) for w in caught if issubclass(w.category, UserWarning)
                     and "Learning rate reduction" in str(w.message)]
        states.append((read_lr(model.optimizer), cb.wait, cb.cooldown_counter, cb.best,
                       logs.get("learning_rate")))
    return states, messages


@pytest.mark.parametrize("case", sorted(PLATEAUS))
def test_reduce_lr_on_plateau_follows_keras_epoch_by_epoch(keras, case, capsys):
    kwargs, sequence = PLATEAUS[case]
    monitor = kwargs.get("monitor", "val_loss")
    ours = mcc.ReduceLROnPlateau(verbose=1, **kwargs)
    theirs = keras.callbacks.ReduceLROnPlateau(verbose=1, **kwargs)
    got, got_warned = drive(ours, Stub(mc.optimizers.SGD(0.1)), sequence, monitor,
                            lambda opt: float(np.float32(opt.learning_rate)))
    printed = capsys.readouterr().out
    want, want_warned = drive(theirs, Stub(keras.optimizers.SGD(0.1)), sequence, monitor,
                              lambda opt: float(keras.ops.convert_to_numpy(
                                  opt.learning_rate)))
    assert got == want
    assert printed == capsys.readouterr().out  # "Epoch 3: ReduceLROnPlateau reducing ..."
    assert got_warned == want_warned
    assert len(set(lr for lr, *_ in got)) > 1 or case == "missing_monitor"


def test_reduce_lr_on_plateau_corner_cases_are_keras_s():
    """What the sequences above show, spelled out on minicnn alone."""
    def run(sequence, **kwargs):
        kwargs.setdefault("monitor", "loss")
        states, warned = drive(mcc.ReduceLROnPlateau(**kwargs), Stub(mc.optimizers.SGD(0.1)),
                               sequence, kwargs["monitor"], lambda opt: opt.learning_rate)
        return [round(s[0], 8) for s in states], warned
    # 1e-4 + 1e-9 better is no improvement: Keras compares in float32
    assert run([1.0, 1.0 - 1e-4 - 1e-9], patience=0)[0][-1] == 0.01
    # min_lr holds; a missing monitor warns and changes nothing
    assert run([1.0] * 5, patience=0, min_lr=1e-3)[0] == [0.1, 0.01, 0.001, 0.001, 0.001]
    lrs, warned = run([None, None], monitor="val_loss", patience=0)
    assert lrs == [0.1, 0.1] and len(warned) == 2
    # cooldown 2 with patience 0: the counter goes down before the check in the same
    # epoch, so a reduction every other epoch (one epoch of rest, not two)
    assert run([1.0] * 7, patience=0, cooldown=2, factor=0.5)[0] == \
        [0.1, 0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125]


def test_reduce_lr_on_plateau_arguments_and_mode_auto(keras):
    with pytest.raises(ValueError, match="does not support a factor >= 1.0"):
        mcc.ReduceLROnPlateau(factor=1.0)
    with pytest.warns(UserWarning, match="mode 'maximum' is unknown, fallback to auto"):
        assert mcc.ReduceLROnPlateau(mode="maximum").mode == "auto"
    x = np.zeros((4, 3), np.float32)
    y = np.array([[0.0], [1.0], [1.0], [0.0]], np.float32)

    def custom(y_true, y_pred):
        return y_pred

    for metrics, monitor in [(["accuracy"], "val_accuracy"), (["mae"], "mae"),
                             ([custom], "custom"), (["accuracy"], "val_loss")]:
        ours = mc.Sequential([mc.Input((3,)), Dense(1, activation="sigmoid")])
        ours.compile("sgd", "binary_crossentropy", metrics=metrics)
        theirs = keras.Sequential([keras.Input((3,)),
                                   keras.layers.Dense(1, activation="sigmoid")])
        theirs.compile("sgd", "binary_crossentropy", metrics=metrics)
        directions = []
        for model, lib in ((ours, mcc), (theirs, keras.callbacks)):
            cb = lib.ReduceLROnPlateau(monitor=monitor)
            try:
                model.fit(x, y, epochs=1, verbose=0, validation_data=(x, y), callbacks=[cb])
                directions.append(cb.monitor_op.__name__)
            except ValueError as error:
                assert "isn't able to automatically determine" in str(error)
                directions.append("error")
        assert directions[0] == directions[1], (metrics, monitor, directions)


# ---------------------------------------------------------------------------------
# 3. LearningRateScheduler: the next epoch's steps use the scheduled rate
# ---------------------------------------------------------------------------------
def test_learning_rate_scheduler_sets_the_rate_the_epoch_trains_with(keras):
    x, y = data(8)
    ours, theirs = twin_models(keras, lr=0.1)
    rates = {0: 0.1, 1: 0.02, 2: 0.5}
    seen = {"ours": [], "theirs": []}

    def schedule(tag):
        def fn(epoch, lr):
            seen[tag].append((epoch, lr))
            return rates[epoch]
        return fn

    w0 = [np.asarray(w, np.float64) for w in ours.get_weights()]
    h1 = ours.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False,
                  callbacks=[mcc.LearningRateScheduler(schedule("ours"))])
    h2 = theirs.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False,
                    callbacks=[keras.callbacks.LearningRateScheduler(schedule("theirs"))])
    assert seen["ours"] == seen["theirs"]  # the rate as Keras reads it: float32's
    assert seen["ours"][1] == (1, float(np.float32(0.1)))
    assert h1.history["learning_rate"] == h2.history["learning_rate"] == \
        [float(np.float32(r)) for r in rates.values()]
    for got, want in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-6)

    # by hand: full-batch SGD on mse, one step per epoch at that epoch's rate
    w, b = w0
    for epoch in range(3):
        err = x.astype(np.float64) @ w + b - y
        grad = 2 * err / err.size
        w, b = w - rates[epoch] * x.T @ grad, b - rates[epoch] * grad.sum(0)
    np.testing.assert_allclose(ours.get_weights()[0], w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ours.get_weights()[1], b, rtol=1e-4, atol=1e-6)


def test_learning_rate_scheduler_of_one_argument_and_its_errors(keras, capsys):
    x, y = data(4)
    ours, theirs = twin_models(keras)
    for model, lib in ((ours, mcc), (theirs, keras.callbacks)):
        model.fit(x, y, epochs=2, verbose=0,
                  callbacks=[lib.LearningRateScheduler(lambda epoch: 0.05 / (epoch + 1),
                                                       verbose=1)])
        with pytest.raises(ValueError, match="should be a float. Got: 1"):
            model.fit(x, y, epochs=1, verbose=0,
                      callbacks=[lib.LearningRateScheduler(lambda epoch, lr: 1)])
    out = capsys.readouterr().out
    assert out.count("\nEpoch 2: LearningRateScheduler setting learning rate to 0.025.\n") \
        == 2
    assert float(np.float32(ours.optimizer.learning_rate)) == \
        float(keras.ops.convert_to_numpy(theirs.optimizer.learning_rate))


class ScheduledOptimizer:
    """An optimizer whose learning rate is a schedule: a callable of the step."""
    iterations = 3

    def __init__(self):
        self.learning_rate = lambda step: 0.1 / (step + 1)


def test_a_schedule_as_learning_rate_is_refused_clearly(keras):
    sched = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    for lib, optimizer in ((mcc, ScheduledOptimizer()),
                           (keras.callbacks, keras.optimizers.SGD(sched))):
        with pytest.raises(TypeError, match="not settable"):
            cb = lib.LearningRateScheduler(lambda epoch, lr: lr / 2)
            cb.set_model(Stub(optimizer))
            cb.on_epoch_begin(0)
        cb = lib.ReduceLROnPlateau(monitor="loss", patience=0)
        cb.set_model(Stub(optimizer))
        cb.on_train_begin()
        logs = {"loss": 1.0}
        cb.on_epoch_end(0, logs)  # reading it is fine: the schedule's value now
        assert logs["learning_rate"] == pytest.approx(0.025 if lib is mcc else 0.1)
        with pytest.raises(TypeError, match="not settable"):
            cb.on_epoch_end(1, {"loss": 1.0})  # a reduction would set it


# ---------------------------------------------------------------------------------
# 4. learning_rate in the logs: added by the two callbacks, seen after them
# ---------------------------------------------------------------------------------
def test_learning_rate_appears_where_keras_puts_it(keras):
    x, y = data(8)
    ours, theirs = twin_models(keras)
    runs = []
    for model, lib in ((ours, mcc), (theirs, keras.callbacks)):
        before, after = recorder(lib.Callback)(), recorder(lib.Callback)()
        plain = model.fit(x, y, batch_size=4, epochs=1, verbose=0).history
        history = model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[
            before, lib.ReduceLROnPlateau(monitor="loss", patience=0, min_delta=10.0),
            after]).history
        ends = [(e[0], sorted(e[2])) for e in before.events + after.events
                if e[0] in ("on_epoch_end", "on_train_end")]
        runs.append((list(plain), list(history), history["learning_rate"], ends))
    assert runs[0] == runs[1]
    assert runs[0][0] == ["loss", "mae"]  # fit alone adds no learning_rate
    assert runs[0][2] == [float(np.float32(v)) for v in (0.1, 0.1, 0.01)]


# ---------------------------------------------------------------------------------
# 5. LambdaCallback and TerminateOnNaN
# ---------------------------------------------------------------------------------
def test_lambda_callback_calls_its_functions_as_keras_does(keras):
    x, y = data(6)
    ours, theirs = twin_models(keras)
    calls = []
    for model, lib in ((ours, mcc), (theirs, keras.callbacks)):
        log = []
        cb = lib.LambdaCallback(
            on_epoch_begin=lambda epoch, logs: log.append(("epoch_begin", epoch, logs)),
            on_epoch_end=lambda epoch, logs: log.append(("epoch_end", epoch, sorted(logs))),
            on_train_begin=lambda logs: log.append(("train_begin", logs)),
            on_train_end=lambda logs: log.append(("train_end", sorted(logs))),
            on_train_batch_begin=lambda batch, logs: log.append(("batch_begin", batch)),
            on_train_batch_end=lambda batch, logs: log.append(("batch_end", batch,
                                                               sorted(logs))),
            on_test_begin=lambda logs: log.append(("test_begin", logs)),  # a **kwarg
            custom_attribute=7)
        assert cb.custom_attribute == 7
        model.fit(x, y, batch_size=4, epochs=2, verbose=0, validation_data=(x, y),
                  callbacks=[cb])
        calls.append(log)
    assert calls[0] == calls[1]
    assert calls[0][0] == ("train_begin", {}) and ("test_begin", {}) in calls[0]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_terminate_on_nan_stops_as_keras_s_does(keras, capsys):
    """With terminate_on_nan=False the class alone stops: after the NaN batch, and the
    epoch ends as Keras ends it (validation, on_epoch_end, a NaN in the history)."""
    x, y = data(10)
    x[5] = np.nan  # batch 2 of 2-sample batches
    ours, theirs = twin_models(keras)
    runs = []
    for model, lib in ((ours, mcc), (theirs, keras.callbacks)):
        rec = recorder(lib.Callback)()
        kwargs = dict(batch_size=2, epochs=3, shuffle=False, verbose=0,
                      validation_data=(x[:4], y[:4]), callbacks=[lib.TerminateOnNaN(), rec])
        if model is ours:
            kwargs.update(terminate_on_nan=False, check_numerics=False)
        history = model.fit(x, y, **kwargs)
        runs.append((shape_of(rec.events), {k: len(v) for k, v in history.history.items()},
                     math.isnan(history.history["loss"][0]), model.stop_training))
    assert runs[0] == runs[1]
    assert runs[0][1] == {"loss": 1, "mae": 1, "val_loss": 1, "val_mae": 1} and runs[0][2]
    assert capsys.readouterr().out.count("Batch 2: Invalid loss, terminating training") == 2

    ours, theirs = twin_models(keras)
    for model, lib in ((ours, mcc), (theirs, keras.callbacks)):
        with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 2"):
            model.fit(x, y, batch_size=2, epochs=1, shuffle=False, verbose=0,
                      callbacks=[lib.TerminateOnNaN(raise_error=True)],
                      **({"check_numerics": False} if model is ours else {}))
    assert all(np.isfinite(w).all() for w in ours.get_weights())  # minicnn's default


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_terminate_on_nan_with_minicnn_s_default_keeps_the_finite_weights(capsys):
    x, y = data(10)
    x[5] = np.nan
    model = mc.Sequential([mc.Input((3,)), Dense(2)])
    model.compile(mc.optimizers.SGD(0.1), "mse")
    rec = recorder(mcc.Callback)()
    history = model.fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0,
                        check_numerics=False, callbacks=[mcc.TerminateOnNaN(), rec])
    out = capsys.readouterr().out
    assert "Batch 2: Invalid loss, terminating training" in out
    assert "last step with a finite loss" in out
    assert model.stop_training and history.history == {}
    ends = [(i, math.isnan(logs["loss"])) for name, i, logs in rec.events
            if name == "on_train_batch_end"]
    assert ends == [(0, False), (1, False), (2, True)]  # it saw the NaN batch
    assert [name for name, _, _ in rec.events][-1] == "on_train_end"
    assert model.optimizer.iterations == 2
    assert all(np.isfinite(w).all() for w in model.get_weights())


# ---------------------------------------------------------------------------------
# 6. minicnn only: older callbacks, several ranks
# ---------------------------------------------------------------------------------
def test_an_object_with_only_the_older_hooks_still_works():
    class Old:  # not a Callback: the hooks fit called before, nothing more
        def __init__(self):
            self.calls = []

        def set_model(self, model):
            self.model = model

        def on_train_begin(self, logs=None):
            self.calls.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            self.calls.append("epoch_begin")

        def on_train_batch_end(self, batch, logs=None):
            self.calls.append("batch_end")

        def on_epoch_end(self, epoch, logs=None):
            self.calls.append("epoch_end")

        def on_train_end(self, logs=None):
            self.calls.append("train_end")

    x, y = data(6)
    model = mc.Sequential([mc.Input((3,)), Dense(2)])
    model.compile("sgd", "mse")
    old = Old()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, validation_data=(x, y),
              callbacks=[old])
    training.predict(model, x, callbacks=[old])
    assert old.calls == ["train_begin", "epoch_begin", "batch_end", "batch_end",
                         "epoch_end", "train_end"]


def test_rank_0_s_learning_rate_and_stop_reach_every_rank():
    from test_distributed import run_ranks
    from minicnn import distributed
    x, y = data(16)

    class StopAt(mcc.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1 and self.model.optimizer.iterations == 4:
                self.model.stop_training = True  # epoch 1, step 2 of 2

    def build():
        mc.utils.set_random_seed(1)
        return mc.Sequential([mc.Input((3,)), Dense(2)])

    def work(rank, comm, model):
        model.compile(distributed.DistributedOptimizer(mc.optimizers.SGD(0.1), comm=comm),
                      "mse")
        xs, ys = distributed.shard(x, y, comm=comm)
        history = model.fit(xs, ys, batch_size=4, epochs=4, shuffle=False, verbose=0,
                            callbacks=[mcc.LearningRateScheduler(lambda e: 0.05 / (e + 1)),
                                       mcc.ReduceLROnPlateau("loss", patience=0,
                                                             min_delta=10.0), StopAt()])
        return (model.optimizer.learning_rate, model.optimizer.iterations,
                len(history.history.get("loss", [])), model.get_weights())
    (lr0, it0, n0, w0), (lr1, it1, n1, w1) = run_ranks(2, work, build)
    assert lr0 == lr1 and lr0 == pytest.approx(0.025 * 0.1, rel=1e-6)
    assert it0 == it1 == 4 and n0 == 2
    for a, b in zip(w0, w1):
        np.testing.assert_array_equal(a, b)
