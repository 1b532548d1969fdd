"""ReduceLROnPlateau: Keras 3 semantics (K3 callbacks/reduce_lr_on_plateau.py).

The ``learning_rate`` log key: docs/keras_semantics.md#history.
"""
from types import SimpleNamespace

import numpy as np
import pytest

import fastnn
from fastnn.callbacks import LambdaCallback, LearningRateScheduler, ReduceLROnPlateau
from fastnn.layers import Dense, Input
from fastnn.utils.rng_utils import set_random_seed
from _checks import use_reference_engine


class FakeModel:
    def __init__(self, lr=0.1):
        self.stop_training = False
        self.optimizer = SimpleNamespace(learning_rate=lr)
        self._compiled_metrics = []


def drive(callback, values, monitor="val_loss", lr=0.1):
    """Run epochs with logs {monitor: value}; return (model, the logs of each epoch)."""
    model = FakeModel(lr)
    callback.set_model(model)
    callback.on_train_begin()
    all_logs = []
    for epoch, value in enumerate(values):
        logs = {"loss": 1.0, monitor: value}
        callback.on_epoch_end(epoch, logs)
        all_logs.append(logs)
    callback.on_train_end()
    return model, all_logs


def lrs(all_logs):
    return [logs["learning_rate"] for logs in all_logs]


# ---------------------------------------------------------------------------- arguments
def test_defaults_match_keras():
    cb = ReduceLROnPlateau()
    assert (cb.monitor, cb.factor, cb.patience, cb.verbose, cb.mode) == ("val_loss", 0.1, 10, 0, "auto")
    assert (cb.min_delta, cb.cooldown, cb.min_lr) == (1e-4, 0, 0.0)
    assert cb.wait == 0 and cb.cooldown_counter == 0


@pytest.mark.parametrize("factor", [1.0, 2.0, -0.5])
def test_factor_out_of_range_raises(factor):
    with pytest.raises(ValueError, match="ReduceLROnPlateau does not support a factor >= 1.0"):
        ReduceLROnPlateau(factor=factor)


@pytest.mark.parametrize("kwargs, match", [
    ({"patience": -1}, "patience"), ({"cooldown": 0.5}, "cooldown"), ({"min_lr": -1e-3}, "min_lr"),
    ({"min_delta": None}, "min_delta"), ({"monitor": ""}, "monitor"),
])
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ReduceLROnPlateau(**kwargs)


def test_unknown_keyword_raises_instead_of_being_ignored():
    with pytest.raises(TypeError, match="Unrecognized keyword arguments passed to ReduceLROnPlateau"):
        ReduceLROnPlateau(lr_min=0.01)


def test_tf_keras_epsilon_is_an_alias_of_min_delta():
    with pytest.warns(UserWarning, match="`epsilon` is a deprecated alias of `min_delta`"):
        cb = ReduceLROnPlateau(epsilon=0.5)
    assert cb.min_delta == 0.5


def test_unknown_mode_warns_and_falls_back_to_auto():
    with pytest.warns(UserWarning, match="ReduceLROnPlateau mode 'low' is unknown, fallback to auto mode"):
        cb = ReduceLROnPlateau(mode="low")
    assert cb.mode == "auto"


# ---------------------------------------------------------------------------- reductions
def test_reduces_after_patience_epochs_without_improvement():
    cb = ReduceLROnPlateau(patience=2)
    model, all_logs = drive(cb, [1.0, 1.0, 1.0, 1.0, 1.0])
    # Logged rate = the rate used during that epoch (recorded before the reduction).
    assert lrs(all_logs) == [0.1, 0.1, 0.1, 0.1 * 0.1, 0.1 * 0.1]
    assert model.optimizer.learning_rate == 0.1 * 0.1 * 0.1


def test_improvement_resets_wait():
    cb = ReduceLROnPlateau(patience=2)
    model, all_logs = drive(cb, [1.0, 1.0, 0.5, 0.5, 0.5])
    assert lrs(all_logs) == [0.1] * 5
    assert model.optimizer.learning_rate == pytest.approx(0.01) and cb.wait == 0


def test_min_delta_default_ignores_tiny_improvements():
    cb = ReduceLROnPlateau(patience=1)
    model, _ = drive(cb, [1.0, 1.0 - 5e-5])
    assert model.optimizer.learning_rate == pytest.approx(0.01)
    cb = ReduceLROnPlateau(patience=1, min_delta=0)
    model, _ = drive(cb, [1.0, 1.0 - 5e-5])
    assert model.optimizer.learning_rate == 0.1


def test_patience_0_reduces_on_every_non_improving_epoch():
    cb = ReduceLROnPlateau(patience=0, factor=0.5)
    model, all_logs = drive(cb, [1.0, 2.0, 0.5, 3.0])
    # Epochs 0 and 2 improve; with patience 0 every other epoch reduces (wait >= 0 after wait += 1).
    assert lrs(all_logs) == [0.1, 0.1, 0.05, 0.05]
    assert model.optimizer.learning_rate == 0.025


def test_cooldown_pauses_counting():
    cb = ReduceLROnPlateau(patience=1, cooldown=2, factor=0.5)
    _, all_logs = drive(cb, [1.0] * 6)
    # Reduced after epochs 1 and 3 (epoch 2 is cooldown); without cooldown after every epoch from 1 on.
    assert lrs(all_logs) == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    _, all_logs = drive(ReduceLROnPlateau(patience=1, factor=0.5), [1.0] * 4)
    assert lrs(all_logs) == [0.1, 0.1, 0.05, 0.025]


def test_improvement_during_cooldown_still_updates_best():
    cb = ReduceLROnPlateau(patience=1, cooldown=3, factor=0.5)
    drive(cb, [1.0, 1.0, 0.2])
    assert cb.best == 0.2


def test_min_lr_is_a_floor():
    cb = ReduceLROnPlateau(patience=1, factor=0.1, min_lr=0.005)
    model, all_logs = drive(cb, [1.0] * 5)
    assert lrs(all_logs) == [0.1, 0.1, pytest.approx(0.01), 0.005, 0.005]
    assert model.optimizer.learning_rate == 0.005


def test_max_mode_and_auto_mode_for_accuracy():
    for kwargs in ({"mode": "max"}, {}):
        cb = ReduceLROnPlateau(monitor="val_accuracy", patience=1, factor=0.5, **kwargs)
        model, _ = drive(cb, [0.5, 0.6, 0.7, 0.65], monitor="val_accuracy")
        assert cb.monitor_op is np.greater
        assert model.optimizer.learning_rate == 0.05


def test_mode_auto_unknown_metric_asks_for_mode():
    cb = ReduceLROnPlateau(monitor="val_f1")
    cb.set_model(FakeModel())
    with pytest.raises(ValueError, match="ReduceLROnPlateau callback received monitor=val_f1"):
        cb.on_train_begin()


def test_nan_is_not_an_improvement():
    cb = ReduceLROnPlateau(patience=1, factor=0.5)
    model, _ = drive(cb, [1.0, float("nan")])
    assert model.optimizer.learning_rate == 0.05 and cb.best == 1.0


def test_verbose_message(capsys):
    cb = ReduceLROnPlateau(patience=1, verbose=1)
    drive(cb, [1.0, 1.0])
    assert capsys.readouterr().out == f"\nEpoch 2: ReduceLROnPlateau reducing learning rate to {0.1 * 0.1}.\n"


def test_missing_monitor_warns_but_still_logs_the_learning_rate():
    cb = ReduceLROnPlateau()
    cb.set_model(FakeModel(0.25))
    cb.on_train_begin()
    logs = {"loss": 1.0}
    with pytest.warns(UserWarning, match=r"Learning rate reduction is conditioned on metric `val_loss` which "
                                         r"is not available\. Available metrics are: loss,learning_rate\."):
        cb.on_epoch_end(0, logs)
    assert logs == {"loss": 1.0, "learning_rate": 0.25}


def test_state_resets_on_train_begin():
    cb = ReduceLROnPlateau(patience=2, cooldown=5)
    drive(cb, [0.1, 1.0, 1.0])
    assert cb.cooldown_counter == 5
    model, all_logs = drive(cb, [1.0, 1.0, 1.0])
    # A fresh best (1.0 would not improve on the previous fit's 0.1) and no leftover cooldown.
    assert lrs(all_logs) == [0.1, 0.1, 0.1] and model.optimizer.learning_rate == pytest.approx(0.01)


# ---------------------------------------------------------------------------- through fit
def regression_data(n=32, seed=0):
    rs = np.random.RandomState(seed)
    x = rs.randn(n, 3).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]) + 0.3).astype(np.float32).reshape(-1, 1)
    return x, y


def small_model(lr=0.1, engine=True, seed=0):
    set_random_seed(seed)
    model = fastnn.Sequential([Input((3,)), Dense(4, activation="relu"), Dense(1)])
    model.compile(optimizer=fastnn.optimizers.SGD(lr), loss="mse")
    if not engine:
        use_reference_engine(model)  # the NumPy twin
    return model


def test_fit_reduces_the_optimizer_learning_rate_and_logs_it():
    x, y = regression_data()
    model = small_model(lr=0.02)
    # Full-batch GD with a small step: the loss decreases every epoch, so in 'max' mode it never improves.
    cb = ReduceLROnPlateau(monitor="loss", mode="max", patience=1, factor=0.5)
    history = model.fit(x, y, batch_size=32, epochs=4, shuffle=False, verbose=0, callbacks=[cb])
    assert np.all(np.diff(history.history["loss"]) < 0)
    # Each entry is the rate used during that epoch; the reductions happen at the ends of epochs 1, 2, 3.
    assert history.history["learning_rate"] == [0.02, 0.02, 0.01, 0.005]
    assert model.optimizer.learning_rate == 0.0025


@pytest.mark.parametrize("engine", [True, False], ids=["engine", "layers"])
@pytest.mark.parametrize("per_batch", [False, True], ids=["chunked", "per_batch"])
def test_fit_trains_with_the_reduced_learning_rate(engine, per_batch):
    # factor=0: after the reduction at the end of epoch 1 the rate is 0, so the weights stop changing.
    x, y = regression_data()
    model = small_model(engine=engine)
    snapshots = []
    hooks = {"on_epoch_end": lambda epoch, logs: snapshots.append(model.get_weights())}
    if per_batch:
        hooks["on_train_batch_end"] = lambda batch, logs: None
    cb = ReduceLROnPlateau(monitor="loss", mode="max", patience=1, factor=0.0)
    history = model.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=[LambdaCallback(**hooks), cb])
    assert history.history["learning_rate"] == [0.1, 0.1, 0.0, 0.0]
    assert not np.array_equal(snapshots[0][0], snapshots[1][0])
    for later in snapshots[2:]:
        for w, w1 in zip(later, snapshots[1]):
            np.testing.assert_array_equal(w, w1)


@pytest.mark.parametrize("engine", [True, False], ids=["engine", "layers"])
def test_fit_with_reduction_matches_two_fits_with_the_two_rates(engine):
    # Reference: the same training split into two fit calls with the rate changed by hand.
    x, y = regression_data()
    reduced = small_model(engine=engine)
    cb = ReduceLROnPlateau(monitor="loss", mode="max", patience=1, factor=0.25, cooldown=10)
    history = reduced.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0, callbacks=[cb])
    assert history.history["learning_rate"] == [0.1, 0.1, 0.025, 0.025]

    manual = small_model(engine=engine)
    manual.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    manual.optimizer.learning_rate = 0.025
    manual.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for w, w_ref in zip(reduced.get_weights(), manual.get_weights()):
        np.testing.assert_allclose(w, w_ref, rtol=1e-6, atol=1e-7)


def test_fit_with_validation_and_a_scheduler_logs_one_learning_rate_key():
    x, y = regression_data()
    model = small_model()
    cbs = [LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1)),
           ReduceLROnPlateau(patience=100)]
    history = model.fit(x, y, epochs=3, verbose=0, validation_split=0.25, callbacks=cbs)
    assert sorted(history.history) == ["learning_rate", "loss", "val_loss"]
    assert history.history["learning_rate"] == [0.1, 0.05, 0.1 / 3]
