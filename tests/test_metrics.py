"""Metrics: Keras' shape-based resolution of 'accuracy'/'acc', names kept as given, and the stateful
API vs NumPy."""
import numpy as np
import pytest

from fastnn import metrics
from fastnn.metrics import (BinaryAccuracy, CategoricalAccuracy, MeanAbsoluteError, MeanSquaredError,
                            SparseCategoricalAccuracy)


# ----------------------------------------- resolution (docs/keras_semantics.md#accuracy-resolution)
@pytest.mark.parametrize("name", ["accuracy", "acc"])
@pytest.mark.parametrize("y_shape,n_outputs,cls", [
    ((32,), 1, BinaryAccuracy),              # one output unit: binary, whatever the targets
    ((32, 1), 1, BinaryAccuracy),
    ((32,), 10, SparseCategoricalAccuracy),  # rank(y_true) < rank(y_pred)
    ((32, 1), 10, SparseCategoricalAccuracy),  # last dim 1
    ((32, 10), 10, CategoricalAccuracy),     # one-hot
    ((32, 2), 2, CategoricalAccuracy),
])
def test_accuracy_resolution_by_shapes(name, y_shape, n_outputs, cls):
    metric = metrics.get(name, y_true_shape=y_shape, n_outputs=n_outputs)
    assert type(metric) is cls
    assert metric.name == name  # history keys use the exact string given


def test_accuracy_needs_shapes():
    with pytest.raises(ValueError, match="accuracy"):
        metrics.get("accuracy")
    metrics.check_identifier("acc")  # fine at compile time


@pytest.mark.parametrize("name,cls", [
    ("binary_accuracy", BinaryAccuracy), ("categorical_accuracy", CategoricalAccuracy),
    ("sparse_categorical_accuracy", SparseCategoricalAccuracy), ("mae", MeanAbsoluteError),
    ("mean_absolute_error", MeanAbsoluteError), ("mse", MeanSquaredError),
    ("mean_squared_error", MeanSquaredError),
])
def test_named_metrics_keep_their_name(name, cls):
    metric = metrics.get(name)
    assert type(metric) is cls
    assert metric.name == name


def test_instances_and_classes():
    m = CategoricalAccuracy(name="top1")
    assert metrics.get(m) is m and m.name == "top1"
    assert type(metrics.get(BinaryAccuracy)) is BinaryAccuracy
    assert metrics.get(BinaryAccuracy).name == "binary_accuracy"


def test_unknown_metric_lists_valid_ones():
    with pytest.raises(ValueError) as info:
        metrics.get("accuracyy")
    msg = str(info.value)
    assert "'accuracyy'" in msg and "metric" in msg
    for name in ("accuracy", "acc", "mae", "mse", "binary_accuracy", "categorical_accuracy",
                 "sparse_categorical_accuracy"):
        assert repr(name) in msg
    with pytest.raises(ValueError, match="accuracy"):
        metrics.check_identifier("f1")


def test_callable_metric_rejected_clearly():
    with pytest.raises(ValueError, match="Could not interpret metric identifier"):
        metrics.get(lambda y, p: 0.0)


def test_binary_accuracy_threshold():
    metric = BinaryAccuracy(threshold=0.7)
    metric.update_state(np.array([[1.0], [1.0], [0.0]]), np.array([[0.8], [0.6], [0.65]]))
    assert metric.result() == pytest.approx(2 / 3)
    assert metric.get_config()["threshold"] == 0.7
    with pytest.raises(ValueError, match="argument `threshold` must be a finite number; received 'high'"):
        BinaryAccuracy(threshold="high")


# ----------------------------------------------------------------------------- stateful API vs NumPy
def _batches(seed=0, k=4):
    rng = np.random.default_rng(seed)
    for n in (5, 3, 8):
        logits = rng.standard_normal((n, k))
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        labels = rng.integers(0, k, n)
        yield probs, labels


def test_sparse_categorical_accuracy_stateful():
    m = SparseCategoricalAccuracy()
    hits, count = 0, 0
    for probs, labels in _batches():
        m.update_state(labels, probs)
        hits += int((probs.argmax(axis=1) == labels).sum())
        count += len(labels)
        assert m.result() == pytest.approx(hits / count, rel=1e-12)
    m.reset_state()
    assert m.result() == 0.0
    probs, labels = next(_batches(1))
    m.update_state(labels.reshape(-1, 1), probs)  # (N, 1) labels too
    assert m.result() == pytest.approx(np.mean(probs.argmax(axis=1) == labels))


def test_categorical_accuracy_stateful():
    m = CategoricalAccuracy()
    hits, count = 0, 0
    for probs, labels in _batches(2):
        onehot = np.eye(4)[labels]
        m.update_state(onehot, probs)
        hits += int((probs.argmax(axis=1) == labels).sum())
        count += len(labels)
    assert m.result() == pytest.approx(hits / count, rel=1e-12)


def test_binary_accuracy_stateful_strict_threshold():
    m = BinaryAccuracy()
    y = np.array([1, 0, 1, 0, 1], dtype=np.float32)
    p = np.array([0.9, 0.2, 0.5, 0.5, 0.51], dtype=np.float32)  # 0.5 is NOT > 0.5
    m.update_state(y, p)
    assert m.result() == pytest.approx(np.mean((p > 0.5) == (y > 0.5)))
    assert m.result() == pytest.approx(4 / 5)
    m.update_state(y.reshape(-1, 1), p.reshape(-1, 1))
    assert m.result() == pytest.approx(4 / 5)
    # Several outputs: mean over the last axis, then over samples.
    m.reset_state()
    y2 = np.array([[1, 0], [0, 0]], dtype=np.float32)
    p2 = np.array([[0.7, 0.7], [0.1, 0.2]], dtype=np.float32)
    m.update_state(y2, p2)
    assert m.result() == pytest.approx(0.75)


@pytest.mark.parametrize("cls,fn", [(MeanAbsoluteError, lambda y, p: np.abs(p - y).mean(axis=-1)),
                                    (MeanSquaredError, lambda y, p: ((p - y) ** 2).mean(axis=-1))])
def test_regression_metrics_stateful(cls, fn):
    rng = np.random.default_rng(3)
    m = cls()
    values = []
    for n in (4, 7):
        y = rng.standard_normal((n, 3))
        p = rng.standard_normal((n, 3))
        m.update_state(y, p)
        values.append(fn(y, p))
    assert m.result() == pytest.approx(np.concatenate(values).mean(), rel=1e-12)
    assert isinstance(m.result(), float)
    m.reset_state()
    assert m.result() == 0.0 and m.count == 0


def test_result_is_weighted_by_batch_size_not_mean_of_batch_means():
    m = SparseCategoricalAccuracy()
    m.update_state(np.array([0]), np.array([[0.9, 0.1]]))                           # 1/1 right
    m.update_state(np.array([0, 0, 0]), np.array([[0.1, 0.9]] * 3))                 # 0/3 right
    assert m.result() == pytest.approx(0.25)


def test_sample_weight_accumulates_weighted_mean():
    metric = CategoricalAccuracy()
    metric.update_state(np.eye(2), np.eye(2), sample_weight=np.array([1.0, 3.0]))
    metric.update_state(np.eye(2), np.eye(2)[::-1], sample_weight=np.array([2.0, 2.0]))
    assert metric.result() == pytest.approx(4 / 8)
    with pytest.raises(ValueError, match=r"`sample_weight` of shape \(3,\) cannot be broadcast"):
        CategoricalAccuracy().update_state(np.eye(2), np.eye(2), sample_weight=np.ones(3))


def test_target_shape_mismatch_message():
    with pytest.raises(ValueError, match="do not match") as info:
        MeanSquaredError().update_state(np.zeros((3, 2)), np.zeros((3, 4)))
    assert "(None, 4)" in str(info.value)


def test_directions():
    assert SparseCategoricalAccuracy.direction == "up"
    assert MeanSquaredError.direction == "down" and MeanAbsoluteError.direction == "down"


def test_custom_keras_style_metric_runs_in_fit_and_evaluate():
    """A Metric subclass with only Keras' update_state / result / reset_state works in fit: it is reset at
    every epoch and reports its own result (the trainer never averages it)."""
    import fastnn
    from fastnn import Sequential
    from fastnn.layers import Dense

    class MaxAbsError(metrics.Metric):
        direction = "down"

        def reset_state(self):
            self.value = 0.0

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.value = max(self.value, float(np.max(np.abs(np.asarray(y_pred).reshape(-1) -
                                                             np.asarray(y_true).reshape(-1)))))

        def result(self):
            return self.value

    fastnn.backend.clear_session()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 3)).astype(np.float32)
    y = x.sum(axis=1)
    model = Sequential([Dense(1, input_shape=(3,))])
    metric = MaxAbsError()
    assert metric.name == "maxabserror"
    model.compile("sgd", "mse", metrics=[metric, "mae"])
    history = model.fit(x, y, epochs=2, batch_size=20, verbose=0, validation_data=(x, y))
    p = model.predict(x, verbose=0)[:, 0]
    assert history.history["val_maxabserror"][-1] == pytest.approx(np.max(np.abs(p - y)), rel=1e-6)
    assert model.evaluate(x, y, verbose=0, return_dict=True)["maxabserror"] == pytest.approx(
        np.max(np.abs(p - y)), rel=1e-6)
