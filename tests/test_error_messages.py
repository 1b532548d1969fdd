"""Issue 15, defect 7: the messages of a failed save, of bad weights and data, of epochs=0 and of a loss that
becomes NaN. Each says what went wrong in fastnn's words and names the path, weight, epoch or step."""
import errno
import os
import re
import warnings

import numpy as np
import pytest

from fastnn import Sequential
from fastnn.callbacks import LambdaCallback, ModelCheckpoint, TerminateOnNaN
from fastnn.layers import Dense, Input
from fastnn.models import load_model
from fastnn.saving import file_format as ff


def _model(loss="sparse_categorical_crossentropy", optimizer="sgd"):
    model = Sequential([Input((4,)), Dense(3, activation="softmax")])
    model.compile(optimizer=optimizer, loss=loss)
    return model


def _data(n=32):
    rng = np.random.default_rng(0)
    return rng.random((n, 4)).astype(np.float32), np.arange(n) % 3


# ---------------------------------------------------------------------------- saving
def _failing_write(error):
    def write(zf, name, array):
        raise error
    return write


def test_a_full_disk_names_the_target_and_says_the_old_file_is_intact(tmp_path, monkeypatch):
    path = tmp_path / "m.keras"
    old = _model()
    old.save(path)
    monkeypatch.setattr(ff, "_write_npy", _failing_write(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(OSError) as info:
        _model().save(path)
    message = str(info.value)
    assert info.value.errno == errno.ENOSPC
    assert f"Cannot save to {str(path)!r}: the disk is full (No space left on device)" in message
    assert "previous file at that path is intact" in message and ".tmp" not in message
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]
    np.testing.assert_array_equal(load_model(path).get_weights()[0], old.get_weights()[0])


def test_a_full_disk_without_an_old_file_says_no_file_was_created(tmp_path, monkeypatch):
    monkeypatch.setattr(ff, "_write_npy", _failing_write(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(OSError, match=r"the disk is full .*No file was created"):
        _model().save(tmp_path / "new.keras")
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_target_is_named_not_the_temporary_file(tmp_path, monkeypatch):
    real_open = os.open

    def read_only(path, *args, **kwargs):
        if str(path).endswith(".tmp"):
            raise OSError(errno.EROFS, "Read-only file system", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(ff.os, "open", read_only)
    with pytest.raises(OSError) as info:
        _model().save(tmp_path / "m.keras")
    message = str(info.value)
    assert info.value.errno == errno.EROFS and ".tmp" not in message
    assert re.search(rf"Cannot save to '.*m\.keras': the directory {re.escape(repr(str(tmp_path)))} is not "
                     r"writable \(Read-only file system\)\. No file was created\.", message)


def test_a_target_name_near_the_limit_still_saves(tmp_path):
    """The temporary file's name adds ~40 characters to the target's: a 240-character target name used to
    fail with "File name too long" although the target itself was a valid name."""
    path = tmp_path / ("m" * 240 + ".keras")
    _model().save(path)
    _model().save(path)  # and replaces it
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    with pytest.raises(OSError, match=r"file name is too long for the file system.*No file was created"):
        _model().save(tmp_path / ("m" * 300 + ".keras"))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize("where", ["parent", "grandparent"])
def test_checkpoint_under_a_regular_file_says_what_is_there(tmp_path, where):
    (tmp_path / "runs").write_text("not a directory")
    target = tmp_path / "runs" / ("m.keras" if where == "parent" else "sub/m.keras")
    x, y = _data()
    with pytest.raises(NotADirectoryError) as info:
        _model().fit(x, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(target)])
    message = str(info.value)
    assert f"{str(tmp_path / 'runs')!r} is a file, not a directory" in message and "does not exist" not in message
    with pytest.raises(NotADirectoryError, match="is a file, not a directory"):
        _model().save(target)


def test_checkpoint_still_creates_missing_directories(tmp_path):
    x, y = _data()
    _model().fit(x, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "a" / "b" / "m.keras")])
    assert (tmp_path / "a" / "b" / "m.keras").is_file()


# ---------------------------------------------------------------------------- weights and data
@pytest.mark.parametrize("value, match", [
    (np.full((4, 3), "a"), r"weight 'dense.*/kernel': expected a numeric array of shape \(4, 3\); received "
                           r"array of shape \(4, 3\) and dtype <U1"),
    ([[1.0, 2.0, 3.0]] * 3 + [[1.0, 2.0]], r"weight 'dense.*/kernel' is a ragged nested list: row \[3\] has 2 "
                                           r"elements where row \[0\] has 3"),
    (None, r"weight 'dense.*/kernel': expected a numeric array of shape \(4, 3\); received None"),
    ({"kernel": 1}, r"weight 'dense.*/kernel': expected a numeric array"),
])
def test_set_weights_with_non_numeric_values_is_refused_and_changes_nothing(value, match):
    model = _model()
    before = model.get_weights()
    with pytest.raises(ValueError, match=match):
        model.set_weights([value, np.ones(3)])
    with pytest.raises(ValueError, match=match):
        model.layers[0].set_weights([value, np.ones(3)])
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_set_weights_checks_every_value_before_assigning_any():
    model = Sequential([Input((4,)), Dense(3), Dense(2)])
    before = model.get_weights()
    good = [np.ones_like(w) for w in before]
    with pytest.raises(ValueError, match=r"dense.*/bias': expected shape \(2,\), received \(5,\)"):
        model.set_weights(good[:3] + [np.ones(5)])
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_set_weights_warns_about_nan_and_inf_and_assigns(bad):
    model = _model()
    kernel = np.ones((4, 3))
    kernel[2, 1] = bad
    with pytest.warns(UserWarning, match=r"set_weights: the value for weight 'dense.*/kernel' holds 1 NaN or "
                                         r"infinite entries of 12 \(the first at index \(2, 1\)"):
        model.set_weights([kernel, np.zeros(3)])
    np.testing.assert_array_equal(model.get_weights()[0], kernel.astype(np.float32))
    with pytest.warns(UserWarning, match=r"Layer 'dense.*' set_weights: .*holds 1 NaN"):
        model.layers[0].set_weights([kernel, np.zeros(3)])


def test_finite_weights_give_no_warning():
    model = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.set_weights(model.get_weights())


@pytest.mark.parametrize("call", ["fit", "evaluate", "predict"])
def test_a_ragged_list_as_x_gets_fastnn_s_message(call):
    model = _model()
    x = [[0.1, 0.2, 0.3, 0.4]] * 4 + [[0.1, 0.2]]
    args = (x,) if call == "predict" else (x, [0, 1, 2, 0, 1])
    with pytest.raises(ValueError, match=r"^Argument `x` is a ragged nested list: row \[4\] has 2 elements where "
                                         r"row \[0\] has 4\. .*pad the rows"):
        getattr(model, call)(*args, verbose=0)


# ---------------------------------------------------------------------------- epochs=0
def test_epochs_zero_trains_nothing_and_returns_an_empty_history():
    """Keras 3 loops over range(initial_epoch, epochs): nothing runs, on_train_begin/end still do, and the
    History is empty (K3 backend/*/trainer.py fit)."""
    model = _model()
    x, y = _data()
    model.fit(x, y, epochs=1, verbose=0)
    before, steps = model.get_weights(), model.optimizer.iterations
    events = []
    log = LambdaCallback(on_train_begin=lambda logs: events.append("begin"),
                         on_epoch_begin=lambda epoch, logs: events.append("epoch"),
                         on_train_end=lambda logs: events.append("end"))
    history = model.fit(x, y, epochs=0, verbose=1, callbacks=[log])
    assert history.history == {} and history.epoch == []
    assert events == ["begin", "end"] and model.optimizer.iterations == steps
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.fit(x, y, epochs=2, initial_epoch=2, verbose=0).history == {}
    with pytest.raises(ValueError, match=r"`epochs` must be a non-negative integer; received -1"):
        model.fit(x, y, epochs=-1, verbose=0)
    with pytest.raises(ValueError, match=r"`x` contains NaN"):  # the data are still checked
        model.fit(np.full_like(x, np.nan), y, epochs=0, verbose=0)


# ---------------------------------------------------------------------------- a loss that becomes NaN
def _diverging(n=32):
    # Targets of 1e30 overflow the float32 squared error to inf in the first batch; then the weights go NaN.
    x = np.random.default_rng(0).random((n, 4)).astype(np.float32)
    return x, np.full((n, 3), 1e30, np.float32)


@pytest.mark.parametrize("verbose", [0, 2])
def test_a_nan_loss_without_terminate_on_nan_warns_once_naming_the_epoch_and_batches(verbose):
    """Keras 3 trains on (fastnn too: History keeps every epoch), but a warning names where it happened."""
    model = _model(loss="mse")
    x, y = _diverging()
    with np.errstate(over="ignore", invalid="ignore"), pytest.warns(RuntimeWarning) as record:
        history = model.fit(x, y, batch_size=8, epochs=3, verbose=verbose)
    messages = [str(w.message) for w in record if "training loss became" in str(w.message)]
    assert len(messages) == 1, messages
    assert re.match(r"fit: the training loss became (inf|nan) at epoch 1, (batch 0 \(optimizer step 1\)|one of "
                    r"batches 0-3 \(optimizer steps 1-4\)); .*TerminateOnNaN", messages[0]), messages[0]
    assert len(history.history["loss"]) == 3


def test_a_nan_loss_with_per_batch_callbacks_names_the_exact_step():
    model = _model(loss="mse")
    x, y = _diverging()
    model.fit(x[:8], np.ones((8, 3), np.float32), batch_size=8, epochs=2, verbose=0)  # 2 good steps first
    y[8:] = 1e30  # the second batch of the next fit diverges
    y[:8] = 1.0
    batches = LambdaCallback(on_train_batch_end=lambda batch, logs: None)
    with np.errstate(over="ignore", invalid="ignore"), \
            pytest.warns(RuntimeWarning, match=r"at epoch 1, batch 1 \(optimizer step 4\)"):
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[batches])


def test_terminate_on_nan_stops_naming_the_epoch_and_step_and_no_warning_repeats_it(capsys):
    model = _model(loss="mse")
    x, y = _diverging()
    model.fit(x, np.ones_like(y), batch_size=8, epochs=1, verbose=0)  # 4 steps, then an epoch that diverges
    with np.errstate(over="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        history = model.fit(x, y, batch_size=8, epochs=3, initial_epoch=1, verbose=0,
                            callbacks=[TerminateOnNaN()])
    assert capsys.readouterr().out == "Batch 0: Invalid loss, terminating training (epoch 2, optimizer step 5)\n"
    assert len(history.history["loss"]) == 1 and model.optimizer.iterations == 5
    with np.errstate(over="ignore", invalid="ignore"), \
            pytest.raises(RuntimeError, match=r"at batch 0 \(epoch 1, optimizer step 6\)\. Loss value: (inf|nan)"):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[TerminateOnNaN(raise_error=True)])
