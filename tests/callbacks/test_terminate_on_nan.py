"""TerminateOnNaN: Keras 3 semantics (K3 callbacks/terminate_on_nan.py)."""
from types import SimpleNamespace

import numpy as np
import pytest

import fastnn
from fastnn.callbacks import Callback, CallbackList, LambdaCallback, TerminateOnNaN
from fastnn.layers import Dense, Input
from fastnn.utils.rng_utils import set_random_seed


def attached(callback):
    callback.set_model(SimpleNamespace(stop_training=False))
    return callback


# ---------------------------------------------------------------------------- unit
@pytest.mark.parametrize("loss", [float("nan"), float("inf"), -float("inf"), np.float32("nan")])
def test_invalid_loss_stops_training_with_a_message(loss, capsys):
    cb = attached(TerminateOnNaN())
    cb.on_train_batch_end(3, {"loss": loss})
    assert cb.model.stop_training
    assert capsys.readouterr().out == "Batch 3: Invalid loss, terminating training\n"


@pytest.mark.parametrize("logs", [{"loss": 1e30}, {"loss": 0.0}, {}, None, {"accuracy": float("nan")}])
def test_finite_or_missing_loss_does_nothing(logs, capsys):
    cb = attached(TerminateOnNaN())
    cb.on_train_batch_end(0, logs)
    assert not cb.model.stop_training and capsys.readouterr().out == ""


def test_legacy_on_batch_end_is_the_hook():
    cb = attached(TerminateOnNaN())
    cb.on_batch_end(1, {"loss": float("nan")})
    assert cb.model.stop_training


def test_raise_error():
    cb = attached(TerminateOnNaN(raise_error=True))
    assert TerminateOnNaN().raise_error is False
    with pytest.raises(RuntimeError, match=r"NaN or Inf loss encountered at batch 2\. Loss value: nan\."):
        cb.on_train_batch_end(2, {"loss": float("nan")})
    assert not cb.model.stop_training


def test_needs_per_batch_hooks():
    assert CallbackList([TerminateOnNaN()]).needs_batch_hooks
    assert not CallbackList([Callback()]).needs_batch_hooks


# ---------------------------------------------------------------------------- through fit
def diverging_fit(callbacks, epochs=5):
    # Targets of 1e30 make the float32 squared error overflow to inf in the first batch.
    x = np.random.RandomState(0).randn(32, 3).astype(np.float32)
    y = np.full((32, 1), 1e30, dtype=np.float32)
    set_random_seed(0)
    model = fastnn.Sequential([Input((3,)), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with np.errstate(over="ignore", invalid="ignore"):
        return model, model.fit(x, y, batch_size=8, epochs=epochs, verbose=0, callbacks=callbacks)


def test_fit_stops_at_the_first_bad_batch(capsys):
    batches, ended = [], []
    counter = LambdaCallback(on_train_batch_end=lambda batch, logs: batches.append(batch),
                             on_train_end=lambda logs: ended.append(True))
    model, history = diverging_fit([TerminateOnNaN(), counter])
    assert batches == [0] and ended == [True]
    assert len(history.history["loss"]) == 1 and not np.isfinite(history.history["loss"][0])
    assert model.stop_training
    assert capsys.readouterr().out == "Batch 0: Invalid loss, terminating training (epoch 1, optimizer step 1)\n"


def test_fit_raise_error_skips_train_end():
    ended = []
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 0"):
        diverging_fit([TerminateOnNaN(raise_error=True),
                       LambdaCallback(on_train_end=lambda logs: ended.append(1))])
    assert ended == []


def test_fit_with_finite_losses_runs_every_epoch():
    x = np.random.RandomState(0).randn(32, 3).astype(np.float32)
    set_random_seed(0)
    model = fastnn.Sequential([Input((3,)), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, x[:, :1], batch_size=8, epochs=3, verbose=0, callbacks=[TerminateOnNaN()])
    assert len(history.history["loss"]) == 3
