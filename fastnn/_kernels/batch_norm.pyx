"""BatchNormalization kernels (compiled twin of _reference): batch statistics + forward in training,
forward with the moving statistics at inference, backward, and the moving-average update.

Dimension legend: B rows (every position but the feature axis), F features (the normalized, last axis).
    mean, var   (F,) float64: the batch statistics forward-train returns and backward takes
    gamma, beta (F,) X's dtype, or None (scale=False / center=False: 1 and 0)
    moving_*    (F,) X's dtype: the layer's non-trainable weights

Numerics. The per-feature mean and the BIASED variance
(divide by B, as Keras 3's ``ops.moments``; K3 layers/normalization/
batch_normalization.py uses that variance both to normalize and to update
the moving variance) are reduced in float64, two-pass (mean first, then the
squared deviations: no E[x^2] - E[x]^2 cancellation), rows in order. The
elementwise work stays in X's dtype:
    y  = (x - m) * a + beta,     m = float(mean), a = float(gamma / sqrt(var + eps))
    dx = k * ((dy - mean(dy)) - xhat * mean(dy * xhat)),   k = float(gamma / sqrt(var + eps))
(Ioffe & Szegedy 2015, eq. in sec. 3), with xhat = (x - m) * float(1 / sqrt(var + eps));
the two sums of the backward (dbeta = sum dy, dgamma = sum dy * xhat) are
float64 too, and are ADDED to dgamma/dbeta (parameter gradients accumulate). x - m is computed
before scaling, not x * a + (beta - m * a), which would cancel when |mean|
is large next to the standard deviation.
Threads: reductions are split over blocks of COLS features (each feature is
summed by one thread, rows in order), the elementwise passes over rows; no
element is written by two threads and no result depends on the thread count.
"""
import numpy as np

from cython.parallel cimport prange

from fastnn.utils.validation import describe, shape_str

from fastnn._kernels._typedefs cimport floating
from fastnn._kernels._openmp cimport effective_n_threads, threads_for_work
from fastnn._kernels._checks cimport float_array, out_array, real_number, same_shape
from fastnn._kernels._loops_norm cimport (bn_coefficients, bn_grad_coefficients, bn_grad_sums_cols, bn_input_grad_block,
                                          bn_normalize_block, bn_stats_cols, bn_update_moving_cols)

cdef enum:
    COLS = 64  # features per reduction block (512 bytes of float64 sums: whole cache lines)


# ---------------------------------------------------------------- loops (nogil)
# The column-block loops live in _loops.pxd, shared with the fused engine (mlp.pyx),
# so a BatchNormalization inside the engine computes exactly what this kernel does.


cdef void _normalize(floating[:, ::1] out, const floating[:, ::1] X, double[::1] mean, double[::1] var,
                     const floating* gamma, const floating* beta, double epsilon, floating[:, ::1] coef,
                     double[::1] inv_std, bint compute_stats, int nt) noexcept:
    """out = normalize(X) with (mean, var), which are first computed from X when compute_stats."""
    cdef Py_ssize_t B = X.shape[0], F = X.shape[1], blk, n_blocks = (X.shape[1] + COLS - 1) // COLS, r
    cdef double* pmean = &mean[0]
    cdef double* pvar = &var[0]
    with nogil:
        if compute_stats:
            if nt == 1:
                bn_stats_cols(pmean, pvar, &X[0, 0], F, B, 0, F)
            else:
                for blk in prange(n_blocks, num_threads=nt, schedule="static"):
                    bn_stats_cols(pmean, pvar, &X[0, 0], F, B, blk * COLS, min((blk + 1) * COLS, F))
        bn_coefficients(&coef[0, 0], &coef[1, 0], &inv_std[0], pmean, pvar, gamma, epsilon, 0, F)
        if nt == 1:
            bn_normalize_block(&out[0, 0], &X[0, 0], F, &coef[0, 0], &coef[1, 0], beta, 0, B, 0, F)
        else:
            for r in prange(B, num_threads=nt, schedule="static"):
                bn_normalize_block(&out[0, 0], &X[0, 0], F, &coef[0, 0], &coef[1, 0], beta, r, r + 1, 0, F)


cdef void _backward(floating[:, ::1] dX, const floating[:, ::1] dY, const floating[:, ::1] X,
                    const double[::1] mean, const double[::1] var, const floating* gamma, double epsilon,
                    floating* dgamma, floating* dbeta, bint training, bint compute_dX,
                    floating[:, ::1] coef, double[:, ::1] sums, int nt) noexcept:
    cdef Py_ssize_t B = X.shape[0], F = X.shape[1], blk, n_blocks = (X.shape[1] + COLS - 1) // COLS, r
    cdef double* inv_std = &sums[0, 0]
    cdef double* s_dy = &sums[1, 0]
    cdef double* s_dyx = &sums[2, 0]
    cdef floating* k = &coef[0, 0]
    cdef floating* m = &coef[1, 0]
    cdef floating* s = &coef[2, 0]
    cdef floating* mdy = &coef[3, 0]
    cdef floating* mdyx = &coef[4, 0]
    with nogil:
        bn_coefficients(m, k, inv_std, &mean[0], &var[0], gamma, epsilon, 0, F)
        if nt == 1:
            bn_grad_sums_cols(s_dy, s_dyx, &dY[0, 0], &X[0, 0], F, &mean[0], inv_std, B, 0, F)
        else:
            for blk in prange(n_blocks, num_threads=nt, schedule="static"):
                bn_grad_sums_cols(s_dy, s_dyx, &dY[0, 0], &X[0, 0], F, &mean[0], inv_std, B,
                                  blk * COLS, min((blk + 1) * COLS, F))
        bn_grad_coefficients(s, mdy, mdyx, dgamma, dbeta, s_dy, s_dyx, inv_std, B, 0, F, True)
        if not compute_dX:
            return
        if nt == 1:
            bn_input_grad_block(&dX[0, 0], &dY[0, 0], &X[0, 0], F, k, mdy, m, s, mdyx, training, 0, B, 0, F)
        else:
            for r in prange(B, num_threads=nt, schedule="static"):
                bn_input_grad_block(&dX[0, 0], &dY[0, 0], &X[0, 0], F, k, mdy, m, s, mdyx, training, r, r + 1,
                                    0, F)


cdef void _update_moving(floating[::1] moving_mean, floating[::1] moving_var, const double[::1] mean,
                         const double[::1] var, double momentum, int nt) noexcept:
    cdef Py_ssize_t F = moving_mean.shape[0], c
    with nogil:
        for c in prange(F, num_threads=nt, schedule="static"):
            bn_update_moving_cols(&moving_mean[0], &moving_var[0], &mean[0], &var[0], momentum, c, c + 1)


# ---------------------------------------------------------------- checks (with the GIL)
cdef object _features(str owner, str name, object a, Py_ssize_t F, object dtype):
    """None, or a C-contiguous (F,) array of `dtype` (a per-feature parameter or statistic)."""
    if a is None:
        return None
    arr = float_array(owner, name, a, 1, dtype)
    if arr.shape[0] != F:
        raise ValueError(f"{owner}: argument `{name}` must have shape ({F},), one value per feature of X; "
                         f"received {describe(a)}.")
    return arr


cdef object _stats(str owner, str name, object a, Py_ssize_t F):
    arr = a if isinstance(a, np.ndarray) else np.asarray(a)
    if arr.dtype != np.float64 or arr.shape != (F,):
        raise ValueError(f"{owner}: argument `{name}` must be a float64 array of shape ({F},) (the batch "
                         f"statistics from batch_norm_forward_train); received {describe(a)}.")
    return np.ascontiguousarray(arr)


cdef object _accumulated(str owner, str name, object a, Py_ssize_t F, object dtype):
    if a is None:
        return None
    if not isinstance(a, np.ndarray) or a.dtype != dtype or a.shape != (F,):
        raise ValueError(f"{owner}: argument `{name}` must be a {np.dtype(dtype).name} array of shape ({F},) "
                         f"(it is accumulated in place); received {describe(a)}.")
    if not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"{owner}: argument `{name}` is accumulated in place and must be a writeable "
                         f"C-contiguous array; received {describe(a)}.")
    return a


cdef double _epsilon(str owner, object epsilon) except? -1:
    cdef double eps = real_number(owner, "epsilon", epsilon)
    if eps < 0:
        raise ValueError(f"{owner}: argument `epsilon` must be >= 0; received {describe(epsilon)}.")
    return eps


cdef object _stats_out(str owner, str name, object a, Py_ssize_t F):
    return out_array(owner, name, a, (F,), np.float64)


# ---------------------------------------------------------------- kernels
cdef void _normalize_any(out, X, mean, var, gamma, beta, double eps, coef, inv_std, bint train,
                         int nt) except *:
    """_normalize for X's dtype; gamma/beta arrays of that dtype, or None."""
    cdef const float[::1] gf
    cdef const float[::1] bf
    cdef const double[::1] gd
    cdef const double[::1] bd
    if X.dtype == np.float32:
        gf, bf = gamma, beta
        _normalize[float](out, X, mean, var, &gf[0] if gamma is not None else NULL,
                          &bf[0] if beta is not None else NULL, eps, coef, inv_std, train, nt)
    else:
        gd, bd = gamma, beta
        _normalize[double](out, X, mean, var, &gd[0] if gamma is not None else NULL,
                           &bd[0] if beta is not None else NULL, eps, coef, inv_std, train, nt)


def batch_norm_forward_train(X, gamma, beta, epsilon, out=None, mean=None, var=None, n_threads=None):
    """Normalize X with its own batch statistics.  X (B, F), gamma/beta (F,) or None ->
    (out (B, F), mean (F,) float64, var (F,) float64, biased)."""
    owner = "batch_norm_forward_train"
    X = float_array(owner, "X", X, 2)
    cdef Py_ssize_t B = X.shape[0], F = X.shape[1]
    if B == 0:
        raise ValueError(f"{owner}: argument `X` must have at least one row to compute batch statistics; "
                         f"received {describe(X)}.")
    gamma = _features(owner, "gamma", gamma, F, X.dtype)
    beta = _features(owner, "beta", beta, F, X.dtype)
    cdef double eps = _epsilon(owner, epsilon)
    out = out_array(owner, "out", out, (B, F), X.dtype)
    mean = _stats_out(owner, "mean", mean, F)
    var = _stats_out(owner, "var", var, F)
    if F == 0:
        return out, mean, var
    coef = np.empty((2, F), dtype=X.dtype)
    inv_std = np.empty(F)
    cdef int nt = threads_for_work(effective_n_threads(n_threads), 3 * B * F)
    _normalize_any(out, X, mean, var, gamma, beta, eps, coef, inv_std, True, nt)
    return out, mean, var


def batch_norm_forward_infer(X, moving_mean, moving_var, gamma, beta, epsilon, out=None, n_threads=None):
    """Normalize X with fixed (moving) statistics.  X (B, F), moving_mean/moving_var (F,) X's dtype,
    gamma/beta (F,) or None -> out (B, F)."""
    owner = "batch_norm_forward_infer"
    X = float_array(owner, "X", X, 2)
    cdef Py_ssize_t B = X.shape[0], F = X.shape[1]
    moving_mean = _features(owner, "moving_mean", moving_mean, F, X.dtype)
    moving_var = _features(owner, "moving_var", moving_var, F, X.dtype)
    if moving_mean is None or moving_var is None:
        raise ValueError(f"{owner}: arguments `moving_mean` and `moving_var` are required; received None.")
    gamma = _features(owner, "gamma", gamma, F, X.dtype)
    beta = _features(owner, "beta", beta, F, X.dtype)
    cdef double eps = _epsilon(owner, epsilon)
    out = out_array(owner, "out", out, (B, F), X.dtype)
    if B == 0 or F == 0:
        return out
    mean = moving_mean.astype(np.float64)
    var = moving_var.astype(np.float64)
    coef = np.empty((2, F), dtype=X.dtype)
    inv_std = np.empty(F)
    cdef int nt = threads_for_work(effective_n_threads(n_threads), B * F)
    _normalize_any(out, X, mean, var, gamma, beta, eps, coef, inv_std, False, nt)
    return out


def batch_norm_backward(dY, X, mean, var, gamma, epsilon, dgamma, dbeta, training=True, dX=None,
                        compute_dX=True, n_threads=None):
    """Gradients of y = gamma * (x - mean) / sqrt(var + eps) + beta.

    dY, X (B, F); mean, var (F,) float64: the batch statistics of X (training=True), or the fixed
    statistics used by the forward pass (training=False: mean and var do not depend on X);
    gamma (F,) or None. Accumulates dgamma (F,) += sum(dY * xhat) and dbeta (F,) += sum(dY)
    (float64 sums; either may be None). Returns dX (B, F), written to ``dX`` if given, or None
    when ``compute_dX`` is False.
    """
    owner = "batch_norm_backward"
    dY = float_array(owner, "dY", dY, 2)
    X = float_array(owner, "X", X, 2, dY.dtype)
    if X.shape != dY.shape:
        raise ValueError(f"{owner}: argument `X` must have the shape of `dY`, {shape_str(dY.shape)}; "
                         f"received {describe(X)}.")
    cdef Py_ssize_t B = X.shape[0], F = X.shape[1]
    mean = _stats(owner, "mean", mean, F)
    var = _stats(owner, "var", var, F)
    gamma = _features(owner, "gamma", gamma, F, X.dtype)
    cdef double eps = _epsilon(owner, epsilon)
    dgamma = _accumulated(owner, "dgamma", dgamma, F, X.dtype)
    dbeta = _accumulated(owner, "dbeta", dbeta, F, X.dtype)
    if compute_dX:
        dX = out_array(owner, "dX", dX, (B, F), X.dtype)
    if B == 0 or F == 0:
        return dX if compute_dX else None
    coef = np.empty((5, F), dtype=X.dtype)
    sums = np.empty((3, F))
    dX_view = dX if compute_dX else coef[:0]  # a typed placeholder when no dX is wanted
    cdef int nt = threads_for_work(effective_n_threads(n_threads), 4 * B * F)
    cdef const float[::1] gf
    cdef float[::1] dgf
    cdef float[::1] dbf
    cdef const double[::1] gd
    cdef double[::1] dgd
    cdef double[::1] dbd
    if X.dtype == np.float32:
        gf, dgf, dbf = gamma, dgamma, dbeta
        _backward[float](dX_view, dY, X, mean, var, &gf[0] if gamma is not None else NULL, eps,
                         &dgf[0] if dgamma is not None else NULL, &dbf[0] if dbeta is not None else NULL,
                         bool(training), bool(compute_dX), coef, sums, nt)
    else:
        gd, dgd, dbd = gamma, dgamma, dbeta
        _backward[double](dX_view, dY, X, mean, var, &gd[0] if gamma is not None else NULL, eps,
                          &dgd[0] if dgamma is not None else NULL, &dbd[0] if dbeta is not None else NULL,
                          bool(training), bool(compute_dX), coef, sums, nt)
    return dX if compute_dX else None


def batch_norm_update_moving(moving_mean, moving_var, mean, var, momentum, n_threads=None):
    """In place, as Keras: moving = moving * momentum + batch * (1 - momentum), computed in float64.

    moving_mean, moving_var (F,) float32/float64, updated in place; mean, var (F,) float64.
    """
    owner = "batch_norm_update_moving"
    if not isinstance(moving_mean, np.ndarray):
        raise ValueError(f"{owner}: argument `moving_mean` must be a NumPy array updated in place; "
                         f"received {describe(moving_mean)}.")
    if moving_mean.ndim != 1 or moving_mean.dtype not in (np.float32, np.float64):
        raise ValueError(f"{owner}: argument `moving_mean` must be a 1-D float32 or float64 array; "
                         f"received {describe(moving_mean)}.")
    cdef Py_ssize_t F = moving_mean.shape[0]
    _accumulated(owner, "moving_mean", moving_mean, F, moving_mean.dtype)
    if moving_var is None:
        raise ValueError(f"{owner}: argument `moving_var` is required; received None.")
    _accumulated(owner, "moving_var", moving_var, F, moving_mean.dtype)
    mean = _stats(owner, "mean", mean, F)
    var = _stats(owner, "var", var, F)
    cdef double mom = real_number(owner, "momentum", momentum)
    if mom < 0 or mom > 1:
        raise ValueError(f"{owner}: argument `momentum` must be in [0, 1]; received {describe(momentum)}.")
    cdef int nt = threads_for_work(effective_n_threads(n_threads), F)
    if moving_mean.dtype == np.float32:
        _update_moving[float](moving_mean, moving_var, mean, var, mom, nt)
    else:
        _update_moving[double](moving_mean, moving_var, mean, var, mom, nt)
