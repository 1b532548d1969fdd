# How the batch reaches the first op: the engine's input strategies (docs/engine.md, "Input").
#
#   IN_GATHER  the first op is not a dense layer: each thread copies its rows of the batch
#   IN_DENSE   a dense first layer on dense X. Float32 inputs of 64+ features get bitmaps of the batch's
#              non-zeros first (each thread its 64-feature words of every row, then a barrier); a batch
#              with at most `max_density` non-zeros then runs the bitmask kernels straight from the rows
#              where they lie in X, any other is copied and runs the GEMM. Both give the same bits.
#   IN_CSR     a dense first layer on a scipy.sparse CSR matrix, read where it lies: the forward over rows,
#              the weight gradient scattered over features (csrc/fastnn_csr.h)
#
# A wide first layer on dense input sums its features in two partitions, one per thread (see
# first_forward_train), so each thread's kernel rows stay in its core's cache.
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcpy

from fastnn._kernels._typedefs cimport floating, intp_t
from fastnn._kernels._loops_act cimport ACT_LINEAR
from fastnn._kernels._loops cimport bias_grad_cols, fastnn_gather_bitmaps
from fastnn._kernels._engine_types cimport EOp, Engine, IN_CSR, IN_DENSE, share16, sync
from fastnn._kernels._engine_ops cimport (GRAD_BLOCK_ROWS, SPARSE_GRAD_BLOCK_ROWS, dense_bias_update, dense_share,
                                          dense_update, finish_dense_rows, gemm)
from fastnn._kernels._engine_update cimport update_block, update_range

cdef extern from "fastnn_bitmap.h" nogil:
    void fastnn_sparse_forward(float* H, Py_ssize_t ldh, const float* X, Py_ssize_t ldx, const intp_t* rows,
                               const float* W, Py_ssize_t ldw, const float* bias, const uint64_t* rowbits,
                               Py_ssize_t ldr, Py_ssize_t f0, Py_ssize_t f1, Py_ssize_t B, Py_ssize_t c0,
                               Py_ssize_t c1)
    void fastnn_sparse_weight_grad(float* dW, Py_ssize_t lddw, const float* X, Py_ssize_t ldx, const intp_t* rows,
                                   const float* dZ, Py_ssize_t ldz, const uint64_t* featmask, Py_ssize_t nw,
                                   Py_ssize_t f0, Py_ssize_t f1, Py_ssize_t c0, Py_ssize_t c1)
    void fastnn_prefetch(const void* p, size_t nbytes)

cdef extern from "fastnn_csr.h" nogil:
    void fastnn_csr_batch_forward_i32(float* Y, const float* W, Py_ssize_t O, const int32_t* indptr,
                                      const int32_t* ind, const float* data, const intp_t* rows, Py_ssize_t row0,
                                      Py_ssize_t r0, Py_ssize_t r1)
    void fastnn_csr_batch_forward_i64(float* Y, const float* W, Py_ssize_t O, const int64_t* indptr,
                                      const int64_t* ind, const float* data, const intp_t* rows, Py_ssize_t row0,
                                      Py_ssize_t r0, Py_ssize_t r1)
    void fastnn_csr_batch_grad_i32(float* dW, Py_ssize_t O, const float* G, Py_ssize_t ldg, const int32_t* indptr,
                                   const int32_t* ind, const float* data, const intp_t* rows, Py_ssize_t row0,
                                   Py_ssize_t B, Py_ssize_t f0, Py_ssize_t f1, int sorted)
    void fastnn_csr_batch_grad_i64(float* dW, Py_ssize_t O, const float* G, Py_ssize_t ldg, const int64_t* indptr,
                                   const int64_t* ind, const float* data, const intp_t* rows, Py_ssize_t row0,
                                   Py_ssize_t B, Py_ssize_t f0, Py_ssize_t f1, int sorted)


cdef inline void copy_rows(Engine* e, floating* xb, const intp_t* rows, Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """xb[r] = X[rows[r]] for this thread's rows."""
    cdef Py_ssize_t r
    cdef const floating* X = <const floating*>e.X
    for r in range(r0, r1):
        memcpy(xb + r * e.I0, X + rows[r] * e.ldx, e.I0 * sizeof(floating))


cdef inline bint gather_bitmaps(Engine* e, const intp_t* rows, Py_ssize_t n, const intp_t* next_rows,
                                Py_ssize_t n_next, int tid, int T) noexcept nogil:
    """Bitmaps of the batch's non-zeros (this thread's 64-feature words, every row) and a prefetch of
    this thread's rows of the next batch; a barrier; then whether the batch is sparse enough for the
    bitmask kernels (every thread reads the same counts, so all decide alike)."""
    cdef Py_ssize_t w0 = e.nwi * tid // T, w1 = e.nwi * (tid + 1) // T, p0, p1, nnz = 0
    cdef int t
    p0 = n_next * tid // T
    p1 = n_next * (tid + 1) // T
    e.nnz_part[8 * tid] = fastnn_gather_bitmaps(<float*>NULL, 0, <const float*>e.X, e.ldx, rows, n,
                                                next_rows + p0, p1 - p0, 0, e.I0, e.I0, e.rowbits, e.nwi, e.featmask,
                                                e.nw, e.octets, w0, w1)
    sync(T)
    for t in range(T):
        nnz += e.nnz_part[8 * t]
    return nnz <= e.max_density * n * e.I0


cdef inline int part_owner(int p, int T) noexcept nogil:
    """The thread that sums partition p of the first layer's features (thread 0 both when alone)."""
    return p if T > 1 else 0


cdef inline void csr_features(Engine* e, int tid, int T, Py_ssize_t* f0, Py_ssize_t* f1) noexcept nogil:
    """Thread tid's features of the CSR gradient scatter: its consecutive parts of the split, which was made
    for csr_parts threads (a team OpenMP made smaller, or a build without OpenMP, still covers them all)."""
    f0[0] = e.csr_split[tid * e.csr_parts // T]
    f1[0] = e.csr_split[(tid + 1) * e.csr_parts // T]


cdef inline bint first_forward_train(Engine* e, EOp* op, floating* xb, const intp_t* rows, Py_ssize_t n,
                                     const intp_t* next_rows, Py_ssize_t n_next, Py_ssize_t r0, Py_ssize_t r1,
                                     bint fold, int tid, int T) noexcept nogil:
    """The first (dense) op of a training step, from the raw batch into op.A (IN_DENSE / IN_CSR); returns
    whether it ran on bitmaps. Ends with this thread's rows of op.A written. next_rows: the next batch's
    rows, prefetched.

    With first_split s (a wide layer on dense input), the layer sums its features in two partitions,
    (sum over [0, s)) + (sum over [s, I)) + b, each partition by one thread over every row: each thread
    then reads, differentiates and updates only its own rows of the kernel, which stay in its core's
    cache (a split by rows or units made both cores touch every kernel row: 2-thread steps slower than
    one thread's). The split is part of the layer's arithmetic, so one thread sums the same two halves."""
    cdef Py_ssize_t O = op.n_out, I = op.n_in, s = e.first_split, f0, f1, r, c
    cdef floating* A = <floating*>op.A
    cdef floating* part = <floating*>e.part
    cdef floating* p0
    cdef floating* p1
    cdef int act = ACT_LINEAR if fold else op.act, p
    cdef bint sparse = False
    if e.input == IN_CSR:
        if floating is float:
            if e.csr64:
                fastnn_csr_batch_forward_i64(A, <float*>op.W, O, <const int64_t*>e.indptr, <const int64_t*>e.indices,
                                             <const float*>e.data, rows, 0, r0, r1)
            else:
                fastnn_csr_batch_forward_i32(A, <float*>op.W, O, <const int32_t*>e.indptr, <const int32_t*>e.indices,
                                             <const float*>e.data, rows, 0, r0, r1)
        finish_dense_rows(op, A, r0, r1, act, <floating*>op.b, True)
        return False
    if floating is float:
        if e.bitmask_ok and e.max_density >= 0:  # (max_density < 0: the GEMM was chosen, no bitmaps)
            sparse = gather_bitmaps(e, rows, n, next_rows, n_next, tid, T)
    if not sparse:
        copy_rows(e, xb, rows, r0, r1)
    if s == 0:  # one pass over the features, by rows
        if sparse:
            if floating is float:
                fastnn_sparse_forward(A + r0 * O, O, <const float*>e.X, e.ldx, rows + r0, <float*>op.W, O,
                                      <float*>op.b, e.rowbits + r0, 64 * e.nw, 0, I, r1 - r0, 0, O)
            finish_dense_rows(op, A, r0, r1, act, <floating*>NULL, True)
        else:
            gemm(r1 - r0, O, I, xb + r0 * I, I, 1, <floating*>op.W, O, 0, A + r0 * O, O)
            finish_dense_rows(op, A, r0, r1, act, <floating*>op.b, True)
        return sparse
    if not sparse:
        sync(T)  # the partitions' GEMMs read every row
    for p in range(2):
        if part_owner(p, T) != tid:
            continue
        f0 = 0 if p == 0 else s
        f1 = s if p == 0 else I
        if sparse:
            if floating is float:
                fastnn_sparse_forward(part + p * e.batch_size * O, O, <const float*>e.X, e.ldx, rows, <float*>op.W, O,
                                      <float*>NULL, e.rowbits, 64 * e.nw, f0, f1, n, 0, O)
        else:
            gemm(n, O, f1 - f0, xb + f0, I, 1, (<floating*>op.W) + f0 * O, O, 0, part + p * e.batch_size * O, O)
    sync(T)
    for r in range(r0, r1):
        p0 = part + r * O
        p1 = part + (e.batch_size + r) * O
        for c in range(O):
            A[r * O + c] = p0[c] + p1[c]
    finish_dense_rows(op, A, r0, r1, act, <floating*>op.b, True)
    return sparse


cdef inline void first_forward_infer(Engine* e, EOp* op, const floating* x, Py_ssize_t start, Py_ssize_t r0,
                                     Py_ssize_t r1, bint fold) noexcept nogil:
    """Rows [r0, r1) of the chunk starting at row `start` of X through the first (dense) op: bitmaps of the
    thread's rows when they are sparse enough, else the GEMM on X's rows in place; CSR rows as in training.
    Each row gets the same bits either way and whatever the chunk."""
    cdef Py_ssize_t O = op.n_out, I = op.n_in
    cdef floating* A = <floating*>op.A
    cdef int act = ACT_LINEAR if fold else op.act
    cdef bint sparse = False
    if r1 <= r0:
        return
    if e.input == IN_CSR:
        if floating is float:
            if e.csr64:
                fastnn_csr_batch_forward_i64(A, <float*>op.W, O, <const int64_t*>e.indptr, <const int64_t*>e.indices,
                                             <const float*>e.data, <intp_t*>NULL, start, r0, r1)
            else:
                fastnn_csr_batch_forward_i32(A, <float*>op.W, O, <const int32_t*>e.indptr, <const int32_t*>e.indices,
                                             <const float*>e.data, <intp_t*>NULL, start, r0, r1)
        finish_dense_rows(op, A, r0, r1, act, <floating*>op.b, False)
        return
    if floating is float:
        if e.bitmask_ok and e.max_density >= 0:  # this thread's rows, every word; no featmask (no gradient here)
            sparse = fastnn_gather_bitmaps(<float*>NULL, 0, x + r0 * I, I, <intp_t*>NULL, r1 - r0, <intp_t*>NULL, 0,
                                           0, 0, I, e.rowbits + r0, e.nwi, <uint64_t*>NULL, e.nw_cap, e.octets, 0,
                                           e.nwi) <= e.max_density * (r1 - r0) * I
        if sparse:
            fastnn_sparse_forward(A + r0 * O, O, x + r0 * I, I, <intp_t*>NULL, <float*>op.W, O, <float*>op.b,
                                  e.rowbits + r0, 64 * e.nw_cap, 0, I, r1 - r0, 0, O)
            finish_dense_rows(op, A, r0, r1, act, <floating*>NULL, False)
            return
    gemm(r1 - r0, O, I, x + r0 * I, I, 1, <floating*>op.W, O, 0, A + r0 * O, O)
    finish_dense_rows(op, A, r0, r1, act, <floating*>op.b, False)


cdef inline void first_grad_update(Engine* e, EOp* op, const floating* xb, const intp_t* rows, Py_ssize_t n,
                                   bint sparse, double* acc, int tid, int T, bint update) noexcept nogil:
    """The first dense op's weight gradient + update (dense_grad_update's scheme) from the raw batch: the
    bitmask kernel on X's rows, the GEMM on the copied batch, or the CSR scatter over features. With
    feature partitions each thread takes the kernel rows of its partition (those its forward read)."""
    cdef Py_ssize_t i0, i1, c0, c1, f0, f1, I = op.n_in, O = op.n_out
    cdef floating* params = <floating*>e.params
    cdef floating* dW = <floating*>op.dW
    cdef floating* G = <floating*>op.G
    cdef int p
    if e.input == IN_CSR:
        if floating is float:
            csr_features(e, tid, T, &f0, &f1)
            if f1 > f0:
                if e.csr64:
                    fastnn_csr_batch_grad_i64(<float*>dW, O, <float*>G, O, <const int64_t*>e.indptr,
                                              <const int64_t*>e.indices, <const float*>e.data, rows, 0, n, f0, f1,
                                              e.csr_sorted)
                else:
                    fastnn_csr_batch_grad_i32(<float*>dW, O, <float*>G, O, <const int32_t*>e.indptr,
                                              <const int32_t*>e.indices, <const float*>e.data, rows, 0, n, f0, f1,
                                              e.csr_sorted)
                if update:
                    update_range(e, params, op.w_off + f0 * O, op.w_off + f1 * O, op.w_l1, op.w_l2, op.w_scale,
                                 op.w_decay)
            if op.b != NULL and tid == T - 1:  # the last thread's features are the rarest (fewest values)
                bias_grad_cols(<floating*>op.db, acc, G, O, n, 0, O, False)
                if update:
                    update_range(e, params, op.b_off, op.b_off + O, op.b_l1, op.b_l2, op.b_scale, op.b_decay)
        return
    if e.first_split:
        for p in range(2):
            if part_owner(p, T) == tid:
                weight_grad_rows(e, op, xb, rows, n, sparse, 0 if p == 0 else e.first_split,
                                 e.first_split if p == 0 else I, 0, O, update)
        if tid == part_owner(1, T):  # (thread 0 has the loss sums)
            dense_bias_update(e, op, params, n, acc, 0, 0, O, update)
        return
    dense_share(op, tid, T, &i0, &i1, &c0, &c1)  # (an empty share may still hold the bias)
    weight_grad_rows(e, op, xb, rows, n, sparse, i0, i1, c0, c1, update)
    dense_bias_update(e, op, params, n, acc, tid, c0, c1, update)


cdef inline void first_update(Engine* e, EOp* op, int tid, int T, floating* params) noexcept nogil:
    """The deferred update of the first dense op: the blocks first_grad_update gave this thread."""
    cdef Py_ssize_t i0, i1, c0, c1, f0, f1, O = op.n_out
    cdef int p
    if e.input == IN_CSR:
        csr_features(e, tid, T, &f0, &f1)
        dense_update(e, op, params, f0, f1, 0, O, tid == T - 1)
        return
    if e.first_split:
        for p in range(2):
            if part_owner(p, T) == tid:
                dense_update(e, op, params, 0 if p == 0 else e.first_split, e.first_split if p == 0 else op.n_in,
                             0, O, p == 1)
        return
    dense_share(op, tid, T, &i0, &i1, &c0, &c1)
    dense_update(e, op, params, i0, i1, c0, c1, not op.dw_by_rows or tid == 0)


cdef inline void weight_grad_rows(Engine* e, EOp* op, const floating* xb, const intp_t* rows, Py_ssize_t n,
                                  bint sparse, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t c0, Py_ssize_t c1,
                                  bint update) noexcept nogil:
    """dW[i0:i1, c0:c1] a block of kernel rows at a time, each block updated while it is in cache."""
    cdef Py_ssize_t f0 = i0, f1, I = op.n_in, O = op.n_out
    cdef floating* params = <floating*>e.params
    cdef floating* dW = <floating*>op.dW
    cdef floating* G = <floating*>op.G
    while f0 < i1:
        f1 = min(f0 + (SPARSE_GRAD_BLOCK_ROWS if sparse else GRAD_BLOCK_ROWS), i1)
        if sparse:
            if floating is float:
                fastnn_sparse_weight_grad(<float*>dW, O, <const float*>e.X, e.ldx, rows, <float*>G, O, e.featmask,
                                          e.nw, f0, f1, c0, c1)
        else:
            gemm(f1 - f0, c1 - c0, n, xb + f0, 1, I, G + c0, O, 0, dW + f0 * O + c0, O)
        if update:
            update_block(e, params, op.w_off, O, f0, f1, c0, c1, op.w_l1, op.w_l2, op.w_scale, op.w_decay)
        f0 = f1
