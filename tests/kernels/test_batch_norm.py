"""batch_norm.pyx against its NumPy twin, hand values, finite differences and bad input."""
import numpy as np
import pytest

from fastnn._kernels import _reference as R
from fastnn._kernels import batch_norm as C

from .conftest import arrange, assert_twin, fd_gradient

SHAPES = ((7, 13), (300, 150))  # the second is big enough to use threads and spans 3 feature blocks
EPS = 1e-3


def _params(rng, F, dtype, affine):
    if not affine:
        return None, None
    return (rng.uniform(0.5, 2.0, F).astype(dtype), rng.standard_normal(F).astype(dtype))


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_train_matches_reference(shape, affine, dtype, n_threads, layout, rng):
    X = (rng.standard_normal(shape) * 3 + 5).astype(dtype)
    gamma, beta = _params(rng, shape[1], dtype, affine)
    out, mean, var = C.batch_norm_forward_train(arrange(X, layout), gamma, beta, EPS, n_threads=n_threads)
    r_out, r_mean, r_var = R.batch_norm_forward_train(X, gamma, beta, EPS)
    assert mean.dtype == var.dtype == np.float64
    np.testing.assert_allclose(mean, r_mean, rtol=1e-12)
    np.testing.assert_allclose(var, r_var, rtol=1e-12)
    assert_twin(out, r_out, dtype)


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_infer_matches_reference(shape, dtype, n_threads, layout, rng):
    X = rng.standard_normal(shape).astype(dtype)
    F = shape[1]
    mm, mv = rng.standard_normal(F).astype(dtype), rng.uniform(0.1, 3, F).astype(dtype)
    gamma, beta = _params(rng, F, dtype, True)
    out = C.batch_norm_forward_infer(arrange(X, layout), arrange(mm, layout), arrange(mv, layout), gamma, beta,
                                     EPS, n_threads=n_threads)
    assert_twin(out, R.batch_norm_forward_infer(X, mm, mv, gamma, beta, EPS), dtype)
    no_affine = C.batch_norm_forward_infer(X, mm, mv, None, None, EPS, n_threads=n_threads)
    assert_twin(no_affine, R.batch_norm_forward_infer(X, mm, mv, None, None, EPS), dtype)


@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_matches_reference(shape, affine, training, dtype, n_threads, layout, rng):
    X = (rng.standard_normal(shape) * 2 - 1).astype(dtype)
    dY = rng.standard_normal(shape).astype(dtype)
    gamma, _ = _params(rng, shape[1], dtype, affine)
    _, mean, var = R.batch_norm_forward_train(X, gamma, None, EPS)
    dg0, db0 = rng.standard_normal(shape[1]).astype(dtype), rng.standard_normal(shape[1]).astype(dtype)
    dg_c, db_c, dg_r, db_r = dg0.copy(), db0.copy(), dg0.copy(), db0.copy()
    dX_c = C.batch_norm_backward(arrange(dY, layout), arrange(X, layout), mean, var, gamma, EPS, dg_c, db_c,
                                 training=training, n_threads=n_threads)
    dX_r = R.batch_norm_backward(dY, X, mean, var, gamma, EPS, dg_r, db_r, training=training)
    assert_twin(dX_c, dX_r, dtype)
    assert_twin(dg_c, dg_r, dtype)
    assert_twin(db_c, db_r, dtype)
    # The parameter gradients were ADDED to the (non-zero) buffers.
    assert_twin(db_c, db0 + dY.astype(np.float64).sum(axis=0).astype(dtype), dtype)


def test_backward_without_dX_or_parameter_grads(dtype, rng):
    X, dY = rng.standard_normal((6, 4)).astype(dtype), rng.standard_normal((6, 4)).astype(dtype)
    _, mean, var = C.batch_norm_forward_train(X, None, None, EPS)
    dg, db = np.zeros(4, dtype), np.zeros(4, dtype)
    assert C.batch_norm_backward(dY, X, mean, var, None, EPS, dg, db, compute_dX=False) is None
    assert_twin(db, dY.astype(np.float64).sum(axis=0).astype(dtype), dtype)
    dX = C.batch_norm_backward(dY, X, mean, var, None, EPS, None, None)
    assert_twin(dX, R.batch_norm_backward(dY, X, mean, var, None, EPS, None, None), dtype)
    out = np.empty_like(X)
    assert C.batch_norm_backward(dY, X, mean, var, None, EPS, None, None, dX=out) is out


def test_hand_values(dtype):
    # One feature with values 1, 2, 3, 6: mean 3, biased variance (4 + 1 + 0 + 9) / 4 = 3.5.
    X = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [6.0, 5.0]], dtype=dtype)
    out, mean, var = C.batch_norm_forward_train(X, np.array([2.0, 1.0], dtype), np.array([0.5, -1.0], dtype), 0.0)
    np.testing.assert_array_equal(mean, [3.0, 5.0])
    np.testing.assert_array_equal(var, [3.5, 0.0])
    np.testing.assert_allclose(out[:, 0], 2 * (X[:, 0] - 3) / np.sqrt(3.5) + 0.5, rtol=1e-6)
    # A constant feature with epsilon > 0 normalizes to beta (no division by zero).
    out, _, _ = C.batch_norm_forward_train(X, None, np.array([0.0, -1.0], dtype), 1e-3)
    np.testing.assert_array_equal(out[:, 1], -1.0)
    np.testing.assert_allclose(out[:, 0].astype(np.float64).mean(), 0, atol=1e-6)
    np.testing.assert_allclose(out[:, 0].astype(np.float64).var(), 3.5 / 3.501, rtol=1e-5)
    # Inference with moving mean 0 and variance 1 is (nearly) the identity.
    ident = C.batch_norm_forward_infer(X, np.zeros(2, dtype), np.ones(2, dtype), None, None, 1e-3)
    np.testing.assert_allclose(ident, X / np.sqrt(1.001), rtol=1e-6)
    # Large mean, small spread: x - m is taken before scaling, so float32 keeps the spread.
    big = np.array([[1000.0], [1000.5], [1001.0]], dtype=dtype)
    out, _, _ = C.batch_norm_forward_train(big, None, None, 0.0)
    np.testing.assert_allclose(out[:, 0], [-np.sqrt(1.5), 0, np.sqrt(1.5)], rtol=1e-5, atol=1e-6)


def test_update_moving_matches_keras_formula(dtype, n_threads, rng):
    F = 70
    mm, mv = rng.standard_normal(F).astype(dtype), rng.uniform(0.5, 2, F).astype(dtype)
    mean, var = rng.standard_normal(F), rng.uniform(0.5, 2, F)
    for impl in (C, R):
        a, b = mm.copy(), mv.copy()
        kw = {"n_threads": n_threads} if impl is C else {}
        assert impl.batch_norm_update_moving(a, b, mean, var, 0.9, **kw) is None
        assert_twin(a, (mm.astype(np.float64) * 0.9 + mean * 0.1).astype(dtype), dtype)
        assert_twin(b, (mv.astype(np.float64) * 0.9 + var * 0.1).astype(dtype), dtype)
    a = np.zeros(1, dtype)
    C.batch_norm_update_moving(a, np.ones(1, dtype), np.array([4.0]), np.array([2.0]), 0.99)
    assert a[0] == pytest.approx(0.04, rel=1e-6)  # moving = 0 * 0.99 + 4 * 0.01


def test_results_do_not_depend_on_thread_count(rng):
    X = rng.standard_normal((400, 200)).astype(np.float32)
    dY = rng.standard_normal((400, 200)).astype(np.float32)
    one = C.batch_norm_forward_train(X, None, None, EPS, n_threads=1)
    two = C.batch_norm_forward_train(X, None, None, EPS, n_threads=2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    g1, g2 = np.zeros(200, np.float32), np.zeros(200, np.float32)
    d1 = C.batch_norm_backward(dY, X, one[1], one[2], None, EPS, g1, None, n_threads=1)
    d2 = C.batch_norm_backward(dY, X, one[1], one[2], None, EPS, g2, None, n_threads=2)
    np.testing.assert_array_equal(d1, d2)
    np.testing.assert_array_equal(g1, g2)


@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
@pytest.mark.parametrize("impl", [C, R], ids=["compiled", "reference"])
def test_backward_finite_differences(impl, training):
    """d/d{X, gamma, beta} sum(G * bn(X)) in float64; in training the statistics depend on X."""
    rng = np.random.default_rng(5)
    B, F = 5, 3
    X, G = rng.standard_normal((B, F)), rng.standard_normal((B, F))
    gamma, beta = rng.uniform(0.5, 2, F), rng.standard_normal(F)
    mm, mv = rng.standard_normal(F), rng.uniform(0.5, 2, F)

    def objective():
        if training:
            y = impl.batch_norm_forward_train(X, gamma, beta, EPS)[0]
        else:
            y = impl.batch_norm_forward_infer(X, mm, mv, gamma, beta, EPS)
        return (G * y).sum()

    mean, var = (impl.batch_norm_forward_train(X, gamma, beta, EPS)[1:] if training else (mm, mv))
    dg, db = np.zeros(F), np.zeros(F)
    dX = impl.batch_norm_backward(G, X, mean, var, gamma, EPS, dg, db, training=training)
    for analytic, wrt in ((dX, X), (dg, gamma), (db, beta)):
        np.testing.assert_allclose(analytic, fd_gradient(objective, wrt), rtol=1e-7, atol=1e-9)


def test_bad_input():
    X = np.zeros((4, 3))
    with pytest.raises(ValueError, match="`X` must be a 2-D array.*\\(4, 3, 2\\)"):
        C.batch_norm_forward_train(np.zeros((4, 3, 2)), None, None, EPS)
    with pytest.raises(ValueError, match="`X` must be a float32 or float64.*int64"):
        C.batch_norm_forward_train(np.zeros((4, 3), np.int64), None, None, EPS)
    with pytest.raises(ValueError, match="at least one row"):
        C.batch_norm_forward_train(np.zeros((0, 3)), None, None, EPS)
    with pytest.raises(ValueError, match="`gamma` must have shape \\(3,\\), one value per feature.*\\(4,\\)"):
        C.batch_norm_forward_train(X, np.ones(4), None, EPS)
    with pytest.raises(ValueError, match="`beta` must have dtype float64"):
        C.batch_norm_forward_train(X, None, np.ones(3, np.float32), EPS)
    with pytest.raises(ValueError, match="`epsilon` must be >= 0"):
        C.batch_norm_forward_train(X, None, None, -1.0)
    with pytest.raises(ValueError, match="`epsilon` must be finite"):
        C.batch_norm_forward_infer(X, np.zeros(3), np.ones(3), None, None, float("nan"))
    with pytest.raises(ValueError, match="`moving_var` must have shape \\(3,\\)"):
        C.batch_norm_forward_infer(X, np.zeros(3), np.ones(2), None, None, EPS)
    with pytest.raises(ValueError, match="`moving_mean` and `moving_var` are required"):
        C.batch_norm_forward_infer(X, None, np.ones(3), None, None, EPS)
    with pytest.raises(ValueError, match="`mean` must be a float64 array of shape \\(3,\\).*float32"):
        C.batch_norm_backward(X, X, np.zeros(3, np.float32), np.ones(3), None, EPS, None, None)
    with pytest.raises(ValueError, match="`X` must have the shape of `dY`"):
        C.batch_norm_backward(X, np.zeros((5, 3)), np.zeros(3), np.ones(3), None, EPS, None, None)
    with pytest.raises(ValueError, match="`dgamma` must be a float64 array of shape \\(3,\\) \\(it is accumulated"):
        C.batch_norm_backward(X, X, np.zeros(3), np.ones(3), None, EPS, np.zeros(3, np.float32), None)
    readonly = np.zeros(3)
    readonly.setflags(write=False)
    with pytest.raises(ValueError, match="`dbeta` is accumulated in place and must be a writeable"):
        C.batch_norm_backward(X, X, np.zeros(3), np.ones(3), None, EPS, None, readonly)
    with pytest.raises(ValueError, match="`momentum` must be in \\[0, 1\\]"):
        C.batch_norm_update_moving(np.zeros(3), np.ones(3), np.zeros(3), np.ones(3), 1.5)
    with pytest.raises(ValueError, match="`moving_var` must be a float64 array of shape \\(3,\\)"):
        C.batch_norm_update_moving(np.zeros(3), np.ones(3, np.float32), np.zeros(3), np.ones(3), 0.9)
    with pytest.raises(ValueError, match="`moving_mean` must be a NumPy array updated in place"):
        C.batch_norm_update_moving([0.0, 0.0], np.ones(2), np.zeros(2), np.ones(2), 0.9)
    with pytest.raises(ValueError, match="n_threads"):
        C.batch_norm_forward_train(X, None, None, EPS, n_threads=-2)
