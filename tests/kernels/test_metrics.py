"""metrics.pyx (metric_sum) against its NumPy twin, hand values and bad input."""
import numpy as np
import pytest

from fastnn._kernels import _reference as R
from fastnn._kernels import metrics as C

from .conftest import arrange


def _labels(metric, B, K, dtype, rng):
    if metric == "sparse_categorical_accuracy":
        return rng.integers(0, K, B)
    if metric == "categorical_accuracy":
        return np.eye(K, dtype=dtype)[rng.integers(0, K, B)]
    if metric == "binary_accuracy":
        return (rng.random((B, K)) > 0.5).astype(dtype)
    return rng.standard_normal((B, K)).astype(dtype)


@pytest.mark.parametrize("metric", ("binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
                                    "mae", "mse"))
@pytest.mark.parametrize("shape", ((9, 4), (3000, 20)))
def test_matches_reference(metric, shape, dtype, n_threads, layout, rng):
    P = rng.random(shape).astype(dtype)
    P[0, :2] = P[0, 0]  # a tie: argmax takes the first
    y = _labels(metric, *shape, dtype, rng)
    got = C.metric_sum(arrange(P, layout), arrange(y, layout), metric, n_threads=n_threads)
    assert isinstance(got, float)
    np.testing.assert_allclose(got, R.metric_sum(P, y, metric), rtol=1e-12)
    assert got == C.metric_sum(P, y, metric, n_threads=1)  # row-order sum: thread-count independent


def test_hand_values():
    P = np.array([[0.1, 0.7, 0.2], [0.5, 0.4, 0.1]])
    assert C.metric_sum(P, np.array([1, 2]), "sparse_categorical_accuracy") == 1.0
    assert C.metric_sum(P, np.array([[1], [0]]), "sparse_categorical_accuracy") == 2.0
    assert C.metric_sum(P, np.eye(3)[[1, 0]], "categorical_accuracy") == 2.0
    assert C.metric_sum(np.array([[0.6, 0.4]]), np.array([[1.0, 1.0]]), "binary_accuracy") == 0.5
    np.testing.assert_allclose(C.metric_sum(P, np.zeros((2, 3)), "mae"), (1.0 + 1.0) / 3)


def test_bad_input():
    with pytest.raises(ValueError, match="Unknown metric 'f1'"):
        C.metric_sum(np.zeros((2, 2)), np.zeros((2, 2)), "f1")
    with pytest.raises(ValueError, match="`y_true` holds class ids that must be in \\[0, 2\\)"):
        C.metric_sum(np.zeros((2, 2)), np.array([0, 2]), "sparse_categorical_accuracy")
    with pytest.raises(ValueError, match="`y_true` must have shape \\(2, 2\\)"):
        C.metric_sum(np.zeros((2, 2)), np.array([0, 1]), "categorical_accuracy")
    with pytest.raises(ValueError, match="`y_true` must be finite"):
        C.metric_sum(np.zeros((1, 2)), np.array([[np.inf, 0]]), "mse")


# ----------------------------------------------------------------------------- confusion counts
def _naive_counts(y, p, thresholds, w):
    """tp, fp, tn, fn by direct comparison (Keras' unoptimized path), one threshold at a time."""
    t = np.asarray(thresholds).astype(p.dtype)
    out = np.zeros((4, len(t), p.shape[1]))
    for j, tj in enumerate(t):
        pred = p > tj
        pos = y != 0
        for k, mask in enumerate((pos & pred, ~pos & pred, ~pos & ~pred, pos & ~pred)):
            out[k, j] = (mask * w[:, None]).sum(axis=0)
    return out


@pytest.mark.parametrize("shape", ((9, 1), (3000, 4)))
@pytest.mark.parametrize("weighted", (False, True))
def test_confusion_counts_match_reference_and_direct_comparison(shape, weighted, dtype, n_threads, layout, rng):
    p = rng.random(shape).astype(dtype)
    p[0, 0] = dtype(0.5)  # on a threshold: not above it
    p[1, 0] = np.nan      # above no threshold
    y = (rng.random(shape) > 0.6).astype(dtype)
    y[2, 0] = 3.0         # any non-zero label is a positive (Keras casts to bool)
    t = np.array([-1e-7, 0.25, 0.5, 0.75, 1 + 1e-7])
    w = rng.random(shape[0]) * 2 if weighted else None
    got = C.confusion_counts(arrange(y, layout), arrange(p, layout), t, sample_weight=w, n_threads=n_threads)
    assert got.shape == (4, 5, shape[1]) and got.dtype == np.float64
    np.testing.assert_array_equal(got, R.confusion_counts(y, p, t, sample_weight=w))
    ones = np.ones(shape[0]) if w is None else w
    np.testing.assert_allclose(got, _naive_counts(y, p, t, ones), rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(got, C.confusion_counts(y, p, t, sample_weight=w, n_threads=1))


def test_confusion_counts_accumulate_and_hand_values():
    y = np.array([[0.0], [0.0], [1.0], [1.0]])
    p = np.array([[0.1], [0.5], [0.3], [0.9]])
    counts = C.confusion_counts(y, p, [0.0, 0.5, 1.0])
    #                    t=0   t=0.5  t=1
    np.testing.assert_array_equal(counts[:, :, 0], [[2, 1, 0],    # tp
                                                    [2, 0, 0],    # fp
                                                    [0, 2, 2],    # tn
                                                    [0, 1, 2]])   # fn
    assert C.confusion_counts(y, p, [0.0, 0.5, 1.0], counts=counts) is counts
    np.testing.assert_array_equal(counts[0, :, 0], [4, 2, 0])
    weighted = C.confusion_counts(y, p, [0.5], sample_weight=[1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(weighted[:, 0, 0], [4.0, 0.0, 3.0, 3.0])


def test_confusion_counts_bad_input():
    p = np.zeros((3, 2))
    with pytest.raises(ValueError, match="`y_true` must have shape \\(3, 2\\)"):
        C.confusion_counts(np.zeros(3), p, [0.5])
    with pytest.raises(ValueError, match="`thresholds` must be finite and sorted in ascending order"):
        C.confusion_counts(p, p, [0.5, 0.2])
    with pytest.raises(ValueError, match="`thresholds` must be a non-empty 1-D array"):
        C.confusion_counts(p, p, [])
    with pytest.raises(ValueError, match="`sample_weight` must be a numeric array of shape \\(3,\\)"):
        C.confusion_counts(p, p, [0.5], sample_weight=np.ones(4))
    with pytest.raises(ValueError, match="`counts` is accumulated in place.*\\(4, 1, 2\\)"):
        C.confusion_counts(p, p, [0.5], counts=np.zeros((4, 2, 2)))
    with pytest.raises(ValueError, match="`y_true` must be finite"):
        C.confusion_counts(np.array([[np.nan, 0]] * 3), p, [0.5])


# ----------------------------------------------------------------------------- thresholds, weights, per row
@pytest.mark.parametrize("metric", ("binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
                                    "mae", "mse"))
@pytest.mark.parametrize("threshold", (0.5, 0.3, 0.7))
def test_forward_and_weighted_sum_match_reference(metric, threshold, dtype, n_threads, layout, rng):
    B, K = 257, 3
    P = rng.random((B, K)).astype(dtype)
    P[1, 0] = dtype(threshold)  # exactly at the threshold: not above it
    y = _labels(metric, B, K, dtype, rng)
    w = rng.uniform(0, 2, B)
    rows = C.metric_forward(arrange(P, layout), arrange(y, layout), metric, threshold, n_threads=n_threads)
    assert rows.dtype == np.float64 and rows.shape == (B,)
    np.testing.assert_allclose(rows, R.metric_forward(P, y, metric, threshold), rtol=1e-12)
    got = C.metric_sum(arrange(P, layout), arrange(y, layout), metric, threshold, arrange(w, layout),
                       n_threads=n_threads)
    np.testing.assert_allclose(got, R.metric_sum(P, y, metric, threshold, w), rtol=1e-12)
    assert got == C.metric_sum(P, y, metric, threshold, w, n_threads=1)
    np.testing.assert_allclose(got, rows @ w, rtol=1e-12)


def test_threshold_compared_in_the_dtype():
    """Keras compares y_pred > threshold in y_pred's dtype: float32(0.1) is above float32 0.1's value only if
    the threshold is rounded the same way."""
    p = np.array([[np.float32(0.1)]], np.float32)
    for impl in (C, R):
        assert impl.metric_sum(p, np.array([[0.0]], np.float32), "binary_accuracy", 0.1) == 1.0
        assert impl.metric_sum(p.astype(np.float64), np.array([[0.0]]), "binary_accuracy", 0.1) == 0.0


def test_nan_prediction_is_not_above_the_threshold():
    p = np.array([[np.nan, 0.9]])
    y = np.array([[0.0, 1.0]])
    for impl in (C, R):
        np.testing.assert_array_equal(impl.metric_forward(p, y, "binary_accuracy", 0.5), [1.0])
        assert np.isnan(impl.metric_forward(p, y, "mse")[0])


def test_weighted_bad_input():
    with pytest.raises(ValueError, match=r"metric_sum: argument `sample_weight` must be a numeric array of shape "
                                         r"\(2,\)"):
        C.metric_sum(np.zeros((2, 2)), np.zeros((2, 2)), "mse", sample_weight=np.ones(3))
    with pytest.raises(ValueError, match=r"`sample_weight` must be finite"):
        C.metric_sum(np.zeros((2, 2)), np.zeros((2, 2)), "mse", sample_weight=np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match=r"metric_forward: argument `threshold` must be a real number"):
        C.metric_forward(np.zeros((2, 2)), np.zeros((2, 2)), "binary_accuracy", threshold="0.5")
