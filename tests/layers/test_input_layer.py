"""Input / InputLayer: shapes, identity call/backward, use as the first item of a Sequential, errors."""
import numpy as np
import pytest

import fastnn
from fastnn.layers import Dense, Input, InputLayer


@pytest.fixture(autouse=True)
def _fresh_names():
    fastnn.backend.clear_session()


def test_input_returns_input_layer_with_shape():
    inp = Input(shape=(784,))
    assert isinstance(inp, InputLayer)
    assert inp.batch_input_shape == (None, 784)
    assert inp.built
    assert inp.name == "input_layer"


def test_input_int_shape_and_batch_size():
    assert Input(shape=5).batch_input_shape == (None, 5)
    assert Input(shape=(28, 28), batch_size=32).batch_input_shape == (32, 28, 28)


def test_input_batch_shape():
    assert Input(batch_shape=(None, 3)).batch_input_shape == (None, 3)


def test_input_without_shape_raises():
    with pytest.raises(ValueError, match="shape"):
        Input()
    with pytest.raises(ValueError, match="shape"):
        InputLayer()


def test_call_and_backward_are_identity():
    inp = Input(shape=(3,))
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(inp.call(x), x)
    np.testing.assert_array_equal(inp.backward(x), x)
    assert inp.count_params() == 0


def test_output_shape():
    inp = Input(shape=(28, 28))
    assert inp.build_for((None, 28, 28)) == (None, 28, 28)


def test_sequential_with_input_first_is_built_and_excludes_it():
    model = fastnn.Sequential([Input(shape=(4,)), Dense(3), Dense(2)])
    assert model.built
    assert [type(l).__name__ for l in model.layers] == ["Dense", "Dense"]
    assert model.input_shape == (None, 4)
    assert model.layers[0].kernel.shape == (4, 3)


def test_input_not_first_raises():
    model = fastnn.Sequential([Dense(3, input_shape=(4,))])
    with pytest.raises(ValueError, match="first layer"):
        model.add(Input(shape=(3,)))


@pytest.mark.parametrize("shape", ["abc", "784", (3, "x"), 3.5j])
def test_input_bad_shape_type(shape):
    with pytest.raises(ValueError, match="input_shape") as info:
        Input(shape=shape)
    assert "tuple of positive integers" in str(info.value)


def test_input_unknown_kwargs():
    with pytest.raises((TypeError, ValueError), match="Unrecognized keyword arguments"):
        Input(shape=(3,), units=4)


def test_input_float64_dtype_propagates_to_config():
    inp = Input(shape=(3,), dtype="float64")
    assert inp.dtype == np.float64
    assert inp.get_config()["batch_input_shape"] == (None, 3)
