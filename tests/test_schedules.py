"""minicnn.optimizers.schedules against Keras 3's keras.optimizers.schedules, run now.

Every schedule, with argument sets that reach its corner cases (step 0, the steps at
and either side of each boundary, staircase, cycle at step 0, warm-up with and without
a target, restarts at exact period ends, steps past 2**24 where float32 drops the last
digits, underflow, t_mul < 1 running out), is evaluated at the same steps by both
libraries: ``float(keras_schedule(step))`` (Keras called eagerly, as the reference)
against ``schedule(step)``, to rtol 1e-6. Schedules with a cosine get in addition an
absolute slack of 2**-24 times their top rate: XLA's float32 cos is an ulp off the
correctly rounded one in about 1% of arguments, and where ``1 + cos`` cancels (the
end of a cosine) that ulp is a large part of a small rate; 2**-24 * top is the
resolution of Keras's own float32 result there. get_config and serialize are compared
with Keras's (keys, order, values and their JSON types); the serialized form is checked
against a real ``.keras`` file's config.
"""
import json
import math
import os
import zipfile

import numpy as np
import pytest

from minicnn.optimizers import schedules as S

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

BIG = [2 ** 20 + 1, 2 ** 24 - 1, 2 ** 24 + 1, 10 ** 7 + 3, 123456789, 2 ** 31 - 1]


def AROUND(*centres):
    """Each centre and the steps either side of it."""
    return sorted({s for c in centres for s in (c - 1, c, c + 1) if s >= 0})


# (id, class name, arguments, steps). Keras's ops.cond makes CosineDecay with a
# warm-up target and CosineDecayRestarts cost ~70 ms a call eagerly: fewer steps there.
CASES = [
    ("exp", "ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5),
     list(range(41)) + [999, 1000, 1001] + BIG),
    ("exp-staircase", "ExponentialDecay",
     dict(initial_learning_rate=0.01, decay_steps=7, decay_rate=0.96, staircase=True),
     list(range(30)) + AROUND(700, 7000) + BIG),
    ("exp-fractional-steps", "ExponentialDecay",
     dict(initial_learning_rate=0.3, decay_steps=3.5, decay_rate=0.9),
     list(range(30)) + [500, 777, 1001] + BIG),
    ("exp-growth-to-inf", "ExponentialDecay",
     dict(initial_learning_rate=0.001, decay_steps=1000, decay_rate=1.5),
     [0, 1, 999, 1000, 100000, 250000, 300000] + BIG),
    ("exp-underflow", "ExponentialDecay",  # below 2**-126 Keras (XLA) flushes to 0
     dict(initial_learning_rate=1.0, decay_steps=1, decay_rate=0.5),
     list(range(120, 132)) + [149, 150] + BIG),
    ("exp-numpy-scalars", "ExponentialDecay",
     dict(initial_learning_rate=np.float32(0.1), decay_steps=np.int64(10), decay_rate=0.5),
     list(range(12))),
    ("piecewise", "PiecewiseConstantDecay",
     dict(boundaries=[10, 20], values=[1.0, 0.5, 0.1]), list(range(25)) + BIG),
    ("piecewise-at-0", "PiecewiseConstantDecay",
     dict(boundaries=[0], values=[0.1, 0.01]), [0, 1, 2] + BIG),
    ("piecewise-float-boundaries", "PiecewiseConstantDecay",
     dict(boundaries=[10.5, 20.7, 1e6], values=[0.3, 0.2, 0.1, 0.05]),
     list(range(8, 24)) + AROUND(10 ** 6) + BIG),
    ("piecewise-negative-boundary", "PiecewiseConstantDecay",
     dict(boundaries=[-0.5, 3], values=[0.3, 0.2, 0.1]), list(range(6))),
    ("piecewise-int-values", "PiecewiseConstantDecay",
     dict(boundaries=[5, 15], values=[1, 0.5, 2]), list(range(20))),
    ("piecewise-large-boundary", "PiecewiseConstantDecay",
     dict(boundaries=[10 ** 9], values=[0.1, 0.01]), AROUND(10 ** 9) + BIG),
    ("inverse", "InverseTimeDecay",
     dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5),
     list(range(41)) + BIG),
    ("inverse-staircase", "InverseTimeDecay",
     dict(initial_learning_rate=0.1, decay_steps=3, decay_rate=0.7, staircase=True),
     list(range(30)) + BIG),
    ("inverse-keras-example", "InverseTimeDecay",
     dict(initial_learning_rate=0.1, decay_steps=1.0, decay_rate=0.5), list(range(20)) + BIG),
    ("inverse-rate-0", "InverseTimeDecay",
     dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.0), [0, 5, 10] + BIG),
    ("poly", "PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=100),
     list(range(6)) + list(range(94, 106)) + BIG),
    ("poly-cycle-sqrt", "PolynomialDecay",
     dict(initial_learning_rate=0.1, decay_steps=37, end_learning_rate=0.01, power=0.5,
          cycle=True),
     list(range(80)) + AROUND(370, 3700) + BIG),
    ("poly-cycle-square", "PolynomialDecay",
     dict(initial_learning_rate=0.05, decay_steps=10, end_learning_rate=0.0, power=2.0,
          cycle=True),
     list(range(36)) + BIG),
    ("poly-cube", "PolynomialDecay",
     dict(initial_learning_rate=0.05, decay_steps=30, end_learning_rate=0.001, power=3.0),
     list(range(35)) + BIG),
    ("poly-power-0", "PolynomialDecay",
     dict(initial_learning_rate=0.05, decay_steps=10, end_learning_rate=0.01, power=0.0),
     list(range(13))),
    ("cosine", "CosineDecay", dict(initial_learning_rate=0.1, decay_steps=100),
     list(range(11)) + list(range(88, 104)) + BIG),
    ("cosine-alpha", "CosineDecay", dict(initial_learning_rate=0.1, decay_steps=40, alpha=0.1),
     list(range(45)) + BIG),
    ("cosine-odd", "CosineDecay", dict(initial_learning_rate=0.3, decay_steps=977, alpha=0.37),
     list(range(0, 980, 23)) + AROUND(977) + BIG),
    ("cosine-warmup", "CosineDecay",
     dict(initial_learning_rate=0.0, decay_steps=10, warmup_target=0.1, warmup_steps=5),
     list(range(18)) + [2 ** 31 - 1]),
    ("cosine-warmup-alpha", "CosineDecay",
     dict(initial_learning_rate=0.01, decay_steps=12, alpha=0.05, warmup_target=0.2,
          warmup_steps=7),
     list(range(22)) + [2 ** 31 - 1]),
    ("cosine-target-no-warmup-steps", "CosineDecay",  # starts at warmup_target
     dict(initial_learning_rate=0.05, decay_steps=10, warmup_target=0.1, warmup_steps=0),
     list(range(12))),
    ("cosine-warmup-steps-no-target", "CosineDecay",  # warmup_steps ignored
     dict(initial_learning_rate=0.1, decay_steps=10, warmup_steps=5), list(range(13)) + BIG),
    ("restarts", "CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=10),
     list(range(12)) + AROUND(30, 70, 150, 310) + [10 ** 6, 2 ** 31 - 1]),
    ("restarts-t1", "CosineDecayRestarts",
     dict(initial_learning_rate=0.1, first_decay_steps=10, t_mul=1.0, m_mul=0.5),
     list(range(0, 32, 3)) + AROUND(10, 20, 30) + [10 ** 8 + 5, 2 ** 31 - 1]),
    ("restarts-t3", "CosineDecayRestarts",
     dict(initial_learning_rate=0.1, first_decay_steps=13, t_mul=3.0, m_mul=0.8, alpha=0.1),
     [0, 1, 5, 27, 31, 38] + AROUND(13, 52, 169, 1573) + [10 ** 6, 2 ** 31 - 1]),
    ("restarts-t1.5", "CosineDecayRestarts",
     dict(initial_learning_rate=0.1, first_decay_steps=7, t_mul=1.5, m_mul=0.9, alpha=0.01),
     [0, 3, 10, 25, 32, 51] + AROUND(7, 17) + [10 ** 7, 2 ** 31 - 1]),
    ("restarts-t0.9", "CosineDecayRestarts",  # 271: a restart only with Keras's fused rounding
     dict(initial_learning_rate=0.1, first_decay_steps=100, t_mul=0.9),
     [0] + AROUND(100, 190, 271, 1000)),
    ("restarts-shrinking", "CosineDecayRestarts",  # t_mul < 1: NaN in Keras from 333.33
     dict(initial_learning_rate=0.1, first_decay_steps=100, t_mul=0.7),
     [0, 50] + AROUND(100, 170, 219, 333) + [340, 10 ** 6]),
]
COSINE = {"CosineDecay", "CosineDecayRestarts"}


def _top(kwargs):
    """The largest rate the schedule can give (the scale of its float32 resolution)."""
    rates = [kwargs.get(k) for k in ("initial_learning_rate", "warmup_target")]
    return max(float(r) for r in rates + list(kwargs.get("values", [])) if r is not None)


def _keras_values(keras, name, kwargs, steps):
    schedule = getattr(keras.optimizers.schedules, name)(**kwargs)
    return [float(schedule(step)) for step in steps]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_values_match_keras(keras, case):
    _, name, kwargs, steps = case
    expected = _keras_values(keras, name, kwargs, steps)
    schedule = S.CLASSES[name](**kwargs)
    atol = 2.0 ** -24 * _top(kwargs) if name in COSINE else 0.0
    wrong = []
    for step, want in zip(steps, expected):
        if math.isnan(want):  # Keras's t_mul < 1 past the end: refused here
            with pytest.raises(ValueError, match=f"{name}: with t_mul=.* step {step} is past"):
                schedule(step)
            continue
        got = schedule(step)
        assert type(got) is float, f"{name}({step}) returned {type(got).__name__}"
        if math.isinf(want) or math.isinf(got):
            ok = got == want
        else:
            ok = abs(got - want) <= 1e-6 * abs(want) + atol
        if not ok:
            wrong.append((step, want, got))
    assert not wrong, f"{name}({kwargs}): (step, keras, minicnn) {wrong[:8]}"


# Steps where the last bit depends on a detail of Keras's float32 evaluation that rtol
# 1e-6 cannot see: (what, class, arguments, steps). "fused": inside Keras's ops.cond XLA
# compiles a * b + c into one fused multiply-add; "pow": there x / t ** i becomes
# x * t ** -i; "pi": the angle is float32(pi) * fraction; "alpha": 1 - alpha is taken in
# float64 (alpha a Python number) and then rounded. Each step's value differs by an ulp
# when that detail is done the other way.
EXACT = [
    ("fused", "CosineDecay", dict(initial_learning_rate=0.01, decay_steps=300, alpha=0.05,
                                  warmup_target=0.2, warmup_steps=33), [4, 7, 8, 11, 39, 46]),
    ("fused", "CosineDecay", dict(initial_learning_rate=0.01, decay_steps=12, alpha=0.05,
                                  warmup_target=0.2, warmup_steps=7), [5, 6]),
    ("pow", "CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=7,
                                        t_mul=1.5, m_mul=0.9, alpha=0.01), [10, 25, 32, 51]),
    ("pow", "CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=13,
                                        t_mul=3.0, m_mul=0.8, alpha=0.1), [27, 31, 34]),
    ("pi", "CosineDecay", dict(initial_learning_rate=0.1, decay_steps=100), [16, 29, 31, 32]),
    ("alpha", "CosineDecay", dict(initial_learning_rate=0.1, decay_steps=40, alpha=0.058),
     [3, 4, 5, 8]),
]


def _xla_fuses_multiply_add():
    """Whether XLA on this machine compiles a * b + c in a cond branch into an fma."""
    import jax
    import jax.numpy as jnp
    # the first warm-up step of the "fused" case above: (0.2 - 0.01) * (4 / 33) + 0.01
    a, b, c = np.float32(0.2) - np.float32(0.01), np.float32(4) / np.float32(33), np.float32(0.01)
    x, y, z = (jnp.asarray(v) for v in (a, b, c))
    got = float(jax.lax.cond(jnp.asarray(True), lambda: x * y + z, lambda: x * y + z))
    assert S._fma(float(a), float(b), float(c)) != float(np.float32(a * b) + c)
    return got == S._fma(float(a), float(b), float(c))


@pytest.mark.parametrize("what,name,kwargs,steps", EXACT, ids=[
    f"{e[0]}-{i}" for i, e in enumerate(EXACT)])
def test_float32_details_match_keras_exactly(keras, what, name, kwargs, steps):
    if what == "fused" and not _xla_fuses_multiply_add():
        pytest.skip("XLA does not fuse multiply-add on this machine")
    expected = _keras_values(keras, name, kwargs, steps)
    schedule = S.CLASSES[name](**kwargs)
    got = [schedule(step) for step in steps]
    assert got == expected, (
        f"{name}({kwargs}) differs from Keras in the last bit at steps "
        f"{[s for s, g, e in zip(steps, got, expected) if g != e]} ({what}): "
        f"minicnn {got}, Keras {expected}")


def test_the_cases_reach_the_corners():
    """The table above does what its comments say (guards against a case edited into
    covering nothing): Keras's own numbers, as the live test compares them."""
    by_id = {c[0]: c for c in CASES}
    _, _, kw, steps = by_id["piecewise"]
    s = S.PiecewiseConstantDecay(**kw)
    assert [s(9), s(10), s(11), s(20), s(21)] == [1.0, 1.0, 0.5, 0.5, float(np.float32(0.1))]
    s = S.CosineDecayRestarts(**by_id["restarts"][2])
    assert s(30) == s(70) == s(150) == s(0) and s(29) < s(31) < s(30)
    s = S.CosineDecay(**by_id["cosine-warmup"][2])
    assert s(0) == 0.0 < s(4) < s(5) == float(np.float32(0.1)) > s(6)
    assert s(15) == 0.0
    s = S.CosineDecay(**by_id["cosine-warmup-steps-no-target"][2])
    assert s(0) == float(np.float32(0.1)) and s(10) == 0.0
    assert S.CosineDecay(**by_id["cosine-target-no-warmup-steps"][2])(0) == \
        float(np.float32(0.1))
    s = S.ExponentialDecay(**by_id["exp-underflow"][2])
    assert s(126) == 2.0 ** -126 and s(127) == 0.0
    assert S.ExponentialDecay(**by_id["exp-growth-to-inf"][2])(300000) == math.inf
    s = S.PolynomialDecay(**by_id["poly-cycle-square"][2])
    assert s(0) == float(np.float32(0.05)) and s(10) == 0.0 and s(11) > s(9)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_get_config_and_serialize_match_keras(keras, case):
    _, name, kwargs, _ = case
    mine = S.CLASSES[name](**kwargs)
    theirs = getattr(keras.optimizers.schedules, name)(**kwargs)
    assert mine.get_config() == theirs.get_config()
    assert list(mine.get_config()) == list(theirs.get_config())  # Keras's key order
    # JSON: same text, so the same types too (10 stays 10, 0.5 stays 0.5)
    assert json.dumps(S.serialize(mine)) == \
        json.dumps(keras.optimizers.schedules.serialize(theirs))
    if all(not isinstance(v, np.generic) for v in kwargs.values()):
        assert S.serialize(mine) == keras.optimizers.schedules.serialize(theirs)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_round_trips(keras, case):
    _, name, kwargs, steps = case
    mine = S.CLASSES[name](**kwargs)
    through_json = json.loads(json.dumps(S.serialize(mine)))
    for data in (S.serialize(mine), through_json):
        back = S.deserialize(data)
        assert type(back) is type(mine) and back == mine
        assert back.get_config() == mine.get_config()
        assert [back(s) for s in steps[:5]] == [mine(s) for s in steps[:5]]
    assert type(mine).from_config(mine.get_config()) == mine
    # each library reads the other's serialized form
    theirs = keras.optimizers.schedules.deserialize(through_json)
    assert theirs.get_config() == mine.get_config()
    assert S.deserialize(keras.optimizers.schedules.serialize(theirs)) == mine


def test_reads_the_schedule_of_a_keras_model_file(keras, tmp_path):
    """The optimizer config of a saved .keras file holds the schedule in exactly the
    form deserialize reads."""
    ks = keras.optimizers.schedules
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    schedule = ks.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule), loss="mse")
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    stored = config["compile_config"]["optimizer"]["config"]["learning_rate"]
    assert stored == {"module": "keras.optimizers.schedules", "class_name": "ExponentialDecay",
                      "config": {"initial_learning_rate": 0.1, "decay_steps": 10,
                                 "decay_rate": 0.5, "staircase": True,
                                 "name": "ExponentialDecay"},
                      "registered_name": None}
    mine = S.deserialize(stored)
    assert S.serialize(mine) == stored
    assert [mine(s) for s in (0, 9, 10, 25)] == [float(schedule(s)) for s in (0, 9, 10, 25)]


def test_keras_optimizers_read_the_step_before_the_update(keras):
    """The step a schedule receives: Keras's optimizer.iterations before it is
    incremented, so the first update uses schedule(0)."""
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([0, 1], [1.0, 10.0, 100.0])
    optimizer = keras.optimizers.SGD(learning_rate=schedule)
    variable = keras.Variable(np.zeros(1, np.float32))
    seen = []
    for _ in range(3):
        before = float(np.asarray(variable)[0])
        optimizer.apply_gradients([(np.ones(1, np.float32), variable)])
        seen.append(before - float(np.asarray(variable)[0]))  # lr * gradient 1
    assert seen == [1.0, 10.0, 100.0]
    mine = S.PiecewiseConstantDecay([0, 1], [1.0, 10.0, 100.0])
    assert [mine(step) for step in range(3)] == seen


def test_defaults_and_names_match_keras(keras):
    import inspect
    for name, cls in S.CLASSES.items():
        theirs = getattr(keras.optimizers.schedules, name)
        assert list(inspect.signature(cls).parameters.items()) == \
            list(inspect.signature(theirs).parameters.items()), name
    assert sorted(S.CLASSES) == sorted(
        n for n in dir(keras.optimizers.schedules)
        if n[0].isupper() and n != "LearningRateSchedule")


def test_returns_python_floats_and_the_float32_value():
    s = S.ExponentialDecay(0.1, 10, 0.5)
    assert type(s(0)) is float and s(0) == float(np.float32(0.1))
    assert type(S.PiecewiseConstantDecay([1], [1, 2])(5)) is float
    # the step accepts numpy integers (an optimizer's counter may be one), up to int64's
    assert s(np.int64(10)) == s(10) == float(np.float32(0.05))
    for cls, args in [(S.ExponentialDecay, (0.1, 10, 0.5)),
                      (S.InverseTimeDecay, (0.1, 10, 0.5)),
                      (S.PolynomialDecay, (0.1, 10, 0.01, 1.0, True)),
                      (S.CosineDecay, (0.1, 10)), (S.CosineDecayRestarts, (0.1, 10)),
                      (S.PiecewiseConstantDecay, ([1], [1.0, 2.0]))]:
        assert math.isfinite(cls(*args)(2 ** 63 - 1)), cls.__name__


# -- argument checks ---------------------------------------------------------------------
BAD = [
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=0, decay_rate=0.5),
     "ExponentialDecay: decay_steps must be > 0. Received: decay_steps=0"),
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=-5, decay_rate=0.5),
     "ExponentialDecay: decay_steps must be > 0. Received: decay_steps=-5"),
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.0),
     "ExponentialDecay: decay_rate must be > 0. Received: decay_rate=0.0"),
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=math.nan),
     "ExponentialDecay: decay_rate must be a finite number. Received: decay_rate=nan"),
    ("ExponentialDecay", dict(initial_learning_rate=-0.1, decay_steps=10, decay_rate=0.5),
     "ExponentialDecay: initial_learning_rate must be >= 0. "
     "Received: initial_learning_rate=-0.1"),
    ("ExponentialDecay", dict(initial_learning_rate=1, decay_steps=10, decay_rate=0.5),
     "ExponentialDecay: initial_learning_rate must be a float, not an int"),
    ("ExponentialDecay", dict(initial_learning_rate="0.1", decay_steps=10, decay_rate=0.5),
     "ExponentialDecay: initial_learning_rate must be a finite number"),
    ("ExponentialDecay", dict(initial_learning_rate=True, decay_steps=10, decay_rate=0.5),
     "ExponentialDecay: initial_learning_rate must be a finite number"),
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5,
                              staircase="yes"),
     "ExponentialDecay: staircase must be True or False. Received: staircase='yes'"),
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5,
                              name=3), "ExponentialDecay: name must be a string"),
    ("PiecewiseConstantDecay", dict(boundaries=[10, 20], values=[1.0, 0.5]),
     "PiecewiseConstantDecay: values must have one more element than boundaries"),
    ("PiecewiseConstantDecay", dict(boundaries=[20, 10], values=[1.0, 0.5, 0.1]),
     "PiecewiseConstantDecay: boundaries must be strictly increasing. "
     "Received: boundaries=[20, 10] (boundaries[1]=10 <= boundaries[0]=20)"),
    ("PiecewiseConstantDecay", dict(boundaries=[10, 10], values=[1.0, 0.5, 0.1]),
     "PiecewiseConstantDecay: boundaries must be strictly increasing"),
    ("PiecewiseConstantDecay", dict(boundaries=[], values=[1.0]),
     "PiecewiseConstantDecay: boundaries must not be empty"),
    ("PiecewiseConstantDecay", dict(boundaries=[10], values=[1.0, -0.5]),
     "PiecewiseConstantDecay: values[1] must be >= 0. Received: values[1]=-0.5"),
    ("PiecewiseConstantDecay", dict(boundaries=[math.inf], values=[1.0, 0.5]),
     "PiecewiseConstantDecay: boundaries[0] must be a finite number"),
    ("PiecewiseConstantDecay", dict(boundaries="10", values=[1.0, 0.5]),
     "PiecewiseConstantDecay: boundaries must be a list of numbers"),
    ("PiecewiseConstantDecay", dict(boundaries=10, values=[1.0, 0.5]),
     "PiecewiseConstantDecay: boundaries must be a list of numbers"),
    ("InverseTimeDecay", dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=-1.0),
     "InverseTimeDecay: decay_rate must be >= 0. Received: decay_rate=-1.0"),
    ("InverseTimeDecay", dict(initial_learning_rate=0.1, decay_steps=0.0, decay_rate=0.5),
     "InverseTimeDecay: decay_steps must be > 0. Received: decay_steps=0.0"),
    ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=10, end_learning_rate=-1.0),
     "PolynomialDecay: end_learning_rate must be >= 0"),
    ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=10, power=-1.0),
     "PolynomialDecay: power must be >= 0. Received: power=-1.0"),
    ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=10, cycle=1),
     "PolynomialDecay: cycle must be True or False. Received: cycle=1"),
    ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=-1),
     "PolynomialDecay: decay_steps must be > 0. Received: decay_steps=-1"),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=0),
     "CosineDecay: decay_steps must be > 0. Received: decay_steps=0"),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=10, alpha=1.5),
     "CosineDecay: alpha must be <= 1. Received: alpha=1.5"),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=10, alpha=-0.1),
     "CosineDecay: alpha must be >= 0. Received: alpha=-0.1"),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=10, warmup_target=-1.0,
                         warmup_steps=5),
     "CosineDecay: warmup_target must be >= 0. Received: warmup_target=-1.0"),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=10, warmup_target=0.2,
                         warmup_steps=-1),
     "CosineDecay: warmup_steps must be >= 0. Received: warmup_steps=-1"),
    ("CosineDecay", dict(initial_learning_rate=0, decay_steps=10, warmup_target=0.1,
                         warmup_steps=10),  # Keras's own docstring example: all zeros there
     "CosineDecay: initial_learning_rate must be a float, not an int"),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=0),
     "CosineDecayRestarts: first_decay_steps must be > 0. Received: first_decay_steps=0"),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=10, t_mul=0.0),
     "CosineDecayRestarts: t_mul must be > 0. Received: t_mul=0.0"),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=10, m_mul=-1.0),
     "CosineDecayRestarts: m_mul must be >= 0. Received: m_mul=-1.0"),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=10, alpha=2.0),
     "CosineDecayRestarts: alpha must be <= 1. Received: alpha=2.0"),
]


@pytest.mark.parametrize("name,kwargs,message", BAD,
                         ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_arguments_raise_naming_class_and_argument(name, kwargs, message):
    with pytest.raises(ValueError) as info:
        S.CLASSES[name](**kwargs)
    assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize("step", [-1, 2 ** 63, 1.5, 2.0, True, "3", None, np.float32(1)])
@pytest.mark.parametrize("name,kwargs", [
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5)),
    ("PiecewiseConstantDecay", dict(boundaries=[1], values=[0.1, 0.01])),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=10)),
])
def test_bad_steps_raise(name, kwargs, step):
    with pytest.raises(ValueError, match=rf"^{name}: step must be an integer from 0 to "
                                         rf"2\*\*63 - 1 \(the optimizer's iteration count "
                                         rf"before the update\)\. Received: step="):
        S.CLASSES[name](**kwargs)(step)


def test_shrinking_restarts_refuse_steps_past_their_end():
    s = S.CosineDecayRestarts(0.1, 100, t_mul=0.7)  # 100 / 0.3 = 333.3 steps in all
    s(333)
    with pytest.raises(ValueError, match=r"CosineDecayRestarts: with t_mul=0.7 < 1 the "
                                         r"restarts last first_decay_steps / \(1 - t_mul\) "
                                         r"= 333.333 steps in all, and step 334 is past"):
        s(334)


# -- deserialize refusals ------------------------------------------------------------------
GOOD = {"module": "keras.optimizers.schedules", "class_name": "ExponentialDecay",
        "config": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5,
                   "staircase": False, "name": "ExponentialDecay"},
        "registered_name": None}


def _with(**changes):
    out = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if value is KeyError:
            out.pop(key)
        else:
            out[key] = value
    return out


REFUSED = [
    (_with(class_name="Nope"), "deserialize: unknown schedule class 'Nope'; the known ones"),
    (_with(class_name="LearningRateSchedule"),
     "deserialize: unknown schedule class 'LearningRateSchedule'"),
    (_with(class_name="serialize"), "deserialize: unknown schedule class 'serialize'"),
    (_with(class_name="__class__"), "deserialize: unknown schedule class '__class__'"),
    (_with(class_name=["ExponentialDecay"]), "deserialize: unknown schedule class"),
    (_with(config=[0.1, 10, 0.5]), "deserialize: ExponentialDecay's config must be a dict"),
    (_with(config="x"), "deserialize: ExponentialDecay's config must be a dict"),
    (_with(config=dict(GOOD["config"], zzz=1)),
     "ExponentialDecay: unknown config keys ['zzz']; the arguments are"),
    (_with(config={"initial_learning_rate": 0.1, "decay_steps": 10}),
     "ExponentialDecay: the config lacks the required arguments ['decay_rate']"),
    (_with(config=dict(GOOD["config"], decay_steps=0)),
     "ExponentialDecay: decay_steps must be > 0. Received: decay_steps=0"),
    (_with(extra=1), "deserialize: unknown keys ['extra']"),
    (_with(class_name=KeyError), "deserialize: the schedule lacks 'class_name'"),
    (_with(config=KeyError), "deserialize: the schedule lacks 'config'"),
    (_with(module="keras.losses"), "deserialize: module must be 'keras.optimizers.schedules'"),
    (_with(registered_name="my_package>MySchedule"), "deserialize: registered_name must be None"),
    ("ExponentialDecay", "deserialize: a schedule must be a dict"),
    (None, "deserialize: a schedule must be a dict"),
]


@pytest.mark.parametrize("data,message", REFUSED, ids=[str(i) for i in range(len(REFUSED))])
def test_deserialize_refuses(data, message):
    with pytest.raises(ValueError) as info:
        S.deserialize(data)
    assert str(info.value).startswith(message), str(info.value)


def test_deserialize_accepts_the_short_form():
    """Without module and registered_name (Keras's docstring form, older files)."""
    short = {"class_name": "ExponentialDecay", "config": GOOD["config"]}
    assert S.deserialize(short) == S.deserialize(GOOD) == S.ExponentialDecay(0.1, 10, 0.5)


def test_serialize_refuses_other_schedules():
    class Mine(S.LearningRateSchedule):
        def __call__(self, step):
            return 0.1

        def get_config(self):
            return {}

    with pytest.raises(ValueError, match="serialize: only the schedules of "
                                         "minicnn.optimizers.schedules"):
        S.serialize(Mine())
    with pytest.raises(ValueError, match="serialize: only the schedules"):
        S.serialize(0.1)


def test_base_class():
    base = S.LearningRateSchedule()
    with pytest.raises(NotImplementedError, match="must override `__call__"):
        base(0)
    with pytest.raises(NotImplementedError, match="must override `get_config"):
        base.get_config()

    class Halving(S.LearningRateSchedule):
        def __init__(self, rate):
            self.rate = rate

        def __call__(self, step):
            return self.rate / 2 ** step

        def get_config(self):
            return {"rate": self.rate}

    made = Halving.from_config({"rate": 0.5})
    assert made(1) == 0.25 and made == Halving(0.5) and made != Halving(0.25)
    with pytest.raises(ValueError, match=r"Halving: unknown config keys \['r'\]"):
        Halving.from_config({"r": 0.5})
    assert repr(S.ExponentialDecay(0.1, 10, 0.5)) == (
        "ExponentialDecay(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5, "
        "staircase=False, name='ExponentialDecay')")


def test_classes_is_the_closed_table():
    assert S.CLASSES == {c.__name__: c for c in (
        S.ExponentialDecay, S.PiecewiseConstantDecay, S.InverseTimeDecay, S.PolynomialDecay,
        S.CosineDecay, S.CosineDecayRestarts)}


def test_fused_multiply_add_rounds_once():
    """_fma (Keras's a * b + c inside ops.cond, compiled by XLA into one rounding) where
    rounding to float64 first would land exactly between two float32 values."""
    a, b, c = 2.0 ** -24 * (1 + 2.0 ** -23), 1 - 2.0 ** -23, 1 + 2.0 ** -23
    # exactly: c + 2**-24 - 2**-70, just below the midpoint of c and the next float32
    assert S._fma(a, b, c) == c
    assert float(np.float32(a * b + c)) != c  # the naive double rounding
    assert S._fma(0.5, 0.25, 1.0) == 1.125
