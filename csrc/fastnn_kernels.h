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
 *   3. 8-float vectors, bit counts, prefetch, denormals, and which clone of the multiply-add
 *      kernels runs (their bodies: fastnn_bitmap.h, the first layer's bitmask kernels, and
 *      fastnn_csr.h, CSR rows x a dense kernel; compiled per clone by fastnn_clones.h).
 *   4. Optimizer updates over a range of the flat parameter arena.
 *   5. The one-row forward (predict on one sample), skipping zero inputs.
 *
 * C99, static inline, no globals except the lazily resolved dispatch flags (a benign race: every
 * thread computes the same value) and the clone cap of the test hooks.
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


/* ------------------------------------------------------------------ 3. vectors and clones */
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
typedef float fastnn_v8sf __attribute__((vector_size(32)));  /* loaded and stored by memcpy: any alignment */
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

/* a * b + c lane by lane, each lane rounded once (C99 fmaf): the portable clone's FC_FMA8
 * (fastnn_clones.h). A macro for the reason fastnn_load8 is one. */
#define FASTNN_FMA8_LANES(a, b, c) __extension__({                                                  \
    fastnn_v8sf a_ = (a), b_ = (b), c_ = (c);                                                       \
    int l_;                                                                                         \
    for (l_ = 0; l_ < 8; l_++) c_[l_] = fmaf(a_[l_], b_[l_], c_[l_]);                               \
    c_; })
#endif

/* Which clone of the multiply-add kernels (fastnn_bitmap.h, fastnn_csr.h) runs: AVX2+FMA where the
 * CPU has it, unless fastnn_fma_set_isa(0) capped it to the portable one (a test hook, _fma_isa in
 * engine.pyx and sparse.pyx; the cap is a static of this header, so each extension module has its
 * own). Both clones give the same bits. */
#if FASTNN_X86_DISPATCH
static int fastnn_cpu_has_avx2_fma(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached;
}
#else
static int fastnn_cpu_has_avx2_fma(void) { return 0; }
#endif
static int fastnn_fma_isa_cap = 1;
static inline int fastnn_use_avx2_fma(void) { return fastnn_fma_isa_cap && fastnn_cpu_has_avx2_fma(); }
static inline int fastnn_fma_set_isa(int level) {
    fastnn_fma_isa_cap = level > 0;
    return fastnn_use_avx2_fma();
}
#if FASTNN_X86_DISPATCH
#define FASTNN_CLONE_CALL(NAME, ARGS) (fastnn_use_avx2_fma() ? NAME##_avx2 ARGS : NAME##_base ARGS)
#else
#define FASTNN_CLONE_CALL(NAME, ARGS) NAME##_base ARGS
#endif

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

#define FASTNN_DEFINE_OPTIM2(T, S, SQRT)                                                         \
FASTNN_ALWAYS_INLINE void fastnn_adagrad_##S##_body(T *restrict w, const T *restrict g,             \
        T *restrict acc, ptrdiff_t n0, ptrdiff_t n1, T lr, T eps) {                               \
    ptrdiff_t n;                                                                                 \
    for (n = n0; n < n1; n++) {                                                                  \
        T gg = g[n], a = acc[n] + gg * gg;                                                       \
        acc[n] = a;                                                                              \
        w[n] = w[n] - lr * gg / SQRT(a + eps);                                                   \
    }                                                                                            \
}                                                                                                \
/* bc = 1 - beta_1^t: w -= (lr m) / (bc (u + eps)), Keras' order */                              \
FASTNN_ALWAYS_INLINE void fastnn_adamax_##S##_body(T *restrict w, const T *restrict g, T *restrict m, \
        T *restrict u, ptrdiff_t n0, ptrdiff_t n1, T lr, T c1, T b2, T bc, T eps) {               \
    ptrdiff_t n;                                                                                 \
    for (n = n0; n < n1; n++) {                                                                  \
        T gg = g[n], mm = m[n] + (gg - m[n]) * c1, bu = b2 * u[n], ag = gg < 0 ? -gg : gg;       \
        /* NumPy's maximum (Keras' ops.maximum): a NaN in either operand is the result */        \
        T uu = (bu >= ag || bu != bu) ? bu : ag;                                                 \
        m[n] = mm; u[n] = uu;                                                                    \
        w[n] = w[n] - lr * mm / (bc * (uu + eps));                                               \
    }                                                                                            \
}                                                                                                \
/* Nadam (Dozat 2015, Keras 3): ut1 = u_{t+1}, d1 = 1 - prod u_1..u_{t+1}, cu = 1 - u_t,          \
 * d2 = 1 - prod u_1..u_t, bc2 = 1 - beta_2^t */                                                 \
FASTNN_ALWAYS_INLINE void fastnn_nadam_##S##_body(T *restrict w, const T *restrict g, T *restrict m, \
        T *restrict v, ptrdiff_t n0, ptrdiff_t n1, T lr, T c1, T c2, T ut1, T d1, T cu, T d2,      \
        T bc2, T eps) {                                                                          \
    ptrdiff_t n;                                                                                 \
    for (n = n0; n < n1; n++) {                                                                  \
        T gg = g[n], mm = m[n] + (gg - m[n]) * c1, vv = v[n] + (gg * gg - v[n]) * c2;            \
        T mh = ut1 * mm / d1 + cu * gg / d2, vh = vv / bc2;                                      \
        m[n] = mm; v[n] = vv;                                                                    \
        w[n] = w[n] - mh * lr / (SQRT(vh) + eps);                                                \
    }                                                                                            \
}                                                                                                \
/* Lion (Chen et al. 2023): w -= lr sign(b1 m + (1 - b1) g); m = b2 m + (1 - b2) g */            \
FASTNN_ALWAYS_INLINE void fastnn_lion_##S##_body(T *restrict w, const T *restrict g, T *restrict m, \
        ptrdiff_t n0, ptrdiff_t n1, T lr, T b1, T c1, T b2, T c2) {                              \
    ptrdiff_t n;                                                                                 \
    for (n = n0; n < n1; n++) {                                                                  \
        T gg = g[n], s = m[n] * b1 + gg * c1;                                                    \
        /* Keras 3 takes ops.sign: sign(NaN) is NaN, so a NaN moment or gradient poisons w */    \
        T sg = s > 0 ? (T)1 : s < 0 ? (T)-1 : s == 0 ? (T)0 : s;                                 \
        w[n] = w[n] - lr * sg;                                                                   \
        m[n] = m[n] * b2 + gg * c2;                                                              \
    }                                                                                            \
}                                                                                                \
/* Keras 3's gradient treatment before an update (base_optimizer._backend_apply_gradients), on      \
 * [n0, n1): with accumulation (acc != NULL) g = (g + acc) / steps and acc = 0; then clipvalue       \
 * (clip > 0: g in [-clip, clip]) or a norm clip's factor (scale != 1); then decoupled weight decay   \
 * w = w - w wd lr (wd != 0). */                                                                 \
FASTNN_ALWAYS_INLINE void fastnn_grad_prep_##S##_body(T *restrict w, T *restrict g, T *restrict acc, \
        ptrdiff_t n0, ptrdiff_t n1, T steps, T clip, T scale, int use_scale, T wd, T lr) {        \
    ptrdiff_t n;                                                                                 \
    if (acc) {                                                                                   \
        for (n = n0; n < n1; n++) { g[n] = (g[n] + acc[n]) / steps; acc[n] = 0; }                \
    }                                                                                            \
    if (clip > 0) {                                                                              \
        for (n = n0; n < n1; n++) g[n] = g[n] < -clip ? -clip : (g[n] > clip ? clip : g[n]);     \
    }                                                                                            \
    if (use_scale) {                                                                             \
        for (n = n0; n < n1; n++) g[n] = g[n] * scale;                                           \
    }                                                                                            \
    if (wd != 0) {                                                                               \
        for (n = n0; n < n1; n++) w[n] = w[n] - w[n] * wd * lr;                                  \
    }                                                                                            \
}                                                                                                \
/* a micro-step of gradient accumulation: acc += g */                                            \
FASTNN_ALWAYS_INLINE void fastnn_grad_accumulate_##S##_body(T *restrict acc, const T *restrict g,   \
        ptrdiff_t n0, ptrdiff_t n1) {                                                            \
    ptrdiff_t n;                                                                                 \
    for (n = n0; n < n1; n++) acc[n] = acc[n] + g[n];                                            \
}

FASTNN_DEFINE_OPTIM(float, f32, sqrtf)
FASTNN_DEFINE_OPTIM2(float, f32, sqrtf)
FASTNN_DEFINE_OPTIM2(double, f64, sqrt)
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

#define FASTNN_OPTIM2_ENTRY_POINTS(T, S)                                                         \
FASTNN_DISPATCH_AVX(fastnn_adagrad_##S,                                                          \
    (T *w, const T *g, T *acc, ptrdiff_t n0, ptrdiff_t n1, T lr, T eps), (w, g, acc, n0, n1, lr, eps)) \
FASTNN_DISPATCH_AVX(fastnn_adamax_##S,                                                           \
    (T *w, const T *g, T *m, T *u, ptrdiff_t n0, ptrdiff_t n1, T lr, T c1, T b2, T bc, T eps),   \
    (w, g, m, u, n0, n1, lr, c1, b2, bc, eps))                                                   \
FASTNN_DISPATCH_AVX(fastnn_nadam_##S,                                                            \
    (T *w, const T *g, T *m, T *v, ptrdiff_t n0, ptrdiff_t n1, T lr, T c1, T c2, T ut1, T d1,    \
     T cu, T d2, T bc2, T eps), (w, g, m, v, n0, n1, lr, c1, c2, ut1, d1, cu, d2, bc2, eps))    \
FASTNN_DISPATCH_AVX(fastnn_lion_##S,                                                             \
    (T *w, const T *g, T *m, ptrdiff_t n0, ptrdiff_t n1, T lr, T b1, T c1, T b2, T c2),          \
    (w, g, m, n0, n1, lr, b1, c1, b2, c2))                                                       \
FASTNN_DISPATCH_AVX(fastnn_grad_prep_##S,                                                        \
    (T *w, T *g, T *acc, ptrdiff_t n0, ptrdiff_t n1, T steps, T clip, T scale, int use_scale,    \
     T wd, T lr), (w, g, acc, n0, n1, steps, clip, scale, use_scale, wd, lr))                    \
FASTNN_DISPATCH_AVX(fastnn_grad_accumulate_##S,                                                  \
    (T *acc, const T *g, ptrdiff_t n0, ptrdiff_t n1), (acc, g, n0, n1))

FASTNN_OPTIM_ENTRY_POINTS(float, f32)
FASTNN_OPTIM2_ENTRY_POINTS(float, f32)
FASTNN_OPTIM2_ENTRY_POINTS(double, f64)
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

#endif /* FASTNN_KERNELS_H */
