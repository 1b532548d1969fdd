"""Model/loss mismatches that train to nothing: refused or warned about with the fix (output_loss_checks)."""
import warnings

import numpy as np
import pytest

import fastnn
from fastnn import layers, losses


def _model(units, activation, loss, metrics=None):
    model = fastnn.Sequential([fastnn.Input((4,)), layers.Dense(units, activation=activation)])
    model.compile("adam", loss, metrics=metrics)
    return model


X = np.random.default_rng(0).random((16, 4), dtype=np.float32)


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "sparse_categorical_crossentropy",
                                  losses.CategoricalCrossentropy(from_logits=True)])
@pytest.mark.parametrize("activation", ["sigmoid", "softmax", None])
def test_class_cross_entropy_on_one_unit_is_refused(loss, activation):
    # Keras 3 only warns (SyntaxWarning) and reports loss 0.0 for every epoch.
    model = _model(1, activation, loss)
    with pytest.raises(ValueError, match="needs one output unit per class.*binary_crossentropy"):
        model.fit(X, np.zeros((16, 1)), verbose=0)
    with pytest.raises(ValueError, match="needs one output unit per class"):
        model.evaluate(X, np.zeros((16, 1)), verbose=0)


def test_softmax_on_one_unit_is_refused_whatever_the_loss():
    model = _model(1, "softmax", "binary_crossentropy")
    with pytest.raises(ValueError, match="softmax to 1 unit: its output is always 1.0.*sigmoid"):
        model.fit(X, np.zeros(16), verbose=0)


def test_softmax_with_binary_crossentropy_warns_once():
    model = _model(3, "softmax", "binary_crossentropy", ["accuracy"])
    y = np.eye(3)[np.arange(16) % 3]
    with pytest.warns(UserWarning, match="softmax on 3 units.*'categorical_crossentropy'"):
        model.fit(X, y, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(X, y, verbose=0)  # checked once per compile
        model.evaluate(X, y, verbose=0)


def test_sigmoid_with_categorical_crossentropy_warns():
    with pytest.warns(UserWarning, match="sigmoid on 3 units.*activation='softmax'"):
        _model(3, "sigmoid", "sparse_categorical_crossentropy").fit(X, np.arange(16) % 3, verbose=0)


def test_probabilities_expected_but_linear_output_warns():
    with pytest.warns(UserWarning, match="expects probabilities.*'linear'.*from_logits=True"):
        _model(3, None, "sparse_categorical_crossentropy").fit(X, np.arange(16) % 3, verbose=0)


def test_from_logits_on_softmax_output_warns():
    # Keras' TensorFlow backend: "received `from_logits=True`, but the `output` argument was produced by a
    # Softmax activation and thus does not represent logits. Was this intended?"
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    with pytest.warns(UserWarning, match="from_logits=True`, but .* applies softmax"):
        _model(3, "softmax", loss).fit(X, np.arange(16) % 3, verbose=0)


@pytest.mark.parametrize("units,activation,loss,y", [
    (3, "softmax", "sparse_categorical_crossentropy", np.arange(16) % 3),
    (3, None, losses.SparseCategoricalCrossentropy(from_logits=True), np.arange(16) % 3),
    (1, "sigmoid", "binary_crossentropy", np.arange(16) % 2),
    (1, None, losses.BinaryCrossentropy(from_logits=True), np.arange(16) % 2),
    (4, "sigmoid", "binary_crossentropy", np.ones((16, 4))),
    (1, None, "mse", np.ones(16)),
    (1, "relu", "mae", np.ones(16)),
])
def test_matching_pairs_are_silent(units, activation, loss, y):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _model(units, activation, loss).fit(X, y, verbose=0)


def test_output_after_dropout_is_the_dense_activation():
    model = fastnn.Sequential([fastnn.Input((4,)), layers.Dense(1, activation="sigmoid"), layers.Dropout(0.5)])
    model.compile("adam", "categorical_crossentropy")
    with pytest.raises(ValueError, match="'dense"):
        model.fit(X, np.ones(16), verbose=0)


def test_recompile_with_the_right_loss_trains():
    model = _model(1, "sigmoid", "categorical_crossentropy")
    with pytest.raises(ValueError):
        model.fit(X, np.ones(16), verbose=0)
    model.compile("adam", "binary_crossentropy")
    history = model.fit(X, np.arange(16) % 2, verbose=0)
    assert history.history["loss"][0] > 0
