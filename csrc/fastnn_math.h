/* fastnn_math.h -- vectorized tanh and sigmoid over arrays, float32 and float64.
 *
 *   fastnn_tanh_f32 / fastnn_tanh_f64 (out, x, n):        out[i] = tanh(x[i])
 *   fastnn_sigmoid_f32 / fastnn_sigmoid_f64 (out, x, n):  out[i] = 1 / (1 + exp(-x[i]))
 *   (N elements; out may be x itself, but must not overlap it otherwise)
 *
 * Why: a 784-256-256-256-10 tanh MLP spent ~20% of its engine step in glibc's scalar tanhf
 * (__expm1f + __tanhf, ~15 ns per element), and ran 1.5x slower than the same model with relu.
 * Every elementwise activation of every kernel goes through _loops.pxd act_elementwise, which
 * calls these on contiguous ranges.
 *
 * Accuracy (tools/check_math.c, against long double libm; tests/kernels/test_math.py samples):
 * float32 at most 1.42 ulp (tanh) and 1.43 ulp (sigmoid) from the exact result over all 2^32
 * inputs; float64 1.44 / 1.43 ulp on 50M sampled inputs. NaN -> NaN; tanh(+-inf) = +-1,
 * tanh(-0) = -0; sigmoid(-inf) = 0, sigmoid(+inf) = 1; sigmoid's results below the normal range
 * are gradual (denormal), not 0.
 *
 * Same bits everywhere. Each element is computed by the same sequence of IEEE operations on
 * every clone and in every lane, with no fused multiply-add (FM_ROUND below stops the compiler
 * from contracting a * b + c in the clones that have FMA): so a value computed alone equals the
 * value computed inside an array (the engine relies on a row's outputs not depending on the
 * other rows), and the clones agree bit for bit (a model trains to the same bits on an AVX2 and
 * an AVX-512 machine). The price, measured: letting the compiler fuse them would make the AVX2
 * and AVX-512 clones 1.3-1.8x faster (float32 tanh 0.60 -> 0.40 ns per element on AVX-512),
 * under 1% of the tanh MLP's engine step; the portable clone has no FMA to match.
 *
 * Algorithms (Cephes-style, exp by range reduction and a polynomial; coefficients from
 * tools/fit_math_poly.py):
 *   exp(y) = 2^k (1 + p),  k = round(y / ln 2),  r = y - k ln2 (Cody-Waite: ln2 split in two so
 *            k * ln2_hi is exact),  p = expm1(r) = r + r^2 (1/2 + r Q(r)),  |r| <= 0.347
 *   tanh:    |x| < 9/16:  x + x z P(z), z = x^2 (odd polynomial: no cancellation near 0)
 *            otherwise:   1 - 2 / (exp(2|x|) + 1), sign restored; |x| clamped where tanh
 *            rounds to 1, so exp never overflows. The switch is above atanh(1/2), where
 *            2/(e + 1) < 1/2 and the subtraction loses no more than half an ulp.
 *   sigmoid: 1 / (1 + e) for x >= 0, e / (1 + e) below, e = exp(-|x|) <= 1 (no overflow).
 *            The rounding errors of 1 + p and of 1 + e are recovered exactly (Fast2Sum) and
 *            folded into one correction of the quotient: without it float32 was 2.3 ulp.
 *            2^k is applied in two halves so that exp underflows gradually.
 *
 * Clones, chosen at run time (no -march in the build): portable (GCC vector extensions at the
 * baseline ISA, SSE2 on x86-64; plain C for compilers without them), AVX2+FMA (256-bit),
 * AVX-512F (512-bit). fastnn_math_set_isa caps the clone for tests and benchmarks
 * (activations.pyx _math_isa); the cap is a static of this header, so each extension module
 * has its own. Helpers are always-inline with their clone's target attribute: a non-inlined
 * helper returning a 32-byte vector disagrees on ABI with its AVX2 caller at -O0.
 */
#ifndef FASTNN_MATH_H
#define FASTNN_MATH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FASTNN_MATH_PORTABLE 0
#define FASTNN_MATH_AVX2 1
#define FASTNN_MATH_AVX512 2

#if defined(__GNUC__) && !defined(FASTNN_MATH_NO_VECTOR_EXT)
#define FM_VECTOR 1
#define FM_INLINE static inline __attribute__((always_inline))
#else
#define FM_VECTOR 0
#define FM_INLINE static inline
#endif

#if FM_VECTOR && (defined(__x86_64__) || defined(__i386__))
#define FM_X86 1
#else
#define FM_X86 0
#endif

/* The rounding barrier: the value is "changed" by an empty asm, so a product that goes through
 * it is rounded before any later addition (no contraction into an FMA), on every clone. On
 * other GNU targets the barrier keeps the same meaning; elsewhere there is only one clone and
 * the compiler's contraction choice is the same for every element. */
#if FM_VECTOR && FM_X86
#define FM_ROUND(v) __asm__("" : "+x"(v))
#elif FM_VECTOR && defined(__aarch64__)
#define FM_ROUND(v) __asm__("" : "+w"(v))
#else
#define FM_ROUND(v) ((void)0)
#endif

/* ---------------------------------------------------------------- constants
 * Polynomials from tools/fit_math_poly.py (Chebyshev fits, highest degree first). */
/* fm_expm1_q_f32: 5 terms; fit error 1.04e-9 relative */
static const float fm_expm1_q_f32[5] = {0x1.a0fccep-13f, 0x1.6d15f8p-10f, 0x1.1110f6p-7f, 0x1.555516p-5f,
                                        0x1.555556p-3f};
/* fm_expm1_q_f64: 10 terms; fit error 1.09e-18 relative */
static const double fm_expm1_q_f64[10] = {0x1.1f6942ca28386p-29, 0x1.af3cd7b3560d9p-26, 0x1.27e4e0f0f6358p-22,
                                          0x1.71de0be80e7e8p-19, 0x1.a01a01a4be7f8p-16, 0x1.a01a01a83a3a3p-13,
                                          0x1.6c16c16c1678ap-10, 0x1.111111111091ap-7, 0x1.5555555555555p-5,
                                          0x1.5555555555556p-3};
/* fm_tanh_p_f32: 5 terms; fit error 5.12e-9 relative */
static const float fm_tanh_p_f32[5] = {-0x1.aba8f0p-8f, 0x1.5c60f8p-6f, -0x1.b9902cp-5f, 0x1.110fb4p-3f,
                                       -0x1.555554p-2f};
/* fm_tanh_p_f64: 11 terms; fit error 3.89e-18 relative */
static const double fm_tanh_p_f64[11] = {-0x1.4ffe31971aeb8p-16, 0x1.616f17dcc6fd8p-14, -0x1.eaf47874aab53p-13,
                                         0x1.34ad2f7abd75ap-11, -0x1.7d9545835e3e5p-10, 0x1.d6d30f918e945p-9,
                                         -0x1.226e32212f8e9p-7, 0x1.664f48727bbfdp-6, -0x1.ba1ba1b9f19a0p-5,
                                         0x1.1111111110fbep-3, -0x1.5555555555555p-2};

/* Per dtype: log2(e); ln 2 = LN2_HI + LN2_LO with k * LN2_HI exact for the k used (fdlibm's pair
 * for double; Cephes' 0.693359375 for float); the rounding constant 1.5 * 2^mantissa (adding it
 * rounds to an integer, which then sits in the low bits); the exponent's bias and position;
 * tanh's clamp (tanh rounds to 1 above 9.01 / 19.06); sigmoid's lower clamp (exp(-|x|) rounds to
 * 0 there, and 2^k's halves stay normal). */
#define FM_F32_LOG2E 0x1.715476p+0f
#define FM_F32_LN2_HI 0x1.63p-1f
#define FM_F32_LN2_LO -0x1.bd0106p-13f
#define FM_F32_ROUNDER 0x1.8p23f
#define FM_F32_MANT 23
#define FM_F32_BIAS 127
#define FM_F32_TANH_SAT 9.125f
#define FM_F32_EXP_LOW -104.0f
#define FM_F64_LOG2E 0x1.71547652b82fep+0
#define FM_F64_LN2_HI 0x1.62e42fee00000p-1
#define FM_F64_LN2_LO 0x1.a39ef35793c76p-33
#define FM_F64_ROUNDER 0x1.8p52
#define FM_F64_MANT 52
#define FM_F64_BIAS 1023
#define FM_F64_TANH_SAT 20.0
#define FM_F64_EXP_LOW -746.0
/* Below this |x| tanh uses its odd polynomial (both dtypes; above atanh(1/2)). */
#define FM_TANH_SMALL 0.5625

#define FM_F32_EXPM1_Q fm_expm1_q_f32
#define FM_F32_TANH_P fm_tanh_p_f32
#define FM_F64_EXPM1_Q fm_expm1_q_f64
#define FM_F64_TANH_P fm_tanh_p_f64

/* ---------------------------------------------------------------- clones
 * fastnn_math_body.h is one text for every clone and dtype; each inclusion below defines
 * FM_T (element), FM_IT (same-width integer), FM_TARGET, FM_FN (name prefix), FM_S (dtype of
 * the constants) and FM_BYTES (vector width); the body defines FM_V / FM_VI (its vector types)
 * and FM_W (lanes). The operations it needs on them: */
#define FM_K(name) FM_K_(FM_S, name) /* this dtype's constant, FM_F32_name or FM_F64_name */
#define FM_K_(s, name) FM_K__(s, name)
#define FM_K__(s, name) FM_##s##_##name
#define FM_SPLAT(c) ((FM_T)(c) - (FM_V){0}) /* every lane c (and -0.0 stays -0.0) */
#if FM_VECTOR
#define FM_BITS(v) ((FM_VI)(v)) /* reinterpret */
#define FM_FLT(i) ((FM_V)(i))
#define FM_LT(a, b) ((FM_VI)((a) < (b))) /* lane masks: all ones or zero */
#define FM_NE(a, b) ((FM_VI)((a) != (b)))
#else
#define FM_BITS(v) FM_FN(bits)(v)
#define FM_FLT(i) FM_FN(flt)(i)
#define FM_LT(a, b) ((FM_IT)0 - (FM_IT)((a) < (b)))
#define FM_NE(a, b) ((FM_IT)0 - (FM_IT)((a) != (b)))
#endif
#define FM_CAT3(a, b, c) a##b##c
#define FM_NAME(isa, s, name) FM_CAT3(fastnn_math_##isa##_, s, _##name)

#define FM_TARGET
#if FM_VECTOR
#define FM_BYTES 16
#endif
#define FM_T float
#define FM_IT int32_t
#define FM_S F32
#define FM_FN(name) FM_NAME(portable, f32, name)
#include "fastnn_math_body.h"
#define FM_T double
#define FM_IT int64_t
#define FM_S F64
#define FM_FN(name) FM_NAME(portable, f64, name)
#include "fastnn_math_body.h"
#undef FM_TARGET
#undef FM_BYTES

#if FM_X86
#define FM_TARGET __attribute__((target("avx2,fma")))
#define FM_BYTES 32
#define FM_T float
#define FM_IT int32_t
#define FM_S F32
#define FM_FN(name) FM_NAME(avx2, f32, name)
#include "fastnn_math_body.h"
#define FM_T double
#define FM_IT int64_t
#define FM_S F64
#define FM_FN(name) FM_NAME(avx2, f64, name)
#include "fastnn_math_body.h"
#undef FM_TARGET
#undef FM_BYTES

#define FM_TARGET __attribute__((target("avx512f,avx2,fma")))
#define FM_BYTES 64
#define FM_T float
#define FM_IT int32_t
#define FM_S F32
#define FM_FN(name) FM_NAME(avx512, f32, name)
#include "fastnn_math_body.h"
#define FM_T double
#define FM_IT int64_t
#define FM_S F64
#define FM_FN(name) FM_NAME(avx512, f64, name)
#include "fastnn_math_body.h"
#undef FM_TARGET
#undef FM_BYTES

/* __builtin_cpu_supports also checks that the OS saves the registers (XCR0). */
static int fastnn_math_cpu_isa(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? FASTNN_MATH_PORTABLE
                 : __builtin_cpu_supports("avx512f")                                ? FASTNN_MATH_AVX512
                                                                                     : FASTNN_MATH_AVX2;
    }
    return cached;
}
#else
static int fastnn_math_cpu_isa(void) { return FASTNN_MATH_PORTABLE; }
#endif

/* Test hook: the highest clone the dispatcher may pick. Process state of this module's copy of
 * the header; set it before any concurrent call. */
static int fastnn_math_isa_cap = FASTNN_MATH_AVX512;

/* The clone the functions below run: the CPU's best, capped by fastnn_math_set_isa. */
static inline int fastnn_math_isa(void) {
    int cpu = fastnn_math_cpu_isa();
    return cpu < fastnn_math_isa_cap ? cpu : fastnn_math_isa_cap;
}

/* Cap the clone at `level` (FASTNN_MATH_*, clamped to the valid range); returns the clone now used. */
static inline int fastnn_math_set_isa(int level) {
    fastnn_math_isa_cap = level < FASTNN_MATH_PORTABLE ? FASTNN_MATH_PORTABLE
                          : level > FASTNN_MATH_AVX512 ? FASTNN_MATH_AVX512
                                                       : level;
    return fastnn_math_isa();
}

#if FM_X86
#define FM_DISPATCH(name, T, s)                                                                     \
    static void fastnn_##name##_##s(T *out, const T *x, ptrdiff_t n) {                             \
        switch (fastnn_math_isa()) {                                                               \
            case FASTNN_MATH_AVX512: fastnn_math_avx512_##s##_##name(out, x, n); return;           \
            case FASTNN_MATH_AVX2: fastnn_math_avx2_##s##_##name(out, x, n); return;               \
            default: fastnn_math_portable_##s##_##name(out, x, n); return;                         \
        }                                                                                          \
    }
#else
#define FM_DISPATCH(name, T, s)                                                                     \
    static void fastnn_##name##_##s(T *out, const T *x, ptrdiff_t n) {                             \
        fastnn_math_portable_##s##_##name(out, x, n);                                              \
    }
#endif
FM_DISPATCH(tanh, float, f32)
FM_DISPATCH(tanh, double, f64)
FM_DISPATCH(sigmoid, float, f32)
FM_DISPATCH(sigmoid, double, f64)
#undef FM_DISPATCH

#endif /* FASTNN_MATH_H */
