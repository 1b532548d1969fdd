/* Transposed CSR mini-batch: the first-layer weight gradient of a bag-of-words
 * input without a read-modify-write scatter over the whole dW (open issue 3,
 * IMDB tutorial speed).
 *
 * Dimension legend
 *   I    columns of the CSR matrix X = rows of the first layer's kernel W (I, O)
 *   O    units          B  rows of the batch (the CSR rows rows[0..B-1], or row0 + r)
 *   nnz  stored values of the batch's rows                 T  threads (regions)
 *
 * A batch of CSR rows is row-major; dW = X_b^T G needs it feature-major. The
 * scatter dW[ind[k]] += data[k] G[r] (csrc/fastnn_kernels.h section 6) reads and
 * writes a 64-byte dW row per stored value all over a 640 KB dW (IMDB) that
 * does not fit in L1. Instead each thread transposes its own batch rows
 * [r0, r1) with a counting sort into its own region: counted while the
 * forward reads each row (fastnn_csr_batch_forward), filled right after
 * (fastnn_csr_batch_fill). The sort key is the BUCKET of a feature
 * (feature / 64), not the feature: the fill then writes ~I/64 sequential
 * streams instead of one scattered position per value. A bucket's owner then
 * accumulates its 64 dW rows (4 KB for 16 units: L1) from region 0, 1, ... in
 * turn (fastnn_csr_batch_grad_bucket), and the caller runs the optimizer update
 * of those rows while they are in L1. Each bucket is kept as two lists, the
 * values at even and at odd positions of their rows (two independent chains of
 * counter updates: IMDB's start and OOV tokens are in every row). Every dW
 * element sums its terms over the even list's rows, then the odd list's, rows
 * ascending in each (region t holds rows after region t - 1's), so dW is
 * bitwise independent of the thread count.
 *
 * Region layout after the fill of rows [r0, r1) (n = their stored values):
 *   end[j]              (2 nb,) int32, nb = ceil(I / 64): end of list j's values
 *                       (j = b: bucket b's even positions, j = nb + b: its odd
 *                       ones); its start is end[j - 1] (0 for j = 0); region
 *                       t's ends are ends + t * lde in fastnn_csr_batch_grad_bucket
 *   pair[0:n]           (row * 64 + feature % 64, value) pairs, grouped by list,
 *                       batch rows ascending within a list
 * The caller passes the region's storage (it holds the stored values of rows
 * [r0, r1) exactly). Indices must have been checked to lie in [0, I), and
 * B * 64 must fit in an int32.
 */
#ifndef FASTNN_CSR_BATCH_H
#define FASTNN_CSR_BATCH_H

#include "fastnn_kernels.h"

/* One stored value of the transposed batch: its batch row and value, packed so
 * that the fill's random write is one 8-byte store (two separate arrays cost
 * two cache misses per value: fill ~190 -> ~100 us for an IMDB batch). */
typedef struct { int32_t code; float val; } fastnn_csr_pair;  /* code = row * 64 + feature % 64 */

/* Features per bucket: the transposed batch is grouped by bucket (feature / 64),
 * not by feature. The fill then writes ~I/64 sequential streams (157 for IMDB,
 * 10 KB of open cache lines: L1) instead of scattering into one position per
 * feature (~190 us of cache misses per IMDB batch), and the gradient of a
 * bucket's 64 kernel rows (4 KB for 16 units) is accumulated in L1. */
#define FASTNN_CSR_BUCKET_SHIFT 6
#define FASTNN_CSR_BUCKET (1 << FASTNN_CSR_BUCKET_SHIFT)

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

/* Forward of batch rows [r0, r1): Y[r, 0:O] = sum_k data[k] W[ind[k], 0:O] over
 * the CSR row s_r (fastnn_csr_dot: the same sums as csr_dense_forward), with
 * s_r = rows[r], or row0 + r when rows is NULL. No bias, no activation.
 * With count != NULL (training), also counts the values of each bucket in these
 * rows while the row is in L1, at even positions of the row into count[0:nb]
 * and at odd ones into count[nb:2 nb] (zeroed here): the first pass of the
 * counting sort (fastnn_csr_batch_fill does the rest). */
#define FASTNN_DEFINE_CSR_BATCH(IDX, SI)                                                            \
static void fastnn_csr_batch_forward_##SI(float *Y, const float *W, ptrdiff_t O,                     \
        const IDX *indptr, const IDX *ind, const float *data, const intptr_t *rows, ptrdiff_t row0,  \
        ptrdiff_t r0, ptrdiff_t r1, int32_t *count, ptrdiff_t I) {                                  \
    ptrdiff_t r, k;                                                                                 \
    const ptrdiff_t nb = (I + FASTNN_CSR_BUCKET - 1) >> FASTNN_CSR_BUCKET_SHIFT;                    \
    int32_t *count2 = count != NULL ? count + nb : NULL;                                            \
    if (count != NULL)  /* one counter per bucket of FASTNN_CSR_BUCKET features, twice */            \
        memset(count, 0, (size_t)(2 * nb) * sizeof(int32_t));                                       \
    for (r = r0; r < r1; r++) {                                                                     \
        const ptrdiff_t s = rows != NULL ? (ptrdiff_t)rows[r] : row0 + r;                           \
        const ptrdiff_t k0 = (ptrdiff_t)indptr[s], k1 = (ptrdiff_t)indptr[s + 1];                   \
        FASTNN_CSR_PREFETCH_AHEAD(r);                                                               \
        fastnn_csr_dot_##SI(Y + r * O, ind, data, k0, k1, W, O);                                    \
        if (count != NULL) {                                                                        \
            /* two counter sets (even / odd k): the hot buckets (IMDB's start and OOV tokens are in  \
             * every row) otherwise make one long chain of increments through memory */             \
            for (k = k0; k + 1 < k1; k += 2) {  /* positions k - k0 even / odd */                   \
                count[ind[k] >> FASTNN_CSR_BUCKET_SHIFT]++;                                         \
                count2[ind[k + 1] >> FASTNN_CSR_BUCKET_SHIFT]++;                                    \
            }                                                                                       \
            if (k < k1) count[ind[k] >> FASTNN_CSR_BUCKET_SHIFT]++;                                 \
        }                                                                                           \
    }                                                                                               \
}                                                                                                   \
/* The rest of the counting sort of batch rows [r0, r1) into one region:           \
 * end (2 nb,) holds the counts on entry (fastnn_csr_batch_forward), the ends of  \
 * the lists on return; pair receives (row * 64 + feature % 64, value) per value. */\
static void fastnn_csr_batch_fill_##SI(int32_t *restrict end, fastnn_csr_pair *restrict pair,       \
        const IDX *restrict indptr, const IDX *restrict ind,                   \
        const float *restrict data, const intptr_t *restrict rows, ptrdiff_t row0,                  \
        ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t I) {                                                  \
    ptrdiff_t r, k, f;                                                                              \
    int32_t run = 0, c;                                                                             \
    const ptrdiff_t nb = (I + FASTNN_CSR_BUCKET - 1) >> FASTNN_CSR_BUCKET_SHIFT;                    \
    int32_t *restrict end2 = end + nb;                                                              \
    for (f = 0; f < 2 * nb; f++) { c = end[f]; end[f] = run; run += c; }  /* end[j] = start of j */  \
    for (r = r0; r < r1; r++) {                                                                     \
        const ptrdiff_t s = rows != NULL ? (ptrdiff_t)rows[r] : row0 + r;                           \
        const ptrdiff_t k1 = (ptrdiff_t)indptr[s + 1];                                              \
        FASTNN_CSR_PREFETCH_AHEAD(r);                                                               \
        const ptrdiff_t k0 = (ptrdiff_t)indptr[s], rc = r << FASTNN_CSR_BUCKET_SHIFT;               \
        for (k = k0; k < k1; k++) {                                                                 \
            /* even and odd positions k - k0 of a row in two lists: two chains of counter updates */ \
            const ptrdiff_t i = (ptrdiff_t)ind[k];                                                  \
            int32_t *restrict e = (k - k0) & 1 ? end2 : end;                                        \
            const int32_t p = e[i >> FASTNN_CSR_BUCKET_SHIFT]++;  /* then end[j] = start of j+1 */  \
            pair[p].code = (int32_t)(rc | (i & (FASTNN_CSR_BUCKET - 1)));                           \
            pair[p].val = data[k];                                                                  \
        }                                                                                           \
    }                                                                                               \
}
FASTNN_DEFINE_CSR_BATCH(int32_t, i32)
FASTNN_DEFINE_CSR_BATCH(int64_t, i64)

/* dW[f, 0:O] = sum over regions t = 0..T-1, then over the stored values
 * (r, v) of feature f in region t in order (batch rows ascending), of
 * v * G[r, 0:O], each element from 0, for the features f of bucket b (rows
 * [64 b, min(64 b + 64, I)) of dW, zeroed here: features without a value get a
 * zero row). The bucket's dW rows stay in L1 (4 KB for O = 16) for the
 * read-modify-writes and for the optimizer update the caller runs next. */
FASTNN_ALWAYS_INLINE void fastnn_csr_batch_grad_bucket_body(float *restrict dW, ptrdiff_t O,
        const float *restrict G, ptrdiff_t ldg, const int32_t *ends, ptrdiff_t lde,
        const fastnn_csr_pair *const *pairs, int T, ptrdiff_t b, ptrdiff_t I) {
    const ptrdiff_t f0 = b << FASTNN_CSR_BUCKET_SHIFT;
    const ptrdiff_t f1 = f0 + FASTNN_CSR_BUCKET < I ? f0 + FASTNN_CSR_BUCKET : I;
    const ptrdiff_t O8 = FASTNN_HAVE_VECTOR_EXT ? O / 8 * 8 : 0;
    float *restrict blk = dW + f0 * O;
    ptrdiff_t p, c;
    int t;
    memset(blk, 0, (size_t)((f1 - f0) * O) * sizeof(float));
    int half;
    for (half = 0; half < 2; half++)  /* values at even positions of their rows, then odd ones */
    for (t = 0; t < T; t++) {
        const int32_t *e = ends + t * lde;
        const fastnn_csr_pair *restrict pr = pairs[t];
        const ptrdiff_t j = half * ((I + FASTNN_CSR_BUCKET - 1) >> FASTNN_CSR_BUCKET_SHIFT) + b;
        const ptrdiff_t p1 = e[j];
        for (p = j ? e[j - 1] : 0; p < p1; p++) {
            const int32_t code = pr[p].code;
            const float v = pr[p].val;
            float *restrict d = blk + (ptrdiff_t)(code & (FASTNN_CSR_BUCKET - 1)) * O;
            const float *restrict g = G + (ptrdiff_t)(code >> FASTNN_CSR_BUCKET_SHIFT) * ldg;
#if FASTNN_HAVE_VECTOR_EXT
            const fastnn_v8sf vv = {v, v, v, v, v, v, v, v};
            for (c = 0; c < O8; c += 8) fastnn_store8(d + c, fastnn_load8(d + c) + vv * fastnn_load8(g + c));
#endif
            for (c = O8; c < O; c++) d[c] += v * g[c];
        }
    }
}
FASTNN_DISPATCH_AVX2(fastnn_csr_batch_grad_bucket, (float *dW, ptrdiff_t O, const float *G, ptrdiff_t ldg,
    const int32_t *ends, ptrdiff_t lde, const fastnn_csr_pair *const *pairs, int T, ptrdiff_t b, ptrdiff_t I),
    (dW, O, G, ldg, ends, lde, pairs, T, b, I))

#endif /* FASTNN_CSR_BATCH_H */
