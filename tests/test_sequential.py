"""Sequential: construction, building, parameter counting, weights (one arena), summary text."""
import numpy as np
import pytest

import fastnn
from fastnn import Input, Sequential
from fastnn.layers import Activation, Dense, Flatten
from fastnn.utils.rng_utils import set_random_seed


@pytest.fixture(autouse=True)
def _fresh_names():
    fastnn.backend.clear_session()
    set_random_seed(0)


def mnist_mlp():
    return Sequential([Flatten(input_shape=(28, 28)), Dense(128, activation="relu"),
                       Dense(10, activation="softmax")])


# ----------------------------------------------------------------------------- construction
def test_from_list():
    model = Sequential([Dense(3, input_shape=(4,)), Dense(2)])
    assert [l.name for l in model.layers] == ["dense", "dense_1"]
    assert model.built
    assert model.name == "sequential"
    assert Sequential().name == "sequential_1"


def test_from_single_layer():
    layer = Dense(3, input_shape=(4,))
    model = Sequential(layer)
    assert model.layers == [layer]


def test_add_and_pop():
    model = Sequential()
    assert model.layers == [] and not model.built
    model.add(Dense(3, input_shape=(4,)))
    assert model.built and model.output_shape == (None, 3)
    model.add(Dense(2))
    assert model.output_shape == (None, 2)
    assert model.count_params() == 4 * 3 + 3 + 3 * 2 + 2
    popped = model.pop()
    assert popped.name == "dense_1"
    assert [l.name for l in model.layers] == ["dense"]
    assert model.output_shape == (None, 3)
    assert model.count_params() == 15
    model.pop()
    with pytest.raises(TypeError, match="no layers"):
        model.pop()


def test_layers_returns_a_copy():
    model = Sequential([Dense(2, input_shape=(3,))])
    model.layers.append(Dense(5))
    assert len(model.layers) == 1


def test_input_first_and_layers_excludes_it():
    model = Sequential([Input(shape=(28, 28)), Flatten(), Dense(10)])
    assert model.built
    assert [type(l).__name__ for l in model.layers] == ["Flatten", "Dense"]
    assert model.input_shape == (None, 28, 28)
    assert model.count_params() == 7850


def test_add_non_layer_raises():
    with pytest.raises(TypeError, match="instance of class Layer") as info:
        Sequential([Dense(2), "relu"])
    assert "'relu'" in str(info.value)
    with pytest.raises(TypeError, match="list of layers"):
        Sequential("dense")


def test_duplicate_names_raise():
    with pytest.raises(ValueError, match="unique names") as info:
        Sequential([Dense(2, name="hidden", input_shape=(3,)), Dense(2, name="hidden")])
    assert "'hidden'" in str(info.value)


def test_unknown_kwargs():
    with pytest.raises((TypeError, ValueError), match="Unrecognized keyword arguments passed to Sequential"):
        Sequential([], nam="x")


# ----------------------------------------------------------------------------- building
def test_deferred_build():
    model = Sequential([Dense(4), Dense(2)])
    assert not model.built
    with pytest.raises(ValueError, match="not yet been built"):
        model.count_params()
    with pytest.raises(ValueError, match="not yet been built"):
        model.set_weights([])
    model.build((None, 5))
    assert model.built
    assert model.input_shape == (None, 5)
    assert model.layers[0].kernel.shape == (5, 4)
    assert model.count_params() == 5 * 4 + 4 + 4 * 2 + 2


def test_build_without_shape_raises():
    with pytest.raises(ValueError, match="input shape") as info:
        Sequential([Dense(2)]).build()
    assert "Input(shape=" in str(info.value)


def test_build_on_first_call():
    model = Sequential([Dense(4), Dense(2)])
    y = model(np.zeros((3, 6), dtype=np.float32))
    assert y.shape == (3, 2)
    assert model.built and model.input_shape == (None, 6)


def test_count_params_mnist_mlp():
    model = mnist_mlp()
    assert model.count_params() == 101770
    assert [l.count_params() for l in model.layers] == [0, 100480, 1290]
    assert [l.output_shape for l in model.layers] == [(None, 784), (None, 128), (None, 10)]
    assert model.output_shape == (None, 10)


# ----------------------------------------------------------------------------- weights
def test_get_weights_returns_copies():
    model = mnist_mlp()
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(784, 128), (128,), (128, 10), (10,)]
    assert all(w.dtype == np.float32 for w in weights)
    weights[0][...] = 123.0
    assert not np.any(model.get_weights()[0] == 123.0)
    assert not np.shares_memory(weights[0], model._params)


def test_set_weights_copies_values():
    model = mnist_mlp()
    new = [np.full(w.shape, i + 1, dtype=np.float32) for i, w in enumerate(model.get_weights())]
    model.set_weights(new)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_array_equal(w, i + 1)
    new[0][...] = -5  # no aliasing with the caller's arrays
    assert model.get_weights()[0][0, 0] == 1


def test_set_weights_errors():
    model = mnist_mlp()
    weights = model.get_weights()
    with pytest.raises(ValueError, match="expects 4 weight arrays; received 3"):
        model.set_weights(weights[:3])
    weights[2] = np.zeros((10, 128), dtype=np.float32)
    with pytest.raises(ValueError) as info:
        model.set_weights(weights)
    msg = str(info.value)
    assert "dense_1/kernel" in msg and "(128, 10)" in msg and "(10, 128)" in msg


def test_weights_are_views_into_one_arena():
    model = mnist_mlp()
    params, grads = model._params, model._grads
    assert params.ndim == 1 and params.size == 101770 and params.dtype == np.float32
    assert grads.shape == params.shape and grads.dtype == params.dtype
    assert params.flags.c_contiguous
    offset = 0
    for w in model.weights:
        assert np.shares_memory(w.value, params)
        assert np.shares_memory(w.grad, grads)
        assert model.weight_offset(w) == offset
        offset += w.size
    # Writing the arena is visible through the layers, and vice versa.
    params[:] = 0.5
    assert np.all(model.layers[1].kernel.value == 0.5)
    model.layers[2].bias.value[...] = 7
    assert np.all(params[-10:] == 7)
    # set_weights writes into the arena (does not rebind).
    model.set_weights([np.ones(w.shape, np.float32) for w in model.weights])
    assert np.all(params == 1)


def test_arena_keeps_initial_values_when_packed():
    set_random_seed(5)
    layer = Dense(3)
    layer.build_for((None, 4))
    before = layer.kernel.value.copy()
    model = Sequential([Input(shape=(4,)), layer])
    np.testing.assert_array_equal(model.layers[0].kernel.value, before)
    assert np.shares_memory(layer.kernel.value, model._params)


def test_trainable_and_non_trainable_weights():
    model = mnist_mlp()
    assert len(model.trainable_weights) == 4 and model.non_trainable_weights == []
    model.layers[1].trainable = False
    assert len(model.trainable_weights) == 2 and len(model.non_trainable_weights) == 2


def test_float64_model_has_float64_arena():
    model = Sequential([Dense(3, input_shape=(2,), dtype="float64"), Dense(1, dtype="float64")])
    assert model._params.dtype == np.float64


# ----------------------------------------------------------------------------- summary
EXPECTED_SUMMARY = [
    'Model: "sequential"',
    "_________________________________________________________________",
    " Layer (type)                Output Shape              Param #   ",
    "=================================================================",
    " flatten (Flatten)           (None, 784)               0         ",
    "                                                                 ",
    " dense (Dense)               (None, 128)               100480    ",
    "                                                                 ",
    " dense_1 (Dense)             (None, 10)                1290      ",
    "                                                                 ",
    "=================================================================",
    "Total params: 101770 (397.54 KB)",
    "Trainable params: 101770 (397.54 KB)",
    "Non-trainable params: 0 (0.00 Byte)",
    "_________________________________________________________________",
]


def test_summary_matches_tf_keras_2_13_format():
    lines = []
    mnist_mlp().summary(print_fn=lines.append)
    assert lines == EXPECTED_SUMMARY
    # the column stops of tf.keras 2.13+: 29 / 55 / 65
    row = EXPECTED_SUMMARY[6]
    assert row.index("(None") == 29 and row.index("100480") == 55 and len(row) == 65


def test_summary_prints_to_stdout_by_default(capsys):
    mnist_mlp().summary()
    assert capsys.readouterr().out.splitlines() == EXPECTED_SUMMARY


def test_summary_non_trainable():
    model = mnist_mlp()
    model.layers[2].trainable = False
    lines = []
    model.summary(print_fn=lines.append)
    assert "Trainable params: 100480 (392.50 KB)" in lines
    assert "Non-trainable params: 1290 (5.04 KB)" in lines
    assert "Total params: 101770 (397.54 KB)" in lines


def test_summary_unbuilt_raises():
    with pytest.raises(ValueError, match="not yet been built"):
        Sequential([Dense(2)]).summary()


# ----------------------------------------------------------------------------- calling
def test_call_matches_numpy_forward():
    model = Sequential([Dense(5, activation="relu", input_shape=(3,)), Dense(2, activation="sigmoid")])
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    W1, b1, W2, b2 = [w.astype(np.float64) for w in model.get_weights()]
    expected = 1 / (1 + np.exp(-(np.maximum(x @ W1 + b1, 0) @ W2 + b2)))
    np.testing.assert_allclose(model(x), expected, rtol=1e-5, atol=1e-6)


def test_activation_layer_in_model():
    model = Sequential([Dense(4, input_shape=(3,)), Activation("tanh")])
    x = np.ones((2, 3), dtype=np.float32)
    W, b = model.get_weights()
    np.testing.assert_allclose(model(x), np.tanh(x @ W + b), rtol=1e-5, atol=1e-6)


def test_get_config():
    config = mnist_mlp().get_config()
    assert config["name"] == "sequential"
    assert [l["class_name"] for l in config["layers"]] == ["Flatten", "Dense", "Dense"]
    assert config["layers"][1]["config"]["units"] == 128
    assert config["build_input_shape"] == (None, 28, 28)


def test_get_layer():
    model = mnist_mlp()
    assert model.get_layer("dense_1") is model.layers[2]
    assert model.get_layer(index=0) is model.layers[0]
    with pytest.raises(ValueError, match="No such layer: nope"):
        model.get_layer("nope")


def test_setting_model_trainable_propagates_to_layers_and_freezes_batch_norm_statistics():
    # Keras: `model.trainable = False` sets every layer's flag, so BatchNormalization runs in
    # inference mode during fit and nothing, moving statistics included, changes.
    model = fastnn.Sequential([fastnn.layers.Dense(4, activation="relu", input_shape=(3,)),
                               fastnn.layers.BatchNormalization(), fastnn.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.trainable = False
    assert all(not layer.trainable for layer in model.layers)
    assert model.trainable_weights == [] and len(model.non_trainable_weights) == len(model.weights)
    before = model.get_weights()
    x = np.random.default_rng(0).standard_normal((16, 3))
    model.fit(x, x[:, :1], epochs=2, batch_size=4, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.trainable = True
    assert all(layer.trainable for layer in model.layers)
    model.fit(x, x[:, :1], epochs=1, batch_size=4, verbose=0)
    assert not np.array_equal(before[0], model.get_weights()[0])
