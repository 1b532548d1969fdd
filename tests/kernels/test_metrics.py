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
