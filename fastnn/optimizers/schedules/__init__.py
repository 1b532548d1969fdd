"""``fastnn.optimizers.schedules``: Keras 3's learning-rate schedules, evaluated inside the engine's loop."""
from fastnn.optimizers.schedules.learning_rate_schedule import (CosineDecay, CosineDecayRestarts, ExponentialDecay,
                                                                InverseTimeDecay, LearningRateSchedule,
                                                                PiecewiseConstantDecay, PolynomialDecay)
from fastnn.utils.validation import describe

_BUILT_IN = {cls.__name__: cls for cls in (CosineDecay, CosineDecayRestarts, ExponentialDecay, InverseTimeDecay,
                                           PiecewiseConstantDecay, PolynomialDecay)}


def serialize(learning_rate_schedule):
    """A JSON-compatible dict of a schedule (Keras' layout: module, class_name, config, registered_name)."""
    if not isinstance(learning_rate_schedule, LearningRateSchedule):
        raise ValueError(f"Could not serialize {describe(learning_rate_schedule)}: expected a LearningRateSchedule.")
    cls = type(learning_rate_schedule)
    builtin = _BUILT_IN.get(cls.__name__) is cls
    return {"module": "keras.optimizers.schedules" if builtin else cls.__module__, "class_name": cls.__name__,
            "config": learning_rate_schedule.get_config(),
            "registered_name": None if builtin else cls.__name__}


def deserialize(config, custom_objects=None):
    """The schedule of a ``serialize`` dict; a schedule of your own needs ``custom_objects={name: class}``."""
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        raise ValueError(f"Could not deserialize a learning rate schedule from {describe(config)}: expected a dict "
                         "with 'class_name' and 'config'.")
    name = config["class_name"]
    cls = (custom_objects or {}).get(name) or _BUILT_IN.get(name)
    if cls is None:
        raise ValueError(f"Unknown learning rate schedule: '{name}'. Pass it in `custom_objects` "
                         f"(known: {sorted(_BUILT_IN)}).")
    return cls.from_config(dict(config["config"]))


__all__ = ["CosineDecay", "CosineDecayRestarts", "ExponentialDecay", "InverseTimeDecay", "LearningRateSchedule",
           "PiecewiseConstantDecay", "PolynomialDecay", "deserialize", "serialize"]
