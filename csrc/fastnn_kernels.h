/* fastnn_kernels.h -- plain-C helpers shared by the Cython kernels.
 *
 * Dimension legend
 *   B  rows in a batch      I  inputs of a dense layer      O  units of a dense layer
 *   K  classes              N  elements of a flat buffer    nw 64-bit words per bitmask (ceil(B/64))
 *
 * Contents
 *   1. OpenMP shim: the sequential build (FASTNN_NO_OPENMP=1) compiles the same
 *      Cython code; these stubs make omp_* calls and barriers no-ops there.
 *   2. Numerically stable scalar helpers (sigmoid: one element of fastnn_math.h, log1pexp).
 *   3. Sparse-input dense-layer kernels for inputs that are mostly zeros
 *      (MNIST pixels are 81% zeros), with AVX2/FMA multi-versioning.
 *   4. Optimizer updates over a range of the flat parameter arena.
 *   5. The one-row forward (predict on one sample), skipping zero inputs.
 *   6. CSR rows x dense kernel: forward dot and weight-gradient scatter (IMDB).
 *
 * C99, static inline, no globals except the lazily resolved dispatch flag
 * (a benign race: every thread computes the same value).
 */
#ifndef FASTNN_KERNELS_H
#define FASTNN_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fastnn_math.h"  /* vectorized tanh / sigmoid (the sigmoid below is one element of it) */

#if defined(_MSC_VER) && !defined(__cplusplus)
#define restrict __restrict
#endif

/* ------------------------------------------------------------------ 1. OpenMP shim */
#ifdef _OPENMP
#include <omp.h>
#define FASTNN_HAVE_OPENMP 1
/* An orphaned barrier: valid when called from inside a parallel region, and it
 * lets the fused MLP engine keep ONE parallel region for many training steps
 * instead of forking and joining once per phase (llm.c's OpenMP loop style). */
static inline void fastnn_barrier(void) {
    _Pragma("omp barrier")
}
static inline int fastnn_omp_max_threads(void) { return omp_get_max_threads(); }
static inline int fastnn_team_size(void) { return omp_get_num_threads(); }
static inline int fastnn_thread_num(void) { return omp_get_thread_num(); }
#else
#define FASTNN_HAVE_OPENMP 0
static inline void fastnn_barrier(void) {}
static inline int fastnn_omp_max_threads(void) { return 1; }
static inline int fastnn_team_size(void) { return 1; }
static inline int fastnn_thread_num(void) { return 0; }
#endif

/* ------------------------------------------------------------------ 2. stable scalars */
/* keras.backend.epsilon(): the clip of the cross-entropies on probabilities. */
#define FASTNN_EPSILON 1e-7

/* x if keep != 0, else +0.0, without a branch (and +0.0 even for x = -y, inf or NaN, as
 * NumPy's where(mask, x, 0)). Dropout's mask is random, so `keep ? x : 0` compiled to a
 * branch that mispredicted on ~rate of the elements: in the MNIST engine step (32 x 128,
 * rate 0.2) the forward and backward dropout loops cost ~15 us; masked bits, ~2 us. */
static inline float fastnn_keep_f32(unsigned char keep, float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    bits &= (uint32_t)0 - (uint32_t)(keep != 0);
    memcpy(&x, &bits, sizeof bits);
    return x;
}
static inline double fastnn_keep_f64(unsigned char keep, double x) {
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    bits &= (uint64_t)0 - (uint64_t)(keep != 0);
    memcpy(&x, &bits, sizeof bits);
    return x;
}

/* One value of fastnn_math.h's sigmoid (exp only ever sees -|x|, so neither tail overflows):
 * the bits the vectorized activation gives it, whichever clone runs. */
static inline float fastnn_sigmoidf(float x) {
    float y;
    fastnn_sigmoid_f32(&y, &x, 1);
    return y;
}
static inline double fastnn_sigmoid(double x) {
    double y;
    fastnn_sigmoid_f64(&y, &x, 1);
    return y;
}
/* BCE with logits: max(z,0) - z*y + log1p(exp(-|z|)) (TF's
 * sigmoid_cross_entropy_with_logits; never overflows, exact for large |z|). */
static inline double fastnn_bxent_logit(double z, double y) {
    return (z > 0.0 ? z : 0.0) - z * y + log1p(exp(-fabs(z)));
}

/* ------------------------------------------------------------------ 3. sparse-input dense layer
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
 * where it lies in the data set (no copy, see _gather in mlp.pyx).
 */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FASTNN_X86_DISPATCH 1
#define FASTNN_ALWAYS_INLINE static inline __attribute__((always_inline))
#define FASTNN_TARGET_AVX2 __attribute__((target("avx2,fma")))
#include <immintrin.h>
#else
#define FASTNN_X86_DISPATCH 0
#define FASTNN_ALWAYS_INLINE static inline
#endif

#if defined(__GNUC__)
#define FASTNN_HAVE_VECTOR_EXT 1
typedef float fastnn_v8sf __attribute__((vector_size(32), aligned(4)));
#else
#define FASTNN_HAVE_VECTOR_EXT 0
#endif

static inline int fastnn_ctz64(uint64_t m) {
#if defined(__GNUC__)
    return __builtin_ctzll(m);
#else
    int n = 0;
    while (!(m & 1u)) { m >>= 1; n++; }
    return n;
#endif
}

/* Software prefetch of a byte range (one hint per 64-byte line) into L2, not L1:
 * a batch of MNIST rows is 100 KB, more than L1, and would evict the kernel
 * columns the optimizer update is working on.
 * The empty volatile asm is a side effect: GCC does not count __builtin_prefetch
 * as one, so a function whose only effect is prefetching was inferred pure and
 * every call to it deleted (mlp.pyx's _prefetch_rows compiled to nothing). */
static inline void fastnn_prefetch(const void *p, size_t nbytes) {
#if defined(__GNUC__)
    const char *c = (const char *)p;
    size_t k;
    for (k = 0; k < nbytes; k += 64)
        __builtin_prefetch(c + k, 0, 2);
    __asm__ __volatile__("");
#else
    (void)p; (void)nbytes;
#endif
}

/* Set bits of one word without a call: GCC's __builtin_popcountll is a libgcc call
 * unless the build targets POPCNT (no -march here). */
static inline ptrdiff_t fastnn_popcount64(uint64_t m) {
    m = m - ((m >> 1) & 0x5555555555555555ULL);
    m = (m & 0x3333333333333333ULL) + ((m >> 2) & 0x3333333333333333ULL);
    m = (m + (m >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return (ptrdiff_t)((m * 0x0101010101010101ULL) >> 56);
}

/* Number of set bits among n words. */
static inline ptrdiff_t fastnn_popcount_masks(const uint64_t *mask, ptrdiff_t n) {
    ptrdiff_t i, total = 0;
    for (i = 0; i < n; i++) {
#if defined(__GNUC__)
        total += __builtin_popcountll(mask[i]);
#else
        uint64_t m = mask[i];
        while (m) { m &= m - 1; total++; }
#endif
    }
    return total;
}

#if FASTNN_HAVE_VECTOR_EXT
/* Macros, not functions: they are used in the AVX2 clones and at the baseline alike, and a function
 * passing a 32-byte vector has a different ABI in each (a non-inlined copy at FASTNN_DEBUG's -O0 made
 * dense_forward segfault in debug builds; GCC's -Wpsabi warns about the declaration even inlined). */
#define fastnn_load8(p) __extension__({ fastnn_v8sf v_; memcpy(&v_, (p), sizeof(v_)); v_; })
#define fastnn_store8(p, v) do { fastnn_v8sf s_ = (v); memcpy((p), &s_, sizeof(s_)); } while (0)
#endif

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
                        for (k = 0; k < K; k++) acc[k] += vv * fastnn_load8(wr + off[k]);           \
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
                    for (k = 0; k < K; k++) acc[k] += vv * fastnn_load8(z + off[k]);                \
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

FASTNN_ALWAYS_INLINE void fastnn_sparse_forward_scalar(
        float *restrict H, ptrdiff_t ldh, const float *restrict X, ptrdiff_t ldx, const intptr_t *restrict rows,
        const float *restrict W, ptrdiff_t ldw, const float *restrict bias, const uint64_t *restrict rowbits,
        ptrdiff_t ldr, ptrdiff_t f0, ptrdiff_t f1, ptrdiff_t B, ptrdiff_t c0, ptrdiff_t c1) {
    ptrdiff_t b, w, c;
    for (b = 0; b < B; b++) {
        float *h = H + b * ldh;
        for (c = c0; c < c1; c++) h[c] = 0.0f;
        for (w = f0 / 64; 64 * w < f1; w++) {
            uint64_t m = rowbits[w * ldr + b] & fastnn_word_range(w, f0, f1);
            while (m) {
                ptrdiff_t i = w * 64 + fastnn_ctz64(m);
                float v = X[FASTNN_ROW(b) * ldx + i];
                m &= m - 1;
                for (c = c0; c < c1; c++) h[c] += v * W[i * ldw + c];
            }
        }
        if (bias)
            for (c = c0; c < c1; c++) h[c] = h[c] + bias[c];
    }
}

FASTNN_ALWAYS_INLINE void fastnn_sparse_weight_grad_scalar(
        float *restrict dW, ptrdiff_t lddw, const float *restrict X, ptrdiff_t ldx, const intptr_t *restrict rows,
        const float *restrict dZ, ptrdiff_t ldz, const uint64_t *restrict featmask, ptrdiff_t nw,
        ptrdiff_t f0, ptrdiff_t f1, ptrdiff_t c0, ptrdiff_t c1) {
    ptrdiff_t i, g, c;
    for (i = f0; i < f1; i++) {
        float *d = dW + i * lddw;
        for (c = c0; c < c1; c++) d[c] = 0.0f;
        for (g = 0; g < nw; g++) {
            uint64_t m = featmask[i * nw + g];
            while (m) {
                ptrdiff_t b = g * 64 + fastnn_ctz64(m);
                float v = X[FASTNN_ROW(b) * ldx + i];
                m &= m - 1;
                for (c = c0; c < c1; c++) d[c] += v * dZ[b * ldz + c];
            }
        }
    }
}

#if FASTNN_HAVE_VECTOR_EXT
FASTNN_ALWAYS_INLINE void fastnn_sparse_forward_body(
        float *H, ptrdiff_t ldh, const float *X, ptrdiff_t ldx, const intptr_t *rows, const float *W, ptrdiff_t ldw,
        const float *bias, const uint64_t *rowbits, ptrdiff_t ldr, ptrdiff_t f0, ptrdiff_t f1, ptrdiff_t B,
        ptrdiff_t c0, ptrdiff_t c1) {
    ptrdiff_t b, b0, w, wa = f0 / 64, wb = (f1 + 63) / 64;
    float part[FASTNN_SPARSE_ROWS * FASTNN_CHUNK_MAX];
    FASTNN_CHUNKED(FASTNN_SPARSE_FORWARD_CHUNK,
                   fastnn_sparse_forward_scalar(H, ldh, X, ldx, rows, W, ldw, bias, rowbits, ldr, f0, f1, B, c0, c1))
}
FASTNN_ALWAYS_INLINE void fastnn_sparse_weight_grad_body(
        float *dW, ptrdiff_t lddw, const float *X, ptrdiff_t ldx, const intptr_t *rows, const float *dZ, ptrdiff_t ldz,
        const uint64_t *featmask, ptrdiff_t nw, ptrdiff_t f0, ptrdiff_t f1, ptrdiff_t c0, ptrdiff_t c1) {
    ptrdiff_t i, g;
    FASTNN_CHUNKED(FASTNN_SPARSE_GRAD_CHUNK,
                   fastnn_sparse_weight_grad_scalar(dW, lddw, X, ldx, rows, dZ, ldz, featmask, nw, f0, f1, c0, c1))
}
#else
#define fastnn_sparse_forward_body fastnn_sparse_forward_scalar
#define fastnn_sparse_weight_grad_body fastnn_sparse_weight_grad_scalar
#endif

static void fastnn_sparse_forward_base(float *H, ptrdiff_t ldh, const float *X, ptrdiff_t ldx,
                                       const intptr_t *rows, const float *W,
                                       ptrdiff_t ldw, const float *bias, const uint64_t *rowbits, ptrdiff_t ldr,
                                       ptrdiff_t f0, ptrdiff_t f1,
                                       ptrdiff_t B, ptrdiff_t c0, ptrdiff_t c1) {
    fastnn_sparse_forward_body(H, ldh, X, ldx, rows, W, ldw, bias, rowbits, ldr, f0, f1, B, c0, c1);
}
static void fastnn_sparse_weight_grad_base(float *dW, ptrdiff_t lddw, const float *X, ptrdiff_t ldx,
                                           const intptr_t *rows,
                                           const float *dZ, ptrdiff_t ldz, const uint64_t *featmask, ptrdiff_t nw,
                                           ptrdiff_t f0, ptrdiff_t f1, ptrdiff_t c0, ptrdiff_t c1) {
    fastnn_sparse_weight_grad_body(dW, lddw, X, ldx, rows, dZ, ldz, featmask, nw, f0, f1, c0, c1);
}

#if FASTNN_X86_DISPATCH
/* Same bodies compiled for AVX2+FMA, chosen at run time: no -march flag at
 * build time, so one wheel runs everywhere and is fast where it can be. */
FASTNN_TARGET_AVX2 static void fastnn_sparse_forward_avx2(
        float *H, ptrdiff_t ldh, const float *X, ptrdiff_t ldx, const intptr_t *rows, const float *W, ptrdiff_t ldw,
        const float *bias, const uint64_t *rowbits, ptrdiff_t ldr, ptrdiff_t f0, ptrdiff_t f1, ptrdiff_t B,
        ptrdiff_t c0, ptrdiff_t c1) {
    fastnn_sparse_forward_body(H, ldh, X, ldx, rows, W, ldw, bias, rowbits, ldr, f0, f1, B, c0, c1);
}
FASTNN_TARGET_AVX2 static void fastnn_sparse_weight_grad_avx2(
        float *dW, ptrdiff_t lddw, const float *X, ptrdiff_t ldx, const intptr_t *rows, const float *dZ, ptrdiff_t ldz,
        const uint64_t *featmask, ptrdiff_t nw, ptrdiff_t f0, ptrdiff_t f1, ptrdiff_t c0, ptrdiff_t c1) {
    fastnn_sparse_weight_grad_body(dW, lddw, X, ldx, rows, dZ, ldz, featmask, nw, f0, f1, c0, c1);
}
static int fastnn_cpu_has_avx2_fma(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached;
}
#endif

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
#if FASTNN_X86_DISPATCH
    if (fastnn_cpu_has_avx2_fma()) {
        fastnn_sparse_forward_avx2(H, ldh, X, ldx, rows, W, ldw, bias, rowbits, ldr, f0, f1, B, c0, c1);
        return;
    }
#endif
    fastnn_sparse_forward_base(H, ldh, X, ldx, rows, W, ldw, bias, rowbits, ldr, f0, f1, B, c0, c1);
}

static inline void fastnn_sparse_weight_grad(float *dW, ptrdiff_t lddw, const float *X, ptrdiff_t ldx,
                                             const intptr_t *rows, const float *dZ, ptrdiff_t ldz,
                                             const uint64_t *featmask,
                                             ptrdiff_t nw, ptrdiff_t f0, ptrdiff_t f1, ptrdiff_t c0, ptrdiff_t c1) {
    if (c1 <= c0 || f1 <= f0) return;
#if FASTNN_X86_DISPATCH
    if (fastnn_cpu_has_avx2_fma()) {
        fastnn_sparse_weight_grad_avx2(dW, lddw, X, ldx, rows, dZ, ldz, featmask, nw, f0, f1, c0, c1);
        return;
    }
#endif
    fastnn_sparse_weight_grad_base(dW, lddw, X, ldx, rows, dZ, ldz, featmask, nw, f0, f1, c0, c1);
}

/* ------------------------------------------------------------------ 3b. input gradient of a narrow layer
 *   fastnn_small_input_grad: dX[b, c0:c1] = sum_{k < O} dZ[b, k] WT[k, c0:c1],  b in [0, B)
 * for a layer of few units (O <= FASTNN_SMALL_MAX_UNITS; the engine's O <= 16: Fashion-MNIST's and
 * MNIST's Dense(10)), with WT = W^T (O, I) and W (I, O). Every element is summed from 0 over
 * k = 0..O-1 in order by the same vector multiply-add, whatever the rows and columns a caller gives
 * it, so a split between threads (by units, or by rows in the CSR tail) changes no bit: a range of
 * fewer than 8 columns in a layer of 8+ inputs is computed as 8 columns from a tile of W and the
 * wanted ones copied out (a scalar loop there rounded differently: GCC vectorised its sum over k
 * with separate multiplies and adds). Accumulators stay in registers over k: the loop this
 * replaces read and wrote each row O times with SSE (4 us of a ~85 us Fashion-MNIST step per
 * thread). */
#define FASTNN_SMALL_MAX_UNITS 64
#define FASTNN_SMALL_GRAD_CHUNK(K)                                                                  \
    {                                                                                               \
        fastnn_v8sf acc[K];                                                                         \
        ptrdiff_t off[K], b, k;                                                                     \
        int j;                                                                                      \
        for (j = 0; j < K; j++) off[j] = 8 * j < width - 8 ? 8 * j : width - 8;                    \
        for (b = 0; b < B; b++) {                                                                   \
            for (j = 0; j < K; j++) acc[j] = (fastnn_v8sf){0, 0, 0, 0, 0, 0, 0, 0};                 \
            for (k = 0; k < O; k++) {                                                               \
                float v = dZ[b * ldz + k];                                                          \
                fastnn_v8sf vv = {v, v, v, v, v, v, v, v};                                          \
                const float *wt = WT + k * ldwt + c;                                                \
                for (j = 0; j < K; j++) acc[j] += vv * fastnn_load8(wt + off[j]);                   \
            }                                                                                       \
            for (j = 0; j < K; j++) fastnn_store8(dX + b * ldx + c + off[j], acc[j]);               \
        }                                                                                           \
    }

FASTNN_ALWAYS_INLINE void fastnn_small_input_grad_scalar(float *restrict dX, ptrdiff_t ldx,
                                                         const float *restrict dZ, ptrdiff_t ldz,
                                                         const float *restrict WT, ptrdiff_t ldwt, ptrdiff_t B,
                                                         ptrdiff_t O, ptrdiff_t c0, ptrdiff_t c1) {
    ptrdiff_t b, k, c;
    for (b = 0; b < B; b++)
        for (c = c0; c < c1; c++) {
            float acc = 0.0f;
            for (k = 0; k < O; k++) acc += dZ[b * ldz + k] * WT[k * ldwt + c];
            dX[b * ldx + c] = acc;
        }
}

#if FASTNN_HAVE_VECTOR_EXT
FASTNN_ALWAYS_INLINE void fastnn_small_input_grad_body(float *dX, ptrdiff_t ldx, const float *dZ, ptrdiff_t ldz,
                                                       const float *WT, ptrdiff_t ldwt, const float *W,
                                                       ptrdiff_t I, ptrdiff_t B, ptrdiff_t O, ptrdiff_t c0,
                                                       ptrdiff_t c1) {
    if (c1 - c0 < 8 && I >= 8 && O <= FASTNN_SMALL_MAX_UNITS) {  /* 8 columns from a tile of W */
        float tile[FASTNN_SMALL_MAX_UNITS * 8], row[8];
        ptrdiff_t cs = c0 < I - 8 ? c0 : I - 8, k, j, b;
        for (k = 0; k < O; k++)
            for (j = 0; j < 8; j++) tile[k * 8 + j] = W[(cs + j) * O + k];
        for (b = 0; b < B; b++) {
            fastnn_v8sf acc = {0, 0, 0, 0, 0, 0, 0, 0};
            for (k = 0; k < O; k++) {
                float v = dZ[b * ldz + k];
                fastnn_v8sf vv = {v, v, v, v, v, v, v, v};
                acc += vv * fastnn_load8(tile + k * 8);
            }
            fastnn_store8(row, acc);
            memcpy(dX + b * ldx + c0, row + (c0 - cs), (size_t)(c1 - c0) * sizeof(float));
        }
        return;
    }
    {
        FASTNN_CHUNKED(FASTNN_SMALL_GRAD_CHUNK,
                       fastnn_small_input_grad_scalar(dX, ldx, dZ, ldz, WT, ldwt, B, O, c0, c1))
    }
}
#else
#define fastnn_small_input_grad_body(dX, ldx, dZ, ldz, WT, ldwt, W, I, B, O, c0, c1) \
    fastnn_small_input_grad_scalar(dX, ldx, dZ, ldz, WT, ldwt, B, O, c0, c1)
#endif

static void fastnn_small_input_grad_base(float *dX, ptrdiff_t ldx, const float *dZ, ptrdiff_t ldz, const float *WT,
                                         ptrdiff_t ldwt, const float *W, ptrdiff_t I, ptrdiff_t B, ptrdiff_t O,
                                         ptrdiff_t c0, ptrdiff_t c1) {
    fastnn_small_input_grad_body(dX, ldx, dZ, ldz, WT, ldwt, W, I, B, O, c0, c1);
}
#if FASTNN_X86_DISPATCH
FASTNN_TARGET_AVX2 static void fastnn_small_input_grad_avx2(float *dX, ptrdiff_t ldx, const float *dZ,
                                                            ptrdiff_t ldz, const float *WT, ptrdiff_t ldwt,
                                                            const float *W, ptrdiff_t I, ptrdiff_t B, ptrdiff_t O,
                                                            ptrdiff_t c0, ptrdiff_t c1) {
    fastnn_small_input_grad_body(dX, ldx, dZ, ldz, WT, ldwt, W, I, B, O, c0, c1);
}
#endif

/* W (I, O) is read only for a range of fewer than 8 columns; WT only for its columns [c0, c1). */
static inline void fastnn_small_input_grad(float *dX, ptrdiff_t ldx, const float *dZ, ptrdiff_t ldz,
                                           const float *WT, ptrdiff_t ldwt, const float *W, ptrdiff_t I,
                                           ptrdiff_t B, ptrdiff_t O, ptrdiff_t c0, ptrdiff_t c1) {
    if (c1 <= c0 || B <= 0) return;
#if FASTNN_X86_DISPATCH
    if (fastnn_cpu_has_avx2_fma()) {
        fastnn_small_input_grad_avx2(dX, ldx, dZ, ldz, WT, ldwt, W, I, B, O, c0, c1);
        return;
    }
#endif
    fastnn_small_input_grad_base(dX, ldx, dZ, ldz, WT, ldwt, W, I, B, O, c0, c1);
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
    if (fastnn_cpu_has_avx2_fma()) {
        return fastnn_gather_bitmaps_avx2(dst, ldd, X, ldx, rows, B, next_rows, n_next, pf0, pf1, n_in, rowbits, nwi,
                                          featmask, nw, octets, w0, w1);
    }
#endif
    return fastnn_gather_bitmaps_base(dst, ldd, X, ldx, rows, B, next_rows, n_next, pf0, pf1, n_in, rowbits, nwi,
                                      featmask,
                                      nw, octets, w0, w1);
}

/* Flush denormals to zero (FTZ) and treat denormal inputs as zero (DAZ) on this
 * thread; returns the previous state for fastnn_denormals_restore. Optimizer
 * slots of never-active inputs (MNIST's border pixels) decay into denormals
 * and each one then costs a microcode assist: Adam over MNIST's 100k
 * parameters ran 2x slower. TensorFlow's CPU threads do the same
 * (tensorflow/core/platform/denormal.h, ScopedFlushDenormal). */
static inline unsigned int fastnn_denormals_flush(void) {
#if FASTNN_X86_DISPATCH
    unsigned int old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u);
    return old;
#else
    return 0;
#endif
}
static inline void fastnn_denormals_restore(unsigned int old) {
#if FASTNN_X86_DISPATCH
    _mm_setcsr(old);
#else
    (void)old;
#endif
}

/* Whether nbytes (a multiple of 8) at p are all zero bits. */
static inline int fastnn_zero_bits(const void *p, size_t nbytes) {
    const unsigned char *c = (const unsigned char *)p;
    uint64_t acc = 0, w;
    size_t k;
    for (k = 0; k < nbytes; k += 8) {
        memcpy(&w, c + k, 8);
        acc |= w;
    }
    return acc == 0;
}

/* ------------------------------------------------------------------ 4. optimizer updates
 * One fused pass over [n0, n1) of the arena, Keras 3 update rules in
 * _reference.py's operation order (so float32 results equal NumPy's bit for
 * bit: no FMA contraction is possible in these expressions' order -- the AVX
 * clone enables AVX only, not FMA). Written in C with restrict pointers
 * because gcc did not vectorize the Cython version once it was inlined into
 * a large caller (scalar sqrtss: 6x slower on 100k parameters).
 * T is float or double, S the function suffix, SQRT the matching sqrt.
 */
#define FASTNN_DEFINE_OPTIM(T, S, SQRT)                                                          \
FASTNN_ALWAYS_INLINE void fastnn_adam_##S##_body(T *restrict w, const T *restrict g, T *restrict m, \
        T *restrict v, T *restrict vhat, ptrdiff_t n0, ptrdiff_t n1, T a, T c1, T c2, T eps,      \
        int amsgrad) {                                                                           \
    ptrdiff_t n;                                                                                 \
    if (amsgrad) {                                                                               \
        for (n = n0; n < n1; n++) {                                                              \
            T gg = g[n], mm = m[n] + (gg - m[n]) * c1, vv = v[n] + (gg * gg - v[n]) * c2;        \
            /* NaN-propagating max, as np.maximum in the twin (issue 15: a NaN vhat was dropped) */ \
            T vh = (vhat[n] > vv || vhat[n] != vhat[n]) ? vhat[n] : vv;                          \
            m[n] = mm; v[n] = vv; vhat[n] = vh;                                                  \
            w[n] = w[n] - a * mm / (SQRT(vh) + eps);                                             \
        }                                                                                        \
    } else {                                                                                     \
        for (n = n0; n < n1; n++) {                                                              \
            T gg = g[n], mm = m[n] + (gg - m[n]) * c1, vv = v[n] + (gg * gg - v[n]) * c2;        \
            m[n] = mm; v[n] = vv;                                                                \
            w[n] = w[n] - a * mm / (SQRT(vv) + eps);                                             \
        }                                                                                        \
    }                                                                                            \
}                                                                                                \
FASTNN_ALWAYS_INLINE void fastnn_rmsprop_##S##_body(T *restrict w, const T *restrict g,             \
        T *restrict v, T *restrict mom, T *restrict mg, ptrdiff_t n0, ptrdiff_t n1, T lr, T rho,  \
        T c, T momentum, T eps, int use_momentum, int centered) {                                 \
    ptrdiff_t n, b0;                                                                             \
    if (!use_momentum && !centered) {                                                            \
        /* Blocks of 16 whose gradient is all +0.0 (a bag-of-words kernel row absent from the    \
         * batch): v rho + c 0 0 is v rho and w - lr 0 / sqrt(...) is w, bit for bit, so only v  \
         * is written (no sqrt, no division). The test is on the bits: a -0.0 gradient would     \
         * turn a w of -0.0 into +0.0 in the full update. */                                     \
        for (b0 = n0; b0 < n1; b0 += 16) {                                                       \
            const ptrdiff_t b1 = n1 - b0 < 16 ? n1 : b0 + 16;                                    \
            if (b1 - b0 == 16 && fastnn_zero_bits(g + b0, 16 * sizeof(T))) {                     \
                for (n = b0; n < b1; n++) v[n] = v[n] * rho;                                     \
                continue;                                                                        \
            }                                                                                    \
            for (n = b0; n < b1; n++) {                                                          \
                T gg = g[n], vv = v[n] * rho + c * gg * gg;                                      \
                v[n] = vv;                                                                       \
                w[n] = w[n] - lr * gg / SQRT(vv + eps);                                          \
            }                                                                                    \
        }                                                                                        \
        return;                                                                                  \
    }                                                                                            \
    for (n = n0; n < n1; n++) {                                                                  \
        T gg = g[n], vv = v[n] * rho + c * gg * gg, den, inc;                                    \
        v[n] = vv;                                                                               \
        if (centered) {                                                                          \
            T mgv = mg[n] * rho + c * gg;                                                        \
            mg[n] = mgv;                                                                         \
            den = vv - mgv * mgv + eps;                                                          \
        } else {                                                                                 \
            den = vv + eps;                                                                      \
        }                                                                                        \
        inc = lr * gg / SQRT(den);                                                               \
        if (use_momentum) {                                                                      \
            inc = mom[n] * momentum + inc;                                                       \
            mom[n] = inc;                                                                        \
        }                                                                                        \
        w[n] = w[n] - inc;                                                                       \
    }                                                                                            \
}                                                                                                \
FASTNN_ALWAYS_INLINE void fastnn_sgd_##S##_body(T *restrict w, const T *restrict g, T *restrict m,  \
        ptrdiff_t n0, ptrdiff_t n1, T lr, T mu, int use_momentum, int nesterov) {                \
    ptrdiff_t n;                                                                                 \
    if (!use_momentum) {                                                                         \
        for (n = n0; n < n1; n++) w[n] = w[n] - lr * g[n];                                       \
    } else if (nesterov) {                                                                       \
        for (n = n0; n < n1; n++) {                                                              \
            T mm = m[n] * mu - lr * g[n];                                                        \
            m[n] = mm;                                                                           \
            w[n] = w[n] + (mu * mm - lr * g[n]);                                                 \
        }                                                                                        \
    } else {                                                                                     \
        for (n = n0; n < n1; n++) {                                                              \
            T mm = m[n] * mu - lr * g[n];                                                        \
            m[n] = mm;                                                                           \
            w[n] = w[n] + mm;                                                                    \
        }                                                                                        \
    }                                                                                            \
}                                                                                                \
FASTNN_ALWAYS_INLINE void fastnn_adadelta_##S##_body(T *restrict w, const T *restrict g,            \
        T *restrict ag, T *restrict ad, ptrdiff_t n0, ptrdiff_t n1, T lr, T rho, T c, T eps) {    \
    ptrdiff_t n;                                                                                 \
    for (n = n0; n < n1; n++) {                                                                  \
        T gg = g[n], a = ag[n] * rho + c * gg * gg, delta;                                       \
        ag[n] = a;                                                                               \
        delta = -SQRT(ad[n] + eps) / SQRT(a + eps) * gg;                                         \
        ad[n] = ad[n] * rho + c * delta * delta;                                                 \
        w[n] = w[n] + lr * delta;                                                                \
    }                                                                                            \
}

FASTNN_DEFINE_OPTIM(float, f32, sqrtf)
FASTNN_DEFINE_OPTIM(double, f64, sqrt)

/* Base and AVX (no FMA: keeps NumPy's rounding) clones with run-time dispatch. */
#if FASTNN_X86_DISPATCH
#define FASTNN_TARGET_AVX __attribute__((target("avx")))
static int fastnn_cpu_has_avx(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx");
    }
    return cached;
}
#define FASTNN_DISPATCH_AVX(NAME, PARAMS, ARGS)                                                  \
    static void NAME##_base PARAMS { NAME##_body ARGS; }                                         \
    FASTNN_TARGET_AVX static void NAME##_avx PARAMS { NAME##_body ARGS; }                        \
    static inline void NAME PARAMS {                                                             \
        if (fastnn_cpu_has_avx()) NAME##_avx ARGS; else NAME##_base ARGS;                        \
    }
#else
#define FASTNN_DISPATCH_AVX(NAME, PARAMS, ARGS)                                                  \
    static void NAME PARAMS { NAME##_body ARGS; }
#endif

#define FASTNN_OPTIM_ENTRY_POINTS(T, S)                                                          \
FASTNN_DISPATCH_AVX(fastnn_adam_##S,                                                             \
    (T *w, const T *g, T *m, T *v, T *vhat, ptrdiff_t n0, ptrdiff_t n1, T a, T c1, T c2, T eps,  \
     int amsgrad), (w, g, m, v, vhat, n0, n1, a, c1, c2, eps, amsgrad))                         \
FASTNN_DISPATCH_AVX(fastnn_rmsprop_##S,                                                          \
    (T *w, const T *g, T *v, T *mom, T *mg, ptrdiff_t n0, ptrdiff_t n1, T lr, T rho, T c,        \
     T momentum, T eps, int use_momentum, int centered),                                         \
    (w, g, v, mom, mg, n0, n1, lr, rho, c, momentum, eps, use_momentum, centered))              \
FASTNN_DISPATCH_AVX(fastnn_sgd_##S,                                                              \
    (T *w, const T *g, T *m, ptrdiff_t n0, ptrdiff_t n1, T lr, T mu, int use_momentum,          \
     int nesterov), (w, g, m, n0, n1, lr, mu, use_momentum, nesterov))                          \
FASTNN_DISPATCH_AVX(fastnn_adadelta_##S,                                                         \
    (T *w, const T *g, T *ag, T *ad, ptrdiff_t n0, ptrdiff_t n1, T lr, T rho, T c, T eps),       \
    (w, g, ag, ad, n0, n1, lr, rho, c, eps))

FASTNN_OPTIM_ENTRY_POINTS(float, f32)
FASTNN_OPTIM_ENTRY_POINTS(double, f64)

/* ------------------------------------------------------------------ 5. one-row forward
 * c[0:N] = sum over k with a[k] != 0 of a[k] * B[k, 0:N]   (row-major B, row stride ldb)
 * The one-row GEMM of predict() on one sample: c is a row of at most a few
 * hundred floats that stays in registers/L1 while B's rows stream past, and
 * zero inputs (81% of an MNIST image) skip their row of B entirely. OpenBLAS's
 * sgemv reads all of B: 7-9 us for MNIST's 784x128 kernel against ~2 us here.
 * Skipping a zero input differs from BLAS only when that row of B holds an inf
 * or NaN (0 * inf); the model's weights are then non-finite anyway.
 */
#define FASTNN_DEFINE_ROW_AXPY(T, S)                                                             \
FASTNN_ALWAYS_INLINE void fastnn_row_axpy_##S##_body(T *restrict c, const T *restrict a,           \
        const T *restrict B, ptrdiff_t ldb, ptrdiff_t N, ptrdiff_t K) {                           \
    ptrdiff_t idx[64], k0, k, n, j, cnt;                                                         \
    T val[64];                                                                                   \
    for (n = 0; n < N; n++) c[n] = 0;                                                            \
    for (k0 = 0; k0 < K; k0 += 64) {                                                             \
        ptrdiff_t k1 = k0 + 64 < K ? k0 + 64 : K;                                                \
        for (cnt = 0, k = k0; k < k1; k++)                                                       \
            if (a[k] != 0) { idx[cnt] = k; val[cnt] = a[k]; cnt++; }                             \
        /* four rows of B per pass over c: c is loaded and stored once per 4 rows */             \
        for (j = 0; j + 4 <= cnt; j += 4) {                                                      \
            const T *restrict r0 = B + idx[j] * ldb, *restrict r1 = B + idx[j + 1] * ldb;        \
            const T *restrict r2 = B + idx[j + 2] * ldb, *restrict r3 = B + idx[j + 3] * ldb;    \
            const T a0 = val[j], a1 = val[j + 1], a2 = val[j + 2], a3 = val[j + 3];              \
            for (n = 0; n < N; n++)                                                              \
                c[n] += (a0 * r0[n] + a1 * r1[n]) + (a2 * r2[n] + a3 * r3[n]);                   \
        }                                                                                        \
        for (; j < cnt; j++) {                                                                   \
            const T *restrict r0 = B + idx[j] * ldb;                                             \
            const T a0 = val[j];                                                                 \
            for (n = 0; n < N; n++) c[n] += a0 * r0[n];                                          \
        }                                                                                        \
    }                                                                                            \
}
FASTNN_DEFINE_ROW_AXPY(float, f32)
FASTNN_DEFINE_ROW_AXPY(double, f64)
FASTNN_DISPATCH_AVX(fastnn_row_axpy_f32, (float *c, const float *a, const float *B, ptrdiff_t ldb,
    ptrdiff_t N, ptrdiff_t K), (c, a, B, ldb, N, K))
FASTNN_DISPATCH_AVX(fastnn_row_axpy_f64, (double *c, const double *a, const double *B, ptrdiff_t ldb,
    ptrdiff_t N, ptrdiff_t K), (c, a, B, ldb, N, K))

/* ------------------------------------------------------------------ 6. CSR rows x dense kernel
 * The bag-of-words first layer (IMDB: I = 10000 inputs, O = 16 units, ~132
 * stored values per review). float32 only; IDX is the CSR index type.
 *   fastnn_csr_dot:     o[0:O] = sum_k data[k] W[ind[k], 0:O]          k in [k0, k1): the even
 *                       and the odd k summed ascending apart, then added (two FMA chains)
 *   fastnn_csr_scatter: dW[ind[k], 0:O] += data[k] z[0:O]              k in [k0, k1), ascending,
 *                       only for ind[k] in [p0, p1) when filter is set (a thread's dW rows)
 * Both sum every element in ascending k, so results do not depend on the
 * thread split (sparse.pyx's module docstring). Accumulators stay in 8-float
 * vectors: the dot's last vector may overlap its neighbour (it recomputes
 * identical values); the scatter, which adds into memory, instead finishes
 * the last O % 8 columns one by one. Written in C because the Cython loops,
 * inlined into their callers, were not vectorised (3.5 ns per stored value
 * on the IMDB shapes, about 1 ns here).
 */
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
                acc[j] += vv * fastnn_load8(wr + off[j]);                                           \
                acc2[j] += vv2 * fastnn_load8(wr2 + off[j]);                                        \
            }                                                                                       \
        }                                                                                           \
        if (k < k1) {                                                                               \
            float v = data[k];                                                                      \
            fastnn_v8sf vv = {v, v, v, v, v, v, v, v};                                              \
            const float *wr = W + (ptrdiff_t)ind[k] * O + c;                                        \
            for (j = 0; j < K; j++) acc[j] += vv * fastnn_load8(wr + off[j]);                       \
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

#define FASTNN_DEFINE_CSR(IDX, SI)                                                                  \
FASTNN_ALWAYS_INLINE void fastnn_csr_dot_##SI##_body(float *restrict o, const IDX *restrict ind,      \
        const float *restrict data, ptrdiff_t k0, ptrdiff_t k1, const float *restrict W, ptrdiff_t O) {\
    ptrdiff_t k;                                                                                    \
    if (O < 8 || !FASTNN_HAVE_VECTOR_EXT) {                                                         \
        ptrdiff_t cc;                                                                               \
        for (cc = 0; cc < O; cc++) o[cc] = 0.0f;                                                    \
        for (k = k0; k < k1; k++) {                                                                 \
            const float v = data[k], *restrict wr = W + (ptrdiff_t)ind[k] * O;                      \
            for (cc = 0; cc < O; cc++) o[cc] += v * wr[cc];                                         \
        }                                                                                           \
        return;                                                                                     \
    }                                                                                               \
    FASTNN_IF_VECTOR(FASTNN_CSR_VECTOR_DOT)                                                         \
}                                                                                                   \
FASTNN_ALWAYS_INLINE void fastnn_csr_scatter_##SI##_body(float *restrict dW, const IDX *restrict ind, \
        const float *restrict data, ptrdiff_t k0, ptrdiff_t k1, const float *restrict z, ptrdiff_t O, \
        ptrdiff_t p0, ptrdiff_t p1, int filter) {                                                   \
    ptrdiff_t k, c, O8 = FASTNN_HAVE_VECTOR_EXT ? O / 8 * 8 : 0;                                    \
    for (k = k0; k < k1; k++) {                                                                     \
        const ptrdiff_t i = (ptrdiff_t)ind[k];                                                      \
        const float v = data[k];                                                                    \
        float *restrict d = dW + i * O;                                                             \
        if (filter && (i < p0 || i >= p1)) continue;                                                \
        FASTNN_IF_VECTOR(                                                                           \
            fastnn_v8sf vv = {v, v, v, v, v, v, v, v};                                              \
            for (c = 0; c < O8; c += 8)                                                             \
                fastnn_store8(d + c, fastnn_load8(d + c) + vv * fastnn_load8(z + c));)              \
        for (c = O8; c < O; c++) d[c] += v * z[c];                                                  \
    }                                                                                               \
}                                                                                                   \
FASTNN_DISPATCH_AVX2(fastnn_csr_dot_##SI, (float *o, const IDX *ind, const float *data, ptrdiff_t k0, \
    ptrdiff_t k1, const float *W, ptrdiff_t O), (o, ind, data, k0, k1, W, O))                       \
FASTNN_DISPATCH_AVX2(fastnn_csr_scatter_##SI, (float *dW, const IDX *ind, const float *data,         \
    ptrdiff_t k0, ptrdiff_t k1, const float *z, ptrdiff_t O, ptrdiff_t p0, ptrdiff_t p1, int filter), \
    (dW, ind, data, k0, k1, z, O, p0, p1, filter))

#if FASTNN_HAVE_VECTOR_EXT
#define FASTNN_IF_VECTOR(...) __VA_ARGS__
#else
#define FASTNN_IF_VECTOR(...)
#endif
/* Base and AVX2+FMA clones with run-time dispatch (as the sparse-input kernels of section 3). */
#if FASTNN_X86_DISPATCH
#define FASTNN_DISPATCH_AVX2(NAME, PARAMS, ARGS)                                                    \
    static void NAME##_base PARAMS { NAME##_body ARGS; }                                            \
    FASTNN_TARGET_AVX2 static void NAME##_avx2 PARAMS { NAME##_body ARGS; }                         \
    static inline void NAME PARAMS {                                                                \
        if (fastnn_cpu_has_avx2_fma()) NAME##_avx2 ARGS; else NAME##_base ARGS;                     \
    }
#else
#define FASTNN_DISPATCH_AVX2(NAME, PARAMS, ARGS)                                                    \
    static void NAME PARAMS { NAME##_body ARGS; }
#endif
FASTNN_DEFINE_CSR(int32_t, i32)
FASTNN_DEFINE_CSR(int64_t, i64)

#endif /* FASTNN_KERNELS_H */
