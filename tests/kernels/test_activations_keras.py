"""The activations of issue 14 (elu ... log_softmax, relu's arguments, PReLU): compiled kernels against their
NumPy twin (values, gradients, NaN/inf), finite differences in float64, and Keras 3's documented numbers."""
import math

import numpy as np
import pytest

from fastnn._kernels import _reference as R
from fastnn._kernels import activations as C

from .conftest import arrange, assert_twin, fd_gradient

NEW = ("elu", "selu", "gelu", ("gelu", True), "silu", "softplus", "softsign", "leaky_relu", ("leaky_relu", 0.3),
       "relu6", "hard_sigmoid", "hard_silu", "exponential", "log_softmax", ("elu", 0.5),
       ("relu", 0.1, None, 0.0), ("relu", 0.0, 5.0, 0.0), ("relu", 0.0, None, 1.5), ("relu", 0.2, 4.0, -1.0))
IDS = [a if isinstance(a, str) else "-".join(map(str, a)) for a in NEW]
SHAPES = ((7, 13), (96, 700))
SPECIAL = np.array([np.nan, -1.0, 2.0, np.inf, -np.inf, -0.0, 0.0, 1e-40, 50.0, -50.0, 3.0, -3.0, 6.0], np.float64)


def _needs_x(act):
    from fastnn._kernels._engine_plan import act_needs_x

    return act_needs_x(act)


@pytest.mark.parametrize("activation", NEW, ids=IDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_and_backward_match_the_twin(activation, shape, dtype, n_threads, layout, rng):
    X = (rng.standard_normal(shape) * 4).astype(dtype)
    Y = R.activation_forward(X, activation)
    assert_twin(C.activation_forward(arrange(X, layout), activation, n_threads=n_threads), Y, dtype, str(activation))
    dY = rng.standard_normal(shape).astype(dtype)
    got = C.activation_backward(arrange(dY, layout), arrange(Y, layout), activation, X=arrange(X, layout),
                                n_threads=n_threads)
    assert_twin(got, R.activation_backward(dY, Y, activation, X=X), dtype, str(activation))


@pytest.mark.parametrize("activation", NEW, ids=IDS)
@pytest.mark.parametrize("impl", [C, R], ids=["compiled", "reference"])
def test_backward_finite_differences(activation, impl):
    """d/dX sum(G * act(X)) = activation_backward(G, act(X), X=X), in float64, away from the kinks."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((3, 6)) * 2.5
    for kink in (0.0, 6.0, 3.0, -3.0, 1.5, -1.0, 5.0, 4.0):
        X[np.abs(X - kink) < 0.05] = kink + 0.3
    G = rng.standard_normal((3, 6))
    analytic = impl.activation_backward(G, impl.activation_forward(X, activation), activation, X=X)
    numeric = fd_gradient(lambda: (G * impl.activation_forward(X, activation)).sum(), X)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("activation", NEW, ids=IDS)
def test_nan_and_inf_as_the_twin(activation, dtype):
    x = np.tile(SPECIAL, (3, 1)).astype(dtype)
    with np.errstate(all="ignore"):
        want = R.activation_forward(x, activation)
        got = C.activation_forward(x, activation)
        _same_specials(got, want, dtype)
        dy = np.ones_like(x)
        _same_specials(C.activation_backward(dy, want, activation, X=x),
                       R.activation_backward(dy, want, activation, X=x), dtype)


def _same_specials(got, want, dtype):
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got) * np.sign(got), np.isinf(want) * np.sign(want))
    finite = np.isfinite(want)
    tol = 1e-6 if np.dtype(dtype) == np.float32 else 1e-14
    np.testing.assert_allclose(got[finite], want[finite], rtol=tol, atol=tol)


# Keras 3's docstring examples (keras/src/activations/activations.py, relu) and hand-computed values.
KERAS_X = np.array([[-10.0, -5.0, 0.0, 5.0, 10.0]])
KERAS_RELU = [
    ("relu", [0, 0, 0, 5, 10]),
    (("relu", 0.5, None, 0.0), [-5, -2.5, 0, 5, 10]),
    (("relu", 0.0, 5.0, 0.0), [0, 0, 0, 5, 5]),
    (("relu", 0.0, None, 5.0), [-0.0, -0.0, 0, 0, 10]),
]


@pytest.mark.parametrize("impl", [C, R], ids=["compiled", "reference"])
@pytest.mark.parametrize("activation, expected", KERAS_RELU, ids=["default", "slope", "max", "threshold"])
def test_relu_as_keras_docs(impl, activation, expected, dtype):
    np.testing.assert_array_equal(impl.activation_forward(KERAS_X.astype(dtype), activation), [expected])


E1 = math.exp(-1) - 1
HAND = [  # (activation, x, Keras' value: hand-computed from Keras 3's definitions)
    ("elu", [-1.0, 2.0], [E1, 2.0]),
    (("elu", 0.5), [-1.0], [0.5 * E1]),
    ("selu", [-1.0, 1.0], [1.0507009873554805 * 1.6732632423543772 * E1, 1.0507009873554805]),
    ("gelu", [1.0, -1.0], [0.5 * (1 + math.erf(1 / math.sqrt(2))), -0.5 * (1 - math.erf(1 / math.sqrt(2)))]),
    (("gelu", True), [1.0], [0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * (1 + 0.044715)))]),
    ("silu", [1.0, 0.0], [1 / (1 + math.exp(-1)), 0.0]),
    ("softplus", [0.0, 100.0, -100.0], [math.log(2), 100.0, math.exp(-100)]),
    ("softsign", [1.0, -3.0], [0.5, -0.75]),
    ("leaky_relu", [-1.0, 2.0], [-0.2, 2.0]),
    ("relu6", [-1.0, 3.0, 7.0], [0.0, 3.0, 6.0]),
    ("hard_sigmoid", [-3.0, 1.0, 3.0, -4.0], [0.0, 1 / 6 + 0.5, 1.0, 0.0]),
    ("hard_silu", [1.0, 4.0, -4.0], [1 / 6 + 0.5, 4.0, -0.0]),
    ("exponential", [1.0, 0.0], [math.e, 1.0]),
    ("log_softmax", [0.0, 0.0], [-math.log(2), -math.log(2)]),
    ("log_softmax", [1000.0, 0.0], [0.0, -1000.0]),  # stable: no overflow
]


@pytest.mark.parametrize("impl", [C, R], ids=["compiled", "reference"])
@pytest.mark.parametrize("activation, x, expected", HAND, ids=lambda v: str(v)[:20])
def test_hand_values(impl, activation, x, expected):
    got = impl.activation_forward(np.array([x]), activation)
    np.testing.assert_allclose(got, [expected], rtol=1e-14, atol=1e-300)


def test_gelu_default_is_the_erf_form_and_the_tanh_form_differs():
    x = np.array([[1.5]])
    exact = C.activation_forward(x, "gelu")
    assert exact[0, 0] == pytest.approx(1.5 * 0.5 * (1 + math.erf(1.5 / math.sqrt(2))), rel=1e-15)
    assert abs(C.activation_forward(x, ("gelu", True))[0, 0] - exact[0, 0]) > 1e-5


def test_gelu_tail_has_no_cancellation():
    """0.5 x erfc(-x / sqrt 2) keeps full relative accuracy where 1 + erf(x / sqrt 2) would cancel."""
    from scipy.special import erfc

    x = np.array([[-8.0, -20.0]])
    np.testing.assert_allclose(C.activation_forward(x, "gelu"), 0.5 * x * erfc(-x / math.sqrt(2)), rtol=1e-12)
    assert 1 + math.erf(-20 / math.sqrt(2)) == 0  # the erf form loses it entirely (gelu(-20) is -5.5e-88)


@pytest.mark.parametrize("activation", ("gelu", "silu", "elu", ("relu", 0.1, None, 0.0)))
def test_backward_needs_x(activation):
    for impl in (C, R):
        with pytest.raises(ValueError, match="argument `X`.*needed"):
            impl.activation_backward(np.ones((2, 3)), np.ones((2, 3)), activation)


def test_bad_activation_specs():
    for impl in (C, R):
        with pytest.raises(ValueError, match="Unknown activation 'mish'"):
            impl.activation_forward(np.zeros((2, 3)), "mish")
        with pytest.raises(ValueError, match="`negative_slope` must be a finite number"):
            impl.activation_forward(np.zeros((2, 3)), ("leaky_relu", "x"))
        with pytest.raises(ValueError, match="takes the parameters"):
            impl.activation_forward(np.zeros((2, 3)), ("elu", 1.0, 2.0))
    with pytest.raises(ValueError, match="`X` must be a 2-D"):
        C.activation_forward(np.zeros(3), "log_softmax")


# ---------------------------------------------------------------- PReLU
@pytest.mark.parametrize("channels", (12, 4, 1))
def test_prelu_matches_the_twin(channels, dtype, n_threads, rng):
    X = rng.standard_normal((9, 12)).astype(dtype)
    alpha = rng.standard_normal(channels).astype(dtype)
    assert_twin(C.prelu_forward(X, alpha, n_threads=n_threads), R.prelu_forward(X, alpha), dtype)
    dY = rng.standard_normal((9, 12)).astype(dtype)
    da_c, da_r = np.full(channels, 0.5, dtype), np.full(channels, 0.5, dtype)
    assert_twin(C.prelu_backward(dY, X, alpha, da_c, n_threads=n_threads), R.prelu_backward(dY, X, alpha, da_r), dtype)
    assert_twin(da_c, da_r, dtype)
    assert C.prelu_backward(dY, X, alpha, None).shape == X.shape


@pytest.mark.parametrize("impl", [C, R], ids=["compiled", "reference"])
def test_prelu_finite_differences(impl):
    rng = np.random.default_rng(8)
    X = rng.standard_normal((4, 6))
    X[np.abs(X) < 0.05] = 0.3
    alpha = rng.standard_normal(3)
    G = rng.standard_normal((4, 6))
    dalpha = np.zeros(3)
    dX = impl.prelu_backward(G, X, alpha, dalpha)
    np.testing.assert_allclose(dX, fd_gradient(lambda: (G * impl.prelu_forward(X, alpha)).sum(), X), rtol=1e-7,
                               atol=1e-9)
    np.testing.assert_allclose(dalpha, fd_gradient(lambda: (G * impl.prelu_forward(X, alpha)).sum(), alpha),
                               rtol=1e-7, atol=1e-9)


def test_prelu_nan_and_values():
    x = np.array([[np.nan, -2.0, 3.0, -np.inf]])
    for impl in (C, R):
        y = impl.prelu_forward(x, np.array([0.25]))
        np.testing.assert_array_equal(y, [[np.nan, -0.5, 3.0, -np.inf]])
        with pytest.raises(ValueError, match="`alpha` must be a 1-D array whose length divides"):
            impl.prelu_forward(x, np.array([0.25, 0.5, 0.1]))
