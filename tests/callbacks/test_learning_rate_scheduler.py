"""LearningRateScheduler: Keras 3 semantics (K3 callbacks/learning_rate_scheduler.py)."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

import fastnn
from fastnn.callbacks import LambdaCallback, LearningRateScheduler
from fastnn.layers import Dense, Input
from fastnn.utils.rng_utils import set_random_seed
from _checks import use_reference_engine


def fake_model(lr=0.1):
    return SimpleNamespace(stop_training=False, optimizer=SimpleNamespace(learning_rate=lr))


def run_epochs(callback, n, lr=0.1):
    model = fake_model(lr)
    callback.set_model(model)
    callback.on_train_begin()
    seen, all_logs = [], []
    for epoch in range(n):
        callback.on_epoch_begin(epoch)
        seen.append(model.optimizer.learning_rate)
        logs = {"loss": 1.0}
        callback.on_epoch_end(epoch, logs)
        all_logs.append(logs)
    return model, seen, all_logs


# ---------------------------------------------------------------------------- unit
def test_schedule_gets_epoch_and_current_rate_and_sets_the_new_rate():
    calls = []

    def schedule(epoch, lr):
        calls.append((epoch, lr))
        return lr * 0.5

    model, seen, all_logs = run_epochs(LearningRateScheduler(schedule), 3)
    assert calls == [(0, 0.1), (1, 0.05), (2, 0.025)]
    assert seen == [0.05, 0.025, 0.0125]
    assert [logs["learning_rate"] for logs in all_logs] == seen
    assert all(type(lr) is float for _, lr in calls)


def test_defaults():
    cb = LearningRateScheduler(lambda epoch, lr: lr)
    assert cb.verbose == 0


def test_one_argument_schedule_of_keras_2_0_is_accepted():
    _, seen, _ = run_epochs(LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1)), 3)
    assert seen == [0.1, 0.05, 0.1 / 3]


def test_schedule_with_defaults_and_keyword_only_parameters():
    def schedule(epoch, lr, *, floor=0.01):
        return max(lr / 10, floor)

    _, seen, _ = run_epochs(LearningRateScheduler(schedule), 3)
    assert seen == [pytest.approx(0.01), 0.01, 0.01]


@pytest.mark.parametrize("value", [np.float32(0.5), np.float64(0.5), np.array(0.5), 0.5])
def test_float_like_results_are_accepted(value):
    model, seen, _ = run_epochs(LearningRateScheduler(lambda epoch, lr: value), 1)
    assert seen == [0.5] and type(model.optimizer.learning_rate) is float


@pytest.mark.parametrize("value", [1, np.int64(1), "0.1", None, [0.1], True])
def test_non_float_result_raises(value):
    cb = LearningRateScheduler(lambda epoch, lr: value)
    with pytest.raises(ValueError, match="The output of the `schedule` function should be a float. Got: "):
        run_epochs(cb, 1)


def test_type_error_inside_schedule_is_not_swallowed():
    def schedule(epoch, lr):
        return lr + "oops"

    with pytest.raises(TypeError, match="unsupported operand"):
        run_epochs(LearningRateScheduler(schedule), 1)


def test_schedule_must_be_callable_with_epoch_and_lr():
    with pytest.raises(TypeError, match="must be a function"):
        LearningRateScheduler(0.1)
    with pytest.raises(TypeError, match=r"must accept `\(epoch, lr\)`"):
        LearningRateScheduler(lambda epoch, lr, step: lr)


def test_optimizer_without_learning_rate_raises():
    cb = LearningRateScheduler(lambda epoch, lr: lr)
    cb.set_model(SimpleNamespace(optimizer=object()))
    with pytest.raises(ValueError, match='Optimizer must have a "learning_rate" attribute.'):
        cb.on_epoch_begin(0)


def test_verbose_message(capsys):
    run_epochs(LearningRateScheduler(lambda epoch, lr: 0.5 / (epoch + 1), verbose=1), 2)
    assert capsys.readouterr().out == ("\nEpoch 1: LearningRateScheduler setting learning rate to 0.5.\n"
                                       "\nEpoch 2: LearningRateScheduler setting learning rate to 0.25.\n")


def test_silent_by_default(capsys):
    run_epochs(LearningRateScheduler(lambda epoch, lr: lr), 2)
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------------------- through fit
def regression_data(n=32, seed=0):
    rs = np.random.RandomState(seed)
    x = rs.randn(n, 3).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]) + 0.3).astype(np.float32).reshape(-1, 1)
    return x, y


def small_model(optimizer="sgd", engine=True, seed=0):
    set_random_seed(seed)
    model = fastnn.Sequential([Input((3,)), Dense(4, activation="relu"), Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    if not engine:
        use_reference_engine(model)  # the NumPy twin
    return model


def test_fit_keras_docstring_example():
    # K3 docstring: SGD (lr 0.01), keep the rate for 10 epochs then multiply by exp(-0.1): 0.00607 after 15.
    def scheduler(epoch, lr):
        return lr if epoch < 10 else lr * math.exp(-0.1)

    x, y = regression_data()
    model = small_model()
    assert round(model.optimizer.learning_rate, 5) == 0.01
    history = model.fit(x, y, epochs=15, callbacks=[LearningRateScheduler(scheduler)], verbose=0)
    assert round(model.optimizer.learning_rate, 5) == 0.00607
    assert len(history.history["learning_rate"]) == 15
    assert history.history["learning_rate"][:10] == [0.01] * 10


@pytest.mark.parametrize("engine", [True, False], ids=["engine", "layers"])
def test_fit_uses_the_scheduled_rate_from_that_epoch_on(engine):
    # Reference: two fit calls with the rate changed by hand in between.
    x, y = regression_data()
    scheduled = small_model(fastnn.optimizers.SGD(0.1, momentum=0.5), engine=engine)
    cb = LearningRateScheduler(lambda epoch, lr: 0.1 if epoch < 2 else 0.01)
    scheduled.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0, callbacks=[cb])

    manual = small_model(fastnn.optimizers.SGD(0.1, momentum=0.5), engine=engine)
    manual.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    manual.optimizer.learning_rate = 0.01
    manual.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for w, w_ref in zip(scheduled.get_weights(), manual.get_weights()):
        np.testing.assert_allclose(w, w_ref, rtol=1e-6, atol=1e-7)


def test_fit_zero_rate_freezes_the_weights_even_with_per_batch_hooks():
    x, y = regression_data()
    model = small_model("adam")
    before = model.get_weights()
    batches = []
    cbs = [LearningRateScheduler(lambda epoch, lr: 0.0),
           LambdaCallback(on_train_batch_end=lambda batch, logs: batches.append(batch))]
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=cbs)
    assert batches == [0, 1, 2, 3] * 2
    for w, w0 in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, w0)


def test_fit_with_initial_epoch_passes_absolute_epoch_indices():
    x, y = regression_data()
    model = small_model()
    epochs = []
    cb = LearningRateScheduler(lambda epoch, lr: epochs.append(epoch) or lr)
    model.fit(x, y, epochs=5, initial_epoch=3, verbose=0, callbacks=[cb])
    assert epochs == [3, 4]
