"""to_json/model_from_json, clone_model, deepcopy/pickle, model(x).numpy(), normalize, pad_sequences,
clear_session: Keras 3's documented behaviour."""
import copy
import json
import pickle

import numpy as np
import pytest

import fastnn
from fastnn import layers
from fastnn.models import clone_model, model_from_json
from fastnn.utils import normalize, pad_sequences

X = np.random.default_rng(1).random((32, 4), dtype=np.float32)
Y = np.arange(32) % 3


def _trained(compiled=True):
    model = fastnn.Sequential([fastnn.Input((4,)), layers.Dense(8, activation="relu", kernel_regularizer="l2"),
                               layers.Dropout(0.1), layers.Dense(3, activation="softmax")])
    if compiled:
        model.compile(fastnn.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(X, Y, epochs=2, batch_size=8, verbose=0)
    return model


# ---------------------------------------------------------------- JSON
def test_to_json_has_keras_layout_and_round_trips_the_architecture():
    model = _trained()
    document = json.loads(model.to_json())
    assert {"module", "class_name", "config", "registered_name"} <= set(document)
    assert document["class_name"] == "Sequential"
    assert document["config"]["layers"] == model.get_config()["layers"]
    rebuilt = model_from_json(model.to_json())
    assert rebuilt.get_config() == model.get_config()
    assert [w.shape for w in rebuilt.get_weights()] == [w.shape for w in model.get_weights()]
    assert not np.array_equal(rebuilt.get_weights()[0], model.get_weights()[0])  # no weights in JSON
    assert rebuilt.compiled and rebuilt.optimizer is not model.optimizer  # compile_config, as Keras 3
    assert rebuilt.optimizer.learning_rate == pytest.approx(1e-2)
    rebuilt.fit(X, Y, verbose=0)


def test_to_json_passes_kwargs_to_json_dumps_and_uncompiled_has_no_compile_config():
    model = _trained(compiled=False)
    text = model.to_json(indent=2)
    assert "\n  " in text and "compile_config" not in json.loads(text)
    assert not model_from_json(text).compiled


@pytest.mark.parametrize("bad,match", [("{", "not valid JSON"), (42, "must be a JSON string"),
                                       ('{"class_name": "Foo", "config": {}}', "unknown model class 'Foo'"),
                                       ('{"class_name": "Sequential", "config": {}, "x": 1}', "unrecognized")])
def test_model_from_json_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        model_from_json(bad)


def test_model_from_json_refuses_custom_objects():
    with pytest.raises(ValueError, match="custom_objects"):
        model_from_json(_trained(False).to_json(), custom_objects={"MyLayer": object})


# ---------------------------------------------------------------- clone_model
def test_clone_model_same_architecture_fresh_weights_not_compiled():
    model = _trained()
    clone = clone_model(model)
    assert clone is not model and clone.built and not clone.compiled
    assert [l.get_config() for l in clone.layers] == [l.get_config() for l in model.layers]
    assert all(a is not b for a, b in zip(clone.layers, model.layers))
    assert not np.array_equal(clone.get_weights()[0], model.get_weights()[0])
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone.predict(X, verbose=0), model.predict(X, verbose=0))


def test_clone_model_clone_function_can_share_or_change_layers():
    model = _trained(False)
    shared = clone_model(model, clone_function=lambda layer: layer)
    assert all(a is b for a, b in zip(shared.layers, model.layers))

    def no_dropout(layer):
        config = layer.get_config()
        if isinstance(layer, layers.Dropout):
            config["rate"] = 0.0
        return type(layer).from_config(config)

    assert clone_model(model, clone_function=no_dropout).layers[1].rate == 0.0
    with pytest.raises(ValueError, match="must return a Layer"):
        clone_model(model, clone_function=lambda layer: None)


def test_clone_model_rejects_what_fastnn_has_no_use_for():
    with pytest.raises(ValueError, match="input_tensors.*not supported"):
        clone_model(_trained(False), input_tensors=[object()])
    with pytest.raises(ValueError, match="Sequential"):
        clone_model("model")


# ---------------------------------------------------------------- deepcopy / pickle
@pytest.mark.parametrize("copier", [copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))])
def test_copies_keep_weights_and_optimizer_state(copier):
    model = _trained()
    twin = copier(model)
    assert twin is not model and twin.optimizer is not model.optimizer
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert twin.optimizer.iterations == model.optimizer.iterations == 8
    # same state (and the same dropout draws) -> one more epoch gives identical weights
    fastnn.utils.set_random_seed(3)
    model.fit(X, Y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    fastnn.utils.set_random_seed(3)
    twin.fit(X, Y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_copy_of_an_unbuilt_model():
    model = fastnn.Sequential([layers.Dense(2)])
    twin = copy.deepcopy(model)
    assert not twin.built and len(twin.layers) == 1


# ---------------------------------------------------------------- model(x)
def test_model_call_returns_an_array_with_numpy():
    model = _trained()
    out = model(X[:5])
    assert isinstance(out, np.ndarray) and out.shape == (5, 3)
    plain = out.numpy()
    assert type(plain) is np.ndarray
    np.testing.assert_array_equal(plain, model.predict(X[:5], verbose=0))


# ---------------------------------------------------------------- normalize
def test_normalize_matches_keras_values():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, -1.0]])
    np.testing.assert_allclose(normalize(x), [[0.6, 0.8], [0.0, 0.0], [2 ** -0.5, -(2 ** -0.5)]])
    np.testing.assert_allclose(normalize(x, order=1), [[3 / 7, 4 / 7], [0, 0], [0.5, -0.5]])
    np.testing.assert_allclose(normalize([[3, 4]]), [[0.6, 0.8]])


def test_normalize_axis_zero_divides_columns():
    # Keras 3's `axis or -1` puts the norm back on the wrong axis for axis=0; fastnn keeps axis 0.
    x = np.array([[3.0, 1.0, 0.0], [4.0, 0.0, 0.0]])
    np.testing.assert_allclose(normalize(x, axis=0), [[0.6, 1.0, 0.0], [0.8, 0.0, 0.0]])
    with pytest.raises(ValueError, match="axis"):
        normalize(x, axis=2)


# ---------------------------------------------------------------- pad_sequences
SEQ = [[1], [2, 3], [4, 5, 6]]


def test_pad_sequences_keras_doc_examples():
    out = pad_sequences(SEQ)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [[0, 0, 1], [0, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(pad_sequences(SEQ, value=-1), [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(pad_sequences(SEQ, padding="post"), [[1, 0, 0], [2, 3, 0], [4, 5, 6]])
    np.testing.assert_array_equal(pad_sequences(SEQ, maxlen=2), [[0, 1], [2, 3], [5, 6]])
    np.testing.assert_array_equal(pad_sequences(SEQ, maxlen=2, truncating="post"), [[0, 1], [2, 3], [4, 5]])


def test_pad_sequences_dtype_empty_and_vectors():
    assert pad_sequences(SEQ, dtype="float32").dtype == np.float32
    np.testing.assert_array_equal(pad_sequences([[], [7]]), [[7 - 7], [7]])
    assert pad_sequences([]).shape == (0, 0)
    assert pad_sequences(SEQ, maxlen=0).shape == (3, 0)
    vectors = pad_sequences([np.ones((1, 2)), np.ones((2, 2))], dtype="float32")
    assert vectors.shape == (2, 2, 2) and vectors[0, 0].tolist() == [0, 0]
    strings = pad_sequences([["a"], ["b", "c"]], dtype=object, value="<pad>")
    assert strings.tolist() == [["<pad>", "a"], ["b", "c"]]


@pytest.mark.parametrize("kwargs,match", [({"padding": "middle"}, 'Padding type "middle"'),
                                          ({"truncating": "x"}, 'Truncating type "x"'),
                                          ({"maxlen": -1}, "maxlen"),
                                          ({"value": "pad"}, "dtype=object")])
def test_pad_sequences_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pad_sequences(SEQ, **kwargs)


def test_pad_sequences_non_iterable():
    with pytest.raises(ValueError, match="non-iterable"):
        pad_sequences([1, 2])


# ---------------------------------------------------------------- clear_session
def test_clear_session_resets_names():
    fastnn.backend.clear_session()
    assert layers.Dense(1).name == "dense"
    assert layers.Dense(1).name == "dense_1"
    fastnn.backend.clear_session(free_memory=True)
    assert layers.Dense(1).name == "dense"
    assert fastnn.Sequential().name == "sequential"
