/* fastnn_gemm_body.h -- csrc/fastnn_gemm.h's GEMM for ONE element type on ONE ISA.
 *
 * fastnn_gemm.h includes this file once per (type, ISA) with the macros below defined; the
 * file undefines them at its end. One text serves float/double x AVX2/AVX-512.
 *   FG_T               element type                FG_V, FG_VL   vector type, lanes
 *   FG_M               mask type (last vector)     FG_MASK(n)    mask of the first n lanes, 1..FG_VL
 *   FG_FN(x)           this instantiation's name for x      FG_TARGET  target attribute
 *   FG_MR, FG_HEIGHTS  register tile: up to FG_MR rows x 2 vectors of C; FG_HEIGHTS(X) is
 *                      X(1) X(2) ... X(FG_MR)
 *   FG_KC, FG_MC, FG_NC  blocked path: K block, rows of packed A, columns of packed B
 *   FG_PORTABLE        the portable function of this type (fallback when malloc fails)
 *   FG_NARROW          optional: the panel function for panels of at most FG_VL columns when A
 *                      is read by rows (X W): there a tile of one vector per row is bound by its
 *                      FG_MR row pointers, and AVX-512 gives such panels to the AVX2 tiles, whose
 *                      two vectors per row halve the broadcasts (Dense(16) on MNIST, 128 x 784 x 16:
 *                      36 us -> 28 us).
 *   FG_ZERO() FG_SET1(x) FG_LOAD(p) FG_STORE(p, v) FG_MLOAD(p, m) FG_MSTORE(p, m, v)
 *   FG_FMA(a, b, c)    a * b + c rounded once: an FMA intrinsic, never left to contraction
 *
 * Two paths, one arithmetic. Every element of C is one FG_FMA chain over k = 0..K-1, from 0 or
 * from C; tile heights, masks, K blocks and packing only decide where its operands are read.
 *   direct   A and B read in place. Small products (the tutorials' 32 x 784 x 100) are
 *            fastest this way: packing costs more than it saves when each B panel is reused
 *            by two or three row tiles.
 *   blocked  Goto/BLIS: K blocks of FG_KC; B (FG_KC x FG_NC) packed once per K block into
 *            panels of FG_NR columns, A (FG_MC x FG_KC) packed into the row tiles that read it.
 *            Large B rows are 4-8 KB apart, so an unpacked panel falls into a few L1 sets and
 *            its prefetch stops at each page (256 x 1024 x 1024: 74 -> 150 GFLOPS, AVX-512).
 */

#define FG_INLINE static inline __attribute__((always_inline)) FG_TARGET
#define FG_NR (2 * FG_VL)
#define FG_TILES(M) (((M) + FG_MR - 1) / FG_MR)

/* C[0:mr, 0:nv VL] (=|+=) A[0:mr, 0:kc] B[0:kc, 0:nv VL]. With `edge`, the last vector of each
 * row is loaded and stored under mask m (columns past the panel are never touched).
 * unit_rsa: A[r, k] = a[r + k csa] (X^T, or packed A); else A[r, k] = a[r rsa + k] (X). */
FG_INLINE void FG_FN(tile)(const int mr, const int nv, const int edge, const int unit_rsa, ptrdiff_t kc,
                           const FG_T *a, ptrdiff_t rsa, ptrdiff_t csa, const FG_T *b, ptrdiff_t ldb, int beta,
                           FG_T *c, ptrdiff_t ldc, FG_M m) {
    FG_V acc[FG_MR][2];
    int r, v;
    ptrdiff_t k;
    if (unit_rsa) rsa = 1; else csa = 1;
#pragma GCC unroll 16
    for (r = 0; r < mr; r++)
#pragma GCC unroll 4
        for (v = 0; v < nv; v++) {
            FG_T *p = c + r * ldc + v * FG_VL;
            acc[r][v] = !beta ? FG_ZERO() : (edge && v == nv - 1) ? FG_MLOAD(p, m) : FG_LOAD(p);
        }
#pragma GCC unroll 4  /* float64 +5-10%, float32 +0-5% (C harness, AVX-512) */
    for (k = 0; k < kc; k++) {
        const FG_T *ak = a + k * csa, *bk = b + k * ldb;
        FG_V bv[2];
#pragma GCC unroll 4
        for (v = 0; v < nv; v++)
            bv[v] = (edge && v == nv - 1) ? FG_MLOAD(bk + v * FG_VL, m) : FG_LOAD(bk + v * FG_VL);
#pragma GCC unroll 16
        for (r = 0; r < mr; r++) {
            FG_V s = FG_SET1(ak[r * rsa]);
#pragma GCC unroll 4
            for (v = 0; v < nv; v++) acc[r][v] = FG_FMA(s, bv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 16
    for (r = 0; r < mr; r++)
#pragma GCC unroll 4
        for (v = 0; v < nv; v++) {
            FG_T *p = c + r * ldc + v * FG_VL;
            if (edge && v == nv - 1)
                FG_MSTORE(p, m, acc[r][v]);
            else
                FG_STORE(p, acc[r][v]);
        }
}

/* Each tile variant is a function of its own, not inlined, that runs `count` tiles of h rows down
 * a panel: inside one big function GCC kept the row pointers of X in vector registers and moved
 * them back for every k (vmovq on the FMA port; AVX-512 at 128 x 784 x 16: 36 us, alone: 27 us).
 * A tile of h rows starts at a + h ats (packed A: csa = h, see pack_a); with `packed`, C is
 * large and the next tile's rows of C are prefetched while one computes. The mask goes in as a
 * lane count (no vector arguments between functions). Variants: 0 = two full vectors, 1 = one
 * full vector, 2 = one masked vector, 3 = two vectors, the last masked; unit_rsa 0 or 1. */
typedef void (*FG_FN(tiles_fn))(ptrdiff_t count, ptrdiff_t kc, const FG_T *a, ptrdiff_t ats, int packed,
                                ptrdiff_t rsa, ptrdiff_t csa, const FG_T *b, ptrdiff_t ldb, int beta, FG_T *c,
                                ptrdiff_t ldc, int lanes);
#define FG_DEF_TILE(h, nv, edge, var, ursa)                                                         \
    __attribute__((noinline)) FG_TARGET static void FG_FN(tiles_##var##_##ursa##_##h)(             \
        ptrdiff_t count, ptrdiff_t kc, const FG_T *a, ptrdiff_t ats, int packed, ptrdiff_t rsa, ptrdiff_t csa, \
        const FG_T *b, ptrdiff_t ldb, int beta, FG_T *c, ptrdiff_t ldc, int lanes) {              \
        ptrdiff_t t, r;                                                                             \
        for (t = 0; t < count; t++, a += h * ats, c += h * ldc) {                                   \
            if (packed && t + 1 < count)                                                            \
                for (r = h; r < 2 * h; r++) {                                                       \
                    __builtin_prefetch(c + r * ldc, 1);                                             \
                    __builtin_prefetch(c + r * ldc + FG_NR - 1, 1);                                 \
                }                                                                                   \
            FG_FN(tile)(h, nv, edge, ursa, kc, a, rsa, packed ? h : csa, b, ldb, beta, c, ldc, FG_MASK(lanes)); \
        }                                                                                           \
    }
#define FG_DEF_TILES(h)                                                                             \
    FG_DEF_TILE(h, 2, 0, 0, 0) FG_DEF_TILE(h, 1, 0, 1, 0) FG_DEF_TILE(h, 1, 1, 2, 0) FG_DEF_TILE(h, 2, 1, 3, 0) \
    FG_DEF_TILE(h, 2, 0, 0, 1) FG_DEF_TILE(h, 1, 0, 1, 1) FG_DEF_TILE(h, 1, 1, 2, 1) FG_DEF_TILE(h, 2, 1, 3, 1)
FG_HEIGHTS(FG_DEF_TILES)
#define FG_T00(h) FG_FN(tiles_0_0_##h),
#define FG_T10(h) FG_FN(tiles_1_0_##h),
#define FG_T20(h) FG_FN(tiles_2_0_##h),
#define FG_T30(h) FG_FN(tiles_3_0_##h),
#define FG_T01(h) FG_FN(tiles_0_1_##h),
#define FG_T11(h) FG_FN(tiles_1_1_##h),
#define FG_T21(h) FG_FN(tiles_2_1_##h),
#define FG_T31(h) FG_FN(tiles_3_1_##h),
static const FG_FN(tiles_fn) FG_FN(tiles)[2][4][FG_MR + 1] = {
    {{NULL, FG_HEIGHTS(FG_T00)}, {NULL, FG_HEIGHTS(FG_T10)}, {NULL, FG_HEIGHTS(FG_T20)}, {NULL, FG_HEIGHTS(FG_T30)}},
    {{NULL, FG_HEIGHTS(FG_T01)}, {NULL, FG_HEIGHTS(FG_T11)}, {NULL, FG_HEIGHTS(FG_T21)}, {NULL, FG_HEIGHTS(FG_T31)}}};
#undef FG_T00
#undef FG_T10
#undef FG_T20
#undef FG_T30
#undef FG_T01
#undef FG_T11
#undef FG_T21
#undef FG_T31
#undef FG_DEF_TILES
#undef FG_DEF_TILE

/* Rows [0, M) of one panel of columns, in FG_TILES(M) tiles whose heights differ by one at most
 * (32 rows: 11 + 11 + 10, not 12 + 12 + 8: a short tile has too few accumulators to hide the
 * FMA latency): `extra` tiles of h0 + 1 rows, then the others of h0. Tile rows start at
 * a + i ats (see tiles_fn). */
FG_INLINE void FG_FN(rows)(int var, int unit_rsa, ptrdiff_t M, ptrdiff_t kc, const FG_T *a, ptrdiff_t ats,
                           int packed, ptrdiff_t rsa, ptrdiff_t csa, const FG_T *b, ptrdiff_t ldb, int beta,
                           FG_T *c, ptrdiff_t ldc, int lanes) {
    ptrdiff_t nt = FG_TILES(M), h0 = M / nt, extra = M % nt, i = extra * (h0 + 1);
    const FG_FN(tiles_fn) *fn = FG_FN(tiles)[unit_rsa][var];
    if (extra) fn[h0 + 1](extra, kc, a, ats, packed, rsa, csa, b, ldb, beta, c, ldc, lanes);
    fn[h0](nt - extra, kc, a + i * ats, ats, packed, rsa, csa, b, ldb, beta, c + i * ldc, ldc, lanes);
}

/* Columns [0, w) (w <= FG_NR) of rows [0, M): a full panel, or a narrower one whose last vector
 * is masked (its columns past w are neither read from B nor written to C). */
FG_INLINE void FG_FN(panel)(int unit_rsa, ptrdiff_t w, ptrdiff_t M, ptrdiff_t kc, const FG_T *a, ptrdiff_t ats,
                            int packed, ptrdiff_t rsa, ptrdiff_t csa, const FG_T *b, ptrdiff_t ldb, int beta,
                            FG_T *c, ptrdiff_t ldc) {
    int var = w == FG_NR ? 0 : w == FG_VL ? 1 : w < FG_VL ? 2 : 3;
    FG_FN(rows)(var, unit_rsa, M, kc, a, ats, packed, rsa, csa, b, ldb, beta, c, ldc, (int)((w - 1) % FG_VL + 1));
}

/* B[0:kc, 0:nb] as ceil(nb / FG_NR) panels of kc rows of FG_NR, the last one padded with zeros:
 * bbuf[(j / FG_NR) kc FG_NR + k FG_NR + j % FG_NR] = B[k, j]. Read row by row (a stream the
 * hardware prefetches), once per K block; every row block of C then reads the panels. */
FG_INLINE void FG_FN(pack_b)(FG_T *bbuf, const FG_T *b, ptrdiff_t ldb, ptrdiff_t kc, ptrdiff_t nb) {
    ptrdiff_t k, j;
    FG_M mlast = FG_MASK((int)(nb - (nb - 1) / FG_VL * FG_VL));
    for (k = 0; k < kc; k++) {
        const FG_T *bk = b + k * ldb;
        FG_T *p = bbuf + k * FG_NR;
        for (j = 0; j + FG_VL < nb; j += FG_VL) FG_STORE(p + j / FG_NR * kc * FG_NR + j % FG_NR, FG_LOAD(bk + j));
        FG_STORE(p + j / FG_NR * kc * FG_NR + j % FG_NR, FG_MLOAD(bk + j, mlast));
        for (j += FG_VL; j % FG_NR; j += FG_VL) FG_STORE(p + j / FG_NR * kc * FG_NR + j % FG_NR, FG_ZERO());
    }
}

/* A[0:mb, 0:kc] packed in the tiles FG_FN(rows) will cut: the tile of h rows at row i becomes
 * abuf[i kc + k h + r], one contiguous stream whatever A's strides. */
FG_INLINE void FG_FN(pack_a)(FG_T *abuf, const FG_T *a, ptrdiff_t rsa, ptrdiff_t csa, ptrdiff_t mb, ptrdiff_t kc) {
    ptrdiff_t t, nt = FG_TILES(mb), h0 = mb / nt, extra = mb % nt, i = 0, k, r;
    for (t = 0; t < nt; t++) {
        ptrdiff_t h = h0 + (t < extra);
        FG_T *p = abuf + i * kc;
        const FG_T *s = a + i * rsa;
        if (rsa == 1) {  /* X^T: each k gives h contiguous elements */
            FG_M mlast = FG_MASK((int)(h - (h - 1) / FG_VL * FG_VL));
            for (k = 0; k < kc; k++) {
                for (r = 0; r + FG_VL < h; r += FG_VL) FG_STORE(p + k * h + r, FG_LOAD(s + k * csa + r));
                FG_MSTORE(p + k * h + r, mlast, FG_MLOAD(s + k * csa + r, mlast));
            }
        } else {
            for (r = 0; r < h; r++)
                for (k = 0; k < kc; k++) p[k * h + r] = s[r * rsa + k * csa];
        }
        i += h;
    }
}

/* Columns [0, N) by the direct path: A in place (rsa == 1 or csa == 1). */
FG_INLINE void FG_FN(direct)(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const FG_T *a, ptrdiff_t rsa, ptrdiff_t csa,
                             const FG_T *b, ptrdiff_t ldb, int beta, FG_T *c, ptrdiff_t ldc) {
    ptrdiff_t j;
    for (j = 0; j < N; j += FG_NR) {
        ptrdiff_t w = N - j < FG_NR ? N - j : FG_NR;
        if (rsa == 1)
            FG_FN(panel)(1, w, M, K, a, 1, 0, 1, csa, b + j, ldb, beta, c + j, ldc);
#ifdef FG_NARROW
        else if (w <= FG_VL)  /* see FG_NARROW */
            FG_NARROW(0, w, M, K, a, rsa, 0, rsa, 1, b + j, ldb, beta, c + j, ldc);
#endif
        else
            FG_FN(panel)(0, w, M, K, a, rsa, 0, rsa, 1, b + j, ldb, beta, c + j, ldc);
    }
}

FG_TARGET static void FG_FN(run)(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const FG_T *a, ptrdiff_t rsa,
                                 ptrdiff_t csa, const FG_T *b, ptrdiff_t ldb, int beta, FG_T *c, ptrdiff_t ldc) {
    ptrdiff_t i, j, jc, pc;
    void *mem = NULL;
    FG_T *abuf, *bbuf;
    if (K <= 0) {  /* empty sums: C = 0, or C unchanged */
        if (!beta)
            for (i = 0; i < M; i++) memset(c + i * ldc, 0, (size_t)N * sizeof(FG_T));
        return;
    }
    if ((rsa == 1 || csa == 1) && !fastnn_gemm_blocked(M, N, K, rsa, csa, ldb, (ptrdiff_t)sizeof(FG_T))) {
        FG_FN(direct)(M, N, K, a, rsa, csa, b, ldb, beta, c, ldc);
        return;
    }
    /* One allocation per call, on this path only: no shared buffer, so calls stay reentrant (glibc
     * serves the repeated 1.3 MB request from its heap after the first call). */
    mem = malloc(sizeof(FG_T) * (FG_MC * FG_KC + FG_KC * FG_NC) + 64);
    if (!mem) {
        if (rsa == 1 || csa == 1)
            FG_FN(direct)(M, N, K, a, rsa, csa, b, ldb, beta, c, ldc);
        else
            FG_PORTABLE(M, N, K, a, rsa, csa, b, ldb, beta, c, ldc);
        return;
    }
    abuf = (FG_T *)(((uintptr_t)mem + 63) & ~(uintptr_t)63);
    bbuf = abuf + FG_MC * FG_KC;
    /* K blocks in ascending order: each starts from the partial sums the previous one stored in
     * C, so every element's chain continues exactly (storing a float and loading it is exact). */
    for (jc = 0; jc < N; jc += FG_NC) {
        ptrdiff_t nb = N - jc < FG_NC ? N - jc : FG_NC;
        for (pc = 0; pc < K; pc += FG_KC) {
            ptrdiff_t kc = K - pc < FG_KC ? K - pc : FG_KC;
            FG_FN(pack_b)(bbuf, b + pc * ldb + jc, ldb, kc, nb);
            for (i = 0; i < M; i += FG_MC) {
                ptrdiff_t mb = M - i < FG_MC ? M - i : FG_MC;
                FG_FN(pack_a)(abuf, a + i * rsa + pc * csa, rsa, csa, mb, kc);
                for (j = 0; j < nb; j += FG_NR)
                    FG_FN(panel)(1, nb - j < FG_NR ? nb - j : FG_NR, mb, kc, abuf, kc, 1, 1, 0, bbuf + j * kc,
                                 FG_NR, pc ? 1 : beta, c + i * ldc + jc + j, ldc);
            }
        }
    }
    free(mem);
}

#undef FG_INLINE
#undef FG_NR
#undef FG_TILES
#undef FG_T
#undef FG_V
#undef FG_VL
#undef FG_M
#undef FG_MASK
#undef FG_FN
#undef FG_TARGET
#undef FG_MR
#undef FG_HEIGHTS
#undef FG_KC
#undef FG_MC
#undef FG_NC
#undef FG_PORTABLE
#undef FG_NARROW
#undef FG_ZERO
#undef FG_SET1
#undef FG_LOAD
#undef FG_STORE
#undef FG_MLOAD
#undef FG_MSTORE
#undef FG_FMA
