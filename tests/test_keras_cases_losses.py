"""Keras 3's own loss test cases, as data, run against fastnn's compiled kernels and their NumPy twins.

Each case is (Keras test it comes from, loss, its kwargs, y_true, y_pred, sample_weight, expected,
tolerance), copied from https://github.com/keras-team/keras/blob/master/keras/src/losses/losses_test.py
(the class and test name are given; only the losses fastnn offers). Keras' tolerances: its
``assertAlmostEqual`` is ``decimal=3`` (|got - expected| < 1.5e-3) unless another decimal is given;
``assertAllClose`` is ``atol=rtol=1e-6`` unless given.
"""
import numpy as np
import pytest

from fastnn import _kernels, losses

SRC = "https://github.com/keras-team/keras/blob/master/keras/src/losses/losses_test.py"


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


F32 = np.float32
REG_TRUE = np.array([[1, 9, 2], [-5, -2, 6]])
REG_PRED = np.array([[4, 8, 12], [8, 1, 3]], dtype=F32)
TS_TRUE = np.asarray([1, 9, 2, -5, -2, 6]).reshape(2, 3, 1)
TS_PRED = np.asarray([4, 8, 12, 8, 1, 3]).reshape(2, 3, 1)
TS_WEIGHT = np.array([3, 6, 5, 0, 4, 2]).reshape((2, 3))
SW_COL = np.array([[1.2], [3.4]])

BCE_TRUE = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=F32)
BCE_PRED = np.array([[0.9, 0.1, 0.2], [0.3, 0.8, 0.1], [0.1, 0.2, 0.7]], dtype=F32)
SAT_TRUE = np.array([1, 0, 1, 0]).reshape([2, 2])
SAT_PRED = np.array([1, 1, 1, 0], dtype=F32).reshape([2, 2])
BCE_LOGIT_TRUE = np.array([[1, 0, 1], [0, 1, 1]])
BCE_LOGITS = np.array([[10.0, -10.0, 10.0], [10.0, 10.0, -10.0]])

ONE_HOT = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
CCE_PRED = np.array([[0.9, 0.05, 0.05], [0.5, 0.89, 0.6], [0.05, 0.01, 0.94]], dtype=F32)
CCE_LOGITS = np.array([[8.0, 1.0, 1.0], [0.0, 9.0, 1.0], [2.0, 3.0, 5.0]])
SW3 = np.array([[1.2], [3.4], [5.6]]).reshape((3, 1))
IDS_COL = np.array([[0], [1], [2]])

MSE, MAE = losses.MeanSquaredError, losses.MeanAbsoluteError
BCE, CCE, SCCE = losses.BinaryCrossentropy, losses.CategoricalCrossentropy, losses.SparseCategoricalCrossentropy

CASES = [
    # --- MeanSquaredErrorTest
    ("MeanSquaredErrorTest.test_all_correct_unweighted", MSE, {}, REG_PRED, REG_PRED, None, 0.0, almost()),
    ("MeanSquaredErrorTest.test_unweighted", MSE, {}, REG_TRUE, REG_PRED, None, 49.5, almost()),
    ("MeanSquaredErrorTest.test_scalar_weighted", MSE, {}, REG_TRUE, REG_PRED, 2.3, 113.85, almost()),
    ("MeanSquaredErrorTest.test_sample_weighted", MSE, {}, REG_TRUE, REG_PRED, SW_COL, 767.8 / 6, almost()),
    ("MeanSquaredErrorTest.test_timestep_weighted", MSE, {}, TS_TRUE, TS_PRED, TS_WEIGHT, 97.833336, almost()),
    ("MeanSquaredErrorTest.test_zero_weighted", MSE, {}, REG_TRUE, REG_PRED, 0, 0.0, almost()),
    ("MeanSquaredErrorTest.test_no_reduction", MSE, {"reduction": None}, REG_TRUE, REG_PRED, 2.3,
     [84.3333, 143.3666], almost()),
    ("MeanSquaredErrorTest.test_sum_reduction", MSE, {"reduction": "sum"}, REG_TRUE, REG_PRED, 2.3, 227.69998,
     almost()),
    ("MeanSquaredErrorTest.test_mean_with_sample_weight_reduction", MSE, {"reduction": "mean_with_sample_weight"},
     REG_TRUE, REG_PRED, SW_COL, (110 / 3 * 1.2 + 187 / 3 * 3.4) / (1.2 + 3.4), almost()),
    # --- MeanAbsoluteErrorTest
    ("MeanAbsoluteErrorTest.test_all_correct_unweighted", MAE, {}, REG_PRED, REG_PRED, None, 0.0, almost()),
    ("MeanAbsoluteErrorTest.test_unweighted", MAE, {}, REG_TRUE, REG_PRED, None, 5.5, almost()),
    ("MeanAbsoluteErrorTest.test_scalar_weighted", MAE, {}, REG_TRUE, REG_PRED, 2.3, 12.65, almost()),
    ("MeanAbsoluteErrorTest.test_sample_weighted", MAE, {}, REG_TRUE, REG_PRED, SW_COL, 81.4 / 6, almost()),
    ("MeanAbsoluteErrorTest.test_timestep_weighted", MAE, {}, TS_TRUE, TS_PRED, TS_WEIGHT, 13.833333, almost()),
    ("MeanAbsoluteErrorTest.test_zero_weighted", MAE, {}, REG_TRUE, REG_PRED, 0, 0.0, almost()),
    ("MeanAbsoluteErrorTest.test_no_reduction", MAE, {"reduction": None}, REG_TRUE, REG_PRED, 2.3,
     [10.7333, 14.5666], almost()),
    ("MeanAbsoluteErrorTest.test_sum_reduction", MAE, {"reduction": "sum"}, REG_TRUE, REG_PRED, 2.3, 25.29999,
     almost()),
    ("MeanAbsoluteErrorTest.test_mean_with_sample_weight_reduction", MAE, {"reduction": "mean_with_sample_weight"},
     REG_TRUE, REG_PRED, SW_COL, (14 / 3 * 1.2 + 19 / 3 * 3.4) / (1.2 + 3.4), almost()),
    # --- BinaryCrossentropyTest
    ("BinaryCrossentropyTest.test_all_correct_unweighted", BCE, {}, BCE_TRUE, BCE_TRUE, None, 0.0, almost()),
    ("BinaryCrossentropyTest.test_all_correct_unweighted (logits)", BCE, {"from_logits": True}, BCE_TRUE,
     np.array([[10.0, -10.0, -10.0], [-10.0, 10.0, -10.0], [-10.0, -10.0, 10.0]]), None, 0.0, almost()),
    ("BinaryCrossentropyTest.test_unweighted", BCE, {}, BCE_TRUE, BCE_PRED, None, 0.20046903, allclose()),
    # the saturated probability: 1.0 for a 0 label, clipped to 1 - 1e-7 in float32 (0.99999988)
    ("BinaryCrossentropyTest.test_unweighted (saturated)", BCE, {}, SAT_TRUE, SAT_PRED, None, 3.98559, almost()),
    ("BinaryCrossentropyTest.test_unweighted (logits)", BCE, {"from_logits": True}, BCE_LOGIT_TRUE, BCE_LOGITS,
     None, 3.3333, almost()),
    ("BinaryCrossentropyTest.test_scalar_weighted", BCE, {}, SAT_TRUE, SAT_PRED, 2.3, 9.1668, almost()),
    ("BinaryCrossentropyTest.test_scalar_weighted (logits)", BCE, {"from_logits": True}, BCE_LOGIT_TRUE,
     BCE_LOGITS, 2.3, 7.666, almost()),
    ("BinaryCrossentropyTest.test_sample_weighted", BCE, {}, SAT_TRUE, SAT_PRED, np.array([1.2, 3.4]).reshape((2, 1)),
     4.7827, almost()),
    ("BinaryCrossentropyTest.test_sample_weighted (logits)", BCE, {"from_logits": True}, BCE_LOGIT_TRUE,
     BCE_LOGITS, np.array([4, 3]), 10.0, almost()),
    ("BinaryCrossentropyTest.test_no_reduction", BCE, {"from_logits": True, "reduction": None}, BCE_LOGIT_TRUE,
     BCE_LOGITS, None, [0.0, 6.666], allclose(atol=1e-3)),
    ("BinaryCrossentropyTest.test_label_smoothing", BCE, {"from_logits": True, "label_smoothing": 0.1},
     np.array([[1, 0, 1]]), np.array([[10.0, -10.0, -10.0]]), None, (10.0 + 5.0 * 0.1) / 3.0, almost()),
    # --- CategoricalCrossentropyTest
    ("CategoricalCrossentropyTest.test_all_correct_unweighted", CCE, {}, ONE_HOT.astype(np.int64),
     np.eye(3, dtype=F32), None, 0.0, almost()),
    ("CategoricalCrossentropyTest.test_all_correct_unweighted (logits)", CCE, {"from_logits": True}, ONE_HOT,
     np.array([[10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 10.0]]), None, 0.0, almost()),
    ("CategoricalCrossentropyTest.test_unweighted", CCE, {}, ONE_HOT, CCE_PRED, None, 0.3239, almost()),
    ("CategoricalCrossentropyTest.test_unweighted (logits)", CCE, {"from_logits": True}, ONE_HOT, CCE_LOGITS, None,
     0.0573, almost()),
    ("CategoricalCrossentropyTest.test_scalar_weighted", CCE, {}, ONE_HOT, CCE_PRED, 2.3, 0.7449, almost()),
    ("CategoricalCrossentropyTest.test_scalar_weighted (logits)", CCE, {"from_logits": True}, ONE_HOT, CCE_LOGITS,
     2.3, 0.1317, almost()),
    ("CategoricalCrossentropyTest.test_sample_weighted", CCE, {}, ONE_HOT, CCE_PRED, SW3, 1.0696, almost()),
    ("CategoricalCrossentropyTest.test_sample_weighted (logits)", CCE, {"from_logits": True}, ONE_HOT, CCE_LOGITS,
     SW3, 0.31829, almost()),
    ("CategoricalCrossentropyTest.test_no_reduction", CCE, {"from_logits": True, "reduction": None}, ONE_HOT,
     CCE_LOGITS, None, [0.001822, 0.000459, 0.169846], allclose()),
    ("CategoricalCrossentropyTest.test_label_smoothing", CCE, {"from_logits": True, "label_smoothing": 0.1},
     np.array([[1, 0, 0]]), np.array([[100.0, -100.0, -100.0]]), None, 400.0 * 0.1 / 3.0, almost()),
    # --- SparseCategoricalCrossentropyTest
    ("SparseCategoricalCrossentropyTest.test_all_correct_unweighted", SCCE, {}, IDS_COL.astype(np.int64),
     np.eye(3, dtype=F32), None, 0.0, almost(3)),
    ("SparseCategoricalCrossentropyTest.test_all_correct_unweighted (logits)", SCCE, {"from_logits": True},
     IDS_COL, np.array([[10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 10.0]]), None, 0.0, almost(3)),
    ("SparseCategoricalCrossentropyTest.test_unweighted", SCCE, {}, np.array([0, 1, 2]), CCE_PRED, None, 0.3239,
     almost(3)),
    ("SparseCategoricalCrossentropyTest.test_unweighted (logits)", SCCE, {"from_logits": True}, np.array([0, 1, 2]),
     CCE_LOGITS, None, 0.0573, almost(3)),
    ("SparseCategoricalCrossentropyTest.test_scalar_weighted", SCCE, {}, IDS_COL, CCE_PRED, 2.3, 0.7449, almost(3)),
    ("SparseCategoricalCrossentropyTest.test_scalar_weighted (logits)", SCCE, {"from_logits": True}, IDS_COL,
     CCE_LOGITS, 2.3, 0.1317, almost(3)),
    ("SparseCategoricalCrossentropyTest.test_sample_weighted", SCCE, {}, IDS_COL, CCE_PRED, SW3, 1.0696, almost(3)),
    ("SparseCategoricalCrossentropyTest.test_sample_weighted (logits)", SCCE, {"from_logits": True}, IDS_COL,
     CCE_LOGITS, SW3, 0.31829, almost(3)),
    ("SparseCategoricalCrossentropyTest.test_no_reduction", SCCE, {"from_logits": True, "reduction": None}, IDS_COL,
     CCE_LOGITS, None, [0.001822, 0.000459, 0.169846], allclose()),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_keras_loss_case(case, kernels):
    source, cls, kwargs, y_true, y_pred, sample_weight, expected, tol = case
    got = cls(**kwargs)(y_true, y_pred, sample_weight=sample_weight)
    np.testing.assert_allclose(got, expected, err_msg=f"{SRC} {source}", **tol)
    if np.ndim(expected):
        assert isinstance(got, np.ndarray) and got.shape == np.shape(expected)
    else:
        assert isinstance(got, float)


def test_base_function_reduction(kernels):
    """MeanSquaredErrorTest.test_base_function_reduction: the functional form returns one loss per sample."""
    loss = losses.mean_squared_error(np.array([4, 8, 12]), np.array([[3], [0], [1]]))
    assert loss.shape == (3,)
    np.testing.assert_allclose(loss, [1.0, 64.0, 121.0])


def test_saturated_binary_crossentropy_every_path(kernels):
    """The float32 clip (1 - 1e-7 rounds to 0.99999988) on the functional form, the class and the kernels;
    float64 keeps 1 - 1e-7 (Keras computes in the tensor's dtype)."""
    per_element_f32 = -np.log(np.float64(np.float32(1) - np.float32(1e-7)))  # y=1, p=1
    cost_f32 = -np.log1p(-np.float64(np.float32(1) - np.float32(1e-7)))  # y=0, p=1: 15.942
    np.testing.assert_allclose(cost_f32, 15.942385, rtol=1e-6)
    rows = losses.binary_crossentropy(SAT_TRUE, SAT_PRED)
    np.testing.assert_allclose(rows[0], (per_element_f32 + cost_f32) / 2, rtol=1e-6)
    total, _ = _kernels.bxent_backward(SAT_PRED, SAT_TRUE.astype(F32))
    np.testing.assert_allclose(total / 2, 3.98559, atol=1.5e-3)
    rows64 = losses.binary_crossentropy(SAT_TRUE, SAT_PRED.astype(np.float64))
    np.testing.assert_allclose(rows64[0], (-np.log(1 - 1e-7) - np.log(1 - (1 - 1e-7))) / 2, rtol=1e-12)
    # categorical: a one-hot prediction of the wrong class costs -log(float32(1e-7)) = 16.118
    cce = losses.categorical_crossentropy(np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]], dtype=F32))
    np.testing.assert_allclose(cce, [-np.log(np.float64(np.float32(1e-7)))], rtol=1e-6)
    scce = losses.sparse_categorical_crossentropy(np.array([1]), np.array([[1.0, 0.0]], dtype=F32))
    np.testing.assert_allclose(scce, cce, rtol=1e-7)


def test_bad_reduction():
    """HingeTest.test_unweighted ("Bad reduction") applies to every loss class."""
    for cls in (MSE, MAE, BCE, CCE, SCCE):
        with pytest.raises(ValueError, match=r"(?i)invalid value for argument `reduction`.*received reduction='abc'"):
            cls(reduction="abc")


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "mean", "sum", "mean_with_sample_weight", None,
                                       "none"])
def test_reductions_definitions(reduction, kernels):
    """Keras 3's definitions (keras/src/losses/loss.py reduce_values) with per-sample weights."""
    w = np.array([1.2, 3.4])
    per_sample = np.array([110 / 3, 187 / 3])
    expected = {"sum_over_batch_size": (per_sample * w).mean(), "mean": (per_sample * w).mean(),
                "sum": (per_sample * w).sum(), "mean_with_sample_weight": (per_sample * w).sum() / w.sum(),
                None: per_sample * w, "none": per_sample * w}[reduction]
    np.testing.assert_allclose(MSE(reduction=reduction)(REG_TRUE, REG_PRED, sample_weight=w), expected, rtol=1e-6)
    # without weights, mean_with_sample_weight is the mean
    if reduction == "mean_with_sample_weight":
        np.testing.assert_allclose(MSE(reduction=reduction)(REG_TRUE, REG_PRED), per_sample.mean(), rtol=1e-6)


def test_per_element_weights_broadcast(kernels):
    """Weights shaped like the losses of a (B, T, 1) batch weigh each timestep; weights that do not broadcast
    get an error naming the argument, its shape and the losses' shape."""
    weighted = MSE(reduction=None)(TS_TRUE, TS_PRED, sample_weight=TS_WEIGHT)
    assert weighted.shape == (2, 3)
    np.testing.assert_allclose(weighted, (TS_PRED - TS_TRUE)[..., 0] ** 2 * TS_WEIGHT, rtol=1e-6)
    with pytest.raises(ValueError, match=r"`sample_weight` of shape \(3,\) cannot be broadcast to the losses of "
                                         r"shape \(2,\)"):
        MSE()(REG_TRUE, REG_PRED, sample_weight=np.ones(3))
    with pytest.raises(TypeError, match=r"`sample_weight` must be a number or a numeric array; received 'a'"):
        MSE()(REG_TRUE, REG_PRED, sample_weight="a")
    with pytest.raises(ValueError, match=r"`sample_weight` must be finite"):
        MSE()(REG_TRUE, REG_PRED, sample_weight=np.array([1.0, np.nan]))


def test_compile_refuses_reductions_fit_cannot_train():
    import fastnn

    model = fastnn.Sequential([fastnn.layers.Dense(1, input_shape=(2,))])
    with pytest.raises(ValueError, match=r"reduction='sum'"):
        model.compile(optimizer="sgd", loss=MSE(reduction="sum"))
    model.compile(optimizer="sgd", loss=MSE(reduction="mean"))
