"""NaN and infinity go through the compiled kernels as through their NumPy twins (np.maximum, np.sign): a
model whose weights are NaN predicts NaN, never a plausible number (the compiled ReLU used to turn NaN into
0, so an all-NaN kernel predicted [1/3, 1/3, 1/3]; mae's gradient was 0 where the twin's is NaN)."""
import numpy as np
import pytest

from fastnn import Sequential
from fastnn import _kernels as K
from fastnn._kernels import _reference as R
from fastnn.layers import Dense, Input

SPECIAL = np.array([np.nan, -1.0, 2.0, np.inf, -np.inf, -0.0, 0.0, 1e-40], np.float64)


@pytest.mark.parametrize("activation", ("relu", "sigmoid", "tanh", "linear", "softmax"))
def test_activations_propagate_nan_as_the_twin(activation, dtype):
    x = np.tile(SPECIAL, (3, 1)).astype(dtype)
    _same_specials(K.activation_forward(x, activation), R.activation_forward(x, activation), dtype)
    y = R.activation_forward(x, activation)
    dy = np.ones_like(x)
    _same_specials(K.activation_backward(dy, y, activation), R.activation_backward(dy, y, activation), dtype)


def _same_specials(got, want, dtype):
    """NaN and infinities where the twin has them; the finite values within the dtype's tolerance (sigmoid and
    tanh are vector approximations, ~1.4 ulp)."""
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got) * np.sign(got), np.isinf(want) * np.sign(want))
    finite = np.isfinite(want)
    tol = 1e-6 if np.dtype(dtype) == np.float32 else 1e-14
    np.testing.assert_allclose(got[finite], want[finite], rtol=tol, atol=tol)


@pytest.mark.parametrize("activation", ("relu", "sigmoid", "tanh", "linear"))
def test_dense_forward_with_a_nan_kernel_gives_nan(activation, dtype):
    X = np.ones((6, 16), dtype)
    W = np.full((16, 3), np.nan, dtype)
    assert np.isnan(K.dense_forward(X, W, np.zeros(3, dtype), activation)).all()


def test_mae_gradient_is_nan_where_the_difference_is(dtype):
    p = np.array([[np.nan, 1.0, 3.0], [np.inf, 0.0, -1.0]], dtype)  # (targets must be finite: checked)
    t = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 0.0]], dtype)
    loss, grad = K.mae_backward(p, t, 1.0)
    loss_r, grad_r = R.mae_backward(p, t, 1.0)
    np.testing.assert_array_equal(grad, grad_r)
    assert np.isnan(loss) and np.isnan(loss_r)


def test_a_model_with_nan_weights_predicts_nan():
    model = Sequential([Input((5,)), Dense(4, activation="relu"), Dense(3, activation="softmax")])
    model.layers[0].kernel.value[...] = np.nan
    assert np.isnan(model.predict(np.ones((2, 5), np.float32), verbose=0)).all()


@pytest.mark.parametrize("activation", ("gelu", "silu", "elu", "leaky_relu", "relu6", "hard_sigmoid", "softsign",
                                        "softplus", "selu"))
def test_a_model_with_nan_weights_predicts_nan_through_the_new_activations(activation):
    """issue 14's activations on the engine: NaN in, NaN out, as their twin."""
    model = Sequential([Input((5,)), Dense(4, activation=activation), Dense(3)])
    model.layers[0].kernel.value[...] = np.nan
    assert np.isnan(model.predict(np.ones((2, 5), np.float32), verbose=0)).all()
