# The engine's head: per-row loss (and its gradient at the model's outputs), sample weights, per-row
# metrics and the outputs a caller captures, then thread 0's sums in row order. The row loops are the
# losses'/metrics' own (_loops.pxd), so the engine and the per-op kernels give the same numbers.
from libc.string cimport memcpy

from fastnn._kernels._typedefs cimport floating, intp_t
from fastnn._kernels._loops_loss cimport LOSS_SIGMOID_BXENT, loss_rows, metric_row
from fastnn._kernels._engine_types cimport Engine


cdef inline void head_rows(Engine* e, const floating* final, const intp_t* ids, const floating* Y, const double* sw,
                           Py_ssize_t n, Py_ssize_t r0, Py_ssize_t r1, floating* grad, int slot,
                           floating* capture) noexcept nogil:
    """Rows [r0, r1) of a batch (or chunk) of n rows: loss into row buffer `slot`, the gradient of
    sum(w * loss) / n at `final` into grad (NULL: none), metrics on the model's outputs, and those
    outputs copied to capture (NULL: none). With a folded loss `final` is the pre-activation and the
    outputs are the activation the loss computes anyway (e.probs)."""
    cdef Py_ssize_t r, K = e.K
    cdef int m
    cdef double* rowloss = e.rowloss + slot * e.rows_cap
    cdef double* rowmetric = e.rowmetric + slot * e.n_metrics * e.rows_cap
    cdef floating* probs = <floating*>e.probs if e.want_probs else <floating*>NULL
    cdef const floating* outputs = probs if probs != NULL else final
    if r1 <= r0:
        return
    if sw == NULL:
        loss_rows(e.loss, rowloss, grad, final, ids, Y, r0, r1, K, 1.0 / n, probs)
    else:  # Keras' "sum_over_batch_size": the gradient of sum(w * loss) / n, w per row
        for r in range(r0, r1):
            loss_rows(e.loss, rowloss, grad, final, ids, Y, r, r + 1, K, sw[r] / n, probs)
    for m in range(e.n_metrics):
        for r in range(r0, r1):
            rowmetric[m * e.rows_cap + r] = metric_row(e.metrics[m], outputs, ids, Y, r, K, e.metric_threshold[m])
    if capture != NULL:
        memcpy(capture + r0 * K, outputs + r0 * K, (r1 - r0) * K * sizeof(floating))


cdef inline void head_sums(Engine* e, Py_ssize_t n, const double* sw, int slot, bint train,
                           floating tag) noexcept nogil:
    """Thread 0: add the batch's loss sum(w * loss) and metric sums, rows in order (as the twin's sums:
    per-row losses rounded to the dtype, but sigmoid_bxent's float64 ones in training). A weighted metric
    (compile's weighted_metrics) sums w * value; the caller adds up the weights it divides by."""
    cdef Py_ssize_t r
    cdef int m
    cdef double s = 0, v, sm
    cdef const double* rowloss = e.rowloss + slot * e.rows_cap
    cdef const double* rowmetric = e.rowmetric + slot * e.n_metrics * e.rows_cap
    for r in range(n):
        v = rowloss[r] if (train and e.loss == LOSS_SIGMOID_BXENT) else <double><floating>rowloss[r]
        s += v * sw[r] if sw != NULL else v
    e.loss_sum += s
    for m in range(e.n_metrics):
        sm = 0
        if e.metric_weighted[m] and sw != NULL:
            for r in range(n):
                sm += rowmetric[m * e.rows_cap + r] * sw[r]
        else:
            for r in range(n):
                sm += rowmetric[m * e.rows_cap + r]
        e.metric_sums[m] += sm
    e.seen += n
