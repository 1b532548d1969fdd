"""csrc/fastnn_gemm.h (the float32 GEMM behind dense.pyx and the fused engine) against NumPy.

Reached through dense_forward (C = X W) and dense_backward (dW += X^T dZ: the
transposed-A, accumulating form). Shapes cover every register-tile edge: rows
1..13 (tiles of 6), columns 8..100 (tiles of 16 and 8, the overlapping last
8-wide tile) and K of 0, 1 and a few hundred; matrices narrower than 8 columns
go to BLAS (checked here against NumPy too).
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


def test_one_and_two_threads_are_bitwise_equal(rng):
    X = rng.standard_normal((64, 300)).astype(np.float32)
    W = rng.standard_normal((300, 130)).astype(np.float32)
    np.testing.assert_array_equal(C.dense_forward(X, W, None, n_threads=1), C.dense_forward(X, W, None, n_threads=2))


def test_non_finite_values_propagate(rng):
    X = rng.standard_normal((7, 20)).astype(np.float32)
    W = rng.standard_normal((20, 19)).astype(np.float32)
    X[2, 3] = np.inf
    X[4, 5] = np.nan
    out = C.dense_forward(X, W, None, n_threads=1)
    ref = R.dense_forward(X, W, None)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(out), np.isinf(ref))
