"""Optimizers with Keras 3 names, defaults and update rules."""
from fastnn.optimizers.adadelta import Adadelta
from fastnn.optimizers.adam import Adam
from fastnn.optimizers.base import Optimizer
from fastnn.optimizers.rmsprop import RMSprop
from fastnn.optimizers.sgd import SGD
from fastnn.utils.validation import describe, unknown_identifier

_BY_NAME = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adadelta": Adadelta}


def get(identifier):
    """Resolve 'sgd' / 'rmsprop' / 'adam' / 'adadelta', a class, or an instance."""
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


__all__ = ["Adadelta", "Adam", "Optimizer", "RMSprop", "SGD", "get"]
