/* check_math.c -- the long accuracy runs of csrc/fastnn_math.h (the pytest suite samples; this is exhaustive).
 *
 *   gcc -O2 -fno-math-errno -Icsrc tools/check_math.c -lm -o /tmp/check_math
 *   /tmp/check_math f32 [stride]   every stride-th float32 bit pattern (1: all 2^32, ~5 CPU-minutes)
 *   /tmp/check_math f64 [count]    count float64 inputs (uniform on several ranges, and random bits)
 *
 * For each input: every clone this CPU runs must give the portable clone's bits; the portable
 * clone's error is measured in ulps of the result type against double libm (float32) or long
 * double libm (float64, x86's 64-bit mantissa). Prints the maxima and where they occur.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastnn_math.h"

#define CHUNK 4096

/* |y - ref| in ulps of a type with `mant` mantissa bits and smallest exponent `emin` at ref. */
static long double ulps(long double y, long double ref, int mant, int emin) {
    int e;
    frexpl(ref, &e); /* |ref| in [2^(e-1), 2^e) */
    return fabsl(y - ref) / ldexpl(1.0L, e - 1 - mant > emin ? e - 1 - mant : emin);
}

static long double sigmoid_ref(long double x) {
    long double e = expl(-fabsl(x));
    return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}

static uint64_t state = 88172645463325252ull;
static uint64_t next(void) { /* xorshift64 */
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}
static double uniform(double half_width) { return ((double)(next() >> 11) / 9007199254740992.0 - 0.5) * 2 * half_width; }

int main(int argc, char **argv) {
    int f32 = argc < 2 || strcmp(argv[1], "f64") != 0, nisa = fastnn_math_set_isa(FASTNN_MATH_AVX512) + 1;
    uint64_t arg = argc > 2 ? strtoull(argv[2], NULL, 10) : (f32 ? 1 : 10000000), done = 0, differing = 0, bad_nan = 0;
    long double worst[2] = {0, 0};
    double at[2] = {0, 0};
    static float xf[CHUNK], yf[3][2][CHUNK];
    static double xd[CHUNK], yd[3][2][CHUNK];
    uint64_t bits = 0;
    while (f32 ? bits < (1ull << 32) : done < arg) {
        int n = 0, isa, f, i;
        for (; n < CHUNK && (f32 ? bits < (1ull << 32) : 1); n++) {
            if (f32) {
                uint32_t u = (uint32_t)bits;
                memcpy(&xf[n], &u, 4);
                bits += arg;
            } else {
                uint64_t r = next(), u = next();
                xd[n] = r % 4 == 0 ? uniform(25) : r % 4 == 1 ? uniform(1.2) : r % 4 == 2 ? uniform(760) : 0;
                if (r % 4 == 3) {
                    memcpy(&xd[n], &u, 8);
                    if (isnan(xd[n])) xd[n] = 0.5;
                }
            }
        }
        for (isa = 0; isa < nisa; isa++) {
            fastnn_math_set_isa(isa);
            if (f32) {
                fastnn_tanh_f32(yf[isa][0], xf, n);
                fastnn_sigmoid_f32(yf[isa][1], xf, n);
            } else {
                fastnn_tanh_f64(yd[isa][0], xd, n);
                fastnn_sigmoid_f64(yd[isa][1], xd, n);
            }
            if (isa && (f32 ? memcmp(yf[isa], yf[0], sizeof yf[0]) : memcmp(yd[isa], yd[0], sizeof yd[0])))
                differing++;
        }
        for (i = 0; i < n; i++) {
            long double x = f32 ? (long double)xf[i] : (long double)xd[i];
            if (isnan(x)) {
                bad_nan += f32 ? !isnan(yf[0][0][i]) || !isnan(yf[0][1][i]) : !isnan(yd[0][0][i]) || !isnan(yd[0][1][i]);
                continue;
            }
            for (f = 0; f < 2; f++) {
                long double ref = f ? sigmoid_ref(x) : tanhl(x);
                long double e = f32 ? ulps(yf[0][f][i], ref, 23, -149) : ulps(yd[0][f][i], ref, 52, -1074);
                if (e > worst[f]) {
                    worst[f] = e;
                    at[f] = (double)x;
                }
            }
            done++;
        }
    }
    printf("%s: %llu inputs, %d clones, chunks where a clone differs from portable: %llu, NaN not kept: %llu\n",
           f32 ? "float32" : "float64", (unsigned long long)done, nisa, (unsigned long long)differing,
           (unsigned long long)bad_nan);
    printf("tanh    max %.4f ulp at %a\nsigmoid max %.4f ulp at %a\n", (double)worst[0], at[0], (double)worst[1], at[1]);
    return differing || bad_nan;
}
