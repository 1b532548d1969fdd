"""Learning-rate schedules with Keras 3 names, arguments and formulas
(keras/src/optimizers/schedules/learning_rate_schedule.py).

A built-in schedule is a name and a tuple of numbers (``engine_spec``) that the training engine evaluates
in C from the step count inside its compiled loop (``fastnn/_kernels/_schedules.pxd``; its NumPy twin is
``_reference.learning_rate_at``), so a schedule costs no Python call per step. ``schedule(step)`` runs the
same C function. A ``LearningRateSchedule`` subclass of your own is called from Python once per step:
correct, but each step then costs a Python call.

Keras computes the schedules in the initial rate's dtype (float32); fastnn in float64, rounded once to the
weights' dtype by the update.
"""
import math
import numbers

from fastnn import _kernels as K
from fastnn.utils.validation import describe


class LearningRateSchedule:
    """Base class: subclasses implement ``__call__(step)`` (the 0-based optimizer step, an int) returning the
    learning rate, and ``get_config()`` to be saved with a model."""

    def __call__(self, step):
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' must override "
                                  "`__call__(self, step)`.")

    def get_config(self):
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' must override `get_config()` "
                                  "in order to be serializable.")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def engine_spec(self):
        """(name, params) for the engine, or None: a Python schedule, called once per step."""
        return None


class _BuiltIn(LearningRateSchedule):
    """A schedule the engine evaluates in C: ``_spec`` gives its name and parameters."""

    def __call__(self, step):
        return K.learning_rate_at(*self.engine_spec(), _step(type(self).__name__, step))

    def engine_spec(self):
        return self._spec()


def _step(owner, step):
    try:
        value = float(step)
    except (TypeError, ValueError):
        value = None
    if value is None or isinstance(step, bool) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{owner}: `step` must be a finite number >= 0 (the optimizer step); "
                         f"received {describe(step)}")
    return value


def _number(owner, name, value, positive=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value \
            or (positive and not value > 0):
        what = "a number > 0" if positive else "a number"
        raise ValueError(f"{owner}: argument `{name}` must be {what}; received {name}={describe(value)}")
    return value


def _decay_steps(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"Argument `{name}` must be > 0. Received: {name}={value!r}")
    return value


class ExponentialDecay(_BuiltIn):
    """initial_learning_rate * decay_rate ^ (step / decay_steps) (floor of the exponent with staircase)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name="ExponentialDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate", initial_learning_rate)
        self.decay_steps = _decay_steps(owner, "decay_steps", decay_steps)
        self.decay_rate = _number(owner, "decay_rate", decay_rate)
        self.staircase = bool(staircase)
        self.name = name

    def _spec(self):
        return "exponential", (self.initial_learning_rate, self.decay_steps, self.decay_rate, float(self.staircase))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(_BuiltIn):
    """values[0] while step <= boundaries[0], values[i] while boundaries[i-1] < step <= boundaries[i], values[-1]
    after the last boundary."""

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        boundaries, values = list(boundaries), list(values)
        if len(boundaries) != len(values) - 1:
            raise ValueError("The length of boundaries should be 1 less than the length of values. Received: "
                             f"boundaries={boundaries} of length {len(boundaries)}, and values={values} of length "
                             f"{len(values)}.")
        owner = type(self).__name__
        for b in boundaries:
            _number(owner, "boundaries", b)
        for v in values:
            _number(owner, "values", v)
        if any(b1 <= b0 for b0, b1 in zip(boundaries, boundaries[1:])):
            raise ValueError(f"{owner}: `boundaries` must be strictly increasing; received {boundaries}")
        if not boundaries:
            raise ValueError(f"{owner}: `boundaries` must hold at least one step; received []")
        self.boundaries = boundaries
        self.values = values
        self.name = name

    def _spec(self):
        return "piecewise", (len(self.boundaries), *self.boundaries, *self.values)

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class InverseTimeDecay(_BuiltIn):
    """initial_learning_rate / (1 + decay_rate * step / decay_steps) (floor of the ratio with staircase)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name="InverseTimeDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate", initial_learning_rate)
        self.decay_steps = _decay_steps(owner, "decay_steps", decay_steps)
        self.decay_rate = _number(owner, "decay_rate", decay_rate)
        self.staircase = bool(staircase)
        self.name = name

    def _spec(self):
        return "inverse_time", (self.initial_learning_rate, self.decay_steps, self.decay_rate, float(self.staircase))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class PolynomialDecay(_BuiltIn):
    """(initial - end) * (1 - min(step, decay_steps) / decay_steps) ^ power + end; with cycle, decay_steps grows
    to the first multiple of itself at or above step."""

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0, cycle=False,
                 name="PolynomialDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate", initial_learning_rate)
        self.decay_steps = _decay_steps(owner, "decay_steps", decay_steps)
        self.end_learning_rate = _number(owner, "end_learning_rate", end_learning_rate)
        self.power = _number(owner, "power", power)
        self.cycle = bool(cycle)
        self.name = name

    def _spec(self):
        return "polynomial", (self.initial_learning_rate, self.decay_steps, self.end_learning_rate, self.power,
                              float(self.cycle))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "end_learning_rate": self.end_learning_rate, "power": self.power, "cycle": self.cycle,
                "name": self.name}


class CosineDecay(_BuiltIn):
    """Cosine decay from the initial rate (or, with warmup_target, a linear warmup from the initial rate to
    warmup_target over warmup_steps first) to alpha times it over decay_steps (SGDR, Loshchilov & Hutter)."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay", warmup_target=None,
                 warmup_steps=0):
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate", initial_learning_rate)
        self.decay_steps = _decay_steps(owner, "decay_steps", decay_steps)
        self.alpha = _number(owner, "alpha", alpha)
        self.name = name
        self.warmup_target = None if warmup_target is None else _number(owner, "warmup_target", warmup_target)
        self.warmup_steps = _number(owner, "warmup_steps", warmup_steps)
        if warmup_target is not None and not warmup_steps > 0:
            raise ValueError(f"{owner}: a warmup_target needs `warmup_steps` > 0; received "
                             f"warmup_steps={warmup_steps!r}")

    def _spec(self):
        warm = self.warmup_target is not None
        return "cosine", (self.initial_learning_rate, self.decay_steps, self.alpha, float(warm),
                          self.warmup_target if warm else 0.0, self.warmup_steps if warm else 0.0)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(_BuiltIn):
    """Cosine decay with warm restarts (SGDR): the first period lasts first_decay_steps, each next one t_mul
    times longer and starting at m_mul times the previous peak; alpha is the floor as a fraction."""

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0,
                 name="SGDRDecay"):
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate", initial_learning_rate)
        self.first_decay_steps = _decay_steps(owner, "first_decay_steps", first_decay_steps)
        self._t_mul = _number(owner, "t_mul", t_mul, positive=True)
        self._m_mul = _number(owner, "m_mul", m_mul)
        self.alpha = _number(owner, "alpha", alpha)
        self.name = name

    def _spec(self):
        return "cosine_restarts", (self.initial_learning_rate, self.first_decay_steps, self._t_mul, self._m_mul,
                                   self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "first_decay_steps": self.first_decay_steps,
                "t_mul": self._t_mul, "m_mul": self._m_mul, "alpha": self.alpha, "name": self.name}
