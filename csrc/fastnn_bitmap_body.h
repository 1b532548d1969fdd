/* fastnn_bitmap_body.h -- fastnn_bitmap.h's kernels for ONE clone; fastnn_clones.h includes it once
 * per clone with FC_FN, FC_TARGET, FC_FMA8 and FC_FMA1 defined. No include guard. */

/* Fewer than 8 columns, or no vector extensions: one column at a time, the same sums. */
FC_TARGET FASTNN_ALWAYS_INLINE void FC_FN(fastnn_sparse_forward_scalar)(
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
                for (c = c0; c < c1; c++) h[c] = FC_FMA1(v, W[i * ldw + c], h[c]);
            }
        }
        if (bias)
            for (c = c0; c < c1; c++) h[c] = h[c] + bias[c];
    }
}

FC_TARGET FASTNN_ALWAYS_INLINE void FC_FN(fastnn_sparse_weight_grad_scalar)(
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
                for (c = c0; c < c1; c++) d[c] = FC_FMA1(v, dZ[b * ldz + c], d[c]);
            }
        }
    }
}

FC_TARGET static void FC_FN(fastnn_sparse_forward)(
        float *H, ptrdiff_t ldh, const float *X, ptrdiff_t ldx, const intptr_t *rows, const float *W, ptrdiff_t ldw,
        const float *bias, const uint64_t *rowbits, ptrdiff_t ldr, ptrdiff_t f0, ptrdiff_t f1, ptrdiff_t B,
        ptrdiff_t c0, ptrdiff_t c1) {
#if FASTNN_HAVE_VECTOR_EXT
    ptrdiff_t b, b0, w, wa = f0 / 64, wb = (f1 + 63) / 64;
    float part[FASTNN_SPARSE_ROWS * FASTNN_CHUNK_MAX];
    FASTNN_CHUNKED(FASTNN_SPARSE_FORWARD_CHUNK,
                   FC_FN(fastnn_sparse_forward_scalar)(H, ldh, X, ldx, rows, W, ldw, bias, rowbits, ldr, f0, f1, B,
                                                       c0, c1))
#else
    FC_FN(fastnn_sparse_forward_scalar)(H, ldh, X, ldx, rows, W, ldw, bias, rowbits, ldr, f0, f1, B, c0, c1);
#endif
}

FC_TARGET static void FC_FN(fastnn_sparse_weight_grad)(
        float *dW, ptrdiff_t lddw, const float *X, ptrdiff_t ldx, const intptr_t *rows, const float *dZ, ptrdiff_t ldz,
        const uint64_t *featmask, ptrdiff_t nw, ptrdiff_t f0, ptrdiff_t f1, ptrdiff_t c0, ptrdiff_t c1) {
#if FASTNN_HAVE_VECTOR_EXT
    ptrdiff_t i, g;
    FASTNN_CHUNKED(FASTNN_SPARSE_GRAD_CHUNK,
                   FC_FN(fastnn_sparse_weight_grad_scalar)(dW, lddw, X, ldx, rows, dZ, ldz, featmask, nw, f0, f1,
                                                           c0, c1))
#else
    FC_FN(fastnn_sparse_weight_grad_scalar)(dW, lddw, X, ldx, rows, dZ, ldz, featmask, nw, f0, f1, c0, c1);
#endif
}
