"""Dense: float64 gradient checks, output vs NumPy, naming, initializers, shapes, errors, config."""
import numpy as np
import pytest

import fastnn
from fastnn import initializers
from fastnn.layers import Dense, Flatten
from fastnn.utils.rng_utils import set_random_seed

from _checks import assert_close, check_layer_gradients

ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh", "softmax"]


def _np_act(name, z):
    if name == "linear":
        return z
    if name == "relu":
        return np.maximum(z, 0)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(autouse=True)
def _fresh_names():
    fastnn.backend.clear_session()
    yield
    fastnn.backend.clear_session()


def _away_from_relu_kink(layer, x, margin=0.05):
    """Re-draw the weights until every pre-activation is at least ``margin`` away from 0."""
    rng = np.random.default_rng(1)
    for _ in range(200):
        z = x @ layer.kernel.value + (layer.bias.value if layer.use_bias else 0)
        if np.abs(z).min() > margin:
            return
        layer.kernel.value[...] = rng.uniform(-1, 1, layer.kernel.shape)
        if layer.use_bias:
            layer.bias.value[...] = rng.uniform(-0.5, 0.5, layer.bias.shape)
    raise AssertionError("could not draw weights away from the relu kink")


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradients_float64(activation, use_bias):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5))
    layer = Dense(3, activation=activation, use_bias=use_bias, dtype="float64",
                  kernel_initializer="random_normal", bias_initializer="random_normal")
    layer(x)  # build
    # Non-trivial weights (default glorot is fine, but random bias exercises db).
    layer.kernel.value[...] = rng.uniform(-1, 1, layer.kernel.shape)
    if use_bias:
        layer.bias.value[...] = rng.uniform(-0.5, 0.5, layer.bias.shape)
    if activation == "relu":
        _away_from_relu_kink(layer, x)
    dX, grads = check_layer_gradients(layer, x)
    assert set(grads) == ({"dense/kernel", "dense/bias"} if use_bias else {"dense/kernel"})
    assert dX.shape == x.shape


def test_backward_accumulates_into_grad():
    """Gradients accumulate (+=) into weight.grad, as the kernel contract says; the trainer zeroes them."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    layer = Dense(2, dtype="float64")
    layer(x)
    dy = rng.standard_normal((3, 2))
    layer.kernel.grad[...] = 0
    layer.bias.grad[...] = 0
    layer.call(x)
    layer.backward(dy)
    once_k, once_b = layer.kernel.grad.copy(), layer.bias.grad.copy()
    layer.backward(dy)
    assert_close(layer.kernel.grad, 2 * once_k)
    assert_close(layer.bias.grad, 2 * once_b)
    assert_close(once_k, x.T @ dy)
    assert_close(once_b, dy.sum(axis=0))


def test_backward_need_dx_false_returns_none():
    x = np.ones((2, 3))
    layer = Dense(2, dtype="float64")
    layer(x)
    assert layer.backward(np.ones((2, 2)), need_dx=False) is None
    assert np.any(layer.kernel.grad != 0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_output_matches_numpy(activation, use_bias, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 7)).astype(dtype)
    layer = Dense(4, activation=activation, use_bias=use_bias, dtype=dtype)
    layer.build_for(x.shape)
    W = layer.kernel.value.astype(np.float64)
    if use_bias:
        layer.bias.value[...] = rng.standard_normal(4)  # non-zero, so a dropped bias shows
    y = layer(x)
    z = x.astype(np.float64) @ W + (layer.bias.value.astype(np.float64) if use_bias else 0)
    assert y.dtype == np.dtype(dtype)
    assert y.shape == (6, 4)
    tol = {"float32": dict(rtol=1e-5, atol=1e-6), "float64": dict(rtol=1e-12, atol=1e-14)}[dtype]
    assert_close(y, _np_act(activation, z).astype(dtype), **tol)
    assert (layer.bias is None) == (not use_bias)
    assert len(layer.weights) == (2 if use_bias else 1)


def test_activation_none_is_linear_and_callable_accepted():
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    a = Dense(2, activation=None)
    b = Dense(2, activation=fastnn.activations.relu)
    assert a.get_config()["activation"] == "linear"
    assert b.get_config()["activation"] == "relu"
    assert_close(a(x), x @ a.kernel.value + a.bias.value)


def test_auto_naming_and_clear_session():
    assert Dense(1).name == "dense"
    assert Dense(1).name == "dense_1"
    assert Dense(1, name="head").name == "head"
    assert Dense(1).name == "dense_2"
    assert Flatten().name == "flatten"
    fastnn.backend.clear_session()
    assert Dense(1).name == "dense"
    assert Flatten().name == "flatten"


def test_glorot_uniform_default_bound():
    set_random_seed(0)
    fan_in, fan_out = 200, 300
    layer = Dense(fan_out)
    layer.build_for((None, fan_in))
    W = layer.kernel.value
    assert W.shape == (fan_in, fan_out) and W.dtype == np.float32
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    assert np.abs(W).max() <= limit
    assert np.abs(W).max() > 0.99 * limit  # 60000 draws fill the interval
    # U(-L, L): mean 0, std L / sqrt(3).
    assert abs(W.mean()) < 0.01 * limit
    assert W.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)
    assert np.all(layer.bias.value == 0) and layer.bias.value.shape == (fan_out,)


def test_he_normal_std_and_truncation():
    set_random_seed(0)
    fan_in = 400
    layer = Dense(250, kernel_initializer="he_normal")
    layer.build_for((None, fan_in))
    W = layer.kernel.value.astype(np.float64)
    std = np.sqrt(2.0 / fan_in)
    # Keras' truncated normal is rescaled so its std is the target std (1/0.8796...).
    assert W.std() == pytest.approx(std, rel=0.02)
    assert np.abs(W).max() <= 2 * std / 0.87962566103423978 + 1e-7
    assert abs(W.mean()) < 0.02 * std


def test_zeros_and_other_initializers():
    layer = Dense(3, kernel_initializer="zeros", bias_initializer="ones")
    layer.build_for((None, 2))
    assert np.all(layer.kernel.value == 0)
    assert np.all(layer.bias.value == 1)
    layer = Dense(3, kernel_initializer=initializers.Constant(0.5), bias_initializer=initializers.Zeros())
    layer.build_for((None, 2))
    assert np.all(layer.kernel.value == 0.5)
    assert np.all(layer.bias.value == 0)


def test_initializer_seed_is_reproducible():
    a = Dense(4, kernel_initializer=initializers.GlorotUniform(seed=7))
    b = Dense(4, kernel_initializer=initializers.GlorotUniform(seed=7))
    a.build_for((None, 3))
    b.build_for((None, 3))
    np.testing.assert_array_equal(a.kernel.value, b.kernel.value)


def test_set_random_seed_gives_identical_weights():
    set_random_seed(123)
    a = Dense(5)
    a.build_for((None, 4))
    set_random_seed(123)
    b = Dense(5)
    b.build_for((None, 4))
    np.testing.assert_array_equal(a.kernel.value, b.kernel.value)


def test_input_shape_and_input_dim():
    a = Dense(4, input_shape=(3,))
    b = Dense(4, input_dim=3)
    c = Dense(4, input_shape=3)
    for layer in (a, b, c):
        assert layer.batch_input_shape == (None, 3)
    model = fastnn.Sequential([Dense(4, input_dim=3)])
    assert model.built
    assert model.layers[0].kernel.shape == (3, 4)
    assert model.output_shape == (None, 4)


def test_output_shape_and_count_params():
    layer = Dense(10)
    with pytest.raises(ValueError, match="isn't built"):
        layer.count_params()
    assert layer.build_for((None, 784)) == (None, 10)
    assert layer.count_params() == 7850
    assert Dense(10, use_bias=False).build_for((None, 784)) == (None, 10)


@pytest.mark.parametrize("units", [0, -3, 2.5, "8", None, True])
def test_units_must_be_positive_int(units):
    with pytest.raises(ValueError, match="units") as info:
        Dense(units)
    assert "positive integer" in str(info.value)
    assert repr(units) in str(info.value)


def test_unknown_activation_lists_valid_ones():
    with pytest.raises(ValueError) as info:
        Dense(3, activation="relu7")
    msg = str(info.value)
    assert "'relu7'" in msg and "activation" in msg
    for name in ACTIVATIONS:
        assert repr(name) in msg


def test_custom_callable_activation_rejected_clearly():
    with pytest.raises(ValueError, match="activation") as info:
        Dense(3, activation=lambda x: x)
    assert "relu" in str(info.value)


def test_unknown_kwargs_raise():
    # Keras 3's wording; tf.keras raised TypeError, Keras 3 ValueError: accept either, check the text.
    expected = "Unrecognized keyword arguments passed to Dense"
    with pytest.raises((TypeError, ValueError), match=expected) as info:
        Dense(3, activaton="relu")
    assert "activaton" in str(info.value)


def test_unknown_initializer_lists_valid_ones():
    with pytest.raises(ValueError, match="initializer") as info:
        Dense(3, kernel_initializer="glorot_uniformm")
    assert "'glorot_uniform'" in str(info.value) and "'he_normal'" in str(info.value)


def test_rank3_input_mentions_flatten():
    x = np.zeros((2, 28, 28), dtype=np.float32)
    with pytest.raises(ValueError, match="Flatten") as info:
        Dense(4)(x)
    assert "(2, 28, 28)" in str(info.value) or "(None, 28, 28)" in str(info.value)
    # Already built for (None, 784): the shape check names the layer and both shapes.
    layer = Dense(4, name="hidden")
    layer(np.zeros((2, 784), dtype=np.float32))
    with pytest.raises(ValueError, match="Flatten") as info:
        layer(x)
    msg = str(info.value)
    assert "'hidden'" in msg and "(None, 784)" in msg and "(2, 28, 28)" in msg


def test_wrong_feature_count_after_build():
    layer = Dense(4, name="d")
    layer(np.zeros((2, 5), dtype=np.float32))
    with pytest.raises(ValueError) as info:
        layer(np.zeros((2, 6), dtype=np.float32))
    msg = str(info.value)
    assert "'d'" in msg and "(None, 5)" in msg and "(2, 6)" in msg


def test_backward_before_call_raises():
    layer = Dense(2)
    layer.build_for((None, 3))
    with pytest.raises(RuntimeError, match="before call"):
        layer.backward(np.zeros((1, 2), dtype=np.float32))


def test_get_config_from_config_round_trip():
    layer = Dense(7, activation="tanh", use_bias=False, kernel_initializer="he_normal", name="proj",
                  input_shape=(5,), dtype="float64")
    config = layer.get_config()
    assert config["units"] == 7
    assert config["activation"] == "tanh"
    assert config["use_bias"] is False
    assert config["name"] == "proj"
    assert config["dtype"] == "float64"
    assert config["batch_input_shape"] == (None, 5)
    assert config["kernel_initializer"]["class_name"] == "HeNormal"
    clone = Dense.from_config(config)
    assert clone.get_config() == config
    assert isinstance(clone.kernel_initializer, initializers.HeNormal)
    clone.build_for((None, 5))
    assert clone.kernel.shape == (5, 7) and clone.bias is None and clone.kernel.dtype == np.float64


def test_from_config_keeps_initializer_arguments():
    layer = Dense(2, kernel_initializer=initializers.RandomUniform(-0.2, 0.3, seed=4), name="ru")
    clone = Dense.from_config(layer.get_config())
    init = clone.kernel_initializer
    assert isinstance(init, initializers.RandomUniform)
    assert (init.minval, init.maxval, init.seed) == (-0.2, 0.3, 4)


def test_regularizers_are_attached_to_the_weights_and_round_trip_through_the_config():
    from fastnn import regularizers

    layer = Dense(3, kernel_regularizer="l2", bias_regularizer=regularizers.L1(0.5), input_shape=(4,))
    layer.build_for((None, 4))
    assert isinstance(layer.kernel.regularizer, regularizers.L2) and layer.kernel.regularizer.l2 == 0.01
    assert layer.bias.regularizer.l1 == 0.5
    config = layer.get_config()
    assert config["kernel_regularizer"] == {"class_name": "L2", "config": {"l2": 0.01}}
    assert config["bias_regularizer"] == {"class_name": "L1", "config": {"l1": 0.5}}
    clone = Dense.from_config(config)
    assert clone.get_config() == config
    assert Dense(2).get_config()["kernel_regularizer"] is None


def test_activity_regularizer_is_refused_clearly():
    with pytest.raises(ValueError, match="Dense 'd': argument `activity_regularizer` is not supported"):
        Dense(2, activity_regularizer="l2", name="d")
    with pytest.raises(ValueError, match="Could not interpret regularizer identifier: 'l5'"):
        Dense(2, kernel_regularizer="l5")
