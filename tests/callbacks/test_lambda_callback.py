"""LambdaCallback: Keras 3 semantics (K3 callbacks/lambda_callback.py), and its effect on
``CallbackList.needs_batch_hooks`` (per-batch hooks only when a batch function is given)."""
import numpy as np
import pytest

import fastnn
from fastnn.callbacks import Callback, CallbackList, LambdaCallback
from fastnn.layers import Dense, Input
from fastnn.utils.rng_utils import set_random_seed


def noop(*args, **kwargs):
    return None


# ---------------------------------------------------------------------------- construction
def test_only_given_hooks_are_replaced():
    cb = LambdaCallback(on_epoch_end=noop, on_test_end=noop)
    assert cb.on_epoch_end is noop and cb.on_test_end is noop
    assert "on_epoch_begin" not in vars(cb)
    assert cb.on_epoch_begin.__func__ is Callback.on_epoch_begin
    assert cb.model is None and cb.params == {}


def test_unknown_keyword_raises():
    with pytest.raises(TypeError, match=r"unrecognized keyword arguments \['on_epoch_ends'\]"):
        LambdaCallback(on_epoch_ends=noop)


@pytest.mark.parametrize("name", ["on_epoch_end", "on_train_batch_begin", "on_predict_end"])
def test_non_callable_raises(name):
    with pytest.raises(TypeError, match=f"`{name}` must be a function"):
        LambdaCallback(**{name: 1})


def test_none_keeps_the_default():
    cb = LambdaCallback(on_epoch_end=None, on_test_begin=None)
    assert vars(cb).keys() == {"model", "params"}


# ---------------------------------------------------------------------------- needs_batch_hooks
@pytest.mark.parametrize("kwargs", [
    {}, {"on_epoch_begin": noop, "on_epoch_end": noop, "on_train_begin": noop, "on_train_end": noop},
    {"on_test_batch_end": noop, "on_predict_batch_begin": noop, "on_test_begin": noop},
])
def test_no_train_batch_function_keeps_the_chunked_path(kwargs):
    assert not CallbackList([LambdaCallback(**kwargs)]).needs_batch_hooks


@pytest.mark.parametrize("name", ["on_train_batch_begin", "on_train_batch_end", "on_batch_begin",
                                  "on_batch_end"])
def test_a_train_batch_function_needs_per_batch_hooks(name):
    assert CallbackList([LambdaCallback(**{name: noop})]).needs_batch_hooks


# ---------------------------------------------------------------------------- fit / evaluate / predict
def data(n=20):
    x = np.random.RandomState(0).randn(n, 3).astype(np.float32)
    return x, x[:, :1] - x[:, 1:2]


def model():
    set_random_seed(0)
    m = fastnn.Sequential([Input((3,)), Dense(1)])
    m.compile(optimizer="sgd", loss="mse")
    return m


def test_fit_calls_every_given_hook_with_keras_arguments():
    calls = []
    cb = LambdaCallback(
        on_train_begin=lambda logs: calls.append(("train_begin", logs)),
        on_epoch_begin=lambda epoch, logs: calls.append(("epoch_begin", epoch)),
        on_train_batch_begin=lambda batch, logs: calls.append(("batch_begin", batch)),
        on_train_batch_end=lambda batch, logs: calls.append(("batch_end", batch, sorted(logs))),
        on_epoch_end=lambda epoch, logs: calls.append(("epoch_end", epoch, sorted(logs))),
        on_train_end=lambda logs: calls.append(("train_end", sorted(logs))),
    )
    x, y = data()
    m = model()
    m.fit(x, y, batch_size=8, epochs=2, verbose=0, validation_split=0.2, callbacks=[cb])
    batches = [("batch_begin", 0), ("batch_end", 0, ["loss"]), ("batch_begin", 1), ("batch_end", 1, ["loss"])]
    expected = [("train_begin", {})]
    for epoch in range(2):
        expected += [("epoch_begin", epoch)] + batches + [("epoch_end", epoch, ["loss", "val_loss"])]
    expected.append(("train_end", ["loss", "val_loss"]))
    assert calls == expected


def test_fit_legacy_on_batch_end_is_called_per_batch():
    batches = []
    x, y = data()
    model().fit(x, y, batch_size=5, epochs=1, verbose=0, callbacks=[LambdaCallback(
        on_batch_end=lambda batch, logs: batches.append(batch))])
    assert batches == [0, 1, 2, 3]


def test_fit_epoch_functions_can_stop_training():
    x, y = data()
    m = model()

    def stop_after_second(epoch, logs):
        if epoch == 1:
            m.stop_training = True

    history = m.fit(x, y, epochs=10, verbose=0, callbacks=[LambdaCallback(on_epoch_end=stop_after_second)])
    assert len(history.history["loss"]) == 2


def test_fit_epoch_functions_can_add_logged_values():
    x, y = data()
    cb = LambdaCallback(on_epoch_end=lambda epoch, logs: logs.update(double_loss=2 * logs["loss"]))
    history = model().fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    assert history.history["double_loss"] == [2 * v for v in history.history["loss"]]


def test_evaluate_and_predict_hooks_from_keywords():
    calls = []
    cb = LambdaCallback(on_test_begin=lambda logs: calls.append("test_begin"),
                        on_test_end=lambda logs: calls.append(("test_end", sorted(logs))),
                        on_predict_begin=lambda logs: calls.append("predict_begin"),
                        on_predict_end=lambda logs: calls.append("predict_end"))
    x, y = data()
    m = model()
    m.evaluate(x, y, verbose=0, callbacks=[cb])
    m.predict(x, verbose=0, callbacks=[cb])
    assert calls == ["test_begin", ("test_end", ["loss"]), "predict_begin", "predict_end"]


def test_fit_validation_calls_the_test_hooks():
    # K3 fit passes its callbacks to evaluate() for validation (backend/*/trainer.py).
    calls = []
    cb = LambdaCallback(on_test_begin=lambda logs: calls.append("test_begin"),
                        on_test_end=lambda logs: calls.append(("test_end", sorted(logs))))
    x, y = data()
    model().fit(x, y, epochs=2, verbose=0, validation_split=0.2, callbacks=[cb])
    assert calls == ["test_begin", ("test_end", ["loss"])] * 2
