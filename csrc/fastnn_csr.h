/* fastnn_csr.h -- CSR rows x a dense kernel: the bag-of-words first layer (IMDB: I = 10000
 * inputs, O = 16 units, ~132 stored values per review; float32 only; IDX is the CSR index type).
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
 *
 * The kernels ({SI} = i32, i64)
 *   fastnn_csr_dot_{SI}:     o[0:O] = sum_k data[k] W[ind[k], 0:O]          k in [k0, k1): the even
 *                       and the odd k summed ascending apart, then added (two FMA chains)
 *   fastnn_csr_scatter_{SI}: dW[ind[k], 0:O] += data[k] z[0:O]              k in [k0, k1), ascending,
 *                       only for ind[k] in [p0, p1) when filter is set (a thread's dW rows)
 *   fastnn_csr_batch_forward_{SI}, fastnn_csr_batch_grad_{SI}: below.
 * Both sum every element in ascending k, so results do not depend on the
 * thread split (sparse.pyx's module docstring). Accumulators stay in 8-float
 * vectors: the dot's last vector may overlap its neighbour (it recomputes
 * identical values); the scatter, which adds into memory, instead finishes
 * the last O % 8 columns one by one. Written in C because the Cython loops,
 * inlined into their callers, were not vectorised (3.5 ns per stored value
 * on the IMDB shapes, about 1 ns here). Every product is added by one fused multiply-add
 * (fastnn_clones.h).
 */
#ifndef FASTNN_CSR_H
#define FASTNN_CSR_H

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

/* the first position in the sorted ind[lo:hi) whose index is >= f */
#define FASTNN_DEFINE_LOWER_BOUND(IDX, SI)                                                          \
FASTNN_ALWAYS_INLINE ptrdiff_t fastnn_lower_bound_##SI(const IDX *ind, ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t f) { \
    while (lo < hi) {                                                                               \
        const ptrdiff_t mid = lo + ((hi - lo) >> 1);                                                \
        if ((ptrdiff_t)ind[mid] < f) lo = mid + 1; else hi = mid;                                   \
    }                                                                                               \
    return lo;                                                                                      \
}
FASTNN_DEFINE_LOWER_BOUND(int32_t, i32)
FASTNN_DEFINE_LOWER_BOUND(int64_t, i64)

#if FASTNN_HAVE_VECTOR_EXT
#define FASTNN_IF_VECTOR(...) __VA_ARGS__
#else
#define FASTNN_IF_VECTOR(...)
#endif

#if FASTNN_HAVE_VECTOR_EXT
#define FASTNN_CSR_DOT_CHUNK(K)                                                                     \
    {                                                                                               \
        fastnn_v8sf acc[K], acc2[K];                                                                \
        ptrdiff_t off[K];                                                                           \
        int j;                                                                                      \
        for (j = 0; j < K; j++) {                                                                   \
            off[j] = 8 * j < width - 8 ? 8 * j : width - 8;                                         \
            acc[j] = acc2[j] = (fastnn_v8sf){0, 0, 0, 0, 0, 0, 0, 0};                               \
        }                                                                                           \
        /* even and odd k in two sets of accumulators: two independent FMA chains */               \
        for (k = k0; k + 1 < k1; k += 2) {                                                          \
            float v = data[k], v2 = data[k + 1];                                                    \
            fastnn_v8sf vv = {v, v, v, v, v, v, v, v}, vv2 = {v2, v2, v2, v2, v2, v2, v2, v2};      \
            const float *wr = W + (ptrdiff_t)ind[k] * O + c, *wr2 = W + (ptrdiff_t)ind[k + 1] * O + c; \
            for (j = 0; j < K; j++) {                                                               \
                acc[j] = FC_FMA8(vv, fastnn_load8(wr + off[j]), acc[j]);                            \
                acc2[j] = FC_FMA8(vv2, fastnn_load8(wr2 + off[j]), acc2[j]);                        \
            }                                                                                       \
        }                                                                                           \
        if (k < k1) {                                                                               \
            float v = data[k];                                                                      \
            fastnn_v8sf vv = {v, v, v, v, v, v, v, v};                                              \
            const float *wr = W + (ptrdiff_t)ind[k] * O + c;                                        \
            for (j = 0; j < K; j++) acc[j] = FC_FMA8(vv, fastnn_load8(wr + off[j]), acc[j]);        \
        }                                                                                           \
        for (j = 0; j < K; j++) fastnn_store8(o + c + off[j], acc[j] + acc2[j]);                    \
    }
#define FASTNN_CSR_VECTOR_DOT                                                                       \
    ptrdiff_t c = 0;                                                                                \
    while (c < O) {                                                                                 \
        ptrdiff_t width = O - c < 64 ? O - c : 64;                                                  \
        if (width < 8) { c = O - 8; width = 8; }                                                    \
        switch ((width + 7) / 8) {                                                                  \
            case 1: FASTNN_CSR_DOT_CHUNK(1) break;                                                  \
            case 2: FASTNN_CSR_DOT_CHUNK(2) break;                                                  \
            case 3: FASTNN_CSR_DOT_CHUNK(3) break;                                                  \
            case 4: FASTNN_CSR_DOT_CHUNK(4) break;                                                  \
            case 5: FASTNN_CSR_DOT_CHUNK(5) break;                                                  \
            case 6: FASTNN_CSR_DOT_CHUNK(6) break;                                                  \
            case 7: FASTNN_CSR_DOT_CHUNK(7) break;                                                  \
            default: FASTNN_CSR_DOT_CHUNK(8) break;                                                 \
        }                                                                                           \
        c += width;                                                                                 \
    }
#endif

/* fastnn_csr_dot_{SI}, fastnn_csr_scatter_{SI}, fastnn_csr_batch_grad_{SI}: _base and _avx2 */
#define FASTNN_CLONE_BODY "fastnn_csr_body.h"
#include "fastnn_clones.h"

/* fastnn_csr_batch_forward: Y[r, 0:O] = sum_k data[k] W[ind[k], 0:O] over the
 * CSR row s_r (fastnn_csr_dot), for batch rows r in [r0, r1), with s_r =
 * rows[r], or row0 + r when rows is NULL. No bias, no activation.
 *
 * fastnn_csr_batch_grad: dW[f0:f1, 0:O] (zeroed here) = sum over batch rows
 * r in [0, B) ascending, then over the stored values k of row s_r ascending
 * with ind[k] in [f0, f1), of data[k] G[r * ldg : r * ldg + O]. `sorted`:
 * every row's indices are non-decreasing. Kernel rows without a value get a
 * zero row. */
#define FASTNN_DEFINE_CSR(IDX, SI)                                                                  \
static inline void fastnn_csr_dot_##SI(float *o, const IDX *ind, const float *data, ptrdiff_t k0,    \
                                       ptrdiff_t k1, const float *W, ptrdiff_t O) {                 \
    FASTNN_CLONE_CALL(fastnn_csr_dot_##SI, (o, ind, data, k0, k1, W, O));                           \
}                                                                                                   \
static inline void fastnn_csr_scatter_##SI(float *dW, const IDX *ind, const float *data, ptrdiff_t k0, \
        ptrdiff_t k1, const float *z, ptrdiff_t O, ptrdiff_t p0, ptrdiff_t p1, int filter) {           \
    FASTNN_CLONE_CALL(fastnn_csr_scatter_##SI, (dW, ind, data, k0, k1, z, O, p0, p1, filter));     \
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
static inline void fastnn_csr_batch_grad_##SI(float *dW, ptrdiff_t O, const float *G, ptrdiff_t ldg, \
        const IDX *indptr, const IDX *ind, const float *data, const intptr_t *rows, ptrdiff_t row0,  \
        ptrdiff_t B, ptrdiff_t f0, ptrdiff_t f1, int sorted) {                                      \
    FASTNN_CLONE_CALL(fastnn_csr_batch_grad_##SI,                                                   \
                      (dW, O, G, ldg, indptr, ind, data, rows, row0, B, f0, f1, sorted));           \
}
FASTNN_DEFINE_CSR(int32_t, i32)
FASTNN_DEFINE_CSR(int64_t, i64)

#endif /* FASTNN_CSR_H */
