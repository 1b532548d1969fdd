"""Dropout: inverted dropout in training only, vs the NumPy twin, fixed-mask gradients, seeding,
noise_shape, config, saving and errors (Keras 3 layers/regularization/dropout.py semantics)."""
import numpy as np
import pytest

import fastnn
from fastnn._kernels import _reference as R
from fastnn.layers import Dense, Dropout
from fastnn.models import Sequential, load_model
from fastnn.utils.rng_utils import set_random_seed

from _checks import assert_close, numerical_gradient


@pytest.fixture(autouse=True)
def _fresh_session():
    fastnn.backend.clear_session()
    set_random_seed(0)
    yield
    fastnn.backend.clear_session()


def _x(shape=(40, 30), dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_training_matches_the_twin_fed_the_same_numbers(dtype):
    """With seed=s the layer draws Generator(s).random(shape): the twin given those numbers agrees exactly."""
    x = _x(dtype=dtype)
    layer = Dropout(0.3, seed=11, dtype=np.dtype(dtype).name)
    y = layer(x, training=True)
    u = np.random.default_rng(11).random(x.shape, dtype=dtype)
    expected, mask = R.dropout_forward(x, u, 0.3)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, expected)
    dy = _x(seed=1, dtype=dtype)
    np.testing.assert_array_equal(layer.backward(dy), R.dropout_backward(dy, mask, 0.3))


def test_drops_about_rate_and_scales_the_rest():
    x = np.ones((400, 250), np.float32)
    y = Dropout(0.2)(x, training=True)
    dropped = (y == 0).mean()
    assert dropped == pytest.approx(0.2, abs=0.005)
    assert np.all((y == 0) | (y == np.float32(1.25)))
    assert y.mean() == pytest.approx(1.0, abs=0.01)


def test_inference_is_the_identity():
    x = _x()
    layer = Dropout(0.5)
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer(x, training=False), x)
    dy = _x(seed=2)
    np.testing.assert_array_equal(layer.backward(dy), dy)
    assert layer.backward(dy, need_dx=False) is None


def test_rate_zero_is_the_identity_even_in_training():
    x = _x()
    layer = Dropout(0.0)
    np.testing.assert_array_equal(layer(x, training=True), x)
    np.testing.assert_array_equal(layer.backward(x), x)


def test_rate_one_drops_everything():
    # Keras 3 accepts rate=1 (K3 numpy backend returns zeros); no division by zero.
    x = _x()
    layer = Dropout(1.0)
    y = layer(x, training=True)
    assert np.all(y == 0)
    assert np.all(layer.backward(x) == 0)


def test_gradient_with_a_fixed_mask_float64():
    """Finite differences of sum(R * dropout(x)) with the layer's stream restarted before every call."""
    x = _x((4, 6), np.float64)
    r = _x((4, 6), np.float64, seed=3)
    layer = Dropout(0.4, seed=5, dtype="float64")

    def objective(_):
        layer._rng = np.random.default_rng(5)  # the same mask on every call
        return float((layer.call(x, training=True) * r).sum())

    objective(None)
    analytic = layer.backward(r.copy())
    assert np.any(analytic == 0) and np.any(analytic != 0)
    assert_close(analytic, numerical_gradient(objective, x, 1e-5), rtol=1e-7, atol=1e-9)


def test_set_random_seed_makes_masks_reproducible():
    x = _x()
    set_random_seed(42)
    a = Dropout(0.5)(x, training=True)
    b_layer = Dropout(0.5)
    set_random_seed(42)
    b = b_layer(x, training=True)
    np.testing.assert_array_equal(a, b)
    c = b_layer(x, training=True)  # the next draw of the stream: another mask
    assert not np.array_equal(b, c)


def test_seed_gives_the_layer_its_own_stream():
    x = _x()
    set_random_seed(1)
    a = Dropout(0.5, seed=7)(x, training=True)
    set_random_seed(2)  # does not touch a seeded layer's stream
    b = Dropout(0.5, seed=7)(x, training=True)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, Dropout(0.5, seed=8)(x, training=True))


def test_noise_shape_broadcasts_one_decision_per_row():
    x = np.ones((200, 8), np.float32)
    layer = Dropout(0.5, noise_shape=(None, 1), seed=3)
    y = layer(x, training=True)
    rows_kept = np.all(y == 2, axis=1)
    rows_dropped = np.all(y == 0, axis=1)
    assert np.all(rows_kept | rows_dropped)
    assert 0.3 < rows_kept.mean() < 0.7
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), y)
    x3 = np.ones((5, 4, 3), np.float32)
    y3 = Dropout(0.5, noise_shape=(5, 1, 3), seed=0)(x3, training=True)
    assert np.all(y3 == y3[:, :1, :])  # the same mask at every time step


def test_fit_is_bit_identical_under_set_random_seed():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 5)).astype(np.float32), rng.integers(0, 3, 64)

    def run():
        set_random_seed(123)
        model = Sequential([Dense(16, activation="relu", input_shape=(5,)), Dropout(0.5),
                            Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
        return model.get_weights(), history.history["loss"]

    (w1, l1), (w2, l2) = run(), run()
    assert l1 == l2
    assert all(np.array_equal(a, b) for a, b in zip(w1, w2))


def test_predict_and_evaluate_do_not_drop():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((32, 5)).astype(np.float32), rng.integers(0, 3, 32)
    model = Sequential([Dense(8, input_shape=(5,)), Dropout(0.9), Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))
    np.testing.assert_array_equal(model(x), model.predict(x, verbose=0))
    assert model.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    assert not np.array_equal(model(x, training=True), model(x, training=True))


def test_summary_counts_no_parameters():
    model = Sequential([Dense(4, input_shape=(3,)), Dropout(0.2)])
    assert model.layers[1].count_params() == 0
    lines = []
    model.summary(print_fn=lines.append)
    assert any(line.startswith(" dropout (Dropout)") and line.rstrip().endswith(" 0") for line in lines)


def test_config_round_trip_and_saving(tmp_path):
    layer = Dropout(0.25, noise_shape=(None, 1), seed=9, name="drop")
    config = layer.get_config()
    assert config["rate"] == 0.25 and config["seed"] == 9 and config["noise_shape"] == [None, 1]
    clone = Dropout.from_config(config)
    assert clone.get_config() == config and clone.noise_shape == (None, 1)
    model = Sequential([Dense(4, input_shape=(3,)), Dropout(0.3, seed=2), Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.save(tmp_path / "m.fastnn")
    loaded = load_model(tmp_path / "m.fastnn")
    assert isinstance(loaded.layers[1], Dropout) and loaded.layers[1].rate == 0.3 and loaded.layers[1].seed == 2
    x = _x((5, 3))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("rate", [-0.1, 1.5, "0.5", None, float("nan"), True])
def test_bad_rate(rate):
    with pytest.raises(ValueError, match="Dropout 'dropout': argument `rate` must be in \\[0.0, 1.0\\]") as info:
        Dropout(rate)
    assert repr(rate) in str(info.value)


def test_bad_arguments():
    with pytest.raises(ValueError, match="`seed` must be a non-negative integer or None; received 1.5"):
        Dropout(0.5, seed=1.5)
    with pytest.raises(ValueError, match="`noise_shape` must be a tuple of positive integers"):
        Dropout(0.5, noise_shape="(None, 1)")
    with pytest.raises(ValueError, match="`noise_shape` must be a tuple of positive integers"):
        Dropout(0.5, noise_shape=(None, 0))
    with pytest.raises(ValueError, match="one entry per input dimension.*\\(4, 3\\)"):
        Dropout(0.5, noise_shape=(None, 1, 1))(np.ones((4, 3), np.float32), training=True)
    with pytest.raises(ValueError, match="must broadcast to the input shape \\(4, 3\\)"):
        Dropout(0.5, noise_shape=(None, 2))(np.ones((4, 3), np.float32), training=True)
    with pytest.raises(TypeError, match="Unrecognized keyword arguments passed to Dropout.*'rat'"):
        Dropout(0.5, rat=0.1)
