# The nogil loops behind every compiled kernel, written ONCE.
#
# The per-op wrappers (activations.pyx, dense.pyx, losses.pyx, metrics.pyx,
# optim.pyx) call these over a row or element range inside prange, and the
# training engine (engine.pyx) calls the same functions on its own thread split,
# so the two cannot drift apart. Each mirrors the arithmetic of its twin in
# _reference.py operation by operation (same casts, same order), which keeps
# float32 results within an ulp or two of NumPy's and makes most of them equal.
#
# Dimension legend
#   B  rows in a batch      I  inputs of a dense layer     O  units of a dense layer
#   K  classes / outputs    N  elements of a flat buffer
#   [r0, r1) a row range,  [c0, c1) a column range,  [n0, n1) an element range
#
# All matrices are C-contiguous (row-major) with an explicit leading dimension.
# Conventions (llm.c's): outputs first, then inputs, then sizes;
# *_backward loops into parameter gradients ACCUMULATE, into buffers the caller zeroed.
from libc.math cimport exp, expf, log, sqrt, sqrtf, fabs, log1p, nextafterf, INFINITY
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport sgemm, dgemm, sgemv, dgemv

from fastnn._kernels._typedefs cimport floating, intp_t

cdef extern from "fastnn_kernels.h" nogil:
    double fastnn_bxent_logit(double z, double y)
    # keras.backend.epsilon(), the probability clip of the cross-entropies
    # (K3 backend/config.py; equals _reference.EPSILON, checked by a test).
    double EPSILON "FASTNN_EPSILON"
    float fastnn_keep_f32(unsigned char keep, float x)
    double fastnn_keep_f64(unsigned char keep, double x)

# ---------------------------------------------------------------- identifiers
cdef enum:
    ACT_LINEAR = 0
    ACT_RELU = 1
    ACT_SIGMOID = 2
    ACT_TANH = 3
    ACT_SOFTMAX = 4

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


cdef inline int act_code(object activation) except -1:
    """Keras activation string -> ACT_* (ValueError naming the valid ones)."""
    if activation == "linear":
        return ACT_LINEAR
    if activation == "relu":
        return ACT_RELU
    if activation == "sigmoid":
        return ACT_SIGMOID
    if activation == "tanh":
        return ACT_TANH
    if activation == "softmax":
        return ACT_SOFTMAX
    raise ValueError(f"Unknown activation {activation!r}; expected one of "
                     "('linear', 'relu', 'sigmoid', 'tanh', 'softmax')")


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


# ---------------------------------------------------------------- BLAS
cdef extern from "fastnn_kernels.h" nogil:
    void fastnn_row_axpy_f32(float* c, const float* a, const float* B, Py_ssize_t ldb, Py_ssize_t N,
                             Py_ssize_t K)
    void fastnn_row_axpy_f64(double* c, const double* a, const double* B, Py_ssize_t ldb, Py_ssize_t N,
                             Py_ssize_t K)


cdef extern from "fastnn_gemm.h" nogil:
    # C (M, N) = A B (beta 0) or += A B (beta 1), A[i, k] = a[i rsa + k csa]; every element one fma
    # chain over k in order, on any rows/columns and any clone (csrc/fastnn_gemm.h)
    void fastnn_gemm_f32(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float* a, Py_ssize_t rsa,
                         Py_ssize_t csa, const float* b, Py_ssize_t ldb, int beta, float* c, Py_ssize_t ldc)
    void fastnn_gemm_f64(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const double* a, Py_ssize_t rsa,
                         Py_ssize_t csa, const double* b, Py_ssize_t ldb, int beta, double* c, Py_ssize_t ldc)
    # test hooks (per extension module): cap the clone, force the direct/blocked path
    int fastnn_gemm_isa()
    int fastnn_gemm_set_isa(int level)
    int fastnn_gemm_path()
    int fastnn_gemm_set_path(int path)


cdef inline void gemv_row(bint trans_a, bint trans_b, int N, int K, floating alpha, const floating* A, int lda,
                          const floating* B, int ldb, floating beta, floating* C) noexcept nogil:
    """Row-major c (1, N) = alpha a op(B) + beta c, for gemm_rm with M == 1.

    Row-major B (K, N) is the column-major (N x K) matrix B^T, so c^T = B^T a^T is a
    no-transpose GEMV on it (a transposed one when B is stored (N, K)). The row a is
    A's first row, or A's first column (stride lda) when op(A) = A^T.
    """
    cdef char tv = b'T' if trans_b else b'N'
    if not trans_a and not trans_b and alpha == 1 and beta == 0:
        # forward of one row: skip its zero inputs (csrc/fastnn_kernels.h, section 5)
        if floating is float:
            fastnn_row_axpy_f32(C, A, B, ldb, N, K)
        else:
            fastnn_row_axpy_f64(C, A, B, ldb, N, K)
        return
    cdef int m = K if trans_b else N
    cdef int n = N if trans_b else K
    cdef int incx = lda if trans_a else 1
    cdef int incy = 1
    if floating is float:
        sgemv(&tv, &m, &n, &alpha, <float*>B, &ldb, <float*>A, &incx, &beta, C, &incy)
    else:
        dgemv(&tv, &m, &n, &alpha, <double*>B, &ldb, <double*>A, &incx, &beta, C, &incy)


cdef inline void gemm_rm(bint trans_a, bint trans_b, int M, int N, int K, floating alpha,
                         const floating* A, int lda, const floating* B, int ldb,
                         floating beta, floating* C, int ldc) noexcept nogil:
    """Row-major C (M, N) = alpha op(A) op(B) + beta C through Fortran BLAS.

    A row-major matrix is its transpose in column-major, so we ask BLAS for
    C^T = op(B)^T op(A)^T: swap the operands and the sizes, keep the flags.
    """
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    cdef Py_ssize_t r, c
    if M <= 0 or N <= 0:
        return
    if K <= 0:  # BLAS would reject lda = 0; C = beta C
        for r in range(M):
            for c in range(N):
                C[r * ldc + c] = 0 if beta == 0 else beta * C[r * ldc + c]
        return
    if M == 1:
        # One row (predict on one sample, a last batch of one): GEMV. OpenBLAS's sgemm packs
        # the whole of B first, ~80 us for a 784x128 kernel, against ~7 us for sgemv.
        gemv_row(trans_a, trans_b, N, K, alpha, A, lda, B, ldb, beta, C)
        return
    cdef int min_ldc = 8 if floating is float else 16  # narrower layers: see below
    if not trans_b and alpha == 1 and (beta == 0 or beta == 1) and ldc >= min_ldc:
        # csrc/fastnn_gemm.h: no packing at these shapes (OpenBLAS packs both operands on every
        # call), and each element's sum runs in the same order whatever the caller's split, so
        # results do not depend on the thread count. float64 too since dense_forward/backward
        # timed it against dgemm (one and two threads, 32x784x100 to 256x1024x1024): 1.0-1.9x
        # as fast, but 0.4 us slower on 32x128x10's weight gradient, so layers under 16 units
        # keep dgemm. float32 layers narrower than 8 columns (ldc < 8, such as IMDB's last)
        # stay on BLAS: there the GEMM's edge path made the IMDB engine step 924 us instead of
        # 720 (one thread; not understood: 2-3 us per call when timed alone). A layer that
        # narrow is never split between threads (split_gemm), so it is one call either way.
        if floating is float:
            if trans_a:
                fastnn_gemm_f32(M, N, K, A, 1, lda, B, ldb, beta == 1, C, ldc)
            else:
                fastnn_gemm_f32(M, N, K, A, lda, 1, B, ldb, beta == 1, C, ldc)
        else:
            if trans_a:
                fastnn_gemm_f64(M, N, K, A, 1, lda, B, ldb, beta == 1, C, ldc)
            else:
                fastnn_gemm_f64(M, N, K, A, lda, 1, B, ldb, beta == 1, C, ldc)
        return
    if floating is float:
        sgemm(&tb, &ta, &N, &M, &K, &alpha, <float*>B, &ldb, <float*>A, &lda, &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &N, &M, &K, &alpha, <double*>B, &ldb, <double*>A, &lda, &beta, C, &ldc)


# ---------------------------------------------------------------- activations
# tanh and sigmoid over contiguous ranges: csrc/fastnn_math.h (vectorized, runtime-dispatched
# clones, the same bits on every clone and for an element alone or inside an array, which keeps
# a row's outputs independent of the other rows). glibc's scalar tanhf cost ~15 ns per element.
cdef extern from "fastnn_math.h" nogil:
    void fastnn_tanh_f32(float* out, const float* x, Py_ssize_t n)
    void fastnn_tanh_f64(double* out, const double* x, Py_ssize_t n)
    void fastnn_sigmoid_f32(float* out, const float* x, Py_ssize_t n)
    void fastnn_sigmoid_f64(double* out, const double* x, Py_ssize_t n)
    int fastnn_math_isa()
    int fastnn_math_set_isa(int level)


cdef inline floating act_scalar(floating x, int act) noexcept nogil:
    """Elementwise activations (not softmax) of one value: the bits act_elementwise gives it."""
    cdef floating y = x
    if act == ACT_RELU:
        return 0 if x <= 0 else x  # NaN stays NaN (np.maximum, tf.nn.relu)
    if act == ACT_SIGMOID or act == ACT_TANH:
        act_elementwise(&y, &x, 0, 1, act)
    return y


cdef inline void act_elementwise(floating* out, const floating* X, Py_ssize_t n0, Py_ssize_t n1,
                                 int act) noexcept nogil:
    """out[n] = act(X[n]) for n in [n0, n1); elementwise activations only. out may be X."""
    cdef Py_ssize_t n
    if n1 <= n0:
        return
    if act == ACT_RELU:
        for n in range(n0, n1):  # separate loop so it vectorizes; NaN stays NaN (np.maximum, tf.nn.relu)
            out[n] = 0 if X[n] <= 0 else X[n]
    elif act == ACT_TANH:
        if floating is float:
            fastnn_tanh_f32(out + n0, X + n0, n1 - n0)
        else:
            fastnn_tanh_f64(out + n0, X + n0, n1 - n0)
    elif act == ACT_SIGMOID:
        if floating is float:
            fastnn_sigmoid_f32(out + n0, X + n0, n1 - n0)
        else:
            fastnn_sigmoid_f64(out + n0, X + n0, n1 - n0)
    elif out != X:
        for n in range(n0, n1):
            out[n] = X[n]


cdef inline void softmax_rows(floating* out, const floating* Z, Py_ssize_t r0, Py_ssize_t r1,
                              Py_ssize_t K) noexcept nogil:
    """Row softmax, rows [r0, r1) of Z (B, K) -> out (may be Z).

    As _reference._softmax: subtract the row max in the input dtype, exp and
    normalise in float64, round once. Two passes of exp instead of a scratch
    row, so out may alias Z.
    """
    cdef Py_ssize_t r, k
    cdef const floating* z
    cdef floating* o
    cdef floating mx
    cdef double s
    for r in range(r0, r1):
        z = Z + r * K
        o = out + r * K
        mx = z[0]
        for k in range(1, K):
            if z[k] > mx:
                mx = z[k]
        s = 0
        for k in range(K):
            s += exp(<double>(z[k] - mx))
        for k in range(K):
            o[k] = <floating>(exp(<double>(z[k] - mx)) / s)


cdef inline void act_rows(floating* out, const floating* X, Py_ssize_t r0, Py_ssize_t r1,
                          Py_ssize_t O, int act) noexcept nogil:
    """Any activation over rows [r0, r1) of X (B, O)."""
    if act == ACT_SOFTMAX:
        softmax_rows(out, X, r0, r1, O)
    else:
        act_elementwise(out, X, r0 * O, r1 * O, act)


cdef inline void bias_act_block(floating* Y, Py_ssize_t ldy, const floating* b,
                                Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t c0, Py_ssize_t c1,
                                int act) noexcept nogil:
    """Y[r, c] = act(Y[r, c] + b[c]) on a block; elementwise act only; b may be NULL."""
    cdef Py_ssize_t r, c
    cdef floating* y
    for r in range(r0, r1):
        y = Y + r * ldy
        if b != NULL:
            for c in range(c0, c1):
                y[c] = y[c] + b[c]
        act_elementwise(y, y, c0, c1, act)


cdef inline void act_backward_elementwise(floating* out, const floating* dY, const floating* Y,
                                          Py_ssize_t n0, Py_ssize_t n1, int act) noexcept nogil:
    """dZ from dY and the activation's OUTPUT Y; elementwise activations. out may be dY."""
    cdef Py_ssize_t n
    if act == ACT_RELU:
        for n in range(n0, n1):
            out[n] = dY[n] if Y[n] > 0 else 0
    elif act == ACT_SIGMOID:
        for n in range(n0, n1):
            out[n] = dY[n] * Y[n] * (1 - Y[n])
    elif act == ACT_TANH:
        for n in range(n0, n1):
            out[n] = dY[n] * (1 - Y[n] * Y[n])
    elif out != dY:
        for n in range(n0, n1):
            out[n] = dY[n]


cdef inline void act_backward_block(floating* out, Py_ssize_t ldo, const floating* dY, Py_ssize_t lddy,
                                    const floating* Y, Py_ssize_t ldyy,
                                    Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t c0, Py_ssize_t c1,
                                    int act) noexcept nogil:
    """act_backward_elementwise on a block of rows/columns with leading dimensions."""
    cdef Py_ssize_t r
    for r in range(r0, r1):
        act_backward_elementwise(out + r * ldo, dY + r * lddy, Y + r * ldyy, c0, c1, act)


cdef inline void softmax_backward_rows(floating* out, const floating* dY, const floating* Y,
                                       Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t K) noexcept nogil:
    """dZ = Y * (dY - sum(dY * Y)) per row, the sum in float64. out may be dY."""
    cdef Py_ssize_t r, k
    cdef double s
    cdef floating sf
    for r in range(r0, r1):
        s = 0
        for k in range(K):
            s += <double>dY[r * K + k] * Y[r * K + k]
        sf = <floating>s
        for k in range(K):
            out[r * K + k] = Y[r * K + k] * (dY[r * K + k] - sf)


cdef inline void act_backward_rows(floating* out, const floating* dY, const floating* Y,
                                   Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t O, int act) noexcept nogil:
    if act == ACT_SOFTMAX:
        softmax_backward_rows(out, dY, Y, r0, r1, O)
    else:
        act_backward_elementwise(out, dY, Y, r0 * O, r1 * O, act)


# ---------------------------------------------------------------- thread splits
cdef inline Py_ssize_t split_point(Py_ssize_t n, int parts, int p, size_t base_addr,
                                   Py_ssize_t itemsize) noexcept nogil:
    """Boundary p of `parts` near-equal pieces of [0, n) (p = 0..parts).

    Inner boundaries are moved to the nearest element whose address (from
    base_addr) starts a 64-byte cache line, so two threads writing adjacent
    column blocks of the same row do not share a line when the row length is
    a multiple of 64 bytes (false sharing made a split dW = X^T dZ 2.5x slower).
    """
    cdef Py_ssize_t x, per_line, shift, lo
    if p <= 0:
        return 0
    if p >= parts:
        return n
    x = n * p // parts
    if itemsize <= 0 or base_addr % itemsize != 0:
        return x
    per_line = 64 // itemsize
    if per_line <= 1:
        return x
    shift = <Py_ssize_t>(((64 - base_addr % 64) % 64) // itemsize)
    lo = x - ((x - shift) % per_line + per_line) % per_line
    x = lo if x - lo <= per_line // 2 else lo + per_line
    return 0 if x < 0 else (n if x > n else x)


cdef inline Py_ssize_t split_gemm(Py_ssize_t n, int parts, int p) noexcept nogil:
    """Boundary p of `parts` pieces of [0, n) for a GEMM split, at a multiple of 16 columns.

    OpenBLAS's sgemm rounds an element differently depending on where its
    column block starts (edge micro-kernels), so GEMM splits are chosen by
    index only, never by address: a model trains bitwise identically from run
    to run for a given thread count. (Allocate arenas 64-byte aligned, and
    these boundaries also fall on cache lines.)
    """
    cdef Py_ssize_t x
    if p <= 0:
        return 0
    if p >= parts:
        return n
    x = (n * p // parts + 8) // 16 * 16
    return x if x < n else n


# ---------------------------------------------------------------- dense helpers
cdef inline void bias_grad_cols(floating* db, double* acc, const floating* dZ, Py_ssize_t ldz,
                                Py_ssize_t B, Py_ssize_t c0, Py_ssize_t c1, bint accumulate=True) noexcept nogil:
    """db[c] += float(sum_b dZ[b, c]) for c in [c0, c1) (db[c] = ... when not accumulate);
    acc is (c1 - c0) doubles of scratch.

    Summed over rows in order b = 0..B-1 in float64 (as NumPy's axis-0 sum of
    a C-contiguous array), so db does not depend on how columns are split
    between threads. Accumulating in float64 keeps a long sum of float32 terms accurate.
    """
    cdef Py_ssize_t b, c, n = c1 - c0
    cdef const floating* z
    for c in range(n):
        acc[c] = 0
    for b in range(B):
        z = dZ + b * ldz + c0
        for c in range(n):
            acc[c] += z[c]
    if accumulate:
        for c in range(n):
            db[c0 + c] = db[c0 + c] + <floating>acc[c]
    else:
        for c in range(n):
            db[c0 + c] = <floating>acc[c]


cdef inline void copy_rows(char* out, const char* X, const intp_t* index, Py_ssize_t r0, Py_ssize_t r1,
                           Py_ssize_t row_bytes) noexcept nogil:
    """out[r] = X[index[r]] for r in [r0, r1); rows of row_bytes bytes (any dtype)."""
    cdef Py_ssize_t r
    for r in range(r0, r1):
        memcpy(out + r * row_bytes, X + index[r] * row_bytes, row_bytes)


cdef inline void dense_forward_cols(floating* Y, const floating* X, const floating* W, const floating* b,
                                    Py_ssize_t B, Py_ssize_t I, Py_ssize_t O, Py_ssize_t c0, Py_ssize_t c1,
                                    int act) noexcept nogil:
    """Columns [c0, c1) of Y (B, O) = act(X (B, I) @ W (I, O) + b); elementwise act only.

    One BLAS call on the column block (BLAS itself single-threaded: the caller
    splits columns between its threads), then bias + activation in one pass.
    """
    if c1 <= c0 or B <= 0:
        return
    gemm_rm(False, False, <int>B, <int>(c1 - c0), <int>I, <floating>1, X, <int>I, W + c0, <int>O,
            <floating>0, Y + c0, <int>O)
    bias_act_block(Y, O, b, 0, B, c0, c1, act)


cdef inline void dense_weight_grad_cols(floating* dW, double* acc, floating* db, const floating* dZ,
                                        const floating* X, Py_ssize_t B, Py_ssize_t I, Py_ssize_t O,
                                        Py_ssize_t c0, Py_ssize_t c1, floating beta) noexcept nogil:
    """dW[:, c0:c1] = beta dW[:, c0:c1] + X^T dZ[:, c0:c1]; db[c0:c1] (+)= colsum(dZ) (db may be NULL;
    accumulated when beta != 0, overwritten when beta == 0).

    Split over output units, so every thread owns its dW columns (llm.c
    matmul_backward); acc is scratch of at least c1 doubles (acc + c0 is used).
    """
    if c1 <= c0:
        return
    gemm_rm(True, False, <int>I, <int>(c1 - c0), <int>B, <floating>1, X, <int>I, dZ + c0, <int>O,
            beta, dW + c0, <int>O)
    if db != NULL:
        bias_grad_cols(db, acc + c0, dZ, O, B, c0, c1, beta != 0)


cdef inline void dense_input_grad_cols(floating* dX, const floating* dZ, const floating* W,
                                       Py_ssize_t B, Py_ssize_t I, Py_ssize_t O,
                                       Py_ssize_t i0, Py_ssize_t i1) noexcept nogil:
    """dX[:, i0:i1] = dZ (B, O) @ W[i0:i1, :]^T; split over input features."""
    if i1 <= i0:
        return
    gemm_rm(False, True, <int>B, <int>(i1 - i0), <int>O, <floating>1, dZ, <int>O, W + i0 * O, <int>O,
            <floating>0, dX + i0, <int>I)


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
    for r in range(r0, r1):
        s = 0
        for k in range(K):
            s += P[r * K + k]
        loss = 0
        ym = 0
        for k in range(K):
            q = P[r * K + k] / s
            y = _label(ids, Y, r, k, K)
            if q > EPSILON and q < 1 - EPSILON:
                ym += y
            q = EPSILON if q < EPSILON else (1 - EPSILON if q > 1 - EPSILON else q)
            loss -= y * log(q)
        out[r] = loss
        if grad != NULL:
            for k in range(K):
                q = P[r * K + k] / s
                if q > EPSILON and q < 1 - EPSILON:
                    grad[r * K + k] = <floating>((ym - _label(ids, Y, r, k, K) / q) / s * scale)
                else:
                    grad[r * K + k] = <floating>(ym / s * scale)


cdef inline void bxent_rows(double* out, floating* grad, const floating* P, const floating* Y,
                            Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t K, double scale) noexcept nogil:
    """Binary cross-entropy of probabilities clipped to [eps, 1 - eps] (Keras 3), mean over K;
    zero gradient where the clip is active."""
    cdef Py_ssize_t r, k
    cdef double p, y, loss
    for r in range(r0, r1):
        loss = 0
        for k in range(K):
            p = P[r * K + k]
            p = EPSILON if p < EPSILON else (1 - EPSILON if p > 1 - EPSILON else p)
            y = Y[r * K + k]
            loss += y * log(p) + (1 - y) * log(1 - p)
        out[r] = -loss / K
        if grad != NULL:
            for k in range(K):
                p = P[r * K + k]
                y = Y[r * K + k]
                if p > EPSILON and p < 1 - EPSILON:
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
                              Py_ssize_t r, Py_ssize_t K) noexcept nogil:
    """Per-sample value of a metric (the caller sums rows in order)."""
    cdef Py_ssize_t k, hits
    cdef double acc, d
    cdef const floating* p = P + r * K
    if metric == METRIC_BINARY_ACCURACY:
        hits = 0
        for k in range(K):
            hits += (p[k] > 0.5) == (Y[r * K + k] > 0.5)
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


# ---------------------------------------------------------------- optimizers (element ranges)
# Keras 3 update rules (keras/src/optimizers/*.py update_step), with the
# hyper-parameters cast to the dtype and the operations in _reference's order.
# Each is ONE fused pass over [n0, n1): memory-bound, so the arena is read once.

cdef extern from "fastnn_kernels.h" nogil:
    void fastnn_sgd_f32(float* w, const float* g, float* m, Py_ssize_t n0, Py_ssize_t n1, float lr, float mu,
                        int use_momentum, int nesterov)
    void fastnn_sgd_f64(double* w, const double* g, double* m, Py_ssize_t n0, Py_ssize_t n1, double lr,
                        double mu, int use_momentum, int nesterov)
    void fastnn_rmsprop_f32(float* w, const float* g, float* v, float* mom, float* mg, Py_ssize_t n0,
                            Py_ssize_t n1, float lr, float rho, float c, float momentum, float eps,
                            int use_momentum, int centered)
    void fastnn_rmsprop_f64(double* w, const double* g, double* v, double* mom, double* mg, Py_ssize_t n0,
                            Py_ssize_t n1, double lr, double rho, double c, double momentum, double eps,
                            int use_momentum, int centered)
    void fastnn_adam_f32(float* w, const float* g, float* m, float* v, float* vhat, Py_ssize_t n0,
                         Py_ssize_t n1, float a, float c1, float c2, float eps, int amsgrad)
    void fastnn_adam_f64(double* w, const double* g, double* m, double* v, double* vhat, Py_ssize_t n0,
                         Py_ssize_t n1, double a, double c1, double c2, double eps, int amsgrad)
    void fastnn_adadelta_f32(float* w, const float* g, float* ag, float* ad, Py_ssize_t n0, Py_ssize_t n1,
                             float lr, float rho, float c, float eps)
    void fastnn_adadelta_f64(double* w, const double* g, double* ag, double* ad, Py_ssize_t n0, Py_ssize_t n1,
                             double lr, double rho, double c, double eps)


# The loops themselves are in csrc/fastnn_kernels.h (restrict pointers, AVX
# clone); these cast the hyper-parameters to the dtype exactly as _reference
# does (t(1 - rho), t(learning_rate), ...) and pick the dtype's version.
cdef inline void sgd_range(floating* w, const floating* g, floating* m, Py_ssize_t n0, Py_ssize_t n1,
                           double learning_rate, double momentum, bint nesterov) noexcept nogil:
    if floating is float:
        fastnn_sgd_f32(w, g, m, n0, n1, <float>learning_rate, <float>momentum, momentum != 0, nesterov)
    else:
        fastnn_sgd_f64(w, g, m, n0, n1, learning_rate, momentum, momentum != 0, nesterov)


cdef inline void rmsprop_range(floating* w, const floating* g, floating* v, floating* mom, floating* mg,
                               Py_ssize_t n0, Py_ssize_t n1, double learning_rate, double rho,
                               double momentum, double epsilon, bint centered) noexcept nogil:
    if floating is float:
        fastnn_rmsprop_f32(w, g, v, mom, mg, n0, n1, <float>learning_rate, <float>rho, <float>(1 - rho),
                           <float>momentum, <float>epsilon, momentum > 0, centered)
    else:
        fastnn_rmsprop_f64(w, g, v, mom, mg, n0, n1, learning_rate, rho, 1 - rho, momentum, epsilon,
                           momentum > 0, centered)


cdef inline void adam_range(floating* w, const floating* g, floating* m, floating* v, floating* vhat,
                            Py_ssize_t n0, Py_ssize_t n1, double alpha, double beta_1, double beta_2,
                            double epsilon, bint amsgrad) noexcept nogil:
    """alpha = lr sqrt(1 - b2^t) / (1 - b1^t), computed once per step by the caller."""
    if floating is float:
        fastnn_adam_f32(w, g, m, v, vhat, n0, n1, <float>alpha, <float>(1 - beta_1), <float>(1 - beta_2),
                        <float>epsilon, amsgrad)
    else:
        fastnn_adam_f64(w, g, m, v, vhat, n0, n1, alpha, 1 - beta_1, 1 - beta_2, epsilon, amsgrad)


cdef inline void adadelta_range(floating* w, const floating* g, floating* accum_grad,
                                floating* accum_delta, Py_ssize_t n0, Py_ssize_t n1,
                                double learning_rate, double rho, double epsilon) noexcept nogil:
    if floating is float:
        fastnn_adadelta_f32(w, g, accum_grad, accum_delta, n0, n1, <float>learning_rate, <float>rho,
                            <float>(1 - rho), <float>epsilon)
    else:
        fastnn_adadelta_f64(w, g, accum_grad, accum_delta, n0, n1, learning_rate, rho, 1 - rho, epsilon)
