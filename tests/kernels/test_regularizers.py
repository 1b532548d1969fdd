"""regularizers.pyx (L1/L2 weight penalties and their gradients) against its NumPy twin, hand values,
finite differences and bad input."""
import numpy as np
import pytest

from fastnn._kernels import _reference as R
from fastnn._kernels import regularizers as C

from .conftest import arrange, assert_twin, fd_gradient

FACTORS = ((0.01, 0.0), (0.0, 0.02), (0.03, 0.002))


@pytest.mark.parametrize("l1,l2", FACTORS)
@pytest.mark.parametrize("shape", ((7,), (13, 5), (300, 257)))
def test_matches_reference(l1, l2, shape, dtype, n_threads, layout, rng):
    W = rng.standard_normal(shape).astype(dtype)
    W.reshape(-1)[:3] = 0  # sign(0) = 0
    penalty = C.l1_l2_forward(arrange(W, layout), l1, l2, n_threads=n_threads)
    assert isinstance(penalty, float)
    np.testing.assert_allclose(penalty, R.l1_l2_forward(W, l1, l2), rtol=1e-12)
    start = rng.standard_normal(shape).astype(dtype)
    dW, dW_r = start.copy(), start.copy()
    total = C.l1_l2_backward(arrange(W, layout), l1, l2, dW, n_threads=n_threads)
    assert total == penalty
    R.l1_l2_backward(W, l1, l2, dW_r)
    assert_twin(dW, dW_r, dtype)  # accumulated onto `start`


def test_thread_count_does_not_change_the_penalty(rng):
    W = rng.standard_normal(100003).astype(np.float32)
    assert C.l1_l2_forward(W, 0.01, 0.01, n_threads=1) == C.l1_l2_forward(W, 0.01, 0.01, n_threads=2)


def test_hand_values():
    # K3 regularizers docstring: L2(2.) on ones(5, 5) gives 50; Dense kernel of ones (5, 5) with L1(0.01): 0.25
    assert C.l1_l2_forward(np.ones((5, 5), np.float32), 0.0, 2.0) == 50.0
    np.testing.assert_allclose(C.l1_l2_forward(np.ones((5, 5)), 0.01, 0.0), 0.25, rtol=1e-15)
    W = np.array([[-2.0, 0.0, 3.0]])
    dW = np.zeros_like(W)
    np.testing.assert_allclose(C.l1_l2_backward(W, 0.1, 0.5, dW), 0.1 * 5 + 0.5 * 13, rtol=1e-15)
    np.testing.assert_allclose(dW, [[-0.1 - 2.0, 0.0, 0.1 + 3.0]], rtol=1e-15)
    assert C.l1_l2_forward(np.zeros(0, np.float32), 1.0, 1.0) == 0.0


def test_gradient_by_finite_differences(rng):
    W = rng.standard_normal((4, 3)) + np.where(rng.random((4, 3)) > 0.5, 0.5, -0.5)  # away from the kink
    dW = np.zeros_like(W)
    C.l1_l2_backward(W, 0.03, 0.2, dW)
    np.testing.assert_allclose(dW, fd_gradient(lambda: C.l1_l2_forward(W, 0.03, 0.2), W), rtol=1e-8, atol=1e-10)


def test_bad_input():
    W = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="`l1` and `l2` must be non-negative.*l1=-0.1"):
        C.l1_l2_forward(W, -0.1, 0.0)
    with pytest.raises(ValueError, match="argument `l2` must be finite"):
        C.l1_l2_forward(W, 0.0, float("nan"))
    with pytest.raises(ValueError, match="`W` must be a float32 or float64 array"):
        C.l1_l2_forward(np.ones(3, np.int64), 0.1, 0.0)
    with pytest.raises(ValueError, match="`dW` must be an array of the shape of `W`"):
        C.l1_l2_backward(W, 0.1, 0.0, np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="`dW` must be a float32 array"):
        C.l1_l2_backward(W, 0.1, 0.0, np.zeros((2, 3)))
    readonly = np.zeros((2, 3), np.float32)
    readonly.setflags(write=False)
    with pytest.raises(ValueError, match="`dW` is updated in place"):
        C.l1_l2_backward(W, 0.1, 0.0, readonly)


@pytest.mark.parametrize("dtype_", (np.float32, np.float64))
def test_every_clone_gives_the_same_bits_with_nan_and_inf(dtype_, rng):
    """csrc/fastnn_reduce.h: the portable, AVX2 and AVX-512 loops (as this CPU has them) agree bit for bit,
    tails of every length included; NaN/inf reach the penalty and the gradient as in the twin."""
    Ws = {n: rng.standard_normal(n).astype(dtype_) for n in (1, 31, 32, 33, 1000, 4097)}
    results = []
    try:
        for isa in ("portable", "avx2", "avx512"):
            if C._reduce_isa(isa) != isa:
                continue
            for n, W in Ws.items():
                dW = np.ones(n, dtype_)
                results.append((isa, n, C.l1_l2_backward(W, 0.01, 0.02, dW, n_threads=1), dW.tobytes()))
    finally:
        C._reduce_isa("avx512")
    by_n = {}
    for isa, n, penalty, grad in results:
        by_n.setdefault(n, set()).add((penalty, grad))
    assert all(len(v) == 1 for v in by_n.values()), "the clones disagree"
    W = np.array([1.0, np.nan, -2.0, 0.0, np.inf] * 9, dtype_)
    dW, dW_r = np.zeros_like(W), np.zeros_like(W)
    penalty = C.l1_l2_backward(W, 0.01, 0.02, dW, n_threads=1)
    assert np.isnan(penalty) and np.isnan(R.l1_l2_backward(W, 0.01, 0.02, dW_r))
    np.testing.assert_array_equal(dW, dW_r)


def test_reduce_isa_hook():
    assert C._reduce_isa() in ("portable", "avx2", "avx512")
    with pytest.raises(ValueError, match="level"):
        C._reduce_isa("sse9")
