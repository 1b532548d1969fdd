"""Keras 3's own metric test cases, as data, run against fastnn's compiled kernels and their NumPy twins,
plus compile(weighted_metrics=...) on the engine (compiled and its twin).

Each case is (Keras test it comes from, metric factory, updates [(y_true, y_pred, sample_weight)],
expected, tolerance), copied from
https://github.com/keras-team/keras/blob/master/keras/src/metrics/accuracy_metrics_test.py,
https://github.com/keras-team/keras/blob/master/keras/src/metrics/regression_metrics_test.py and
https://github.com/keras-team/keras/blob/master/keras/src/metrics/confusion_metrics_test.py
(class and test name given; only the metrics fastnn offers). Keras' tolerances: ``assertAllClose`` is
``atol=rtol=1e-6`` unless given; ``assertAlmostEqual`` is ``decimal=3`` (|got - expected| < 1.5e-3).
"""
import numpy as np
import pytest

import fastnn
from fastnn import _kernels, metrics

from _checks import use_reference_engine

K3 = "https://github.com/keras-team/keras/blob/master/keras/src/metrics/"
ACC, REG, CONF = K3 + "accuracy_metrics_test.py", K3 + "regression_metrics_test.py", K3 + "confusion_metrics_test.py"


def almost(decimal=3):
    return {"atol": 1.5 * 10.0 ** -decimal, "rtol": 0.0}


def allclose(atol=1e-6, rtol=1e-6):
    return {"atol": atol, "rtol": rtol}


@pytest.fixture(params=["compiled", "reference"])
def kernels(request, monkeypatch):
    """Run the case on the compiled kernels, then with every kernel replaced by its NumPy twin."""
    if request.param == "reference":
        for name in _kernels.KERNEL_NAMES:
            monkeypatch.setattr(_kernels, name, _kernels.twin(name))
    return request.param


BIN_T = np.array([[1], [1], [0], [0]])
BIN_P = np.array([[0.98], [1], [0], [0.6]])
CAT_T = np.array([[0, 0, 1], [0, 1, 0]])
CAT_P = np.array([[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
SP_T = np.array([[2], [1]])
SP_P = np.array([[0.1, 0.6, 0.3], [0.05, 0.95, 0]])
REG_T = np.array([[0, 1, 0, 1, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 0], [0, 0, 0, 0, 1]])
REG_P = np.array([[0, 0, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 0, 1, 0], [1, 1, 1, 1, 1]])
REG_W = np.array([1.0, 1.5, 2.0, 2.5])
AUC_P = np.array([0, 0.5, 0.3, 0.9], dtype="float32")
AUC_T = np.array([0, 0, 1, 1])
AUC_W = [1, 2, 3, 4]

CASES = [
    # --- accuracy_metrics_test.py
    (ACC, "BinaryAccuracyTest.test_unweighted", metrics.BinaryAccuracy, [(BIN_T, BIN_P, None)], 0.75,
     allclose(1e-3)),
    (ACC, "BinaryAccuracyTest.test_unweighted (broadcasting)", metrics.BinaryAccuracy,
     [(np.array([1, 1, 0, 0]), BIN_P, None)], 0.75, allclose(1e-3)),
    (ACC, "BinaryAccuracyTest.test_weighted", metrics.BinaryAccuracy, [(BIN_T, BIN_P, np.array([1, 0, 0, 1]))], 0.5,
     allclose(1e-3)),
    (ACC, "BinaryAccuracyTest.test_weighted_rank_1", metrics.BinaryAccuracy,
     [(np.array([1, 1, 0, 0]), np.array([0.98, 1, 0, 0.6]), np.array([1, 0, 0, 1]))], 0.5, allclose(1e-3)),
    (ACC, "BinaryAccuracyTest.test_weighted_nd_weights", metrics.BinaryAccuracy,
     [(np.array([[1, 1], [0, 0]]), np.array([[0.98, 1], [0, 0.6]]), np.array([[1, 0], [0, 1]]))], 0.5,
     allclose(1e-3)),
    (ACC, "BinaryAccuracyTest.test_weighted_nd_broadcast_weights", metrics.BinaryAccuracy,
     [(np.array([[1, 1], [0, 0]]), np.array([[0.98, 1], [0, 0.6]]), np.array([[1, 0]]))], 1.0, allclose(1e-3)),
    (ACC, "BinaryAccuracyTest.test_threshold (0.3)", lambda: metrics.BinaryAccuracy(threshold=0.3),
     [(BIN_T, np.array([[0.98], [0.5], [0.1], [0.2]]), None)], 1.0, allclose()),
    (ACC, "BinaryAccuracyTest.test_threshold (0.9)", lambda: metrics.BinaryAccuracy(threshold=0.9),
     [(BIN_T, np.array([[0.98], [0.5], [0.1], [0.2]]), None)], 0.75, allclose()),
    (ACC, "CategoricalAccuracyTest.test_unweighted", metrics.CategoricalAccuracy, [(CAT_T, CAT_P, None)], 0.5,
     allclose(1e-3)),
    (ACC, "CategoricalAccuracyTest.test_weighted", metrics.CategoricalAccuracy,
     [(CAT_T, CAT_P, np.array([0.7, 0.3]))], 0.3, allclose(1e-3)),
    (ACC, "SparseCategoricalAccuracyTest.test_unweighted", metrics.SparseCategoricalAccuracy, [(SP_T, SP_P, None)],
     0.5, allclose(1e-3)),
    (ACC, "SparseCategoricalAccuracyTest.test_weighted", metrics.SparseCategoricalAccuracy,
     [(SP_T, SP_P, np.array([0.7, 0.3]))], 0.3, allclose(1e-3)),
    (ACC, "SparseCategoricalAccuracyTest.test_squeeze_y_true", metrics.SparseCategoricalAccuracy,
     [(np.array([[0], [1], [2]]), np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]]), None)], 1.0,
     allclose(1e-4)),
    (ACC, "SparseCategoricalAccuracyTest.test_cast_y_pred_dtype", metrics.SparseCategoricalAccuracy,
     [(np.array([0, 1], dtype=np.int64), np.array([[0.9, 0.1], [0.1, 0.9]], dtype=np.float32), None)], 1.0,
     allclose(1e-4)),
    # --- regression_metrics_test.py
    (REG, "MeanSquaredErrorTest.test_unweighted", metrics.MeanSquaredError, [(REG_T, REG_P, None)], 0.5,
     allclose(1e-5)),
    (REG, "MeanSquaredErrorTest.test_weighted", metrics.MeanSquaredError, [(REG_T, REG_P, REG_W)], 0.54285,
     allclose(1e-5)),
    (REG, "MeanAbsoluteErrorTest.test_unweighted", metrics.MeanAbsoluteError, [(REG_T, REG_P, None)], 0.5,
     allclose(1e-5)),
    (REG, "MeanAbsoluteErrorTest.test_weighted", metrics.MeanAbsoluteError, [(REG_T, REG_P, REG_W)], 0.54285,
     allclose(1e-5)),
    # --- confusion_metrics_test.py
    (CONF, "PrecisionTest.test_weighted", metrics.Precision,
     [(np.array([[0, 1, 1, 0], [1, 0, 0, 1]]), np.array([[1, 0, 1, 0], [1, 0, 1, 0]]),
       np.array([[1, 2, 3, 4], [4, 3, 2, 1]]))], 7.0 / 10.0, almost()),
    (CONF, "PrecisionTest.test_weighted_with_threshold", lambda: metrics.Precision(thresholds=[0.5, 1.0]),
     [(np.array([[0, 1], [1, 0]]), np.array([[1, 0], [0.6, 0]], dtype="float32"),
       np.array([[4, 0], [3, 1]], dtype="float32"))], [3.0 / 7.0, 0.0], almost()),
    (CONF, "PrecisionTest.test_multiple_updates", lambda: metrics.Precision(thresholds=[0.5, 1.0]),
     [(np.array([[0, 1], [1, 0]]), np.array([[1, 0], [0.6, 0]], dtype="float32"),
       np.array([[4, 0], [3, 1]], dtype="float32"))] * 2, [6.0 / 14.0, 0.0], almost()),
    (CONF, "PrecisionTest.test_weighted_top_k", lambda: metrics.Precision(top_k=3),
     [(np.array([[0, 1, 1, 0, 1]]), np.array([[0.2, 0.1, 0.4, 0, 0.2]]), np.array([[1, 4, 2, 3, 5]])),
      (np.array([1, 0, 1, 1, 1]), np.array([0.2, 0.6, 0.4, 0.2, 0.2]), np.array(3))], 13.0 / 17.0, almost()),
    (CONF, "RecallTest.test_weighted", metrics.Recall,
     [(np.array([[0, 1, 1, 0], [1, 0, 0, 1]]), np.array([[1, 0, 1, 0], [0, 1, 0, 1]]),
       np.array([[1, 2, 3, 4], [4, 3, 2, 1]]))], 4.0 / 10.0, almost()),
    (CONF, "AUCTest.test_weighted_roc_interpolation", lambda: metrics.AUC(num_thresholds=3),
     [(AUC_T, AUC_P, AUC_W)], 0.7855, allclose(1e-3)),
    (CONF, "AUCTest.test_weighted_pr_interpolation", lambda: metrics.AUC(num_thresholds=3, curve="PR"),
     [(AUC_T, AUC_P, AUC_W)], 2.416 / 7 + 4 / 7, allclose(1e-3)),
    (CONF, "AUCTest.test_weighted_pr_interpolation_negative_weights",
     lambda: metrics.AUC(num_thresholds=3, curve="PR"), [(AUC_T, AUC_P, [-1, -2, -3, -4])], 0.0, allclose(1e-3)),
]


@pytest.mark.parametrize("case", CASES, ids=[c[1] for c in CASES])
def test_keras_metric_case(case, kernels):
    source, test, make, updates, expected, tol = case
    metric = make()
    for y_true, y_pred, sample_weight in updates:
        metric.update_state(y_true, y_pred, sample_weight=sample_weight)
    np.testing.assert_allclose(metric.result(), expected, err_msg=f"{source} {test}", **tol)


def test_metric_call_is_update_then_result(kernels):
    """regression_metrics_test.py MeanSquaredErrorTest.test_weighted calls the metric: update_state + result."""
    assert metrics.MeanSquaredError()(REG_T, REG_P, sample_weight=REG_W) == pytest.approx(0.54285, abs=1e-5)


def test_binary_accuracy_function(kernels):
    """keras.metrics.binary_accuracy: one value per element, with `threshold`."""
    got = metrics.binary_accuracy(np.array([[1, 0], [0, 1]]), np.array([[0.6, 0.4], [0.2, 0.9]]), threshold=0.5)
    np.testing.assert_array_equal(got, [[1.0, 1.0], [1.0, 1.0]])
    got = metrics.binary_accuracy(np.array([1, 0, 1]), np.array([0.6, 0.4, 0.7]), threshold=0.65)
    np.testing.assert_array_equal(got, [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(metrics.categorical_accuracy(CAT_T, CAT_P), [0.0, 1.0])
    np.testing.assert_array_equal(metrics.sparse_categorical_accuracy(SP_T, SP_P), [0.0, 1.0])


def test_zero_weights_give_zero():
    """Keras' divide_no_nan: weights summing to 0 give 0, not NaN."""
    metric = metrics.BinaryAccuracy()
    metric.update_state(BIN_T, BIN_P, sample_weight=0)
    assert metric.result() == 0.0


def test_bad_weights_are_named():
    with pytest.raises(ValueError, match=r"Metric 'binary_accuracy': argument `sample_weight` of shape \(3,\) cannot "
                                         r"be broadcast"):
        metrics.BinaryAccuracy().update_state(BIN_T, BIN_P, sample_weight=np.ones(3))
    with pytest.raises(TypeError, match=r"`sample_weight` must be a number or a numeric array"):
        metrics.MeanAbsoluteError().update_state(REG_T, REG_P, sample_weight=["a"] * 4)
    with pytest.raises(ValueError, match=r"Precision 'precision': argument `sample_weight` must be a number, one "
                                         r"weight per sample \(2,\) or one per prediction \(2, 4\)"):
        metrics.Precision().update_state(np.zeros((2, 4)), np.zeros((2, 4)), sample_weight=np.ones((2, 3)))


# ----------------------------------------------------------------------------- compile(weighted_metrics=...)
def _data(seed=0, n=37):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    y = (x[:, :1] + 0.3 * rng.standard_normal((n, 1)) > 0).astype(np.float32)
    w = rng.uniform(0.0, 3.0, n)
    return x, y, w


def _model(engine):
    fastnn.utils.set_random_seed(3)
    model = fastnn.Sequential([fastnn.layers.Dense(4, activation="relu", input_shape=(6,)),
                               fastnn.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy",
                  metrics=["accuracy", "mae"],
                  weighted_metrics=["accuracy", "mae", fastnn.metrics.BinaryAccuracy(name="bacc", threshold=0.3),
                                    fastnn.metrics.Precision()])
    return use_reference_engine(model) if engine == "reference" else model


@pytest.mark.parametrize("engine", ["compiled", "reference"])
def test_weighted_metrics_in_fit_and_evaluate(engine):
    """fit(sample_weight=...) weights the weighted_metrics (on the engine: its per-row values times the
    weights), and leaves `metrics` unweighted, as Keras 3's CompileMetrics; names that clash get tf.keras'
    'weighted_' prefix. The epoch's values equal the metrics' own update_state on the weights."""
    x, y, w = _data()
    model = _model(engine)
    history = model.fit(x, y, sample_weight=w, batch_size=37, epochs=1, shuffle=False, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "mae", "weighted_accuracy", "weighted_mae", "bacc",
                                    "precision"}
    # one batch: the logged values are those of the weights the step started from; recompute them
    model2 = _model(engine)
    out = model2.predict(x, verbose=0)
    expected = {}
    for name, make, weighted in [("accuracy", metrics.BinaryAccuracy, False), ("mae", metrics.MeanAbsoluteError, False),
                                 ("weighted_accuracy", metrics.BinaryAccuracy, True),
                                 ("weighted_mae", metrics.MeanAbsoluteError, True),
                                 ("bacc", lambda: metrics.BinaryAccuracy(threshold=0.3), True),
                                 ("precision", metrics.Precision, True)]:
        m = make()
        m.update_state(y, out, sample_weight=w if weighted else None)
        expected[name] = m.result()
    for name, value in expected.items():
        assert history.history[name][0] == pytest.approx(value, rel=1e-6, abs=1e-7), name
    assert expected["weighted_mae"] != pytest.approx(expected["mae"])
    # evaluate with sample weights: the weighted metrics are weighted, over every row
    logs = model.evaluate(x, y, sample_weight=w, return_dict=True, verbose=0)
    out = model.predict(x, verbose=0)
    m = metrics.MeanAbsoluteError()
    m.update_state(y, out, sample_weight=w)
    assert logs["weighted_mae"] == pytest.approx(m.result(), rel=1e-6)
    m = metrics.MeanAbsoluteError()
    m.update_state(y, out)
    assert logs["mae"] == pytest.approx(m.result(), rel=1e-6)


@pytest.mark.parametrize("engine", ["compiled", "reference"])
def test_weighted_metrics_several_batches_and_class_weight(engine):
    """Across batches the weighted mean is sum(w * value) / sum(w) over the epoch; class_weight weighs
    them as Keras turns it into sample weights."""
    x, y, w = _data(1, n=50)
    model = _model(engine)
    model.compile(optimizer=fastnn.optimizers.SGD(learning_rate=0.0), loss="binary_crossentropy",
                  weighted_metrics=["mae"])
    history = model.fit(x, y, sample_weight=w, batch_size=16, epochs=1, verbose=0)
    m = metrics.MeanAbsoluteError()
    m.update_state(y, model.predict(x, verbose=0), sample_weight=w)  # lr 0: the weights never change
    assert history.history["mae"][0] == pytest.approx(m.result(), rel=1e-6)
    history = model.fit(x, y, class_weight={0: 1.0, 1: 4.0}, batch_size=16, epochs=1, verbose=0)
    m = metrics.MeanAbsoluteError()
    m.update_state(y, model.predict(x, verbose=0), sample_weight=np.where(y[:, 0] == 1, 4.0, 1.0))
    assert history.history["mae"][0] == pytest.approx(m.result(), rel=1e-6)


def test_weighted_metrics_compiled_matches_reference():
    x, y, w = _data(2, n=64)
    logs = []
    for engine in ("compiled", "reference"):
        model = _model(engine)
        history = model.fit(x, y, sample_weight=w, batch_size=8, epochs=2, verbose=0, validation_data=(x, y, w))
        logs.append(history.history)
    for key in logs[0]:
        np.testing.assert_allclose(logs[0][key], logs[1][key], rtol=1e-5, err_msg=key)


def test_weighted_metrics_saved_and_loaded(tmp_path):
    x, y, w = _data()
    model = _model("compiled")
    model.fit(x, y, sample_weight=w, epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = fastnn.models.load_model(path)
    assert loaded._metric_weighted == model._metric_weighted
    expected = model.evaluate(x, y, sample_weight=w, return_dict=True, verbose=0)
    got = loaded.evaluate(x, y, sample_weight=w, return_dict=True, verbose=0)
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key] == pytest.approx(expected[key], rel=1e-6), key


def test_weighted_metrics_argument_checks():
    model = fastnn.Sequential([fastnn.layers.Dense(1, input_shape=(2,))])
    with pytest.raises(ValueError, match=r"argument `weighted_metrics` must be a list of metrics"):
        model.compile(loss="mse", weighted_metrics=3)
    shared = fastnn.metrics.MeanAbsoluteError()
    with pytest.raises(ValueError, match=r"metric instance 'mean_absolute_error' is in both `metrics` and "
                                         r"`weighted_metrics`"):
        model.compile(loss="mse", metrics=[shared], weighted_metrics=[shared])
