"""compile / fit / evaluate / predict on small synthetic data (each test well under a second).

Covers History keys and values, validation (data and split), determinism, the
fused engine vs the layer-by-layer path, an end-to-end float64 gradient check
of the layer path, verbose output, callbacks, and the error messages.
"""
import contextlib
import io
import math

import numpy as np
import pytest

import fastnn
from fastnn import Sequential, losses, optimizers
from fastnn.callbacks import Callback
from fastnn.layers import Activation, BatchNormalization, Dense, Dropout, Flatten
from fastnn.models import runner as runner_module
from fastnn.utils import set_random_seed, to_categorical
from fastnn.utils.rng_utils import global_rng

from _checks import assert_close, numerical_gradient, use_reference_engine

N, F, C = 48, 6, 3


@pytest.fixture(autouse=True)
def _fresh():
    fastnn.backend.clear_session()
    set_random_seed(0)


def _data(n=N, f=F, c=C, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, f)).astype(np.float32)
    w = rng.standard_normal((f, c))
    y = (x @ w + 0.3 * rng.standard_normal((n, c))).argmax(axis=1)
    return x, y


def _mlp(out=C, activation="softmax", hidden=8, f=F, dtype=None, **dense_kwargs):
    kwargs = {} if dtype is None else {"dtype": dtype}
    return Sequential([Dense(hidden, activation="relu", input_shape=(f,), **kwargs),
                       Dense(out, activation=activation, **kwargs, **dense_kwargs)])


def _classifier(metrics=("accuracy",), optimizer="adam", loss="sparse_categorical_crossentropy"):
    model = _mlp()
    model.compile(optimizer=optimizer, loss=loss, metrics=list(metrics))
    return model


# ----------------------------------------------------------------------------- History
@pytest.mark.parametrize("metric", ["accuracy", "acc"])
def test_fit_history_keys_and_values(metric):
    x, y = _data()
    model = _classifier([metric])
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert history is model.history
    assert isinstance(history, fastnn.callbacks.History)
    assert set(history.history) == {"loss", metric}
    for key, values in history.history.items():
        assert len(values) == 3, key
        assert all(type(v) is float for v in values), key
    assert history.epoch == [0, 1, 2]
    assert all(0.0 <= a <= 1.0 for a in history.history[metric])


def test_fit_history_with_validation_data():
    x, y = _data()
    xv, yv = _data(16, seed=1)
    model = _classifier(["acc"])
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, validation_data=(xv, yv))
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"}
    assert all(type(v) is float and len(history.history[k]) == 2
               for k in history.history for v in history.history[k])
    # val_* equal evaluate() on the validation data with the final weights.
    val_loss, val_acc = model.evaluate(xv, yv, verbose=0)
    assert history.history["val_loss"][-1] == pytest.approx(val_loss, rel=1e-6)
    assert history.history["val_acc"][-1] == pytest.approx(val_acc, rel=1e-6)


def test_fit_metric_names_kept_as_given():
    x, y = _data()
    model = _mlp()
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["acc", "sparse_categorical_accuracy"])
    history = model.fit(x, y, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "acc", "sparse_categorical_accuracy"}
    assert history.history["acc"] == history.history["sparse_categorical_accuracy"]


def test_binary_accuracy_resolved_for_one_output():
    x, y = _data(c=2)
    model = _mlp(out=1, activation="sigmoid")
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=1, verbose=0)
    acc = np.mean((model.predict(x, verbose=0)[:, 0] > 0.5) == y)
    assert set(history.history) == {"loss", "accuracy"}
    assert model.evaluate(x, y, verbose=0)[1] == pytest.approx(acc)


def _zero_regressor(n_in=2):
    """A model whose prediction is exactly 0 and stays 0 (SGD with learning_rate 0)."""
    model = Sequential([Dense(1, kernel_initializer="zeros", input_shape=(n_in,))])
    model.compile(optimizers.SGD(learning_rate=0.0), "mse")
    return model


def test_validation_split_takes_the_last_fraction_before_shuffling():
    # With a constant-0 model, the loss on a set of rows is mean(y^2) over those rows,
    # so the reported losses reveal exactly which rows were used for training and validation.
    n = 10
    x = np.ones((n, 2), dtype=np.float32)
    y = np.arange(n, dtype=np.float32)
    model = _zero_regressor()
    history = model.fit(x, y, epochs=2, batch_size=3, validation_split=0.25, shuffle=True, verbose=0)
    split_at = math.floor(n * (1 - 0.25))  # = 7 (floor, not round)
    assert history.history["val_loss"] == [pytest.approx(np.mean(y[split_at:] ** 2))] * 2
    assert history.history["loss"] == [pytest.approx(np.mean(y[:split_at] ** 2))] * 2


def test_validation_data_takes_precedence_over_split():
    x = np.ones((10, 2), dtype=np.float32)
    y = np.arange(10, dtype=np.float32)
    model = _zero_regressor()
    history = model.fit(x, y, epochs=1, validation_split=0.5, verbose=0,
                        validation_data=(np.ones((2, 2), np.float32), np.array([3.0, 5.0], np.float32)))
    assert history.history["val_loss"] == [pytest.approx(17.0)]
    assert history.history["loss"] == [pytest.approx(np.mean(y ** 2))]


def test_epoch_loss_is_sample_weighted_mean_over_batches():
    # Batches of 4, 4, 2 rows: the epoch loss is the per-sample mean, not the mean of batch means.
    x = np.ones((10, 2), dtype=np.float32)
    y = np.arange(10, dtype=np.float32)
    history = _zero_regressor().fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    assert history.history["loss"] == [pytest.approx(np.mean(y ** 2))]


def test_initial_epoch():
    x, y = _data()
    seen = []

    class Epochs(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(epoch)

    model = _classifier()
    history = model.fit(x, y, epochs=5, initial_epoch=3, verbose=0, callbacks=[Epochs()])
    assert seen == [3, 4]
    assert history.epoch == [3, 4]
    assert len(history.history["loss"]) == 2


# ----------------------------------------------------------------------------- determinism
def test_shuffle_false_is_deterministic_whatever_the_global_rng():
    x, y = _data()
    results = []
    for reseed in (1, 2):
        set_random_seed(0)
        model = _classifier()
        set_random_seed(reseed)  # a different global RNG state for the fit
        model.fit(x, y, epochs=2, batch_size=10, shuffle=False, verbose=0)
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_shuffle_true_depends_on_the_seed():
    x, y = _data()
    results = []
    for reseed in (1, 2):
        set_random_seed(0)
        model = _classifier()
        set_random_seed(reseed)
        model.fit(x, y, epochs=2, batch_size=10, verbose=0)
        results.append(model.get_weights())
    assert any(not np.array_equal(a, b) for a, b in zip(*results))


def test_set_random_seed_gives_bit_identical_training():
    x, y = _data()
    runs = []
    for _ in range(2):
        set_random_seed(42)
        model = _classifier()
        history = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
        runs.append((model.get_weights(), history.history))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1] == runs[1][1]


# ----------------------------------------------------------------------------- evaluate / predict
def _np_forward(model, x):
    W1, b1, W2, b2 = [w.astype(np.float64) for w in model.get_weights()]
    z = np.maximum(x @ W1 + b1, 0) @ W2 + b2
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_evaluate_return_types_and_values():
    x, y = _data()
    model = _mlp()
    model.compile("adam", "sparse_categorical_crossentropy")
    loss = model.evaluate(x, y, verbose=0)
    assert type(loss) is float
    p = _np_forward(model, x.astype(np.float64))
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(N), y])), rel=1e-5)

    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    result = model.evaluate(x, y, verbose=0)
    assert isinstance(result, list) and len(result) == 2
    assert all(type(v) is float for v in result)
    assert result[0] == pytest.approx(loss, rel=1e-6)
    assert result[1] == pytest.approx(np.mean(p.argmax(axis=1) == y))
    assert model.metrics_names == ["loss", "accuracy"]

    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert logs == {"loss": result[0], "accuracy": result[1]}


def test_evaluate_list_order_is_loss_then_sorted_names():
    """Keras 3 ``_flatten_metrics_in_order``: loss first, then the other keys sorted."""
    x, y = _data()
    target = np.stack([y, -y], 1).astype(np.float32)
    model = _mlp(out=2, activation=None)
    model.compile("sgd", "mse", metrics=["mse", "mae"])
    result = model.evaluate(x, target, verbose=0)
    logs = model.evaluate(x, target, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "mse", "mae"}
    assert result == [logs["loss"], logs["mae"], logs["mse"]]
    assert logs["mse"] == pytest.approx(logs["loss"], rel=1e-6)  # the mse metric equals the mse loss
    p = model.predict(x, verbose=0).astype(np.float64)
    assert logs["mae"] == pytest.approx(np.abs(p - target).mean(), rel=1e-5)


def test_uint8_and_column_labels_like_mnist():
    x, y = _data()
    model = _classifier(["accuracy"])
    h8 = model.fit(x, y.astype(np.uint8), epochs=1, verbose=0)
    hcol = model.fit(x, y.reshape(-1, 1), epochs=1, verbose=0)
    assert set(h8.history) == set(hcol.history) == {"loss", "accuracy"}
    assert model.evaluate(x, y.astype(np.uint8), verbose=0) == model.evaluate(x, y.reshape(-1, 1), verbose=0)


def test_evaluate_batch_size_does_not_change_the_result():
    x, y = _data()
    model = _classifier()
    a = model.evaluate(x, y, batch_size=5, verbose=0)
    b = model.evaluate(x, y, batch_size=48, verbose=0)
    assert a == pytest.approx(b, rel=1e-6)


def test_predict_shape_dtype_and_batch_size_independence():
    x, y = _data(n=300)
    model = _classifier()
    model.fit(x, y, epochs=1, verbose=0)
    p = model.predict(x, verbose=0)
    assert p.shape == (300, C) and p.dtype == np.float32
    for batch_size in (1, 7, 32, 1000):
        assert_close(model.predict(x, batch_size=batch_size, verbose=0), p)
    # float64 and integer inputs are cast; output stays float32
    assert model.predict(x.astype(np.float64), verbose=0).dtype == np.float32
    assert model.predict(np.ones((2, F), dtype=np.int64), verbose=0).dtype == np.float32
    assert_close(p, _np_forward(model, x.astype(np.float64)).astype(np.float32), rtol=1e-5, atol=1e-6)


def test_model_call_equals_predict():
    x, y = _data()
    model = _classifier()
    model.fit(x, y, epochs=1, verbose=0)
    assert_close(model(x), model.predict(x, verbose=0))
    assert_close(model.predict_on_batch(x), model.predict(x, verbose=0))


def test_predict_before_fit_builds_from_data():
    model = Sequential([Dense(4), Dense(2)])
    p = model.predict(np.ones((3, 5), dtype=np.float32), verbose=0)
    assert p.shape == (3, 2) and model.built


def test_flatten_first_on_images():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4, 4)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    model = Sequential([Flatten(input_shape=(4, 4)), Dense(8, activation="relu"),
                        Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert model.predict(x, verbose=0).shape == (32, 3)


# ----------------------------------------------------------------------------- engine vs layer path
def _loss_case(name):
    """(model factory, loss, targets transform, metrics) for each supported loss configuration."""
    return {
        "sparse_ce_softmax": (lambda: _mlp(), "sparse_categorical_crossentropy", lambda y: y, ["accuracy"]),
        "categorical_ce_onehot": (lambda: _mlp(), "categorical_crossentropy", lambda y: to_categorical(y, C),
                                  ["accuracy"]),
        "categorical_ce_label_smoothing": (lambda: _mlp(),
                                           losses.CategoricalCrossentropy(label_smoothing=0.1),
                                           lambda y: to_categorical(y, C), ["acc"]),
        "bce_sigmoid": (lambda: _mlp(out=1, activation="sigmoid"), "binary_crossentropy",
                        lambda y: (y == 0).astype(np.float32), ["accuracy"]),
        "bce_multilabel": (lambda: _mlp(out=C, activation="sigmoid"), "binary_crossentropy",
                           lambda y: to_categorical(y, C), ["binary_accuracy"]),
        "sparse_ce_from_logits": (lambda: _mlp(activation=None),
                                  losses.SparseCategoricalCrossentropy(from_logits=True), lambda y: y,
                                  ["accuracy"]),
        "categorical_ce_from_logits": (lambda: _mlp(activation=None),
                                       losses.CategoricalCrossentropy(from_logits=True),
                                       lambda y: to_categorical(y, C), ["accuracy"]),
        "bce_from_logits": (lambda: _mlp(out=1, activation=None), losses.BinaryCrossentropy(from_logits=True),
                            lambda y: (y == 0).astype(np.float32), ["accuracy"]),
        "softmax_as_activation_layer": (lambda: Sequential([Dense(8, activation="relu", input_shape=(F,)),
                                                            Dense(C), Activation("softmax")]),
                                        "sparse_categorical_crossentropy", lambda y: y, ["accuracy"]),
        "mse": (lambda: _mlp(out=2, activation=None), "mse",
                lambda y: np.stack([y, -y], 1).astype(np.float32), ["mae"]),
        "mae": (lambda: _mlp(out=1, activation="tanh"), "mae", lambda y: (y - 1).astype(np.float32) * 0.5,
                ["mse"]),
    }[name]


def _train_pair(factory, loss, y, metrics, optimizer_factory, epochs=3, batch_size=10, x=None):
    if x is None:
        x, _ = _data()
    results = []
    for engine in (True, False):
        set_random_seed(11)
        model = factory()
        if not engine:
            use_reference_engine(model)
        model.compile(optimizer_factory(), loss, metrics=metrics)
        history = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, validation_split=0.25)
        results.append((model, history.history))
    return results


def _assert_paths_agree(results):
    (engine_model, engine_hist), (layer_model, layer_hist) = results
    assert engine_hist.keys() == layer_hist.keys()
    for key in engine_hist:
        np.testing.assert_allclose(engine_hist[key], layer_hist[key], rtol=1e-5, atol=1e-6, err_msg=key)
    for a, b in zip(engine_model.get_weights(), layer_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # and training moved the weights
    assert engine_hist["loss"][-1] != engine_hist["loss"][0]


LOSS_CASES = ["sparse_ce_softmax", "categorical_ce_onehot", "categorical_ce_label_smoothing", "bce_sigmoid",
              "bce_multilabel", "sparse_ce_from_logits", "categorical_ce_from_logits", "bce_from_logits",
              "softmax_as_activation_layer", "mse", "mae"]


@pytest.mark.parametrize("case", LOSS_CASES)
def test_engine_and_layer_path_agree_per_loss(case):
    factory, loss, transform, metrics = _loss_case(case)
    _, y = _data()
    _assert_paths_agree(_train_pair(factory, loss, transform(y), metrics, lambda: optimizers.Adam(0.01)))


OPTIMIZER_CASES = {
    "sgd": lambda: optimizers.SGD(0.1),
    "sgd_momentum": lambda: optimizers.SGD(0.05, momentum=0.9),
    "sgd_nesterov": lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    "rmsprop": lambda: optimizers.RMSprop(0.01),
    "rmsprop_momentum_centered": lambda: optimizers.RMSprop(0.005, momentum=0.5, centered=True),
    "adam": lambda: optimizers.Adam(0.01),
    "adam_amsgrad": lambda: optimizers.Adam(0.01, amsgrad=True),
    "adadelta": lambda: optimizers.Adadelta(1.0),
}


@pytest.mark.parametrize("name", list(OPTIMIZER_CASES))
def test_engine_and_layer_path_agree_per_optimizer(name):
    _, y = _data()
    _assert_paths_agree(_train_pair(_mlp, "sparse_categorical_crossentropy", y, ["accuracy"],
                                    OPTIMIZER_CASES[name]))


STRUCTURE_CASES = {
    "no_bias": lambda: Sequential([Dense(8, activation="relu", use_bias=False, input_shape=(F,)),
                                   Dense(C, activation="softmax", use_bias=False)]),
    "hidden_activation_layer": lambda: Sequential([Dense(8, input_shape=(F,)), Activation("tanh"),
                                                   Dense(C), Activation("softmax")]),
    "three_hidden_layers": lambda: Sequential([Dense(8, activation="relu", input_shape=(F,)),
                                               Dense(6, activation="sigmoid"), Dense(5, activation="tanh"),
                                               Dense(C, activation="softmax")]),
    "flatten_first": lambda: Sequential([Flatten(input_shape=(2, 3)), Dense(8, activation="relu"),
                                         Dense(C, activation="softmax")]),
}


@pytest.mark.parametrize("name", list(STRUCTURE_CASES))
def test_engine_and_layer_path_agree_per_structure(name):
    x, y = _data()
    if name == "flatten_first":
        x = x.reshape(-1, 2, 3)
    _assert_paths_agree(_train_pair(STRUCTURE_CASES[name], "sparse_categorical_crossentropy", y, ["accuracy"],
                                    lambda: optimizers.Adam(0.01), x=x))


# These cases put the clipped-probability path behind deliberately mismatched outputs (sigmoid/relu/tanh
# with a cross-entropy on probabilities), which fit warns about (models/output_loss_checks.py).
_MISMATCH_WARNING = "ignore:(Loss '.*' expects probabilities|The model's output layer .* uses sigmoid):UserWarning"


@pytest.mark.filterwarnings(_MISMATCH_WARNING)
def test_clipped_probability_path_trains_through_layers():
    """categorical CE on a non-softmax output (probabilities are clipped, not fused) is not in the engine."""
    x, y = _data()
    set_random_seed(3)
    model = _mlp(activation="sigmoid")
    model.compile(optimizers.Adam(0.02), "categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, to_categorical(y, C), epochs=8, batch_size=8, verbose=0)
    losses_ = history.history["loss"]
    assert all(np.isfinite(losses_))
    assert losses_[-1] < losses_[0]
    # The reported loss is Keras' normalise-then-clip CE of the sigmoid outputs.
    p = model.predict(x, verbose=0).astype(np.float64)
    q = np.clip(p / p.sum(axis=1, keepdims=True), 1e-7, 1 - 1e-7)
    expected = -np.mean(np.log(q[np.arange(N), y]))
    assert model.evaluate(x, to_categorical(y, C), verbose=0)[0] == pytest.approx(expected, rel=1e-5)


LAYER_GRAD_CASES = {
    "sparse_ce_softmax": ("softmax", "sparse_categorical_crossentropy", lambda y: y),
    "categorical_ce_sigmoid_clipped": ("sigmoid", "categorical_crossentropy", lambda y: to_categorical(y, C)),
    "sparse_ce_relu_clipped": ("relu", "sparse_categorical_crossentropy", lambda y: y),
    "bce_sigmoid": ("sigmoid", "binary_crossentropy", lambda y: to_categorical(y, C)),
    "bce_tanh_probabilities": ("tanh", "binary_crossentropy", lambda y: to_categorical(y, C)),
    "from_logits": (None, losses.CategoricalCrossentropy(from_logits=True), lambda y: to_categorical(y, C)),
    "mse": ("tanh", "mse", lambda y: to_categorical(y, C)),
}


@pytest.mark.filterwarnings(_MISMATCH_WARNING)
@pytest.mark.parametrize("case", list(LAYER_GRAD_CASES))
def test_layer_path_gradient_float64_end_to_end(case):
    """One full-batch SGD(lr=1) step of a float64 model moves the arena by exactly -dLoss/dparams,
    checked against finite differences of evaluate()."""
    activation, loss, transform = LAYER_GRAD_CASES[case]
    rng = np.random.default_rng(0)
    x, y = _data(n=6, f=3)
    yt = transform(y)
    model = Sequential([Dense(4, activation="tanh", input_shape=(3,), dtype="float64"),
                        Dense(C, activation=activation, dtype="float64")])
    model._params[...] = rng.uniform(-1, 1, model._params.shape)
    if activation in ("relu", "tanh") and loss != "mse":
        # keep probabilities comfortably inside (0, 1) so no clip boundary sits within the FD step
        model.layers[1].bias.value[...] = 0.5
        model.layers[1].kernel.value[...] *= 0.2
    model.compile(optimizers.SGD(learning_rate=1.0), loss)
    params = model._params

    def objective(_):
        return model.evaluate(x, yt, batch_size=len(x), verbose=0)

    numeric = numerical_gradient(objective, params, eps=1e-6)
    before = params.copy()
    model.fit(x, yt, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    assert_close(before - params, numeric, rtol=1e-6, atol=1e-9)


def test_frozen_layer_weights_do_not_change():
    x, y = _data()
    model = _classifier()
    model.layers[0].trainable = False
    frozen = [w.copy() for w in model.layers[0].get_weights()]
    trained = [w.copy() for w in model.layers[1].get_weights()]
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(trained, model.layers[1].get_weights()))
    for before, after in zip(frozen, model.layers[0].get_weights()):
        np.testing.assert_array_equal(before, after)


def test_non_trainable_model_does_not_change():
    x, y = _data()
    model = Sequential([Dense(8, activation="relu", input_shape=(F,)), Dense(C, activation="softmax")],
                       trainable=False)
    model.compile("adam", "sparse_categorical_crossentropy")
    before = model.get_weights()
    model.fit(x, y, epochs=1, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- engine with BatchNorm / Dropout
def _hidden(*after, units=16, **dense_kwargs):
    """Dense(units, relu) -> the given layers -> Dense(C, softmax), on F features."""
    dense_kwargs.setdefault("activation", "relu")
    return lambda: Sequential([Dense(units, input_shape=(F,), **dense_kwargs), *after_factory(after),
                               Dense(C, activation="softmax")])


def after_factory(after):
    return [factory() for factory in after]


def BN(**kwargs):
    return lambda: BatchNormalization(**kwargs)


def DO(rate, **kwargs):
    return lambda: Dropout(rate, **kwargs)


REGULARIZED_CASES = {
    "tutorial": _hidden(BN(), DO(0.2)),
    "seeded_dropout": _hidden(BN(), DO(0.3, seed=7)),
    "center_false": _hidden(BN(center=False), DO(0.2)),
    "scale_false": _hidden(BN(scale=False), DO(0.2)),
    "center_and_scale_false": _hidden(BN(center=False, scale=False)),
    "bn_only": _hidden(BN(momentum=0.5, epsilon=1e-2)),
    "dropout_only": _hidden(DO(0.5)),
    "dropout_then_bn": _hidden(DO(0.25), BN()),
    "dropout_rate_0_is_left_out": _hidden(BN(), DO(0.0)),
    "dropout_rate_1": _hidden(DO(1.0)),
    "no_bias": _hidden(BN(), DO(0.2), use_bias=False),
    "activation_layer_then_bn": lambda: Sequential([Dense(16, input_shape=(F,)), Activation("tanh"),
                                                    BatchNormalization(), Dropout(0.2),
                                                    Dense(C, activation="softmax")]),
    # two Dropouts drawing from the global generator: the engine interleaves their draws per step
    "two_global_dropouts": lambda: Sequential([Dense(16, activation="relu", input_shape=(F,)), Dropout(0.3),
                                               Dense(12, activation="sigmoid"), BatchNormalization(),
                                               Dropout(0.5), Dense(C, activation="softmax")]),
    "seeded_and_global_dropouts": lambda: Sequential([Dense(16, activation="relu", input_shape=(F,)),
                                                      BatchNormalization(), Dropout(0.2, seed=1),
                                                      Dense(12, activation="tanh"), Dropout(0.4),
                                                      Dense(C, activation="softmax")]),
}


# The bias of a Dense layer followed by a BatchNormalization has a gradient that is mathematically 0
# wherever the activation passes every row (the normalization removes the batch mean), so what the
# paths compute there is rounding noise of ~1e-9, different in each (their GEMMs round differently).
# Optimizers that divide by the gradient's running size (Adam, RMSprop, Adadelta) turn that noise
# into steps of up to the learning rate, unless their epsilon dwarfs it: 1e-3 here.
NORMALIZING_OPTIMIZERS = {
    "adam": lambda: optimizers.Adam(0.01, epsilon=1e-3),
    "sgd_momentum": OPTIMIZER_CASES["sgd_momentum"],
    "rmsprop_momentum_centered": lambda: optimizers.RMSprop(0.005, momentum=0.5, centered=True, epsilon=1e-3),
    "adam_amsgrad": lambda: optimizers.Adam(0.01, amsgrad=True, epsilon=1e-3),
    "adadelta": lambda: optimizers.Adadelta(1.0, epsilon=1e-3),
}


def _fit_both_paths(factory, optimizer=NORMALIZING_OPTIMIZERS["adam"], epochs=3, batch_size=8, x=None,
                    **fit_kwargs):
    """Fit the same model (same seed) on the engine and on the layer-by-layer path, with validation."""
    if x is None:
        x, _ = _data()
    _, y = _data()
    results = []
    for engine in (True, False):
        set_random_seed(11)
        model = factory()
        if not engine:
            use_reference_engine(model)
        model.compile(optimizer(), "sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, validation_split=0.25,
                            **fit_kwargs)
        # both paths drew the same numbers from the global generator, so it is left in the same state
        results.append((model, history.history, global_rng().random()))
    return results


def _assert_regularized_paths_agree(results, x=None):
    if x is None:
        x, _ = _data()
    _, y = _data()
    (engine_model, engine_hist, engine_next), (layer_model, layer_hist, layer_next) = results
    assert engine_next == layer_next
    _assert_paths_agree([(engine_model, engine_hist), (layer_model, layer_hist)])  # history, all weights
    np.testing.assert_allclose(engine_model.evaluate(x, y, verbose=0), layer_model.evaluate(x, y, verbose=0),
                               rtol=1e-5)
    np.testing.assert_allclose(engine_model.predict(x, verbose=0), layer_model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", list(REGULARIZED_CASES))
def test_engine_and_layer_path_agree_with_batch_norm_and_dropout(case):
    _assert_regularized_paths_agree(_fit_both_paths(REGULARIZED_CASES[case]))


@pytest.mark.parametrize("name", ["sgd_momentum", "rmsprop_momentum_centered", "adam_amsgrad", "adadelta"])
def test_engine_and_layer_path_agree_with_batch_norm_and_dropout_per_optimizer(name):
    optimizer = NORMALIZING_OPTIMIZERS[name]
    _assert_regularized_paths_agree(_fit_both_paths(REGULARIZED_CASES["tutorial"], optimizer))


def test_regularized_tutorial_engine_inference_equals_the_twin():
    """The engine's own evaluate/predict (moving statistics, no dropout) give the twin's results; the
    plan is dense, batch-norm, dropout, dense (Flatten of channels-last data is no op)."""
    x, y = _data()
    images = x.reshape(-1, 2, 3)
    factory = lambda: Sequential([Flatten(input_shape=(2, 3)), Dense(16, activation="relu"),  # noqa: E731
                                  BatchNormalization(), Dropout(0.2), Dense(C, activation="softmax")])
    results = _fit_both_paths(factory, x=images)
    _assert_regularized_paths_agree(results, x=images)
    model = results[0][0]
    engine, _ = model._runner.engine(8)
    assert [op[0] for op in engine.plan["ops"]] == ["dense", "bn", "dropout", "dense"]
    assert engine.plan["loss"] == ("softmax_xent", True)
    np.testing.assert_allclose(engine.predict(x), model.predict(images, verbose=0), rtol=1e-5, atol=1e-6)
    loss_sum, _ = engine.evaluate(x, y)
    assert loss_sum / N == pytest.approx(model.evaluate(images, y, verbose=0)[0], rel=1e-5)


def test_engine_with_dropout_in_several_calls_and_per_batch_callbacks(monkeypatch):
    """The uniforms are drawn per engine call (at most _UNIFORMS_PER_CALL), and per step with batch hooks."""
    monkeypatch.setattr(runner_module, "_UNIFORMS_PER_CALL", 2 * 8 * 28)  # 2 steps per call
    _assert_regularized_paths_agree(_fit_both_paths(REGULARIZED_CASES["two_global_dropouts"]))
    monkeypatch.undo()

    class Batches(Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass

    _assert_regularized_paths_agree(_fit_both_paths(REGULARIZED_CASES["seeded_and_global_dropouts"],
                                                    callbacks=[Batches()]))


@pytest.mark.parametrize("shape", [(3, 5), (7, 3), (32, 128), (1, 1)])
def test_one_draw_of_uniforms_equals_the_per_step_draws(shape):
    """NumPy draws float32 numbers from 32-bit halves of 64-bit outputs and keeps a spare half
    between calls, so the stream does not depend on how it is cut into calls, even with odd sizes:
    the engine's one draw per call gives exactly the layer path's draws per step."""
    steps = 5
    a, b, c = (np.random.default_rng(3) for _ in range(3))
    per_step = np.concatenate([a.random(shape, dtype=np.float32) for _ in range(steps)]
                              + [a.random((1, shape[1]), dtype=np.float32)])  # a short last batch
    whole = b.random((steps * shape[0] + 1, shape[1]), dtype=np.float32)
    into = np.empty_like(whole)
    for r0 in range(0, into.shape[0], shape[0]):
        c.random(dtype=np.float32, out=into[r0:r0 + shape[0]])
    np.testing.assert_array_equal(per_step, whole)
    np.testing.assert_array_equal(per_step, into)
    assert a.random() == b.random() == c.random()


ANY_ORDER_CASES = {
    "frozen_batch_norm": _hidden(lambda: BatchNormalization(trainable=False), DO(0.2)),
    "dropout_noise_shape": _hidden(DO(0.2, noise_shape=(1, 16))),
    "batch_norm_after_the_last_dense": lambda: Sequential([Dense(8, activation="relu", input_shape=(F,)),
                                                           Dense(C), BatchNormalization(),
                                                           Activation("softmax")]),
    "activation_after_batch_norm": lambda: Sequential([Dense(8, input_shape=(F,), use_bias=False),
                                                       BatchNormalization(), Activation("relu"),
                                                       Dense(C, activation="softmax")]),
    "after_a_hidden_softmax": _hidden(DO(0.2), activation="softmax"),
    "two_batch_norms": _hidden(BN(), BN()),
    "two_dropouts": _hidden(DO(0.2), DO(0.3)),
    "batch_norm_first": lambda: Sequential([BatchNormalization(input_shape=(F,)),
                                            Dense(C, activation="softmax")]),
    "dropout_first": lambda: Sequential([Dropout(0.1, input_shape=(F,)), Dense(8, activation="relu"),
                                         Dense(C, activation="softmax")]),
    "frozen_dense": lambda: Sequential([Dense(8, activation="relu", input_shape=(F,), trainable=False),
                                        Dense(C, activation="softmax")]),
}


@pytest.mark.parametrize("case", list(ANY_ORDER_CASES))
def test_any_layer_order_trains_on_the_engine_as_the_twin(case):
    """Configurations the old fused engine left to a slower path: the one engine runs them, as its twin."""
    frozen = []

    def factory():
        model = ANY_ORDER_CASES[case]()
        frozen.append([w.value.copy() for w in model.non_trainable_weights if "moving" not in w.name])
        return model

    results = _fit_both_paths(factory, epochs=2)
    _assert_regularized_paths_agree(results)
    for before, weight in zip(frozen[0], [w for w in results[0][0].non_trainable_weights if "moving" not in w.name]):
        np.testing.assert_array_equal(before, weight.value)  # frozen weights do not move
    if case == "frozen_batch_norm":  # nor do a frozen layer's moving statistics
        bn = results[0][0].layers[1]
        np.testing.assert_array_equal(bn.moving_variance.value, np.ones(16, np.float32))


# ----------------------------------------------------------------------------- verbose output
def _fit_output(verbose, epochs=3, **kwargs):
    x, y = _data()
    model = _classifier()
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        model.fit(x, y, epochs=epochs, batch_size=8, verbose=verbose, **kwargs)
    return buffer.getvalue()


def test_verbose_0_prints_nothing(capsys):
    assert _fit_output(0, validation_split=0.25) == ""
    x, y = _data()
    model = _classifier()
    model.fit(x, y, epochs=1, verbose=0)
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    assert capsys.readouterr().out == ""


def test_verbose_2_prints_one_line_per_epoch():
    out = _fit_output(2, epochs=3)
    lines = out.splitlines()
    progress = [line for line in lines if " - loss: " in line]
    assert len(progress) == 3
    assert [line for line in lines if line.startswith("Epoch ")] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    assert all(line.startswith("6/6 - ") for line in progress)
    assert all("accuracy: " in line for line in progress)


@pytest.mark.parametrize("verbose", [1, 2, "auto"])
def test_redirected_output_has_no_control_characters(verbose, tmp_path):
    x, y = _data()
    model = _classifier()
    path = tmp_path / "log.txt"
    with open(path, "w") as handle, contextlib.redirect_stdout(handle):
        model.fit(x, y, epochs=2, batch_size=4, verbose=verbose, validation_split=0.25)
        model.evaluate(x, y, verbose=verbose)
        model.predict(x, verbose=verbose)
    text = path.read_text()
    assert "loss: " in text
    for char in ("\r", "\b", "\x1b"):
        assert char not in text, repr(char)
    # not one line per step: a redirected log gets a bounded number of lines per epoch
    assert len(text.splitlines()) <= 12


# ----------------------------------------------------------------------------- callbacks
def test_batch_callback_sees_every_batch_and_epoch_callback_every_epoch():
    x, y = _data(n=50)
    batches, epochs, batch_logs = [], [], []

    class Batches(Callback):
        def on_train_batch_end(self, batch, logs=None):
            batches.append(batch)
            batch_logs.append(dict(logs))

    class Epochs(Callback):
        def on_epoch_end(self, epoch, logs=None):
            epochs.append((epoch, sorted(logs)))

    model = _classifier()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[Batches(), Epochs()])
    steps = math.ceil(50 / 16)
    assert batches == list(range(steps)) * 2
    assert epochs == [(0, ["accuracy", "loss"]), (1, ["accuracy", "loss"])]
    assert all(type(logs["loss"]) is float for logs in batch_logs)


def test_legacy_on_batch_end_alias_is_called_per_batch():
    x, y = _data(n=20)
    seen = []

    class Legacy(Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append(batch)

    _classifier().fit(x, y, epochs=1, batch_size=5, verbose=0, callbacks=[Legacy()])
    assert seen == [0, 1, 2, 3]


def test_plain_callbacks_see_every_epoch_on_the_engine_path():
    x, y = _data()
    seen = []

    class Epochs(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(epoch)

    model = _classifier()
    model.fit(x, y, epochs=4, batch_size=8, verbose=0, callbacks=Epochs())
    assert seen == [0, 1, 2, 3]


def test_stop_training_from_callback_stops_after_that_epoch():
    x, y = _data()
    seen = []

    class Stopper(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(epoch)
            if epoch == 1:
                self.model.stop_training = True

    model = _classifier()
    history = model.fit(x, y, epochs=10, verbose=0, callbacks=[Stopper()])
    assert seen == [0, 1]
    assert len(history.history["loss"]) == 2


def test_callback_model_is_the_model():
    x, y = _data()
    models = []

    class Grab(Callback):
        def on_train_begin(self, logs=None):
            models.append(self.model)

    model = _classifier()
    model.fit(x, y, verbose=0, callbacks=[Grab()])
    assert models == [model]


# ----------------------------------------------------------------------------- errors
def test_cardinality_mismatch():
    x, y = _data()
    model = _classifier()
    with pytest.raises(ValueError, match="Data cardinality is ambiguous") as info:
        model.fit(x, y[:-3], verbose=0)
    assert "x sizes: 48" in str(info.value) and "y sizes: 45" in str(info.value)
    with pytest.raises(ValueError, match="Data cardinality is ambiguous"):
        model.evaluate(x[:5], y, verbose=0)
    with pytest.raises(ValueError, match="Data cardinality is ambiguous") as info:
        model.fit(x, y, verbose=0, validation_data=(x[:4], y[:3]))
    assert "x sizes: 4" in str(info.value) and "y sizes: 3" in str(info.value)


def test_wrong_input_shape_names_layer_shapes_and_flatten():
    model = Sequential([Dense(8, activation="relu", input_shape=(784,), name="hidden"), Dense(10)])
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.zeros((4, 28, 28), dtype=np.float32)
    for call in (lambda: model.fit(x, np.zeros(4, int), verbose=0), lambda: model.predict(x, verbose=0),
                 lambda: model.evaluate(x, np.zeros(4, int), verbose=0)):
        with pytest.raises(ValueError) as info:
            call()
        msg = str(info.value)
        assert "Dense 'hidden'" in msg
        assert "(None, 784)" in msg and "(4, 28, 28)" in msg
        assert "Flatten" in msg


def test_wrong_feature_count():
    model = _classifier()
    with pytest.raises(ValueError) as info:
        model.predict(np.zeros((2, F + 1), dtype=np.float32), verbose=0)
    assert f"(None, {F})" in str(info.value) and f"(2, {F + 1})" in str(info.value)


def test_integer_labels_with_categorical_crossentropy_in_fit():
    x, y = _data()
    model = _classifier(loss="categorical_crossentropy")
    with pytest.raises(ValueError) as info:
        model.fit(x, y, verbose=0)
    msg = str(info.value)
    assert "sparse_categorical_crossentropy" in msg and "to_categorical" in msg
    assert "(48,)" in msg and f"(None, {C})" in msg


def test_sparse_labels_out_of_range_in_fit():
    x, y = _data()
    y = y.copy()
    y[5] = C
    model = _classifier()
    with pytest.raises(ValueError) as info:
        model.fit(x, y, verbose=0)
    msg = str(info.value)
    assert f"label value of {C}" in msg and f"[0, {C - 1}]" in msg


def test_one_hot_with_sparse_ce_in_fit():
    x, y = _data()
    with pytest.raises(ValueError, match="'categorical_crossentropy'"):
        _classifier().fit(x, to_categorical(y, C), verbose=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_x(bad):
    x, y = _data()
    x = x.copy()
    x[7, 2] = bad
    model = _classifier()
    with pytest.raises(ValueError, match="`x` contains NaN or infinity") as info:
        model.fit(x, y, verbose=0)
    assert "sample 7" in str(info.value)
    with pytest.raises(ValueError, match="NaN"):
        model.predict(x, verbose=0)


def test_nan_in_y():
    x, _ = _data()
    y = np.zeros((N, 1), dtype=np.float32)
    y[3] = np.nan
    model = _mlp(out=1, activation=None)
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="NaN") as info:
        model.fit(x, y, verbose=0)
    assert "`y`" in str(info.value) or "mean_squared_error" in str(info.value)


def test_unknown_strings():
    model = _mlp()
    with pytest.raises(ValueError, match="'adamm'") as info:
        model.compile("adamm", "mse")
    assert "'adam'" in str(info.value) and "'sgd'" in str(info.value)
    with pytest.raises(ValueError, match="'msee'") as info:
        model.compile("adam", "msee")
    assert "'mse'" in str(info.value)
    with pytest.raises(ValueError, match="'acuracy'") as info:
        model.compile("adam", "mse", metrics=["acuracy"])
    assert "'accuracy'" in str(info.value)
    with pytest.raises(ValueError, match="'relu7'") as info:
        Dense(3, activation="relu7")
    assert "'relu'" in str(info.value)


def test_custom_loss_callable_rejected_at_compile():
    with pytest.raises(ValueError, match="Could not interpret loss identifier") as info:
        _mlp().compile("adam", lambda y_true, y_pred: 0.0)
    assert "categorical_crossentropy" in str(info.value)


def test_unknown_kwargs_to_fit_and_compile():
    x, y = _data()
    model = _classifier()
    with pytest.raises((TypeError, ValueError), match="Unrecognized keyword arguments passed to fit") as info:
        model.fit(x, y, epoch=3, verbose=0)
    assert "epoch" in str(info.value)
    expected = "Unrecognized keyword arguments passed to compile"
    with pytest.raises((TypeError, ValueError), match=expected) as info:
        model.compile("adam", "mse", metric=["accuracy"])
    assert "metric" in str(info.value)


def test_fit_before_compile():
    x, y = _data()
    with pytest.raises(RuntimeError, match="compile"):
        _mlp().fit(x, y, verbose=0)
    with pytest.raises(RuntimeError, match="compile"):
        _mlp().evaluate(x, y, verbose=0)


@pytest.mark.parametrize("split", [1.0, 1.5, -0.1, "0.2"])
def test_validation_split_outside_unit_interval(split):
    x, y = _data()
    with pytest.raises(ValueError, match="validation_split") as info:
        _classifier().fit(x, y, validation_split=split, verbose=0)
    assert repr(split) in str(info.value)
    assert "(0, 1)" in str(info.value)


@pytest.mark.parametrize("n,split", [(1, 0.5), (5, 0.9), (10, 1e-17)])
def test_validation_split_leaving_no_samples(n, split):
    x, y = _data(n=n)
    with pytest.raises(ValueError, match="validation_split") as info:
        _classifier().fit(x, y, validation_split=split, verbose=0)
    assert f"{n} samples" in str(info.value)


def test_empty_arrays():
    model = _classifier()
    with pytest.raises(ValueError, match="non-empty") as info:
        model.fit(np.zeros((0, F), np.float32), np.zeros(0, int), verbose=0)
    assert "`x`" in str(info.value) and "(0, 6)" in str(info.value)
    with pytest.raises(ValueError, match="non-empty"):
        model.predict(np.zeros((0, F), np.float32), verbose=0)


def test_non_numeric_x():
    model = _classifier()
    x = np.array([["a"] * F] * 4)
    with pytest.raises(ValueError, match="`x` must be numeric") as info:
        model.fit(x, np.zeros(4, int), verbose=0)
    assert "<U1" in str(info.value) and "(4, 6)" in str(info.value)
    with pytest.raises(ValueError, match="`x` must be numeric"):
        model.predict([{"a": 1}], verbose=0)


def test_none_y():
    x, _ = _data()
    with pytest.raises(ValueError, match="`y` is required"):
        _classifier().fit(x, None, verbose=0)


@pytest.mark.parametrize("kwargs,name", [
    ({"batch_size": 0}, "batch_size"), ({"batch_size": 2.5}, "batch_size"), ({"epochs": -1}, "epochs"),
    ({"initial_epoch": -1}, "initial_epoch"), ({"verbose": 3}, "verbose"), ({"shuffle": "yes"}, "shuffle")])
def test_bad_fit_arguments(kwargs, name):
    x, y = _data()
    with pytest.raises(ValueError, match=name) as info:
        _classifier().fit(x, y, **{"verbose": 0, **kwargs})
    assert repr(kwargs[name]) in str(info.value)


@pytest.mark.parametrize("kwargs,name", [({"steps_per_epoch": 3}, "steps_per_epoch"),
                                         ({"validation_steps": 2}, "validation_steps")])
def test_unsupported_fit_arguments_raise_instead_of_being_dropped(kwargs, name):
    x, y = _data()
    with pytest.raises(ValueError, match=name):
        _classifier().fit(x, y, verbose=0, **kwargs)


def test_rank1_inputs_are_expanded_like_keras_hello_world():
    # The Keras "Hello World" tutorial: Dense(1, input_shape=[1]) fitted on xs of shape (6,).
    from fastnn.utils import set_random_seed

    set_random_seed(0)
    xs = np.array([-1.0, 0.0, 1.0, 2.0, 3.0, 4.0])
    ys = 2 * xs - 1
    model = Sequential([Dense(1, input_shape=[1])])
    model.compile(optimizer="sgd", loss="mean_squared_error")
    model.fit(xs, ys, epochs=500, verbose=0)
    assert abs(float(model.predict(np.array([5.0]), verbose=0)[0, 0]) - 9.0) < 0.05


@pytest.mark.parametrize("index_dtype", (np.int32, np.int64), ids=("int32", "int64"))
def test_engine_and_layer_path_agree_on_csr_input(index_dtype):
    """The IMDB tutorial's shape of problem: scipy CSR multi-hot input runs in the engine (training
    and validation) and matches the layer-by-layer path."""
    import scipy.sparse as sp

    rng = np.random.default_rng(5)
    x = sp.random(120, 300, density=0.05, format="csr", dtype=np.float32, random_state=3)
    x.data[:] = 1.0
    x.indptr, x.indices = x.indptr.astype(index_dtype), x.indices.astype(index_dtype)
    y = (rng.random(120) > 0.5).astype(np.float32)

    def factory():
        return Sequential([Dense(16, activation="relu", input_shape=(300,)), Dense(16, activation="relu"),
                           Dense(1, activation="sigmoid")])

    _assert_paths_agree(_train_pair(factory, "binary_crossentropy", y, ["accuracy"], lambda: optimizers.RMSprop(),
                                    epochs=4, batch_size=32, x=x))


def test_evaluate_and_predict_after_save_and_load_are_bitwise_those_of_the_trained_model(tmp_path):
    """Inference arithmetic is a property of the model and the rows, not of training state: a model trained in
    this process and the same model loaded from a file give the same bits (the first layer's two feature
    partitions are training arithmetic only)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 100)).astype(np.float32)
    x[rng.random(x.shape) < 0.6] = 0
    y = rng.integers(0, C, 300)
    model = Sequential([Dense(40, activation="relu", input_shape=(100,)), BatchNormalization(), Dropout(0.2),
                        Dense(C, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = fastnn.models.load_model(path)
    assert model.predict(x, verbose=0).tobytes() == loaded.predict(x, verbose=0).tobytes()
    assert model.predict(x[7:8], verbose=0).tobytes() == loaded.predict(x, verbose=0)[7:8].tobytes()
    assert model.evaluate(x, y, verbose=0) == loaded.evaluate(x, y, verbose=0)


def test_a_batch_size_larger_than_the_data_is_the_data():
    """Keras clamps it: one step over every row, no buffers for the size asked (10**12 rows used to raise a
    MemoryError)."""
    x, y = _data()
    model = _classifier()
    history = model.fit(x, y, batch_size=10 ** 12, epochs=2, verbose=0)
    assert model.optimizer.iterations == 2 and len(history.history["loss"]) == 2
    assert np.isfinite(model.evaluate(x, y, batch_size=10 ** 12, verbose=0)[0])
    assert model.predict(x, batch_size=10 ** 12, verbose=0).shape == (N, C)


def test_optimizer_iterations_count_the_steps_applied_when_a_callback_interrupts_fit():
    x, y = _data()

    class Interrupt(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 3:
                raise KeyboardInterrupt

    model = _classifier()
    before = model.get_weights()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[Interrupt()])
    assert model.optimizer.iterations == 4
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # a second fit goes on from there
    assert model.optimizer.iterations == 4 + 6
