"""EarlyStopping: Keras 3 semantics (K3 callbacks/early_stopping.py; docs/keras_semantics.md#early-stopping).

Unit tests drive the callback with a fake model and scripted logs; the
integration tests run a real ``fastnn.Sequential`` fit on tiny data.
"""
from types import SimpleNamespace

import numpy as np
import pytest

import fastnn
from fastnn.callbacks import EarlyStopping, LambdaCallback
from fastnn.layers import Dense, Input
from fastnn.utils.rng_utils import set_random_seed


class FakeModel:
    """Just what EarlyStopping touches: stop_training, get/set_weights, compiled metrics."""

    def __init__(self, metrics=()):
        self.stop_training = False
        self._compiled_metrics = list(metrics)
        self.weights = [np.zeros(2)]

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [np.array(w) for w in weights]


def drive(callback, values, monitor="val_loss", model=None, stop=True):
    """Run epochs with logs {monitor: value}; the model's weights are [epoch, epoch] during each epoch.

    Returns the number of epochs run (it stops when the callback asks, if ``stop``).
    """
    model = model or FakeModel()
    callback.set_model(model)
    callback.on_train_begin()
    epochs = 0
    for epoch, value in enumerate(values):
        epochs += 1
        model.weights = [np.full(2, float(epoch))]
        callback.on_epoch_end(epoch, {"loss": 0.0, monitor: value} if monitor != "loss" else {"loss": value})
        if stop and model.stop_training:
            break
    callback.on_train_end()
    return epochs


# ---------------------------------------------------------------------------- arguments
def test_defaults_match_keras():
    es = EarlyStopping()
    assert (es.monitor, es.min_delta, es.patience, es.verbose, es.mode) == ("val_loss", 0, 0, 0, "auto")
    assert es.baseline is None and es.restore_best_weights is False and es.start_from_epoch == 0
    assert es.stopped_epoch == 0 and es.wait == 0 and es.best is None and es.best_weights is None


@pytest.mark.parametrize("kwargs, match", [
    ({"patience": -1}, "patience"),
    ({"patience": 1.5}, "patience"),
    ({"start_from_epoch": -2}, "start_from_epoch"),
    ({"monitor": None}, "monitor"),
    ({"min_delta": "0.1"}, "min_delta"),
    ({"baseline": float("nan")}, "baseline"),
])
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EarlyStopping(**kwargs)


def test_unknown_mode_warns_and_falls_back_to_auto():
    with pytest.warns(UserWarning, match="EarlyStopping mode 'maximum' is unknown, fallback to auto mode"):
        es = EarlyStopping(monitor="val_accuracy", mode="maximum")
    assert es.mode == "auto"


# ---------------------------------------------------------------------------- patience
def test_patience_2_stops_at_the_right_epoch():
    es = EarlyStopping(patience=2)
    epochs = drive(es, [1.0, 0.9, 0.95, 0.97, 0.8])
    # 0.9 at epoch 1 is the best; epochs 2 and 3 do not improve: stop after epoch 3 (the 4th).
    assert epochs == 4
    assert es.stopped_epoch == 3 and es.best == 0.9 and es.best_epoch == 1 and es.wait == 2


@pytest.mark.parametrize("patience", [0, 1, 2, 3])
def test_patience_cases_from_keras_tests(patience):
    # K3 early_stopping_test.py::test_early_stopping_patience
    es = EarlyStopping(monitor="loss", patience=patience)
    drive(es, [10.0, 9.0, 8.0, 9.0, 8.9, 8.8, 8.7, 8.6, 8.5], monitor="loss")
    assert es.stopped_epoch == max(patience, 1) + 2


def test_improving_run_never_stops():
    es = EarlyStopping(patience=0)
    assert drive(es, [5.0, 4.0, 3.0, 2.0]) == 4
    assert es.stopped_epoch == 0 and not es.model.stop_training


def test_never_stops_after_the_first_epoch_even_with_patience_0():
    # A NaN first value is not an improvement (so wait=1 >= patience=0), but Keras never stops at epoch 0.
    es = EarlyStopping(patience=0)
    assert drive(es, [float("nan"), 1.0, 0.5]) == 3
    assert es.best == 0.5 and es.stopped_epoch == 0


def test_nan_is_never_the_best_value():
    es = EarlyStopping(patience=1, restore_best_weights=True)
    model = FakeModel()
    assert drive(es, [1.0, float("nan"), 0.9], model=model) == 2
    assert es.best == 1.0 and es.stopped_epoch == 1
    np.testing.assert_array_equal(model.weights[0], [0.0, 0.0])


def test_numpy_scalar_values_are_accepted():
    es = EarlyStopping(patience=1)
    assert drive(es, [np.float32(1.0), np.float64(1.5), np.array(2.0)]) == 2
    assert isinstance(es.best, float)


# ---------------------------------------------------------------------------- min_delta
@pytest.mark.parametrize("min_delta", [0.1, -0.1])
def test_min_delta_min_mode_needs_a_decrease_larger_than_min_delta(min_delta):
    es = EarlyStopping(monitor="val_loss", min_delta=min_delta, patience=5)
    drive(es, [1.0, 0.95, 0.85])
    # 0.95 is within |min_delta| of 1.0: not an improvement; 0.85 is.
    assert es.min_delta == 0.1
    assert es.best == 0.85 and es.best_epoch == 2 and es.wait == 0


@pytest.mark.parametrize("min_delta", [0.1, -0.1])
def test_min_delta_max_mode_needs_an_increase_larger_than_min_delta(min_delta):
    es = EarlyStopping(monitor="val_accuracy", min_delta=min_delta, patience=5)
    drive(es, [0.5, 0.55, 0.7, 0.75], monitor="val_accuracy")
    assert es.monitor_op is np.greater
    assert es.best == 0.7 and es.best_epoch == 2 and es.wait == 1


def test_min_delta_zero_counts_any_strict_improvement_and_ties_do_not():
    es = EarlyStopping(patience=1)
    assert drive(es, [1.0, 0.999999, 0.999999]) == 3
    assert es.best == 0.999999 and es.stopped_epoch == 2


# ---------------------------------------------------------------------------- baseline
def test_baseline_not_beaten_stops_after_patience_epochs():
    # Without a baseline [1.0, 0.9, 0.95] keeps going with patience=2 ...
    assert drive(EarlyStopping(patience=2), [1.0, 0.9, 0.95]) == 3
    # ... with one, improvements that do not beat it do not reset the count.
    es = EarlyStopping(patience=2, baseline=0.5)
    assert drive(es, [1.0, 0.9, 0.95, 0.8]) == 3
    assert es.stopped_epoch == 2 and es.best == 0.9


def test_improvements_below_the_baseline_never_stop():
    # K3 (and tf.keras) only check patience on epochs that do not improve on the best value.
    es = EarlyStopping(patience=1, baseline=0.1)
    assert drive(es, [1.0, 0.9, 0.8, 0.7, 0.6]) == 5
    assert es.wait == 5 and es.stopped_epoch == 0


def test_baseline_beaten_resets_wait():
    es = EarlyStopping(patience=2, baseline=0.95)
    assert drive(es, [1.0, 0.9, 0.95, 0.97, 0.5]) == 4
    assert es.stopped_epoch == 3


def test_baseline_with_restore_restores_best_epoch_of_the_patience_window():
    # K3 test_early_stopping_final_weights_when_restoring_model_weights, second case.
    es = EarlyStopping(patience=5, baseline=0.5, restore_best_weights=True)
    model = FakeModel()
    assert drive(es, [0.9, 0.8, 0.7, 0.71, 0.72, 0.73], model=model) == 5
    np.testing.assert_array_equal(model.weights[0], [2.0, 2.0])


def test_baseline_in_max_mode():
    es = EarlyStopping(monitor="val_accuracy", patience=1, baseline=0.8)
    assert drive(es, [0.5, 0.45, 0.4], monitor="val_accuracy") == 2
    es = EarlyStopping(monitor="val_accuracy", patience=1, baseline=0.8)
    assert drive(es, [0.85, 0.9, 0.95], monitor="val_accuracy") == 3


# ---------------------------------------------------------------------------- start_from_epoch
def test_start_from_epoch_ignores_warm_up_epochs():
    es = EarlyStopping(patience=1, start_from_epoch=2, restore_best_weights=True)
    model = FakeModel()
    # Epochs 0 and 1 have the lowest values but are not monitored.
    assert drive(es, [0.1, 0.2, 1.0, 1.1, 0.9], model=model) == 4
    assert es.best == 1.0 and es.best_epoch == 2 and es.stopped_epoch == 3
    np.testing.assert_array_equal(model.weights[0], [2.0, 2.0])


def test_start_from_epoch_with_patience_0_runs_at_least_the_warm_up():
    es = EarlyStopping(patience=0, start_from_epoch=3)
    assert drive(es, [1.0, 2.0, 3.0, 4.0, 5.0]) == 5
    assert es.stopped_epoch == 4


# ---------------------------------------------------------------------------- restore_best_weights
def test_restore_best_weights_after_stopping():
    # K3 test case: best is epoch 2 (0.1), patience 2 stops at epoch 4, weights of epoch 2 restored.
    es = EarlyStopping(patience=2, restore_best_weights=True)
    model = FakeModel()
    assert drive(es, [0.2, 0.15, 0.1, 0.11, 0.12], model=model) == 5
    np.testing.assert_array_equal(model.weights[0], [2.0, 2.0])


def test_restore_best_weights_also_when_it_did_not_trigger():
    # Keras 3 / tf.keras >= 2.16 semantics; tf.keras <= 2.15 left the last epoch's weights (§3.9).
    es = EarlyStopping(patience=10, restore_best_weights=True)
    model = FakeModel()
    assert drive(es, [0.5, 0.3, 0.4, 0.45], model=model) == 4
    assert es.stopped_epoch == 0
    np.testing.assert_array_equal(model.weights[0], [1.0, 1.0])


def test_restore_best_weights_when_another_callback_stops_training():
    es = EarlyStopping(patience=5, restore_best_weights=True)
    model = FakeModel()
    es.set_model(model)
    es.on_train_begin()
    for epoch, value in enumerate([0.9, 0.8, 0.85]):
        model.weights = [np.full(2, float(epoch))]
        es.on_epoch_end(epoch, {"val_loss": value})
    es.on_train_end()
    np.testing.assert_array_equal(model.weights[0], [1.0, 1.0])


def test_no_restore_without_the_flag():
    model = FakeModel()
    drive(EarlyStopping(patience=1), [0.2, 0.3, 0.4], model=model)
    np.testing.assert_array_equal(model.weights[0], [1.0, 1.0])


def test_no_restore_if_nothing_was_monitored():
    model = FakeModel()
    es = EarlyStopping(patience=1, restore_best_weights=True, start_from_epoch=10)
    drive(es, [0.2, 0.3], model=model)
    assert es.best_weights is None
    np.testing.assert_array_equal(model.weights[0], [1.0, 1.0])


def test_saved_weights_are_a_snapshot():
    es = EarlyStopping(patience=3, restore_best_weights=True)
    model = FakeModel()
    es.set_model(model)
    es.on_train_begin()
    es.on_epoch_end(0, {"val_loss": 1.0})
    model.weights[0][...] = 42.0  # training mutates the weights in place
    es.on_epoch_end(1, {"val_loss": 2.0})
    es.on_train_end()
    np.testing.assert_array_equal(model.weights[0], [0.0, 0.0])


# ---------------------------------------------------------------------------- messages and reuse
def test_verbose_messages(capsys):
    es = EarlyStopping(patience=2, verbose=1, restore_best_weights=True)
    drive(es, [1.0, 0.9, 0.95, 0.97, 0.8])
    assert capsys.readouterr().out == ("Epoch 4: early stopping\n"
                                       "Restoring model weights from the end of the best epoch: 2.\n")


def test_verbose_restore_message_without_stopping(capsys):
    drive(EarlyStopping(patience=5, verbose=1, restore_best_weights=True), [1.0, 0.9, 0.95])
    assert capsys.readouterr().out == "Restoring model weights from the end of the best epoch: 2.\n"


def test_silent_by_default(capsys):
    drive(EarlyStopping(patience=2, restore_best_weights=True), [1.0, 0.9, 0.95, 0.97, 0.8])
    assert capsys.readouterr().out == ""


def test_missing_monitor_warns_with_available_keys_and_changes_nothing():
    es = EarlyStopping(patience=0)
    model = FakeModel()
    es.set_model(model)
    es.on_train_begin()
    es.on_epoch_end(0, {"val_loss": 1.0})
    with pytest.warns(UserWarning, match=r"Early stopping conditioned on metric `val_loss` which is not "
                                         r"available\. Available metrics are: loss,accuracy"):
        es.on_epoch_end(1, {"loss": 0.3, "accuracy": 0.9})
    assert es.wait == 0 and not model.stop_training


def test_state_resets_on_train_begin_so_an_instance_can_be_reused():
    es = EarlyStopping(patience=1, restore_best_weights=True)
    drive(es, [1.0, 2.0, 3.0])
    assert es.stopped_epoch == 1
    model = FakeModel()
    assert drive(es, [5.0, 4.0, 3.0], model=model) == 3
    assert es.best == 3.0 and es.best_epoch == 2 and es.stopped_epoch == 0 and es.wait == 0


def test_callback_without_on_train_begin_sets_itself_up_lazily():
    es = EarlyStopping(monitor="val_accuracy", patience=0)
    es.set_model(FakeModel())
    es.on_epoch_end(0, {"val_accuracy": 0.5})
    es.on_epoch_end(1, {"val_accuracy": 0.4})
    assert es.monitor_op is np.greater and es.model.stop_training


# ---------------------------------------------------------------------------- mode
@pytest.mark.parametrize("monitor, op", [
    ("val_loss", np.less), ("loss", np.less),
    ("val_accuracy", np.greater), ("accuracy", np.greater), ("acc", np.greater), ("val_acc", np.greater),
    ("binary_accuracy", np.greater), ("val_sparse_categorical_accuracy", np.greater), ("val_auc", np.greater),
    ("val_mae", np.less), ("mse", np.less), ("val_mean_absolute_error", np.less),
])
def test_mode_auto_by_name(monitor, op):
    es = EarlyStopping(monitor=monitor)
    es.set_model(FakeModel())
    es.on_train_begin()
    assert es.monitor_op is op


def test_mode_auto_uses_the_compiled_metrics_direction():
    metrics = [SimpleNamespace(name="f1", direction="up"), SimpleNamespace(name="my_error", direction="down"),
               SimpleNamespace(name="strange_acc", direction="down")]
    for monitor, op in [("val_f1", np.greater), ("my_error", np.less), ("val_strange_acc", np.less)]:
        es = EarlyStopping(monitor=monitor)
        es.set_model(FakeModel(metrics))
        es.on_train_begin()
        assert es.monitor_op is op, monitor


def test_mode_auto_unknown_metric_asks_for_mode():
    es = EarlyStopping(monitor="val_f1")
    es.set_model(FakeModel())
    with pytest.raises(ValueError, match=r"monitor=val_f1.*Pass `mode='max'`.*`mode='min'`"):
        es.on_train_begin()


@pytest.mark.parametrize("mode, op", [("min", np.less), ("max", np.greater)])
def test_explicit_mode_overrides_the_name(mode, op):
    es = EarlyStopping(monitor="val_accuracy", mode=mode)
    es.set_model(FakeModel())
    es.on_train_begin()
    assert es.monitor_op is op
    es = EarlyStopping(monitor="val_f1", mode=mode)  # unknown names are fine with an explicit mode
    es.set_model(FakeModel())
    es.on_train_begin()
    assert es.monitor_op is op


# ---------------------------------------------------------------------------- through fit
def regression_data(n=32, seed=0):
    rs = np.random.RandomState(seed)
    x = rs.randn(n, 3).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]) + 0.3).astype(np.float32).reshape(-1, 1)
    return x, y


def linear_model(lr=0.05, metrics=None, seed=0):
    set_random_seed(seed)
    model = fastnn.Sequential([Input((3,)), Dense(1)])
    model.compile(optimizer=fastnn.optimizers.SGD(lr), loss="mse", metrics=metrics)
    return model


def test_fit_stops_and_history_has_the_epochs_run():
    # Full-batch gradient descent on a linear least-squares problem with a small step: the loss
    # decreases every epoch, so in 'max' mode epoch 0 stays the best and patience=2 stops after epoch 2.
    x, y = regression_data()
    model = linear_model()
    es = EarlyStopping(monitor="loss", mode="max", patience=2)
    history = model.fit(x, y, batch_size=32, epochs=20, shuffle=False, verbose=0, callbacks=[es])
    assert len(history.history["loss"]) == 3 and history.epoch == [0, 1, 2]
    assert np.all(np.diff(history.history["loss"]) < 0)
    assert es.stopped_epoch == 2 and model.stop_training


def test_fit_on_val_loss_with_validation_data():
    x, y = regression_data()
    xv, yv = regression_data(8, seed=1)
    model = linear_model()
    es = EarlyStopping(patience=1, min_delta=1e9)  # nothing improves by 1e9
    history = model.fit(x, y, batch_size=8, epochs=10, verbose=0, callbacks=[es], validation_data=(xv, yv))
    assert len(history.history["val_loss"]) == 2 and es.stopped_epoch == 1


def test_fit_restores_best_weights_even_without_stopping():
    x, y = regression_data()
    model = linear_model()
    snapshots = []
    record = LambdaCallback(on_epoch_end=lambda epoch, logs: snapshots.append(model.get_weights()))
    es = EarlyStopping(monitor="loss", mode="max", patience=100, restore_best_weights=True)
    history = model.fit(x, y, batch_size=32, epochs=4, shuffle=False, verbose=0, callbacks=[record, es])
    assert len(history.history["loss"]) == 4 and es.stopped_epoch == 0
    # Best (in 'max' mode) is epoch 0: its weights are restored, not the last epoch's.
    assert not np.allclose(snapshots[0][0], snapshots[-1][0])
    for restored, best in zip(model.get_weights(), snapshots[0]):
        np.testing.assert_array_equal(restored, best)


def test_fit_restore_then_predict_uses_the_restored_weights():
    x, y = regression_data()
    model = linear_model()
    es = EarlyStopping(monitor="loss", mode="max", patience=1, restore_best_weights=True)
    weights_after_epoch_0 = []
    record = LambdaCallback(on_epoch_end=lambda epoch, logs: epoch == 0 and weights_after_epoch_0.append(
        model.get_weights()))
    model.fit(x, y, batch_size=32, epochs=5, shuffle=False, verbose=0, callbacks=[record, es])
    kernel, bias = weights_after_epoch_0[0]
    np.testing.assert_allclose(model.predict(x, verbose=0), x @ kernel + bias, rtol=1e-5, atol=1e-6)


def test_fit_without_validation_warns_about_val_loss():
    x, y = regression_data()
    model = linear_model()
    with pytest.warns(UserWarning, match="`val_loss` which is not available. Available metrics are: loss"):
        history = model.fit(x, y, epochs=2, verbose=0, callbacks=[EarlyStopping()])
    assert len(history.history["loss"]) == 2


@pytest.mark.parametrize("metric, monitor, op", [
    ("acc", "val_acc", np.greater), ("accuracy", "accuracy", np.greater), ("mae", "val_mae", np.less),
])
def test_fit_mode_auto_from_compiled_metrics(metric, monitor, op):
    x, y = regression_data()
    y = (y > 0).astype(np.float32)
    set_random_seed(0)
    model = fastnn.Sequential([Input((3,)), Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=[metric])
    es = EarlyStopping(monitor=monitor, patience=50)
    model.fit(x, y, epochs=2, verbose=0, validation_split=0.25, callbacks=[es])
    assert es.monitor_op is op


def test_fit_unknown_monitor_raises_before_training():
    x, y = regression_data()
    model = linear_model(metrics=["mae"])
    before = model.get_weights()
    with pytest.raises(ValueError, match="monitor=val_f1"):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[EarlyStopping(monitor="val_f1")])
    for w, w0 in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, w0)


def test_fit_verbose_message(capsys):
    x, y = regression_data()
    model = linear_model()
    es = EarlyStopping(monitor="loss", mode="max", patience=1, verbose=1, restore_best_weights=True)
    model.fit(x, y, batch_size=32, epochs=10, shuffle=False, verbose=0, callbacks=[es])
    assert capsys.readouterr().out == ("Epoch 2: early stopping\n"
                                       "Restoring model weights from the end of the best epoch: 1.\n")
