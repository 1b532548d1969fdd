"""``CallbackList``: one object that forwards every hook to a list of callbacks.

Follows K3 ``keras/src/callbacks/callback_list.py``: the user's callbacks come
first, then a ``History`` (if ``add_history`` and none was given), then a
``ProgbarLogger`` (if ``add_progbar`` and none was given), so that values a user
callback adds to the epoch logs (e.g. a learning rate) are recorded and shown.
Every hook receives the same ``logs`` dict, in list order.

Not copied from K3: the thread pool that dispatches batch-end hooks
asynchronously. fastnn instead skips per-batch hooks entirely when no callback
needs them (``needs_batch_hooks``) and runs many steps per call.
"""
import numbers

import numpy as np

from fastnn.callbacks.callback import Callback
from fastnn.callbacks.history import History
from fastnn.callbacks.progbar_logger import ProgbarLogger
from fastnn.utils.validation import describe

_TRAIN_BATCH_HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")

# Implementations that are safe to call only at chunk boundaries: Callback's
# no-ops and ProgbarLogger's bar update (History has no batch hooks).
_CHUNK_SAFE = {
    name: {Callback.__dict__[name], ProgbarLogger.__dict__.get(name)} for name in _TRAIN_BATCH_HOOKS
}


def _overrides_train_batch_hooks(callback):
    if isinstance(callback, CallbackList):
        return callback.needs_batch_hooks
    for name in _TRAIN_BATCH_HOOKS:
        # getattr on the instance also catches hooks assigned per instance
        # (a LambdaCallback-style `self.on_batch_end = fn`).
        hook = getattr(callback, name)
        if getattr(hook, "__func__", hook) not in _CHUNK_SAFE[name]:
            return True
    return False


def _pythonify_logs(logs):
    """Copy of ``logs`` with numeric scalars as Python floats (K3 does this for
    batch-end logs); key order is kept so the progress bar shows loss first."""
    result = {}
    for key, value in logs.items():
        scalar = isinstance(value, (numbers.Real, np.generic))
        if scalar or (isinstance(value, np.ndarray) and value.ndim == 0):
            try:
                value = float(value)
            except (TypeError, ValueError):
                pass
        result[key] = value
    return result


class CallbackList(Callback):
    """Container that calls a list of callbacks through a single endpoint.

    Args:
        callbacks: a list (or tuple) of ``Callback`` instances, a single
            ``Callback``, or ``None``.
        add_history: append a ``History`` unless one is already present.
        add_progbar: append a ``ProgbarLogger`` unless one is already present.
        model: the model the callbacks act on (``set_model`` on each).
        **params: passed to every callback through ``set_params``.
    """

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None, **params):
        super().__init__()
        self.callbacks = _as_callback_list(callbacks)
        self._history = None
        self._progbar = None
        for cb in self.callbacks:
            if isinstance(cb, ProgbarLogger):
                self._progbar = cb
            elif isinstance(cb, History):
                self._history = cb
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)
        self.set_model(model)
        self.set_params(params)

    @property
    def history(self):
        """The ``History`` callback in the list, or ``None``."""
        return self._history

    @property
    def progbar(self):
        """The ``ProgbarLogger`` callback in the list, or ``None``."""
        return self._progbar

    @property
    def needs_batch_hooks(self):
        """True iff some callback (other than the built-in History and
        ProgbarLogger) overrides a training batch hook, so the trainer must
        call ``on_train_batch_begin/end`` for every batch."""
        return any(_overrides_train_batch_hooks(cb) for cb in self.callbacks)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self):
        return len(self.callbacks)

    def set_model(self, model):
        if model is None:
            return
        super().set_model(model)
        if self._history is not None:
            model.history = self._history
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params):
        self.params = params
        if params:
            for cb in self.callbacks:
                cb.set_params(params)

    # -- epoch / train ------------------------------------------------------
    def on_train_begin(self, logs=None):
        logs = logs or {}
        for cb in self.callbacks:
            cb.on_train_begin(logs)

    def on_train_end(self, logs=None):
        logs = logs or {}
        for cb in self.callbacks:
            cb.on_train_end(logs)

    def on_epoch_begin(self, epoch, logs=None):
        logs = logs or {}
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    # -- batches ------------------------------------------------------------
    def on_batch_begin(self, batch, logs=None):
        logs = logs or {}
        for cb in self.callbacks:
            cb.on_batch_begin(batch, logs=logs)

    def on_batch_end(self, batch, logs=None):
        logs = _pythonify_logs(logs or {})
        for cb in self.callbacks:
            cb.on_batch_end(batch, logs=logs)

    def on_train_batch_begin(self, batch, logs=None):
        logs = logs or {}
        for cb in self.callbacks:
            cb.on_train_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        logs = _pythonify_logs(logs or {})
        for cb in self.callbacks:
            cb.on_train_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        logs = logs or {}
        for cb in self.callbacks:
            cb.on_test_batch_begin(batch, logs=logs)

    def on_test_batch_end(self, batch, logs=None):
        logs = _pythonify_logs(logs or {})
        for cb in self.callbacks:
            cb.on_test_batch_end(batch, logs=logs)

    def on_predict_batch_begin(self, batch, logs=None):
        logs = logs or {}
        for cb in self.callbacks:
            cb.on_predict_batch_begin(batch, logs=logs)

    def on_predict_batch_end(self, batch, logs=None):
        # Predict logs carry output arrays: passed through untouched.
        logs = logs or {}
        for cb in self.callbacks:
            cb.on_predict_batch_end(batch, logs=logs)

    # -- test / predict -----------------------------------------------------
    def on_test_begin(self, logs=None):
        logs = logs or {}
        for cb in self.callbacks:
            cb.on_test_begin(logs)

    def on_test_end(self, logs=None):
        logs = logs or {}
        for cb in self.callbacks:
            cb.on_test_end(logs)

    def on_predict_begin(self, logs=None):
        logs = logs or {}
        for cb in self.callbacks:
            cb.on_predict_begin(logs)

    def on_predict_end(self, logs=None):
        logs = logs or {}
        for cb in self.callbacks:
            cb.on_predict_end(logs)


def _as_callback_list(callbacks):
    """Validate the ``callbacks`` argument and return a new list."""
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        return [callbacks]
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(
            "Argument `callbacks` must be a list of `fastnn.callbacks.Callback` instances, a single "
            f"Callback, or None; received {describe(callbacks)}."
        )
    for i, cb in enumerate(callbacks):
        if not isinstance(cb, Callback):
            hint = " Did you pass the class instead of an instance?" if isinstance(cb, type) else ""
            raise TypeError(
                f"Argument `callbacks` must contain only `fastnn.callbacks.Callback` instances; "
                f"`callbacks[{i}]` is {describe(cb)}.{hint}"
            )
    return list(callbacks)
