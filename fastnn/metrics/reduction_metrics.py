"""``MeanMetricWrapper``: a running mean of a per-sample value (K3 ``keras/src/metrics/reduction_metrics.py``).

The per-sample values are summed by the ``metric_sum`` kernel; the fused training
engine computes the same sums inside its compiled loop and hands them back
(``add_sums``).
"""
import numpy as np

from fastnn import _kernels as K
from fastnn.metrics.metric import Metric
from fastnn.utils.array_utils import predictions_2d
from fastnn.utils.validation import shape_str
from fastnn.utils.weighting import reduce_to_samplewise_values


class MeanMetricWrapper(Metric):
    """A running mean of a per-sample quantity computed by the ``metric_sum`` kernel ``kernel``.

    ``update_state(y_true, y_pred, sample_weight=None)`` weights as Keras 3's ``Mean`` does
    (``reduce_to_samplewise_values``): ``sample_weight`` may be a number, one weight per sample ((B,) or
    (B, 1)) or, for a metric with one value per element (``binary_accuracy``), one weight per element;
    the result is sum(w * value) / sum(w) over everything seen (0 while the weights sum to 0).
    """

    sparse_targets = False
    # Keras' function returns one value per element (binary_accuracy), not one per sample
    elementwise = False
    threshold = 0.5

    def reset_state(self):
        self.total = 0.0
        self.count = 0.0

    def batch_sum(self, y_pred, y_true, sample_weight=None):
        """Sum of the per-sample metric over a batch of prepared arrays (times ``sample_weight`` (B,))."""
        return K.metric_sum(y_pred, y_true, self.kernel, self.threshold, sample_weight)

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

    def values(self, y_true, y_pred):
        """The unreduced values Keras' metric function returns: one per element of y_pred for an
        ``elementwise`` metric, else one per sample (a 1-D y_pred is a column of samples)."""
        y_pred = np.asarray(y_pred)
        rows = predictions_2d(y_pred)
        y = self.prepare_targets(y_true, rows.shape[1], rows.dtype)
        if not self.elementwise or rows.shape[1] == 1:
            return K.metric_forward(rows, y, self.kernel, self.threshold)
        flat = K.metric_forward(rows.reshape(-1, 1), y.reshape(-1, 1), self.kernel, self.threshold)
        return flat.reshape(rows.shape)

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is None:
            y_pred = predictions_2d(y_pred)
            y = self.prepare_targets(y_true, y_pred.shape[1], y_pred.dtype)
            self.update_batch(y_pred, y)
            return
        values, weights = reduce_to_samplewise_values(f"Metric '{self.name}'", self.values(y_true, y_pred),
                                                      sample_weight)
        self.add_sums(values.sum(), weights.sum())

    def targets_for_model(self, y, y_loss, n_outputs, loss_name, dtype=np.float32):
        # The mean metrics read the loss's targets (the engine computes them on those too).
        if self.sparse_targets != (y_loss.ndim == 1):
            raise ValueError(f"Metric '{self.name}' cannot be computed with loss '{loss_name}': the targets "
                             f"have shape {shape_str(y_loss.shape)} for a model output of shape "
                             f"(None, {n_outputs}).")
        return y_loss

    def update_batch(self, y_pred, y_true, sample_weight=None):
        count = y_pred.shape[0] if sample_weight is None else float(np.sum(sample_weight))
        self.add_sums(self.batch_sum(y_pred, y_true, sample_weight), count)

    def add_sums(self, total, count):
        """Add samples whose (weighted) values sum to ``total`` and whose weights sum to ``count`` (the
        number of samples when unweighted): the engine's batch sums."""
        self.total += float(total)
        self.count += float(count)

    def result(self):
        return self.total / self.count if self.count else 0.0  # Keras' divide_no_nan
