"""``History``: records epoch logs; ``fit`` returns it.

Follows K3 ``keras/src/callbacks/history.py``: ``on_train_begin`` resets only
``epoch``, so a History instance reused across ``fit`` calls keeps appending
to ``history`` (``fit`` normally builds a fresh one per call). Values are
stored as Python floats (docs/keras_semantics.md#history).
"""
from fastnn.callbacks.callback import Callback


def _as_float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        # Non-scalar entries (rare; e.g. a custom callback's array) are kept.
        return value


class History(Callback):
    """Callback that records events into a ``History`` object.

    Attributes:
        history: dict mapping each log key (``loss``, ``accuracy``,
            ``val_loss``, ...) to a list with one float per epoch.
        epoch: list of the epoch indices recorded in the current ``fit``.
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(_as_float(value))
        # K3 sets this after every epoch so model.history is the latest state.
        if self.model is not None:
            self.model.history = self
