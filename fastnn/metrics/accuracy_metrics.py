"""The accuracies (K3 ``keras/src/metrics/accuracy_metrics.py``); ``fastnn.metrics.get`` picks one for
``'accuracy'``/``'acc'`` from the shapes.

The functional forms return Keras' unreduced values: ``binary_accuracy`` one per element (1.0 where
``y_pred > threshold`` matches the label), the categorical ones one per sample.
"""
import numbers

import numpy as np

from fastnn.metrics.reduction_metrics import MeanMetricWrapper
from fastnn.utils.validation import describe


def _check_threshold(owner, threshold):
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not np.isfinite(threshold):
        raise ValueError(f"{owner}: argument `threshold` must be a finite number; received {describe(threshold)}.")
    return float(threshold)


class BinaryAccuracy(MeanMetricWrapper):
    """How often ``y_pred > threshold`` matches the binary label.

    Args:
        name, dtype: as in Keras (``dtype`` is recorded; results are float64).
        threshold: a prediction above it counts as 1 (default 0.5), compared in y_pred's dtype. Keras
            compares the label with ``==``, so a soft label never matches; fastnn reads a label > 0.5
            as 1 (a label-smoothed target then still counts as its class).
    """

    kernel = "binary_accuracy"
    default_name = "binary_accuracy"
    elementwise = True

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        self.threshold = _check_threshold("BinaryAccuracy", threshold)
        super().__init__(name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "threshold": self.threshold}


class CategoricalAccuracy(MeanMetricWrapper):
    kernel = "categorical_accuracy"
    default_name = "categorical_accuracy"

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


class SparseCategoricalAccuracy(MeanMetricWrapper):
    kernel = "sparse_categorical_accuracy"
    default_name = "sparse_categorical_accuracy"
    sparse_targets = True

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """1.0 where ``y_pred > threshold`` matches the label, per element (Keras 3's shape)."""
    metric = BinaryAccuracy(threshold=threshold)
    values = metric.values(y_true, y_pred)
    return values.reshape(np.shape(y_pred)) if np.ndim(y_pred) == 1 else values


def categorical_accuracy(y_true, y_pred):
    """1.0 where argmax(y_pred) == argmax(y_true), per sample."""
    return CategoricalAccuracy().values(y_true, y_pred)


def sparse_categorical_accuracy(y_true, y_pred):
    """1.0 where argmax(y_pred) equals the integer label, per sample."""
    return SparseCategoricalAccuracy().values(y_true, y_pred)
