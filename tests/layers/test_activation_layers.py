"""ReLU, LeakyReLU, PReLU, ELU, Softmax and the activations of issue 14 as Keras users reach them: Keras 3's
documented numbers, float64 gradient checks, models on the compiled engine against its NumPy twin, and
save/load round trips."""
import math

import numpy as np
import pytest

import fastnn
from fastnn import activations
from fastnn.layers import ELU, Activation, Dense, LeakyReLU, PReLU, ReLU, Softmax
from fastnn.models import Sequential, load_model
from fastnn.utils.rng_utils import set_random_seed

from _checks import assert_close, check_layer_gradients, use_reference_engine

KERAS_X = np.array([[-10.0, -5.0, 0.0, 5.0, 10.0]])
NEW = ["elu", "selu", "gelu", "silu", "swish", "softplus", "softsign", "leaky_relu", "relu6", "hard_sigmoid",
       "hard_silu", "exponential", "log_softmax"]


@pytest.fixture(autouse=True)
def _fresh():
    fastnn.backend.clear_session()
    set_random_seed(0)


def test_keras_docstring_values():
    """keras/src/layers/activations/{relu,leaky_relu,softmax}.py docstring examples."""
    assert_close(ReLU(max_value=10, negative_slope=0.5, threshold=0, dtype="float64")(KERAS_X),
                 [[-5.0, -2.5, 0.0, 5.0, 10.0]], rtol=0, atol=0)
    assert_close(LeakyReLU(negative_slope=0.5, dtype="float64")(KERAS_X), [[-5.0, -2.5, 0.0, 5.0, 10.0]],
                 rtol=0, atol=0)
    assert_close(Softmax(dtype="float64")(np.array([[1.0, 2.0, 1.0]])), [[0.21194157, 0.5761169, 0.21194157]],
                 rtol=1e-7, atol=0)
    assert_close(activations.relu(KERAS_X, threshold=5.0), [[0, 0, 0, 0, 10]], rtol=0, atol=0)
    assert_close(activations.relu(KERAS_X, max_value=5.0), [[0, 0, 0, 5, 5]], rtol=0, atol=0)


def test_keras_defaults():
    x = np.array([[-1.0, 2.0]])
    assert_close(LeakyReLU(dtype="float64")(x), [[-0.3, 2.0]], rtol=1e-15, atol=0)  # the layer: 0.3
    assert_close(activations.leaky_relu(x), [[-0.2, 2.0]], rtol=1e-15, atol=0)      # the function: 0.2
    assert_close(ELU(dtype="float64")(x), [[math.exp(-1) - 1, 2.0]], rtol=1e-15, atol=0)
    assert_close(ELU(alpha=0.5, dtype="float64")(x), [[0.5 * (math.exp(-1) - 1), 2.0]], rtol=1e-15, atol=0)
    assert_close(activations.gelu(np.array([[1.0]])), [[0.5 * (1 + math.erf(1 / math.sqrt(2)))]], rtol=1e-7)
    assert activations.get("swish") is activations.silu and activations.serialize("swish") == "silu"
    assert activations.get("hard_swish") is activations.hard_silu
    layer = PReLU(dtype="float64")
    layer(x)
    assert layer.alpha.shape == (2,) and not layer.alpha.value.any()  # Keras: alpha_initializer="Zeros"


def test_leaky_relu_accepts_tf_keras_alpha_with_a_warning():
    with pytest.warns(UserWarning, match="`alpha` is deprecated"):
        layer = LeakyReLU(alpha=0.1)
    assert layer.negative_slope == 0.1


@pytest.mark.parametrize("make, message", [
    (lambda: ReLU(max_value=-1), "`max_value` must be a finite number >= 0.0 or None"),
    (lambda: ReLU(negative_slope=-0.1), "`negative_slope` must be a finite number >= 0.0"),
    (lambda: ReLU(threshold=None), "`threshold` must be a finite number"),
    (lambda: LeakyReLU(negative_slope=-1), "`negative_slope` must be a finite number >= 0.0"),
    (lambda: PReLU(alpha_constraint="non_neg"), "`alpha_constraint` is not supported"),
    (lambda: activations.gelu(np.ones((1, 2)), approximate="yes"), "`approximate` must be a bool"),
])
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_softmax_axis_other_than_last_is_refused():
    with pytest.raises(ValueError, match="last axis only"):
        Softmax(axis=1)(np.ones((2, 3, 4)))


def _away_from_kinks(shape, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape) * 2
    for kink in (0.0, 3.0, -3.0, 6.0, 1.0, 0.5):
        x[np.abs(x - kink) < 0.05] = kink + 0.2
    return x


@pytest.mark.parametrize("make", [
    lambda: ReLU(max_value=1.0, negative_slope=0.1, threshold=0.5, dtype="float64"),
    lambda: LeakyReLU(dtype="float64"), lambda: ELU(alpha=0.7, dtype="float64"), lambda: Softmax(dtype="float64"),
] + [lambda n=n: Activation(n, dtype="float64") for n in NEW], ids=["ReLU", "LeakyReLU", "ELU", "Softmax"] + NEW)
def test_layer_gradients_float64(make):
    check_layer_gradients(make(), _away_from_kinks((3, 2, 5)))


@pytest.mark.parametrize("shared_axes", [None, [1], [1, 2]])
def test_prelu_gradients_float64(shared_axes):
    layer = PReLU(alpha_initializer="random_normal", shared_axes=shared_axes, dtype="float64")
    _, grads = check_layer_gradients(layer, _away_from_kinks((4, 3, 5)))
    assert grads[layer.alpha.name].shape == {None: (3, 5), (1,): (1, 5), (1, 2): (1, 1)}[
        None if shared_axes is None else tuple(shared_axes)]


def test_prelu_shared_axes_not_leading_is_refused():
    with pytest.raises(ValueError, match="leading axes only"):
        PReLU(shared_axes=[2])(np.ones((2, 3, 4)))


@pytest.mark.parametrize("name", NEW)
def test_dense_layer_with_new_activation_gradients(name):
    layer = Dense(4, activation=name, dtype="float64")
    check_layer_gradients(layer, _away_from_kinks((3, 5)) * 0.3)


def _models(dtype="float32"):
    d = {"dtype": dtype}
    return {
        "dense_gelu": lambda: [Dense(16, activation="gelu", input_shape=(8,), **d), Dense(3, activation="softmax", **d)],
        "layers": lambda: [Dense(16, input_shape=(8,), **d), LeakyReLU(**d), Dense(12, **d), PReLU(**d),
                           Dense(12, **d), ReLU(max_value=2.0, negative_slope=0.05, threshold=0.1, **d), Dense(8, **d),
                           ELU(alpha=0.5, **d), Dense(3, **d), Softmax(**d)],
        "elementwise": lambda: [Dense(16, activation="selu", input_shape=(8,), **d), Dense(16, activation="silu", **d),
                                Activation("softplus", **d), Dense(8, activation="hard_silu", **d),
                                Activation("softsign", **d), Dense(8, activation="relu6", **d), Activation("gelu", **d),
                                Dense(3, activation="log_softmax", **d)],
    }


@pytest.mark.parametrize("kind", ["dense_gelu", "layers", "elementwise"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_models_train_on_the_engine_as_on_its_twin(kind, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((96, 8)).astype(dtype)
    y = np.argmax(x[:, :3], axis=1)
    runs = []
    for twin in (False, True):
        fastnn.backend.clear_session()
        set_random_seed(3)
        model = Sequential(_models(dtype)[kind]())
        loss = "sparse_categorical_crossentropy" if kind != "elementwise" else "mse"
        model.compile(optimizer="adam", loss=loss)
        if twin:
            use_reference_engine(model)
        target = y if kind != "elementwise" else np.eye(3, dtype=dtype)[y]
        history = model.fit(x, target, batch_size=16, epochs=2, shuffle=False, verbose=0)
        runs.append((history.history["loss"], model.predict(x, verbose=0), model.get_weights()))
    tol = dict(rtol=2e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(runs[0][0], runs[1][0], **tol)
    np.testing.assert_allclose(runs[0][1], runs[1][1], **tol)
    for a, b in zip(runs[0][2], runs[1][2]):
        np.testing.assert_allclose(a, b, **tol)
    assert runs[0][0][-1] < runs[0][0][0]  # it learns


def test_prelu_alpha_is_trained_and_regularized():
    model = Sequential([Dense(6, input_shape=(4,)), PReLU(alpha_regularizer="l2"), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).standard_normal((32, 4)).astype("float32")
    before = model.layers[1].get_weights()[0].copy()
    model.fit(x, x[:, :1] ** 2, epochs=2, verbose=0)
    assert not np.array_equal(model.layers[1].get_weights()[0], before)


@pytest.mark.parametrize("kind", ["layers", "elementwise"])
def test_save_load_round_trip(kind, tmp_path):
    model = Sequential(_models()[kind]())
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(2).standard_normal((20, 8)).astype("float32")
    model.fit(x, np.ones((20, 3), "float32"), epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = load_model(path)
    assert [type(layer).__name__ for layer in loaded.layers] == [type(layer).__name__ for layer in model.layers]
    assert [layer.get_config() for layer in loaded.layers][1:] == [layer.get_config() for layer in model.layers][1:]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
