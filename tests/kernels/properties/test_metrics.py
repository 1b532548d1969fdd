"""metric_sum, metric_forward and confusion_counts: compiled vs twin. Accuracies and counts are exact
(they count comparisons); mae/mse, and sums weighted by sample weights, within the dtype's tolerance."""
import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="the property tests need hypothesis (pip install '.[test]')")
from hypothesis import given, strategies as st  # noqa: E402

from ._props import (DTYPES, LAYOUT, SEEDS, THREADS, arrange, assert_same, both_refuse, compiled, dim,  # noqa: E402
                     prop_settings, twin, values)

KERNELS = ("metric_sum", "metric_forward", "confusion_counts")
METRICS = st.sampled_from(["binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy", "mae", "mse"])
SHAPES = st.one_of(st.tuples(dim(40), st.integers(1, 12)), st.tuples(st.integers(300, 900), st.integers(8, 20)))


def _metric_case(rng, metric, shape, dtype, layouts, special, ties, column_labels, threshold):
    B, K = shape
    P = values(rng, shape, dtype, special, low=0.0, high=1.0)
    if ties:  # equal maxima and values exactly at the threshold
        P[rng.random(shape) < 0.3] = dtype(threshold)
    if metric == "sparse_categorical_accuracy":
        y = rng.integers(0, K, B)
        if column_labels:
            y = y[:, None]  # Keras also accepts (B, 1) class ids
    elif metric in ("binary_accuracy", "categorical_accuracy"):
        y = np.eye(K)[rng.integers(0, K, B)].astype(dtype) if metric == "categorical_accuracy" else \
            rng.integers(0, 2, shape).astype(dtype)
    else:
        y = values(rng, shape, dtype)
    P, y = arrange(P, layouts[0]), arrange(y, layouts[1])
    twin_y = y[:, 0] if y.ndim == 2 and metric.startswith("sparse") else y
    return P, y, twin_y


THRESHOLDS = st.sampled_from([0.5, 0.0, 0.3, 0.9])


@prop_settings()
@given(metric=METRICS, shape=SHAPES, dtype=DTYPES, layouts=st.tuples(LAYOUT, LAYOUT),
       special=st.sampled_from([0.0, 0.05, 0.4]), ties=st.booleans(), column_labels=st.booleans(),
       threshold=THRESHOLDS, weighted=st.booleans(), seed=SEEDS, n_threads=THREADS)
def test_metric_sum(metric, shape, dtype, layouts, special, ties, column_labels, threshold, weighted, seed,
                    n_threads):
    rng = np.random.default_rng(seed)
    P, y, twin_y = _metric_case(rng, metric, shape, dtype, layouts, special, ties, column_labels, threshold)
    sw = rng.random(shape[0]) * 3 if weighted else None
    with np.errstate(all="ignore"):
        want = twin("metric_sum")(P, twin_y, metric, threshold=threshold, sample_weight=sw)
    got = compiled("metric_sum")(P, y, metric, threshold=threshold, sample_weight=sw, n_threads=n_threads)
    assert isinstance(got, float)
    if metric in ("mae", "mse") or weighted:
        assert_same(np.float64(got), np.float64(want), np.float64, rtol=1e-5 if dtype == np.float32 else 1e-12,
                    atol=1e-6 * max(shape[0], 1), what=metric)
    else:
        assert_same(np.float64(got), np.float64(want), np.float64, rtol=1e-12, atol=1e-9, what=metric)


@prop_settings()
@given(metric=METRICS, shape=SHAPES, dtype=DTYPES, layouts=st.tuples(LAYOUT, LAYOUT),
       special=st.sampled_from([0.0, 0.05, 0.4]), ties=st.booleans(), column_labels=st.booleans(),
       threshold=THRESHOLDS, seed=SEEDS, n_threads=THREADS)
def test_metric_forward(metric, shape, dtype, layouts, special, ties, column_labels, threshold, seed, n_threads):
    rng = np.random.default_rng(seed)
    P, y, twin_y = _metric_case(rng, metric, shape, dtype, layouts, special, ties, column_labels, threshold)
    with np.errstate(all="ignore"):
        want = twin("metric_forward")(P, twin_y, metric, threshold=threshold)
    got = compiled("metric_forward")(P, y, metric, threshold=threshold, n_threads=n_threads)
    assert got.shape == (shape[0],) and got.dtype == np.float64
    exact = metric not in ("mae", "mse")
    assert_same(got, want, np.float64, rtol=1e-12 if exact else (1e-5 if dtype == np.float32 else 1e-12),
                atol=1e-9 if exact else 1e-6, what=metric)


@prop_settings()
@given(shape=SHAPES, dtype=DTYPES, layouts=st.tuples(LAYOUT, LAYOUT), n_thresholds=st.integers(1, 9),
       on_threshold=st.booleans(), weighted=st.booleans(), accumulate=st.booleans(),
       special=st.sampled_from([0.0, 0.05, 0.4]), seed=SEEDS, n_threads=THREADS)
def test_confusion_counts(shape, dtype, layouts, n_thresholds, on_threshold, weighted, accumulate, special, seed,
                          n_threads):
    rng = np.random.default_rng(seed)
    thresholds = np.sort(rng.random(n_thresholds))
    thresholds[rng.random(n_thresholds) < 0.2] = 0.5  # repeated thresholds
    thresholds.sort()
    P = values(rng, shape, dtype, special, low=-0.1, high=1.1)
    if on_threshold and P.size:  # predictions exactly at a threshold (compared in P's dtype)
        P.flat[rng.integers(0, P.size, max(1, P.size // 4))] = thresholds[rng.integers(0, n_thresholds)]
    y = rng.integers(0, 3, shape).astype(rng.choice(["f4", "f8", "i4", "u1"]))  # any non-zero is positive
    sw = rng.random(shape[0]) * 3 if weighted else None
    P, y = arrange(P, layouts[0]), arrange(y, layouts[1])
    start = rng.random((4, n_thresholds, shape[1])) if accumulate else None
    got = compiled("confusion_counts")(y, P, thresholds, sw, None if start is None else start.copy(),
                                       n_threads=n_threads)
    want = twin("confusion_counts")(y, P, thresholds, sw, None if start is None else start.copy())
    assert_same(got, want, np.float64, rtol=1e-12, atol=1e-9, what="confusion_counts")


@prop_settings(0.3)
@given(shape=st.tuples(st.integers(1, 6), st.integers(2, 4)), T=st.integers(2, 5),
       layout=st.sampled_from(["F", "strided", "reversed", "readonly"]))
def test_counts_that_cannot_be_accumulated_in_place_are_refused_by_both(shape, T, layout):
    counts = arrange(np.zeros((4, T, shape[1])), layout)
    if counts.flags.c_contiguous and counts.flags.writeable:
        return
    both_refuse("confusion_counts", "counts", np.ones(shape), np.full(shape, 0.5), np.linspace(0, 1, T),
                counts=counts)
