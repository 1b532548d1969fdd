/* fastnn_reduce.h -- the L1/L2 regularizer loops over arrays, float32 and float64.
 *
 *   fastnn_abs_sq_sums_f32 / _f64 (w, n, &abs_sum, &sq_sum):  sum |w[i]| and sum w[i]^2, in float64
 *   fastnn_add_reg_grad_f32 / _f64 (g, w, n, l1, l2x2):       g[i] += l1 sign(w[i]) + l2x2 w[i]
 *
 * The sums run in FR_LANES = 32 float64 lanes (lane j: elements j, j + 32, ... in order; the tail
 * goes to lanes 0.. in order), and the lanes are added in order at the end: a fixed order that
 * vectorizes without reassociating anything (4 to 16 vectors per sum by the clone's width, so that
 * chains of additions overlap: with one, AVX-512 waited on the adder's latency, 0.17 ns an element). sign(0) = sign(NaN) = 0 (as the twin's sign where it
 * matters: l1 * NaN-sign is masked by l2x2 * NaN anyway). Every clone performs the same IEEE
 * operations in every lane: the functions are compiled without FMA contraction (a product is rounded
 * before it is added), so the bits are the same on an AVX-512, an AVX2 and a baseline machine.
 *
 * Why: one running float64 sum is a chain of dependent additions (4 cycles an element); the penalty
 * and gradient of L2 on every kernel of a 784-128-10 model took 80 us of a 120 us engine step on one
 * thread. Clones: AVX-512F (one zmm of 8 doubles), AVX2 and the baseline (GCC vector extensions
 * lowered to SSE2), chosen once by __builtin_cpu_supports.
 */
#ifndef FASTNN_REDUCE_H
#define FASTNN_REDUCE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FR_LANES 32 /* 4 vectors of 8 doubles: four independent chains per sum */

#if defined(__GNUC__) && !defined(__clang__)
#define FR_VECTOR 1
#define FR_NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#elif defined(__clang__)
#define FR_VECTOR 1
#define FR_NO_CONTRACT
#else
#define FR_VECTOR 0
#define FR_NO_CONTRACT
#endif

#if FR_VECTOR && (defined(__x86_64__) || defined(__i386__))
#define FR_X86 1
#else
#define FR_X86 0
#endif

/* The scalar parts (tails, the lanes' total): the same operations as the vector lanes. */
#define FR_FINISH(T, SUF)                                                                                     \
    FR_NO_CONTRACT static inline void fr_finish_##SUF(const T *w, ptrdiff_t i, ptrdiff_t n, double *la,       \
                                                      double *lq, double *abs_sum, double *sq_sum) {           \
        ptrdiff_t j;                                                                                          \
        double v, s, ta = 0, tq = 0;                                                                          \
        for (j = 0; i < n; i++, j++) {                                                                        \
            v = w[i];                                                                                         \
            la[j] += v < 0 ? -v : v;                                                                          \
            s = v * v;                                                                                        \
            lq[j] += s;                                                                                       \
        }                                                                                                     \
        for (j = 0; j < FR_LANES; j++) {                                                                      \
            ta += la[j];                                                                                      \
            tq += lq[j];                                                                                      \
        }                                                                                                     \
        *abs_sum = ta;                                                                                        \
        *sq_sum = tq;                                                                                         \
    }
FR_FINISH(float, f32)
FR_FINISH(double, f64)

FR_NO_CONTRACT static inline void fr_reg_grad_tail_f32(float *g, const float *w, ptrdiff_t i, ptrdiff_t n, float l1,
                                                       float l2x2) {
    float s, t1, t2;
    for (; i < n; i++) {
        s = (float)(w[i] > 0) - (float)(w[i] < 0);
        t1 = l1 * s;
        t2 = l2x2 * w[i];
        g[i] += t1 + t2;
    }
}

#if FR_VECTOR
/* W doubles of w[i..] as a vector of the clone's width: float32 converted, float64 as they are. */
#define FR_LOAD_f32(v, p, BYTES)                                                                              \
    do {                                                                                                      \
        typedef float vf_ __attribute__((vector_size(BYTES / 2)));                                            \
        vf_ f_;                                                                                               \
        memcpy(&f_, (p), sizeof f_);                                                                          \
        (v) = __builtin_convertvector(f_, __typeof__(v));                                                     \
    } while (0)
#define FR_LOAD_f64(v, p, BYTES) memcpy(&(v), (p), sizeof(v))

/* sum |w| and sum w^2 of one dtype in one clone: the 32 lanes are 32 / (BYTES / 8) vectors in lane order. */
#define FR_SUMS_CLONE(ATTR, SUFFIX, BYTES, T, SUF)                                                            \
    ATTR static void fastnn_abs_sq_sums_##SUF##_##SUFFIX(const T *w, ptrdiff_t n, double *abs_sum,            \
                                                         double *sq_sum) {                                     \
        typedef double vd __attribute__((vector_size(BYTES)));                                                \
        typedef int64_t vl __attribute__((vector_size(BYTES)));                                               \
        enum { W = BYTES / 8, NV = FR_LANES / (BYTES / 8) };                                                  \
        const vl mask = (vl){0} + INT64_MAX;                                                                  \
        vd a[NV], q[NV], v, s;                                                                                \
        double la[FR_LANES], lq[FR_LANES];                                                                    \
        ptrdiff_t i, k, m = n - n % FR_LANES;                                                                 \
        for (k = 0; k < NV; k++) a[k] = q[k] = (vd){0};                                                       \
        for (i = 0; i < m; i += FR_LANES)                                                                     \
            for (k = 0; k < NV; k++) {                                                                        \
                FR_LOAD_##SUF(v, w + i + W * k, BYTES);                                                       \
                a[k] += (vd)((vl)v & mask);                                                                   \
                s = v * v;                                                                                    \
                q[k] += s;                                                                                    \
            }                                                                                                 \
        memcpy(la, a, sizeof la);                                                                             \
        memcpy(lq, q, sizeof lq);                                                                             \
        fr_finish_##SUF(w, i, n, la, lq, abs_sum, sq_sum);                                                    \
    }

/* One clone: ATTR is its target (and no-contraction) attribute, SUFFIX its name, BYTES its vector width. */
#define FR_DEFINE_CLONE(ATTR, SUFFIX, BYTES)                                                                  \
    FR_SUMS_CLONE(ATTR, SUFFIX, BYTES, float, f32)                                                            \
    FR_SUMS_CLONE(ATTR, SUFFIX, BYTES, double, f64)                                                           \
    ATTR static void fastnn_add_reg_grad_f32_##SUFFIX(float *g, const float *w, ptrdiff_t n, float l1,        \
                                                      float l2x2) {                                            \
        typedef float vf __attribute__((vector_size(BYTES)));                                                 \
        typedef int32_t vi __attribute__((vector_size(BYTES)));                                               \
        enum { W = BYTES / 4 };                                                                               \
        const vf zero = {0}, one = zero + 1.0f;                                                               \
        vf x, d, sign, t1, t2;                                                                                \
        ptrdiff_t i, m = n - n % W;                                                                           \
        for (i = 0; i < m; i += W) {                                                                          \
            memcpy(&x, w + i, sizeof x);                                                                      \
            memcpy(&d, g + i, sizeof d);                                                                      \
            sign = (vf)((vi)one & (vi)(x > zero)) - (vf)((vi)one & (vi)(x < zero));                           \
            t1 = l1 * sign;                                                                                   \
            t2 = l2x2 * x;                                                                                    \
            d += t1 + t2;                                                                                     \
            memcpy(g + i, &d, sizeof d);                                                                      \
        }                                                                                                     \
        fr_reg_grad_tail_f32(g, w, i, n, l1, l2x2);                                                           \
    }

FR_DEFINE_CLONE(FR_NO_CONTRACT, base, 16)
#if FR_X86
FR_DEFINE_CLONE(FR_NO_CONTRACT __attribute__((target("avx2"))), avx2, 32)
FR_DEFINE_CLONE(FR_NO_CONTRACT __attribute__((target("avx512f"))), avx512, 64)
#endif
#endif

/* 0 baseline, 1 AVX2, 2 AVX-512F; fastnn_reduce_cap lowers it (tests compare the clones). */
static int fastnn_reduce_cap = 2;
static int fastnn_reduce_isa(void) {
#if FR_X86
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") ? 1 : 0;
    }
    return cached < fastnn_reduce_cap ? cached : fastnn_reduce_cap;
#else
    return 0;
#endif
}

/* The public entry points: the best clone, or (no vector extensions) the same lanes one element at a time. */
#if FR_VECTOR && FR_X86
#define FR_DISPATCH(NAME, ARGS)                                                                               \
    do {                                                                                                      \
        int isa_ = fastnn_reduce_isa();                                                                       \
        if (isa_ == 2) { NAME##_avx512 ARGS; return; }                                                        \
        if (isa_ == 1) { NAME##_avx2 ARGS; return; }                                                          \
        NAME##_base ARGS;                                                                                     \
    } while (0)
#elif FR_VECTOR
#define FR_DISPATCH(NAME, ARGS) NAME##_base ARGS
#endif

#define FR_SUMS_ENTRY(T, SUF)                                                                                 \
    static inline void fastnn_abs_sq_sums_##SUF(const T *w, ptrdiff_t n, double *abs_sum, double *sq_sum) {   \
        FR_SUMS_FALLBACK(T, SUF)                                                                              \
    }
#if FR_VECTOR
#define FR_SUMS_FALLBACK(T, SUF) FR_DISPATCH(fastnn_abs_sq_sums_##SUF, (w, n, abs_sum, sq_sum));
#else
#define FR_SUMS_FALLBACK(T, SUF)                                                                              \
    double la[FR_LANES] = {0}, lq[FR_LANES] = {0};                                                            \
    ptrdiff_t i, j, m = n - n % FR_LANES;                                                                     \
    double v, s;                                                                                              \
    for (i = 0; i < m; i += FR_LANES)                                                                         \
        for (j = 0; j < FR_LANES; j++) {                                                                      \
            v = w[i + j];                                                                                     \
            la[j] += v < 0 ? -v : v;                                                                          \
            s = v * v;                                                                                        \
            lq[j] += s;                                                                                       \
        }                                                                                                     \
    fr_finish_##SUF(w, m, n, la, lq, abs_sum, sq_sum);
#endif
FR_SUMS_ENTRY(float, f32)
FR_SUMS_ENTRY(double, f64)

static inline void fastnn_add_reg_grad_f32(float *g, const float *w, ptrdiff_t n, float l1, float l2x2) {
#if FR_VECTOR
    FR_DISPATCH(fastnn_add_reg_grad_f32, (g, w, n, l1, l2x2));
#else
    fr_reg_grad_tail_f32(g, w, 0, n, l1, l2x2);
#endif
}

#endif
