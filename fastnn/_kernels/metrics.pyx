"""Metric kernels: the batch sum of a per-sample metric, and confusion counts over thresholds.

Dimension legend: B rows, K classes / outputs, L label columns, T thresholds.
Threads split the rows; the per-row values are summed serially in row order
(float64), so the results do not depend on the thread count.
"""
import numpy as np

from cython.parallel cimport prange

from fastnn.utils.validation import describe, shape_str

from fastnn._kernels._typedefs cimport floating, intp_t
from fastnn._kernels._openmp cimport effective_n_threads, threads_for_work
from fastnn._kernels._checks cimport class_ids, finite_labels, float_array, out_array, real_number, same_shape
from fastnn._kernels._loops_loss cimport METRIC_SPARSE_CATEGORICAL_ACCURACY, metric_code, metric_row


cdef double _rows(int metric, const floating[:, ::1] P, const intp_t* ids, const floating* Y, double threshold,
                  const double* sw, double[::1] rows, bint total, int nt) noexcept:
    """rows[r] = the metric of row r; with ``total``, the sum over rows (times sw[r] if not NULL) in row
    order, else 0."""
    cdef Py_ssize_t B = P.shape[0], K = P.shape[1], r
    cdef double s = 0
    if B == 0:
        return 0.0
    with nogil:
        if nt == 1:
            for r in range(B):
                rows[r] = metric_row(metric, &P[0, 0], ids, Y, r, K, threshold)
        else:
            for r in prange(B, num_threads=nt, schedule="static"):
                rows[r] = metric_row(metric, &P[0, 0], ids, Y, r, K, threshold)
        if total:
            for r in range(B):
                s += rows[r] * sw[r] if sw != NULL else rows[r]
    return s


cdef object _metric(str owner, y_pred, y_true, metric, threshold, sample_weight, out, bint total, n_threads):
    cdef int code = metric_code(metric)
    P = float_array(owner, "y_pred", y_pred, 2)
    cdef Py_ssize_t B = P.shape[0], K = P.shape[1]
    if K == 0:
        raise ValueError(f"{owner}: argument `y_pred` must have at least one column; received {describe(y_pred)}.")
    cdef double t = real_number(owner, "threshold", threshold)
    ids = None
    Y = None
    if code == METRIC_SPARSE_CATEGORICAL_ACCURACY:
        yt = y_true if isinstance(y_true, np.ndarray) else np.asarray(y_true)
        if yt.ndim == 2 and yt.shape[1] == 1:  # Keras also accepts (B, 1) class ids
            yt = yt[:, 0]
        ids = class_ids(owner, "y_true", yt, B, K)
    else:
        Y = same_shape(owner, "y_true", y_true, (B, K), P.dtype)
        finite_labels(owner, "y_true", Y)
    sw = None
    if sample_weight is not None:
        sw = sample_weight if isinstance(sample_weight, np.ndarray) else np.asarray(sample_weight)
        if sw.dtype.kind not in "fiub" or sw.shape != (B,):
            raise ValueError(f"{owner}: argument `sample_weight` must be a numeric array of shape ({B},), one "
                             f"weight per row; received {describe(sample_weight)}.")
        sw = np.ascontiguousarray(sw, dtype=np.float64)
        if not np.isfinite(sw).all():
            raise ValueError(f"{owner}: argument `sample_weight` must be finite; received "
                             f"{describe(sample_weight)} containing NaN or inf.")
    rows = out_array(owner, "out", out, (B,), np.float64) if not total else np.empty(B)
    cdef int nt = threads_for_work(effective_n_threads(n_threads), B * K * 4)
    cdef const intp_t[::1] idv = ids
    cdef const double[::1] swv = sw
    cdef const float[:, ::1] Yf
    cdef const double[:, ::1] Yd
    cdef const intp_t* pids = &idv[0] if ids is not None and B else NULL
    cdef const double* psw = &swv[0] if sw is not None and B else NULL
    cdef double s
    if P.dtype == np.float32:
        Yf = Y
        s = _rows[float](code, P, pids, &Yf[0, 0] if Y is not None and B else NULL, t, psw, rows, total, nt)
    else:
        Yd = Y
        s = _rows[double](code, P, pids, &Yd[0, 0] if Y is not None and B else NULL, t, psw, rows, total, nt)
    return s if total else rows


def metric_forward(y_pred, y_true, metric, threshold=0.5, out=None, n_threads=None):
    """Per-sample value of a metric, float64 (B,).

    metric: "binary_accuracy" (mean over K of [y_pred > threshold] == [y_true > 0.5], the threshold
    rounded to y_pred's dtype as Keras compares), "categorical_accuracy" (argmax == argmax),
    "sparse_categorical_accuracy" (argmax == int label), "mae", "mse" (means over K, rounded to the
    dtype as mae/mse_forward).  y_pred (B, K).
    """
    return _metric("metric_forward", y_pred, y_true, metric, threshold, None, out, False, n_threads)


def metric_sum(y_pred, y_true, metric, threshold=0.5, sample_weight=None, n_threads=None):
    """Sum over the batch of a per-sample metric (``metric_forward``), each times its weight when
    ``sample_weight`` (B,) is given, as a Python float (float64, rows in order)."""
    return _metric("metric_sum", y_pred, y_true, metric, threshold, sample_weight, None, True, n_threads)


# --------------------------------------------------------------------------- confusion counts
cdef inline Py_ssize_t _bucket(floating p, const floating* t, Py_ssize_t T) noexcept nogil:
    """#{j : t[j] < p} for ascending t (binary search); 0 for a NaN p, which exceeds no threshold."""
    cdef Py_ssize_t lo = 0, hi = T, mid
    while lo < hi:
        mid = (lo + hi) // 2
        if t[mid] < p:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef void _confusion(const floating[:, ::1] P, const floating[:, ::1] Y, const floating[::1] t,
                     const double* sw, intp_t[:, ::1] bucket, double[:, ::1] pos, double[:, ::1] neg,
                     double[:, :, ::1] counts, int nt) noexcept:
    cdef Py_ssize_t B = P.shape[0], L = P.shape[1], T = t.shape[0], r, c, k
    cdef double w, above_pos, above_neg
    with nogil:
        # 1. the bucket of every element (parallel over rows: each thread writes its own rows)
        if B:
            if nt == 1:
                for r in range(B):
                    for c in range(L):
                        bucket[r, c] = _bucket(P[r, c], &t[0], T)
            else:
                for r in prange(B, num_threads=nt, schedule="static"):
                    for c in range(L):
                        bucket[r, c] = _bucket(P[r, c], &t[0], T)
        # 2. weight histograms per bucket and column, serially in row order (deterministic)
        for r in range(B):
            w = sw[r] if sw != NULL else 1.0
            for c in range(L):
                if Y[r, c] != 0:
                    pos[bucket[r, c], c] += w
                else:
                    neg[bucket[r, c], c] += w
        # 3. reverse cumulative sums: tp[j] = positives in buckets > j; tn = all negatives - fp
        for c in range(L):
            above_pos = 0
            above_neg = 0
            for k in range(T, 0, -1):
                above_pos += pos[k, c]
                above_neg += neg[k, c]
                pos[k, c] = above_pos
                neg[k, c] = above_neg
            above_pos += pos[0, c]
            above_neg += neg[0, c]
            for k in range(T):
                counts[0, k, c] += pos[k + 1, c]
                counts[1, k, c] += neg[k + 1, c]
                counts[2, k, c] += above_neg - neg[k + 1, c]
                counts[3, k, c] += above_pos - pos[k + 1, c]


def confusion_counts(y_true, y_pred, thresholds, sample_weight=None, counts=None, n_threads=None):
    """Confusion counts of ``y_pred > t`` against ``y_true != 0`` at every threshold t, per column.

    y_true (B, L) numeric, cast to bool as Keras does (any non-zero label is a positive);
    y_pred (B, L) float; thresholds (T,) ascending, compared in y_pred's dtype
    (K3 metrics/metrics_utils.py update_confusion_matrix_variables: ``y_pred > thresholds``);
    sample_weight (B,) or None (weights 1). counts (4, T, L) float64 [tp, fp, tn, fn] is
    ACCUMULATED (+=) and returned; a new zeroed one is made when None.
    """
    owner = "confusion_counts"
    P = float_array(owner, "y_pred", y_pred, 2)
    cdef Py_ssize_t B = P.shape[0], L = P.shape[1]
    Y = same_shape(owner, "y_true", y_true, (B, L), P.dtype)
    finite_labels(owner, "y_true", Y)
    th = np.asarray(thresholds)
    if th.ndim != 1 or th.shape[0] == 0 or th.dtype.kind not in "fiu":
        raise ValueError(f"{owner}: argument `thresholds` must be a non-empty 1-D array of numbers; "
                         f"received {describe(thresholds)}.")
    t = np.ascontiguousarray(th, dtype=np.float64).astype(P.dtype)
    if not np.isfinite(t).all() or (np.diff(t) < 0).any():
        raise ValueError(f"{owner}: argument `thresholds` must be finite and sorted in ascending order; "
                         f"received {describe(thresholds)}.")
    cdef Py_ssize_t T = t.shape[0]
    sw = None
    if sample_weight is not None:
        sw = np.asarray(sample_weight)
        if sw.dtype.kind not in "fiub" or sw.shape != (B,):
            raise ValueError(f"{owner}: argument `sample_weight` must be a numeric array of shape ({B},), one "
                             f"weight per row; received {describe(sample_weight)}.")
        sw = np.ascontiguousarray(sw, dtype=np.float64)
        if not np.isfinite(sw).all():
            raise ValueError(f"{owner}: argument `sample_weight` must be finite; received "
                             f"{describe(sample_weight)} containing NaN or inf.")
    if counts is None:
        counts = np.zeros((4, T, L))
    elif not isinstance(counts, np.ndarray) or counts.shape != (4, T, L) or counts.dtype != np.float64 \
            or not counts.flags.c_contiguous or not counts.flags.writeable:
        raise ValueError(f"{owner}: argument `counts` is accumulated in place and must be a writeable "
                         f"C-contiguous float64 array of shape (4, {T}, {L}); received {describe(counts)}.")
    bucket = np.empty((B, L), dtype=np.intp)
    pos = np.zeros((T + 1, L))
    neg = np.zeros((T + 1, L))
    cdef const double[::1] swv = sw
    cdef const double* psw = &swv[0] if sw is not None and B else NULL
    cdef int nt = threads_for_work(effective_n_threads(n_threads), B * L * 8)
    if P.dtype == np.float32:
        _confusion[float](P, Y, t, psw, bucket, pos, neg, counts, nt)
    else:
        _confusion[double](P, Y, t, psw, bucket, pos, neg, counts, nt)
    return counts
