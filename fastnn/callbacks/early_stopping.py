"""``EarlyStopping``: stop ``fit`` when a monitored quantity stops improving.

Keras 3 semantics (K3 ``keras/src/callbacks/early_stopping.py``;
docs/keras_semantics.md#early-stopping). At each epoch end, from
``start_from_epoch`` on: ``wait += 1``; an improvement (beating the best value
by more than ``min_delta``) records the best value, epoch and weights, and
resets ``wait`` only if it also beats ``baseline``; otherwise training stops
once ``wait >= patience`` (never after the first epoch).

``restore_best_weights`` restores the best epoch's weights in ``on_train_end``
**whenever** it is set, also when the callback did not trigger (K3 and tf.keras
>= 2.16). tf.keras <= 2.15 restored only when EarlyStopping itself stopped
training, which surprised many users (keras-team/keras#12511,
tensorflow/tensorflow#35634; docs/keras_semantics.md#restore-best-weights).
"""
from fastnn.callbacks.monitor_callback import MonitorCallback, _check_non_negative_int


class EarlyStopping(MonitorCallback):
    """Stop training when a monitored metric has stopped improving.

    Args:
        monitor: quantity to be monitored. Defaults to ``"val_loss"``.
        min_delta: minimum change in the monitored quantity to qualify as an
            improvement; its sign is ignored. Defaults to ``0``.
        patience: number of epochs with no improvement after which training
            is stopped. Defaults to ``0``.
        verbose: ``0`` (silent) or ``1`` (print a message when the callback
            stops training or restores weights). Defaults to ``0``.
        mode: ``"auto"``, ``"min"`` or ``"max"``. ``"auto"`` minimises
            ``loss``/``val_loss``, uses the compiled metric's direction
            otherwise, and raises if it cannot tell. Defaults to ``"auto"``.
        baseline: value the quantity has to beat for ``wait`` to reset; if no
            epoch beats it, training stops after ``patience`` epochs.
            Defaults to ``None``.
        restore_best_weights: restore the weights of the best epoch at the end
            of training (whether or not this callback stopped it). Defaults
            to ``False``.
        start_from_epoch: number of warm-up epochs during which nothing is
            monitored. Defaults to ``0``.

    Attributes:
        stopped_epoch: 0-based epoch at which this callback stopped training
            (``0`` if it did not).
        best, best_epoch, best_weights, wait: the tracking state, reset by
            ``on_train_begin`` so an instance can be reused.
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor=monitor, mode=mode, baseline=baseline, min_delta=min_delta)
        self.patience = _check_non_negative_int("EarlyStopping", "patience", patience)
        self.start_from_epoch = _check_non_negative_int("EarlyStopping", "start_from_epoch", start_from_epoch)
        self.verbose = verbose
        self.restore_best_weights = bool(restore_best_weights)
        self._reset()

    def _reset(self):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_train_begin(self, logs=None):
        # State resets so an instance can be reused across fit calls.
        self._reset()
        self.monitor_op = None
        if self.model is not None:
            self._set_monitor_op()

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # Nothing saved yet (e.g. the first value was NaN): the current weights are the best we have.
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch

        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # Restart the count only if this also beats the baseline.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return

        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs):
        """The monitored value in ``logs`` (a float), or ``None`` after a warning (K3 name)."""
        return self._monitor_value(logs, "Early stopping")
