"""``TerminateOnNaN``: stop training as soon as a batch reports a NaN or infinite loss.

Keras 3 semantics (K3 ``keras/src/callbacks/terminate_on_nan.py``): it checks
``logs["loss"]`` in ``on_batch_end``, prints ``Batch {batch}: Invalid loss,
terminating training`` (fastnn appends the epoch and the optimizer step, which
a long run needs: the batch index restarts every epoch) and sets
``model.stop_training``; the trainer then ends
the epoch (validation and ``on_epoch_end`` still run) and calls
``on_train_end``. ``raise_error=True`` (added in Keras 3.12) raises a
RuntimeError instead, so no later hook runs.

Because it overrides a batch hook, the trainer calls it after every batch
(``CallbackList.needs_batch_hooks``) instead of at chunk boundaries, so the
stop happens at the first bad batch. The loss in the batch logs is the running
mean over the epoch, which stays NaN/inf once one batch was.

Without this callback fit trains on, as Keras does, but warns once, naming the
epoch and the batches (``fastnn.models.trainer``).
"""
import math

from fastnn.callbacks.callback import Callback


class TerminateOnNaN(Callback):
    """Callback that terminates training when a NaN or infinite loss is encountered.

    Args:
        raise_error: if ``False`` (default), stop gracefully by setting
            ``model.stop_training = True`` so every callback's
            ``on_train_end`` runs; if ``True``, raise a ``RuntimeError``.
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = bool(raise_error)
        self._epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(loss)
        if math.isfinite(loss):
            return
        where = self._where()
        if self.raise_error:
            raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}{where}. Loss value: {loss}. "
                               "Terminating training immediately.")
        print(f"Batch {batch}: Invalid loss, terminating training{where}")
        self.model.stop_training = True

    def _where(self):
        parts = [] if self._epoch is None else [f"epoch {self._epoch + 1}"]
        iterations = getattr(getattr(self.model, "optimizer", None), "iterations", None)
        if iterations is not None:
            parts.append(f"optimizer step {int(iterations)}")
        return f" ({', '.join(parts)})" if parts else ""
