"""``LearningRateScheduler``: set the learning rate at the start of each epoch from a function.

Keras 3 semantics (K3 ``keras/src/callbacks/learning_rate_scheduler.py``):
``on_epoch_begin`` calls ``schedule(epoch, lr)`` with the 0-based epoch index
and the current rate as a Python float, checks the result is a float and
writes it to ``model.optimizer.learning_rate``; ``on_epoch_end`` logs the rate
as ``logs["learning_rate"]``. The Keras 2.0 one-argument form
``schedule(epoch)`` is still accepted.

Difference from K3: K3 calls ``schedule(epoch, lr)`` and retries
``schedule(epoch)`` on *any* TypeError, so a TypeError raised inside a
two-argument schedule turned into a confusing "missing argument" error. fastnn
picks the form from the function's signature and lets the user's error through.
"""
import inspect

import numpy as np

from fastnn.callbacks.callback import Callback
from fastnn.utils.validation import describe


def _takes_one_argument(schedule):
    """True if ``schedule`` cannot be called with two positional arguments (the Keras 2.0 form)."""
    try:
        signature = inspect.signature(schedule)
    except (TypeError, ValueError):  # some builtins and C callables have no signature
        return False
    for n_args, args in ((2, (0, 0.0)), (1, (0,))):
        try:
            signature.bind(*args)
        except TypeError:
            continue
        return n_args == 1
    raise TypeError(f"LearningRateScheduler: argument `schedule` must accept `(epoch, lr)`; received a "
                    f"function with signature {signature}.")


def _as_float(value):
    """``value`` as a Python float if it is a real floating-point scalar, else ``None``.

    K3 accepts ``float``, ``np.float32`` and ``np.float64``; fastnn also takes
    any NumPy floating scalar or 0-d floating array (``lr * np.exp(-0.1)``).
    Integers are rejected as in K3, since ``return 1`` usually means ``1e-1``
    or ``1e-3`` was intended.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (float, np.floating)):
        return float(value)
    return None


class LearningRateScheduler(Callback):
    """Learning rate scheduler.

    Args:
        schedule: a function ``schedule(epoch, lr) -> float`` taking the
            0-based epoch index and the current learning rate (a float), and
            returning the learning rate to use for that epoch.
        verbose: ``0`` (quiet) or ``1`` (print the rate at each epoch).
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: argument `schedule` must be a function "
                            f"`schedule(epoch, lr) -> float`; received {describe(schedule)}.")
        self.schedule = schedule
        self.verbose = verbose
        self._one_argument = _takes_one_argument(schedule)

    def _optimizer(self):
        optimizer = getattr(self.model, "optimizer", None)
        if not hasattr(optimizer, "learning_rate"):
            raise ValueError('Optimizer must have a "learning_rate" attribute.')
        return optimizer

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self._optimizer()
        if self._one_argument:
            value = self.schedule(epoch)
        else:
            value = self.schedule(epoch, float(optimizer.learning_rate))
        learning_rate = _as_float(value)
        if learning_rate is None:
            raise ValueError(f"The output of the `schedule` function should be a float. Got: {value!r} (of "
                             f"type {type(value).__name__})")
        optimizer.learning_rate = learning_rate
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {learning_rate}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self._optimizer().learning_rate)
