/* fastnn_clones.h -- compiles the body FASTNN_CLONE_BODY once per clone of the multiply-add
 * kernels (fastnn_bitmap.h, fastnn_csr.h), with these macros defined:
 *   FC_FN(x)          the clone's name for x: x##_base, x##_avx2
 *   FC_TARGET         its target attribute (empty for the portable clone)
 *   FC_FMA8(a, b, c)  a * b + c on 8 floats (fastnn_v8sf), rounded once
 *   FC_FMA1(a, b, c)  a * b + c on one float, rounded once
 * Every multiply-add of those kernels is written as one of these, never left to the compiler:
 * -O3 contracts a * b + c into an FMA in a clone whose target has one, -O0 never does, so the
 * bits depended on the build (a FASTNN_DEBUG build disagreed with fastnn_gemm.h, which uses FMA
 * intrinsics, and the engine's bitmask and GEMM kernels stopped giving the same bits, issue 15).
 * Fused everywhere, the clones agree with each other and with the GEMM at any optimisation level.
 * The portable clone's fmaf is a library call on x86 CPUs without FMA: exact, and slower there
 * (such CPUs also run the portable GEMM, an fmaf chain).
 *
 * The includer defines FASTNN_CLONE_BODY (a quoted header name); this file undefines it. No
 * include guard: it is included once per body. */

#define FC_FMA1(a, b, c) fmaf(a, b, c)

#define FC_FN(x) x##_base
#define FC_TARGET
#define FC_FMA8(a, b, c) FASTNN_FMA8_LANES(a, b, c)
#include FASTNN_CLONE_BODY
#undef FC_FN
#undef FC_TARGET
#undef FC_FMA8

#if FASTNN_X86_DISPATCH
#define FC_FN(x) x##_avx2
#define FC_TARGET FASTNN_TARGET_AVX2
#define FC_FMA8(a, b, c) ((fastnn_v8sf)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)))
#include FASTNN_CLONE_BODY
#undef FC_FN
#undef FC_TARGET
#undef FC_FMA8
#endif

#undef FC_FMA1
#undef FASTNN_CLONE_BODY
