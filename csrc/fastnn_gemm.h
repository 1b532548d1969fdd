/* fastnn_gemm.h -- the engine's GEMM, float32 and float64.
 *
 *   fastnn_gemm_f32 / fastnn_gemm_f64 (M, N, K, a, rsa, csa, b, ldb, beta, c, ldc):
 *       C (M, N) = A (M, K) B (K, N)        [beta 0]
 *       C (M, N) += A (M, K) B (K, N)       [beta 1]
 *
 * Row-major C and B (rows ldc / ldb elements apart); A is addressed through two strides,
 * A[i, k] = a[i * rsa + k * csa], so one kernel computes the forward X W (rsa = ld of X,
 * csa = 1) and the weight gradient X^T dZ (rsa = 1, csa = ld of X) without a transpose.
 *
 * Contract: every element of C is a chain of fused multiply-adds over k = 0..K-1 in ascending
 * order, starting from 0 (beta 0) or from C (beta 1), whatever tile, K block, row range or
 * column range computes it, on every ISA. So results do not depend on how callers split rows or
 * columns between threads (the engine trains bitwise identically on 1, 2 or 3 threads), and the
 * AVX2 and AVX-512 clones give the same bits (tests/kernels/test_gemm.py checks all of this).
 * The price is a strict k order inside each sum: no split-K, no pairwise summation.
 *
 * Why not BLAS: OpenBLAS packs both operands on every call, which dominates the tutorials' small
 * products (a Fashion-MNIST step took ~500 us with scipy's sgemm, ~190 us with this kernel), and
 * its results depend on where a column block starts. On large products this GEMM is within
 * ~10% of NumPy's OpenBLAS on one core (bench/README.md, "GEMM").
 *
 * Clones, chosen at run time (fastnn_gemm_isa(); no -march in the build):
 *   portable  the plain fma()/fmaf() chain, row by row: exact everywhere, slow where fmaf is
 *             a library call (x86 without FMA, MSVC builds).
 *   AVX2+FMA  6 x 16 float (6 x 8 double) register tiles, ymm.
 *   AVX-512F  12 x 32 float (12 x 16 double) register tiles, zmm: 24 accumulators + 2 of B.
 * Each x86 clone has a direct path (small products) and a packed, cache-blocked one; see
 * csrc/fastnn_gemm_body.h, the one text both clones and both types are generated from.
 * Measurements: bench/README.md ("GEMM"), bench/bench_kernels.py --only gemm.
 *
 * Test hooks: cap the clone (fastnn_gemm_set_isa; dense.pyx _gemm_isa) or force the direct or
 * blocked path (fastnn_gemm_set_path; _gemm_path). They are statics of this header, so each
 * extension module that includes it has its own. Callable from many threads at once, nogil: the
 * blocked path mallocs its packing buffers per call; the only shared state is the cached CPU
 * check and the two hooks.
 */
#ifndef FASTNN_GEMM_H
#define FASTNN_GEMM_H

#include <stdlib.h>

#include "fastnn_kernels.h"

#define FASTNN_GEMM_PORTABLE 0
#define FASTNN_GEMM_AVX2 1
#define FASTNN_GEMM_AVX512 2

/* The portable clone, and the tests' scalar reference: i-k-j order, row i of C holds the running
 * sums, one fma per element and k. C99's fmaf/fma round once, everywhere (a library call where
 * the CPU has no FMA). */
static void fastnn_gemm_f32_portable(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *a, ptrdiff_t rsa,
                                     ptrdiff_t csa, const float *b, ptrdiff_t ldb, int beta, float *c,
                                     ptrdiff_t ldc) {
    ptrdiff_t i, j, k;
    for (i = 0; i < M; i++) {
        float *ci = c + i * ldc;
        if (!beta)
            for (j = 0; j < N; j++) ci[j] = 0.0f;
        for (k = 0; k < K; k++) {
            const float x = a[i * rsa + k * csa], *bk = b + k * ldb;
            for (j = 0; j < N; j++) ci[j] = fmaf(x, bk[j], ci[j]);
        }
    }
}

static void fastnn_gemm_f64_portable(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const double *a, ptrdiff_t rsa,
                                     ptrdiff_t csa, const double *b, ptrdiff_t ldb, int beta, double *c,
                                     ptrdiff_t ldc) {
    ptrdiff_t i, j, k;
    for (i = 0; i < M; i++) {
        double *ci = c + i * ldc;
        if (!beta)
            for (j = 0; j < N; j++) ci[j] = 0.0;
        for (k = 0; k < K; k++) {
            const double x = a[i * rsa + k * csa], *bk = b + k * ldb;
            for (j = 0; j < N; j++) ci[j] = fma(x, bk[j], ci[j]);
        }
    }
}

#if FASTNN_X86_DISPATCH

/* __builtin_cpu_supports also checks that the OS saves the registers (XCR0). */
static int fastnn_gemm_cpu_isa(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? FASTNN_GEMM_PORTABLE
                 : __builtin_cpu_supports("avx512f")                                ? FASTNN_GEMM_AVX512
                                                                                     : FASTNN_GEMM_AVX2;
    }
    return cached;
}

/* Test hook: force the direct (0) or blocked (1) path; -1 lets the shape decide. */
static int fastnn_gemm_path_forced = -1;

/* Blocked path or direct one, from a grid of 176 shapes (X W and X^T G, M 16..2048, K 16..2048,
 * N 64..1024) timed both ways on each clone (C harness, bench/README.md): packing pays once B
 * no longer streams from L2 panel by panel (K N >= 256 Ki elements with N wide), once C is large
 * (M N >= 256 Ki; 128 Ki doubles), or when many row tiles share each packed panel (M >= 512,
 * 256 for double): within 1-2% of always taking the faster path (geometric mean). And whatever
 * the size, when the rows read in place are a multiple of 4 KB apart (2 KB for B with M >= 64):
 * they fall into a few cache sets (a thread's 256 columns of a 512-wide float64 W, 128 x 784 x 256:
 * 34 GFLOPS in place, 63 packed; X^T with X 1024 floats wide, K 256: 150 against 174). */
FASTNN_ALWAYS_INLINE int fastnn_gemm_blocked(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, ptrdiff_t rsa, ptrdiff_t csa,
                                             ptrdiff_t ldb, ptrdiff_t size) {
    if (fastnn_gemm_path_forced >= 0) return fastnn_gemm_path_forced;
    if (size == 4 ? (N >= 256 && K * N >= 262144) || M * N >= 262144 || (M >= 512 && N >= 64 && K >= 128)
                  : (N >= 128 && K * N >= 262144) || M * N >= 131072 || (M >= 256 && N >= 64 && K >= 128))
        return 1;
    return (K >= 512 && ldb * size % 4096 == 0) || (K >= 512 && M >= 64 && ldb * size % 2048 == 0) ||
           (rsa == 1 && K >= 128 && csa * size % 4096 == 0);
}

/* ---- AVX2+FMA: 6 rows x 2 ymm (12 accumulators, 2 of B, 1 broadcast of the 16 registers).
 * Masks are vectors: the first n 32-bit lanes of fastnn_gemm_mask32 + 8 - n are all ones. */
static const int32_t fastnn_gemm_mask32[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
#define FG_TARGET __attribute__((target("avx2,fma")))
#define FG_MR 6
#define FG_HEIGHTS(X) X(1) X(2) X(3) X(4) X(5) X(6)
#define FG_KC 256
#define FG_T float
#define FG_V __m256
#define FG_VL 8
#define FG_M __m256i
#define FG_MASK(n) _mm256_loadu_si256((const __m256i *)(fastnn_gemm_mask32 + 8 - (n)))
#define FG_FN(x) fastnn_gemm_f32_avx2_##x
#define FG_MC 240
#define FG_NC 1024
#define FG_PORTABLE fastnn_gemm_f32_portable
#define FG_ZERO() _mm256_setzero_ps()
#define FG_SET1(x) _mm256_set1_ps(x)
#define FG_LOAD(p) _mm256_loadu_ps(p)
#define FG_STORE(p, v) _mm256_storeu_ps(p, v)
#define FG_MLOAD(p, m) _mm256_maskload_ps(p, m)
#define FG_MSTORE(p, m, v) _mm256_maskstore_ps(p, m, v)
#define FG_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#include "fastnn_gemm_body.h"

#define FG_TARGET __attribute__((target("avx2,fma")))
#define FG_MR 6
#define FG_HEIGHTS(X) X(1) X(2) X(3) X(4) X(5) X(6)
#define FG_KC 256
#define FG_T double
#define FG_V __m256d
#define FG_VL 4
#define FG_M __m256i
#define FG_MASK(n) _mm256_loadu_si256((const __m256i *)(fastnn_gemm_mask32 + 8 - 2 * (n)))
#define FG_FN(x) fastnn_gemm_f64_avx2_##x
#define FG_MC 120
#define FG_NC 512
#define FG_PORTABLE fastnn_gemm_f64_portable
#define FG_ZERO() _mm256_setzero_pd()
#define FG_SET1(x) _mm256_set1_pd(x)
#define FG_LOAD(p) _mm256_loadu_pd(p)
#define FG_STORE(p, v) _mm256_storeu_pd(p, v)
#define FG_MLOAD(p, m) _mm256_maskload_pd(p, m)
#define FG_MSTORE(p, m, v) _mm256_maskstore_pd(p, m, v)
#define FG_FMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#include "fastnn_gemm_body.h"

/* ---- AVX-512F: 12 rows x 2 zmm; the B panel (256 x 128 bytes) fits L1 with the A tile. */
#define FG_TARGET __attribute__((target("avx512f,avx2,fma")))
#define FG_MR 12
#define FG_HEIGHTS(X) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12)
#define FG_KC 256
#define FG_T float
#define FG_V __m512
#define FG_VL 16
#define FG_M __mmask16
#define FG_MASK(n) ((__mmask16)((1u << (n)) - 1u))
#define FG_FN(x) fastnn_gemm_f32_avx512_##x
#define FG_MC 240
#define FG_NC 1024
#define FG_PORTABLE fastnn_gemm_f32_portable
#define FG_NARROW fastnn_gemm_f32_avx2_panel
#define FG_ZERO() _mm512_setzero_ps()
#define FG_SET1(x) _mm512_set1_ps(x)
#define FG_LOAD(p) _mm512_loadu_ps(p)
#define FG_STORE(p, v) _mm512_storeu_ps(p, v)
#define FG_MLOAD(p, m) _mm512_maskz_loadu_ps(m, p)
#define FG_MSTORE(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define FG_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#include "fastnn_gemm_body.h"

#define FG_TARGET __attribute__((target("avx512f,avx2,fma")))
#define FG_MR 12
#define FG_HEIGHTS(X) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12)
#define FG_KC 256
#define FG_T double
#define FG_V __m512d
#define FG_VL 8
#define FG_M __mmask8
#define FG_MASK(n) ((__mmask8)((1u << (n)) - 1u))
#define FG_FN(x) fastnn_gemm_f64_avx512_##x
#define FG_MC 120
#define FG_NC 512
#define FG_PORTABLE fastnn_gemm_f64_portable
#define FG_NARROW fastnn_gemm_f64_avx2_panel
#define FG_ZERO() _mm512_setzero_pd()
#define FG_SET1(x) _mm512_set1_pd(x)
#define FG_LOAD(p) _mm512_loadu_pd(p)
#define FG_STORE(p, v) _mm512_storeu_pd(p, v)
#define FG_MLOAD(p, m) _mm512_maskz_loadu_pd(m, p)
#define FG_MSTORE(p, m, v) _mm512_mask_storeu_pd(p, m, v)
#define FG_FMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#include "fastnn_gemm_body.h"

#else
static int fastnn_gemm_cpu_isa(void) { return FASTNN_GEMM_PORTABLE; }
static int fastnn_gemm_path_forced = -1;
#endif

/* Test hook: the highest clone the dispatcher may pick (tests compare clones bitwise, benchmarks
 * time each). Not for production use: it is process state, set before any concurrent call. */
static int fastnn_gemm_isa_cap = FASTNN_GEMM_AVX512;

/* The clone fastnn_gemm_f32/f64 run: the CPU's best, capped by fastnn_gemm_set_isa. */
static inline int fastnn_gemm_isa(void) {
    int cpu = fastnn_gemm_cpu_isa();
    return cpu < fastnn_gemm_isa_cap ? cpu : fastnn_gemm_isa_cap;
}

/* Cap the clone at `level` (FASTNN_GEMM_*; clamped to the valid range); returns the clone now used. */
static inline int fastnn_gemm_set_isa(int level) {
    fastnn_gemm_isa_cap = level < FASTNN_GEMM_PORTABLE ? FASTNN_GEMM_PORTABLE
                          : level > FASTNN_GEMM_AVX512 ? FASTNN_GEMM_AVX512
                                                       : level;
    return fastnn_gemm_isa();
}

/* Test hook: force the x86 clones' direct (0) or blocked (1) path, or let the shape decide (-1,
 * the default). fastnn_gemm_path returns the setting. */
static inline int fastnn_gemm_path(void) { return fastnn_gemm_path_forced; }
static inline int fastnn_gemm_set_path(int path) {
    fastnn_gemm_path_forced = path < 0 ? -1 : path > 1 ? 1 : path;
    return fastnn_gemm_path_forced;
}

/* C = A B (beta 0) or C += A B (beta 1); see the top of this file. */
static inline void fastnn_gemm_f32(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const float *a, ptrdiff_t rsa,
                                   ptrdiff_t csa, const float *b, ptrdiff_t ldb, int beta, float *c,
                                   ptrdiff_t ldc) {
    if (M <= 0 || N <= 0) return;
#if FASTNN_X86_DISPATCH
    switch (fastnn_gemm_isa()) {
        case FASTNN_GEMM_AVX512: fastnn_gemm_f32_avx512_run(M, N, K, a, rsa, csa, b, ldb, beta, c, ldc); return;
        case FASTNN_GEMM_AVX2: fastnn_gemm_f32_avx2_run(M, N, K, a, rsa, csa, b, ldb, beta, c, ldc); return;
        default: break;
    }
#endif
    fastnn_gemm_f32_portable(M, N, K, a, rsa, csa, b, ldb, beta, c, ldc);
}

static inline void fastnn_gemm_f64(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const double *a, ptrdiff_t rsa,
                                   ptrdiff_t csa, const double *b, ptrdiff_t ldb, int beta, double *c,
                                   ptrdiff_t ldc) {
    if (M <= 0 || N <= 0) return;
#if FASTNN_X86_DISPATCH
    switch (fastnn_gemm_isa()) {
        case FASTNN_GEMM_AVX512: fastnn_gemm_f64_avx512_run(M, N, K, a, rsa, csa, b, ldb, beta, c, ldc); return;
        case FASTNN_GEMM_AVX2: fastnn_gemm_f64_avx2_run(M, N, K, a, rsa, csa, b, ldb, beta, c, ldc); return;
        default: break;
    }
#endif
    fastnn_gemm_f64_portable(M, N, K, a, rsa, csa, b, ldb, beta, c, ldc);
}

#endif /* FASTNN_GEMM_H */
