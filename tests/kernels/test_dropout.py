"""dropout.pyx against its NumPy twin, hand values, finite differences and bad input."""
import numpy as np
import pytest

from fastnn._kernels import _reference as R
from fastnn._kernels import dropout as C

from .conftest import arrange, assert_twin, fd_gradient

SHAPES = ((7, 13), (96, 700), (4, 3, 5))  # (96, 700) is big enough to use threads; any rank works


@pytest.mark.parametrize("rate", [0.0, 0.2, 0.5, 1.0])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_reference(rate, shape, dtype, n_threads, layout, rng):
    X = rng.standard_normal(shape).astype(dtype)
    U = rng.random(shape, dtype=dtype)
    out, mask = C.dropout_forward(arrange(X, layout), arrange(U, layout), rate, n_threads=n_threads)
    ref_out, ref_mask = R.dropout_forward(X, U, rate)
    assert mask.dtype == np.uint8 and mask.shape == shape
    np.testing.assert_array_equal(mask, ref_mask)
    assert_twin(out, ref_out, dtype)
    np.testing.assert_array_equal(out, ref_out)  # same operations: bit-identical


@pytest.mark.parametrize("rate", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_matches_reference(rate, shape, dtype, n_threads, layout, rng):
    dY = rng.standard_normal(shape).astype(dtype)
    mask = (rng.random(shape) < 0.6).astype(np.uint8)
    out = C.dropout_backward(arrange(dY, layout), arrange(mask, layout), rate, n_threads=n_threads)
    assert_twin(out, R.dropout_backward(dY, mask, rate), dtype)


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.2, 1 / 3, 0.5, 0.7, 0.999, 1.0])
def test_float32_threshold_is_the_float64_comparison(rate):
    """float32 compares U with the least float >= 1 - rate (it vectorizes): the mask must still be
    exactly U < 1 - rate in float64, for the floats next to that threshold too."""
    keep = np.float32(1.0 - rate)
    U = np.array([np.nextafter(keep, np.float32(-1)), keep, np.nextafter(keep, np.float32(2)), 0.0, 0.5,
                  np.nextafter(np.float32(1), np.float32(0))], dtype=np.float32)
    U = U[(U >= 0) & (U < 1)]
    out, mask = C.dropout_forward(np.ones_like(U), U, rate)
    np.testing.assert_array_equal(mask, U.astype(np.float64) < 1.0 - rate)
    np.testing.assert_array_equal(out, R.dropout_forward(np.ones_like(U), U, rate)[0])
    # and backward/forward zeros are +0.0, as NumPy's where(mask, x, 0), even for negative or inf x
    X = np.array([-1.0, -np.inf, np.nan, 2.0], np.float32)
    dropped, _ = C.dropout_forward(X, np.full(4, 1 - 1e-7, np.float32), rate if rate > 0 else 0.5)
    assert not np.signbit(dropped).any() and not np.isnan(dropped).any()
    assert not np.signbit(C.dropout_backward(X, np.zeros(4, np.uint8), rate)).any()


def test_hand_values(dtype):
    X = np.array([[1.0, -2.0, 3.0, 4.0]], dtype=dtype)
    U = np.array([[0.1, 0.9, 0.74999, 0.75]], dtype=dtype)
    out, mask = C.dropout_forward(X, U, 0.25)  # keep iff U < 0.75; scale 4/3
    np.testing.assert_array_equal(mask, [[1, 0, 1, 0]])
    np.testing.assert_allclose(out, [[4 / 3, 0, 4.0, 0]], rtol=1e-6)
    dX = C.dropout_backward(np.ones_like(X), mask, 0.25)
    np.testing.assert_allclose(dX, [[4 / 3, 0, 4 / 3, 0]], rtol=1e-6)
    out, mask = C.dropout_forward(X, U, 0.0)  # U < 1 always: identity
    np.testing.assert_array_equal(out, X)
    out, mask = C.dropout_forward(X, U * 0, 1.0)  # everything dropped, no division by zero
    assert not mask.any() and np.all(out == 0) and np.isfinite(out).all()


def test_keep_fraction_and_mean_are_preserved(rng):
    X = np.ones((200, 500), np.float32)
    out, mask = C.dropout_forward(X, rng.random(X.shape, dtype=np.float32), 0.2)
    assert mask.mean() == pytest.approx(0.8, abs=0.005)
    assert out.mean() == pytest.approx(1.0, abs=0.01)  # inverted dropout keeps the expectation
    assert set(np.unique(out)) == {np.float32(0), np.float32(1.25)}


def test_out_and_mask_buffers(dtype, rng):
    X = rng.standard_normal((5, 6)).astype(dtype)
    U = rng.random((5, 6), dtype=dtype)
    out, mask = np.empty_like(X), np.empty((5, 6), np.uint8)
    r_out, r_mask = C.dropout_forward(X, U, 0.4, out=out, mask=mask)
    assert r_out is out and r_mask is mask
    dX = np.empty_like(X)
    assert C.dropout_backward(X, mask, 0.4, out=dX) is dX
    assert_twin(dX, R.dropout_backward(X, mask, 0.4), dtype)
    # A bool mask works too.
    assert_twin(C.dropout_backward(X, mask.astype(bool), 0.4), dX, dtype)


@pytest.mark.parametrize("impl", [C, R], ids=["compiled", "reference"])
def test_finite_differences_with_a_fixed_mask(impl):
    """d/dX sum(G * dropout(X; U)) = dropout_backward(G, mask), with the random numbers U held fixed."""
    rng = np.random.default_rng(4)
    X, G, U = rng.standard_normal((3, 5)), rng.standard_normal((3, 5)), rng.random((3, 5))
    _, mask = impl.dropout_forward(X, U, 0.4)
    analytic = impl.dropout_backward(G, mask, 0.4)
    numeric = fd_gradient(lambda: (G * impl.dropout_forward(X, U, 0.4)[0]).sum(), X)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-9)


def test_bad_input():
    X = np.zeros((2, 3))
    with pytest.raises(ValueError, match="`rate` must be in \\[0, 1\\].*1.5"):
        C.dropout_forward(X, X, 1.5)
    with pytest.raises(ValueError, match="`rate` must be a real number"):
        C.dropout_backward(X, np.zeros((2, 3), np.uint8), None)
    with pytest.raises(ValueError, match="`X` must be a float32 or float64 array.*int64"):
        C.dropout_forward(np.zeros((2, 3), np.int64), X, 0.5)
    with pytest.raises(ValueError, match="`U` must have dtype float64"):
        C.dropout_forward(X, np.zeros((2, 3), np.float32), 0.5)
    with pytest.raises(ValueError, match="`U` \\(the random numbers\\) must have the shape of `X`, \\(2, 3\\)"):
        C.dropout_forward(X, np.zeros((3, 2)), 0.5)
    with pytest.raises(ValueError, match="`mask` must be an array of shape \\(2, 3\\) and dtype uint8"):
        C.dropout_forward(X, X, 0.5, mask=np.zeros((2, 3), np.int32))
    with pytest.raises(ValueError, match="`mask` must be the uint8 .*float64"):
        C.dropout_backward(X, X, 0.5)
    with pytest.raises(ValueError, match="`mask` must have the shape of `dY`"):
        C.dropout_backward(X, np.zeros((3, 2), np.uint8), 0.5)
    with pytest.raises(ValueError, match="n_threads"):
        C.dropout_forward(X, X, 0.5, n_threads=0)
