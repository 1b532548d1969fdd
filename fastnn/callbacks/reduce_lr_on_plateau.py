"""``ReduceLROnPlateau``: multiply the learning rate by ``factor`` when a quantity plateaus.

Keras 3 semantics (K3 ``keras/src/callbacks/reduce_lr_on_plateau.py``): at each
epoch end it first records the learning rate used in that epoch as
``logs["learning_rate"]`` (tf.keras 2.x called it ``lr``; docs/keras_semantics.md#history),
so ``History`` and ``CSVLogger``, which run after user callbacks, see it. Then:
during a cooldown ``wait`` stays 0; an improvement by more than ``min_delta``
resets ``wait``; otherwise, outside a cooldown, ``wait += 1`` and once
``wait >= patience`` the rate becomes ``max(lr * factor, min_lr)`` (unless it
is already at ``min_lr``) and a cooldown of ``cooldown`` epochs starts.

The new rate is written to ``model.optimizer.learning_rate``, which the trainer
reads at every step, so it applies from the next epoch on.

Differences from K3: the best value is reset by ``on_train_begin`` too (K3 3.x
keeps it across ``fit`` calls while resetting ``wait``), ``mode='auto'`` follows
``MonitorCallback``, and unknown keyword arguments raise instead of being
ignored; tf.keras 2.x's ``epsilon`` is honoured as ``min_delta`` with a warning.
"""
import warnings

from fastnn.callbacks.monitor_callback import MonitorCallback, _check_non_negative_int, _check_real
from fastnn.utils.validation import check_kwargs, describe


class ReduceLROnPlateau(MonitorCallback):
    """Reduce the learning rate when a metric has stopped improving.

    Args:
        monitor: quantity to be monitored. Defaults to ``"val_loss"``.
        factor: factor by which the learning rate is reduced,
            ``new_lr = lr * factor``; must be in ``[0, 1)``. Defaults to ``0.1``.
        patience: number of epochs with no improvement after which the
            learning rate is reduced. Defaults to ``10``.
        verbose: ``0`` (quiet) or ``1`` (print a message on each reduction).
        mode: ``"auto"``, ``"min"`` or ``"max"`` (see ``EarlyStopping``).
        min_delta: threshold for measuring the new optimum. Defaults to ``1e-4``.
        cooldown: number of epochs to wait before resuming normal operation
            after the learning rate has been reduced. Defaults to ``0``.
        min_lr: lower bound on the learning rate. Defaults to ``0.0``.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0, **kwargs):
        if "epsilon" in kwargs:
            # tf.keras 2.x spelling (tf_keras/callbacks.py ReduceLROnPlateau); K3 ignores it silently.
            min_delta = kwargs.pop("epsilon")
            warnings.warn("ReduceLROnPlateau: `epsilon` is a deprecated alias of `min_delta`; using "
                          f"min_delta={min_delta!r}.", UserWarning, stacklevel=2)
        check_kwargs("ReduceLROnPlateau", kwargs)
        super().__init__(monitor=monitor, mode=mode, min_delta=min_delta)
        factor = _check_real("ReduceLROnPlateau", "factor", factor)
        if factor >= 1.0 or factor < 0.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0 or < 0. Received "
                             f"factor={describe(factor)}")
        min_lr = _check_real("ReduceLROnPlateau", "min_lr", min_lr)
        if min_lr < 0:
            raise ValueError(f"ReduceLROnPlateau: argument `min_lr` must be a non-negative number; received "
                             f"{describe(min_lr)}.")
        self.factor = factor
        self.min_lr = min_lr
        self.patience = _check_non_negative_int("ReduceLROnPlateau", "patience", patience)
        self.cooldown = _check_non_negative_int("ReduceLROnPlateau", "cooldown", cooldown)
        self.verbose = verbose
        self._reset()

    def _reset(self):
        """Reset the wait and cooldown counters and the best value."""
        self.cooldown_counter = 0
        self.wait = 0
        self.best = None

    def on_train_begin(self, logs=None):
        self._reset()
        self.monitor_op = None
        if self.model is not None:
            self._set_monitor_op()

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        if logs is None:
            logs = {}
        optimizer = self.model.optimizer
        logs["learning_rate"] = float(optimizer.learning_rate)
        current = self._monitor_value(logs, "Learning rate reduction is", end=".")
        if current is None:
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = float(optimizer.learning_rate)
                if old_lr > self.min_lr:
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    optimizer.learning_rate = new_lr
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0
