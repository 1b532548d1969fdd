"""The accuracies (K3 ``keras/src/metrics/accuracy_metrics.py``); ``fastnn.metrics.get`` picks one for
``'accuracy'``/``'acc'`` from the shapes."""
from fastnn.metrics.reduction_metrics import MeanMetricWrapper


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
