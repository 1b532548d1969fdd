"""``MeanMetricWrapper``: a running mean of a per-sample value (K3 ``keras/src/metrics/reduction_metrics.py``).

The per-sample values are summed by the ``metric_sum`` kernel; the fused training
engine computes the same sums inside its compiled loop and hands them back
(``add_sums``).
"""
import numpy as np

from fastnn import _kernels as K
from fastnn.metrics.metric import Metric
from fastnn.utils.array_utils import predictions_2d
from fastnn.utils.validation import describe, shape_str


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
