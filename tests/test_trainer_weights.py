"""fit/evaluate with sample_weight, class_weight and weight regularizers (Keras 3 semantics).

Checked against hand computations of Keras' rules:
* a batch's loss is sum(w * loss) / batch_size (K3 losses/loss.py reduce_weighted_values with
  "sum_over_batch_size"), the epoch's loss the batch-size-weighted mean of those;
* class_weight becomes per-sample weights from the class of each target (argmax if one-hot; K3
  data_adapter_utils.class_weight_to_sample_weights), for the training data only;
* plain `metrics` are not weighted;
* the regularization penalty of the trainable weights a batch starts from is added to the loss
  reported by fit (training and validation) and evaluate (K3 Trainer.compute_loss), and its gradient
  to the weights' gradients;
plus an end-to-end float64 finite-difference check of one weighted, regularized SGD step.
"""
import numpy as np
import pytest

import fastnn
from fastnn import Sequential, losses, optimizers, regularizers
from fastnn.layers import Dense
from fastnn.utils import set_random_seed, to_categorical

from _checks import assert_close, numerical_gradient

N, F, C = 24, 4, 3


@pytest.fixture(autouse=True)
def _fresh():
    fastnn.backend.clear_session()
    set_random_seed(0)


def _data(n=N, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, F)).astype(np.float32)
    y = (x @ rng.standard_normal((F, C))).argmax(axis=1)
    return x, y


def _linear(units=1, **kwargs):
    """Dense(units) on F inputs with fixed weights: a model whose step can be computed by hand."""
    model = Sequential([Dense(units, input_shape=(F,), **kwargs)])
    rng = np.random.default_rng(7)
    model.set_weights([rng.uniform(-1, 1, (F, units)).astype(np.float32),
                       rng.uniform(-0.5, 0.5, units).astype(np.float32)])
    return model


def _classifier(**dense_kwargs):
    set_random_seed(3)
    model = Sequential([Dense(6, activation="relu", input_shape=(F,), **dense_kwargs),
                        Dense(C, activation="softmax")])
    return model


# ----------------------------------------------------------------------------- sample_weight
def test_sample_weighted_sgd_step_and_loss_by_hand():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, F)).astype(np.float32)
    y = rng.standard_normal((8, 1)).astype(np.float32)
    w = rng.uniform(0, 2, 8)
    w[2] = 0.0
    model = _linear()
    W, b = (v.astype(np.float64) for v in model.get_weights())
    model.compile(optimizers.SGD(0.1), "mse")
    history = model.fit(x, y, sample_weight=w, batch_size=8, epochs=1, shuffle=False, verbose=0)
    err = x @ W + b - y                                  # (8, 1)
    assert history.history["loss"][0] == pytest.approx(float((w * err[:, 0] ** 2).sum() / 8), rel=1e-6)
    g = 2 * (w[:, None] * err) / 8                       # d loss / d prediction: sum(w * l) / batch_size
    assert_close(model.get_weights()[0], W - 0.1 * x.T @ g, rtol=1e-5, atol=1e-6)
    assert_close(model.get_weights()[1], b - 0.1 * g.sum(axis=0), rtol=1e-5, atol=1e-6)


def test_epoch_loss_is_the_batch_size_weighted_mean_of_weighted_batch_losses():
    x, y = _data(n=10)
    w = np.linspace(0.5, 2.0, 10)
    model = _classifier()
    model.compile(optimizers.SGD(0.0), "sparse_categorical_crossentropy")  # no step: the loss is fixed
    per_sample = losses.sparse_categorical_crossentropy(y, model.predict(x, verbose=0)).astype(np.float64)
    history = model.fit(x, y, sample_weight=w, batch_size=4, epochs=1, shuffle=False, verbose=0)
    # batches of 4, 4, 2: sum_b n_b * (sum_{i in b} w_i l_i / n_b) / 10 = sum(w l) / 10
    assert history.history["loss"][0] == pytest.approx((w * per_sample).sum() / 10, rel=1e-6)


def test_unit_weights_train_like_no_weights():
    x, y = _data()
    results = []
    for weights in (None, np.ones(N)):
        model = _classifier()
        model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
        results.append((model.fit(x, y, sample_weight=weights, epochs=2, batch_size=8, verbose=0).history,
                        model.get_weights()))
    (h_engine, w_engine), (h_layers, w_layers) = results
    for key in h_engine:
        np.testing.assert_allclose(h_engine[key], h_layers[key], rtol=1e-5, err_msg=key)
    for a, b in zip(w_engine, w_layers):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_evaluate_sample_weight_weights_the_loss_but_not_the_metrics():
    x, y = _data()
    w = np.random.default_rng(2).uniform(0, 3, N)
    model = _classifier()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    p = model.predict(x, verbose=0)
    per_sample = losses.sparse_categorical_crossentropy(y, p).astype(np.float64)
    weighted = model.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    plain = model.evaluate(x, y, verbose=0, return_dict=True)
    assert weighted["loss"] == pytest.approx((w * per_sample).sum() / N, rel=1e-6)   # divided by N, not sum(w)
    assert weighted["accuracy"] == plain["accuracy"] == pytest.approx(np.mean(p.argmax(1) == y))
    assert model.test_on_batch(x, y, sample_weight=w)[0] == pytest.approx(weighted["loss"], rel=1e-12)


def test_validation_sample_weights_from_validation_data_and_split():
    x, y = _data(n=30)
    w = np.random.default_rng(3).uniform(0.2, 2, 30)
    model = _classifier()
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(x[:20], y[:20], epochs=2, verbose=0, validation_data=(x[20:], y[20:], w[20:]))
    expected = model.evaluate(x[20:], y[20:], sample_weight=w[20:], verbose=0)
    assert history.history["val_loss"][-1] == pytest.approx(expected, rel=1e-6)
    # validation_split takes the last third of x, y AND sample_weight (K3 train_validation_split)
    model = _classifier()
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(x, y, sample_weight=w, validation_split=1 / 3, epochs=2, verbose=0)
    expected = model.evaluate(x[20:], y[20:], sample_weight=w[20:], verbose=0)
    assert history.history["val_loss"][-1] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("weights, match", [
    (np.ones(N - 1), r"Data cardinality is ambiguous.*x sizes: 24, y sizes: 24, sample_weight sizes: 23"),
    (np.ones((N, 2)), r"`sample_weight` must hold one weight per sample, of shape \(samples,\)"),
    (np.r_[np.ones(N - 1), -1.0], r"`sample_weight` must be non-negative; received -1 at sample 23"),
    (np.r_[np.nan, np.ones(N - 1)], r"`sample_weight` contains NaN or infinity \(first at sample 0\)"),
    (["a"] * N, r"`sample_weight` must be numeric"),
])
def test_bad_sample_weight(weights, match):
    x, y = _data()
    model = _classifier()
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=match):
        model.fit(x, y, sample_weight=weights, verbose=0)
    with pytest.raises(ValueError, match=match.replace("sample_weight sizes", "validation_data sample_weight sizes")
                       .replace("`sample_weight`", "`validation_data sample_weight`")):
        model.fit(x, y, validation_data=(x, y, weights), verbose=0)


# ----------------------------------------------------------------------------- class_weight
CLASS_WEIGHT = {0: 1.0, 1: 4.0, 2: 0.25}


@pytest.mark.parametrize("loss, targets", [
    ("sparse_categorical_crossentropy", lambda y: y),
    ("sparse_categorical_crossentropy", lambda y: y.reshape(-1, 1).astype(np.float32)),  # (N, 1), rounded
    ("categorical_crossentropy", lambda y: to_categorical(y, C)),                       # one-hot: argmax
])
def test_class_weight_is_the_per_sample_weight_of_each_class(loss, targets):
    x, y = _data()
    histories = []
    for kwargs in ({"class_weight": CLASS_WEIGHT}, {"sample_weight": np.array([CLASS_WEIGHT[c] for c in y])}):
        model = _classifier()
        model.compile(optimizers.SGD(0.05), loss, metrics=["accuracy"])
        histories.append(model.fit(x, targets(y), epochs=2, batch_size=8, verbose=0, **kwargs).history)
    for key in histories[0]:
        np.testing.assert_allclose(histories[0][key], histories[1][key], rtol=1e-6, err_msg=key)


def test_class_weight_applies_to_training_only_and_binary_labels():
    x, y = _data()
    yb = (y == 1).astype(np.float32)
    model = Sequential([Dense(1, activation="sigmoid", input_shape=(F,))])
    model.compile("adam", "binary_crossentropy")
    history = model.fit(x, yb, class_weight={0: 1.0, 1: 10.0}, epochs=2, verbose=0, validation_data=(x, yb))
    assert history.history["val_loss"][-1] == pytest.approx(model.evaluate(x, yb, verbose=0), rel=1e-6)
    assert model.train_on_batch(x, yb, class_weight={0: 1.0, 1: 10.0}) > 0


@pytest.mark.parametrize("class_weight, match", [
    ({0: 1.0, 1: 2.0}, r"`class_weight` has no weight for the class\(es\) \[2\] found in `y`"),
    ([1.0, 2.0, 3.0], r"`class_weight` must be a dict mapping class indices"),
    ({"0": 1.0, 1: 1.0, 2: 1.0}, r"`class_weight` keys must be integer class indices; received the key '0'"),
    ({0: -1.0, 1: 1.0, 2: 1.0}, r"`class_weight` values must be finite non-negative numbers; received -1.0"),
    ({0: float("nan"), 1: 1.0, 2: 1.0}, r"values must be finite non-negative numbers; received nan for class 0"),
])
def test_bad_class_weight(class_weight, match):
    x, y = _data()
    model = _classifier()
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=match):
        model.fit(x, y, class_weight=class_weight, verbose=0)


def test_class_weight_and_sample_weight_together_raise_like_keras():
    x, y = _data()
    model = _classifier()
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="You cannot use `class_weight` and `sample_weight` at the same time"):
        model.fit(x, y, class_weight=CLASS_WEIGHT, sample_weight=np.ones(N), verbose=0)


# ----------------------------------------------------------------------------- regularizers
@pytest.mark.parametrize("reg, grad", [
    (regularizers.L2(0.05), lambda W: 2 * 0.05 * W),
    (regularizers.L1(0.03), lambda W: 0.03 * np.sign(W)),
    (regularizers.L1L2(l1=0.03, l2=0.05), lambda W: 0.03 * np.sign(W) + 0.1 * W),
])
def test_regularized_sgd_step_and_reported_loss_by_hand(reg, grad):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((8, F)).astype(np.float32)
    y = rng.standard_normal((8, 2)).astype(np.float32)
    plain, regularized = _linear(2), _linear(2, kernel_regularizer=reg)
    W = plain.get_weights()[0].astype(np.float64)
    penalty = reg(W)
    assert regularized.losses == [pytest.approx(penalty, rel=1e-6)] and plain.losses == []
    for model in (plain, regularized):
        model.compile(optimizers.SGD(0.1), "mse")
    data_loss = plain.evaluate(x, y, verbose=0)
    assert regularized.evaluate(x, y, verbose=0) == pytest.approx(data_loss + penalty, rel=1e-6)
    h_plain = plain.fit(x, y, batch_size=8, epochs=1, verbose=0).history
    h_reg = regularized.fit(x, y, batch_size=8, epochs=1, verbose=0).history
    # one full batch: the loss of the weights the step started from, plus their penalty
    assert h_reg["loss"][0] == pytest.approx(h_plain["loss"][0] + penalty, rel=1e-6)
    assert_close(regularized.get_weights()[0], plain.get_weights()[0] - 0.1 * grad(W), rtol=1e-5, atol=1e-6)
    assert_close(regularized.get_weights()[1], plain.get_weights()[1])  # the bias is not regularized


def test_penalty_is_in_the_validation_loss_and_bias_regularizer_counts():
    x, y = _data()
    model = _classifier(kernel_regularizer="l2", bias_regularizer=regularizers.L1(0.1))
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=2, verbose=0, validation_data=(x, y))
    hidden = model.layers[0]
    penalty = 0.01 * np.sum(hidden.kernel.value.astype(np.float64) ** 2) + 0.1 * np.abs(hidden.bias.value).sum()
    data_loss = losses.sparse_categorical_crossentropy(y, model.predict(x, verbose=0)).astype(np.float64).mean()
    assert history.history["val_loss"][-1] == pytest.approx(data_loss + penalty, rel=1e-5)
    assert sum(model.losses) == pytest.approx(penalty, rel=1e-5)


def test_frozen_layers_add_no_penalty():
    # Keras sums the regularizers of trainable weights only (Layer._get_regularization_losses).
    x, y = _data()
    model = _classifier(kernel_regularizer=regularizers.L2(1.0))
    model.compile("adam", "sparse_categorical_crossentropy")
    with_penalty = model.evaluate(x, y, verbose=0)
    model.layers[0].trainable = False
    assert model.losses == []
    assert model.evaluate(x, y, verbose=0) == pytest.approx(with_penalty - 1.0 * np.sum(
        model.layers[0].kernel.value.astype(np.float64) ** 2), rel=1e-5)


def test_weighted_regularized_step_float64_matches_finite_differences():
    """One full-batch SGD(lr=1) step moves the float64 arena by exactly -d(evaluate)/dparams, with sample
    weights and L1/L2 penalties on both layers (evaluate reports sum(w * loss) / N + penalty)."""
    rng = np.random.default_rng(5)
    x, y = _data(n=6)
    w = rng.uniform(0.1, 2.0, 6)
    model = Sequential([Dense(4, activation="tanh", input_shape=(F,), dtype="float64",
                              kernel_regularizer=regularizers.L1L2(l1=0.02, l2=0.03), bias_regularizer="l2"),
                        Dense(C, activation="softmax", dtype="float64", kernel_regularizer="l1")])
    model._params[...] = rng.uniform(-1, 1, model._params.shape)  # no weight near 0: L1's kink
    model._params[np.abs(model._params) < 0.05] = 0.5
    model.compile(optimizers.SGD(learning_rate=1.0), "sparse_categorical_crossentropy")
    params = model._params
    numeric = numerical_gradient(lambda _: model.evaluate(x, y, sample_weight=w, batch_size=6, verbose=0),
                                 params, eps=1e-6)
    before = params.copy()
    model.fit(x, y, sample_weight=w, batch_size=6, epochs=1, shuffle=False, verbose=0)
    assert_close(before - params, numeric, rtol=1e-6, atol=1e-9)


def test_a_custom_regularizer_trains_like_the_l2_it_computes():
    """A Regularizer subclass with its own penalty and gradient runs in the engine's gradient hook: the
    same losses and weights as L2 itself; an error in it stops fit with optimizer.iterations exact."""
    from fastnn.regularizers import Regularizer

    class MyL2(Regularizer):
        def __init__(self, fail_at=None):
            self.calls, self.fail_at = 0, fail_at

        def __call__(self, x):
            return 0.01 * float((np.asarray(x, np.float64) ** 2).sum())

        def backward(self, x, grad):
            self.calls += 1
            if self.calls == self.fail_at:
                raise RuntimeError("penalty failed")
            grad += np.float32(0.02) * x
            return self(x)

    x, y = _data()
    results = []
    for reg in (regularizers.L2(0.01), MyL2()):
        model = _classifier(kernel_regularizer=reg)
        model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy")
        results.append((model.fit(x, y, epochs=2, batch_size=8, verbose=0).history["loss"], model.get_weights()))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5)
    for a, b in zip(results[1][1], results[0][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    model = _classifier(kernel_regularizer=MyL2(fail_at=4))
    model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    with pytest.raises(RuntimeError, match="penalty failed"):
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert model.optimizer.iterations == 3
