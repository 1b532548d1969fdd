/* fastnn_gemm.h -- the engine's small single-precision GEMM.
 *
 *   fastnn_gemm_f32: C (M, N) = A (M, K) B (K, N)        [beta 0]
 *                    C (M, N) += A (M, K) B (K, N)       [beta 1]
 *
 * Row-major C and B (rows ldc / ldb floats apart); A is addressed through two
 * strides, A[i, k] = a[i * rsa + k * csa], so the same kernel computes the
 * forward X W (rsa = ld of X, csa = 1) and the weight gradient X^T dZ
 * (rsa = 1, csa = ld of X) without a transpose.
 *
 * Why not BLAS: the training step of a small MLP multiplies a batch of 32 rows
 * by a 784 x 100 kernel, and OpenBLAS packs both operands on every call. With
 * scipy's OpenBLAS the engine's Fashion-MNIST step (forward + weight gradient,
 * one thread) took ~500 us; with this kernel ~190 us. Standalone, this kernel
 * runs 32x784x100 in ~67 us (~75 GFLOPS; one core's FMA peak here is ~85).
 * There is no packing: a register tile of 6 rows x 16 columns (12 accumulators
 * of 8 floats) walks k, loading two vectors of B and broadcasting six elements
 * of A per step. bench/bench_kernels.py (time_dense_forward/backward) times it
 * against NumPy's matmul.
 *
 * Every element of C is a sum over k = 0..K-1 in that order, one multiply-add
 * at a time from 0 (or from C with beta 1), whatever tile, edge or column
 * range computes it. So the result does not depend on how the caller splits
 * rows or columns between threads: a run is bitwise the same on 1 or 2 threads.
 * (The AVX2+FMA clone fuses each multiply-add; the portable one rounds the
 * product first. Each is self-consistent; they may differ from each other in
 * the last bit, as any two BLAS builds do.)
 *
 * Columns: tiles of 16, then 8; a last group of fewer than 8 is computed by an
 * 8-wide tile moved left to overlap its neighbour (identical recomputation) when
 * beta is 0 and N >= 8, else by an edge whose vectors run down 8 rows of one column
 * (the same vector multiply-add per element, so the same rounding).
 */
#ifndef FASTNN_GEMM_H
#define FASTNN_GEMM_H

#include "fastnn_kernels.h"

#if FASTNN_HAVE_VECTOR_EXT

/* One MR x (8 NV) tile: C[i0:i0+MR, j:j+8NV]. MR <= 6, NV <= 2. */
#define FASTNN_GEMM_TILE(MR, NV)                                                                    \
    {                                                                                               \
        fastnn_v8sf acc[MR][NV];                                                                    \
        int r, v;                                                                                   \
        ptrdiff_t k;                                                                                \
        const float *ap = a + i0 * rsa;                                                             \
        const float *bp = b + j;                                                                    \
        float *cp = c + i0 * ldc + j;                                                               \
        for (r = 0; r < MR; r++)                                                                    \
            for (v = 0; v < NV; v++)                                                                \
                acc[r][v] = beta ? fastnn_load8(cp + r * ldc + 8 * v)                               \
                                 : (fastnn_v8sf){0, 0, 0, 0, 0, 0, 0, 0};                           \
        for (k = 0; k < K; k++) {                                                                   \
            fastnn_v8sf bv[NV];                                                                     \
            for (v = 0; v < NV; v++) bv[v] = fastnn_load8(bp + k * ldb + 8 * v);                    \
            for (r = 0; r < MR; r++) {                                                              \
                float s = ap[r * rsa + k * csa];                                                    \
                fastnn_v8sf sv = {s, s, s, s, s, s, s, s};                                          \
                for (v = 0; v < NV; v++) acc[r][v] += sv * bv[v];                                   \
            }                                                                                       \
        }                                                                                           \
        for (r = 0; r < MR; r++)                                                                    \
            for (v = 0; v < NV; v++) fastnn_store8(cp + r * ldc + 8 * v, acc[r][v]);                \
    }

/* Columns [j, j + NJ) of every row, NJ < 8: acc[jj] holds 8 rows of column j + jj. */
#define FASTNN_GEMM_EDGE(NJ)                                                                        \
    for (i0 = 0; i0 < M; i0 += 8) {                                                                 \
        fastnn_v8sf acc[NJ];                                                                        \
        ptrdiff_t k, r, mr = M - i0 < 8 ? M - i0 : 8;                                               \
        for (jj = 0; jj < NJ; jj++) {                                                               \
            acc[jj] = (fastnn_v8sf){0, 0, 0, 0, 0, 0, 0, 0};                                        \
            if (beta)                                                                               \
                for (r = 0; r < mr; r++) acc[jj][r] = c[(i0 + r) * ldc + j + jj];                   \
        }                                                                                           \
        for (k = 0; k < K; k++) {                                                                   \
            const float *ak = a + i0 * rsa + k * csa, *bk = b + k * ldb + j;                        \
            fastnn_v8sf av;                                                                         \
            if (mr == 8) {                                                                          \
                av = (fastnn_v8sf){ak[0], ak[rsa], ak[2 * rsa], ak[3 * rsa], ak[4 * rsa],           \
                                   ak[5 * rsa], ak[6 * rsa], ak[7 * rsa]};                          \
            } else {                                                                                \
                av = (fastnn_v8sf){0, 0, 0, 0, 0, 0, 0, 0};                                         \
                for (r = 0; r < mr; r++) av[r] = ak[r * rsa];                                       \
            }                                                                                       \
            for (jj = 0; jj < NJ; jj++) {                                                           \
                float t = bk[jj];                                                                   \
                fastnn_v8sf bv = {t, t, t, t, t, t, t, t};                                          \
                acc[jj] += av * bv;                                                                 \
            }                                                                                       \
        }                                                                                           \
        for (jj = 0; jj < NJ; jj++)                                                                 \
            for (r = 0; r < mr; r++) c[(i0 + r) * ldc + j + jj] = acc[jj][r];                       \
    }

#define FASTNN_GEMM_ROWS(NV)                                                                        \
    for (i0 = 0; i0 + 6 <= M; i0 += 6) FASTNN_GEMM_TILE(6, NV)                                      \
    switch (M - i0) {                                                                               \
        case 5: FASTNN_GEMM_TILE(5, NV) break;                                                      \
        case 4: FASTNN_GEMM_TILE(4, NV) break;                                                      \
        case 3: FASTNN_GEMM_TILE(3, NV) break;                                                      \
        case 2: FASTNN_GEMM_TILE(2, NV) break;                                                      \
        case 1: FASTNN_GEMM_TILE(1, NV) break;                                                      \
        default: break;                                                                             \
    }

FASTNN_ALWAYS_INLINE void fastnn_gemm_f32_body(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *a,
                                               ptrdiff_t rsa, ptrdiff_t csa, const float *b, ptrdiff_t ldb,
                                               int beta, float *c, ptrdiff_t ldc) {
    ptrdiff_t i0, j = 0, jj;
    for (; j + 16 <= N; j += 16) { FASTNN_GEMM_ROWS(2) }
    if (j + 8 <= N) {
        FASTNN_GEMM_ROWS(1)
        j += 8;
    }
    if (j < N && !beta && N >= 8) {
        j = N - 8;  /* overlap: recomputes columns [N - 8, j) with identical values */
        FASTNN_GEMM_ROWS(1)
        return;
    }
    /* Edge of fewer than 8 columns (N < 8, or beta 1): vectors run down 8 ROWS of one column
     * instead, each lane the same chain of multiply-adds over k as in a tile (same bits). */
    switch (N - j) {
        case 1: FASTNN_GEMM_EDGE(1) break;
        case 2: FASTNN_GEMM_EDGE(2) break;
        case 3: FASTNN_GEMM_EDGE(3) break;
        case 4: FASTNN_GEMM_EDGE(4) break;
        case 5: FASTNN_GEMM_EDGE(5) break;
        case 6: FASTNN_GEMM_EDGE(6) break;
        case 7: FASTNN_GEMM_EDGE(7) break;
        default: break;
    }
}
#undef FASTNN_GEMM_ROWS
#undef FASTNN_GEMM_EDGE
#undef FASTNN_GEMM_TILE

#else

static inline void fastnn_gemm_f32_body(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *a, ptrdiff_t rsa,
                                        ptrdiff_t csa, const float *b, ptrdiff_t ldb, int beta, float *c,
                                        ptrdiff_t ldc) {
    ptrdiff_t i, j, k;
    for (i = 0; i < M; i++)
        for (j = 0; j < N; j++) {
            float s = beta ? c[i * ldc + j] : 0.0f;
            for (k = 0; k < K; k++) s += a[i * rsa + k * csa] * b[k * ldb + j];
            c[i * ldc + j] = s;
        }
}

#endif

static void fastnn_gemm_f32_base(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *a, ptrdiff_t rsa,
                                 ptrdiff_t csa, const float *b, ptrdiff_t ldb, int beta, float *c, ptrdiff_t ldc) {
    fastnn_gemm_f32_body(M, N, K, a, rsa, csa, b, ldb, beta, c, ldc);
}

#if FASTNN_X86_DISPATCH
FASTNN_TARGET_AVX2 static void fastnn_gemm_f32_avx2(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *a,
                                                    ptrdiff_t rsa, ptrdiff_t csa, const float *b, ptrdiff_t ldb,
                                                    int beta, float *c, ptrdiff_t ldc) {
    fastnn_gemm_f32_body(M, N, K, a, rsa, csa, b, ldb, beta, c, ldc);
}
#endif

/* C = A B (beta 0) or C += A B (beta 1); see the top of this file. */
static inline void fastnn_gemm_f32(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *a, ptrdiff_t rsa,
                                   ptrdiff_t csa, const float *b, ptrdiff_t ldb, int beta, float *c,
                                   ptrdiff_t ldc) {
    if (M <= 0 || N <= 0) return;
#if FASTNN_X86_DISPATCH
    if (fastnn_cpu_has_avx2_fma()) {
        fastnn_gemm_f32_avx2(M, N, K, a, rsa, csa, b, ldb, beta, c, ldc);
        return;
    }
#endif
    fastnn_gemm_f32_base(M, N, K, a, rsa, csa, b, ldb, beta, c, ldc);
}

#endif /* FASTNN_GEMM_H */
