"""``mae`` and ``mse`` as metrics (K3 ``keras/src/metrics/regression_metrics.py``)."""
from fastnn.metrics.reduction_metrics import MeanMetricWrapper


class MeanAbsoluteError(MeanMetricWrapper):
    kernel = "mae"
    default_name = "mean_absolute_error"
    direction = "down"


class MeanSquaredError(MeanMetricWrapper):
    kernel = "mse"
    default_name = "mean_squared_error"
    direction = "down"
