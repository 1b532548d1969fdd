"""Loss kernels: per-sample losses and fused (loss_sum, gradient) backward passes.

Dimension legend: B rows, K classes / outputs.

Each kernel runs one row loop from _loops.pxd (shared with the MLP engine):
the per-sample loss in float64 and, for *_backward, the gradient of
``scale * loss_sum`` in the same pass. Threads split the rows statically;
the batch sum is then taken serially in row order, so loss_sum does not
depend on the thread count (docs/keras_semantics.md#determinism).
"""
import numpy as np

from cython.parallel cimport prange

from fastnn.utils.validation import describe, shape_str

from fastnn._kernels._typedefs cimport floating, intp_t
from fastnn._kernels._openmp cimport effective_n_threads, threads_for_work
from fastnn._kernels._checks cimport class_ids, finite_labels, float_array, out_array, real_number, same_shape
from fastnn._kernels._loops_loss cimport (LOSS_BXENT, LOSS_MAE, LOSS_MSE, LOSS_SIGMOID_BXENT, LOSS_SOFTMAX_XENT,
                                          LOSS_XENT, loss_rows, loss_sum_rows)

_NAMES = {LOSS_SOFTMAX_XENT: "softmax_xent", LOSS_SIGMOID_BXENT: "sigmoid_bxent", LOSS_MSE: "mse",
          LOSS_MAE: "mae", LOSS_XENT: "xent", LOSS_BXENT: "bxent"}
_PRED_NAME = {LOSS_SOFTMAX_XENT: "logits", LOSS_SIGMOID_BXENT: "logits", LOSS_MSE: "y_pred",
              LOSS_MAE: "y_pred", LOSS_XENT: "y_pred", LOSS_BXENT: "y_pred"}
_GRAD_NAME = {LOSS_SOFTMAX_XENT: "dlogits", LOSS_SIGMOID_BXENT: "dlogits", LOSS_MSE: "dy_pred",
              LOSS_MAE: "dy_pred", LOSS_XENT: "dy_pred", LOSS_BXENT: "dy_pred"}


cdef tuple _prepare(int loss, str owner, y_pred, y_true):
    """Checked (P, ids or None, Y or None)."""
    P = float_array(owner, _PRED_NAME[loss], y_pred, 2)
    cdef Py_ssize_t B = P.shape[0], K = P.shape[1]
    if K == 0:
        raise ValueError(f"{owner}: argument `{_PRED_NAME[loss]}` must have at least one column; "
                         f"received {describe(y_pred)}.")
    yt = y_true if isinstance(y_true, np.ndarray) else np.asarray(y_true)
    if loss in (LOSS_SOFTMAX_XENT, LOSS_XENT) and yt.ndim == 1:
        return P, class_ids(owner, "y_true", yt, B, K), None
    Y = same_shape(owner, "y_true", yt, (B, K), P.dtype)
    finite_labels(owner, "y_true", Y)
    return P, None, Y


cdef void _rows(int loss, const floating[:, ::1] P, const intp_t* ids, const floating* Y, double[::1] rowloss,
                floating* grad, double scale, const double* sw, int nt) noexcept:
    """Per-row losses (and gradients). With sample weights ``sw``, row r's gradient is that of
    ``scale * sw[r] * loss_r``: the row loop runs one row at a time with that factor."""
    cdef Py_ssize_t B = P.shape[0], K = P.shape[1], r
    if B == 0:
        return
    with nogil:
        if sw != NULL:
            if nt == 1:
                for r in range(B):
                    loss_rows(loss, &rowloss[0], grad, &P[0, 0], ids, Y, r, r + 1, K, scale * sw[r])
            else:
                for r in prange(B, num_threads=nt, schedule="static"):
                    loss_rows(loss, &rowloss[0], grad, &P[0, 0], ids, Y, r, r + 1, K, scale * sw[r])
        elif nt == 1:
            loss_rows(loss, &rowloss[0], grad, &P[0, 0], ids, Y, 0, B, K, scale)
        else:
            for r in prange(B, num_threads=nt, schedule="static"):
                loss_rows(loss, &rowloss[0], grad, &P[0, 0], ids, Y, r, r + 1, K, scale)


cdef double _weighted_sum(int loss, const double* rowloss, const double* sw, Py_ssize_t B,
                          floating dtype_tag) noexcept nogil:
    """sum_r sw[r] * loss_r in row order (float64), each loss_r rounded to the dtype first as
    loss_sum_rows does (sigmoid_bxent: not rounded), mirroring _reference._loss_sum."""
    cdef Py_ssize_t r
    cdef double s = 0
    for r in range(B):
        if loss == LOSS_SIGMOID_BXENT:
            s += rowloss[r] * sw[r]
        else:
            s += <double><floating>rowloss[r] * sw[r]
    return s


cdef object _sample_weights(str owner, sample_weight, Py_ssize_t B):
    """None, or the weights as a C-contiguous float64 (B,) array of finite values."""
    if sample_weight is None:
        return None
    w = sample_weight if isinstance(sample_weight, np.ndarray) else np.asarray(sample_weight)
    if w.dtype.kind not in "fiub" or w.shape != (B,):
        raise ValueError(f"{owner}: argument `sample_weight` must be a numeric array of shape ({B},), one "
                         f"weight per row; received {describe(sample_weight)}.")
    w = np.ascontiguousarray(w, dtype=np.float64)
    if not np.isfinite(w).all():
        raise ValueError(f"{owner}: argument `sample_weight` must be finite; received {describe(sample_weight)} "
                         "containing NaN or inf.")
    return w


cdef object _run(int loss, y_pred, y_true, bint backward, scale, sample_weight, out, n_threads):
    cdef str owner = _NAMES[loss] + ("_backward" if backward else "_forward")
    P, ids, Y = _prepare(loss, owner, y_pred, y_true)
    cdef Py_ssize_t B = P.shape[0], K = P.shape[1]
    cdef double fscale = real_number(owner, "scale", scale) if backward else 1.0
    sw = _sample_weights(owner, sample_weight, B)
    cdef const double[::1] swv = sw
    cdef const double* psw = &swv[0] if sw is not None and B else NULL
    if backward:
        out = out_array(owner, _GRAD_NAME[loss], out, (B, K), P.dtype)
    else:
        out = out_array(owner, "out", out, (B,), P.dtype)
    rowloss = np.empty(B)
    cdef int nt = threads_for_work(effective_n_threads(n_threads), B * K * 16)
    cdef const intp_t[::1] idv = ids
    cdef const float[:, ::1] Yf
    cdef const double[:, ::1] Yd
    cdef float[:, ::1] Gf
    cdef double[:, ::1] Gd
    cdef const intp_t* pids = &idv[0] if ids is not None and B else NULL
    cdef double[::1] rl = rowloss
    cdef double total
    if P.dtype == np.float32:
        Yf = Y
        Gf = out if backward else None
        _rows[float](loss, P, pids, &Yf[0, 0] if Y is not None and B else NULL, rowloss,
                     &Gf[0, 0] if backward and B else NULL, fscale, psw, nt)
        if backward and psw != NULL:
            total = _weighted_sum[float](loss, &rl[0], psw, B, 0)
        elif backward:
            total = loss_sum_rows[float](loss, &rl[0] if B else NULL, B, 0)
    else:
        Yd = Y
        Gd = out if backward else None
        _rows[double](loss, P, pids, &Yd[0, 0] if Y is not None and B else NULL, rowloss,
                      &Gd[0, 0] if backward and B else NULL, fscale, psw, nt)
        if backward and psw != NULL:
            total = _weighted_sum[double](loss, &rl[0], psw, B, 0)
        elif backward:
            total = loss_sum_rows[double](loss, &rl[0] if B else NULL, B, 0)
    if backward:
        return float(total), out
    out[...] = rowloss
    return out


# --------------------------------------------------------------------------- softmax + CE (logits)
def softmax_xent_forward(logits, y_true, out=None, n_threads=None):
    """Per-sample cross-entropy of softmax(logits).

    logits (B, K); y_true int (B,) class ids, or float (B, K) (one-hot or
    soft labels).  out (B,) in logits' dtype: -sum_k y_k log softmax(z)_k.
    """
    return _run(LOSS_SOFTMAX_XENT, logits, y_true, False, 1.0, None, out, n_threads)


def softmax_xent_backward(logits, y_true, scale=1.0, dlogits=None, sample_weight=None, n_threads=None):
    """Fused softmax + cross-entropy: (loss_sum, dlogits).

    dlogits (B, K) = scale * (softmax(z) * sum_k y_k - y); loss_sum is the
    float64 sum of the per-sample losses (not scaled). With ``sample_weight``
    (B,) both are weighted per row: loss_sum = sum_b w_b loss_b and row b of
    dlogits is multiplied by w_b (the same for every *_backward below).
    """
    return _run(LOSS_SOFTMAX_XENT, logits, y_true, True, scale, sample_weight, dlogits, n_threads)


# --------------------------------------------------------------------------- sigmoid + BCE (logits)
def sigmoid_bxent_forward(logits, y_true, out=None, n_threads=None):
    """Per-sample binary cross-entropy of sigmoid(logits), mean over the last axis.

    logits (B, K), y_true (B, K) float in [0, 1] -> out (B,).
    """
    return _run(LOSS_SIGMOID_BXENT, logits, y_true, False, 1.0, None, out, n_threads)


def sigmoid_bxent_backward(logits, y_true, scale=1.0, dlogits=None, sample_weight=None, n_threads=None):
    """Fused sigmoid + binary cross-entropy: (loss_sum, dlogits = scale * (sigmoid(z) - y) / K)."""
    return _run(LOSS_SIGMOID_BXENT, logits, y_true, True, scale, sample_weight, dlogits, n_threads)


# --------------------------------------------------------------------------- CE / BCE on probabilities
def xent_forward(y_pred, y_true, out=None, n_threads=None):
    """Categorical cross-entropy of probabilities (Keras 3, from_logits=False).

    p = y_pred / sum(y_pred); p = clip(p, eps, 1 - eps); loss = -sum y log p.
    y_pred (B, K); y_true int (B,) or float (B, K) -> out (B,).
    """
    return _run(LOSS_XENT, y_pred, y_true, False, 1.0, None, out, n_threads)


def xent_backward(y_pred, y_true, scale=1.0, dy_pred=None, sample_weight=None, n_threads=None):
    """(loss_sum, d(scale * loss_sum)/d y_pred) for ``xent_forward``.

    With S = sum(y_pred), q = y_pred / S and m the mask of q inside the clip:
    d/dp_j = (sum_i y_i m_i - y_j m_j / q_j) / S.
    """
    return _run(LOSS_XENT, y_pred, y_true, True, scale, sample_weight, dy_pred, n_threads)


def bxent_forward(y_pred, y_true, out=None, n_threads=None):
    """Binary cross-entropy of probabilities (Keras 3): clip p to [eps, 1-eps],
    -[y log p + (1 - y) log(1 - p)], mean over the last axis.  (B, K) -> out (B,)."""
    return _run(LOSS_BXENT, y_pred, y_true, False, 1.0, None, out, n_threads)


def bxent_backward(y_pred, y_true, scale=1.0, dy_pred=None, sample_weight=None, n_threads=None):
    """(loss_sum, gradient) for ``bxent_forward``; zero gradient where the clip is active."""
    return _run(LOSS_BXENT, y_pred, y_true, True, scale, sample_weight, dy_pred, n_threads)


# --------------------------------------------------------------------------- regression
def mse_forward(y_pred, y_true, out=None, n_threads=None):
    """Mean squared error over the last axis.  (B, K) -> out (B,)."""
    return _run(LOSS_MSE, y_pred, y_true, False, 1.0, None, out, n_threads)


def mse_backward(y_pred, y_true, scale=1.0, dy_pred=None, sample_weight=None, n_threads=None):
    """(loss_sum, scale * 2 (y_pred - y_true) / K)."""
    return _run(LOSS_MSE, y_pred, y_true, True, scale, sample_weight, dy_pred, n_threads)


def mae_forward(y_pred, y_true, out=None, n_threads=None):
    """Mean absolute error over the last axis.  (B, K) -> out (B,)."""
    return _run(LOSS_MAE, y_pred, y_true, False, 1.0, None, out, n_threads)


def mae_backward(y_pred, y_true, scale=1.0, dy_pred=None, sample_weight=None, n_threads=None):
    """(loss_sum, scale * sign(y_pred - y_true) / K), with sign(0) = 0."""
    return _run(LOSS_MAE, y_pred, y_true, True, scale, sample_weight, dy_pred, n_threads)
