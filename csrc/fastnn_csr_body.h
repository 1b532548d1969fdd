/* fastnn_csr_body.h -- fastnn_csr.h's kernels for ONE clone; fastnn_clones.h includes it once per
 * clone with FC_FN, FC_TARGET, FC_FMA8 and FC_FMA1 defined. No include guard. */

#define FASTNN_CSR_CLONE(IDX, SI)                                                                   \
FC_TARGET static void FC_FN(fastnn_csr_dot_##SI)(float *restrict o, const IDX *restrict ind,          \
        const float *restrict data, ptrdiff_t k0, ptrdiff_t k1, const float *restrict W, ptrdiff_t O) {\
    ptrdiff_t k;                                                                                    \
    if (O < 8 || !FASTNN_HAVE_VECTOR_EXT) {                                                         \
        ptrdiff_t cc;                                                                               \
        for (cc = 0; cc < O; cc++) o[cc] = 0.0f;                                                    \
        for (k = k0; k < k1; k++) {                                                                 \
            const float v = data[k], *restrict wr = W + (ptrdiff_t)ind[k] * O;                      \
            for (cc = 0; cc < O; cc++) o[cc] = FC_FMA1(v, wr[cc], o[cc]);                           \
        }                                                                                           \
        return;                                                                                     \
    }                                                                                               \
    FASTNN_IF_VECTOR(FASTNN_CSR_VECTOR_DOT)                                                         \
}                                                                                                   \
FC_TARGET FASTNN_ALWAYS_INLINE void FC_FN(fastnn_csr_scatter_##SI##_body)(float *restrict dW,         \
        const IDX *restrict ind, const float *restrict data, ptrdiff_t k0, ptrdiff_t k1,             \
        const float *restrict z, ptrdiff_t O, ptrdiff_t p0, ptrdiff_t p1, int filter) {             \
    ptrdiff_t k, c, O8 = FASTNN_HAVE_VECTOR_EXT ? O / 8 * 8 : 0;                                    \
    for (k = k0; k < k1; k++) {                                                                     \
        const ptrdiff_t i = (ptrdiff_t)ind[k];                                                      \
        const float v = data[k];                                                                    \
        float *restrict d = dW + i * O;                                                             \
        if (filter && (i < p0 || i >= p1)) continue;                                                \
        FASTNN_IF_VECTOR(                                                                           \
            fastnn_v8sf vv = {v, v, v, v, v, v, v, v};                                              \
            for (c = 0; c < O8; c += 8)                                                             \
                fastnn_store8(d + c, FC_FMA8(vv, fastnn_load8(z + c), fastnn_load8(d + c)));)       \
        for (c = O8; c < O; c++) d[c] = FC_FMA1(v, z[c], d[c]);                                     \
    }                                                                                               \
}                                                                                                   \
FC_TARGET static void FC_FN(fastnn_csr_scatter_##SI)(float *dW, const IDX *ind, const float *data,    \
        ptrdiff_t k0, ptrdiff_t k1, const float *z, ptrdiff_t O, ptrdiff_t p0, ptrdiff_t p1, int filter) { \
    FC_FN(fastnn_csr_scatter_##SI##_body)(dW, ind, data, k0, k1, z, O, p0, p1, filter);             \
}                                                                                                   \
FC_TARGET static void FC_FN(fastnn_csr_batch_grad_##SI)(float *dW, ptrdiff_t O, const float *G,       \
        ptrdiff_t ldg, const IDX *indptr, const IDX *ind, const float *data, const intptr_t *rows,   \
        ptrdiff_t row0, ptrdiff_t B, ptrdiff_t f0, ptrdiff_t f1, int sorted) {                      \
    ptrdiff_t r;                                                                                    \
    const ptrdiff_t r1 = B;                                                                         \
    memset(dW + f0 * O, 0, (size_t)((f1 - f0) * O) * sizeof(float));                                \
    for (r = 0; r < B; r++) {                                                                       \
        const ptrdiff_t s = rows != NULL ? (ptrdiff_t)rows[r] : row0 + r;                           \
        ptrdiff_t k0 = (ptrdiff_t)indptr[s], k1 = (ptrdiff_t)indptr[s + 1];                         \
        FASTNN_CSR_PREFETCH_AHEAD(r);                                                               \
        if (k0 == k1) continue;                                                                     \
        if (sorted) {  /* the row's values in [f0, f1): one run */                                  \
            if ((ptrdiff_t)ind[k0] < f0) k0 = fastnn_lower_bound_##SI(ind, k0, k1, f0);             \
            if (k0 < k1 && (ptrdiff_t)ind[k1 - 1] >= f1) k1 = fastnn_lower_bound_##SI(ind, k0, k1, f1); \
        }                                                                                           \
        FC_FN(fastnn_csr_scatter_##SI##_body)(dW, ind, data, k0, k1, G + r * ldg, O, f0, f1, !sorted); \
    }                                                                                               \
}
FASTNN_CSR_CLONE(int32_t, i32)
FASTNN_CSR_CLONE(int64_t, i64)
#undef FASTNN_CSR_CLONE
