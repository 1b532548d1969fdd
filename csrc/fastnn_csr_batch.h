/* Transposed CSR mini-batch: the first-layer weight gradient of a bag-of-words
 * input without a read-modify-write scatter (open issue 3, IMDB tutorial speed).
 *
 * Dimension legend
 *   I    columns of the CSR matrix X = rows of the first layer's kernel W (I, O)
 *   O    units          B  rows of the batch (the CSR rows rows[0..B-1], or row0 + r)
 *   nnz  stored values of the batch's rows                 T  threads (regions)
 *
 * A batch of CSR rows is row-major; dW = X_b^T G needs it feature-major. The
 * scatter dW[ind[k]] += data[k] G[r] (csrc/fastnn_kernels.h section 6) reads and
 * writes a 64-byte dW row per stored value, over a 640 KB dW that does not fit
 * in L1. Instead each thread transposes its own rows [r0, r1) of the batch with
 * a counting sort into its own region (counted in fastnn_csr_batch_forward, filled
 * by fastnn_csr_batch_fill): for every
 * feature f, the (batch row, value) pairs of its stored values, rows ascending.
 * The feature's owner then sums value * G[row] over region 0, 1, ... in turn
 * (rows ascending overall, whatever the number of regions) in registers and
 * writes dW[f] once (fastnn_csr_batch_grad_rows), where the optimizer update
 * reads it next while it is in L1. The summation order of every dW element is
 * the batch's row order, so dW is bitwise independent of the thread count.
 *
 * Region layout after the transpose of rows [r0, r1) (n = their stored values):
 * (region t's ends are ends + t * lde in fastnn_csr_batch_grad_rows)
 *   end[f]              (I,) int32: end of feature f's pairs; its start is
 *                       end[f - 1] (0 for f = 0)
 *   pair[0:n]           (batch row id, value) pairs, grouped by feature
 * The caller passes the region's storage (it holds the stored values of rows
 * [r0, r1) exactly). Indices must have been checked to lie in [0, I).
 */
#ifndef FASTNN_CSR_BATCH_H
#define FASTNN_CSR_BATCH_H

#include "fastnn_kernels.h"

/* One stored value of the transposed batch: its batch row and value, packed so
 * that the fill's random write is one 8-byte store (two separate arrays cost
 * two cache misses per value: fill ~190 -> ~100 us for an IMDB batch). */
typedef struct { int32_t row; float val; } fastnn_csr_pair;

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
    } while (0)
#else
#define FASTNN_CSR_PREFETCH_ROW(IND, DATA, K0, K1) do { } while (0)
#endif

/* Forward of batch rows [r0, r1): Y[r, 0:O] = sum_k data[k] W[ind[k], 0:O] over
 * the CSR row s_r (fastnn_csr_dot: the same sums as csr_dense_forward), with
 * s_r = rows[r], or row0 + r when rows is NULL. No bias, no activation.
 * With count != NULL (training), also counts the stored values of each feature
 * in these rows into count (I,) (zeroed here) while the row is in L1: the first
 * pass of the counting sort (fastnn_csr_batch_fill does the rest). */
#define FASTNN_DEFINE_CSR_BATCH(IDX, SI)                                                            \
static void fastnn_csr_batch_forward_##SI(float *Y, const float *W, ptrdiff_t O,                     \
        const IDX *indptr, const IDX *ind, const float *data, const intptr_t *rows, ptrdiff_t row0,  \
        ptrdiff_t r0, ptrdiff_t r1, int32_t *count, ptrdiff_t I) {                                  \
    ptrdiff_t r, k;                                                                                 \
    if (count != NULL) memset(count, 0, (size_t)I * sizeof(int32_t));                               \
    for (r = r0; r < r1; r++) {                                                                     \
        const ptrdiff_t s = rows != NULL ? (ptrdiff_t)rows[r] : row0 + r;                           \
        const ptrdiff_t k0 = (ptrdiff_t)indptr[s], k1 = (ptrdiff_t)indptr[s + 1];                   \
        if (r + FASTNN_CSR_AHEAD < r1) {                                                            \
            const ptrdiff_t sa = rows != NULL ? (ptrdiff_t)rows[r + FASTNN_CSR_AHEAD]               \
                                              : row0 + r + FASTNN_CSR_AHEAD;                        \
            FASTNN_CSR_PREFETCH_ROW(ind, data, (ptrdiff_t)indptr[sa], (ptrdiff_t)indptr[sa + 1]);   \
        }                                                                                           \
        fastnn_csr_dot_##SI(Y + r * O, ind, data, k0, k1, W, O);                                    \
        if (count != NULL)                                                                          \
            for (k = k0; k < k1; k++) count[ind[k]]++;                                              \
    }                                                                                               \
}                                                                                                   \
/* The rest of the counting sort of batch rows [r0, r1) into one region:           \
 * end (I,) holds the counts on entry (fastnn_csr_batch_forward) and the ends of    \
 * the features' pairs on return; pair receives (batch row, value) per value. */    \
static void fastnn_csr_batch_fill_##SI(int32_t *restrict end, fastnn_csr_pair *restrict pair,       \
        const IDX *restrict indptr, const IDX *restrict ind,                   \
        const float *restrict data, const intptr_t *restrict rows, ptrdiff_t row0,                  \
        ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t I) {                                                  \
    ptrdiff_t r, k, f;                                                                              \
    int32_t run = 0, c;                                                                             \
    for (f = 0; f < I; f++) { c = end[f]; end[f] = run; run += c; }  /* end[f] = start of f */       \
    for (r = r0; r < r1; r++) {                                                                     \
        const ptrdiff_t s = rows != NULL ? (ptrdiff_t)rows[r] : row0 + r;                           \
        const ptrdiff_t k1 = (ptrdiff_t)indptr[s + 1];                                              \
        if (r + FASTNN_CSR_AHEAD < r1) {                                                            \
            const ptrdiff_t sa = rows != NULL ? (ptrdiff_t)rows[r + FASTNN_CSR_AHEAD]               \
                                              : row0 + r + FASTNN_CSR_AHEAD;                        \
            FASTNN_CSR_PREFETCH_ROW(ind, data, (ptrdiff_t)indptr[sa], (ptrdiff_t)indptr[sa + 1]);   \
        }                                                                                           \
        for (k = (ptrdiff_t)indptr[s]; k < k1; k++) {                                               \
            const int32_t p = end[ind[k]]++;    /* after the fill: end[f] = start of f + 1 */       \
            pair[p].row = (int32_t)r;                                                               \
            pair[p].val = data[k];                                                                  \
        }                                                                                           \
    }                                                                                               \
}
FASTNN_DEFINE_CSR_BATCH(int32_t, i32)
FASTNN_DEFINE_CSR_BATCH(int64_t, i64)

/* dW[f, 0:O] = sum over regions t = 0..T-1, then over feature f's pairs (r, v)
 * of region t in order, of v * G[r, 0:O] (each element from 0), for f in
 * [f0, f1). Features without a pair get a zero row. Accumulators: up to 32
 * columns (4 vectors of 8 floats) per pass over a feature's pairs, the last
 * vector overlapping its neighbour when O % 8 != 0 (it recomputes identical
 * values); O < 8 runs the scalar loop. */
#if FASTNN_HAVE_VECTOR_EXT
#define FASTNN_CSR_GRAD_CHUNK(K)                                                                    \
    {                                                                                               \
        fastnn_v8sf acc[K];                                                                         \
        ptrdiff_t off[K];                                                                           \
        int j;                                                                                      \
        for (j = 0; j < K; j++) {                                                                   \
            off[j] = 8 * j < width - 8 ? 8 * j : width - 8;                                         \
            acc[j] = (fastnn_v8sf){0, 0, 0, 0, 0, 0, 0, 0};                                         \
        }                                                                                           \
        for (t = 0; t < T; t++) {                                                                   \
            const int32_t *restrict e = ends + t * lde;                                             \
            const fastnn_csr_pair *restrict pr = pairs[t];                                          \
            const ptrdiff_t p1 = e[f];                                                              \
            for (p = f ? e[f - 1] : 0; p < p1; p++) {                                               \
                const float v = pr[p].val;                                                          \
                const fastnn_v8sf vv = {v, v, v, v, v, v, v, v};                                    \
                const float *g = G + (ptrdiff_t)pr[p].row * ldg + c;                                \
                for (j = 0; j < K; j++) acc[j] += vv * fastnn_load8(g + off[j]);                    \
            }                                                                                       \
        }                                                                                           \
        for (j = 0; j < K; j++) fastnn_store8(d + c + off[j], acc[j]);                              \
    }
#endif

FASTNN_ALWAYS_INLINE void fastnn_csr_batch_grad_rows_body(float *restrict dW, ptrdiff_t O,
        const float *restrict G, ptrdiff_t ldg, const int32_t *ends, ptrdiff_t lde,
        const fastnn_csr_pair *const *pairs, int T, ptrdiff_t f0, ptrdiff_t f1) {
    ptrdiff_t f, p, c;
    int t;
    for (f = f0; f < f1; f++) {
        float *restrict d = dW + f * O;
        if (O < 8 || !FASTNN_HAVE_VECTOR_EXT) {
            for (c = 0; c < O; c++) d[c] = 0.0f;
            for (t = 0; t < T; t++) {
                const int32_t *e = ends + t * lde;
                for (p = f ? e[f - 1] : 0; p < e[f]; p++) {
                    const float v = pairs[t][p].val, *g = G + (ptrdiff_t)pairs[t][p].row * ldg;
                    for (c = 0; c < O; c++) d[c] += v * g[c];
                }
            }
            continue;
        }
#if FASTNN_HAVE_VECTOR_EXT
        c = 0;
        while (c < O) {
            ptrdiff_t width = O - c < 32 ? O - c : 32;
            if (width < 8) { c = O - 8; width = 8; }
            switch ((width + 7) / 8) {
                case 1: FASTNN_CSR_GRAD_CHUNK(1) break;
                case 2: FASTNN_CSR_GRAD_CHUNK(2) break;
                case 3: FASTNN_CSR_GRAD_CHUNK(3) break;
                default: FASTNN_CSR_GRAD_CHUNK(4) break;
            }
            c += width;
        }
#endif
    }
}
FASTNN_DISPATCH_AVX2(fastnn_csr_batch_grad_rows, (float *dW, ptrdiff_t O, const float *G, ptrdiff_t ldg,
    const int32_t *ends, ptrdiff_t lde, const fastnn_csr_pair *const *pairs, int T, ptrdiff_t f0, ptrdiff_t f1),
    (dW, O, G, ldg, ends, lde, pairs, T, f0, f1))

#endif /* FASTNN_CSR_BATCH_H */
