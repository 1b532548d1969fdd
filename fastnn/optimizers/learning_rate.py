"""``optimizer.learning_rate`` as Keras 3 exposes it: a variable (``backend.Variable``) that reads as a
number, ``.numpy()``, ``.assign(value)``, and arithmetic/comparisons with numbers; or, with a schedule, the
schedule's value at the current step (assigning to it raises, as Keras does)."""
import numbers
import operator

import numpy as np

from fastnn.utils.validation import describe


def check_rate(owner, value):
    """A learning rate as a float: a finite number >= 0."""
    if isinstance(value, LearningRate):
        value = value.value
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{owner}: `learning_rate` must be a non-negative number or a LearningRateSchedule; "
                         f"received {describe(value)}")
    return float(value)


class LearningRate:
    """The optimizer's learning-rate variable (``name`` 'learning_rate', float32 in Keras; a Python float
    here). ``read_only`` values are a schedule's current rate."""

    __array_priority__ = 1000  # np.float32(1) * lr gives a number, not an object array
    __hash__ = None

    def __init__(self, value, owner="Optimizer", read_only=False):
        self._owner = owner
        self._read_only = read_only
        self.value = check_rate(owner, value)

    name = "learning_rate"
    dtype = "float32"
    shape = ()

    def assign(self, value):
        if self._read_only:
            raise TypeError("This optimizer was created with a `LearningRateSchedule` object as its "
                            "`learning_rate` constructor argument, hence its learning rate is not settable. If you "
                            "need the learning rate to be settable, you should instantiate the optimizer with a "
                            "float `learning_rate` argument.")
        self.value = check_rate(self._owner, value)
        return self

    def numpy(self):
        return np.float32(self.value)

    def __float__(self):
        return self.value

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.value, dtype=dtype)

    def __repr__(self):
        return f"<LearningRate value={self.value!r}>"

    def __format__(self, spec):
        return format(self.value, spec)

    def __round__(self, ndigits=None):
        return round(self.value, ndigits)

    def __bool__(self):
        return bool(self.value)

    def __neg__(self):
        return -self.value

    def __abs__(self):
        return abs(self.value)


def _binary(op, reflected=False):
    def method(self, other):
        if isinstance(other, LearningRate):
            other = other.value
        if not isinstance(other, (numbers.Number, np.generic)):
            return NotImplemented
        return op(other, self.value) if reflected else op(self.value, other)
    return method


for _name, _op in (("add", operator.add), ("sub", operator.sub), ("mul", operator.mul), ("truediv", operator.truediv),
                   ("floordiv", operator.floordiv), ("pow", operator.pow)):
    setattr(LearningRate, f"__{_name}__", _binary(_op))
    setattr(LearningRate, f"__r{_name}__", _binary(_op, reflected=True))
for _name in ("eq", "ne", "lt", "le", "gt", "ge"):
    setattr(LearningRate, f"__{_name}__", _binary(getattr(operator, _name)))
numbers.Real.register(LearningRate)  # accepted wherever a number is (callbacks, argument checks)
