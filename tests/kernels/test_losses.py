"""losses.pyx against its NumPy twin, hand-derived values, finite differences (incl. clips), bad input."""
import numpy as np
import pytest

from fastnn._kernels import _reference as R
from fastnn._kernels import losses as C

from .conftest import arrange, assert_twin, fd_gradient

LOSSES = ("softmax_xent", "sigmoid_bxent", "xent", "bxent", "mse", "mae")
SPARSE_OK = ("softmax_xent", "xent")


def _inputs(loss, B, K, dtype, rng, sparse):
    z = (rng.standard_normal((B, K)) * 3).astype(dtype)
    if loss == "xent":
        z = rng.random((B, K)).astype(dtype) + dtype(0.01)
        z[0, 0] = dtype(1e-9)  # clipped from below once normalised
    elif loss == "bxent":
        z = rng.random((B, K)).astype(dtype)
        z[0, :2] = (dtype(1e-9), dtype(1 - 1e-9)) if K > 1 else dtype(1e-9)
    if sparse:
        y = rng.integers(0, K, B)
    elif loss in ("softmax_xent", "xent"):
        y = rng.random((B, K)).astype(dtype)
        y /= y.sum(axis=1, keepdims=True)
    elif loss in ("sigmoid_bxent", "bxent"):
        y = (rng.random((B, K)) > 0.5).astype(dtype)
    else:
        y = rng.standard_normal((B, K)).astype(dtype)
    return z, y


CASES = [(loss, sparse) for loss in LOSSES for sparse in ((False, True) if loss in SPARSE_OK else (False,))]


@pytest.mark.parametrize("loss,sparse", CASES)
@pytest.mark.parametrize("shape", ((6, 4), (600, 50)))
def test_forward_and_backward_match_reference(loss, sparse, shape, dtype, n_threads, layout, rng):
    z, y = _inputs(loss, *shape, dtype, rng, sparse)
    fwd = getattr(C, loss + "_forward")(arrange(z, layout), arrange(y, layout), n_threads=n_threads)
    assert_twin(fwd, getattr(R, loss + "_forward")(z, y), dtype, loss)
    total, grad = getattr(C, loss + "_backward")(arrange(z, layout), arrange(y, layout), 0.25,
                                                 n_threads=n_threads)
    total_r, grad_r = getattr(R, loss + "_backward")(z, y, 0.25)
    assert isinstance(total, float)
    np.testing.assert_allclose(total, total_r, rtol=1e-12)
    assert_twin(grad, grad_r, dtype, loss)


@pytest.mark.parametrize("loss", LOSSES)
def test_out_buffers_and_thread_independence(loss, dtype, rng):
    z, y = _inputs(loss, 300, 40, dtype, rng, False)
    out = np.empty(300, dtype)
    assert getattr(C, loss + "_forward")(z, y, out=out) is out
    g = np.empty((300, 40), dtype)
    t1, g1 = getattr(C, loss + "_backward")(z, y, 1.0, g, n_threads=1)
    assert g1 is g
    t2, g2 = getattr(C, loss + "_backward")(z, y, 1.0, n_threads=2)
    assert t1 == t2  # row-order sums: bitwise independent of the thread count
    np.testing.assert_array_equal(g1, g2)


def test_hand_derived_values(dtype):
    K = 7
    z = np.full((3, K), 2.5, dtype)
    np.testing.assert_allclose(C.softmax_xent_forward(z, np.array([0, 3, 6])), np.log(K), rtol=1e-6)
    total, g = C.softmax_xent_backward(z, np.array([0, 3, 6]), scale=1 / 3)
    np.testing.assert_allclose(total, 3 * np.log(K), rtol=1e-6)
    np.testing.assert_allclose(g[0], (np.full(K, 1 / K) - np.eye(K)[0]) / 3, rtol=1e-6, atol=1e-7)
    p = np.full((2, 4), 0.25, dtype)
    np.testing.assert_allclose(C.xent_forward(p, np.array([1, 2])), np.log(4), rtol=1e-6)
    np.testing.assert_allclose(C.sigmoid_bxent_forward(np.zeros((2, 3), dtype), np.ones((2, 3), dtype)),
                               np.log(2), rtol=1e-6)
    np.testing.assert_allclose(C.bxent_forward(np.full((1, 2), 0.5, dtype), np.zeros((1, 2), dtype)),
                               np.log(2), rtol=1e-6)
    yp, yt = np.array([[1.0, 2.0]], dtype), np.array([[0.0, 4.0]], dtype)
    np.testing.assert_allclose(C.mse_forward(yp, yt), [2.5])
    np.testing.assert_allclose(C.mae_forward(yp, yt), [1.5])
    np.testing.assert_allclose(C.mae_backward(yp, np.array([[1.0, 0.0]], dtype))[1], [[0.0, 0.5]])  # sign(0)=0
    huge = np.array([[1e4, -1e4, 0.0]], dtype)  # no overflow anywhere
    assert np.isfinite(C.softmax_xent_forward(huge, np.array([1]))).all()
    assert np.isfinite(C.sigmoid_bxent_backward(huge, np.array([[0.0, 1.0, 1.0]], dtype))[1]).all()


@pytest.mark.parametrize("loss,sparse", CASES)
@pytest.mark.parametrize("impl", ("compiled", "reference"))
def test_backward_finite_differences(loss, sparse, impl):
    """grad = d(scale * loss_sum)/d input, in float64, including the clipped entries."""
    K = C if impl == "compiled" else R
    rng = np.random.default_rng(11)
    z, y = _inputs(loss, 4, 5, np.float64, rng, sparse)
    if loss == "mae":
        z[np.abs(z - y) < 0.05] += 0.2  # away from the kink
    total, grad = getattr(K, loss + "_backward")(z, y, 0.7)
    fwd = getattr(K, loss + "_forward")
    np.testing.assert_allclose(total, fwd(z, y).sum(), rtol=1e-12)
    f = lambda: 0.7 * fwd(z, y).sum()  # noqa: E731
    numeric = fd_gradient(f, z, eps=1e-6 if loss in ("xent", "bxent") else 1e-4)
    if loss in ("xent", "bxent"):  # the clip region is 1e-7 wide: tiny steps on the clipped entries
        clipped = np.zeros(z.shape, bool)
        clipped[0, 0] = True
        clipped[0, 1] = loss == "bxent"
        numeric[clipped] = fd_gradient(f, z, eps=3e-9)[clipped]
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7)
    if loss == "bxent":
        assert grad[0, 0] == 0 and grad[0, 1] == 0  # both clip paths: zero gradient


def test_bad_input():
    z = np.zeros((3, 4))
    with pytest.raises(ValueError, match="`y_true` holds class ids that must be in \\[0, 4\\).*4"):
        C.softmax_xent_backward(z, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match="`y_true` holds class ids.*-1"):
        C.xent_forward(z + 0.25, np.array([0, -1, 2]))
    with pytest.raises(ValueError, match="`y_true` must be finite"):
        C.mse_forward(z, np.array([[0, 1, np.nan, 0]] * 3))
    with pytest.raises(ValueError, match="`y_true` must have shape \\(3, 4\\).*\\(3, 1\\)"):
        C.mse_forward(z, np.zeros((3, 1)))
    with pytest.raises(ValueError, match="`logits` must be a float32 or float64 array.*int64"):
        C.softmax_xent_forward(np.zeros((3, 4), np.int64), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="`y_true` holds class ids but has non-integer values"):
        C.softmax_xent_forward(z, np.array([0.5, 1, 2]))
    with pytest.raises(ValueError, match="`dlogits` must be an array of shape \\(3, 4\\)"):
        C.softmax_xent_backward(z, np.array([0, 1, 2]), dlogits=np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="`scale` must be a real number"):
        C.mse_backward(z, z, scale="x")


# ----------------------------------------------------------------------------- per-sample weights
@pytest.mark.parametrize("loss,sparse", CASES)
def test_sample_weight_matches_reference(loss, sparse, dtype, n_threads, layout, rng):
    z, y = _inputs(loss, 300, 7, dtype, rng, sparse)
    w = rng.random(300) * 3
    w[:5] = 0  # zero weights: no loss, no gradient
    total, grad = getattr(C, loss + "_backward")(arrange(z, layout), arrange(y, layout), 0.25,
                                                 sample_weight=arrange(w, layout), n_threads=n_threads)
    total_r, grad_r = getattr(R, loss + "_backward")(z, y, 0.25, sample_weight=w)
    np.testing.assert_allclose(total, total_r, rtol=1e-12)
    assert_twin(grad, grad_r, dtype, loss)
    assert not grad[:5].any()
    # the definition: sum of weighted per-sample losses, rows of the unweighted gradient times w
    rows = getattr(C, loss + "_forward")(z, y).astype(np.float64)
    # (sigmoid_bxent sums its float64 row losses, the forward rounds them to the dtype)
    np.testing.assert_allclose(total, (rows * w).sum(), rtol=1e-6 if dtype == np.float32 else 1e-10)
    _, plain = getattr(C, loss + "_backward")(z, y, 0.25)
    np.testing.assert_allclose(grad, plain * w[:, None].astype(dtype), rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-7)
    ones_total, ones_grad = getattr(C, loss + "_backward")(z, y, 0.25, sample_weight=np.ones(300))
    np.testing.assert_array_equal(ones_grad, plain)


def test_sample_weight_gradient_by_finite_differences(rng):
    z, y = _inputs("softmax_xent", 4, 5, np.float64, rng, True)
    w = np.array([0.5, 2.0, 0.0, 1.5])
    _, grad = C.softmax_xent_backward(z, y, 0.5, sample_weight=w)
    numeric = fd_gradient(lambda: 0.5 * float((C.softmax_xent_forward(z, y) * w).sum()), z)
    np.testing.assert_allclose(grad, numeric, rtol=1e-7, atol=1e-9)


def test_sample_weight_bad_input():
    z = np.zeros((3, 4))
    with pytest.raises(ValueError, match="`sample_weight` must be a numeric array of shape \\(3,\\).*\\(2,\\)"):
        C.mse_backward(z, z, sample_weight=np.ones(2))
    with pytest.raises(ValueError, match="`sample_weight` must be finite"):
        C.mse_backward(z, z, sample_weight=np.array([1.0, np.nan, 1.0]))


# ----------------------------------------------------------------------------- the clip in the tensor's dtype
@pytest.mark.parametrize("loss", ("bxent", "xent"))
def test_saturated_probabilities_clip_in_the_dtype(loss, dtype):
    """Keras clips to [eps, 1 - eps] in the tensor's dtype (keras/src/backend/numpy/nn.py): in float32 the upper
    bound is 0.99999988, so y_pred = 1 for a 0 label costs -log(1.19e-7) = 15.942 (float64: 16.118).
    Compiled and twin agree, forward and backward, NaN included."""
    t = np.dtype(dtype).type
    lo, hi = float(t(1e-7)), float(t(1) - t(1e-7))
    P = np.array([[1.0, 1.0], [1.0, 0.0], [np.nan, 0.5]], dtype)
    Y = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]], dtype)
    got = getattr(C, loss + "_forward")(P, Y)
    want = getattr(R, loss + "_forward")(P, Y)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[:2], want[:2], rtol=1e-6 if dtype == np.float32 else 1e-12)
    if loss == "bxent":
        np.testing.assert_allclose(got[0], (-np.log(hi) - np.log1p(-hi)) / 2, rtol=1e-6)
        np.testing.assert_allclose(got[1], (-np.log(hi) - np.log1p(-lo)) / 2, rtol=1e-6)
        if dtype == np.float32:
            np.testing.assert_allclose(-np.log1p(-hi), 15.942385, rtol=1e-6)
    else:  # p / sum(p) = [0.5, 0.5] for row 0; [1, 0] for row 1 costs -log(hi)
        np.testing.assert_allclose(got[1], -np.log(hi), rtol=1e-6)
    total_c, grad_c = getattr(C, loss + "_backward")(P[:2], Y[:2], 0.5)
    total_r, grad_r = getattr(R, loss + "_backward")(P[:2], Y[:2], 0.5)
    np.testing.assert_allclose(total_c, total_r, rtol=1e-6 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(grad_c, grad_r, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-7)
