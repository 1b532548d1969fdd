"""Activation layer and fastnn.activations: float64 gradient checks, values vs NumPy, errors, config."""
import numpy as np
import pytest

import fastnn
from fastnn import activations
from fastnn.layers import Activation

from _checks import assert_close, check_layer_gradients

ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh", "softmax"]


def _np_act(name, z):
    z = np.asarray(z, dtype=np.float64)
    if name == "linear":
        return z
    if name == "relu":
        return np.maximum(z, 0)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.fixture(autouse=True)
def _fresh_names():
    fastnn.backend.clear_session()


def _inputs(name, shape=(3, 5), seed=0):
    x = np.random.default_rng(seed).standard_normal(shape)
    if name == "relu":  # keep away from the kink at 0
        x = np.where(np.abs(x) < 0.1, np.sign(x) * 0.1 + x, x)
    return x


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_gradients_float64(name):
    layer = Activation(name, dtype="float64")
    dX, grads = check_layer_gradients(layer, _inputs(name))
    assert grads == {}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_gradients_float64_rank3(name):
    layer = Activation(name, dtype="float64")
    check_layer_gradients(layer, _inputs(name, (2, 3, 4)))


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_rank3_values_apply_over_the_last_axis(name):
    """Keras' softmax normalises over the last axis, also for (batch, steps, features) inputs."""
    x = np.random.default_rng(2).standard_normal((2, 3, 4))
    y = Activation(name, dtype="float64")(x)
    assert_close(y, _np_act(name, x), rtol=1e-12, atol=1e-15)
    assert_close(activations.get(name)(x), _np_act(name, x), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_values_match_numpy(name, dtype):
    x = (4 * np.random.default_rng(1).standard_normal((6, 4))).astype(dtype)
    expected = _np_act(name, x).astype(dtype)
    tol = {"float32": dict(rtol=1e-5, atol=1e-6), "float64": dict(rtol=1e-12, atol=1e-15)}[dtype]
    assert_close(Activation(name, dtype=dtype)(x), expected, **tol)
    assert_close(getattr(activations, name)(x), expected, **tol)
    assert_close(activations.get(name)(x), expected, **tol)


def test_sigmoid_and_softmax_are_stable_in_the_tails():
    x = np.array([[-1000.0, 0.0, 1000.0]], dtype=np.float32)
    s = activations.sigmoid(x)
    assert np.all(np.isfinite(s))
    assert_close(s, np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    sm = activations.softmax(x)
    assert np.all(np.isfinite(sm))
    assert_close(sm, np.array([[0.0, 0.0, 1.0]], dtype=np.float32))


def test_softmax_rows_sum_to_one_and_equal_logits():
    x = np.zeros((2, 4))
    assert_close(activations.softmax(x), np.full((2, 4), 0.25))
    y = activations.softmax(np.random.default_rng(0).standard_normal((5, 7)))
    assert_close(y.sum(axis=1), np.ones(5), rtol=1e-12)


def test_get_resolution():
    assert activations.get(None) is activations.linear
    assert activations.get("ReLU") is activations.relu
    assert activations.get(activations.tanh) is activations.tanh
    assert activations.serialize(activations.softmax) == "softmax"


def test_unknown_activation_lists_valid_ones():
    with pytest.raises(ValueError) as info:
        Activation("mish")
    msg = str(info.value)
    assert "'mish'" in msg
    for name in ACTIVATIONS:
        assert repr(name) in msg


def test_foreign_callable_rejected():
    with pytest.raises(ValueError, match="activation") as info:
        Activation(np.tanh)
    assert "tanh" in str(info.value)


def test_softmax_axis_other_than_last_rejected():
    with pytest.raises(ValueError, match="axis"):
        activations.softmax(np.zeros((2, 3, 4)), axis=1)


def test_config_round_trip_and_naming():
    layer = Activation("sigmoid")
    assert layer.name == "activation"
    assert Activation("relu").name == "activation_1"
    config = layer.get_config()
    assert config["activation"] == "sigmoid"
    assert Activation.from_config(config).get_config() == config


def test_unknown_kwargs():
    with pytest.raises((TypeError, ValueError), match="Unrecognized keyword arguments passed to Activation"):
        Activation("relu", units=3)
