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
from libc.math cimport exp, log
from libc.string cimport memcpy
from scipy.linalg.cython_blas cimport sgemm, dgemm, sgemv, dgemv

from libc.stdint cimport uint8_t, uint64_t

from fastnn._kernels._typedefs cimport floating, intp_t
from fastnn._kernels._loops_act cimport (ACT_ELU, ACT_LINEAR, ACT_LOG_SOFTMAX, ACT_RELU, ACT_SIGMOID, ACT_SOFTMAX,
                                         ACT_TANH, act_fwd_range, act_grad_range, act_needs_x, fastnn_math_isa,
                                         fastnn_math_set_isa, fastnn_sigmoid_f32, fastnn_sigmoid_f64,
                                         fastnn_tanh_f32, fastnn_tanh_f64)


# ---------------------------------------------------------------- clones of the multiply-add kernels
cdef extern from "fastnn_kernels.h" nogil:
    int fastnn_use_avx2_fma()
    int fastnn_fma_set_isa(int level)
    float fastnn_keep_f32(unsigned char keep, float x)
    double fastnn_keep_f64(unsigned char keep, double x)

cdef inline str fma_isa(str hook, object level):
    """A module's _fma_isa test hook: the clone its bitmask and CSR kernels run ('portable' or 'avx2',
    the same bits; csrc/fastnn_clones.h), after capping it at ``level`` when given. The cap is a
    static of the header, so it acts on the calling module's copy of the kernels only."""
    if level is not None:
        if level not in ("portable", "avx2"):
            raise ValueError(f"{hook}: argument `level` must be 'portable', 'avx2' or None; received {level!r}.")
        fastnn_fma_set_isa(level == "avx2")
    return "avx2" if fastnn_use_avx2_fma() else "portable"


# ---------------------------------------------------------------- BLAS
cdef extern from "fastnn_bitmap.h" nogil:
    # bitmaps of a batch's non-zeros (the first layer's bitmask kernels; dense.batch_bitmaps and the engine)
    Py_ssize_t fastnn_gather_bitmaps(float* dst, Py_ssize_t ldd, const float* X, Py_ssize_t ldx,
                                     const intp_t* rows, Py_ssize_t B, const intp_t* next_rows, Py_ssize_t n_next,
                                     Py_ssize_t pf0, Py_ssize_t pf1, Py_ssize_t n_in, uint64_t* rowbits,
                                     Py_ssize_t nwi, uint64_t* featmask, Py_ssize_t nw, uint8_t* octets,
                                     Py_ssize_t w0, Py_ssize_t w1)

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
# (declared in _loops_act.pxd, which also uses them)


cdef inline floating act_scalar(floating x, int act) noexcept nogil:
    """Elementwise activations (not softmax) of one value: the bits act_elementwise gives it."""
    cdef floating y = x
    if act == ACT_RELU:
        return 0 if x <= 0 else x  # NaN stays NaN (np.maximum, tf.nn.relu)
    if act == ACT_SIGMOID or act == ACT_TANH:
        act_elementwise(&y, &x, 0, 1, act)
    return y


cdef inline void act_elementwise(floating* out, const floating* X, Py_ssize_t n0, Py_ssize_t n1,
                                 int act, const double* ap=NULL) noexcept nogil:
    """out[n] = act(X[n]) for n in [n0, n1); elementwise activations only (ap: their parameters, NULL for
    Keras' defaults). out may be X."""
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
    elif act >= ACT_ELU and act != ACT_LOG_SOFTMAX:
        act_fwd_range(out, X, n0, n1, act, ap)
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


cdef inline void log_softmax_rows(floating* out, const floating* Z, Py_ssize_t r0, Py_ssize_t r1,
                                  Py_ssize_t K) noexcept nogil:
    """Row log_softmax, rows [r0, r1) of Z (B, K) -> out (may be Z): in float64 (as
    _reference._log_softmax64), z - max - log(sum(exp(z - max))), rounded once."""
    cdef Py_ssize_t r, k
    cdef const floating* z
    cdef floating* o
    cdef double mx, s
    for r in range(r0, r1):
        z = Z + r * K
        o = out + r * K
        mx = z[0]
        for k in range(1, K):
            if z[k] > mx:
                mx = z[k]
        s = 0
        for k in range(K):
            s += exp(<double>z[k] - mx)
        s = log(s)
        for k in range(K):
            o[k] = <floating>((<double>z[k] - mx) - s)


cdef inline void act_rows(floating* out, const floating* X, Py_ssize_t r0, Py_ssize_t r1,
                          Py_ssize_t O, int act, const double* ap=NULL) noexcept nogil:
    """Any activation over rows [r0, r1) of X (B, O)."""
    if act == ACT_SOFTMAX:
        softmax_rows(out, X, r0, r1, O)
    elif act == ACT_LOG_SOFTMAX:
        log_softmax_rows(out, X, r0, r1, O)
    else:
        act_elementwise(out, X, r0 * O, r1 * O, act, ap)


cdef inline void bias_act_block(floating* Y, Py_ssize_t ldy, const floating* b,
                                Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t c0, Py_ssize_t c1,
                                int act, const double* ap=NULL) noexcept nogil:
    """Y[r, c] = act(Y[r, c] + b[c]) on a block; elementwise act only; b may be NULL."""
    cdef Py_ssize_t r, c
    cdef floating* y
    for r in range(r0, r1):
        y = Y + r * ldy
        if b != NULL:
            for c in range(c0, c1):
                y[c] = y[c] + b[c]
        act_elementwise(y, y, c0, c1, act, ap)


cdef inline void act_backward_elementwise(floating* out, const floating* dY, const floating* Y,
                                          Py_ssize_t n0, Py_ssize_t n1, int act) noexcept nogil:
    """dZ from dY and the activation's OUTPUT Y; elementwise activations not act_needs_x. out may be dY."""
    cdef Py_ssize_t n
    if act == ACT_RELU:
        # branch-free (np.where(Y > 0, dY, 0), +0.0 elsewhere, NaN dY kept only where Y > 0): relu's mask is
        # random, and `dY if Y > 0 else 0` stayed a branch (GCC does not if-convert a float compare under
        # -ftrapping-math) -- 12% of a 256-256 relu model's step once this function stopped being inlined
        if floating is float:
            for n in range(n0, n1):
                out[n] = fastnn_keep_f32(Y[n] > 0, dY[n])
        else:
            for n in range(n0, n1):
                out[n] = fastnn_keep_f64(Y[n] > 0, dY[n])
    elif act == ACT_SIGMOID:
        for n in range(n0, n1):
            out[n] = dY[n] * Y[n] * (1 - Y[n])
    elif act == ACT_TANH:
        for n in range(n0, n1):
            out[n] = dY[n] * (1 - Y[n] * Y[n])
    elif out != dY:
        for n in range(n0, n1):
            out[n] = dY[n]


cdef inline void act_backward_x(floating* out, const floating* dY, const floating* X, const floating* Y,
                                Py_ssize_t n0, Py_ssize_t n1, int act, const double* ap) noexcept nogil:
    """dZ from dY, the activation's INPUT X (read when act_needs_x) and its OUTPUT Y (read otherwise);
    elementwise activations. out may be dY: dZ = dY * act'(X), act' in float64 rounded once."""
    cdef Py_ssize_t n
    if act_needs_x(act):
        act_grad_range(out, dY, X, n0, n1, act, ap)
    else:
        act_backward_elementwise(out, dY, Y, n0, n1, act)


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


cdef inline void log_softmax_backward_rows(floating* out, const floating* dY, const floating* Y,
                                           Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t K) noexcept nogil:
    """dZ = dY - exp(Y) * sum(dY) per row (exp(Y) is the softmax), the sum in float64. out may be dY."""
    cdef Py_ssize_t r, k
    cdef double s
    cdef floating sf
    for r in range(r0, r1):
        s = 0
        for k in range(K):
            s += dY[r * K + k]
        sf = <floating>s
        for k in range(K):
            out[r * K + k] = dY[r * K + k] - <floating>exp(<double>Y[r * K + k]) * sf


cdef inline void act_backward_rows(floating* out, const floating* dY, const floating* Y,
                                   Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t O, int act) noexcept nogil:
    if act == ACT_SOFTMAX:
        softmax_backward_rows(out, dY, Y, r0, r1, O)
    elif act == ACT_LOG_SOFTMAX:
        log_softmax_backward_rows(out, dY, Y, r0, r1, O)
    else:
        act_backward_elementwise(out, dY, Y, r0 * O, r1 * O, act)


cdef inline void act_backward_rows_x(floating* out, const floating* dY, const floating* X, const floating* Y,
                                     Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t O, int act,
                                     const double* ap) noexcept nogil:
    """act_backward_rows for any activation: X (the input) is read by act_needs_x ones only."""
    if act_needs_x(act):
        act_backward_x(out, dY, X, Y, r0 * O, r1 * O, act, ap)
    else:
        act_backward_rows(out, dY, Y, r0, r1, O, act)


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
                                    int act, const double* ap=NULL) noexcept nogil:
    """Columns [c0, c1) of Y (B, O) = act(X (B, I) @ W (I, O) + b); elementwise act only.

    One BLAS call on the column block (BLAS itself single-threaded: the caller
    splits columns between its threads), then bias + activation in one pass.
    """
    if c1 <= c0 or B <= 0:
        return
    gemm_rm(False, False, <int>B, <int>(c1 - c0), <int>I, <floating>1, X, <int>I, W + c0, <int>O,
            <floating>0, Y + c0, <int>O)
    bias_act_block(Y, O, b, 0, B, c0, c1, act, ap)


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
