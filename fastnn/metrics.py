"""Metrics with Keras' names, resolution rules and stateful API.

``'accuracy'``/``'acc'`` is resolved from the shapes of the targets and of
the model output, as tf.keras 2.x and Keras 3 do (K3 ``trainers/
compile_utils.py``): binary when the output has one unit; sparse categorical
when the targets have a lower rank than the output or a last dim of 1; else
categorical. The metric keeps the exact string the user gave as its name, so
``history.history`` has ``'acc'`` for ``metrics=['acc']``.
"""
import numpy as np

from fastnn import _kernels as K
from fastnn.utils.array_utils import predictions_2d
from fastnn.utils.validation import describe, unknown_identifier


class Metric:
    """Base class: a running mean of a per-sample quantity computed by a kernel."""

    kernel = None
    default_name = None
    direction = "up"
    sparse_targets = False

    def __init__(self, name=None, dtype=None):
        self.name = name or self.default_name
        self.dtype = dtype
        self.reset_state()

    def reset_state(self):
        self.total = 0.0
        self.count = 0

    def batch_sum(self, y_pred, y_true):
        """Sum of the per-sample metric over a batch of prepared arrays."""
        return K.metric_sum(y_pred, y_true, self.kernel)

    def prepare_targets(self, y, n_outputs, dtype=np.float32):
        y = np.asarray(y)
        if self.sparse_targets:
            if y.ndim == 2 and y.shape[1] == 1:
                y = y[:, 0]
            return np.ascontiguousarray(y, dtype=np.intp)
        if y.ndim == 1:
            y = y.reshape(-1, 1) if n_outputs == 1 else y
        if y.ndim != 2 or y.shape[1] != n_outputs:
            raise ValueError(f"Metric '{self.name}': targets of shape {y.shape} do not match the model output "
                             f"(None, {n_outputs}).")
        return np.ascontiguousarray(y, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError(f"Metric '{self.name}': `sample_weight` is not supported yet; received "
                             f"{describe(sample_weight)}")
        y_pred = predictions_2d(y_pred)
        y = self.prepare_targets(y_true, y_pred.shape[1], y_pred.dtype)
        self.total += self.batch_sum(y_pred, y)
        self.count += y_pred.shape[0]

    def result(self):
        return self.total / self.count if self.count else 0.0

    def get_config(self):
        return {"name": self.name}


class BinaryAccuracy(Metric):
    kernel = "binary_accuracy"
    default_name = "binary_accuracy"

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        if threshold != 0.5:
            raise ValueError(f"BinaryAccuracy: only threshold=0.5 is supported; received threshold={threshold!r}")
        super().__init__(name=name, dtype=dtype)


class CategoricalAccuracy(Metric):
    kernel = "categorical_accuracy"
    default_name = "categorical_accuracy"


class SparseCategoricalAccuracy(Metric):
    kernel = "sparse_categorical_accuracy"
    default_name = "sparse_categorical_accuracy"
    sparse_targets = True


class MeanAbsoluteError(Metric):
    kernel = "mae"
    default_name = "mean_absolute_error"
    direction = "down"


class MeanSquaredError(Metric):
    kernel = "mse"
    default_name = "mean_squared_error"
    direction = "down"


_BY_NAME = {
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
}
_ACCURACY = ("accuracy", "acc")


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
