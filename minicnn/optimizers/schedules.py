"""Learning-rate schedules: Keras 3's ``keras.optimizers.schedules``, number for number.

A schedule is passed to an optimizer as its ``learning_rate``. Before each update
the optimizer calls ``schedule(step)`` and uses the float it returns as that
update's learning rate.

What "step" means: the optimizer's ``iterations``, the number of updates it has
already made. The first update uses ``schedule(0)``, the second ``schedule(1)``,
and so on, as in Keras (``optimizer._learning_rate(optimizer.iterations)`` is read
before ``iterations`` is incremented). It counts updates (batches), not epochs, and
a resumed run carries on from the saved ``iterations``. It must be an integer from 0
to 2**63 - 1 (Keras's counter is an int32 on JAX, an int64 on TensorFlow).

The formulas (lr0 = initial_learning_rate, s = step, floor/ceil/cos/min as usual):

    ExponentialDecay(lr0, decay_steps, decay_rate, staircase=False)
        p  = s / decay_steps                (floor(s / decay_steps) if staircase)
        lr = lr0 * decay_rate ** p

    PiecewiseConstantDecay(boundaries=[b0, b1, ...], values=[v0, v1, v2, ...])
        lr = v0 while s <= b0,  v1 while b0 < s <= b1,  ...,  v_last once s > b_last
        (a boundary belongs to the interval *before* it: s == b0 still gives v0)

    InverseTimeDecay(lr0, decay_steps, decay_rate, staircase=False)
        p  = s / decay_steps                (floor(s / decay_steps) if staircase)
        lr = lr0 / (1 + decay_rate * p)

    PolynomialDecay(lr0, decay_steps, end_learning_rate=1e-4, power=1.0, cycle=False)
        not cycle:  s = min(s, decay_steps);  D = decay_steps
        cycle:      D = decay_steps * ceil(s / decay_steps)   (D = decay_steps at s = 0)
        lr = (lr0 - end_learning_rate) * (1 - s / D) ** power + end_learning_rate
        (so with cycle the rate jumps back up just after each multiple of decay_steps)

    CosineDecay(lr0, decay_steps, alpha=0.0, warmup_target=None, warmup_steps=0)
        decay(s, top) = top * ((1 - alpha) * 0.5 * (1 + cos(pi * s / decay_steps)) + alpha)
        warmup_target None:  lr = decay(min(s, decay_steps), lr0)
                             (warmup_steps is then ignored entirely)
        otherwise:           s = min(s, warmup_steps + decay_steps)
                             s < warmup_steps:
                                 lr = lr0 + (warmup_target - lr0) * s / warmup_steps
                             s >= warmup_steps:
                                 lr = decay(s - warmup_steps, warmup_target)
        (linear warm-up from lr0 to warmup_target over warmup_steps updates, then a cosine
        from warmup_target down to alpha * warmup_target; with warmup_steps=0 the schedule
        starts at warmup_target, not at lr0)

    CosineDecayRestarts(lr0, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0)
        period i (i = 0, 1, ...) lasts first_decay_steps * t_mul**i steps; with f the
        fraction of its period that step s has done (0 <= f < 1):
        lr = lr0 * ((1 - alpha) * m_mul**i * 0.5 * (1 + cos(pi * f)) + alpha)
        (so each period starts at lr0 * ((1 - alpha) * m_mul**i + alpha), on its first
        step exactly, and heads for alpha * lr0; with t_mul < 1 the periods shrink and
        their total, first_decay_steps / (1 - t_mul), is the schedule's end)

Where this module is stricter than Keras (a ValueError naming the class and the
argument, where Keras computes something useless or fails later):
``initial_learning_rate`` must be a float (Keras computes the schedule in its dtype,
so an int turns it into integer arithmetic: ``CosineDecay(0, 1000, warmup_target=0.1,
warmup_steps=1000)``, Keras's own docstring example, gives 0.0 at every step); rates,
``alpha`` (0 to 1), ``power``, ``m_mul``, ``warmup_steps`` must not be negative,
``decay_steps``, ``decay_rate`` (ExponentialDecay) and ``t_mul`` must be > 0;
``boundaries`` must be non-empty and strictly increasing; a CosineDecayRestarts step
past the end of shrinking periods is refused (Keras returns NaN). The step is compared
with a float boundary as Keras does, after truncating the boundary toward zero.

Precision. Keras evaluates all of this in float32 (the dtype of
``initial_learning_rate``), and float32 is what makes a difference in places: the
step itself is rounded to float32 (above 2**24 = 16,777,216 it is no longer exact, so
with large steps a cosine period's position or a cycle's multiple is that of a nearby
step); ``decay_rate ** p`` for a large p amplifies p's rounding; ``1 + cos(...)`` at the
end of a cosine cancels, so the rate there is a multiple of float32's spacing near 1
(the end of CosineDecay with alpha=0 is exactly 0.0, not 1e-16); and results below
float32's smallest normal number (1.18e-38) are flushed to 0.0 as XLA does. So each
``__call__`` repeats Keras's float32 operations in Keras's order, rounding each result
to float32 (basic arithmetic then matches float32 exactly; cos, log and ** are taken
in float64 and rounded, within an ulp of XLA's own); the returned Python float holds
that float32 value. An optimizer that computes in float32 uses it unchanged.
The reference is Keras called eagerly, ``float(schedule(step))``, which this matches
bit for bit except where XLA's cos is an ulp off; that includes the parts Keras runs
inside ``ops.cond`` (CosineDecay with a warm-up, CosineDecayRestarts' period search),
which XLA compiles: there ``a * b + c`` is one fused rounding and ``x / b ** c``
becomes ``x * b ** -c``, and this module does the same. Inside a compiled training
step XLA fuses more, so Keras's own rate there can differ from its eager value by an
ulp or two (a few parts in 10**8 of the top rate).

Serialized form (as in a ``.keras`` file's optimizer config):
``{"module": "keras.optimizers.schedules", "class_name": "ExponentialDecay",
"config": {...get_config()...}, "registered_name": None}``; ``serialize`` writes it,
``deserialize`` reads it, with the class looked up in ``CLASSES`` only.
"""
import inspect
import math
import numbers

MODULE = "keras.optimizers.schedules"

from .float32_arithmetic import (_check_bool, _check_name, _check_number, _check_rate,
                                 _check_step, _cos, _f32, _fma, _pow, _PI)


# -- the schedules ----------------------------------------------------------------------
class LearningRateSchedule:
    """The base class. A subclass implements ``__call__(step)`` (step: the number of
    updates made so far, an int >= 0; returns the learning rate, a Python float) and
    ``get_config()`` (the constructor's arguments by name); ``from_config(config)``
    builds one back."""

    def __call__(self, step):
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' must "
                                  f"override `__call__(self, step)`.")

    def get_config(self):
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' must "
                                  f"override `get_config()` in order to be serializable.")

    @classmethod
    def from_config(cls, config):
        """``cls(**config)``, after checking that ``config`` is a dict whose keys are all
        arguments of the constructor (ValueError naming the others otherwise)."""
        if not isinstance(config, dict):
            raise ValueError(f"{cls.__name__}: the config must be a dict. "
                             f"Received: {type(config).__name__} {config!r}")
        parameters = inspect.signature(cls.__init__).parameters
        known = [p for p, v in parameters.items() if p != "self"
                 and v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)]
        open_ended = any(v.kind is v.VAR_KEYWORD for v in parameters.values())
        unknown = sorted(str(k) for k in config if k not in known)
        if unknown and not open_ended:
            raise ValueError(f"{cls.__name__}: unknown config keys {unknown}; the "
                             f"arguments are {known}")
        missing = [p for p in known if p not in config
                   and parameters[p].default is inspect.Parameter.empty]
        if missing:
            raise ValueError(f"{cls.__name__}: the config lacks the required arguments "
                             f"{missing}")
        return cls(**config)

    def __repr__(self):
        try:
            config = self.get_config()
        except NotImplementedError:
            return f"<{type(self).__name__}>"
        return f"{type(self).__name__}(" + ", ".join(
            f"{k}={v!r}" for k, v in config.items()) + ")"

    def __eq__(self, other):
        """The same class with the same config (identity for a schedule without one)."""
        if type(self) is not type(other):
            return NotImplemented
        try:
            return self.get_config() == other.get_config()
        except NotImplementedError:
            return self is other

    __hash__ = object.__hash__


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``; with
    ``staircase=True`` the exponent is ``floor(step / decay_steps)``."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="ExponentialDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = _check_rate(owner, "initial_learning_rate",
                                                 initial_learning_rate)
        self.decay_steps = _check_number(owner, "decay_steps", decay_steps, 0, low_open=True)
        self.decay_rate = _check_number(owner, "decay_rate", decay_rate, 0, low_open=True)
        self.staircase = _check_bool(owner, "staircase", staircase)
        self.name = _check_name(owner, name)

    def __call__(self, step):
        s = _f32(_check_step(type(self).__name__, step))
        p = _f32(s / _f32(self.decay_steps))
        if self.staircase:
            p = math.floor(p)
        return _f32(_f32(self.initial_learning_rate) * _pow(_f32(self.decay_rate), p))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` once
    ``step > boundaries[-1]``."""

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        owner = type(self).__name__
        for arg, seq in (("boundaries", boundaries), ("values", values)):
            if isinstance(seq, (str, bytes, dict)) or not hasattr(seq, "__len__"):
                raise ValueError(f"{owner}: {arg} must be a list of numbers. "
                                 f"Received: {arg}={seq!r}")
        boundaries = [_check_number(owner, f"boundaries[{i}]", b)
                      for i, b in enumerate(boundaries)]
        values = [_check_number(owner, f"values[{i}]", v, 0) for i, v in enumerate(values)]
        if not boundaries:
            raise ValueError(f"{owner}: boundaries must not be empty (Keras fails on an "
                             f"empty list); for a constant rate pass a number as the "
                             f"learning rate. Received: boundaries={boundaries!r}")
        if len(boundaries) != len(values) - 1:
            raise ValueError(f"{owner}: values must have one more element than boundaries. "
                             f"Received: boundaries={boundaries!r} of length "
                             f"{len(boundaries)}, and values={values!r} of length "
                             f"{len(values)}")
        for i in range(1, len(boundaries)):
            if not boundaries[i] > boundaries[i - 1]:
                raise ValueError(f"{owner}: boundaries must be strictly increasing. "
                                 f"Received: boundaries={boundaries!r} "
                                 f"(boundaries[{i}]={boundaries[i]!r} <= "
                                 f"boundaries[{i - 1}]={boundaries[i - 1]!r})")
        self.boundaries = boundaries
        self.values = values
        self.name = _check_name(owner, name)
        # Keras compares the integer step with each boundary cast to the step's integer
        # dtype (a float boundary is rounded to float32, then truncated toward zero)
        self._limits = [b if isinstance(b, numbers.Integral) else math.trunc(_f32(b))
                        for b in boundaries]
        self._rates = [_f32(v) for v in values]

    def __call__(self, step):
        step = _check_step(type(self).__name__, step)
        for limit, rate in zip(self._limits, self._rates):
            if step <= limit:
                return rate
        return self._rates[-1]

    def get_config(self):
        return {"boundaries": list(self.boundaries), "values": list(self.values),
                "name": self.name}


class InverseTimeDecay(LearningRateSchedule):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``; with
    ``staircase=True``, ``floor(step / decay_steps)`` in place of
    ``step / decay_steps``."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="InverseTimeDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = _check_rate(owner, "initial_learning_rate",
                                                 initial_learning_rate)
        self.decay_steps = _check_number(owner, "decay_steps", decay_steps, 0, low_open=True)
        self.decay_rate = _check_number(owner, "decay_rate", decay_rate, 0)
        self.staircase = _check_bool(owner, "staircase", staircase)
        self.name = _check_name(owner, name)

    def __call__(self, step):
        s = _f32(_check_step(type(self).__name__, step))
        p = _f32(s / _f32(self.decay_steps))
        if self.staircase:
            p = math.floor(p)
        denominator = _f32(1.0 + _f32(_f32(self.decay_rate) * p))
        return _f32(_f32(self.initial_learning_rate) / denominator)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """From ``initial_learning_rate`` to ``end_learning_rate`` along
    ``(1 - step / decay_steps) ** power`` over ``decay_steps``, then constant; with
    ``cycle=True`` the decay restarts over the next multiple of ``decay_steps``."""

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001,
                 power=1.0, cycle=False, name="PolynomialDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = _check_rate(owner, "initial_learning_rate",
                                                 initial_learning_rate)
        self.decay_steps = _check_number(owner, "decay_steps", decay_steps, 0, low_open=True)
        self.end_learning_rate = _check_number(owner, "end_learning_rate",
                                               end_learning_rate, 0)
        self.power = _check_number(owner, "power", power, 0)
        self.cycle = _check_bool(owner, "cycle", cycle)
        self.name = _check_name(owner, name)

    def __call__(self, step):
        s = _f32(_check_step(type(self).__name__, step))
        lr0, end = _f32(self.initial_learning_rate), _f32(self.end_learning_rate)
        decay_steps = _f32(self.decay_steps)
        if self.cycle:
            multiplier = 1.0 if s == 0 else math.ceil(_f32(s / decay_steps))
            decay_steps = _f32(decay_steps * multiplier)
        else:
            s = min(s, decay_steps)
        p = _f32(s / decay_steps)
        factor = _pow(_f32(1.0 - p), _f32(self.power))
        return _f32(_f32(_f32(lr0 - end) * factor) + end)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "end_learning_rate": self.end_learning_rate,
                "power": self.power, "cycle": self.cycle, "name": self.name}


class CosineDecay(LearningRateSchedule):
    """A cosine from the top rate down to ``alpha`` times it over ``decay_steps``,
    then constant; the top is ``initial_learning_rate``, or, with ``warmup_target``,
    ``warmup_target`` reached by a linear warm-up from ``initial_learning_rate`` over
    ``warmup_steps`` (ignored without ``warmup_target``)."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        owner = type(self).__name__
        self.initial_learning_rate = _check_rate(owner, "initial_learning_rate",
                                                 initial_learning_rate)
        self.decay_steps = _check_number(owner, "decay_steps", decay_steps, 0, low_open=True)
        self.alpha = _check_number(owner, "alpha", alpha, 0, 1)
        self.name = _check_name(owner, name)
        self.warmup_target = None if warmup_target is None else _check_number(
            owner, "warmup_target", warmup_target, 0)
        self.warmup_steps = _check_number(owner, "warmup_steps", warmup_steps, 0)

    def _decay(self, s, decay_steps, top, fused):
        fraction = _f32(s / decay_steps)
        cosine = _f32(0.5 * _f32(1.0 + _cos(_f32(_PI * fraction))))
        # Keras: (1 - self.alpha) * cosine + self.alpha with alpha a Python number:
        # 1 - alpha is taken in float64, then rounded to float32; one rounding (fused)
        # inside Keras's ops.cond, two outside it
        a, c = _f32(1 - self.alpha), _f32(self.alpha)
        decayed = _fma(a, cosine, c) if fused else _f32(_f32(a * cosine) + c)
        return _f32(top * decayed)

    def __call__(self, step):
        s = _f32(_check_step(type(self).__name__, step))
        lr0, decay_steps = _f32(self.initial_learning_rate), _f32(self.decay_steps)
        if self.warmup_target is None:
            return self._decay(min(s, decay_steps), decay_steps, lr0, fused=False)
        # with a warm-up Keras picks the branch with ops.cond, whose compiled branches
        # fuse a * b + c into one rounding
        target, warmup_steps = _f32(self.warmup_target), _f32(self.warmup_steps)
        s = min(s, _f32(decay_steps + warmup_steps))
        if s < warmup_steps:
            return _fma(_f32(target - lr0), _f32(s / warmup_steps), lr0)
        return self._decay(_f32(s - warmup_steps), decay_steps, target, fused=True)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha, "name": self.name,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decays from ``initial_learning_rate * m_mul**i`` to ``alpha`` times the
    initial rate, restarting after each period; period ``i`` is
    ``first_decay_steps * t_mul**i`` steps long."""

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0,
                 alpha=0.0, name="SGDRDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = _check_rate(owner, "initial_learning_rate",
                                                 initial_learning_rate)
        self.first_decay_steps = _check_number(owner, "first_decay_steps",
                                               first_decay_steps, 0, low_open=True)
        self.t_mul = _check_number(owner, "t_mul", t_mul, 0, low_open=True)
        self.m_mul = _check_number(owner, "m_mul", m_mul, 0)
        self.alpha = _check_number(owner, "alpha", alpha, 0, 1)
        self.name = _check_name(owner, name)

    def __call__(self, step):
        owner = type(self).__name__
        s = _f32(_check_step(owner, step))
        lr0, alpha = _f32(self.initial_learning_rate), _f32(self.alpha)
        t_mul, m_mul = _f32(self.t_mul), _f32(self.m_mul)
        fraction = _f32(s / _f32(self.first_decay_steps))
        if t_mul == 1.0:
            restart = math.floor(fraction)
            fraction = _f32(fraction - restart)
        else:
            # inside Keras's ops.cond: 1 - fraction * (1 - t_mul) is one fused rounding
            argument = _fma(-fraction, _f32(1.0 - t_mul), 1.0)
            if not argument > 0:
                raise ValueError(
                    f"{owner}: with t_mul={self.t_mul!r} < 1 the restarts last "
                    f"first_decay_steps / (1 - t_mul) = "
                    f"{self.first_decay_steps / (1 - self.t_mul):g} steps in all, and step "
                    f"{step} is past them (Keras returns NaN there)")
            restart = math.floor(_f32(_f32(math.log(argument)) / _f32(math.log(t_mul))))
            done = _f32(_f32(1.0 - _pow(t_mul, restart)) / _f32(1.0 - t_mul))
            # Keras divides by t_mul ** restart; XLA's simplifier compiles x / b ** c
            # into x * b ** -c, which rounds differently when b ** c is inexact
            fraction = _f32(_f32(fraction - done) * _pow(t_mul, -restart))
        cosine = _f32(_f32(0.5 * _pow(m_mul, restart)) *
                      _f32(1.0 + _cos(_f32(_PI * fraction))))
        decayed = _f32(_f32(_f32(1.0 - alpha) * cosine) + alpha)
        return _f32(lr0 * decayed)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "first_decay_steps": self.first_decay_steps, "t_mul": self.t_mul,
                "m_mul": self.m_mul, "alpha": self.alpha, "name": self.name}


# the classes a model file may name: looked up here only, never as attributes
CLASSES = {cls.__name__: cls for cls in (
    ExponentialDecay, PiecewiseConstantDecay, InverseTimeDecay, PolynomialDecay,
    CosineDecay, CosineDecayRestarts)}

_SERIALIZED_KEYS = ("module", "class_name", "config", "registered_name")


def serialize(schedule):
    """Keras's serialized form: ``{"module": "keras.optimizers.schedules",
    "class_name": ..., "config": schedule.get_config(), "registered_name": None}``."""
    cls = type(schedule)
    if CLASSES.get(cls.__name__) is not cls:
        raise ValueError(f"serialize: only the schedules of minicnn.optimizers.schedules "
                         f"({', '.join(CLASSES)}) can be serialized. "
                         f"Received: {schedule!r}")
    return {"module": MODULE, "class_name": cls.__name__, "config": schedule.get_config(),
            "registered_name": None}


def deserialize(config):
    """The schedule that ``serialize`` wrote (Keras's form, as in a ``.keras`` file):
    a dict with "class_name" (one of ``CLASSES``) and "config" (the constructor's
    arguments), and optionally "module" (``"keras.optimizers.schedules"``) and
    "registered_name" (None). Anything else is a ValueError that names the problem."""
    if not isinstance(config, dict):
        raise ValueError(f"deserialize: a schedule must be a dict with 'class_name' and "
                         f"'config'. Received: {type(config).__name__} {config!r}")
    unknown = sorted(str(k) for k in config if k not in _SERIALIZED_KEYS)
    if unknown:
        raise ValueError(f"deserialize: unknown keys {unknown}; a schedule has "
                         f"{list(_SERIALIZED_KEYS)}")
    for key in ("class_name", "config"):
        if key not in config:
            raise ValueError(f"deserialize: the schedule lacks {key!r}. Received: {config!r}")
    if config.get("module", MODULE) != MODULE:
        raise ValueError(f"deserialize: module must be {MODULE!r}. "
                         f"Received: module={config['module']!r}")
    if config.get("registered_name") is not None:
        raise ValueError(f"deserialize: registered_name must be None (a registered custom "
                         f"schedule is not supported). "
                         f"Received: registered_name={config['registered_name']!r}")
    name = config["class_name"]
    if not isinstance(name, str) or name not in CLASSES:
        raise ValueError(f"deserialize: unknown schedule class {name!r}; the known ones are "
                         f"{sorted(CLASSES)}")
    if not isinstance(config["config"], dict):
        raise ValueError(f"deserialize: {name}'s config must be a dict. "
                         f"Received: {config['config']!r}")
    return CLASSES[name].from_config(config["config"])
