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
  ``AUC`` in ``fastnn.confusion_metrics``): a ratio of totals, not a mean of
  per-batch values, so they run on the layer-by-layer path.
"""
import numpy as np

from fastnn import _kernels as K
from fastnn.utils.array_utils import predictions_2d
from fastnn.utils.validation import describe, shape_str, unknown_identifier


class Metric:
    """Base class of the stateful metrics (Keras' ``keras.metrics.Metric`` API).

    Subclasses implement ``reset_state()``, ``update_state(y_true, y_pred,
    sample_weight=None)`` and ``result()``. ``fit``/``evaluate`` validate the
    targets once per call and then feed batches through two hooks, which a
    subclass may override to skip per-batch checks:

    * ``targets_for_model(y, y_loss, n_outputs, loss_name, dtype)``: the
      per-sample targets this metric reads, row-aligned with ``x`` (``y`` as
      given, ``y_loss`` as the loss prepared it); by default ``y`` as an array;
    * ``update_batch(y_pred, y_true)``: update from a batch of model outputs
      (2-D) and rows of those targets; by default ``update_state``.
    """

    default_name = None
    direction = "up"
    # Name of the per-sample kernel of a mean metric, which the fused training engine can
    # compute in its compiled loop; None for every other metric.
    kernel = None

    def __init__(self, name=None, dtype=None):
        self.name = name or self.default_name or type(self).__name__.lower()
        self.dtype = dtype
        self.reset_state()

    def reset_state(self):
        raise NotImplementedError(f"{type(self).__name__} must implement reset_state()")

    def update_state(self, y_true, y_pred, sample_weight=None):
        raise NotImplementedError(f"{type(self).__name__} must implement update_state()")

    def result(self):
        raise NotImplementedError(f"{type(self).__name__} must implement result()")

    def targets_for_model(self, y, y_loss, n_outputs, loss_name, dtype=np.float32):
        return np.asarray(y)

    def update_batch(self, y_pred, y_true):
        self.update_state(y_true, y_pred)

    def get_config(self):
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class MeanMetricWrapper(Metric):
    """A running mean of a per-sample quantity computed by the ``metric_sum`` kernel ``kernel``."""

    sparse_targets = False

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
        self.update_batch(y_pred, y)

    def targets_for_model(self, y, y_loss, n_outputs, loss_name, dtype=np.float32):
        # The mean metrics read the loss's targets (the engine computes them on those too).
        if self.sparse_targets != (y_loss.ndim == 1):
            raise ValueError(f"Metric '{self.name}' cannot be computed with loss '{loss_name}': the targets "
                             f"have shape {shape_str(y_loss.shape)} for a model output of shape "
                             f"(None, {n_outputs}).")
        return y_loss

    def update_batch(self, y_pred, y_true):
        self.add_sums(self.batch_sum(y_pred, y_true), y_pred.shape[0])

    def add_sums(self, total, count):
        """Add ``count`` samples whose per-sample values sum to ``total`` (the engine's batch sums)."""
        self.total += float(total)
        self.count += int(count)

    def result(self):
        return self.total / self.count if self.count else 0.0


class BinaryAccuracy(MeanMetricWrapper):
    kernel = "binary_accuracy"
    default_name = "binary_accuracy"

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        if threshold != 0.5:
            raise ValueError(f"BinaryAccuracy: only threshold=0.5 is supported; received threshold={threshold!r}")
        super().__init__(name=name, dtype=dtype)


class CategoricalAccuracy(MeanMetricWrapper):
    kernel = "categorical_accuracy"
    default_name = "categorical_accuracy"


class SparseCategoricalAccuracy(MeanMetricWrapper):
    kernel = "sparse_categorical_accuracy"
    default_name = "sparse_categorical_accuracy"
    sparse_targets = True


class MeanAbsoluteError(MeanMetricWrapper):
    kernel = "mae"
    default_name = "mean_absolute_error"
    direction = "down"


class MeanSquaredError(MeanMetricWrapper):
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

# Precision, Recall and AUC live in their own module, as in Keras (it needs Metric, defined above);
# importing them here makes fastnn.metrics.Precision etc. and the strings work.
from fastnn.confusion_metrics import AUC, Precision, Recall  # noqa: E402

_BY_NAME.update({"precision": Precision, "recall": Recall, "auc": AUC,
                 "Precision": Precision, "Recall": Recall, "AUC": AUC})


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
