/* fastnn_bitmap.h -- the first layer's bitmask kernels: a batch's non-zeros as bitmaps, and a
 * dense layer's forward and weight gradient over them.
 *
 * The first layer of an MLP on image data sees mostly zeros (MNIST: 81%).
 * Both kernels skip them with two bitmaps of the batch's non-zeros:
 *   rowbits[w*ldr + b]  bit j: X[b, 64w + j] != 0   (word-major, nwi = ceil(I/64) words per row,
 *                       so that threads owning different words write different cache lines)
 *   featmask[i*nw + g]  bit r: X[64g + r, i] != 0   (feature-major, nw = ceil(B/64))
 * built by fastnn_gather_bitmaps below in the same pass that copies the batch. Every output element
 * is a sum over the non-zero inputs in ascending order, so results are
 * bitwise reproducible and do not depend on how columns are split between
 * threads. Accumulators stay in registers: up to 104 columns (13 vectors of
 * 8 floats) per pass; a last partial vector overlaps its neighbour (it
 * recomputes identical values) instead of needing a scalar tail.
 *
 *   fastnn_sparse_forward:     H[b, c0:c1] = sum_{i in [f0, f1)} X[b, i] W[i, c0:c1] + bias[c0:c1]
 *   fastnn_sparse_weight_grad: dW[i, c0:c1] = sum_b X[b, i] dZ[b, c0:c1]   (overwrites; i in [f0, f1))
 * Row b of X is at X + rows[b] * ldx, or X + b * ldx when rows is NULL: training reads the batch
 * where it lies in the data set (no copy; _engine_input.pxd). Every product is added by one fused
 * multiply-add (fastnn_clones.h), as in the GEMM: the engine's choice between these kernels and
 * the GEMM changes no bit.
 */

#ifndef FASTNN_BITMAP_H
#define FASTNN_BITMAP_H

#include "fastnn_kernels.h"

/* The columns [c, c + width) of a chunk (8 <= width <= 64), K accumulators at offsets
 * min(8k, width - 8), one 64-feature word at a time over FASTNN_SPARSE_ROWS rows: the
 * word's kernel rows (64 x width floats, 16 KB at most) stay in L1 while those rows use
 * them, and a row's partial sums wait in `part` (on the stack) between words: the same
 * sums in the same order, no bit changes. Row by row, with all words at once, the kernel
 * rows came from L2 for every row: 1.7x slower (MNIST, 64 columns: 17 us against 10).
 * The partial sums do not go through H: with two threads writing neighbouring column
 * blocks of H, reloading them 13 times a row made each thread's forward 2x slower. */
#define FASTNN_ROW(b) (rows != NULL ? (ptrdiff_t)rows[b] : (b))  /* batch row b's row of X */
#define FASTNN_SPARSE_ROWS 32
/* Columns per chunk: up to 13 accumulators of 8 floats, which with the broadcast value fit the
 * 16 AVX2 registers. A 100-unit layer in one chunk of 13 vectors ran its forward over half the
 * features in 21 us against 26 us for 52 of its columns (7 vectors) over all of them (C harness,
 * Fashion-MNIST rows): the bits are decoded, and the value broadcast, once per 13 FMAs. */
#define FASTNN_CHUNK_MAX 104

/* The bits of word w (features 64w..64w+63) that lie in [f0, f1); w must overlap the range. */
static inline uint64_t fastnn_word_range(ptrdiff_t w, ptrdiff_t f0, ptrdiff_t f1) {
    ptrdiff_t lo = f0 - 64 * w, hi = f1 - 64 * w;
    uint64_t m = hi >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << hi) - 1);
    return lo > 0 ? m & (~(uint64_t)0 << lo) : m;
}

#define FASTNN_SPARSE_FORWARD_CHUNK(K)                                                              \
    {                                                                                               \
        fastnn_v8sf acc[K];                                                                         \
        ptrdiff_t off[K];                                                                           \
        int k;                                                                                      \
        for (k = 0; k < K; k++) off[k] = 8 * k < width - 8 ? 8 * k : width - 8;                    \
        for (b0 = 0; b0 < B; b0 += FASTNN_SPARSE_ROWS) {                                            \
            ptrdiff_t b1 = B - b0 < FASTNN_SPARSE_ROWS ? B : b0 + FASTNN_SPARSE_ROWS;               \
            for (w = wa; w < wb; w++) {                                                             \
                int first = w == wa, last = w == wb - 1;                                            \
                uint64_t in_range = fastnn_word_range(w, f0, f1);                                   \
                for (b = b0; b < b1; b++) {                                                         \
                    uint64_t m = rowbits[w * ldr + b] & in_range;                                   \
                    const float *x = X + FASTNN_ROW(b) * ldx;                                       \
                    float *p = part + (b - b0) * FASTNN_CHUNK_MAX;                                  \
                    if (!m && !first && !last) continue;                                            \
                    for (k = 0; k < K; k++)                                                         \
                        acc[k] = first ? (fastnn_v8sf){0, 0, 0, 0, 0, 0, 0, 0} : fastnn_load8(p + off[k]); \
                    while (m) {                                                                     \
                        ptrdiff_t i = w * 64 + fastnn_ctz64(m);                                     \
                        float v = x[i];                                                             \
                        fastnn_v8sf vv = {v, v, v, v, v, v, v, v};                                  \
                        const float *wr = W + i * ldw + c;                                          \
                        m &= m - 1;                                                                 \
                        for (k = 0; k < K; k++) acc[k] = FC_FMA8(vv, fastnn_load8(wr + off[k]), acc[k]); \
                    }                                                                               \
                    if (!last)                                                                      \
                        for (k = 0; k < K; k++) fastnn_store8(p + off[k], acc[k]);                  \
                    else                                                                            \
                        for (k = 0; k < K; k++)                                                     \
                            fastnn_store8(H + b * ldh + c + off[k],                                 \
                                          bias ? acc[k] + fastnn_load8(bias + c + off[k]) : acc[k]); \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
    }

#define FASTNN_SPARSE_GRAD_CHUNK(K)                                                                 \
    {                                                                                               \
        fastnn_v8sf acc[K];                                                                         \
        ptrdiff_t off[K];                                                                           \
        int k;                                                                                      \
        for (k = 0; k < K; k++) off[k] = 8 * k < width - 8 ? 8 * k : width - 8;                    \
        for (i = f0; i < f1; i++) {                                                                 \
            float *d = dW + i * lddw + c;                                                           \
            for (k = 0; k < K; k++) acc[k] = (fastnn_v8sf){0, 0, 0, 0, 0, 0, 0, 0};                 \
            for (g = 0; g < nw; g++) {                                                              \
                uint64_t m = featmask[i * nw + g];                                                  \
                while (m) {                                                                         \
                    ptrdiff_t b = g * 64 + fastnn_ctz64(m);                                         \
                    float v = X[FASTNN_ROW(b) * ldx + i];                                           \
                    fastnn_v8sf vv = {v, v, v, v, v, v, v, v};                                      \
                    const float *z = dZ + b * ldz + c;                                              \
                    m &= m - 1;                                                                     \
                    for (k = 0; k < K; k++) acc[k] = FC_FMA8(vv, fastnn_load8(z + off[k]), acc[k]);  \
                }                                                                                   \
            }                                                                                       \
            for (k = 0; k < K; k++) fastnn_store8(d + off[k], acc[k]);                              \
        }                                                                                           \
    }

/* Columns in near-equal chunks of at most FASTNN_CHUNK_MAX (128 columns: 64 + 64, not 104 + 24),
 * each a multiple of 8; a final chunk narrower than 8 is moved left to overlap (identical
 * recomputation). Fewer than 8 columns in all: scalar. */
#define FASTNN_CHUNKED(CHUNK_MACRO, SCALAR)                                                         \
    ptrdiff_t c = c0, n_chunks = (c1 - c0 + FASTNN_CHUNK_MAX - 1) / FASTNN_CHUNK_MAX;              \
    ptrdiff_t chunk = ((c1 - c0 + n_chunks - 1) / n_chunks + 7) / 8 * 8;                            \
    if (c1 - c0 < 8) { SCALAR; return; }                                                            \
    while (c < c1) {                                                                                \
        ptrdiff_t width = c1 - c < chunk ? c1 - c : chunk;                                          \
        if (width < 8) { c = c1 - 8; width = 8; }                                                   \
        switch ((width + 7) / 8) {                                                                  \
            case 1: CHUNK_MACRO(1) break;                                                           \
            case 2: CHUNK_MACRO(2) break;                                                           \
            case 3: CHUNK_MACRO(3) break;                                                           \
            case 4: CHUNK_MACRO(4) break;                                                           \
            case 5: CHUNK_MACRO(5) break;                                                           \
            case 6: CHUNK_MACRO(6) break;                                                           \
            case 7: CHUNK_MACRO(7) break;                                                           \
            case 8: CHUNK_MACRO(8) break;                                                           \
            case 9: CHUNK_MACRO(9) break;                                                           \
            case 10: CHUNK_MACRO(10) break;                                                         \
            case 11: CHUNK_MACRO(11) break;                                                         \
            case 12: CHUNK_MACRO(12) break;                                                         \
            default: CHUNK_MACRO(13) break;                                                         \
        }                                                                                           \
        c += width;                                                                                 \
    }

/* fastnn_sparse_forward_base/_avx2 and fastnn_sparse_weight_grad_base/_avx2 */
#define FASTNN_CLONE_BODY "fastnn_bitmap_body.h"
#include "fastnn_clones.h"

static inline void fastnn_sparse_forward(float *H, ptrdiff_t ldh, const float *X, ptrdiff_t ldx,
                                         const intptr_t *rows,
                                         const float *W, ptrdiff_t ldw, const float *bias,
                                         const uint64_t *rowbits, ptrdiff_t ldr, ptrdiff_t f0, ptrdiff_t f1, ptrdiff_t B,
                                         ptrdiff_t c0, ptrdiff_t c1) {
    if (c1 <= c0) return;
    if (f1 <= f0) {  /* no features: the bias alone (the sums are empty) */
        ptrdiff_t b, c;
        for (b = 0; b < B; b++)
            for (c = c0; c < c1; c++) H[b * ldh + c] = bias ? 0.0f + bias[c] : 0.0f;
        return;
    }
    FASTNN_CLONE_CALL(fastnn_sparse_forward, (H, ldh, X, ldx, rows, W, ldw, bias, rowbits, ldr, f0, f1, B, c0, c1));
}

static inline void fastnn_sparse_weight_grad(float *dW, ptrdiff_t lddw, const float *X, ptrdiff_t ldx,
                                             const intptr_t *rows, const float *dZ, ptrdiff_t ldz,
                                             const uint64_t *featmask,
                                             ptrdiff_t nw, ptrdiff_t f0, ptrdiff_t f1, ptrdiff_t c0, ptrdiff_t c1) {
    if (c1 <= c0 || f1 <= f0) return;
    FASTNN_CLONE_CALL(fastnn_sparse_weight_grad, (dW, lddw, X, ldx, rows, dZ, ldz, featmask, nw, f0, f1, c0, c1));
}

/* The batch's rows and both bitmaps, each row's bits read from its copy while in L1.
 * Copies rows X + rows[b] * ldx (X + b * ldx when rows is NULL), b in [0, B), to
 * dst + b * ldd (no copy when dst is NULL), and writes rowbits and featmask, for
 * the features of the 64-feature words [w0, w1) only: threads own whole words.
 * rowbits is written with ldr = 64 * nw. Returns the number of non-zeros it found.
 * It also prefetches the whole rows X + next_rows[b] * ldx, b in [0, n_next): the next
 * batch's, one step ahead (n_next = 0: none); every thread reads all of a row later.
 * octets (8 * nwi, 64 * nw) is scratch: byte [o, b] holds the bits of features
 * 8o..8o+7 of row b, so that one AVX2 movemask turns 32 rows of it into a
 * feature's 32 row bits. featmask rows B..64*nw-1 are zero. featmask = NULL (inference: only the
 * forward's rowbits are needed) skips octets and featmask. */
FASTNN_ALWAYS_INLINE unsigned fastnn_octet_scalar(const float *x, ptrdiff_t n) {
    unsigned m = 0;
    ptrdiff_t j;
    for (j = 0; j < n; j++)
        m |= (unsigned)(x[j] != 0.0f) << j;
    return m;
}

FASTNN_ALWAYS_INLINE void fastnn_octets_transpose_scalar(uint64_t *featmask, ptrdiff_t nw, const uint8_t *octets,
                                                         ptrdiff_t o, ptrdiff_t nf) {
    ptrdiff_t j, g, r, Bp = 64 * nw;
    for (j = 0; j < nf; j++)
        for (g = 0; g < nw; g++) {
            uint64_t f = 0;
            for (r = 0; r < 64; r++)
                f |= (uint64_t)((octets[o * Bp + 64 * g + r] >> j) & 1u) << r;
            featmask[(8 * o + j) * nw + g] = f;
        }
}

#define FASTNN_GATHER_BITMAPS_BODY(OCTET8, TRANSPOSE)                                                \
    {                                                                                               \
        ptrdiff_t Bp = 64 * nw, b, w, k, o, f0 = 64 * w0, f1 = 64 * w1 < n_in ? 64 * w1 : n_in;     \
        ptrdiff_t nnz = 0;                                                                          \
        for (b = 0; b < B || b < n_next; b++) {                                                     \
            const float *x = X + (rows ? (ptrdiff_t)rows[b] : b) * ldx;                             \
            if (b < n_next) /* a step ahead: in L2 when the next step reads it */                  \
                fastnn_prefetch(X + (ptrdiff_t)next_rows[b] * ldx + pf0, (size_t)(pf1 - pf0) * sizeof(float)); \
            if (b >= B) continue;                                                                   \
            if (dst && f1 > f0) { /* memcpy keeps more of a random row's lines in flight */         \
                memcpy(dst + b * ldd + f0, x + f0, (size_t)(f1 - f0) * sizeof(float));              \
                x = dst + b * ldd;                                                                  \
            }                                                                                       \
            for (w = w0; w < w1; w++) {                                                             \
                uint64_t word = 0;                                                                  \
                for (k = 0; k < 8; k++) {                                                           \
                    ptrdiff_t i = 64 * w + 8 * k;                                                   \
                    unsigned m = 0;                                                                 \
                    if (i + 8 <= n_in) m = OCTET8(x + i);                                           \
                    else if (i < n_in) m = fastnn_octet_scalar(x + i, n_in - i);                    \
                    word |= (uint64_t)m << (8 * k);                                                 \
                    if (featmask) octets[(8 * w + k) * Bp + b] = (uint8_t)m;                        \
                }                                                                                   \
                rowbits[w * Bp + b] = word;                                                         \
                nnz += fastnn_popcount64(word);                                                     \
            }                                                                                       \
        }                                                                                           \
        for (o = 8 * w0; featmask && o < 8 * w1 && 8 * o < n_in; o++) {                            \
            memset(octets + o * Bp + B, 0, (size_t)(Bp - B));                                       \
            TRANSPOSE(featmask, nw, octets, o, n_in - 8 * o < 8 ? n_in - 8 * o : 8);                \
        }                                                                                           \
        return nnz;                                                                                 \
    }

#define FASTNN_GATHER_BITMAPS_PARAMS                                                                \
    float *restrict dst, ptrdiff_t ldd, const float *restrict X, ptrdiff_t ldx, const intptr_t *rows, \
    ptrdiff_t B, const intptr_t *next_rows, ptrdiff_t n_next, ptrdiff_t pf0, ptrdiff_t pf1, ptrdiff_t n_in, \
    uint64_t *restrict rowbits, ptrdiff_t nwi, uint64_t *restrict featmask,                           \
    ptrdiff_t nw, uint8_t *restrict octets, ptrdiff_t w0, ptrdiff_t w1
#define FASTNN_OCTET8_SCALAR(x) fastnn_octet_scalar(x, 8)

static ptrdiff_t fastnn_gather_bitmaps_base(FASTNN_GATHER_BITMAPS_PARAMS)
    FASTNN_GATHER_BITMAPS_BODY(FASTNN_OCTET8_SCALAR, fastnn_octets_transpose_scalar)

#if FASTNN_X86_DISPATCH
FASTNN_TARGET_AVX2 static inline unsigned fastnn_octet_avx2(const float *x) {
    __m256 v = _mm256_loadu_ps(x);
    return (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_NEQ_UQ));  /* NaN != 0, as in C */
}
/* Bit 7 of each byte, after j doublings, is bit 7 - j of the byte. */
FASTNN_TARGET_AVX2 static inline void fastnn_octets_transpose_avx2(uint64_t *featmask, ptrdiff_t nw,
                                                                   const uint8_t *octets, ptrdiff_t o, ptrdiff_t nf) {
    ptrdiff_t g, j, Bp = 64 * nw;
    for (g = 0; g < nw; g++) {
        const uint8_t *p = octets + o * Bp + 64 * g;
        __m256i lo = _mm256_loadu_si256((const __m256i *)p), hi = _mm256_loadu_si256((const __m256i *)(p + 32));
        for (j = 7; j >= 0; j--) {
            if (j < nf)
                featmask[(8 * o + j) * nw + g] = (uint64_t)(uint32_t)_mm256_movemask_epi8(lo)
                                                 | (uint64_t)(uint32_t)_mm256_movemask_epi8(hi) << 32;
            lo = _mm256_add_epi8(lo, lo);
            hi = _mm256_add_epi8(hi, hi);
        }
    }
}
FASTNN_TARGET_AVX2 static ptrdiff_t fastnn_gather_bitmaps_avx2(FASTNN_GATHER_BITMAPS_PARAMS)
    FASTNN_GATHER_BITMAPS_BODY(fastnn_octet_avx2, fastnn_octets_transpose_avx2)
#endif

static inline ptrdiff_t fastnn_gather_bitmaps(FASTNN_GATHER_BITMAPS_PARAMS) {
#if FASTNN_X86_DISPATCH
    if (fastnn_use_avx2_fma()) {
        return fastnn_gather_bitmaps_avx2(dst, ldd, X, ldx, rows, B, next_rows, n_next, pf0, pf1, n_in, rowbits, nwi,
                                          featmask, nw, octets, w0, w1);
    }
#endif
    return fastnn_gather_bitmaps_base(dst, ldd, X, ldx, rows, B, next_rows, n_next, pf0, pf1, n_in, rowbits, nwi,
                                      featmask,
                                      nw, octets, w0, w1);
}

#endif /* FASTNN_BITMAP_H */
