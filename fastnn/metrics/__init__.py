"""Metrics with Keras' names, resolution rules and stateful API.

``'accuracy'``/``'acc'`` is resolved from the shapes of the targets and of
the model output, as tf.keras 2.x and Keras 3 do (K3 ``trainers/
compile_utils.py``): binary when the output has one unit; sparse categorical
when the targets have a lower rank than the output or a last dim of 1; else
categorical. The metric keeps the exact string the user gave as its name, so
``history.history`` has ``'acc'`` for ``metrics=['acc']``.

Every metric is stateful, as in Keras: ``update_state`` accumulates over
batches, ``result`` reads the value, ``reset_state`` starts over, and ``fit``
/ ``evaluate`` report ``result()`` at the end of each epoch (the trainer
resets the metrics at the start of each epoch and of each evaluation). Two
kinds exist:

* means of a per-sample value (``MeanMetricWrapper``: the accuracies, ``mae``,
  ``mse``), computed by the ``metric_sum`` kernel; the fused training engine
  computes these inside its compiled loop and hands the sums back
  (``add_sums``);
* ratios of counts accumulated over the epoch (``Precision``, ``Recall``,
  ``AUC``): a ratio of totals, not a mean of per-batch values, so they run on
  the layer-by-layer path.

The files follow Keras 3's ``keras/src/metrics/``: ``metric.py`` (the base
class), ``reduction_metrics.py`` (``MeanMetricWrapper``), ``accuracy_metrics.py``,
``regression_metrics.py``, ``confusion_metrics.py``. They take their base
class from ``metric.py`` or ``reduction_metrics.py``, never from this module,
which alone imports them all: imports go one way.
"""
from fastnn.metrics.accuracy_metrics import (BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
                                             binary_accuracy, categorical_accuracy, sparse_categorical_accuracy)
from fastnn.metrics.confusion_metrics import AUC, Precision, Recall
from fastnn.metrics.metric import Metric
from fastnn.metrics.reduction_metrics import MeanMetricWrapper
from fastnn.metrics.regression_metrics import MeanAbsoluteError, MeanSquaredError
from fastnn.utils.validation import describe, unknown_identifier

_BY_NAME = {
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "precision": Precision, "recall": Recall, "auc": AUC,
    "Precision": Precision, "Recall": Recall, "AUC": AUC,
}
_ACCURACY = ("accuracy", "acc")

__all__ = ["AUC", "BinaryAccuracy", "CategoricalAccuracy", "MeanAbsoluteError", "MeanMetricWrapper",
           "MeanSquaredError", "Metric", "Precision", "Recall", "SparseCategoricalAccuracy", "binary_accuracy",
           "categorical_accuracy", "check_identifier", "get", "resolve_accuracy", "sparse_categorical_accuracy"]


def resolve_accuracy(y_true_shape, n_outputs):
    """The accuracy class Keras picks for targets of ``y_true_shape`` and ``n_outputs`` units."""
    if n_outputs == 1:
        return BinaryAccuracy
    if len(y_true_shape) < 2 or y_true_shape[-1] == 1:
        return SparseCategoricalAccuracy
    return CategoricalAccuracy


def get(identifier, y_true_shape=None, n_outputs=None):
    """Resolve a metric identifier. ``'accuracy'``/``'acc'`` need the target shape and output size."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, str):
        if identifier in _ACCURACY:
            if n_outputs is None:
                raise ValueError("metric 'accuracy' can only be resolved once the data shapes are known.")
            cls = resolve_accuracy(y_true_shape, n_outputs)
            return cls(name=identifier)
        cls = _BY_NAME.get(identifier)
        if cls is None:
            raise unknown_identifier("metric", identifier, list(_BY_NAME) + list(_ACCURACY))
        return cls(name=identifier)
    raise ValueError(
        f"Could not interpret metric identifier: {describe(identifier)}. Use one of: "
        f"{', '.join(sorted(list(_BY_NAME) + list(_ACCURACY)))}, or a fastnn.metrics.Metric instance."
    )


def check_identifier(identifier):
    """Validate a metric identifier at compile time (before data shapes are known)."""
    if isinstance(identifier, str) and identifier in _ACCURACY:
        return
    get(identifier)
