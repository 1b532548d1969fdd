"""``Optimizer``: learning rate, step counter, argument checks and the flat update.

Subclasses name their kernel (``kind``), their state buffers (``slot_names``)
and their hyper-parameters (``hyper()``); the update itself is one kernel call
over the model's whole parameter arena (``fastnn._kernels.<kind>_update``),
and the fused training engine runs the same kernel in compiled code.
"""
import numbers
import re
import warnings
import weakref

import numpy as np

from fastnn.optimizers import schedules as _schedules
from fastnn.optimizers.learning_rate import LearningRate, check_rate
from fastnn.optimizers.schedules import LearningRateSchedule

from fastnn.utils.array_utils import aligned_zeros
from fastnn.utils.validation import describe

# Arguments Keras optimizers accept that fastnn does not implement yet. They are
# accepted only at their "off" value: a value that would change training raises.
_UNSUPPORTED_OFF_VALUES = {
    "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None, "loss_scale_factor": None,
    "decay": 0.0, "jit_compile": True,
}
_warned_lr = []


class Optimizer:
    """Keras 3's base optimizer arguments (keras/src/optimizers/base_optimizer.py): ``weight_decay`` (decoupled:
    ``w -= w * weight_decay * lr`` before each update, skipping ``exclude_from_weight_decay``), ``clipnorm``
    (each weight's gradient), ``clipvalue``, ``global_clipnorm`` (all gradients together; one of the three),
    ``gradient_accumulation_steps`` (update every n steps with the mean gradient). ``learning_rate`` is a
    number or a ``schedules.LearningRateSchedule``."""
    kind = None
    slot_names = ()
    slot_initial = {}  # slot name -> its starting value (Adagrad's accumulator), else zeros

    def __init__(self, learning_rate=0.001, name=None, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, gradient_accumulation_steps=None, **kwargs):
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
        self.weight_decay = self._check_optional("weight_decay", weight_decay)
        self.clipnorm = self._check_optional("clipnorm", clipnorm)
        self.clipvalue = self._check_optional("clipvalue", clipvalue)
        self.global_clipnorm = self._check_optional("global_clipnorm", global_clipnorm)
        if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(f"Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. Received: "
                             f"clipnorm={clipnorm}, clipvalue={clipvalue}, global_clipnorm={global_clipnorm}")
        if gradient_accumulation_steps is not None and (
                isinstance(gradient_accumulation_steps, bool)
                or not isinstance(gradient_accumulation_steps, numbers.Integral) or gradient_accumulation_steps < 2):
            raise ValueError("`gradient_accumulation_steps` must be an integer >= 2. Received: "
                             f"gradient_accumulation_steps={gradient_accumulation_steps!r}")
        self.gradient_accumulation_steps = gradient_accumulation_steps
        if gradient_accumulation_steps:
            self.slot_names = type(self).slot_names + ("gradient_accumulator",)
        self._exclude_names = ()
        self._exclude_ids = set()
        self._learning_rate = None
        self.learning_rate = learning_rate
        self._iterations = 0
        self.slots = None
        self._owner = None  # weakref of the model whose weights the slots belong to

    # ------------------------------------------------------------------ learning rate and step count
    @property
    def learning_rate(self):
        """The learning-rate variable (number-like, ``.assign``, ``.numpy()``), or with a schedule its value at
        the current step (Keras 3)."""
        if isinstance(self._learning_rate, LearningRate):
            return self._learning_rate
        return LearningRate(self.current_learning_rate(), type(self).__name__, read_only=True)

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, LearningRateSchedule):
            self._learning_rate = value
            return
        if callable(value) and not isinstance(value, LearningRate):
            raise ValueError(f"{type(self).__name__}: `learning_rate` must be a number or a LearningRateSchedule "
                             f"(a schedule's __call__ takes the step); received {describe(value)}")
        if isinstance(self._learning_rate, LearningRateSchedule):
            LearningRate(0.0, read_only=True).assign(value)  # raises Keras' TypeError
        if isinstance(self._learning_rate, LearningRate):
            self._learning_rate.assign(value)
        else:
            self._learning_rate = LearningRate(value, type(self).__name__)

    # Keras 2 spelling, read and written by old callbacks and tutorials.
    lr = learning_rate

    @property
    def schedule(self):
        """The LearningRateSchedule, or None for a fixed rate."""
        return self._learning_rate if isinstance(self._learning_rate, LearningRateSchedule) else None

    def current_learning_rate(self, step=None):
        """The rate of optimizer step ``step`` (default: the next one) as a float."""
        if isinstance(self._learning_rate, LearningRate):
            return self._learning_rate.value
        return check_rate(f"{type(self._learning_rate).__name__}.__call__",
                          self._learning_rate(self._iterations if step is None else step))

    @property
    def iterations(self):
        """Updates applied (Keras 3: with gradient accumulation, steps // gradient_accumulation_steps)."""
        if self.gradient_accumulation_steps:
            return self._iterations // self.gradient_accumulation_steps
        return self._iterations

    @iterations.setter
    def iterations(self, value):
        self._iterations = int(value) * (self.gradient_accumulation_steps or 1)

    # ------------------------------------------------------------------ weight decay
    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Exclude weights from weight decay: those in ``var_list``, and those whose name contains one of
        ``var_names`` (Keras: ``var_names=['bias']`` spares every bias). Call before the first fit."""
        if self.slots is not None:
            raise ValueError("`exclude_from_weight_decay()` can only be configured before the optimizer is built.")
        self._exclude_ids = {id(v) for v in (var_list or ())}
        self._exclude_names = tuple(var_names or ())

    def _uses_weight_decay(self, weight):
        return id(weight) not in self._exclude_ids and not any(
            re.search(pattern, weight.name) for pattern in self._exclude_names)

    def engine_hyper(self, model=None):
        """The plan's hyper-parameters: this optimizer's, and Keras' base ones (0 for off); ``model`` gives the
        arena offsets of the weights weight decay skips."""
        excluded = ()
        if model is not None and self.weight_decay:
            excluded = tuple(model.weight_offset(w) for w in model.weights
                             if w.trainable and not self._uses_weight_decay(w))
        schedule = self.schedule
        return dict(self.hyper(), weight_decay=self.weight_decay or 0.0, clipnorm=self.clipnorm or 0.0,
                    clipvalue=self.clipvalue or 0.0, global_clipnorm=self.global_clipnorm or 0.0,
                    gradient_accumulation_steps=self.gradient_accumulation_steps or 0, decay_excluded=excluded,
                    schedule=None if schedule is None else schedule.engine_spec())

    def _check_float(self, name, value, low, high, high_inclusive=False):
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and low <= value and (
            value <= high if high_inclusive else value < high)
        if not ok:
            bracket = "]" if high_inclusive else ")"
            raise ValueError(f"{type(self).__name__}: `{name}` must be a float in [{low}, {high}{bracket}; "
                             f"received {describe(value)}")
        return float(value)

    def _check_optional(self, name, value):
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
            raise ValueError(f"{type(self).__name__}: `{name}` must be None or a non-negative number; received "
                             f"{describe(value)}")
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
        acc = ("gradient_accumulator",) if self.gradient_accumulation_steps else ()
        return tuple(self._own_slots()) + acc

    def _own_slots(self):
        return type(self).slot_names

    def build(self, size, dtype=np.float32):
        """Allocate the state buffers for ``size`` parameters (idempotent for the same size): zeros, or the
        slot's starting value."""
        if self.slots is not None and all(s is None or s.shape == (size,) for s in self.slots):
            return
        needed = set(self.needed_slots())
        slots = []
        for name in self.slot_names:
            slot = aligned_zeros(size, dtype) if name in needed else None
            if slot is not None and self.slot_initial.get(name):
                slot[...] = self.slot_initial[name]
            slots.append(slot)
        self.slots = tuple(slots)

    def engine_slots(self):
        """The slots in the engine's order: this optimizer's three (None where unused), then the accumulated
        gradient."""
        slots = tuple(self.slots or ())
        own = len(type(self).slot_names)
        acc = slots[own] if self.gradient_accumulation_steps and len(slots) > own else None
        return (slots[:own] + (None,) * 3)[:3] + (acc,)

    def claim(self, model, where="compile"):
        """Tie this optimizer's state to ``model``; one already tied to another live model raises (Keras 3
        refuses variables it was not built with)."""
        owner = None if self._owner is None else self._owner()
        if owner is not None and owner is not model:
            raise ValueError(f"This {type(self).__name__} optimizer ('{self.name}') already holds the state (moments "
                             f"and step count) of model '{getattr(owner, 'name', '?')}'; it cannot also train model "
                             f"'{getattr(model, 'name', '?')}' ({where}). An optimizer can only be used with the "
                             "weights it was built with: create a new optimizer instance for each model, e.g. "
                             f"{type(self).__name__}.from_config(optimizer.get_config()).")
        if where != "compile" or owner is not None:
            self._owner = weakref.ref(model)

    def apply(self, params, grads):
        """One update of the flat ``params`` from ``grads`` (treated as one weight: clipnorm is global here);
        advances ``iterations``. Keras 3's order: accumulation, clipping, weight decay, update."""
        self.build(params.shape[0], params.dtype)
        steps = self.gradient_accumulation_steps
        if steps:
            acc = self.slots[len(type(self).slot_names)]
            if (self._iterations + 1) % steps:
                acc += grads
                self._iterations += 1
                return
            grads = (grads + acc) / params.dtype.type(steps)
            acc[...] = 0
        t = params.dtype.type
        if self.clipvalue:
            grads = np.clip(grads, -t(self.clipvalue), t(self.clipvalue))
        clip = self.clipnorm or self.global_clipnorm
        if clip:
            norm = float(np.sqrt(np.sum(np.square(grads, dtype=np.float64))))
            if norm > clip:
                grads = grads * t(clip / norm)
        lr = self.current_learning_rate()
        if self.weight_decay:
            params -= params * t(self.weight_decay) * t(lr)
        self.update_step(params, grads, lr)
        self._iterations += 1

    def update_step(self, params, grads, learning_rate):
        raise NotImplementedError(f"{type(self).__name__} must implement update_step")

    def variables(self):
        return [s for s in (self.slots or ()) if s is not None]

    def get_config(self):
        schedule = self.schedule
        lr = float(self._learning_rate.value) if schedule is None else _schedules.serialize(schedule)
        return dict(name=self.name, learning_rate=lr, **self.hyper(), weight_decay=self.weight_decay,
                    clipnorm=self.clipnorm, global_clipnorm=self.global_clipnorm, clipvalue=self.clipvalue,
                    use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                    gradient_accumulation_steps=self.gradient_accumulation_steps)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = _schedules.deserialize(config["learning_rate"], custom_objects)
        return cls(**config)
