"""csrc/fastnn_gemm.h (the GEMM behind dense.pyx and the fused engine), float32 and float64.

The contract: every element of C is one chain of fused multiply-adds over k = 0..K-1 in order,
from 0 (beta 0) or from C (beta 1), whatever tile, K block, row range or column range computes
it, on every clone. So the tests compare BITS, through the private hooks of dense.pyx:
- the portable clone is the plain fmaf/fma chain (C99 fma, correctly rounded): the scalar
  reference. The AVX2 and AVX-512 clones, each on its direct and its blocked (packed) path,
  must equal it bit for bit, over shapes at every tile and block edge, every stride form of A,
  beta 0 and 1, and C and B wider than the product (ldc > N);
- a product computed in row ranges, column ranges or K ranges (beta 1 continuing the chain)
  must equal the whole product bit for bit;
- and, independently of the C code, the results must be close to a float64 (longdouble for
  float64) NumPy product, and NaN/inf must appear where NumPy's element-wise sums put them.
The first tests reach the float32 GEMM through dense_forward/dense_backward, as the layers do.
"""
import numpy as np
import pytest

from fastnn._kernels import _reference as R
from fastnn._kernels import dense as C

ROWS = (1, 2, 5, 6, 7, 12, 13, 32)
COLS = (1, 7, 8, 9, 15, 16, 17, 24, 31, 33, 100)


def _tol(K):
    return {"rtol": 2e-5, "atol": 2e-6 * np.sqrt(max(K, 1))}


@pytest.mark.parametrize("M", ROWS)
@pytest.mark.parametrize("N", COLS)
@pytest.mark.parametrize("K", (1, 37, 300))
def test_product_matches_numpy_at_every_tile_edge(M, N, K, rng):
    X = rng.standard_normal((M, K)).astype(np.float32)
    W = rng.standard_normal((K, N)).astype(np.float32)
    np.testing.assert_allclose(C.dense_forward(X, W, None, n_threads=1), R.dense_forward(X, W, None), **_tol(K))


@pytest.mark.parametrize("M", (1, 5, 6, 7, 300))
@pytest.mark.parametrize("N", (3, 8, 17, 100))
def test_transposed_accumulating_form_matches_numpy(M, N, rng):
    # dense_backward: dW (I, O) += X^T (I, B) dZ (B, O), with I = M and B = 32 as the sum's length
    B = 32
    X = rng.standard_normal((B, M)).astype(np.float32)
    dZ = rng.standard_normal((B, N)).astype(np.float32)
    W = rng.standard_normal((M, N)).astype(np.float32)
    dW0 = rng.standard_normal((M, N)).astype(np.float32)
    dW, dWr = dW0.copy(), dW0.copy()
    C.dense_backward(dZ, X, W, dW, None, compute_dX=False, n_threads=1)
    R.dense_backward(dZ, X, W, dWr, None)
    np.testing.assert_allclose(dW, dWr, **_tol(B))


def test_empty_sum_gives_zeros_and_keeps_accumulator(rng):
    X = np.zeros((4, 0), np.float32)
    W = np.zeros((0, 9), np.float32)
    np.testing.assert_array_equal(C.dense_forward(X, W, None), np.zeros((4, 9), np.float32))


@pytest.mark.parametrize("N", (100, 128, 130))
def test_columns_do_not_depend_on_the_split(N, rng):
    # every element sums k = 0..K-1 in order whatever tile computes it, so a column block computed
    # alone (another thread's share, an edge tile) is BITWISE the same as inside the whole product
    X = rng.standard_normal((32, 784)).astype(np.float32)
    W = rng.standard_normal((784, N)).astype(np.float32)
    whole = C.dense_forward(X, W, None, n_threads=1)
    # (blocks narrower than 8 columns are reached only inside a wider matrix: the engine's
    # 20-unit layer split 16 + 4 between threads, tests/kernels/test_mlp.py)
    for c0, c1 in ((0, 48), (48, N), (16, 24), (N - 9, N), (3, 14)):
        part = C.dense_forward(X, np.ascontiguousarray(W[:, c0:c1]), None, n_threads=1)
        np.testing.assert_array_equal(part, whole[:, c0:c1])
    # (a single row goes to the zero-skipping one-row kernel, csrc/fastnn_kernels.h section 5)
    for r0, r1 in ((0, 6), (6, 8), (5, 32), (30, 32)):
        np.testing.assert_array_equal(C.dense_forward(X[r0:r1].copy(), W, None, n_threads=1), whole[r0:r1])


def test_one_and_two_threads_are_bitwise_equal(dtype, rng):
    # float64 as well: gemm_rm sends it to fastnn_gemm_f64 for layers of 16 units or more
    X = rng.standard_normal((64, 300)).astype(dtype)
    W = rng.standard_normal((300, 130)).astype(dtype)
    dZ = rng.standard_normal((64, 130)).astype(dtype)
    np.testing.assert_array_equal(C.dense_forward(X, W, None, n_threads=1), C.dense_forward(X, W, None, n_threads=2))
    dW1, dW2 = np.zeros_like(W), np.zeros_like(W)
    C.dense_backward(dZ, X, W, dW1, None, compute_dX=False, n_threads=1)
    C.dense_backward(dZ, X, W, dW2, None, compute_dX=False, n_threads=2)
    np.testing.assert_array_equal(dW1, dW2)


def test_non_finite_values_propagate(rng):
    X = rng.standard_normal((7, 20)).astype(np.float32)
    W = rng.standard_normal((20, 19)).astype(np.float32)
    X[2, 3] = np.inf
    X[4, 5] = np.nan
    out = C.dense_forward(X, W, None, n_threads=1)
    ref = R.dense_forward(X, W, None)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(out), np.isinf(ref))


# ---------------------------------------------------------------- the GEMM itself, through dense._gemm
ISAS = ("portable", "avx2", "avx512")


def _available_isas():
    try:
        return [isa for isa in ISAS if C._gemm_isa(isa) == isa]
    finally:
        C._gemm_isa("avx512")


AVAILABLE = _available_isas()
FAST_ISAS = [isa for isa in AVAILABLE if isa != "portable"]
TILE_EDGES = (1, 2, 5, 6, 7, 11, 12, 13, 17, 23, 24, 25)  # AVX2 tiles of 6 rows, AVX-512 of 12
COL_EDGES = (1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 100)  # vectors of 4/8/16, panels of 8/16/32
K_EDGES = (0, 1, 2, 17, 255, 256, 257)  # K blocks of 256 on the blocked path


@pytest.fixture(autouse=True)
def _restore_gemm_hooks():
    yield
    C._gemm_isa("avx512")
    C._gemm_path("auto")


def _gemm(A, B, C0, beta, isa="avx512", path="auto"):
    assert C._gemm_isa(isa) == isa
    C._gemm_path(path)
    out = C0.copy()
    return C._gemm(A, B, out, beta)


def assert_same_bits(actual, expected, err_msg=""):
    """Bit for bit (+0 and -0 differ); NaNs must be at the same places (their payloads may differ)."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype, err_msg
    nan = np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(actual), nan, err_msg=err_msg)
    utype = np.uint32 if actual.dtype == np.float32 else np.uint64
    np.testing.assert_array_equal(np.where(nan, 0, actual.view(utype)), np.where(nan, 0, expected.view(utype)),
                                  err_msg=err_msg)


def _operands(rng, M, N, K, dtype, form, wide=0):
    """A (M, K) in the given form, B (K, N), C (M, N); `wide` extra columns make B and C views of
    wider arrays (ldb, ldc > N)."""
    if form == "X":  # forward: rows of a row-major X (rsa = ld, csa = 1)
        A = rng.standard_normal((M, K + wide)).astype(dtype)[:, :K]
    elif form == "XT":  # weight gradient: X^T (rsa = 1, csa = ld)
        A = rng.standard_normal((K, M + wide)).astype(dtype)[:, :M].T
    else:  # neither stride 1 (packed whatever the shape)
        A = rng.standard_normal((2 * M + 1, 3 * K + 1)).astype(dtype)[1::2, 1::3]
    B = rng.standard_normal((K, N + wide)).astype(dtype)[:, :N]
    C0 = rng.standard_normal((M, N + wide)).astype(dtype)[:, :N]
    return A, B, C0


def _numpy_product(A, B, C0, beta):
    wide = np.longdouble if A.dtype == np.float64 else np.float64
    out = A.astype(wide) @ B.astype(wide)
    return out + C0 if beta else out


@pytest.mark.parametrize("form", ("X", "XT", "strided"))
@pytest.mark.parametrize("beta", (0, 1))
def test_clones_and_paths_give_the_portable_fma_chain_bit_for_bit(dtype, form, beta, rng):
    shapes = [(M, N, K) for M in TILE_EDGES for N in COL_EDGES for K in (1, 17)]
    shapes += [(M, N, K) for M in (1, 13, 25) for N in (9, 33) for K in K_EDGES]
    shapes += [(241, 40, 300), (121, 520, 30), (7, 1030, 5), (30, 130, 513)]  # row/column/K blocks
    for M, N, K in shapes:
        A, B, C0 = _operands(rng, M, N, K, dtype, form, wide=(M + N) % 3)
        ref = _gemm(A, B, C0, beta, "portable")
        for isa in FAST_ISAS:
            for path in ("direct", "blocked"):
                assert_same_bits(_gemm(A, B, C0, beta, isa, path), ref, f"{isa} {path} M={M} N={N} K={K}")


@pytest.mark.parametrize("form", ("X", "XT"))
def test_shapes_that_pick_the_blocked_path_by_themselves(dtype, form, rng):
    # (the forced-path test above uses small shapes; these cross the automatic choice, K blocks
    # and the packed B's column blocks, 1024 floats / 512 doubles)
    for M, N, K in ((600, 70, 40), (40, 1100, 260), (130, 530, 300)):
        A, B, C0 = _operands(rng, M, N, K, dtype, form)
        ref = _gemm(A, B, C0, 1, "portable")
        for isa in FAST_ISAS:
            assert_same_bits(_gemm(A, B, C0, 1, isa), ref, f"{isa} M={M} N={N} K={K}")


@pytest.mark.parametrize("isa", AVAILABLE)
@pytest.mark.parametrize("form", ("X", "XT", "strided"))
def test_close_to_a_wider_numpy_product(dtype, isa, form, rng):
    tol = {"rtol": 2e-5, "atol": 1e-4} if dtype == np.float32 else {"rtol": 1e-13, "atol": 1e-12}
    for (M, N, K), beta in (((33, 47, 300), 0), ((64, 256, 256), 1), ((5, 600, 40), 1), ((300, 9, 513), 0)):
        A, B, C0 = _operands(rng, M, N, K, dtype, form, wide=2)
        np.testing.assert_allclose(_gemm(A, B, C0, beta, isa), _numpy_product(A, B, C0, beta), **tol)


@pytest.mark.parametrize("isa", AVAILABLE)
def test_empty_products(dtype, isa, rng):
    for M, N in ((0, 5), (5, 0), (0, 0)):
        A, B, C0 = _operands(rng, M, N, 4, dtype, "X")
        assert _gemm(A, B, C0, 0, isa).shape == (M, N)
    A, B, C0 = _operands(rng, 7, 19, 0, dtype, "X")  # K = 0: empty sums
    np.testing.assert_array_equal(_gemm(A, B, C0, 0, isa), np.zeros((7, 19), dtype))
    assert_same_bits(_gemm(A, B, C0, 1, isa), C0)


@pytest.mark.parametrize("isa", FAST_ISAS)
@pytest.mark.parametrize("form", ("X", "XT"))
@pytest.mark.parametrize("shape", ((32, 100, 784), (64, 300, 130), (600, 130, 40), (40, 1100, 300)),
                         ids=lambda s: "x".join(map(str, s)))
def test_row_column_and_k_splits_give_the_same_bits(dtype, isa, form, shape, rng):
    # a thread's share of rows or columns, any boundaries (unaligned, narrower than a vector), or
    # the sum over k cut in two with beta 1 continuing it: the same chain, so the same bits
    M, N, K = shape
    A, B, C0 = _operands(rng, M, N, K, dtype, form)
    whole = _gemm(A, B, C0, 0, isa)
    for r0, r1 in ((0, 1), (0, 6), (5, 18), (1, M - 1), (M // 2, M), (M - 3, M)):
        part = _gemm(A[r0:r1], B, C0[r0:r1], 0, isa)
        assert_same_bits(part, whole[r0:r1], f"rows {r0}:{r1}")
    for c0, c1 in ((0, 1), (0, 16), (3, 14), (16, 48), (5, N - 2), (N - 9, N), (N - 1, N)):
        out = C0.copy()
        C._gemm_isa(isa)
        C._gemm(A, B[:, c0:c1], out[:, c0:c1], 0)  # views: ldb = ldc = N
        assert_same_bits(out[:, c0:c1], whole[:, c0:c1], f"columns {c0}:{c1}")
        assert_same_bits(out[:, :c0], C0[:, :c0])  # the neighbours are untouched
        assert_same_bits(out[:, c1:], C0[:, c1:])
    for k1 in (1, 100, K // 2, K - 1):
        first = _gemm(A[:, :k1], B[:k1], C0, 0, isa)
        assert_same_bits(_gemm(A[:, k1:], B[k1:], first, 1, isa), whole, f"k split at {k1}")


@pytest.mark.parametrize("isa", AVAILABLE)
@pytest.mark.parametrize("path", ("direct", "blocked"))
def test_nan_and_inf_propagate_as_in_numpy(dtype, isa, path, rng):
    M, N, K = 13, 37, 20
    A, B, C0 = _operands(rng, M, N, K, dtype, "X")
    A = A.copy()
    B = B.copy()
    A[2, 3] = np.nan
    A[4, 5] = np.inf
    B[5, 7] = 0.0  # inf * 0: NaN in C[4, 7] only
    A[6, 7] = -np.inf
    B[7, :4] = -np.inf  # C[6, 0:4] = +inf, C[6, 4:] = -inf ... unless B[7] adds -inf to +inf
    B[9, 30] = np.nan  # NaN down column 30
    B[11, 20] = np.inf
    A[8, 11] = 0.0  # 0 * inf: NaN at C[8, 20]
    with np.errstate(invalid="ignore", over="ignore"):
        expected = np.einsum("ik,kj->ij", A.astype(np.float64), B.astype(np.float64), optimize=False)
    out = _gemm(A, B, C0, 0, isa, path)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_array_equal(np.isposinf(out), np.isposinf(expected))
    np.testing.assert_array_equal(np.isneginf(out), np.isneginf(expected))
    assert np.isnan(out[2]).all() and np.isnan(out[:, 30]).all() and np.isnan(out[4, 7])
    assert_same_bits(out, _gemm(A, B, C0, 0, "portable"))


def test_hooks_reject_unknown_names_and_bad_arguments():
    with pytest.raises(ValueError, match="level"):
        C._gemm_isa("sse2")
    with pytest.raises(ValueError, match="path"):
        C._gemm_path("packed")
    A = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="one dtype"):
        C._gemm(A, np.ones((4, 5)), np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match="shapes"):
        C._gemm(A, np.ones((5, 5), np.float32), np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match="unit column strides"):
        C._gemm(A, np.ones((4, 10), np.float32)[:, ::2], np.zeros((3, 5), np.float32))
    assert C._gemm_isa() in AVAILABLE and C._gemm_path() == "auto"
