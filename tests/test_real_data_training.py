"""End-to-end training on the real data sets (issue acceptance tests).

These train for real (a few seconds each with the compiled kernels); they read
the files through the loaders' FASTNN_DATA_DIR lookup, as users' code does.
"""
import numpy as np
import pytest

import fastnn as keras
from fastnn.datasets import imdb, mnist
from fastnn.utils import multi_hot, set_random_seed


def test_mnist_mlp_one_epoch_reaches_95_percent(mnist_data_dir, monkeypatch):
    monkeypatch.setenv("FASTNN_DATA_DIR", str(mnist_data_dir))
    set_random_seed(1)
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    model = keras.Sequential([keras.layers.Flatten(input_shape=(28, 28)),
                              keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train / 255.0, y_train, epochs=1, batch_size=32, verbose=0,
                        validation_data=(x_test / 255.0, y_test))
    loss, accuracy = model.evaluate(x_test / 255.0, y_test, verbose=0)
    assert accuracy >= 0.95
    assert history.history["val_accuracy"][0] == pytest.approx(accuracy, abs=1e-6)
    assert history.history["val_loss"][0] == pytest.approx(loss, rel=1e-6)
    probabilities = model.predict(x_test[:3] / 255.0, verbose=0)
    assert probabilities.shape == (3, 10) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)



def test_regularized_mnist_tutorial_one_epoch_reaches_95_percent(mnist_data_dir, monkeypatch):
    """Flatten -> Dense(128, relu) -> BatchNormalization -> Dropout(0.2) -> Dense(10, softmax), adam,
    validation_split=0.2 (bench/bench_regularized.py runs the full 30-epoch EarlyStopping tutorial)."""
    monkeypatch.setenv("FASTNN_DATA_DIR", str(mnist_data_dir))
    set_random_seed(1)
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    model = keras.Sequential([keras.layers.Flatten(input_shape=(28, 28)),
                              keras.layers.Dense(128, activation="relu"),
                              keras.layers.BatchNormalization(),
                              keras.layers.Dropout(0.2),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    # These layers train on the layer-by-layer path, which starts an OpenMP team in every kernel call;
    # on a shared 2-core machine each team can wait for a busy core (seen: 25 ms/step instead of 1.3),
    # so the test runs on one thread to stay a few seconds long.
    threads = keras.get_num_threads()
    keras.set_num_threads(1)
    try:
        history = model.fit(x_train / 255.0, y_train, epochs=1, batch_size=32, validation_split=0.2, verbose=0)
        loss, accuracy = model.evaluate(x_test / 255.0, y_test, verbose=0)
    finally:
        keras.set_num_threads(threads)
    assert accuracy >= 0.95
    assert history.history["val_accuracy"][0] >= 0.95
    bn = model.layers[2]
    assert not np.allclose(bn.moving_variance.numpy(), 1.0)  # fit updated the moving statistics
    assert np.array_equal(model.predict(x_test[:100] / 255.0, verbose=0), model.predict(x_test[:100] / 255.0,
                                                                                       verbose=0))

def test_imdb_tutorial_two_epochs_reach_85_percent(imdb_data_dir, monkeypatch):
    monkeypatch.setenv("FASTNN_DATA_DIR", str(imdb_data_dir))
    set_random_seed(1)
    (train_data, train_labels), (test_data, test_labels) = imdb.load_data(num_words=10000)
    x_train = multi_hot(train_data, 10000)
    x_test = multi_hot(test_data, 10000)
    model = keras.Sequential([keras.layers.Dense(16, activation="relu", input_shape=(10000,)),
                              keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x_train, train_labels.astype("float32"), epochs=2, batch_size=512, verbose=0,
              validation_data=(x_test, test_labels.astype("float32")))
    loss, accuracy = model.evaluate(x_test, test_labels.astype("float32"), verbose=0)
    assert accuracy >= 0.85
    assert model.predict(x_test[:5], verbose=0).shape == (5, 1)
