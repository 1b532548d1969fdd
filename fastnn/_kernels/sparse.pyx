"""Sparse (CSR) inputs: multi-hot x dense forward and weight-gradient scatter (compiled twin of the
sparse section of _reference; token sequences to CSR rows are in bag_of_words.pyx).

Dimension legend
    S    rows of the CSR matrix X       I    its columns = the layer's input dim (W is (I, O))
    O    units                          B    selected rows (a mini-batch)
    nnz  stored values of X

X is (indptr (S+1,), indices (nnz,), data (nnz,)) as scipy.sparse.csr_matrix holds it, with
int32 or int64 indptr/indices (scipy picks int32 when it can; both kinds run without a copy).
Row rows[i] of X holds data[k] at column indices[k] for k in [indptr[rows[i]], indptr[rows[i]+1]).

Threads and races
    csr_dense_forward    rows are split statically between threads; each output row is summed
                         by one thread in a fixed order, so out does not depend on the thread count.
    csr_dense_backward   dW is split by ROWS (the I axis) into one contiguous range per thread,
                         balanced by the number of stored values that fall into it (sampled from
                         the batch). Every thread walks all batch rows in order and applies only
                         the stored values whose column is in its range (found by binary search
                         when a row's indices are sorted, as in canonical CSR). So each dW row has
                         exactly one writer (no atomics, no shared cache lines except at the range
                         borders) and receives its terms in the order i, then k ascending, whatever
                         the thread count: dW is bitwise independent of n_threads.
                         Why this split: the three race-free strategies, timed with the same inner
                         loop and prefetching on the IMDB shapes (B=512 rows of a random permutation,
                         I=10000, O=16, 132 nnz/row, float32; 2-core AMD EPYC VM; best of 3 runs):
                             one thread                                  ~265 us per batch
                             2 threads, split the O columns (8 each)     ~500 us: both threads write
                                 the same 64-byte dW rows (false sharing), slower than one thread
                             2 threads, private dW buffers + reduction   ~300 us: zero and reduce
                                 2 x 640 KB per batch, and dW depends on the thread count
                             2 threads, dW row ranges (this kernel)      ~180 us, bitwise equal to
                                 one thread

Every check runs before any output is written: the wrappers check dtypes, shapes and
contiguity with the GIL held, and a nogil pass over the selected rows checks rows, indptr and
indices, so a bad index raises ValueError instead of reading or writing out of bounds.
"""
import numpy as np

from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from fastnn.utils.validation import describe, shape_str

from fastnn._kernels._typedefs cimport floating, intp_t
from fastnn._kernels._openmp cimport effective_n_threads, threads_for_work
from fastnn._kernels._checks cimport float_array, out_array
from fastnn._kernels._loops_act cimport act_parse
from fastnn._kernels._loops cimport act_rows, bias_grad_cols, fma_isa

cdef extern from "fastnn_csr.h" nogil:
    # float32 loops, vectorised
    void fastnn_csr_dot_i32(float* o, const int32_t* ind, const float* data, Py_ssize_t k0, Py_ssize_t k1,
                            const float* W, Py_ssize_t O)
    void fastnn_csr_dot_i64(float* o, const int64_t* ind, const float* data, Py_ssize_t k0, Py_ssize_t k1,
                            const float* W, Py_ssize_t O)
    void fastnn_csr_scatter_i32(float* dW, const int32_t* ind, const float* data, Py_ssize_t k0,
                                Py_ssize_t k1, const float* z, Py_ssize_t O, Py_ssize_t p0, Py_ssize_t p1,
                                int filter)
    void fastnn_csr_scatter_i64(float* dW, const int64_t* ind, const float* data, Py_ssize_t k0,
                                Py_ssize_t k1, const float* z, Py_ssize_t O, Py_ssize_t p0, Py_ssize_t p1,
                                int filter)

cdef extern from *:
    """
    /* Software prefetch: a hint that never faults, even on a bad address. On x86 it is a
     * volatile asm: gcc 12 treats __builtin_prefetch as free of side effects, infers that the
     * prefetch-only helpers below are pure and deletes their calls. (Only for those helpers: in
     * a compute loop the asm's memory operand would keep register accumulators in memory.) */
    #if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    #define FASTNN_PREFETCH(p) __asm__ __volatile__("prefetcht0 %0" : : "m"(*(const char *)(p)))
    #elif defined(__GNUC__) || defined(__clang__)
    #define FASTNN_PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 3)
    #elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
    #include <xmmintrin.h>
    #define FASTNN_PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
    #else
    #define FASTNN_PREFETCH(p) ((void)0)
    #endif
    """
    void FASTNN_PREFETCH(const void* p) noexcept nogil

# The two index dtypes scipy.sparse uses; indptr and indices share one (scipy keeps them equal).
ctypedef fused csr_index_t:
    int32_t
    int64_t

cdef enum:
    # Columns per register block: 16 float32 = one 64-byte W row for the IMDB layer (O=16),
    # four SSE registers of accumulators; the inner loops have a constant trip count so gcc
    # unrolls and vectorizes them and keeps the sums in registers.
    COLS = 16
    # A batch's rows are scattered over the CSR arrays (a random permutation), so each row
    # starts with cache misses; prefetching the indices and data of the row PREFETCH_AHEAD
    # positions ahead cut the IMDB forward from ~430 to ~230 us per batch (one thread).
    PREFETCH_AHEAD = 2
    # Bins of the sampled column histogram that balances the dW row ranges (backward).
    HIST_BINS = 1024
    # Rows sampled for that histogram (every B // SAMPLE_ROWS-th row of the batch).
    SAMPLE_ROWS = 64

# Results of the nogil check of one selected row.
cdef enum:
    ROW_OK = 0
    ROW_BAD = 1


# ---------------------------------------------------------------- prefetching
cdef inline void _prefetch_span(const void* indices, Py_ssize_t index_size, const void* data,
                                Py_ssize_t data_size, Py_ssize_t k0, Py_ssize_t k1) noexcept nogil:
    """Prefetch indices[k0:k1] and data[k0:k1], one 64-byte line at a time."""
    cdef Py_ssize_t k = k0
    cdef Py_ssize_t step = 64 // index_size
    while k < k1:
        FASTNN_PREFETCH(<const char*>indices + k * index_size)
        FASTNN_PREFETCH(<const char*>data + k * data_size)
        if data_size > index_size:  # float64 data with int32 ids: two lines per step
            FASTNN_PREFETCH(<const char*>data + k * data_size + 64)
        k += step


cdef inline void _prefetch_row(const csr_index_t* indptr, const csr_index_t* indices, const void* data,
                               Py_ssize_t data_size, Py_ssize_t s, Py_ssize_t S, Py_ssize_t nnz) noexcept nogil:
    """Prefetch the stored values of row s, if s and its indptr range are valid (rows are
    prefetched before they are checked; reading indptr[s] must stay in bounds)."""
    cdef Py_ssize_t k0, k1
    if s < 0 or s >= S:
        return
    k0 = indptr[s]
    k1 = indptr[s + 1]
    if 0 <= k0 <= k1 <= nnz:
        _prefetch_span(indices, sizeof(csr_index_t), data, data_size, k0, k1)


# ---------------------------------------------------------------- checks
cdef inline int _check_row(const csr_index_t* indptr, const csr_index_t* indices, Py_ssize_t s,
                           Py_ssize_t S, Py_ssize_t nnz, Py_ssize_t I, int* unsorted) noexcept nogil:
    """ROW_BAD if row s is not in [0, S), its indptr range is not inside [0, nnz] and
    non-decreasing, or one of its column ids is outside [0, I). Sets *unsorted = 1 when its
    ids decrease somewhere (the backward kernel then filters instead of binary-searching)."""
    cdef Py_ssize_t k, k0, k1
    cdef csr_index_t x, lo, hi
    cdef int down = 0
    if s < 0 or s >= S:
        return ROW_BAD
    k0 = indptr[s]
    k1 = indptr[s + 1]
    if k0 < 0 or k1 < k0 or k1 > nnz:
        return ROW_BAD
    if k0 == k1:
        return ROW_OK
    lo = indices[k0]
    hi = lo
    for k in range(k0 + 1, k1):  # no loop-carried "previous id": this form vectorizes
        x = indices[k]
        down |= x < indices[k - 1]
        lo = x if x < lo else lo
        hi = x if x > hi else hi
    if lo < 0 or hi >= I:
        return ROW_BAD
    if down:
        unsorted[0] = 1
    return ROW_OK


cdef Py_ssize_t _check_rows(const csr_index_t* indptr, const csr_index_t* indices, const void* data,
                            Py_ssize_t data_size, const intp_t* rows, Py_ssize_t B, Py_ssize_t S,
                            Py_ssize_t nnz, Py_ssize_t I, int nt, int* any_unsorted) noexcept nogil:
    """Number of bad selected rows; *any_unsorted = 1 if a selected row has unsorted ids.
    Also prefetches each row's data for the pass that follows."""
    cdef Py_ssize_t r, n_bad = 0, n_unsorted = 0
    cdef int unsorted
    for r in prange(B, num_threads=nt, schedule="static"):
        if rows != NULL and r + PREFETCH_AHEAD < B:
            _prefetch_row(indptr, indices, data, data_size, rows[r + PREFETCH_AHEAD], S, nnz)
        unsorted = 0
        n_bad += _check_row(indptr, indices, rows[r] if rows != NULL else r, S, nnz, I, &unsorted)
        n_unsorted += unsorted
    any_unsorted[0] = n_unsorted > 0
    return n_bad


def _selection_error(owner, indptr, indices, rows, n_cols):
    """The ValueError for the first bad selected row (error path only; plain NumPy)."""
    S = indptr.shape[0] - 1
    nnz = indices.shape[0]
    selection = range(S) if rows is None else rows
    for i, s in enumerate(selection):
        s = int(s)
        if not 0 <= s < S:
            return ValueError(f"{owner}: argument `rows` must hold row ids in [0, {S}) (the rows of the CSR "
                              f"matrix); received rows[{i}] = {s}.")
        k0, k1 = int(indptr[s]), int(indptr[s + 1])
        if not 0 <= k0 <= k1 <= nnz:
            return ValueError(f"{owner}: argument `indptr` must be non-decreasing with values in [0, {nnz}] "
                              f"(nnz, the length of `indices`); received indptr[{s}] = {k0}, "
                              f"indptr[{s + 1}] = {k1}.")
        cols = indices[k0:k1]
        bad = np.flatnonzero((cols < 0) | (cols >= n_cols))
        if bad.size:
            return ValueError(f"{owner}: argument `indices` must hold column ids in [0, {n_cols}) (the rows "
                              f"of W, shape (I, O)); received indices[{k0 + bad[0]}] = {cols[bad[0]]} "
                              f"in row {s}.")
    return ValueError(f"{owner}: malformed CSR matrix.")  # not reached


cdef tuple _csr_structure(str owner, object indptr, object indices, Py_ssize_t nnz_data):
    """indptr, indices as C-contiguous int32 or int64 arrays of ONE dtype (copies only if needed)."""
    indptr = indptr if isinstance(indptr, np.ndarray) else np.asarray(indptr)
    indices = indices if isinstance(indices, np.ndarray) else np.asarray(indices)
    for name, a in (("indptr", indptr), ("indices", indices)):
        if a.ndim != 1 or a.dtype.kind not in "iu":
            raise ValueError(f"{owner}: argument `{name}` must be a 1-D integer array (CSR "
                             f"{'(S+1,)' if name == 'indptr' else '(nnz,)'}); received {describe(a)}.")
    if indptr.shape[0] < 1:
        raise ValueError(f"{owner}: argument `indptr` must have S+1 >= 1 entries; received {describe(indptr)}.")
    if indices.shape[0] != nnz_data:
        raise ValueError(f"{owner}: arguments `indices` and `data` must have the same length (nnz); received "
                         f"{indices.shape[0]} and {nnz_data}.")
    if indptr.dtype != indices.dtype or indptr.dtype not in (np.int32, np.int64):
        # scipy keeps both int32 or both int64; anything else is converted once here.
        indptr = indptr.astype(np.int64)
        indices = indices.astype(np.int64)
    if not indptr.flags.c_contiguous:
        indptr = np.ascontiguousarray(indptr)
    if not indices.flags.c_contiguous:
        indices = np.ascontiguousarray(indices)
    return indptr, indices


cdef object _row_ids(str owner, object rows):
    """None, or rows as a C-contiguous 1-D intp array (range-checked later, in the nogil pass)."""
    if rows is None:
        return None
    arr = rows if isinstance(rows, np.ndarray) else np.asarray(rows)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise ValueError(f"{owner}: argument `rows` must be None or a 1-D integer array of row ids (B,); "
                         f"received {describe(rows)}.")
    if arr.dtype != np.intp or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr, dtype=np.intp)
    return arr


# ---------------------------------------------------------------- forward
cdef inline void _dot_row(floating* o, const csr_index_t* indices, const floating* data,
                          Py_ssize_t k0, Py_ssize_t k1, const floating* W, Py_ssize_t O) noexcept nogil:
    """o (O,) = sum_k data[k] W[indices[k]], k = k0..k1-1 in order, each column from 0."""
    cdef floating acc[COLS]
    cdef Py_ssize_t c = 0, cc, k, n
    cdef const floating* w
    cdef floating v
    if floating is float:
        if csr_index_t is int32_t:
            fastnn_csr_dot_i32(o, indices, data, k0, k1, W, O)
        else:
            fastnn_csr_dot_i64(o, indices, data, k0, k1, W, O)
        return
    while c + COLS <= O:
        for cc in range(COLS):
            acc[cc] = 0
        for k in range(k0, k1):
            v = data[k]
            w = W + <Py_ssize_t>indices[k] * O + c
            for cc in range(COLS):
                acc[cc] = acc[cc] + v * w[cc]
        for cc in range(COLS):
            o[c + cc] = acc[cc]
        c += COLS
    if c < O:  # the last O % COLS columns
        n = O - c
        for cc in range(n):
            acc[cc] = 0
        for k in range(k0, k1):
            v = data[k]
            w = W + <Py_ssize_t>indices[k] * O + c
            for cc in range(n):
                acc[cc] = acc[cc] + v * w[cc]
        for cc in range(n):
            o[c + cc] = acc[cc]


cdef inline int _forward_row(floating* out, const csr_index_t* indptr, const csr_index_t* indices,
                             const floating* data, const floating* W, const floating* b, Py_ssize_t r,
                             Py_ssize_t s, Py_ssize_t S, Py_ssize_t nnz, Py_ssize_t I, Py_ssize_t O,
                             int act, const double* ap) noexcept nogil:
    """out[r] = act(X[s] @ W + b); ROW_BAD (and nothing read out of bounds) if row s is malformed."""
    cdef int unsorted = 0
    cdef Py_ssize_t c
    cdef floating* o = out + r * O
    if _check_row(indptr, indices, s, S, nnz, I, &unsorted) != ROW_OK:
        return ROW_BAD
    _dot_row(o, indices, data, indptr[s], indptr[s + 1], W, O)
    if b != NULL:
        for c in range(O):
            o[c] = o[c] + b[c]
    act_rows(out, out, r, r + 1, O, act, ap)
    return ROW_OK


cdef Py_ssize_t _forward(floating[:, ::1] out, const csr_index_t[::1] indptr, const csr_index_t[::1] indices,
                         const floating[::1] data, const floating[:, ::1] W, const floating[::1] b,
                         const intp_t[::1] rows, int act, const double[::1] ap, int nt) except -1:
    """Number of malformed rows (the caller raises); rows/b may be empty views meaning None."""
    cdef Py_ssize_t B = out.shape[0], O = out.shape[1], I = W.shape[0], S = indptr.shape[0] - 1
    cdef Py_ssize_t nnz = indices.shape[0], r, n_bad = 0
    cdef const intp_t* rows_p = &rows[0] if rows.shape[0] > 0 else NULL
    cdef const floating* b_p = &b[0] if b.shape[0] > 0 else NULL
    cdef const csr_index_t* ind_p = &indices[0] if nnz > 0 else NULL
    cdef const floating* data_p = &data[0] if nnz > 0 else NULL
    cdef const floating* W_p = &W[0, 0] if I > 0 and O > 0 else NULL
    if B == 0 or O == 0:
        return 0
    with nogil:
        for r in prange(B, num_threads=nt, schedule="static"):
            if rows_p != NULL and r + PREFETCH_AHEAD < B:
                _prefetch_row(&indptr[0], ind_p, data_p, sizeof(floating), rows_p[r + PREFETCH_AHEAD], S, nnz)
            n_bad += _forward_row(&out[0, 0], &indptr[0], ind_p, data_p, W_p, b_p, r,
                                  rows_p[r] if rows_p != NULL else r, S, nnz, I, O, act, &ap[0])
    return n_bad


def csr_dense_forward(indptr, indices, data, W, b, activation="linear", rows=None, out=None, n_threads=None):
    """out = act(X[rows] @ W + b) for the CSR matrix X = (indptr (S+1,), indices (nnz,), data (nnz,)).

    W (I, O), b (O,) or None, rows (B,) int or None (all S rows, in order) -> out (B, O), W's dtype.
    data must have W's dtype. Each output row is summed from 0 over its stored values (float32: the
    even and the odd ones apart, then added; csrc/fastnn_csr.h), then b is added.
    """
    owner = "csr_dense_forward"
    ap = np.zeros(3)
    cdef double[::1] apv = ap
    cdef int act = act_parse(activation, &apv[0], owner)
    W = float_array(owner, "W", W, 2)                                   # IN (I, O)
    dtype = W.dtype
    data = float_array(owner, "data", data, 1, dtype)                   # IN (nnz,)
    indptr, indices = _csr_structure(owner, indptr, indices, data.shape[0])  # IN (S+1,), (nnz,)
    rows = _row_ids(owner, rows)                                        # IN (B,) or None
    cdef Py_ssize_t O = W.shape[1]
    cdef Py_ssize_t B = indptr.shape[0] - 1 if rows is None else rows.shape[0]
    if b is not None:
        b = float_array(owner, "b", b, 1, dtype)                        # IN (O,)
        if b.shape[0] != O:
            raise ValueError(f"{owner}: argument `b` must have shape ({O},) (the units of W {shape_str(W.shape)}); "
                             f"received {describe(b)}.")
    out = out_array(owner, "out", out, (B, O), dtype)                   # OUT (B, O)
    no_rows = np.empty(0, dtype=np.intp)
    cdef int nt = effective_n_threads(n_threads)
    # work ~ stored values x units; estimated from the average row so no extra pass is needed
    nt = threads_for_work(nt, B * O * (indices.shape[0] // max(indptr.shape[0] - 1, 1) + 1))
    args = (out, indptr, indices, data, W, np.empty(0, dtype) if b is None or O == 0 else b,
            no_rows if rows is None or B == 0 else rows, act, ap, nt)
    if dtype == np.float32:
        n_bad = _forward[float, int32_t](*args) if indptr.dtype == np.int32 else _forward[float, int64_t](*args)
    else:
        n_bad = _forward[double, int32_t](*args) if indptr.dtype == np.int32 else _forward[double, int64_t](*args)
    if n_bad:
        raise _selection_error(owner, indptr, indices, rows, W.shape[0])
    return out


# ---------------------------------------------------------------- backward
# The dW-row-range split is explained, with the measurements behind it, in the module docstring.

cdef inline Py_ssize_t _lower_bound(const csr_index_t* a, Py_ssize_t lo, Py_ssize_t hi,
                                    Py_ssize_t x) noexcept nogil:
    """First k in [lo, hi) with a[k] >= x (a sorted there), else hi."""
    cdef Py_ssize_t mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef inline void _scatter_block(floating* dW, const csr_index_t* indices, const floating* data,
                                Py_ssize_t k0, Py_ssize_t k1, const floating* z, Py_ssize_t O,
                                Py_ssize_t c, Py_ssize_t n, Py_ssize_t p0, Py_ssize_t p1,
                                bint filter) noexcept nogil:
    """dW[indices[k], c:c+n] += data[k] * z[c:c+n] for k in [k0, k1) in order (only columns
    indices[k] in [p0, p1) when filter); n <= COLS.

    z is copied to a local array so the compiler knows the stores to dW cannot change it.
    The column loop keeps a run-time trip count on purpose: with the constant 16, gcc 12
    unrolls it into 16 scalar multiply-adds (SLP gives up on the stores), 2.5x slower.
    """
    cdef floating zz[COLS]
    cdef floating v
    cdef floating* d
    cdef Py_ssize_t k, cc, j
    for cc in range(n):
        zz[cc] = z[c + cc]
    for k in range(k0, k1):
        j = indices[k]
        if filter and (j < p0 or j >= p1):
            continue
        v = data[k]
        d = dW + j * O + c
        for cc in range(n):
            d[cc] = d[cc] + v * zz[cc]


cdef void _scatter_range(floating* dW, const csr_index_t* indptr, const csr_index_t* indices,
                         const floating* data, const floating* dZ, const intp_t* rows, Py_ssize_t B,
                         Py_ssize_t I, Py_ssize_t O, Py_ssize_t p0, Py_ssize_t p1,
                         bint sorted_rows) noexcept nogil:
    """The dW rows [p0, p1): all batch rows i in order, their stored values k in order."""
    cdef Py_ssize_t i, s, k0, k1, c, n
    cdef bint whole = p0 == 0 and p1 >= I
    for i in range(B):
        if rows != NULL and i + PREFETCH_AHEAD < B:  # rows were checked already
            s = rows[i + PREFETCH_AHEAD]
            _prefetch_span(indices, sizeof(csr_index_t), data, sizeof(floating), indptr[s], indptr[s + 1])
        s = rows[i] if rows != NULL else i
        k0 = indptr[s]
        k1 = indptr[s + 1]
        if not whole and sorted_rows:
            if p0 > 0:
                k0 = _lower_bound(indices, k0, k1, p0)
            if p1 < I:
                k1 = _lower_bound(indices, k0, k1, p1)
        if k0 == k1:
            continue
        if floating is float:
            if csr_index_t is int32_t:
                fastnn_csr_scatter_i32(dW, indices, data, k0, k1, dZ + i * O, O, p0, p1,
                                       not whole and not sorted_rows)
            else:
                fastnn_csr_scatter_i64(dW, indices, data, k0, k1, dZ + i * O, O, p0, p1,
                                       not whole and not sorted_rows)
            continue
        c = 0
        while c < O:
            n = COLS if O - c >= COLS else O - c
            _scatter_block(dW, indices, data, k0, k1, dZ + i * O, O, c, n, p0, p1,
                           not whole and not sorted_rows)
            c += n


cdef void _range_bounds(Py_ssize_t* bounds, const csr_index_t* indptr, const csr_index_t* indices,
                        const intp_t* rows, Py_ssize_t B, Py_ssize_t I, int nt) noexcept nogil:
    """bounds[0..nt]: dW row ranges holding about equal numbers of the batch's stored values,
    estimated from a histogram of the columns of every (B // SAMPLE_ROWS)-th row. Bin edges
    are multiples of 2^shift rows, so neighbouring ranges rarely share a cache line. The split
    only affects speed, never the result."""
    cdef int64_t hist[HIST_BINS]
    cdef Py_ssize_t i, s, k, j = 0, step, t
    cdef int64_t total = 0, cum = 0
    cdef int shift = 0
    while ((I - 1) >> shift) >= HIST_BINS:
        shift += 1
    memset(hist, 0, sizeof(hist))
    step = B // SAMPLE_ROWS if B >= SAMPLE_ROWS else 1
    i = 0
    while i < B:
        s = rows[i] if rows != NULL else i
        for k in range(indptr[s], indptr[s + 1]):
            hist[indices[k] >> shift] += 1
        total += indptr[s + 1] - indptr[s]
        i += step
    bounds[0] = 0
    for t in range(1, nt):
        while j < HIST_BINS and cum * nt < total * t:
            cum += hist[j]
            j += 1
        bounds[t] = min(<Py_ssize_t>j << shift, I)
    bounds[nt] = I


cdef Py_ssize_t _backward(floating[:, ::1] dW, floating[::1] db, const csr_index_t[::1] indptr,
                          const csr_index_t[::1] indices, const floating[::1] data, const floating[:, ::1] dZ,
                          const intp_t[::1] rows, bint has_db, int nt) except -1:
    """Number of malformed rows (then nothing is written); rows may be an empty view meaning None."""
    cdef Py_ssize_t B = dZ.shape[0], O = dZ.shape[1], I = dW.shape[0], S = indptr.shape[0] - 1
    cdef Py_ssize_t nnz = indices.shape[0], n_bad, t
    cdef int unsorted = 0, nt_work
    cdef const intp_t* rows_p = &rows[0] if rows.shape[0] > 0 else NULL
    cdef const csr_index_t* ind_p = &indices[0] if nnz > 0 else NULL
    cdef const floating* data_p = &data[0] if nnz > 0 else NULL
    cdef Py_ssize_t* bounds
    cdef double* acc
    if B == 0 or O == 0:
        return 0
    bounds = <Py_ssize_t*>malloc((nt + 1) * sizeof(Py_ssize_t))
    acc = <double*>malloc(O * sizeof(double))
    if bounds == NULL or acc == NULL:
        free(bounds)
        free(acc)
        raise MemoryError()
    with nogil:
        n_bad = _check_rows(&indptr[0], ind_p, data_p, sizeof(floating), rows_p, B, S, nnz, I,
                            threads_for_work(nt, B * 64), &unsorted)
        if n_bad == 0 and I > 0:
            nt_work = threads_for_work(nt, B * O * (nnz // max(S, 1) + 1))
            if nt_work == 1:
                _scatter_range(&dW[0, 0], &indptr[0], ind_p, data_p, &dZ[0, 0], rows_p, B, I, O, 0, I,
                               not unsorted)
            else:
                _range_bounds(bounds, &indptr[0], ind_p, rows_p, B, I, nt_work)
                for t in prange(nt_work, num_threads=nt_work, schedule="static"):
                    _scatter_range(&dW[0, 0], &indptr[0], ind_p, data_p, &dZ[0, 0], rows_p, B, I, O,
                                   bounds[t], bounds[t + 1], not unsorted)
        if n_bad == 0 and has_db:
            # rows summed in order in float64, as _reference's dZ.sum(axis=0, dtype=float64)
            bias_grad_cols(&db[0], acc, &dZ[0, 0], O, B, 0, O)
    free(bounds)
    free(acc)
    return n_bad


def csr_dense_backward(indptr, indices, data, dZ, dW, db, rows=None, n_threads=None):
    """Weight and bias gradients of ``csr_dense_forward`` (the sparse layer is the first: no dX).

    dZ (B, O) the gradient at the pre-activation. ACCUMULATES dW (I, O): dW[indices[k]] +=
    data[k] * dZ[i] for every k of row rows[i], i then k ascending; db (O,) += sum_rows(dZ)
    (float64 accumulation; db may be None).
    """
    owner = "csr_dense_backward"
    if not isinstance(dW, np.ndarray) or dW.ndim != 2 or dW.dtype not in (np.float32, np.float64):
        raise ValueError(f"{owner}: argument `dW` must be a float32 or float64 array of shape (I, O), updated "
                         f"in place; received {describe(dW)}.")
    if not dW.flags.c_contiguous or not dW.flags.writeable:
        raise ValueError(f"{owner}: argument `dW` is updated in place and must be a writeable C-contiguous "
                         f"array; received {describe(dW)}.")
    dtype = dW.dtype                                                    # INOUT dW (I, O)
    cdef Py_ssize_t O = dW.shape[1]
    dZ = float_array(owner, "dZ", dZ, 2, dtype)                         # IN (B, O)
    if dZ.shape[1] != O:
        raise ValueError(f"{owner}: argument `dZ` must have shape (B, {O}) (the units of dW "
                         f"{shape_str(dW.shape)}); received {describe(dZ)}.")
    data = float_array(owner, "data", data, 1, dtype)                   # IN (nnz,)
    indptr, indices = _csr_structure(owner, indptr, indices, data.shape[0])  # IN (S+1,), (nnz,)
    rows = _row_ids(owner, rows)                                        # IN (B,) or None
    cdef Py_ssize_t B = indptr.shape[0] - 1 if rows is None else rows.shape[0]
    if dZ.shape[0] != B:
        what = "the number of rows of the CSR matrix" if rows is None else "the length of `rows`"
        raise ValueError(f"{owner}: argument `dZ` must have shape ({B}, {O}) ({what}); received {describe(dZ)}.")
    if db is not None:                                                  # INOUT (O,)
        if (not isinstance(db, np.ndarray) or db.dtype != dtype or db.shape != (O,)
                or not db.flags.c_contiguous or not db.flags.writeable):
            raise ValueError(f"{owner}: argument `db` must be None or a writeable C-contiguous {dtype.name} "
                             f"array of shape ({O},), updated in place; received {describe(db)}.")
    cdef int nt = effective_n_threads(n_threads)
    args = (dW, np.empty(O, dtype) if db is None else db, indptr, indices, data, dZ,
            np.empty(0, dtype=np.intp) if rows is None or B == 0 else rows, db is not None, nt)
    if dtype == np.float32:
        n_bad = _backward[float, int32_t](*args) if indptr.dtype == np.int32 else _backward[float, int64_t](*args)
    else:
        n_bad = _backward[double, int32_t](*args) if indptr.dtype == np.int32 else _backward[double, int64_t](*args)
    if n_bad:
        raise _selection_error(owner, indptr, indices, rows, dW.shape[0])


def _fma_isa(level=None):
    """Test hook: the clone of this module's bitmask and CSR kernels, 'portable' or 'avx2' (the same
    bits, csrc/fastnn_clones.h); with ``level``, first cap it there."""
    return fma_isa("_fma_isa", level)
