"""Dense layer kernels: forward (GEMM + bias + activation), backward, row gather.

Dimension legend: B rows, I inputs, O units; N rows of a dataset, F features.

Threads. The GEMMs go to scipy's BLAS, pinned to ONE
thread while these kernels split the work between their own OpenMP threads,
so the two pools never oversubscribe the cores:
    forward   Y[:, c0:c1]  = act(X @ W[:, c0:c1] + b[c0:c1])   split over units O
    backward  dW[:, c0:c1] += X^T dZ[:, c0:c1]; db[c0:c1]      split over units O
              dX[:, i0:i1]  = dZ @ W[i0:i1, :]^T               split over inputs I
Every output element is written by one thread, and each reduction runs in a
fixed order (db: rows in order, in float64), so no atomics are needed.
Column boundaries are multiples of 16 chosen by index (split_gemm), so results
are reproducible from call to call for a given thread count.
Below GEMM_WORK_THRESHOLD multiply-adds everything runs on one thread.
"""
import numpy as np

from libc.stdint cimport uint8_t, uint64_t
from cython.parallel cimport parallel, prange, threadid

from fastnn.utils.validation import describe, shape_str

from fastnn._kernels._typedefs cimport floating, intp_t
from fastnn._kernels._openmp cimport (GEMM_WORK_THRESHOLD, blas_threads_begin, blas_threads_end,
                                      effective_n_threads, threads_for_work)
from fastnn._kernels._checks cimport float_array, out_array
from fastnn._kernels._loops_act cimport ACT_LINEAR, act_is_row, act_parse
from fastnn._kernels._loops cimport (act_rows, copy_rows, dense_forward_cols,
                                     fastnn_gather_bitmaps, fma_isa,
                                     dense_input_grad_cols, dense_weight_grad_cols, fastnn_gemm_f32,
                                     fastnn_gemm_f64, fastnn_gemm_isa, fastnn_gemm_path,
                                     fastnn_gemm_set_isa, fastnn_gemm_set_path, softmax_rows, split_gemm)


cdef inline int _gemm_threads(int n_threads, Py_ssize_t work) noexcept nogil:
    return 1 if work < GEMM_WORK_THRESHOLD else n_threads


cdef void _forward(floating[:, ::1] out, const floating[:, ::1] X, const floating[:, ::1] W,
                   const floating* b, int act, const double* ap, int nt) noexcept:
    cdef Py_ssize_t B = X.shape[0], I = X.shape[1], O = W.shape[1], c0, c1, r
    cdef int tid, blas_prev, elem_act = ACT_LINEAR if act_is_row(act) else act
    cdef floating* Y
    if B == 0 or O == 0:
        return
    Y = &out[0, 0]
    with nogil:
        blas_prev = blas_threads_begin(1)
        if nt == 1:
            dense_forward_cols(Y, &X[0, 0] if I else NULL, &W[0, 0] if I else NULL, b, B, I, O, 0, O, elem_act, ap)
        else:
            with parallel(num_threads=nt):
                tid = threadid()
                c0 = split_gemm(O, nt, tid)
                c1 = split_gemm(O, nt, tid + 1)
                dense_forward_cols(Y, &X[0, 0], &W[0, 0], b, B, I, O, c0, c1, elem_act, ap)
        blas_threads_end(blas_prev)
        if act_is_row(act):
            if nt == 1:
                act_rows(Y, Y, 0, B, O, act)
            else:
                for r in prange(B, num_threads=nt, schedule="static"):
                    act_rows(Y, Y, r, r + 1, O, act)


def dense_forward(X, W, b, activation="linear", out=None, n_threads=None):
    """Y = act(X @ W + b).  X (B, I), W (I, O), b (O,) or None -> out (B, O)."""
    cdef double ap[3]
    cdef int act = act_parse(activation, ap, "dense_forward")
    X = float_array("dense_forward", "X", X, 2)
    W = float_array("dense_forward", "W", W, 2, X.dtype)
    if W.shape[0] != X.shape[1]:
        raise ValueError(f"dense_forward: argument `W` must have shape ({X.shape[1]}, units) to match "
                         f"X of shape {shape_str(X.shape)}; received {describe(W)}.")
    if b is not None:
        b = float_array("dense_forward", "b", b, 1, X.dtype)
        if b.shape[0] != W.shape[1]:
            raise ValueError(f"dense_forward: argument `b` must have shape ({W.shape[1]},); "
                             f"received {describe(b)}.")
    out = out_array("dense_forward", "out", out, (X.shape[0], W.shape[1]), X.dtype)
    cdef int nt = _gemm_threads(effective_n_threads(n_threads), X.shape[0] * X.shape[1] * W.shape[1])
    cdef const float[::1] bf
    cdef const double[::1] bd
    if X.dtype == np.float32:
        bf = b
        _forward[float](out, X, W, &bf[0] if b is not None and bf.shape[0] else NULL, act, ap, nt)
    else:
        bd = b
        _forward[double](out, X, W, &bd[0] if b is not None and bd.shape[0] else NULL, act, ap, nt)
    return out


cdef void _backward(const floating[:, ::1] dZ, const floating[:, ::1] X, const floating[:, ::1] W,
                    floating[:, ::1] dW, floating* db, double[::1] acc, floating* dX, int nt) noexcept:
    cdef Py_ssize_t B = dZ.shape[0], O = dZ.shape[1], I = X.shape[1], c0, c1, i0, i1
    cdef int tid, blas_prev
    cdef floating* pdW
    if O == 0 or I == 0:
        return
    pdW = &dW[0, 0]
    if B == 0:
        if dX != NULL:
            pass  # dX has no rows
        return
    with nogil:
        blas_prev = blas_threads_begin(1)
        if nt == 1:
            dense_weight_grad_cols(pdW, &acc[0], db, &dZ[0, 0], &X[0, 0], B, I, O, 0, O, 1)
            if dX != NULL:
                dense_input_grad_cols(dX, &dZ[0, 0], &W[0, 0], B, I, O, 0, I)
        else:
            with parallel(num_threads=nt):
                tid = threadid()
                c0 = split_gemm(O, nt, tid)
                c1 = split_gemm(O, nt, tid + 1)
                dense_weight_grad_cols(pdW, &acc[0], db, &dZ[0, 0], &X[0, 0], B, I, O, c0, c1, 1)
                if dX != NULL:
                    i0 = split_gemm(I, nt, tid)
                    i1 = split_gemm(I, nt, tid + 1)
                    dense_input_grad_cols(dX, &dZ[0, 0], &W[0, 0], B, I, O, i0, i1)
        blas_threads_end(blas_prev)


def _inplace(name, a, shape, dtype):
    if not isinstance(a, np.ndarray) or a.shape != shape or a.dtype != dtype:
        raise ValueError(f"dense_backward: argument `{name}` must be a {np.dtype(dtype).name} array of "
                         f"shape {shape_str(shape)} (it is accumulated in place); received {describe(a)}.")
    if not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"dense_backward: argument `{name}` is accumulated in place and must be a "
                         f"writeable C-contiguous array; received {describe(a)}.")
    return a


def dense_backward(dZ, X, W, dW, db, dX=None, compute_dX=True, n_threads=None):
    """Gradients of a dense layer from dZ (the gradient at its pre-activation).

    dZ (B, O), X (B, I), W (I, O); accumulates dW (I, O) += X^T dZ and
    db (O,) += sum_rows(dZ) (float64 accumulation; db may be None).
    Returns dX (B, I) = dZ W^T, written to ``dX`` if given, or None when
    ``compute_dX`` is False (the first layer needs no input gradient).
    """
    dZ = float_array("dense_backward", "dZ", dZ, 2)
    X = float_array("dense_backward", "X", X, 2, dZ.dtype)
    W = float_array("dense_backward", "W", W, 2, dZ.dtype)
    cdef Py_ssize_t B = dZ.shape[0], O = dZ.shape[1], I = X.shape[1]
    if X.shape[0] != B:
        raise ValueError(f"dense_backward: argument `X` must have {B} rows like dZ {shape_str(dZ.shape)}; "
                         f"received {describe(X)}.")
    if W.shape != (I, O):
        raise ValueError(f"dense_backward: argument `W` must have shape {shape_str((I, O))}; "
                         f"received {describe(W)}.")
    _inplace("dW", dW, (I, O), dZ.dtype)
    if db is not None:
        _inplace("db", db, (O,), dZ.dtype)
    if compute_dX:
        dX = out_array("dense_backward", "dX", dX, (B, I), dZ.dtype)
        if O == 0:  # dZ W^T over no units is 0, not the buffer's old contents (issue 15)
            dX[...] = 0
    if I == 0 and db is not None and B and O:
        # no inputs: no GEMM runs, but db still gets the row sums of dZ (rows in order, float64; issue 15);
        # NaN and inf propagate silently, as in the loops
        with np.errstate(invalid="ignore", over="ignore"):
            db += dZ.sum(axis=0, dtype=np.float64).astype(db.dtype)
    acc = np.empty(max(O, 1))
    cdef int nt = _gemm_threads(effective_n_threads(n_threads), B * I * O)
    cdef float[::1] dbf
    cdef double[::1] dbd
    cdef float[:, ::1] dXf
    cdef double[:, ::1] dXd
    if dZ.dtype == np.float32:
        dbf = db
        dXf = dX if compute_dX else None
        _backward[float](dZ, X, W, dW, &dbf[0] if db is not None and O else NULL, acc,
                         &dXf[0, 0] if compute_dX and B and I else NULL, nt)
    else:
        dbd = db
        dXd = dX if compute_dX else None
        _backward[double](dZ, X, W, dW, &dbd[0] if db is not None and O else NULL, acc,
                          &dXd[0, 0] if compute_dX and B and I else NULL, nt)
    return dX if compute_dX else None


def gather_rows(X, index, out=None, n_threads=None):
    """out[i] = X[index[i]].  X (N, F), index (B,) intp -> out (B, F), X's dtype."""
    X = X if isinstance(X, np.ndarray) else np.asarray(X)
    if X.ndim < 1:
        raise ValueError(f"gather_rows: argument `X` must be an array with at least 1 dimension; "
                         f"received {describe(X)}.")
    if not X.flags.c_contiguous:
        X = np.ascontiguousarray(X)
    idx = index if isinstance(index, np.ndarray) else np.asarray(index)
    if idx.ndim != 1 or idx.dtype.kind not in "iu":
        raise ValueError(f"gather_rows: argument `index` must be a 1-D integer array of row ids; "
                         f"received {describe(index)}.")
    cdef Py_ssize_t N = X.shape[0], B = idx.shape[0]
    if B:
        lo, hi = idx.min(), idx.max()
        if lo < 0 or hi >= N:
            raise ValueError(f"gather_rows: argument `index` holds row ids that must be in [0, {N}) for "
                             f"X of shape {shape_str(X.shape)}; received a row id of {lo if lo < 0 else hi!r}.")
    if idx.dtype != np.intp or not idx.flags.c_contiguous:
        idx = np.ascontiguousarray(idx, dtype=np.intp)
    out = out_array("gather_rows", "out", out, (B,) + X.shape[1:], X.dtype)
    cdef Py_ssize_t row_bytes = X.itemsize * (X.size // N if N else 0)
    if B == 0 or row_bytes == 0:
        return out
    cdef const intp_t[::1] ids = idx
    cdef const char* src = <const char*><size_t>X.ctypes.data
    cdef char* dst = <char*><size_t>out.ctypes.data
    cdef int nt = threads_for_work(effective_n_threads(n_threads), B * row_bytes // 8)
    cdef Py_ssize_t r
    with nogil:
        if nt == 1:
            copy_rows(dst, src, &ids[0], 0, B, row_bytes)
        else:
            for r in prange(B, num_threads=nt, schedule="static"):
                copy_rows(dst, src, &ids[0], r, r + 1, row_bytes)
    return out


def batch_bitmaps(X, rows=None, n_threads=None):
    """The engine's gather and bitmaps (fastnn_gather_bitmaps) on their own; see _reference.batch_bitmaps.
    n_threads here only splits the features into that many calls, as the engine's threads do."""
    # const views: a read-only X or rows (a memory-mapped data set) is read, never written (issue 15)
    cdef const float[:, ::1] x = np.ascontiguousarray(X, np.float32)
    cdef Py_ssize_t N = x.shape[0], I = x.shape[1], B, nwi = (I + 63) // 64, nw, t, T = n_threads or 1, nnz = 0
    cdef const intp_t[::1] r = np.ascontiguousarray(np.arange(N) if rows is None else rows, np.intp)
    B = r.shape[0]
    nw = (B + 63) // 64
    if B and (np.min(r) < 0 or np.max(r) >= N):
        raise ValueError(f"rows must be in [0, {N}), received {np.min(r)}..{np.max(r)}")
    xb = np.zeros((B, I), np.float32)
    rowbits = np.zeros((nwi, 64 * nw), np.uint64)
    featmask = np.zeros((I, nw), np.uint64)
    octets = np.zeros(8 * nwi * 64 * max(nw, 1), np.uint8)
    cdef float[:, ::1] d = xb
    cdef uint64_t[:, ::1] rb = rowbits
    rowbits = rowbits[:, :B].T  # (B, nwi), as the twin's
    cdef uint64_t[:, ::1] fm = featmask
    cdef uint8_t[::1] oc = octets
    if B == 0 or I == 0:
        return xb, rowbits, featmask, 0
    for t in range(T):
        nnz += fastnn_gather_bitmaps(&d[0, 0], I, &x[0, 0], I, &r[0], B, <intp_t*>NULL, 0, 0, 0, I, &rb[0, 0], nwi,
                                     &fm[0, 0], nw, &oc[0], nwi * t // T, nwi * (t + 1) // T)
    return xb, rowbits, featmask, nnz


# ---------------------------------------------------------------- csrc/fastnn_gemm.h, for tests and benchmarks
# Private (not kernels of _reference): tests/kernels/test_gemm.py compares the clones and paths bit
# for bit through these, and bench/bench_kernels.py times each clone. The cap and the forced path
# are statics of the header, so they act on this module's copy of the GEMM only (dense_forward,
# dense_backward and _gemm), not on the engine's.
_GEMM_ISAS = ("portable", "avx2", "avx512")
_GEMM_PATHS = ("auto", "direct", "blocked")


def _gemm_isa(level=None):
    """The clone this module's GEMM runs: 'portable', 'avx2' or 'avx512'.

    With ``level`` (one of those names), first cap it there: the result is the
    CPU's best clone at or below the cap, so check it before relying on it.
    """
    if level is not None:
        if level not in _GEMM_ISAS:
            raise ValueError(f"_gemm_isa: argument `level` must be one of {_GEMM_ISAS} or None; "
                             f"received {level!r}.")
        fastnn_gemm_set_isa(_GEMM_ISAS.index(level))
    return _GEMM_ISAS[fastnn_gemm_isa()]


def _gemm_path(path=None):
    """The x86 clones' path: 'auto' (chosen by shape), 'direct' or 'blocked' (forced, for tests).

    With ``path``, set it first; returns the setting in force.
    """
    if path is not None:
        if path not in _GEMM_PATHS:
            raise ValueError(f"_gemm_path: argument `path` must be one of {_GEMM_PATHS} or None; "
                             f"received {path!r}.")
        fastnn_gemm_set_path(_GEMM_PATHS.index(path) - 1)
    return _GEMM_PATHS[fastnn_gemm_path() + 1]


cdef void _gemm_views(const floating[:, :] A, const floating[:, :] B, floating[:, :] C, int beta) except *:
    cdef Py_ssize_t M = A.shape[0], K = A.shape[1], N = B.shape[1], size = sizeof(floating), i
    for i in range(2):
        if A.strides[i] < 0 or A.strides[i] % size:
            raise ValueError(f"_gemm: argument `A` must have non-negative strides that are multiples of its "
                             f"item size; received strides {(A.strides[0], A.strides[1])}.")
    if N > 1 and ((K > 0 and B.strides[1] != size) or (M > 0 and C.strides[1] != size)) or \
            B.strides[0] < 0 or (M > 1 and N > 0 and C.strides[0] < N * size):
        raise ValueError(f"_gemm: arguments `B` and `C` need unit column strides and `C` rows that do not "
                         f"overlap; received strides {(B.strides[0], B.strides[1])} and {(C.strides[0], C.strides[1])}.")
    if M == 0 or N == 0:
        return
    cdef const floating* pa = &A[0, 0] if K else NULL
    cdef const floating* pb = &B[0, 0] if K else NULL
    with nogil:
        if floating is float:
            fastnn_gemm_f32(M, N, K, pa, A.strides[0] // size, A.strides[1] // size, pb, B.strides[0] // size,
                            beta, &C[0, 0], C.strides[0] // size)
        else:
            fastnn_gemm_f64(M, N, K, pa, A.strides[0] // size, A.strides[1] // size, pb, B.strides[0] // size,
                            beta, &C[0, 0], C.strides[0] // size)


def _gemm(A, B, C, beta=0):
    """C = A B (beta 0) or C += A B (beta 1) by csrc/fastnn_gemm.h, in place; returns C.

    A (M, K), B (K, N), C (M, N): float32 or float64 arrays of one dtype. A may have any
    non-negative strides (X.T is the weight-gradient form); B and C need unit column
    strides, so column or row blocks of larger arrays (views) are accepted as they are.
    """
    for name, a in (("A", A), ("B", B), ("C", C)):
        if not isinstance(a, np.ndarray) or a.ndim != 2 or a.dtype not in (np.float32, np.float64):
            raise ValueError(f"_gemm: argument `{name}` must be a 2-D float32 or float64 array; "
                             f"received {describe(a)}.")
    if B.dtype != A.dtype or C.dtype != A.dtype:
        raise ValueError(f"_gemm: arguments `A`, `B` and `C` must have one dtype; received {A.dtype}, "
                         f"{B.dtype} and {C.dtype}.")
    if B.shape[0] != A.shape[1] or C.shape != (A.shape[0], B.shape[1]):
        raise ValueError(f"_gemm: shapes must be A (M, K), B (K, N), C (M, N); received "
                         f"{shape_str(A.shape)}, {shape_str(B.shape)} and {shape_str(C.shape)}.")
    if beta not in (0, 1):
        raise ValueError(f"_gemm: argument `beta` must be 0 or 1; received {beta!r}.")
    if not C.flags.writeable:
        raise ValueError("_gemm: argument `C` is written in place and must be writeable.")
    if A.dtype == np.float32:
        _gemm_views[float](A, B, C, beta)
    else:
        _gemm_views[double](A, B, C, beta)
    return C


def _fma_isa(level=None):
    """Test hook: the clone of this module's bitmask and CSR kernels, 'portable' or 'avx2' (the same
    bits, csrc/fastnn_clones.h); with ``level``, first cap it there."""
    return fma_isa("_fma_isa", level)
