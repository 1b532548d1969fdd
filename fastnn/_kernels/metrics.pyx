"""Metric kernel: the batch sum of a per-sample metric.

Dimension legend: B rows, K classes / outputs.
Threads split the rows; the per-row values are summed serially in row order
(float64), so the result does not depend on the thread count.
"""
import numpy as np

from cython.parallel cimport prange

from fastnn.utils.validation import describe, shape_str

from fastnn._kernels._typedefs cimport floating, intp_t
from fastnn._kernels._openmp cimport effective_n_threads, threads_for_work
from fastnn._kernels._checks cimport class_ids, finite_labels, float_array, same_shape
from fastnn._kernels._loops cimport METRIC_SPARSE_CATEGORICAL_ACCURACY, metric_code, metric_row


cdef double _sum(int metric, const floating[:, ::1] P, const intp_t* ids, const floating* Y, double[::1] rows,
                 int nt) noexcept:
    cdef Py_ssize_t B = P.shape[0], K = P.shape[1], r
    cdef double total = 0
    if B == 0:
        return 0.0
    with nogil:
        if nt == 1:
            for r in range(B):
                rows[r] = metric_row(metric, &P[0, 0], ids, Y, r, K)
        else:
            for r in prange(B, num_threads=nt, schedule="static"):
                rows[r] = metric_row(metric, &P[0, 0], ids, Y, r, K)
        for r in range(B):
            total += rows[r]
    return total


def metric_sum(y_pred, y_true, metric, n_threads=None):
    """Sum over the batch of a per-sample metric, as a Python float.

    metric: "binary_accuracy" (mean over K of [y_pred > 0.5] == y_true),
    "categorical_accuracy" (argmax == argmax), "sparse_categorical_accuracy"
    (argmax == int label), "mae", "mse" (means over K).  y_pred (B, K).
    """
    cdef int code = metric_code(metric)
    P = float_array("metric_sum", "y_pred", y_pred, 2)
    cdef Py_ssize_t B = P.shape[0], K = P.shape[1]
    if K == 0:
        raise ValueError(f"metric_sum: argument `y_pred` must have at least one column; received {describe(y_pred)}.")
    ids = None
    Y = None
    if code == METRIC_SPARSE_CATEGORICAL_ACCURACY:
        yt = y_true if isinstance(y_true, np.ndarray) else np.asarray(y_true)
        if yt.ndim == 2 and yt.shape[1] == 1:  # Keras also accepts (B, 1) class ids
            yt = yt[:, 0]
        ids = class_ids("metric_sum", "y_true", yt, B, K)
    else:
        Y = same_shape("metric_sum", "y_true", y_true, (B, K), P.dtype)
        finite_labels("metric_sum", "y_true", Y)
    rows = np.empty(B)
    cdef int nt = threads_for_work(effective_n_threads(n_threads), B * K * 4)
    cdef const intp_t[::1] idv = ids
    cdef const float[:, ::1] Yf
    cdef const double[:, ::1] Yd
    cdef const intp_t* pids = &idv[0] if ids is not None and B else NULL
    if P.dtype == np.float32:
        Yf = Y
        return _sum[float](code, P, pids, &Yf[0, 0] if Y is not None and B else NULL, rows, nt)
    Yd = Y
    return _sum[double](code, P, pids, &Yd[0, 0] if Y is not None and B else NULL, rows, nt)
