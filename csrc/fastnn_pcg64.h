/* fastnn_pcg64.h -- NumPy's PCG64 bit generator, to draw Generator.random(dtype=float32) bit for bit.
 *
 * Dropout in fit draws its uniforms from the layer's NumPy Generator, so that a seeded run consumes
 * the same numbers as the layer-by-layer path. NumPy spends ~2.9 ns on each float32 here (the
 * regularised MNIST tutorial: 6.1M numbers, 17.6 ms of a ~0.17 s epoch); the same stream from this
 * loop takes a fraction of that.
 *
 * The generator, as NumPy's numpy/random/src/pcg64 defines it (PCG64, not PCG64DXSM):
 *   state = state * MULT + inc                     (128-bit LCG step, then the output)
 *   next64 = rotr64(hi(state) ^ lo(state), state >> 122)              (XSL-RR)
 *   next32: the low half of a next64, its high half kept for the next call (has_uint32, uinteger)
 *   float32 = (next32 >> 8) * 2^-24
 * fastnn_pcg64_fill_f32 takes and returns the state in 64-bit halves (Cython has no 128-bit type).
 * Without a 128-bit integer type (FASTNN_HAVE_PCG64 0) the caller keeps NumPy's own draw.
 */
#ifndef FASTNN_PCG64_H
#define FASTNN_PCG64_H

#include <stddef.h>
#include <stdint.h>

#if defined(__SIZEOF_INT128__)
#define FASTNN_HAVE_PCG64 1

#define FASTNN_PCG64_MULT (((unsigned __int128)0x2360ED051FC65DA4ULL << 64) | 0x4385DF649FCCF645ULL)

static inline uint64_t fastnn_pcg64_output(unsigned __int128 state) {
    uint64_t x = (uint64_t)(state >> 64) ^ (uint64_t)state;
    unsigned rot = (unsigned)(state >> 122);
    return (x >> rot) | (x << ((-rot) & 63u));
}

static inline void fastnn_pcg64_two_f32(float *out, uint64_t v) {
    const float scale = 1.0f / 16777216.0f;
    out[0] = (float)((uint32_t)v >> 8) * scale;
    out[1] = (float)((uint32_t)(v >> 32) >> 8) * scale;
}

/* The LCG is one serial chain of 128-bit multiply-adds (~1.3 ns per float32 here): the main loop
 * runs 4 chains 4 steps apart, each stepped by MULT^4 (state' = A4 state + C4, the same numbers). */
static void fastnn_pcg64_fill_f32(uint64_t *state_hi, uint64_t *state_lo, uint64_t inc_hi, uint64_t inc_lo,
                                  int *has_uint32, uint32_t *uinteger, float *out, ptrdiff_t n) {
    const float scale = 1.0f / 16777216.0f;
    const unsigned __int128 mult = FASTNN_PCG64_MULT;
    unsigned __int128 state = ((unsigned __int128)*state_hi << 64) | *state_lo;
    unsigned __int128 inc = ((unsigned __int128)inc_hi << 64) | inc_lo;
    ptrdiff_t i = 0;
    uint64_t v = 0;
    if (n > 0 && *has_uint32) {
        out[i++] = (float)(*uinteger >> 8) * scale;
        *has_uint32 = 0;
    }
    if (n - i >= 16) {  /* 4 chains: s[j] is the state of step j + 1 ahead */
        unsigned __int128 a4 = mult * mult * mult * mult;
        unsigned __int128 c4 = inc * (mult * mult * mult + mult * mult + mult + 1);
        unsigned __int128 s[4];
        int j;
        s[0] = state * mult + inc;
        for (j = 1; j < 4; j++) s[j] = s[j - 1] * mult + inc;
        for (; i + 8 <= n; i += 8) {
            for (j = 0; j < 4; j++) {
                v = fastnn_pcg64_output(s[j]);
                fastnn_pcg64_two_f32(out + i + 2 * j, v);
            }
            state = s[3];
            for (j = 0; j < 4; j++) s[j] = s[j] * a4 + c4;
        }
        *uinteger = (uint32_t)(v >> 32);
    }
    for (; i + 1 < n; i += 2) {
        state = state * mult + inc;
        v = fastnn_pcg64_output(state);
        fastnn_pcg64_two_f32(out + i, v);
        *uinteger = (uint32_t)(v >> 32);  /* NumPy leaves the last high half there, consumed */
    }
    if (i < n) {
        state = state * mult + inc;
        v = fastnn_pcg64_output(state);
        out[i] = (float)((uint32_t)v >> 8) * scale;
        *has_uint32 = 1;
        *uinteger = (uint32_t)(v >> 32);
    }
    *state_hi = (uint64_t)(state >> 64);
    *state_lo = (uint64_t)state;
}
#else
#define FASTNN_HAVE_PCG64 0
static void fastnn_pcg64_fill_f32(uint64_t *state_hi, uint64_t *state_lo, uint64_t inc_hi, uint64_t inc_lo,
                                  int *has_uint32, uint32_t *uinteger, float *out, ptrdiff_t n) {
    (void)state_hi; (void)state_lo; (void)inc_hi; (void)inc_lo; (void)has_uint32; (void)uinteger;
    (void)out; (void)n;
}
#endif

#endif
