"""Every optimizer, with clipping, weight decay and learning-rate schedules, against
Keras 3: the same model, weights and batches give the same weights after each step
(``train_on_batch``), and the same optimizer state."""
import numpy as np
import pytest

import minicnn as mc

OPTIMIZERS = [
    ("SGD", {"learning_rate": 0.1}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("Adam", {"learning_rate": 0.01, "clipnorm": 0.5}),
    ("Adam", {"learning_rate": 0.01, "global_clipnorm": 0.3, "weight_decay": 0.05}),
    ("AdamW", {"learning_rate": 0.01}),
    ("AdamW", {"learning_rate": 0.01, "weight_decay": 0.1, "clipvalue": 0.05}),
    ("Nadam", {"learning_rate": 0.01}),
    ("Nadam", {"learning_rate": 0.01, "beta_1": 0.8, "clipnorm": 0.2}),
    ("RMSprop", {"learning_rate": 0.01}),
    ("RMSprop", {"learning_rate": 0.01, "momentum": 0.9, "centered": True}),
    ("RMSprop", {"learning_rate": 0.01, "rho": 0.5, "centered": True, "weight_decay": 0.02}),
    ("Adagrad", {"learning_rate": 0.1}),
    ("Adagrad", {"learning_rate": 0.1, "initial_accumulator_value": 0.5,
                 "global_clipnorm": 0.1}),
]


def model(K, L):
    return K.Sequential([K.Input((6, 6, 1)), L.Conv2D(3, 3, activation="tanh", name="c"),
                         L.Flatten(name="f"), L.Dense(4, activation="softmax", name="d")])


def batches(steps=4, n=8):
    rng = np.random.default_rng(0)
    return [(rng.standard_normal((n, 6, 6, 1)).astype(np.float32), rng.integers(0, 4, n))
            for _ in range(steps)]


def train_both(keras, name, kwargs, schedule=None):
    keras.utils.set_random_seed(3)
    theirs, ours = model(keras, keras.layers), model(mc, mc.layers)
    ours.set_weights([np.asarray(w) for w in theirs.get_weights()])
    k_kwargs, m_kwargs = dict(kwargs), dict(kwargs)
    if schedule is not None:
        cls, args = schedule
        k_kwargs["learning_rate"] = getattr(keras.optimizers.schedules, cls)(**args)
        m_kwargs["learning_rate"] = getattr(mc.optimizers.schedules, cls)(**args)
    theirs.compile(getattr(keras.optimizers, name)(**k_kwargs), "sparse_categorical_crossentropy")
    ours.compile(getattr(mc.optimizers, name)(**m_kwargs), "sparse_categorical_crossentropy")
    for x, y in batches():
        np.testing.assert_allclose(ours.train_on_batch(x, y), theirs.train_on_batch(x, y),
                                   rtol=1e-5)
        # atol 1e-5, a thousandth of a step: the normalising rules (Adam, RMSprop,
        # Adagrad) divide a gradient by its own running size, so a weight whose gradient
        # is a near-cancelling sum (3.8e-4 from terms of 0.1: float32 noise of 3e-8 in
        # either library) moves by lr * (1 +- 1e-4); a wrong rule moves it by ~lr
        for a, b in zip(ours.get_weights(), theirs.get_weights()):
            np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-5)
    return ours, theirs


@pytest.mark.parametrize("name, kwargs", OPTIMIZERS,
                         ids=[f"{n}-{'-'.join(k for k in kw if k != 'learning_rate') or 'plain'}"
                              for n, kw in OPTIMIZERS])
def test_steps_equal_keras(keras, name, kwargs):
    ours, theirs = train_both(keras, name, kwargs)
    assert ours.optimizer.iterations == int(theirs.optimizer.iterations)
    config = theirs.optimizer.get_config()
    for key, value in ours.optimizer.get_config().items():
        assert config[key] == pytest.approx(value), key


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_a_schedule_drives_the_steps_as_in_keras(keras, name):
    """The schedule is read at the step count before each step, for the update and
    for the weight decay alike."""
    ours, _ = train_both(keras, name, {"weight_decay": 0.05},
                         schedule=("ExponentialDecay", {"initial_learning_rate": 0.05,
                                                        "decay_steps": 1, "decay_rate": 0.5}))
    assert ours.optimizer.current_learning_rate() == pytest.approx(0.05 * 0.5 ** 4)


def test_a_callable_learning_rate():
    opt = mc.optimizers.SGD(learning_rate=lambda: 0.25)
    assert opt.current_learning_rate() == 0.25
    opt = mc.optimizers.SGD(learning_rate=lambda step: 0.5 / (1 + step))
    w = np.ones(3, np.float32)
    opt.apply([np.ones(3, np.float32)], [w])
    opt.apply([np.ones(3, np.float32)], [w])
    np.testing.assert_allclose(w, 1 - 0.5 - 0.25)


@pytest.mark.parametrize("bad, match", [
    ({"clipnorm": 1.0, "clipvalue": 1.0}, "only one of clipnorm, clipvalue and global_clipnorm"),
    ({"weight_decay": -1.0}, "weight_decay must be >= 0"),
    ({"learning_rate": "fast"}, "learning_rate must be a finite number"),
])
def test_bad_arguments_name_the_optimizer(bad, match):
    with pytest.raises(ValueError, match=f"RMSprop: {match}"):
        mc.optimizers.RMSprop(**bad)
    with pytest.raises(ValueError, match="AdamW: weight_decay must be a number"):
        mc.optimizers.AdamW(weight_decay=None)


def test_names_give_keras_s_defaults():
    for name, cls in [("adamw", "AdamW"), ("nadam", "Nadam"), ("rmsprop", "RMSprop"),
                      ("adagrad", "Adagrad")]:
        assert type(mc.optimizers.get(name)).__name__ == cls


FILE_CASES = [("RMSprop", {"learning_rate": 0.01, "momentum": 0.9, "centered": True}),
              ("Nadam", {"learning_rate": 0.01, "clipnorm": 0.5}),
              ("Adagrad", {"learning_rate": 0.1}),
              ("AdamW", {"learning_rate": 0.01, "weight_decay": 0.05}),
              ("Adam", {"learning_rate": ("CosineDecay", {"initial_learning_rate": 0.02,
                                                          "decay_steps": 10})})]


def _make(lib, name, kwargs):
    kwargs = dict(kwargs)
    if isinstance(kwargs.get("learning_rate"), tuple):
        cls, args = kwargs["learning_rate"]
        kwargs["learning_rate"] = getattr(lib.optimizers.schedules, cls)(**args)
    return getattr(lib.optimizers, name)(**kwargs)


@pytest.mark.parametrize("name, kwargs", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_files_carry_the_optimizer_both_ways(keras, tmp_path, name, kwargs):
    (x, y), (x2, y2) = batches(2)
    keras.utils.set_random_seed(5)
    theirs, ours = model(keras, keras.layers), model(mc, mc.layers)
    ours.set_weights([np.asarray(w) for w in theirs.get_weights()])
    theirs.compile(_make(keras, name, kwargs), "sparse_categorical_crossentropy")
    ours.compile(_make(mc, name, kwargs), "sparse_categorical_crossentropy")
    for model_ in (ours, theirs):
        model_.train_on_batch(x, y)
    ours.save(tmp_path / "ours.keras")
    ours.save(tmp_path / "ours.npz")
    theirs.save(tmp_path / "theirs.keras")
    opened = {"keras opens minicnn's": keras.saving.load_model(tmp_path / "ours.keras"),
              "minicnn opens keras's": mc.models.load_model(tmp_path / "theirs.keras"),
              "minicnn's archive": mc.models.load_model(tmp_path / "ours.npz")}
    expected = ours.train_on_batch(x2, y2)
    for what, again in opened.items():
        assert type(again.optimizer).__name__ == name, what
        np.testing.assert_allclose(again.train_on_batch(x2, y2), expected, rtol=1e-5,
                                   err_msg=what)
        for a, b in zip(again.get_weights(), ours.get_weights()):
            np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-5, err_msg=what)


def test_a_compiled_keras_model_never_trained_loads(keras, tmp_path):
    """Keras writes its optimizer's step count and learning rate, and no slots, for a
    model compiled and saved before any step."""
    theirs = model(keras, keras.layers)
    theirs.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    theirs.optimizer.build(theirs.trainable_variables)
    theirs.save(tmp_path / "fresh.keras")
    ours = mc.models.load_model(tmp_path / "fresh.keras")
    assert ours.optimizer.iterations == 0 and type(ours.optimizer).__name__ == "Adam"
    (x, y), = batches(1)
    np.testing.assert_allclose(ours.train_on_batch(x, y), theirs.train_on_batch(x, y),
                               rtol=1e-5)
