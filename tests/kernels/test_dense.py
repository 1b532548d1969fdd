"""dense.pyx (dense_forward, dense_backward, gather_rows) against its NumPy twin."""
import numpy as np
import pytest

from fastnn._kernels import _reference as R
from fastnn._kernels import dense as C

from .conftest import arrange, assert_twin, fd_gradient

# (B, I, O): tiny (one thread), big enough to split the GEMMs between threads, and one row
# (predict on one sample: its own kernel, csrc section 5; I spans several 64-input blocks)
SHAPES = ((5, 7, 3), (64, 300, 130), (1, 150, 37))


def _tol32(dtype, I):
    # float32 GEMMs of length I in a different order than NumPy's BLAS: allow for the sum's rounding
    return {"rtol": 2e-5, "atol": 2e-6 * np.sqrt(I)} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


@pytest.mark.parametrize("activation", ("linear", "relu", "sigmoid", "tanh", "softmax"))
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bias", (True, False))
def test_forward_matches_reference(activation, shape, bias, dtype, n_threads, layout, rng):
    B, I, O = shape
    X = rng.standard_normal((B, I)).astype(dtype)
    W = (rng.standard_normal((I, O)) / np.sqrt(I)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype) if bias else None
    out = C.dense_forward(arrange(X, layout), arrange(W, layout), None if b is None else arrange(b, layout),
                          activation, n_threads=n_threads)
    assert out.dtype == dtype and out.shape == (B, O)
    np.testing.assert_allclose(out, R.dense_forward(X, W, b, activation), **_tol32(dtype, I))


@pytest.mark.parametrize("zeros", (0.0, 0.8, 1.0))
def test_one_row_forward_skips_zero_inputs(zeros, dtype, rng):
    # MNIST-like rows: the one-row kernel skips zero inputs; the result must not change
    X = rng.standard_normal((1, 784)).astype(dtype)
    X[rng.random(X.shape) < zeros] = 0
    W = (rng.standard_normal((784, 130)) / 28).astype(dtype)
    b = rng.standard_normal(130).astype(dtype)
    for activation in ("linear", "relu", "softmax"):
        np.testing.assert_allclose(C.dense_forward(X, W, b, activation), R.dense_forward(X, W, b, activation),
                                   **_tol32(dtype, 784))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("with_db", (True, False))
def test_backward_matches_reference(shape, with_db, dtype, n_threads, layout, rng):
    B, I, O = shape
    dZ = rng.standard_normal((B, O)).astype(dtype)
    X = rng.standard_normal((B, I)).astype(dtype)
    W = rng.standard_normal((I, O)).astype(dtype)
    dW0 = rng.standard_normal((I, O)).astype(dtype)  # backward ACCUMULATES
    db0 = rng.standard_normal(O).astype(dtype)
    dW, dWr = dW0.copy(), dW0.copy()
    db, dbr = (db0.copy(), db0.copy()) if with_db else (None, None)
    dX = C.dense_backward(arrange(dZ, layout), arrange(X, layout), arrange(W, layout), dW, db,
                          n_threads=n_threads)
    dXr = R.dense_backward(dZ, X, W, dWr, dbr)
    np.testing.assert_allclose(dX, dXr, **_tol32(dtype, O))
    np.testing.assert_allclose(dW, dWr, **_tol32(dtype, B))
    if with_db:
        assert_twin(db, dbr, dtype)


def test_backward_without_dx_and_with_out(dtype, rng):
    dZ = rng.standard_normal((4, 3)).astype(dtype)
    X = rng.standard_normal((4, 6)).astype(dtype)
    W = rng.standard_normal((6, 3)).astype(dtype)
    dW = np.zeros((6, 3), dtype)
    assert C.dense_backward(dZ, X, W, dW, None, compute_dX=False) is None
    np.testing.assert_allclose(dW, X.T @ dZ, rtol=1e-5)
    buf = np.empty((4, 6), dtype)
    assert C.dense_backward(dZ, X, W, np.zeros((6, 3), dtype), None, dX=buf) is buf
    np.testing.assert_allclose(buf, dZ @ W.T, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation", ("linear", "relu", "sigmoid", "tanh", "softmax"))
@pytest.mark.parametrize("impl", ("compiled", "reference"))
def test_gradients_finite_differences(activation, impl):
    """dense_backward(activation_backward(G, Y)) against d/d{X,W,b} sum(G * dense_forward(X, W, b))."""
    from fastnn._kernels import activations
    K = C if impl == "compiled" else R
    act_bwd = activations.activation_backward if impl == "compiled" else R.activation_backward
    rng = np.random.default_rng(7)
    X, W, b = rng.standard_normal((4, 5)), rng.standard_normal((5, 3)) * 0.5, rng.standard_normal(3) * 0.1
    G = rng.standard_normal((4, 3))
    if activation == "relu":  # keep every pre-activation away from the kink
        Z = X @ W + b
        b += np.where(np.abs(Z) < 0.1, 0.3, 0.0).max(axis=0)
    Y = K.dense_forward(X, W, b, activation)
    dZ = act_bwd(G, Y, activation)
    dW, db = np.zeros_like(W), np.zeros_like(b)
    dX = K.dense_backward(dZ, X, W, dW, db)
    f = lambda: (G * K.dense_forward(X, W, b, activation)).sum()  # noqa: E731
    for analytic, param in ((dX, X), (dW, W), (db, b)):
        np.testing.assert_allclose(analytic, fd_gradient(f, param), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("src_dtype", (np.float32, np.float64, np.int64, np.uint8))
def test_gather_rows_matches_reference(src_dtype, n_threads, layout, rng):
    X = (rng.standard_normal((50, 3, 4)) * 10).astype(src_dtype)
    index = rng.integers(0, 50, 37)
    out = C.gather_rows(arrange(X, layout), index, n_threads=n_threads)
    np.testing.assert_array_equal(out, R.gather_rows(X, index))
    assert out.dtype == X.dtype
    y = np.arange(50)
    np.testing.assert_array_equal(C.gather_rows(y, index.astype(np.int32)), y[index])
    big = rng.standard_normal((3000, 100)).astype(np.float32)
    idx = rng.integers(0, 3000, 2000)
    np.testing.assert_array_equal(C.gather_rows(big, idx, n_threads=n_threads), big[idx])


def test_bad_input():
    X, W = np.zeros((4, 3)), np.zeros((3, 2))
    with pytest.raises(ValueError, match="`W` must have shape \\(3, units\\)"):
        C.dense_forward(X, np.zeros((4, 2)), None)
    with pytest.raises(ValueError, match="`W` must have dtype float64.*float32"):
        C.dense_forward(X, W.astype(np.float32), None)
    with pytest.raises(ValueError, match="`b` must have shape \\(2,\\)"):
        C.dense_forward(X, W, np.zeros(3))
    with pytest.raises(ValueError, match="`dW` must be a float64 array of shape \\(3, 2\\)"):
        C.dense_backward(np.zeros((4, 2)), X, W, np.zeros((2, 3)), None)
    ro = np.zeros((3, 2))
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="`dW` is accumulated in place"):
        C.dense_backward(np.zeros((4, 2)), X, W, ro, None)
    with pytest.raises(ValueError, match="`index` holds row ids that must be in \\[0, 5\\).*7"):
        C.gather_rows(np.zeros((5, 2)), np.array([0, 7]))
    with pytest.raises(ValueError, match="`index` must be a 1-D integer array"):
        C.gather_rows(np.zeros((5, 2)), np.array([0.0, 1.0]))
