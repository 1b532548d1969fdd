# The per-row loss and metric loops (split from _loops.pxd, which holds the activation, GEMM and dense
# loops): losses.pyx, metrics.pyx and the engine's head (_engine_head.pxd) call these, so they cannot drift.
# Dimensions and conventions: _loops.pxd's legend.
from libc.math cimport exp, log, fabs

from fastnn._kernels._typedefs cimport floating, intp_t

from fastnn._kernels._loops_act cimport ACT_SIGMOID
from fastnn._kernels._loops cimport act_elementwise

cdef extern from "fastnn_kernels.h" nogil:
    double fastnn_bxent_logit(double z, double y)
    # keras.backend.epsilon(), the probability clip of the cross-entropies
    # (K3 backend/config.py; equals _reference.EPSILON, checked by a test).
    double EPSILON "FASTNN_EPSILON"

cdef enum:
    LOSS_SOFTMAX_XENT = 0
    LOSS_SIGMOID_BXENT = 1
    LOSS_MSE = 2
    LOSS_MAE = 3
    LOSS_XENT = 4
    LOSS_BXENT = 5

cdef enum:
    METRIC_BINARY_ACCURACY = 0
    METRIC_CATEGORICAL_ACCURACY = 1
    METRIC_SPARSE_CATEGORICAL_ACCURACY = 2
    METRIC_MAE = 3
    METRIC_MSE = 4


cdef inline int metric_code(object metric) except -1:
    if metric == "binary_accuracy":
        return METRIC_BINARY_ACCURACY
    if metric == "categorical_accuracy":
        return METRIC_CATEGORICAL_ACCURACY
    if metric == "sparse_categorical_accuracy":
        return METRIC_SPARSE_CATEGORICAL_ACCURACY
    if metric == "mae":
        return METRIC_MAE
    if metric == "mse":
        return METRIC_MSE
    raise ValueError(f"Unknown metric {metric!r}; expected one of ('binary_accuracy', "
                     "'categorical_accuracy', 'sparse_categorical_accuracy', 'mae', 'mse')")


# The probability clip of the cross-entropies, [eps, 1 - eps], in the tensor's dtype as Keras computes it
# (K3 backend/numpy/nn.py binary_crossentropy: `epsilon_` is cast to output.dtype and `1 - epsilon_` is
# taken in that dtype): in float32 the upper bound is 0.99999988, so a prediction of 1.0 for a 0 label
# costs -log(1.19e-7) = 15.942, not the float64 clip's 16.118 (Keras' BinaryCrossentropy test reads
# 3.98559 for [[1, 0], [1, 0]] vs [[1, 1], [1, 0]]). The dtype argument only selects the type.
cdef inline double clip_low(floating dtype_tag) noexcept nogil:
    return <double><floating>EPSILON


cdef inline double clip_high(floating dtype_tag) noexcept nogil:
    return <double><floating>(<floating>1 - <floating>EPSILON)


# ---------------------------------------------------------------- losses (per row)
# Each writes the per-sample loss of rows [r0, r1) into out[r] as float64 (the
# caller rounds it to the dtype where _reference does), and, when grad != NULL,
# the gradient of scale * sum(loss). Labels are either `ids` (B,) class ids or
# `Y` (B, K) floats of the same dtype; the other one is NULL.

cdef inline void softmax_xent_rows(double* out, floating* grad, const floating* Z,
                                   const intp_t* ids, const floating* Y, Py_ssize_t r0, Py_ssize_t r1,
                                   Py_ssize_t K, double scale, floating* probs=NULL) noexcept nogil:
    """Fused softmax + cross-entropy of logits Z (B, K).

    loss = -sum_k y_k (z_k - max - log sum exp(z - max)) in float64 (the
    log-sum-exp trick); grad = scale * (softmax(z) * sum_k y_k - y) with
    softmax rounded to the dtype first, exactly as _reference does; probs (if
    not NULL) receives that rounded softmax (the model's outputs, for metrics).

    _reference exps z - max twice: in float64 for the loss, and rounded to the
    dtype first for the softmax. The two arguments are equal whenever the
    dtype subtraction is exact (almost always), so each exp is reused then.
    """
    cdef Py_ssize_t r, k
    cdef const floating* z
    cdef floating* g
    cdef double mx, s, s2, lse, loss, ysum, e
    cdef double ebuf[64]
    cdef bint reuse
    cdef floating p, fscale = <floating>scale, fysum, mxf
    for r in range(r0, r1):
        z = Z + r * K
        mxf = z[0]
        for k in range(1, K):
            if z[k] > mxf:
                mxf = z[k]
        mx = mxf
        s = 0
        for k in range(K):
            e = exp(<double>z[k] - mx)
            if K <= 64:
                ebuf[k] = e
            s += e
        lse = log(s)
        if ids != NULL:
            loss = -((<double>z[ids[r]] - mx) - lse)
        else:
            loss = 0
            for k in range(K):
                loss -= <double>Y[r * K + k] * ((<double>z[k] - mx) - lse)
        out[r] = loss
        if grad == NULL and probs == NULL:
            continue
        # _softmax: subtract the max in the input dtype, exp and normalise in float64
        reuse = K <= 64
        if reuse:
            for k in range(K):
                if <double>(z[k] - mxf) != <double>z[k] - mx:
                    reuse = False
                    break
        if reuse:
            s2 = s
        else:
            s2 = 0
            for k in range(K):
                s2 += exp(<double>(z[k] - mxf))
        if ids == NULL and grad != NULL:
            ysum = 0
            for k in range(K):
                ysum += Y[r * K + k]
            fysum = <floating>ysum
        for k in range(K):
            e = ebuf[k] if reuse else exp(<double>(z[k] - mxf))
            p = <floating>(e / s2)
            if probs != NULL:
                probs[r * K + k] = p
            if grad != NULL:
                if ids != NULL:
                    grad[r * K + k] = (p - 1 if k == ids[r] else p) * fscale
                else:
                    grad[r * K + k] = (p * fysum - Y[r * K + k]) * fscale


cdef inline void sigmoid_bxent_rows(double* out, floating* grad, const floating* Z, const floating* Y,
                                    Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t K, double scale,
                                    floating* probs=NULL) noexcept nogil:
    """Fused sigmoid + binary cross-entropy, mean over K; grad = scale (sigmoid(z) - y) / K;
    probs (if not NULL) receives sigmoid(z)."""
    cdef Py_ssize_t r, k, k0, k1
    cdef double loss
    cdef floating f = <floating>(scale / K), p
    cdef floating pbuf[64]  # sigmoid of up to 64 logits at a time: grad may alias Z or Y
    for r in range(r0, r1):
        loss = 0
        for k in range(K):
            loss += fastnn_bxent_logit(Z[r * K + k], Y[r * K + k])
        out[r] = loss / K
        if grad != NULL or probs != NULL:
            for k0 in range(r * K, (r + 1) * K, 64):
                k1 = min(k0 + 64, (r + 1) * K)
                act_elementwise(pbuf, Z + k0, 0, k1 - k0, ACT_SIGMOID)
                for k in range(k0, k1):
                    p = pbuf[k - k0]
                    if probs != NULL:
                        probs[k] = p
                    if grad != NULL:
                        grad[k] = (p - Y[k]) * f


cdef inline void mse_rows(double* out, floating* grad, const floating* P, const floating* Y,
                          Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t K, double scale) noexcept nogil:
    """Mean over K of (p - y)^2 in float64; grad = scale 2 (p - y) / K."""
    cdef Py_ssize_t r, k
    cdef double loss, d
    cdef floating f = <floating>(2.0 * scale / K)
    for r in range(r0, r1):
        loss = 0
        for k in range(K):
            d = <double>P[r * K + k] - <double>Y[r * K + k]
            loss += d * d
        out[r] = loss / K
        if grad != NULL:
            for k in range(K):
                grad[r * K + k] = (P[r * K + k] - Y[r * K + k]) * f


cdef inline void mae_rows(double* out, floating* grad, const floating* P, const floating* Y,
                          Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t K, double scale) noexcept nogil:
    """Mean over K of |p - y| in float64; grad = scale sign(p - y) / K with sign(0) = 0, sign(NaN) = NaN."""
    cdef Py_ssize_t r, k
    cdef double loss
    cdef floating d, f = <floating>(scale / K)
    for r in range(r0, r1):
        loss = 0
        for k in range(K):
            loss += fabs(<double>P[r * K + k] - <double>Y[r * K + k])
        out[r] = loss / K
        if grad != NULL:
            for k in range(K):
                d = P[r * K + k] - Y[r * K + k]
                grad[r * K + k] = (1 if d > 0 else (-1 if d < 0 else (0 if d == 0 else d))) * f  # NaN: NaN


cdef inline double _label(const intp_t* ids, const floating* Y, Py_ssize_t r, Py_ssize_t k,
                          Py_ssize_t K) noexcept nogil:
    if ids != NULL:
        return 1.0 if ids[r] == k else 0.0
    return Y[r * K + k]


cdef inline void xent_rows(double* out, floating* grad, const floating* P, const intp_t* ids,
                           const floating* Y, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t K,
                           double scale) noexcept nogil:
    """Categorical cross-entropy of probabilities, Keras 3 (from_logits=False).

    q = p / sum(p), clipped to [eps, 1 - eps]; loss = -sum y log q. With m the
    mask of q strictly inside the clip, d/dp_j = (sum_i y_i m_i - y_j m_j / q_j) / S
    (K3 backend/numpy/nn.py categorical_crossentropy).
    """
    cdef Py_ssize_t r, k
    cdef double s, q, loss, ym, y
    cdef double lo = clip_low(<floating>0), hi = clip_high(<floating>0)
    for r in range(r0, r1):
        s = 0
        for k in range(K):
            s += P[r * K + k]
        loss = 0
        ym = 0
        for k in range(K):
            q = P[r * K + k] / s
            y = _label(ids, Y, r, k, K)
            if q > lo and q < hi:
                ym += y
            q = lo if q < lo else (hi if q > hi else q)
            loss -= y * log(q)
        out[r] = loss
        if grad != NULL:
            for k in range(K):
                q = P[r * K + k] / s
                if q > lo and q < hi:
                    grad[r * K + k] = <floating>((ym - _label(ids, Y, r, k, K) / q) / s * scale)
                else:
                    grad[r * K + k] = <floating>(ym / s * scale)


cdef inline void bxent_rows(double* out, floating* grad, const floating* P, const floating* Y,
                            Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t K, double scale) noexcept nogil:
    """Binary cross-entropy of probabilities clipped to [eps, 1 - eps] (Keras 3), mean over K;
    zero gradient where the clip is active."""
    cdef Py_ssize_t r, k
    cdef double p, y, loss
    cdef double lo = clip_low(<floating>0), hi = clip_high(<floating>0)
    for r in range(r0, r1):
        loss = 0
        for k in range(K):
            p = P[r * K + k]
            p = lo if p < lo else (hi if p > hi else p)
            y = Y[r * K + k]
            loss += y * log(p) + (1 - y) * log(1 - p)
        out[r] = -loss / K
        if grad != NULL:
            for k in range(K):
                p = P[r * K + k]
                y = Y[r * K + k]
                if p > lo and p < hi:
                    grad[r * K + k] = <floating>((p - y) / (p * (1 - p)) / K * scale)
                else:
                    grad[r * K + k] = 0


cdef inline void loss_rows(int loss, double* out, floating* grad, const floating* P, const intp_t* ids,
                           const floating* Y, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t K,
                           double scale, floating* probs=NULL) noexcept nogil:
    """Dispatch to the LOSS_* row loop (ids is only used by the categorical ones).
    probs: the fused losses' activated outputs (softmax / sigmoid), if not NULL."""
    if loss == LOSS_SOFTMAX_XENT:
        softmax_xent_rows(out, grad, P, ids, Y, r0, r1, K, scale, probs)
    elif loss == LOSS_SIGMOID_BXENT:
        sigmoid_bxent_rows(out, grad, P, Y, r0, r1, K, scale, probs)
    elif loss == LOSS_MSE:
        mse_rows(out, grad, P, Y, r0, r1, K, scale)
    elif loss == LOSS_MAE:
        mae_rows(out, grad, P, Y, r0, r1, K, scale)
    elif loss == LOSS_XENT:
        xent_rows(out, grad, P, ids, Y, r0, r1, K, scale)
    else:
        bxent_rows(out, grad, P, Y, r0, r1, K, scale)


cdef inline double loss_sum_rows(int loss, const double* rowloss, Py_ssize_t B, floating dtype_tag) noexcept nogil:
    """Sum of per-sample losses in row order, in float64.

    _reference's *_backward sum the per-sample losses after rounding them to
    the dtype (forward(...).astype(float64).sum()), except sigmoid_bxent, which
    sums the float64 values; mirror that. dtype_tag only selects the dtype.
    """
    cdef Py_ssize_t r
    cdef double s = 0
    if loss == LOSS_SIGMOID_BXENT:
        for r in range(B):
            s += rowloss[r]
    else:
        for r in range(B):
            s += <double><floating>rowloss[r]
    return s


# ---------------------------------------------------------------- metrics (per row)
cdef inline Py_ssize_t argmax_row(const floating* x, Py_ssize_t K) noexcept nogil:
    """First index of the maximum (NumPy argmax ties; a NaN wins as in NumPy)."""
    cdef Py_ssize_t k, best = 0
    cdef floating m = x[0]
    if m != m:
        return 0
    for k in range(1, K):
        if x[k] != x[k]:
            return k
        if x[k] > m:
            m = x[k]
            best = k
    return best


cdef inline double metric_row(int metric, const floating* P, const intp_t* ids, const floating* Y,
                              Py_ssize_t r, Py_ssize_t K, double threshold) noexcept nogil:
    """Per-sample value of a metric (the caller sums rows in order). binary_accuracy counts y_pred >
    threshold, the threshold rounded to the dtype first (Keras compares in y_pred's dtype), as a match for
    a label > 0.5."""
    cdef Py_ssize_t k, hits
    cdef double acc, d
    cdef const floating* p = P + r * K
    cdef floating t = <floating>threshold
    if metric == METRIC_BINARY_ACCURACY:
        hits = 0
        for k in range(K):
            hits += (p[k] > t) == (Y[r * K + k] > 0.5)
        return <double>hits / K
    if metric == METRIC_CATEGORICAL_ACCURACY:
        return 1.0 if argmax_row(p, K) == argmax_row(Y + r * K, K) else 0.0
    if metric == METRIC_SPARSE_CATEGORICAL_ACCURACY:
        if ids != NULL:
            return 1.0 if argmax_row(p, K) == ids[r] else 0.0
        return 1.0 if <double>argmax_row(p, K) == <double>Y[r] else 0.0
    acc = 0
    if metric == METRIC_MAE:
        for k in range(K):
            acc += fabs(<double>p[k] - <double>Y[r * K + k])
    else:
        for k in range(K):
            d = <double>p[k] - <double>Y[r * K + k]
            acc += d * d
    # the reference rounds the per-sample mean to the dtype (mae/mse_forward)
    return <double><floating>(acc / K)
