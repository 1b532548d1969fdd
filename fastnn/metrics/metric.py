"""``Metric``: the base class of fastnn's stateful metrics (K3 ``keras/src/metrics/metric.py``).

It imports nothing from the rest of ``fastnn.metrics``: the metric modules import
it, and ``fastnn.metrics`` imports them, never the other way round.
"""
import numpy as np


class Metric:
    """Base class of the stateful metrics (Keras' ``keras.metrics.Metric`` API).

    Subclasses implement ``reset_state()``, ``update_state(y_true, y_pred,
    sample_weight=None)`` and ``result()``. ``fit``/``evaluate`` validate the
    targets once per call and then feed batches through two hooks, which a
    subclass may override to skip per-batch checks:

    * ``targets_for_model(y, y_loss, n_outputs, loss_name, dtype)``: the
      per-sample targets this metric reads, row-aligned with ``x`` (``y`` as
      given, ``y_loss`` as the loss prepared it); by default ``y`` as an array;
    * ``update_batch(y_pred, y_true, sample_weight=None)``: update from a batch
      of model outputs (2-D), rows of those targets and, for compile's
      ``weighted_metrics``, the rows' sample weights (B,); by default
      ``update_state``.

    A metric whose state is a sum over rows (confusion counts) sets
    ``rows_additive = True``: one ``update_batch`` on the rows of several
    batches then gives the state those batches give one by one, and fit feeds
    it once per engine call instead of once per batch.
    """

    default_name = None
    direction = "up"
    # Name of the per-sample kernel of a mean metric, which the fused training engine can
    # compute in its compiled loop; None for every other metric.
    kernel = None
    rows_additive = False

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

    def __call__(self, y_true, y_pred, sample_weight=None):
        """``update_state`` then ``result()``, as Keras' ``Metric.__call__``."""
        self.update_state(y_true, y_pred, sample_weight=sample_weight)
        return self.result()

    def targets_for_model(self, y, y_loss, n_outputs, loss_name, dtype=np.float32):
        return np.asarray(y)

    def update_batch(self, y_pred, y_true, sample_weight=None):
        self.update_state(y_true, y_pred, sample_weight=sample_weight)

    def get_config(self):
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
