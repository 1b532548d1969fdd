/* fastnn_math_body.h -- one clone of fastnn_math.h's tanh and sigmoid, for one dtype.
 *
 * Included only by fastnn_math.h, once per (clone, dtype), with FM_T, FM_IT, FM_S, FM_FN,
 * FM_TARGET and, for GNU compilers, FM_BYTES (vector width) defined; the algorithms and their
 * error analysis are described there. Every function here is always-inline with its clone's
 * target attribute except the two array loops at the end. Every product goes through mul(),
 * whose rounding barrier keeps it from being fused with a later addition: all clones then run
 * the same IEEE operations per element and give the same bits.
 */
#if FM_VECTOR
typedef FM_T FM_FN(v) __attribute__((vector_size(FM_BYTES)));
typedef FM_IT FM_FN(vi) __attribute__((vector_size(FM_BYTES)));
#define FM_V FM_FN(v)
#define FM_VI FM_FN(vi)
#define FM_W ((ptrdiff_t)(FM_BYTES / sizeof(FM_T)))
#else
#define FM_V FM_T
#define FM_VI FM_IT
#define FM_W ((ptrdiff_t)1)
FM_INLINE FM_IT FM_FN(bits)(FM_T v) {
    FM_IT i;
    memcpy(&i, &v, sizeof i);
    return i;
}
FM_INLINE FM_T FM_FN(flt)(FM_IT i) {
    FM_T v;
    memcpy(&v, &i, sizeof v);
    return v;
}
#endif

/* a * b, rounded on its own (never fused into a following add). */
FM_TARGET FM_INLINE FM_V FM_FN(mul)(FM_V a, FM_V b) {
    FM_V p = a * b;
    FM_ROUND(p);
    return p;
}

/* m ? a : b per lane, m all ones or all zeros. */
FM_TARGET FM_INLINE FM_V FM_FN(sel)(FM_VI m, FM_V a, FM_V b) {
    return FM_FLT((m & FM_BITS(a)) | (~m & FM_BITS(b)));
}

/* c[0] v^(n-1) + ... + c[n-1] by Horner's rule (n is a constant: the loop unrolls). */
FM_TARGET FM_INLINE FM_V FM_FN(horner)(FM_V v, const FM_T *c, int n) {
    FM_V q = FM_SPLAT(c[0]);
    int i;
    for (i = 1; i < n; i++) q = FM_FN(mul)(q, v) + c[i];
    return q;
}

/* 2^k for integer lanes k in the normal exponent range. */
FM_TARGET FM_INLINE FM_V FM_FN(pow2)(FM_VI k) {
    return FM_FLT((k + FM_K(BIAS)) << FM_K(MANT));
}

/* exp(y) = 2^k (1 + p): returns p = expm1(r) for the reduced r, and k (as a float in *kf, as an
 * integer in *ki). k = round(y / ln 2) by adding 1.5 * 2^mantissa (the integer lands in the low
 * bits); r = y - k ln2_hi - k ln2_lo, the first product exact and the first subtraction exact
 * (Sterbenz), so r carries only the rounding of k ln2_lo. */
FM_TARGET FM_INLINE FM_V FM_FN(expm1_reduced)(FM_V y, FM_V *kf, FM_VI *ki) {
    const FM_V rounder = FM_SPLAT(FM_K(ROUNDER));
    FM_V t = FM_FN(mul)(y, FM_SPLAT(FM_K(LOG2E))) + rounder;
    FM_V k = t - rounder;
    FM_V r = (y - FM_FN(mul)(k, FM_SPLAT(FM_K(LN2_HI)))) - FM_FN(mul)(k, FM_SPLAT(FM_K(LN2_LO)));
    FM_V q = FM_FN(horner)(r, FM_K(EXPM1_Q), (int)(sizeof FM_K(EXPM1_Q) / sizeof(FM_T)));
    FM_V h = (FM_T)0.5 + FM_FN(mul)(r, q);
    *kf = k;
    *ki = FM_BITS(t) - FM_BITS(rounder);
    return r + FM_FN(mul)(FM_FN(mul)(r, r), h);
}

FM_TARGET FM_INLINE FM_V FM_FN(tanh_v)(FM_V x) {
    const FM_VI signbit = FM_BITS(FM_SPLAT(-0.0));
    const FM_V sat = FM_SPLAT(FM_K(TANH_SAT));
    FM_VI sign = FM_BITS(x) & signbit, ki;
    FM_V a = FM_FLT(FM_BITS(x) ^ sign), kf, p, e, big, z, q, small, t;
    a = FM_FN(sel)(FM_LT(sat, a), sat, a); /* tanh is 1 there; NaN stays NaN */
    /* 1 - 2 / (exp(2a) + 1): exp(2a) <= exp(2 sat) cannot overflow */
    p = FM_FN(expm1_reduced)(a + a, &kf, &ki);
    e = FM_FN(mul)((FM_T)1 + p, FM_FN(pow2)(ki));
    big = (FM_T)1 - (FM_T)2 / (e + (FM_T)1);
    /* a + a z P(z) near 0, where the subtraction above would cancel */
    z = FM_FN(mul)(a, a);
    q = FM_FN(horner)(z, FM_K(TANH_P), (int)(sizeof FM_K(TANH_P) / sizeof(FM_T)));
    small = a + FM_FN(mul)(FM_FN(mul)(a, z), q);
    t = FM_FN(sel)(FM_LT(a, FM_SPLAT(FM_TANH_SMALL)), small, big);
    t = FM_FLT(FM_BITS(t) | sign); /* tanh is odd: -0 -> -0 */
    return FM_FN(sel)(FM_NE(x, x), x, t);
}

FM_TARGET FM_INLINE FM_V FM_FN(sigmoid_v)(FM_V x) {
    const FM_V one = FM_SPLAT(1), low = FM_SPLAT(FM_K(EXP_LOW)), rounder = FM_SPLAT(FM_K(ROUNDER));
    FM_VI ki, k1, neg;
    FM_V y = FM_FLT(FM_BITS(x) | FM_BITS(FM_SPLAT(-0.0))), kf, p, s1, s2, m, m_lo, e, e_lo, d, d_lo, q, inv_d;
    y = FM_FN(sel)(FM_LT(y, low), low, y); /* y = -|x|, where exp(y) is not 0 */
    p = FM_FN(expm1_reduced)(y, &kf, &ki);
    /* 2^k = 2^k1 2^(k - k1), k1 = round(k / 2): both halves normal, one rounding into the denormals */
    k1 = FM_BITS(FM_FN(mul)(kf, FM_SPLAT(0.5)) + rounder) - FM_BITS(rounder);
    s1 = FM_FN(pow2)(k1);
    s2 = FM_FN(pow2)(ki - k1);
    /* e + e_lo = exp(y): 1 + p and its rounding error (Fast2Sum, |p| < 1), both scaled */
    m = one + p;
    m_lo = (one - m) + p;
    e = FM_FN(mul)(FM_FN(mul)(m, s1), s2);
    e_lo = FM_FN(mul)(FM_FN(mul)(m_lo, s1), s2);
    /* d + d_lo = 1 + e + e_lo (Fast2Sum again, e <= 1) */
    d = one + e;
    d_lo = (e - (d - one)) + e_lo;
    /* q = num / d with num = 1 (x >= 0) or e (x < 0); then the first-order correction
     * (num_lo - q d_lo) / d, with 1 / d = q (x >= 0) or 1 - q (x < 0) */
    neg = FM_LT(x, FM_SPLAT(0));
    q = FM_FN(sel)(neg, e, one) / d;
    inv_d = FM_FN(sel)(neg, one - q, q);
    q = q + FM_FN(mul)(FM_FLT(neg & FM_BITS(e_lo)) - FM_FN(mul)(q, d_lo), inv_d);
    return FM_FN(sel)(FM_NE(x, x), x, q);
}

/* The array loops: whole vectors, then the last n % W elements through a zero-padded vector
 * (the same lanes' arithmetic, so one element alone gives the bits it gets in an array). */
#define FM_ARRAY_LOOP(name)                                                                         \
    FM_TARGET static void FM_FN(name)(FM_T *out, const FM_T *x, ptrdiff_t n) {                     \
        ptrdiff_t i = 0;                                                                           \
        FM_V v;                                                                                    \
        for (; i + FM_W <= n; i += FM_W) {                                                         \
            memcpy(&v, x + i, sizeof v);                                                           \
            v = FM_FN(name##_v)(v);                                                                \
            memcpy(out + i, &v, sizeof v);                                                         \
        }                                                                                          \
        if (i < n) {                                                                               \
            FM_T buf[FM_W];                                                                        \
            memset(buf, 0, sizeof buf);                                                            \
            memcpy(buf, x + i, (size_t)(n - i) * sizeof(FM_T));                                    \
            memcpy(&v, buf, sizeof v);                                                             \
            v = FM_FN(name##_v)(v);                                                                \
            memcpy(buf, &v, sizeof v);                                                             \
            memcpy(out + i, buf, (size_t)(n - i) * sizeof(FM_T));                                  \
        }                                                                                          \
    }
FM_ARRAY_LOOP(tanh)
FM_ARRAY_LOOP(sigmoid)
#undef FM_ARRAY_LOOP

#undef FM_V
#undef FM_VI
#undef FM_W
#undef FM_T
#undef FM_IT
#undef FM_S
#undef FM_FN
