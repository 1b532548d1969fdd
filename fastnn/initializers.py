"""Weight initializers with Keras 3's names, defaults and formulas.

VarianceScaling is the core (K3 ``initializers/random_initializers.py``):
scale / n with n = fan_in, fan_out or their mean; "uniform" draws from
U(-L, L), L = sqrt(3 scale / n); "truncated_normal" draws from a normal
truncated at two standard deviations with stddev = sqrt(scale / n) /
0.87962566103423978 (the stddev of a unit normal truncated to [-2, 2]).
Randomness comes from fastnn's global generator unless ``seed`` is given.
"""
import numbers

import numpy as np

from fastnn.utils.rng_utils import make_rng
from fastnn.utils.validation import describe, unknown_identifier


class Initializer:
    """Base class: ``initializer(shape, dtype)`` returns a new array."""

    def __call__(self, shape, dtype="float32"):
        raise NotImplementedError(f"{type(self).__name__} must implement __call__")

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Zeros(Initializer):
    def __call__(self, shape, dtype="float32"):
        return np.zeros(shape, dtype=dtype)


class Ones(Initializer):
    def __call__(self, shape, dtype="float32"):
        return np.ones(shape, dtype=dtype)


class Constant(Initializer):
    def __init__(self, value=0.0):
        if not isinstance(value, numbers.Real):
            raise ValueError(f"Constant: argument `value` must be a number; received {describe(value)}")
        self.value = float(value)

    def __call__(self, shape, dtype="float32"):
        return np.full(shape, self.value, dtype=dtype)

    def get_config(self):
        return {"value": self.value}


def _truncated_normal(rng, shape, stddev):
    """Normal(0, stddev) truncated to [-2 stddev, 2 stddev] by redrawing outliers."""
    x = rng.standard_normal(shape)
    bad = np.abs(x) > 2
    while bad.any():
        x[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(x) > 2
    return x * stddev


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = float(mean), float(stddev), seed

    def __call__(self, shape, dtype="float32"):
        rng = make_rng(self.seed)
        return (self.mean + self.stddev * rng.standard_normal(shape)).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(Initializer):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval, self.maxval, self.seed = float(minval), float(maxval), seed

    def __call__(self, shape, dtype="float32"):
        return make_rng(self.seed).uniform(self.minval, self.maxval, shape).astype(dtype)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


def _fans(shape):
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


class VarianceScaling(Initializer):
    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        if not isinstance(scale, numbers.Real) or scale <= 0:
            raise ValueError(f"VarianceScaling: argument `scale` must be a positive float; received {describe(scale)}")
        if mode not in self._MODES:
            raise ValueError(f"VarianceScaling: argument `mode` must be one of {self._MODES}; received {mode!r}")
        if distribution == "normal":
            distribution = "truncated_normal"
        if distribution not in self._DISTRIBUTIONS:
            raise ValueError(f"VarianceScaling: argument `distribution` must be one of {self._DISTRIBUTIONS}; "
                             f"received {distribution!r}")
        self.scale, self.mode, self.distribution, self.seed = float(scale), mode, distribution, seed

    def __call__(self, shape, dtype="float32"):
        fan_in, fan_out = _fans(tuple(shape))
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        scale = self.scale / max(1.0, n)
        rng = make_rng(self.seed)
        if self.distribution == "uniform":
            limit = np.sqrt(3.0 * scale)
            values = rng.uniform(-limit, limit, shape)
        elif self.distribution == "truncated_normal":
            values = _truncated_normal(rng, shape, np.sqrt(scale) / 0.87962566103423978)
        else:
            values = rng.standard_normal(shape) * np.sqrt(scale)
        return values.astype(dtype)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution, "seed": self.seed}


def _variance_scaling_class(name, scale, mode, distribution, doc):
    def __init__(self, seed=None):
        VarianceScaling.__init__(self, scale=scale, mode=mode, distribution=distribution, seed=seed)

    def get_config(self):
        return {"seed": self.seed}

    return type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config, "__doc__": doc})


GlorotUniform = _variance_scaling_class("GlorotUniform", 1.0, "fan_avg", "uniform",
                                        "U(-L, L) with L = sqrt(6 / (fan_in + fan_out)).")
GlorotNormal = _variance_scaling_class("GlorotNormal", 1.0, "fan_avg", "truncated_normal",
                                       "Truncated normal, stddev sqrt(2 / (fan_in + fan_out)).")
HeNormal = _variance_scaling_class("HeNormal", 2.0, "fan_in", "truncated_normal",
                                   "Truncated normal, stddev sqrt(2 / fan_in).")
HeUniform = _variance_scaling_class("HeUniform", 2.0, "fan_in", "uniform", "U(-L, L), L = sqrt(6 / fan_in).")
LecunNormal = _variance_scaling_class("LecunNormal", 1.0, "fan_in", "truncated_normal",
                                      "Truncated normal, stddev sqrt(1 / fan_in).")
LecunUniform = _variance_scaling_class("LecunUniform", 1.0, "fan_in", "uniform", "U(-L, L), L = sqrt(3 / fan_in).")

_BY_NAME = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_normal": RandomNormal,
    "random_uniform": RandomUniform, "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_normal": HeNormal,
    "he_uniform": HeUniform, "lecun_normal": LecunNormal, "lecun_uniform": LecunUniform,
}
# Keras also accepts the class names as strings ("GlorotUniform").
_BY_NAME.update({cls.__name__: cls for cls in list(_BY_NAME.values())})


def get(identifier):
    """Resolve a Keras initializer identifier (string, class, instance) to an instance."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier) or _BY_NAME.get(identifier.lower())
        if cls is None:
            raise unknown_identifier("initializer", identifier, [k for k in _BY_NAME if k.islower()])
        return cls()
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    raise ValueError(f"Could not interpret initializer identifier: {describe(identifier)}")


def serialize(initializer):
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}
