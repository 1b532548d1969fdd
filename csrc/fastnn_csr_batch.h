/* CSR mini-batches in the fused engine: the first layer of a bag-of-words
 * input (open issue 3, IMDB tutorial speed).
 *
 * Dimension legend
 *   I    columns of the CSR matrix X = rows of the first layer's kernel W (I, O)
 *   O    units          B  rows of the batch (the CSR rows rows[0..B-1], or row0 + r)
 *
 * Forward (split over batch rows): Y[r] = X[s_r] @ W, each row's stored values
 * summed in CSR order (fastnn_csr_dot, the same sums as csr_dense_forward).
 *
 * Weight gradient (split over kernel rows, i.e. features): a thread owns the
 * features [f0, f1) and scatters dW[ind[k]] += data[k] G[r] for the stored
 * values of every batch row r in its range, rows ascending and positions
 * ascending within a row. Every element of dW therefore sums its terms in the
 * same order whatever the split: the result is bitwise independent of the
 * thread count. When each row's indices are sorted (multi_hot's output and
 * scipy's canonical form), a row's values in [f0, f1) are one run, found by
 * binary search; otherwise every value of the row is tested.
 *
 * This replaced a transposition of the batch (a counting sort by 64-feature
 * bucket, then accumulation per bucket in L1). On the IMDB batch (512 rows,
 * 67,000 values, 16 units, dW 640 KB, which fits in L2) the counting and the
 * fill cost ~250 us and the bucket sums ~155 us per batch on one thread; the
 * scatter, zeroing included, costs ~150 us (scratch C harness over 40 real
 * batches). The fill's eight-byte stores into ~300 open streams missed L1.
 */
#ifndef FASTNN_CSR_BATCH_H
#define FASTNN_CSR_BATCH_H

#include "fastnn_kernels.h"

/* A batch's rows sit at random places in the CSR arrays (a shuffled data set),
 * so every row starts with cache misses: the indices and values of the row
 * FASTNN_CSR_AHEAD positions ahead are prefetched (as sparse.pyx does; IMDB
 * forward ~320 -> ~230 us per 512 rows on one thread here). */
#define FASTNN_CSR_AHEAD 2
#if defined(__GNUC__)
#define FASTNN_CSR_PREFETCH_ROW(IND, DATA, K0, K1)                                                  \
    do {                                                                                            \
        ptrdiff_t q_;                                                                               \
        for (q_ = (K0); q_ < (K1); q_ += 16) {                                                      \
            __builtin_prefetch((IND) + q_, 0, 3);                                                   \
            __builtin_prefetch((DATA) + q_, 0, 3);                                                  \
        }                                                                                           \
        __asm__ __volatile__("");  /* prefetch-only code must not be deleted (fastnn_prefetch) */   \
    } while (0)
#define FASTNN_CSR_PREFETCH_PTR(P) __builtin_prefetch((P), 0, 3)
#else
#define FASTNN_CSR_PREFETCH_ROW(IND, DATA, K0, K1) do { } while (0)
#define FASTNN_CSR_PREFETCH_PTR(P) do { } while (0)
#endif

/* In the loop over batch rows r of [r0, r1): prefetch row r + AHEAD's indices and values, and the
 * indptr entry of row r + 2 AHEAD (a miss of its own when rows are picked by `rows`). */
#define FASTNN_CSR_PREFETCH_AHEAD(r)                                                                \
    if ((r) + FASTNN_CSR_AHEAD < r1) {                                                              \
        const ptrdiff_t sa = rows != NULL ? (ptrdiff_t)rows[(r) + FASTNN_CSR_AHEAD]                 \
                                          : row0 + (r) + FASTNN_CSR_AHEAD;                          \
        FASTNN_CSR_PREFETCH_ROW(ind, data, (ptrdiff_t)indptr[sa], (ptrdiff_t)indptr[sa + 1]);       \
        if (rows != NULL && (r) + 2 * FASTNN_CSR_AHEAD < r1)                                        \
            FASTNN_CSR_PREFETCH_PTR(indptr + rows[(r) + 2 * FASTNN_CSR_AHEAD]);                     \
    }

/* fastnn_csr_batch_forward: Y[r, 0:O] = sum_k data[k] W[ind[k], 0:O] over the
 * CSR row s_r (fastnn_csr_dot), for batch rows r in [r0, r1), with s_r =
 * rows[r], or row0 + r when rows is NULL. No bias, no activation.
 *
 * fastnn_csr_batch_grad: dW[f0:f1, 0:O] (zeroed here) = sum over batch rows
 * r in [0, B) ascending, then over the stored values k of row s_r ascending
 * with ind[k] in [f0, f1), of data[k] G[r * ldg : r * ldg + O]. `sorted`:
 * every row's indices are non-decreasing. Kernel rows without a value get a
 * zero row. */
#define FASTNN_DEFINE_CSR_BATCH(IDX, SI)                                                            \
/* the first position in the sorted ind[lo:hi) whose index is >= f */                               \
FASTNN_ALWAYS_INLINE ptrdiff_t fastnn_lower_bound_##SI(const IDX *ind, ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t f) { \
    while (lo < hi) {                                                                               \
        const ptrdiff_t mid = lo + ((hi - lo) >> 1);                                                \
        if ((ptrdiff_t)ind[mid] < f) lo = mid + 1; else hi = mid;                                   \
    }                                                                                               \
    return lo;                                                                                      \
}                                                                                                   \
static void fastnn_csr_batch_forward_##SI(float *Y, const float *W, ptrdiff_t O,                     \
        const IDX *indptr, const IDX *ind, const float *data, const intptr_t *rows, ptrdiff_t row0,  \
        ptrdiff_t r0, ptrdiff_t r1) {                                                               \
    ptrdiff_t r;                                                                                    \
    for (r = r0; r < r1; r++) {                                                                     \
        const ptrdiff_t s = rows != NULL ? (ptrdiff_t)rows[r] : row0 + r;                           \
        FASTNN_CSR_PREFETCH_AHEAD(r);                                                               \
        fastnn_csr_dot_##SI(Y + r * O, ind, data, (ptrdiff_t)indptr[s], (ptrdiff_t)indptr[s + 1], W, O); \
    }                                                                                               \
}                                                                                                   \
FASTNN_ALWAYS_INLINE void fastnn_csr_batch_grad_##SI##_body(float *dW, ptrdiff_t O, const float *G, \
        ptrdiff_t ldg, const IDX *indptr, const IDX *ind, const float *data, const intptr_t *rows,   \
        ptrdiff_t row0, ptrdiff_t B, ptrdiff_t f0, ptrdiff_t f1, int sorted) {                      \
    ptrdiff_t r;                                                                                    \
    const ptrdiff_t r1 = B;                                                                         \
    memset(dW + f0 * O, 0, (size_t)((f1 - f0) * O) * sizeof(float));                                \
    for (r = 0; r < B; r++) {                                                                       \
        const ptrdiff_t s = rows != NULL ? (ptrdiff_t)rows[r] : row0 + r;                           \
        ptrdiff_t k0 = (ptrdiff_t)indptr[s], k1 = (ptrdiff_t)indptr[s + 1];                         \
        FASTNN_CSR_PREFETCH_AHEAD(r);                                                               \
        if (k0 == k1) continue;                                                                     \
        if (sorted) {  /* the row's values in [f0, f1): one run */                                  \
            if ((ptrdiff_t)ind[k0] < f0) k0 = fastnn_lower_bound_##SI(ind, k0, k1, f0);             \
            if (k0 < k1 && (ptrdiff_t)ind[k1 - 1] >= f1) k1 = fastnn_lower_bound_##SI(ind, k0, k1, f1); \
        }                                                                                           \
        fastnn_csr_scatter_##SI##_body(dW, ind, data, k0, k1, G + r * ldg, O, f0, f1, !sorted);      \
    }                                                                                               \
}                                                                                                   \
FASTNN_DISPATCH_AVX2(fastnn_csr_batch_grad_##SI, (float *dW, ptrdiff_t O, const float *G, ptrdiff_t ldg, \
    const IDX *indptr, const IDX *ind, const float *data, const intptr_t *rows, ptrdiff_t row0,      \
    ptrdiff_t B, ptrdiff_t f0, ptrdiff_t f1, int sorted),                                           \
    (dW, O, G, ldg, indptr, ind, data, rows, row0, B, f0, f1, sorted))
FASTNN_DEFINE_CSR_BATCH(int32_t, i32)
FASTNN_DEFINE_CSR_BATCH(int64_t, i64)

#endif /* FASTNN_CSR_BATCH_H */
