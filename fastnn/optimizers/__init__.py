"""Optimizers with Keras 3 names, defaults and update rules, and their learning-rate ``schedules``."""
from fastnn.optimizers import schedules
from fastnn.optimizers.adadelta import Adadelta
from fastnn.optimizers.adagrad import Adagrad
from fastnn.optimizers.adam import Adam
from fastnn.optimizers.adamax import Adamax
from fastnn.optimizers.adamw import AdamW
from fastnn.optimizers.base import Optimizer
from fastnn.optimizers.lion import Lion
from fastnn.optimizers.nadam import Nadam
from fastnn.optimizers.rmsprop import RMSprop
from fastnn.optimizers.sgd import SGD
from fastnn.utils.validation import describe, unknown_identifier

_BY_NAME = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adadelta": Adadelta, "adamw": AdamW, "adagrad": Adagrad,
            "adamax": Adamax, "nadam": Nadam, "lion": Lion}


def get(identifier):
    """Resolve an optimizer name ('sgd', 'adam', 'adamw', 'nadam', ...), a class, or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise unknown_identifier("optimizer", identifier, _BY_NAME)
        return cls()
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    raise ValueError(f"Could not interpret optimizer identifier: {describe(identifier)}. Use one of "
                     f"{sorted(_BY_NAME)} or a fastnn.optimizers.Optimizer instance.")


__all__ = ["Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "Lion", "Nadam", "Optimizer", "RMSprop", "SGD", "get",
           "schedules"]
