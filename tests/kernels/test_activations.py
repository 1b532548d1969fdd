"""activations.pyx against its NumPy twin, hand values, finite differences and bad input."""
import numpy as np
import pytest

from fastnn._kernels import _reference as R
from fastnn._kernels import activations as C

from .conftest import arrange, assert_twin, fd_gradient

ACTS = ("linear", "relu", "sigmoid", "tanh", "softmax")
SHAPES = ((7, 13), (96, 700))  # the second is big enough to use threads


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_reference(activation, shape, dtype, n_threads, layout, rng):
    X = (rng.standard_normal(shape) * 4).astype(dtype)
    out = C.activation_forward(arrange(X, layout), activation, n_threads=n_threads)
    assert_twin(out, R.activation_forward(X, activation), dtype, activation)


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_matches_reference(activation, shape, dtype, n_threads, layout, rng):
    X = (rng.standard_normal(shape) * 2).astype(dtype)
    Y = R.activation_forward(X, activation)
    dY = rng.standard_normal(shape).astype(dtype)
    out = C.activation_backward(arrange(dY, layout), arrange(Y, layout), activation, n_threads=n_threads)
    assert_twin(out, R.activation_backward(dY, Y, activation), dtype, activation)


@pytest.mark.parametrize("activation", ACTS)
def test_in_place_and_out(activation, dtype, rng):
    X = rng.standard_normal((5, 9)).astype(dtype)
    expected = R.activation_forward(X, activation)
    buf = X.copy()
    assert C.activation_forward(buf, activation, out=buf) is buf
    assert_twin(buf, expected, dtype)
    dY = rng.standard_normal((5, 9)).astype(dtype)
    g = dY.copy()
    assert C.activation_backward(g, expected, activation, out=g) is g
    assert_twin(g, R.activation_backward(dY, expected, activation), dtype)


def test_hand_values(dtype):
    x = np.array([[-1.0, 0.0, 2.0]], dtype=dtype)
    np.testing.assert_array_equal(C.activation_forward(x, "relu"), [[0, 0, 2]])
    np.testing.assert_allclose(C.activation_forward(np.zeros((1, 4), dtype), "sigmoid"), 0.5)
    np.testing.assert_allclose(C.activation_forward(np.full((2, 4), 3.0, dtype), "softmax"), 0.25)
    big = np.array([[1000.0, -1000.0, 0.0]], dtype=dtype)  # stable in both tails
    s = C.activation_forward(big, "sigmoid")
    assert np.isfinite(s).all() and s[0, 0] == 1 and s[0, 1] == 0
    sm = C.activation_forward(big, "softmax")
    np.testing.assert_allclose(sm, [[1, 0, 0]], atol=1e-30)


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("impl", [C, R], ids=["compiled", "reference"])
def test_backward_finite_differences(activation, impl):
    """d/dX sum(G * act(X)) = activation_backward(G, act(X)), in float64."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((3, 5))
    if activation == "relu":
        X[np.abs(X) < 0.05] = 0.3  # keep away from the kink
    G = rng.standard_normal((3, 5))
    analytic = impl.activation_backward(G, impl.activation_forward(X, activation), activation)
    numeric = fd_gradient(lambda: (G * impl.activation_forward(X, activation)).sum(), X)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-9)


def test_bad_input():
    with pytest.raises(ValueError, match="`X`.*float32 or float64.*int64"):
        C.activation_forward(np.zeros((2, 3), np.int64), "relu")
    with pytest.raises(ValueError, match="Unknown activation 'mish'"):
        C.activation_forward(np.zeros((2, 3)), "mish")
    with pytest.raises(ValueError, match="`X` must be a 2-D.*\\(3,\\)"):
        C.activation_forward(np.zeros(3), "softmax")
    with pytest.raises(ValueError, match="`out` must be an array of shape \\(2, 3\\).*\\(3, 2\\)"):
        C.activation_forward(np.zeros((2, 3)), "relu", out=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="`Y` must have dtype float64"):
        C.activation_backward(np.zeros((2, 3)), np.zeros((2, 3), np.float32), "relu")
    with pytest.raises(ValueError, match="`Y` must have the shape of `dY`"):
        C.activation_backward(np.zeros((2, 3)), np.zeros((2, 4)), "relu")
    with pytest.raises(ValueError, match="n_threads"):
        C.activation_forward(np.zeros((2, 3)), "relu", n_threads=0)
