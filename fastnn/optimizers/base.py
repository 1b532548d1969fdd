"""``Optimizer``: learning rate, step counter, argument checks and the flat update.

Subclasses name their kernel (``kind``), their state buffers (``slot_names``)
and their hyper-parameters (``hyper()``); the update itself is one kernel call
over the model's whole parameter arena (``fastnn._kernels.<kind>_update``),
and the fused training engine runs the same kernel in compiled code.
"""
import numbers
import warnings

import numpy as np

from fastnn.utils.array_utils import aligned_zeros
from fastnn.utils.validation import describe

# Arguments Keras optimizers accept that fastnn does not implement yet. They are
# accepted only at their "off" value: a value that would change training raises.
_UNSUPPORTED_OFF_VALUES = {
    "clipnorm": None, "clipvalue": None, "global_clipnorm": None, "weight_decay": None,
    "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None, "loss_scale_factor": None,
    "gradient_accumulation_steps": None, "decay": 0.0, "jit_compile": True,
}
_warned_lr = []


class Optimizer:
    kind = None
    slot_names = ()

    def __init__(self, learning_rate=0.001, name=None, **kwargs):
        cls = type(self).__name__
        if "lr" in kwargs:
            # tf.keras <= 2.10 honoured `lr`; later versions dropped it with only a log line, so
            # models silently trained at the default rate (tensorflow/tensorflow#58831). Honour it.
            lr = kwargs.pop("lr")
            if not _warned_lr:
                _warned_lr.append(True)
                warnings.warn(f"{cls}: `lr` is a deprecated alias of `learning_rate`; using "
                              f"learning_rate={lr!r}.", UserWarning, stacklevel=3)
            learning_rate = lr
        for key in list(kwargs):
            if key in _UNSUPPORTED_OFF_VALUES:
                value = kwargs.pop(key)
                if value != _UNSUPPORTED_OFF_VALUES[key] and not (key == "decay" and value == 0):
                    raise ValueError(f"{cls}: argument `{key}` is not supported by fastnn yet; received "
                                     f"{key}={value!r}. Remove it (or use a callback to change the learning "
                                     "rate).")
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
        self.name = name or cls.lower()
        self.learning_rate = learning_rate
        self.iterations = 0
        self.slots = None

    @property
    def learning_rate(self):
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
            raise ValueError(f"{type(self).__name__}: `learning_rate` must be a non-negative number; "
                             f"received {describe(value)}")
        self._learning_rate = float(value)

    # Keras 2 spelling, read and written by old callbacks and tutorials.
    lr = learning_rate

    def _check_float(self, name, value, low, high, high_inclusive=False):
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and low <= value and (
            value <= high if high_inclusive else value < high)
        if not ok:
            bracket = "]" if high_inclusive else ")"
            raise ValueError(f"{type(self).__name__}: `{name}` must be a float in [{low}, {high}{bracket}; "
                             f"received {describe(value)}")
        return float(value)

    def _check_bool(self, name, value):
        # bool("no") is True: a string here would switch the option on without a word.
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{type(self).__name__}: `{name}` must be True or False; received {describe(value)}")
        return bool(value)

    def hyper(self):
        """Hyper-parameters the update kernel takes (Keras names)."""
        return {}

    def needed_slots(self):
        """Names of the state buffers this configuration uses."""
        return self.slot_names

    def build(self, size, dtype=np.float32):
        """Allocate zeroed state buffers for ``size`` parameters (idempotent for the same size)."""
        if self.slots is not None and all(s is None or s.shape == (size,) for s in self.slots):
            return
        needed = set(self.needed_slots())
        self.slots = tuple(aligned_zeros(size, dtype) if name in needed else None for name in self.slot_names)

    def apply(self, params, grads):
        """One update of the flat ``params`` from ``grads``; advances ``iterations``."""
        self.build(params.shape[0], params.dtype)
        self.update_step(params, grads)
        self.iterations += 1

    def update_step(self, params, grads):
        raise NotImplementedError(f"{type(self).__name__} must implement update_step")

    def variables(self):
        return [s for s in (self.slots or ()) if s is not None]

    def get_config(self):
        return dict(name=self.name, learning_rate=self.learning_rate, **self.hyper())

    @classmethod
    def from_config(cls, config):
        return cls(**config)
