"""``MonitorCallback``: shared "is this epoch's value an improvement?" logic.

Base of ``EarlyStopping`` and ``ReduceLROnPlateau`` (K3 ``keras/src/callbacks/
monitor_callback.py``). It owns ``monitor``, ``mode`` and ``min_delta`` and
resolves ``mode='auto'`` to a direction:

1. ``loss`` / ``val_loss`` are minimised;
2. a compiled metric whose name matches (after dropping ``val_``) gives its
   ``direction`` attribute (``'up'``: maximise; K3 reads ``_direction``);
3. otherwise fastnn's own rules, so the callback also works before a metric
   exists or with a fake model: a built-in metric name (``mae``, ``mse``, ...)
   gives that metric class's direction, and a name ending in ``acc``,
   ``accuracy`` or ``auc`` is maximised (the tf.keras 2.x rule);
4. anything else raises a ValueError asking for ``mode`` (K3). tf.keras 2.x
   silently minimised it instead, which made EarlyStopping on a custom score
   stop at the first improvement.

Differences from K3, on purpose:

* the direction is resolved in ``on_train_begin`` (fastnn resolves metrics
  before callbacks start), so a bad ``monitor`` fails before the first epoch
  instead of after it; it is resolved lazily if ``on_train_begin`` never ran;
* ``min_delta`` stays non-negative and the sign is applied per comparison
  (K3 negates the attribute in place, so setting up twice flipped it back);
* a NaN value is never an improvement (K3 accepts a first NaN as the best
  value, after which nothing compares greater or smaller and no later epoch
  can improve).
"""
import difflib
import math
import numbers
import warnings

import numpy as np

from fastnn import metrics as metrics_module
from fastnn.callbacks.callback import Callback
from fastnn.utils.validation import describe

_MODES = ("auto", "min", "max")
# tf.keras 2.x ``EarlyStopping._set_monitor_op``: names maximised in 'auto' mode.
_MAX_SUFFIXES = ("acc", "accuracy", "auc")


def _check_non_negative_int(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(
            f"{owner}: argument `{name}` must be a non-negative integer; received {describe(value)}.")
    return int(value)


def _check_real(owner, name, value, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{owner}: argument `{name}` must be a finite number; received {describe(value)}.")
    return float(value)


def did_you_mean(monitor, keys):
    """`` Did you mean 'val_accuracy'?`` (or: there is no validation data) for a monitored name missing
    from the logs, or ``''``.

    Keras 3 only lists the available keys; the usual cause is tf.keras 1.x/2.x's ``'val_acc'`` where the
    logs say ``'val_accuracy'`` (the key is the string given to ``compile(metrics=...)``), so the closest
    key is named first: the acc/accuracy spelling swap, else difflib's nearest match."""
    keys = [str(k) for k in keys]
    if monitor.startswith("val_") and not any(k.startswith("val_") for k in keys):
        return " There are no validation metrics: pass `validation_data` or `validation_split` to fit."
    # a validation name is matched among validation names only, and a training one among training ones
    keys = [k for k in keys if k.startswith("val_") == monitor.startswith("val_")]
    swapped = [monitor[:-len(old)] + new for old, new in (("accuracy", "acc"), ("acc", "accuracy"))
               if monitor.endswith(old)]
    match = next((k for k in swapped if k in keys), None)
    if match is None:
        close = difflib.get_close_matches(monitor, keys, n=1, cutoff=0.6)
        match = close[0] if close else None
    return f" Did you mean {match!r}?" if match else ""


def _then(end, hint):
    """Keras' message ending ``end``, then the hint as its own sentence."""
    return f"{end or '.'}{hint}" if hint else end


def metric_direction(model, monitor):
    """``'min'``, ``'max'`` or ``None`` (unknown) for the logged quantity ``monitor``."""
    name = monitor[len("val_"):] if monitor.startswith("val_") else monitor
    if name == "loss":
        return "min"
    for metric in getattr(model, "_compiled_metrics", None) or ():
        if getattr(metric, "name", None) == name:
            direction = getattr(metric, "direction", getattr(metric, "_direction", None))
            if direction in ("up", "down"):
                return "max" if direction == "up" else "min"
    if name.endswith(_MAX_SUFFIXES):
        return "max"
    try:
        metric = metrics_module.get(name)
    except ValueError:
        return None
    return "max" if metric.direction == "up" else "min"


class MonitorCallback(Callback):
    """Base class for callbacks that watch one logged quantity for improvement.

    Args:
        monitor: the key of the epoch logs to watch, e.g. ``"val_loss"``.
        mode: ``"auto"``, ``"min"`` or ``"max"``; an unknown mode warns and
            falls back to ``"auto"`` (K3).
        baseline: reference value the quantity has to beat, or ``None``.
        min_delta: minimum change that counts as an improvement; its sign is
            ignored (an absolute change of less than ``|min_delta|`` is not
            an improvement).
    """

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        owner = type(self).__name__
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"{owner}: argument `monitor` must be the name of a logged quantity such as "
                             f"'val_loss'; received {describe(monitor)}.")
        if mode not in _MODES:
            warnings.warn(f"{owner} mode '{mode}' is unknown, fallback to auto mode.", UserWarning,
                          stacklevel=3)
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.baseline = _check_real(owner, "baseline", baseline, allow_none=True)
        self.min_delta = abs(_check_real(owner, "min_delta", min_delta))
        self.best = None
        # np.less (minimise) or np.greater (maximise), as in K3; None until resolved.
        self.monitor_op = None

    def _set_monitor_op(self):
        direction = self.mode if self.mode != "auto" else metric_direction(self.model, self.monitor)
        if direction is None:
            raise ValueError(
                f"{type(self).__name__} callback received monitor={self.monitor}, but fastnn isn't able to "
                "automatically determine whether that metric should be maximized or minimized. Pass "
                "`mode='max'` in order to monitor based on the highest metric value, or pass `mode='min'` in "
                "order to use the lowest value."
            )
        self.monitor_op = np.less if direction == "min" else np.greater

    def _is_improvement(self, value, reference):
        """True iff ``value`` beats ``reference`` by more than ``min_delta``; anything beats ``None``."""
        if value is None or math.isnan(value):
            return False
        if reference is None or math.isnan(reference):
            return True
        delta = -self.min_delta if self.monitor_op is np.less else self.min_delta
        return bool(self.monitor_op(value - delta, reference))

    def _monitor_value(self, logs, what, end=""):
        """The monitored value as a float, or ``None`` after a K3-worded warning listing the logged keys."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(f"{what} conditioned on metric `{self.monitor}` which is not available. Available "
                          f"metrics are: {','.join(logs.keys())}{_then(end, did_you_mean(self.monitor, logs))}",
                          UserWarning, stacklevel=3)
            return None
        return float(value)
