"""Flatten: shapes, forward vs NumPy, float64 gradient check (no weights), channels_first, config."""
import numpy as np
import pytest

import fastnn
from fastnn.layers import Dense, Flatten

from _checks import assert_close, check_layer_gradients


@pytest.fixture(autouse=True)
def _fresh_names():
    fastnn.backend.clear_session()


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (2, 2, 3, 2)])
def test_forward_matches_numpy_reshape(shape):
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    layer = Flatten()
    y = layer(x)
    np.testing.assert_array_equal(y, x.reshape(shape[0], -1))
    assert y.dtype == np.float32
    assert layer.output_shape == (None, int(np.prod(shape[1:])))
    assert layer.count_params() == 0 and layer.weights == []


@pytest.mark.parametrize("data_format", [None, "channels_last", "channels_first"])
def test_gradients_float64(data_format):
    x = np.random.default_rng(0).standard_normal((2, 3, 2, 2))
    layer = Flatten(data_format=data_format, dtype="float64")
    dX, grads = check_layer_gradients(layer, x)
    assert grads == {}
    assert dX.shape == x.shape


def test_backward_is_inverse_reshape():
    x = np.random.default_rng(1).standard_normal((4, 5, 6)).astype(np.float32)
    layer = Flatten()
    layer(x)
    dy = np.random.default_rng(2).standard_normal((4, 30)).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(dy), dy.reshape(4, 5, 6))
    assert layer.backward(dy, need_dx=False) is None


def test_channels_first_moves_channels_last_before_flattening():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    y = Flatten(data_format="channels_first")(x)
    np.testing.assert_array_equal(y, np.moveaxis(x, 1, -1).reshape(2, -1))


def test_compute_output_shape():
    layer = Flatten()
    assert layer.compute_output_shape((None, 28, 28)) == (None, 784)
    assert layer.compute_output_shape((None, 7)) == (None, 7)
    assert layer.compute_output_shape((None, None, 3)) == (None, None)


def test_flatten_then_dense_in_model():
    model = fastnn.Sequential([Flatten(input_shape=(28, 28)), Dense(10)])
    assert model.layers[0].output_shape == (None, 784)
    assert model.layers[1].kernel.shape == (784, 10)


def test_bad_data_format():
    with pytest.raises(ValueError, match="data_format") as info:
        Flatten(data_format="NHWC")
    assert "'NHWC'" in str(info.value)


def test_unknown_kwargs():
    with pytest.raises((TypeError, ValueError), match="Unrecognized keyword arguments passed to Flatten"):
        Flatten(units=3)


def test_config_round_trip():
    layer = Flatten(data_format="channels_first", input_shape=(3, 4), name="flat")
    config = layer.get_config()
    assert config["data_format"] == "channels_first"
    assert config["name"] == "flat"
    assert config["batch_input_shape"] == (None, 3, 4)
    assert Flatten.from_config(config).get_config() == config


def test_float64_input_is_cast_to_layer_dtype():
    y = Flatten()(np.ones((2, 2, 2), dtype=np.float64))
    assert y.dtype == np.float32
    assert_close(y, np.ones((2, 4), dtype=np.float32))
