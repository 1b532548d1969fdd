# The BatchNormalization and Dropout loops (split from _loops.pxd): batch_norm.pyx, dropout.pyx and the
# engine's ops (_engine_ops.pxd) call these. Dimensions and conventions: _loops.pxd's legend.
from libc.math cimport sqrt, nextafterf, INFINITY

from fastnn._kernels._typedefs cimport floating

cdef extern from "fastnn_kernels.h" nogil:
    float fastnn_keep_f32(unsigned char keep, float x)
    double fastnn_keep_f64(unsigned char keep, double x)

# ---------------------------------------------------------------- batch normalization (column blocks)
# batch_norm.pyx and the fused engine (mlp.pyx) both call these, so the two give the
# same float32 results; the formulas and their sources are in batch_norm.pyx's docstring.
# Statistics are per column (feature) of a row-major (B, F) block with leading dimension
# ld, summed over rows in order in float64 (accurate over many rows): a thread that owns a
# column range needs no other thread's data, and no result depends on the split.
cdef inline void bn_stats_cols(double* mean, double* var, const floating* X, Py_ssize_t ld, Py_ssize_t B,
                               Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    """mean[c], var[c] (biased, two-pass) of the columns c in [c0, c1) of X (B, ld), in float64."""
    cdef Py_ssize_t b, c
    cdef const floating* x
    cdef double d
    for c in range(c0, c1):
        mean[c] = 0
        var[c] = 0
    for b in range(B):
        x = X + b * ld
        for c in range(c0, c1):
            mean[c] += x[c]
    for c in range(c0, c1):
        mean[c] = mean[c] / B
    for b in range(B):
        x = X + b * ld
        for c in range(c0, c1):
            d = x[c] - mean[c]
            var[c] += d * d
    for c in range(c0, c1):
        var[c] = var[c] / B


cdef inline void bn_coefficients(floating* m, floating* a, double* inv_std, const double* mean,
                                 const double* var, const floating* gamma, double epsilon,
                                 Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    """inv_std = 1 / sqrt(var + eps) (float64); m = float(mean); a = float(gamma * inv_std) on [c0, c1)."""
    cdef Py_ssize_t c
    cdef double g
    for c in range(c0, c1):
        inv_std[c] = 1.0 / sqrt(var[c] + epsilon)
        g = gamma[c] if gamma != NULL else 1.0
        m[c] = <floating>mean[c]
        a[c] = <floating>(g * inv_std[c])


cdef inline void bn_normalize_block(floating* Y, const floating* X, Py_ssize_t ld, const floating* m,
                                    const floating* a, const floating* beta, Py_ssize_t r0, Py_ssize_t r1,
                                    Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    """Y[r, c] = (X[r, c] - m[c]) * a[c] (+ beta[c]) on rows [r0, r1) x columns [c0, c1); beta may be NULL."""
    cdef Py_ssize_t r, c
    cdef const floating* x
    cdef floating* y
    for r in range(r0, r1):
        x = X + r * ld
        y = Y + r * ld
        if beta != NULL:
            for c in range(c0, c1):
                y[c] = (x[c] - m[c]) * a[c] + beta[c]
        else:
            for c in range(c0, c1):
                y[c] = (x[c] - m[c]) * a[c]


cdef inline void bn_grad_sums_cols(double* s_dy, double* s_dyx, const floating* dY, const floating* X,
                                   Py_ssize_t ld, const double* mean, const double* inv_std, Py_ssize_t B,
                                   Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    """s_dy[c] = sum_b dY[b, c];  s_dyx[c] = sum_b dY[b, c] * (X[b, c] - mean[c]) * inv_std[c]  (float64)."""
    cdef Py_ssize_t b, c
    cdef const floating* x
    cdef const floating* dy
    cdef double g
    for c in range(c0, c1):
        s_dy[c] = 0
        s_dyx[c] = 0
    for b in range(B):
        x = X + b * ld
        dy = dY + b * ld
        for c in range(c0, c1):
            g = dy[c]
            s_dy[c] += g
            s_dyx[c] += g * ((x[c] - mean[c]) * inv_std[c])


cdef inline void bn_grad_coefficients(floating* s, floating* mdy, floating* mdyx, floating* dgamma,
                                      floating* dbeta, const double* s_dy, const double* s_dyx,
                                      const double* inv_std, Py_ssize_t B, Py_ssize_t c0, Py_ssize_t c1,
                                      bint accumulate) noexcept nogil:
    """dbeta[c] (+)= float(s_dy[c]), dgamma[c] (+)= float(s_dyx[c]) (either may be NULL; added when
    accumulate, else overwritten), and the float coefficients of the input gradient:
    s = float(inv_std), mdy = float(s_dy / B), mdyx = float(s_dyx / B)."""
    cdef Py_ssize_t c
    for c in range(c0, c1):
        if dbeta != NULL:
            dbeta[c] = dbeta[c] + <floating>s_dy[c] if accumulate else <floating>s_dy[c]
        if dgamma != NULL:
            dgamma[c] = dgamma[c] + <floating>s_dyx[c] if accumulate else <floating>s_dyx[c]
        s[c] = <floating>inv_std[c]
        mdy[c] = <floating>(s_dy[c] / B)
        mdyx[c] = <floating>(s_dyx[c] / B)


cdef inline void bn_input_grad_block(floating* dX, const floating* dY, const floating* X, Py_ssize_t ld,
                                     const floating* k, const floating* mdy, const floating* m,
                                     const floating* s, const floating* mdyx, bint training,
                                     Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    """dX = k * ((dY - mdy) - ((X - m) * s) * mdyx) in training, k * dY with fixed statistics, on
    rows [r0, r1) x columns [c0, c1). dX may be dY (each element is read before it is written)."""
    cdef Py_ssize_t r, c
    cdef const floating* x
    cdef const floating* dy
    cdef floating* dx
    for r in range(r0, r1):
        x = X + r * ld
        dy = dY + r * ld
        dx = dX + r * ld
        if training:
            for c in range(c0, c1):
                dx[c] = k[c] * ((dy[c] - mdy[c]) - ((x[c] - m[c]) * s[c]) * mdyx[c])
        else:
            for c in range(c0, c1):
                dx[c] = k[c] * dy[c]


cdef inline void bn_update_moving_cols(floating* moving_mean, floating* moving_var, const double* mean,
                                       const double* var, double momentum, Py_ssize_t c0,
                                       Py_ssize_t c1) noexcept nogil:
    """Keras' moving = moving * momentum + batch * (1 - momentum) on [c0, c1), computed in float64."""
    cdef Py_ssize_t c
    for c in range(c0, c1):
        moving_mean[c] = <floating>(moving_mean[c] * momentum + mean[c] * (1.0 - momentum))
        moving_var[c] = <floating>(moving_var[c] * momentum + var[c] * (1.0 - momentum))


# ---------------------------------------------------------------- dropout (element ranges)
# dropout.pyx and the fused engine call these; the rule (K3 backend/numpy/random.py
# ``dropout``) is in dropout.pyx's docstring.
cdef inline double dropout_scale(double rate) noexcept nogil:
    """1 / (1 - rate), or 0 for rate == 1 (everything dropped, no division by zero)."""
    return 0.0 if rate >= 1.0 else 1.0 / (1.0 - rate)


cdef inline void dropout_forward_range(floating* out, unsigned char* mask, const floating* X,
                                       const floating* U, Py_ssize_t n0, Py_ssize_t n1, double keep,
                                       floating scale) noexcept nogil:
    """mask[i] = U[i] < keep (compared in double); out[i] = X[i] * scale where kept, else 0; i in [n0, n1)."""
    cdef Py_ssize_t i
    cdef unsigned char k
    cdef float t
    if floating is float:
        # U < keep compared in float, which vectorizes, with t the least float >= keep: for every
        # float u, (double)u < keep exactly when u < t.
        t = <float>keep
        if <double>t < keep:
            t = nextafterf(t, INFINITY)
        for i in range(n0, n1):  # branch-free: the mask is random (fastnn_keep_f32 in csrc/fastnn_kernels.h)
            k = U[i] < t
            mask[i] = k
            out[i] = fastnn_keep_f32(k, X[i] * scale)
    else:
        for i in range(n0, n1):
            k = U[i] < keep
            mask[i] = k
            out[i] = fastnn_keep_f64(k, X[i] * scale)


cdef inline void dropout_backward_range(floating* out, const floating* dY, const unsigned char* mask,
                                        Py_ssize_t n0, Py_ssize_t n1, floating scale) noexcept nogil:
    """out[i] = dY[i] * scale where mask[i], else 0; i in [n0, n1). out may be dY."""
    cdef Py_ssize_t i
    for i in range(n0, n1):  # branch-free, as dropout_forward_range
        if floating is float:
            out[i] = fastnn_keep_f32(mask[i], dY[i] * scale)
        else:
            out[i] = fastnn_keep_f64(mask[i], dY[i] * scale)
