"""BatchNormalization: Keras 3 semantics (batch statistics in training, moving statistics at inference,
moving-average updates, non-trainable moving weights), float64 gradient checks in both modes, summary
counts, config and saving, errors; and a tiny fit with Dropout against a hand-written NumPy trainer."""
import numpy as np
import pytest

import fastnn
from fastnn import initializers
from fastnn.layers import BatchNormalization, Dense, Dropout, Flatten
from fastnn.models import Sequential, load_model
from fastnn.optimizers import SGD, Adam
from fastnn.utils.rng_utils import set_random_seed

from _checks import assert_close, numerical_gradient


@pytest.fixture(autouse=True)
def _fresh_session():
    fastnn.backend.clear_session()
    set_random_seed(0)
    yield
    fastnn.backend.clear_session()


def _x(shape=(16, 5), dtype=np.float64, seed=0, loc=2.0, scale=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale + loc).astype(dtype)


def _random_affine(layer, seed=1):
    rng = np.random.default_rng(seed)
    if layer.scale:
        layer.gamma.value[...] = rng.uniform(0.5, 2.0, layer.gamma.shape)
    if layer.center:
        layer.beta.value[...] = rng.standard_normal(layer.beta.shape)


def _numpy_bn(x, gamma, beta, mean, var, eps):
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def _check_gradients(layer, x, training, seed=3):
    """backward's dX, dgamma and dbeta vs finite differences of sum(call(x, training) * R).

    (tests/_checks.check_layer_gradients also differentiates w.r.t. the moving statistics, which are
    non-trainable inputs of the inference forward and get no gradient, as in Keras.)"""
    r = np.random.default_rng(seed).standard_normal(x.shape)

    def objective(_):
        return float((layer.call(x, training=training) * r).sum())

    for w in layer.weights:
        w.grad[...] = 0
    objective(None)
    dX = layer.backward(r.copy())
    assert_close(dX, numerical_gradient(objective, x, 1e-5), rtol=1e-6, atol=1e-8, err_msg="dX")
    for w in layer.trainable_weights:
        assert_close(w.grad, numerical_gradient(objective, w.value, 1e-5), rtol=1e-6, atol=1e-8, err_msg=w.name)
    assert np.all(layer.moving_mean.grad == 0) and np.all(layer.moving_variance.grad == 0)
    return dX


# ---------------------------------------------------------------------------- forward semantics
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_uses_batch_statistics(dtype):
    x = _x(dtype=dtype)
    layer = BatchNormalization(dtype=dtype)
    layer.build_for(x.shape)
    _random_affine(layer)
    y = layer(x, training=True)
    x64 = x.astype(np.float64)
    expected = _numpy_bn(x64, layer.gamma.value, layer.beta.value, x64.mean(axis=0), x64.var(axis=0), 1e-3)
    assert y.dtype == np.dtype(dtype)
    tol = {"float32": dict(rtol=1e-5, atol=1e-5), "float64": dict(rtol=1e-12, atol=1e-12)}[dtype]
    assert_close(y, expected.astype(dtype), **tol)


def test_inference_uses_moving_statistics():
    x = _x()
    layer = BatchNormalization(epsilon=0.01)
    layer.build_for(x.shape)
    _random_affine(layer)
    rng = np.random.default_rng(2)
    layer.moving_mean.value[...] = rng.standard_normal(5)
    layer.moving_variance.value[...] = rng.uniform(0.5, 2, 5)
    expected = _numpy_bn(x, layer.gamma.value, layer.beta.value, layer.moving_mean.value,
                         layer.moving_variance.value, 0.01)
    assert_close(layer(x), expected.astype(np.float32), rtol=1e-5, atol=1e-5)
    before = layer.get_weights()
    layer(x, training=False)
    assert all(np.array_equal(a, b) for a, b in zip(before, layer.get_weights()))  # no update at inference


def test_moving_statistics_follow_the_keras_formula():
    """moving = moving * momentum + batch * (1 - momentum), with the biased batch variance (K3)."""
    layer = BatchNormalization(momentum=0.8, dtype="float64")
    a, b = _x(seed=1), _x(seed=2, loc=-1.0, scale=0.5)
    layer(a, training=True)
    layer(b, training=True)
    mean = (0.0 * 0.8 + a.mean(axis=0) * 0.2) * 0.8 + b.mean(axis=0) * 0.2
    var = (1.0 * 0.8 + a.var(axis=0) * 0.2) * 0.8 + b.var(axis=0) * 0.2
    assert_close(layer.moving_mean.value, mean, rtol=1e-12, atol=1e-14)
    assert_close(layer.moving_variance.value, var, rtol=1e-12, atol=1e-14)


def test_frozen_layer_runs_in_inference_mode():
    """K3: trainable=False makes BatchNormalization use (and keep) its moving statistics even in training."""
    x = _x()
    layer = BatchNormalization(trainable=False)
    inference = layer(x)
    np.testing.assert_array_equal(layer(x, training=True), inference)
    np.testing.assert_array_equal(layer.moving_mean.value, 0)
    np.testing.assert_array_equal(layer.moving_variance.value, 1)


def test_fit_leaves_a_frozen_layer_unchanged():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((48, 5)).astype(np.float32) + 3, rng.integers(0, 2, 48)
    model = Sequential([Dense(6, input_shape=(5,)), BatchNormalization(trainable=False),
                        Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    bn = model.layers[1]
    before = bn.get_weights()
    dense_before = model.layers[0].kernel.numpy()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, bn.get_weights()))
    assert not np.array_equal(dense_before, model.layers[0].kernel.value)  # gradients still flow through it


def test_higher_rank_inputs_normalize_the_last_axis():
    x = _x((3, 4, 5))
    layer = BatchNormalization(dtype="float64")
    y = layer(x, training=True)
    flat = x.reshape(-1, 5)
    assert y.shape == x.shape
    assert_close(y, ((flat - flat.mean(axis=0)) / np.sqrt(flat.var(axis=0) + 1e-3)).reshape(x.shape))
    _random_affine(layer)
    assert _check_gradients(layer, x, training=True).shape == x.shape
    assert _check_gradients(layer, x, training=False).shape == x.shape


# ---------------------------------------------------------------------------- gradients (float64)
@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False), (False, False)])
def test_gradients_in_training(center, scale):
    x = _x((6, 4))
    layer = BatchNormalization(center=center, scale=scale, dtype="float64")
    layer.build_for(x.shape)
    _random_affine(layer)
    _check_gradients(layer, x, training=True)


@pytest.mark.parametrize("center,scale", [(True, True), (False, False)])
def test_gradients_in_inference(center, scale):
    x = _x((6, 4))
    layer = BatchNormalization(center=center, scale=scale, dtype="float64")
    layer.build_for(x.shape)
    _random_affine(layer)
    layer.moving_mean.value[...] = [0.5, -1, 2, 0]
    layer.moving_variance.value[...] = [0.5, 1, 2, 4]
    _check_gradients(layer, x, training=False)


def test_backward_accumulates_and_need_dx_false():
    x, dy = _x((5, 3)), _x((5, 3), seed=4)
    layer = BatchNormalization(dtype="float64")
    layer(x, training=True)
    layer.backward(dy)
    once = layer.beta.grad.copy()
    assert layer.backward(dy, need_dx=False) is None
    assert_close(layer.beta.grad, 2 * once)
    assert_close(once, dy.sum(axis=0))


def test_backward_before_call_raises():
    layer = BatchNormalization()
    layer.build_for((None, 3))
    with pytest.raises(RuntimeError, match="before call"):
        layer.backward(np.zeros((2, 3), np.float32))


# ---------------------------------------------------------------------------- weights, summary, config
def test_weights_names_order_and_trainability():
    layer = BatchNormalization(name="bn")
    layer.build_for((None, 7))
    assert [w.name for w in layer.weights] == ["bn/gamma", "bn/beta", "bn/moving_mean", "bn/moving_variance"]
    assert [w.name for w in layer.trainable_weights] == ["bn/gamma", "bn/beta"]
    assert [w.name for w in layer.non_trainable_weights] == ["bn/moving_mean", "bn/moving_variance"]
    gamma, beta, mean, var = layer.get_weights()
    assert np.all(gamma == 1) and np.all(beta == 0) and np.all(mean == 0) and np.all(var == 1)
    assert layer.count_params() == 28
    plain = BatchNormalization(center=False, scale=False)
    plain.build_for((None, 7))
    assert [w.name.split("/")[1] for w in plain.weights] == ["moving_mean", "moving_variance"]
    assert plain.gamma is None and plain.beta is None and not plain.trainable_weights
    custom = BatchNormalization(gamma_initializer=initializers.Constant(0.5), moving_variance_initializer="zeros")
    custom.build_for((None, 2))
    assert np.all(custom.gamma.value == 0.5) and np.all(custom.moving_variance.value == 0)


def test_summary_counts_moving_statistics_as_non_trainable():
    """Keras: Dense(128) + BatchNormalization -> 512 parameters, 256 of them non-trainable."""
    model = Sequential([Flatten(input_shape=(28, 28)), Dense(128, activation="relu"), BatchNormalization(),
                        Dropout(0.2), Dense(10, activation="softmax")])
    lines = []
    model.summary(print_fn=lines.append)
    row = next(line for line in lines if line.startswith(" batch_normalization (Batch"))
    assert row.rstrip().endswith(" 512")
    assert "Total params: 102282 (399.54 KB)" in lines
    assert "Trainable params: 102026 (398.54 KB)" in lines
    assert "Non-trainable params: 256 (1.00 KB)" in lines
    assert len(model.trainable_weights) == 6 and len(model.non_trainable_weights) == 2


def test_get_config_from_config_round_trip():
    layer = BatchNormalization(momentum=0.9, epsilon=1e-5, center=False, name="bn",
                               gamma_initializer=initializers.RandomUniform(0.9, 1.1, seed=3))
    config = layer.get_config()
    assert (config["axis"], config["momentum"], config["epsilon"], config["center"], config["scale"]) == \
        (-1, 0.9, 1e-5, False, True)
    assert config["gamma_initializer"]["class_name"] == "RandomUniform"
    assert config["moving_variance_initializer"]["class_name"] == "Ones"
    clone = BatchNormalization.from_config(config)
    assert clone.get_config() == config
    assert BatchNormalization().get_config()["momentum"] == 0.99
    assert BatchNormalization().get_config()["epsilon"] == 1e-3


def test_save_and_load_keep_the_moving_statistics(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 6)).astype(np.float32) * 2 + 1, rng.integers(0, 3, 64)
    model = Sequential([Dense(8, activation="relu", input_shape=(6,)), BatchNormalization(momentum=0.5),
                        Dropout(0.3), Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert not np.all(model.layers[1].moving_mean.value == 0)
    model.save(tmp_path / "m.fastnn")
    loaded = load_model(tmp_path / "m.fastnn")
    assert isinstance(loaded.layers[1], BatchNormalization) and loaded.layers[1].momentum == 0.5
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs,match", [
    ({"momentum": 1.5}, "`momentum` must be in \\[0.0, 1.0\\]; received 1.5"),
    ({"epsilon": 0}, "`epsilon` must be in \\(0.0, inf\\]; received 0"),
    ({"epsilon": "1e-3"}, "`epsilon` must be in"),
    ({"axis": "last"}, "`axis` must be an integer; received 'last'"),
    ({"center": "yes"}, "`center` must be True or False"),
    ({"gamma_regularizer": "l2"}, "`gamma_regularizer` is not supported by fastnn yet"),
    ({"beta_constraint": "non_neg"}, "`beta_constraint` is not supported by fastnn yet"),
    ({"synchronized": True}, "synchronized=True is only supported with the TensorFlow backend"),
    ({"gamma_initializer": "onez"}, "Could not interpret initializer identifier: 'onez'"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BatchNormalization(**kwargs)


def test_unknown_kwarg_and_bad_shapes():
    with pytest.raises(TypeError, match="Unrecognized keyword arguments passed to BatchNormalization.*'momentun'"):
        BatchNormalization(momentun=0.9)
    with pytest.raises(ValueError, match="normalizes the last axis only.*axis=1.*\\(None, 3, 4\\)"):
        BatchNormalization(axis=1).build_for((None, 3, 4))
    with pytest.raises(ValueError, match="expects input of shape \\(None, ..., features\\).*\\(None,\\)"):
        BatchNormalization().build_for((None,))
    layer = BatchNormalization(name="bn")
    layer(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="'bn' expects input of shape \\(None, 4\\); received \\(2, 5\\)"):
        layer(np.zeros((2, 5), np.float32))
    assert BatchNormalization(axis=1).build_for((None, 4)) == (None, 4)  # axis 1 is the last axis of 2-D input


# ---------------------------------------------------------------------------- training with fit
def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_fit_matches_a_hand_written_numpy_trainer():
    """Three full-batch SGD steps of Dense-relu -> BN -> Dropout(seed) -> Dense-softmax in float64 against a
    NumPy trainer with the textbook BatchNorm backward (Ioffe & Szegedy 2015) and the same dropout numbers."""
    rng = np.random.default_rng(7)
    n, lr, momentum, eps, rate = 16, 0.1, 0.9, 1e-3, 0.5
    x, y = rng.standard_normal((n, 4)), rng.integers(0, 3, n)
    model = Sequential([Dense(6, activation="relu", input_shape=(4,), dtype="float64"),
                        BatchNormalization(momentum=momentum, dtype="float64"),
                        Dropout(rate, seed=3, dtype="float64"),
                        Dense(3, activation="softmax", dtype="float64")])
    model.compile(optimizer=SGD(learning_rate=lr), loss="sparse_categorical_crossentropy")
    W1, b1, g, be, mm, mv, W2, b2 = [w.copy() for w in model.get_weights()]
    losses = model.fit(x, y, epochs=3, batch_size=n, shuffle=False, verbose=0).history["loss"]

    draws, onehot, expected = np.random.default_rng(3), np.eye(3)[y], []
    for _ in range(3):
        z1 = x @ W1 + b1
        h = np.maximum(z1, 0)
        mu, var = h.mean(axis=0), h.var(axis=0)
        inv = 1 / np.sqrt(var + eps)
        xh = (h - mu) * inv
        bn = g * xh + be
        mm, mv = mm * momentum + mu * (1 - momentum), mv * momentum + var * (1 - momentum)
        keep = draws.random((n, 6)) < 1 - rate
        d = np.where(keep, bn / (1 - rate), 0)
        p = _softmax(d @ W2 + b2)
        expected.append(-np.log(p[np.arange(n), y]).mean())
        dz2 = (p - onehot) / n
        dW2, db2, dd = d.T @ dz2, dz2.sum(axis=0), dz2 @ W2.T
        dbn = np.where(keep, dd / (1 - rate), 0)
        dg, dbe = (dbn * xh).sum(axis=0), dbn.sum(axis=0)
        dxh = dbn * g
        dvar = (dxh * (h - mu)).sum(axis=0) * -0.5 * inv ** 3
        dmu = -(dxh * inv).sum(axis=0) + dvar * (-2 * (h - mu)).mean(axis=0)
        dh = dxh * inv + dvar * 2 * (h - mu) / n + dmu / n
        dz1 = dh * (z1 > 0)
        dW1, db1 = x.T @ dz1, dz1.sum(axis=0)
        W1, b1, g, be = W1 - lr * dW1, b1 - lr * db1, g - lr * dg, be - lr * dbe
        W2, b2 = W2 - lr * dW2, b2 - lr * db2

    np.testing.assert_allclose(losses, expected, rtol=1e-10)
    for name, got, want in zip(["W1", "b1", "gamma", "beta", "moving_mean", "moving_variance", "W2", "b2"],
                               model.get_weights(), [W1, b1, g, be, mm, mv, W2, b2]):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=name)


def test_fit_with_both_layers_reduces_the_loss():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((128, 8)).astype(np.float32) * 3 + 2
    y = (x[:, 0] - x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 2)
    model = Sequential([Dense(16, activation="relu", input_shape=(8,)), BatchNormalization(), Dropout(0.2),
                        Dense(3, activation="softmax")])
    model.compile(optimizer=Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    before = model.evaluate(x, y, verbose=0)[0]
    model.fit(x, y, epochs=20, batch_size=16, verbose=0)
    after, accuracy = model.evaluate(x, y, verbose=0)
    assert after < 0.5 * before
    assert accuracy > 0.75
