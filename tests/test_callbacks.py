"""Callback, CallbackList, History and ProgbarLogger (Keras 3 semantics)."""
import io
import sys
from contextlib import redirect_stdout
from types import SimpleNamespace

import numpy as np
import pytest

from fastnn.callbacks import Callback, CallbackList, History, ProgbarLogger
from fastnn.utils import progbar as progbar_mod

HOOKS_WITH_INDEX = (
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
    "on_batch_begin",
    "on_batch_end",
)
HOOKS = (
    "on_train_begin",
    "on_train_end",
    "on_test_begin",
    "on_test_end",
    "on_predict_begin",
    "on_predict_end",
)


class Recorder(Callback):
    """Records every epoch-level hook; overrides no batch hook."""

    def __init__(self, name, calls):
        super().__init__()
        self.name = name
        self.calls = calls

    def on_train_begin(self, logs=None):
        self.calls.append((self.name, "on_train_begin"))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append((self.name, "on_epoch_end", epoch, dict(logs)))


class AllHooksRecorder(Callback):
    def __init__(self, calls):
        super().__init__()
        self.calls = calls


def _record_indexed(name):
    def hook(self, index, logs=None):
        self.calls.append((name, (index,), logs))

    return hook


def _record(name):
    def hook(self, logs=None):
        self.calls.append((name, (), logs))

    return hook


for _name in HOOKS_WITH_INDEX:
    setattr(AllHooksRecorder, _name, _record_indexed(_name))
for _name in HOOKS:
    setattr(AllHooksRecorder, _name, _record(_name))


def _model():
    return SimpleNamespace(stop_training=False)


# -- Callback ------------------------------------------------------------------
def test_callback_defaults():
    cb = Callback()
    assert cb.model is None
    assert cb.params == {}
    model = _model()
    cb.set_model(model)
    cb.set_params({"epochs": 3})
    assert cb.model is model and cb.params == {"epochs": 3}
    for name in HOOKS_WITH_INDEX:
        assert getattr(cb, name)(0) is None
        assert getattr(cb, name)(0, logs={"loss": 1.0}) is None
    for name in HOOKS:
        assert getattr(cb, name)() is None


def test_train_batch_hooks_call_legacy_aliases():
    seen = []

    class Legacy(Callback):
        def on_batch_begin(self, batch, logs=None):
            seen.append(("begin", batch, logs))

        def on_batch_end(self, batch, logs=None):
            seen.append(("end", batch, logs))

    cb = Legacy()
    cb.on_train_batch_begin(3)
    cb.on_train_batch_end(3, {"loss": 0.5})
    assert seen == [("begin", 3, None), ("end", 3, {"loss": 0.5})]


def test_subclass_without_super_init_has_model_none():
    class NoInit(Callback):
        def __init__(self):
            pass

    assert NoInit().model is None


# -- CallbackList construction -------------------------------------------------------
def test_default_callbacks_appended_after_user_callbacks_history_before_progbar():
    user = Callback()
    cbs = CallbackList([user], add_history=True, add_progbar=True)
    assert cbs.callbacks[0] is user
    assert isinstance(cbs.callbacks[1], History)
    assert isinstance(cbs.callbacks[2], ProgbarLogger)
    assert cbs.history is cbs.callbacks[1]
    assert cbs.progbar is cbs.callbacks[2]
    assert len(cbs) == 3 and list(cbs) == cbs.callbacks


def test_existing_history_and_progbar_not_duplicated():
    history, progbar = History(), ProgbarLogger()
    cbs = CallbackList([progbar, history], add_history=True, add_progbar=True)
    assert cbs.callbacks == [progbar, history]
    assert cbs.history is history


def test_no_defaults_unless_asked():
    cbs = CallbackList()
    assert cbs.callbacks == [] and cbs.history is None and cbs.progbar is None


def test_user_list_not_mutated_and_tuple_or_single_accepted():
    user = [Callback()]
    CallbackList(user, add_history=True)
    assert len(user) == 1
    cb = Callback()
    assert CallbackList(cb).callbacks == [cb]
    assert CallbackList((cb,)).callbacks == [cb]
    assert CallbackList([]).callbacks == []


@pytest.mark.parametrize("bad", ["early_stopping", {"cb": Callback()}, 3, object()])
def test_bad_callbacks_argument_raises_type_error(bad):
    with pytest.raises(TypeError) as info:
        CallbackList(bad)
    message = str(info.value)
    assert "`callbacks`" in message
    assert type(bad).__name__ in message


def test_bad_element_named_by_index():
    with pytest.raises(TypeError, match=r"callbacks\[1\]` is 42 \(of type int\)"):
        CallbackList([Callback(), 42])


def test_class_instead_of_instance_hint():
    with pytest.raises(TypeError, match="class instead of an instance"):
        CallbackList([History])


def test_set_model_and_params_reach_every_callback():
    model = _model()
    user = Callback()
    params = {"verbose": 0, "epochs": 2, "steps": 5}
    cbs = CallbackList([user], add_history=True, add_progbar=True, model=model, **params)
    for cb in cbs.callbacks:
        assert cb.model is model
        assert cb.params == params
    assert model.history is cbs.history
    assert cbs.progbar.epochs == 2 and cbs.progbar.target == 5 and cbs.progbar.verbose == 0


def test_set_model_none_is_ignored_and_empty_params_not_forwarded():
    user = Callback()
    user.set_params({"keep": 1})
    CallbackList([user], model=None)
    assert user.model is None
    assert user.params == {"keep": 1}


# -- forwarding ----------------------------------------------------------------------
def test_every_hook_forwarded_in_order():
    calls = []
    first, second = AllHooksRecorder(calls), AllHooksRecorder(calls)
    cbs = CallbackList([first, second])
    for name in HOOKS_WITH_INDEX:
        calls.clear()
        getattr(cbs, name)(7, {"loss": 1.0})
        assert [c[0] for c in calls] == [name, name], name
        assert all(c[1] == (7,) and c[2] == {"loss": 1.0} for c in calls)
    for name in HOOKS:
        calls.clear()
        getattr(cbs, name)({"loss": 1.0})
        assert [c[0] for c in calls] == [name, name], name


def test_logs_none_becomes_empty_dict():
    calls = []
    cbs = CallbackList([AllHooksRecorder(calls)])
    cbs.on_epoch_end(0)
    cbs.on_train_begin()
    cbs.on_train_batch_end(1)
    assert calls == [("on_epoch_end", (0,), {}), ("on_train_begin", (), {}), ("on_train_batch_end", (1,), {})]


def test_epoch_logs_dict_shared_so_history_sees_added_keys():
    class AddsLr(Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["learning_rate"] = 0.01

    model = _model()
    cbs = CallbackList([AddsLr()], add_history=True, model=model)
    cbs.on_train_begin()
    cbs.on_epoch_end(0, {"loss": 0.5})
    assert model.history.history == {"loss": [0.5], "learning_rate": [0.01]}


def test_callbacks_called_in_list_order():
    calls = []
    cbs = CallbackList([Recorder("a", calls), Recorder("b", calls)])
    cbs.on_train_begin()
    cbs.on_epoch_end(0, {"loss": 1.0})
    assert calls == [
        ("a", "on_train_begin"),
        ("b", "on_train_begin"),
        ("a", "on_epoch_end", 0, {"loss": 1.0}),
        ("b", "on_epoch_end", 0, {"loss": 1.0}),
    ]


def test_batch_end_logs_become_python_floats_in_order():
    got = []

    class Grab(Callback):
        def on_train_batch_end(self, batch, logs=None):
            got.append(logs)

    cbs = CallbackList([Grab()])
    cbs.on_train_batch_end(0, {"loss": np.float32(0.5), "accuracy": np.array(0.25), "tag": "x"})
    (logs,) = got
    assert list(logs) == ["loss", "accuracy", "tag"]
    assert type(logs["loss"]) is float and type(logs["accuracy"]) is float
    assert logs["tag"] == "x"


def test_predict_batch_logs_passed_through():
    got = []

    class Grab(Callback):
        def on_predict_batch_end(self, batch, logs=None):
            got.append(logs)

    out = np.ones((2, 3))
    CallbackList([Grab()]).on_predict_batch_end(0, {"outputs": out})
    assert got[0]["outputs"] is out


# -- needs_batch_hooks ---------------------------------------------------------------------
def test_needs_batch_hooks_false_for_defaults_and_epoch_only_callbacks():
    calls = []
    cbs = CallbackList([Recorder("a", calls), Callback()], add_history=True, add_progbar=True)
    assert cbs.needs_batch_hooks is False
    assert CallbackList().needs_batch_hooks is False


TRAIN_BATCH_HOOKS = ["on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end"]


@pytest.mark.parametrize("hook", TRAIN_BATCH_HOOKS)
def test_needs_batch_hooks_true_when_any_train_batch_hook_overridden(hook):
    cls = type("Custom", (Callback,), {hook: lambda self, batch, logs=None: None})
    cbs = CallbackList([Callback(), cls()], add_history=True, add_progbar=True)
    assert cbs.needs_batch_hooks is True


def test_needs_batch_hooks_ignores_test_and_predict_batch_hooks():
    class EvalOnly(Callback):
        def on_test_batch_end(self, batch, logs=None):
            pass

        def on_predict_batch_end(self, batch, logs=None):
            pass

    assert CallbackList([EvalOnly()]).needs_batch_hooks is False


def test_needs_batch_hooks_instance_assigned_hook():
    cb = Callback()
    cb.on_batch_end = lambda batch, logs=None: None
    assert CallbackList([cb]).needs_batch_hooks is True


def test_needs_batch_hooks_progbar_subclass_overriding_batch_hook():
    class LoudProgbar(ProgbarLogger):
        def on_train_batch_end(self, batch, logs=None):
            super().on_train_batch_end(batch, logs)

    assert CallbackList([ProgbarLogger()]).needs_batch_hooks is False
    assert CallbackList([LoudProgbar()]).needs_batch_hooks is True


def test_needs_batch_hooks_nested_callback_list():
    inner_quiet = CallbackList([Callback()])
    inner_loud = CallbackList([type("C", (Callback,), {"on_batch_end": lambda s, b, logs=None: None})()])
    assert CallbackList([inner_quiet]).needs_batch_hooks is False
    assert CallbackList([inner_loud]).needs_batch_hooks is True


# -- History -------------------------------------------------------------------------------
def test_history_accumulates_python_floats():
    model = _model()
    history = History()
    history.set_model(model)
    history.on_train_begin()
    history.on_epoch_end(0, {"loss": np.float32(0.5), "accuracy": np.float64(0.75), "val_loss": 0.625})
    history.on_epoch_end(1, {"loss": np.array(0.25), "accuracy": 1, "val_loss": 0.5})
    assert history.epoch == [0, 1]
    assert history.history == {"loss": [0.5, 0.25], "accuracy": [0.75, 1.0], "val_loss": [0.625, 0.5]}
    assert all(type(v) is float for values in history.history.values() for v in values)
    assert list(history.history) == ["loss", "accuracy", "val_loss"]
    assert model.history is history


def test_history_train_begin_resets_epoch_keeps_history():
    # K3: a reused History keeps appending to `history`; only `epoch` resets.
    history = History()
    history.on_train_begin()
    history.on_epoch_end(0, {"loss": 1.0})
    history.on_train_begin()
    history.on_epoch_end(0, {"loss": 0.5})
    assert history.epoch == [0]
    assert history.history == {"loss": [1.0, 0.5]}


def test_history_without_model_and_empty_logs():
    history = History()
    history.on_train_begin()
    history.on_epoch_end(0)
    assert history.epoch == [0] and history.history == {}


def test_history_keeps_non_scalar_values():
    history = History()
    history.on_epoch_end(0, {"cm": np.eye(2)})
    assert history.history["cm"][0].shape == (2, 2)


# -- ProgbarLogger -----------------------------------------------------------------------
class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = _Clock()
    monkeypatch.setattr(progbar_mod, "_clock", fake)
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    return fake


def _fit(cbs, clock, epochs, steps, chunk=1, validation=True):
    """Drive the hooks the way the trainer does (chunked batch-end calls)."""
    cbs.on_train_begin()
    for epoch in range(epochs):
        cbs.on_epoch_begin(epoch)
        for last in range(chunk - 1, steps, chunk):
            clock.now += 0.5 * chunk
            cbs.on_train_batch_end(last, {"loss": 0.5 / (epoch + 1), "accuracy": 0.5})
        logs = {"loss": 0.5 / (epoch + 1), "accuracy": 0.5}
        if validation:
            cbs.on_test_begin()
            cbs.on_test_batch_end(0, {"loss": 9.0})
            cbs.on_test_end({"loss": 9.0})
            logs.update(val_loss=0.75, val_accuracy=0.25)
        cbs.on_epoch_end(epoch, logs)
    cbs.on_train_end(logs)


def test_progbar_logger_file_mode_one_line_per_epoch(clock):
    out = io.StringIO()
    with redirect_stdout(out):
        cbs = CallbackList(add_history=True, add_progbar=True, model=_model(), verbose=1, epochs=2, steps=4)
        _fit(cbs, clock, epochs=2, steps=4)
    text = out.getvalue()
    assert text == (
        "Epoch 1/2\n"
        "4/4 [==============================] - 2s 500ms/step - loss: 0.5000 - accuracy: 0.5000"
        " - val_loss: 0.7500 - val_accuracy: 0.2500\n"
        "Epoch 2/2\n"
        "4/4 [==============================] - 2s 500ms/step - loss: 0.2500 - accuracy: 0.5000"
        " - val_loss: 0.7500 - val_accuracy: 0.2500\n"
    )
    assert not any(c in text for c in ("\r", "\b", "\x1b"))


def test_progbar_logger_chunked_updates_show_running_means_as_given(clock):
    class TTY(io.StringIO):
        def isatty(self):
            return True

    out = TTY()
    with redirect_stdout(out):
        cbs = CallbackList(add_progbar=True, verbose=1, epochs=1, steps=6)
        cbs.on_train_begin()
        cbs.on_epoch_begin(0)
        clock.now += 1.0
        cbs.on_train_batch_end(1, {"loss": 0.9})  # chunk of batches 0-1
        clock.now += 1.0
        cbs.on_train_batch_end(3, {"loss": 0.1})  # batches 2-3: shown as 0.1, not re-averaged
        text = out.getvalue()
        assert text == (
            "\r2/6 [=========>....................] - ETA: 2s - loss: 0.9000"
            "\r4/6 [===================>..........] - ETA: 1s - loss: 0.1000"
        )
        clock.now += 1.0
        cbs.on_epoch_end(0, {"loss": 0.3})
    assert out.getvalue().endswith("\r6/6 [==============================] - 3s 500ms/step - loss: 0.3000\n")
    assert "Epoch" not in out.getvalue()  # K3/TFK: no "Epoch 1/1" header when epochs == 1


def test_progbar_logger_verbose_2(clock):
    out = io.StringIO()
    with redirect_stdout(out):
        cbs = CallbackList(add_progbar=True, verbose=2, epochs=2, steps=4)
        _fit(cbs, clock, epochs=2, steps=4, chunk=2, validation=False)
    assert out.getvalue() == (
        "Epoch 1/2\n4/4 - 2s - 500ms/step - loss: 0.5000 - accuracy: 0.5000\n"
        "Epoch 2/2\n4/4 - 2s - 500ms/step - loss: 0.2500 - accuracy: 0.5000\n"
    )


def test_progbar_logger_verbose_0_silent(clock, capsys):
    cbs = CallbackList(add_progbar=True, verbose=0, epochs=3, steps=2)
    _fit(cbs, clock, epochs=3, steps=2)
    assert capsys.readouterr().out == ""


def test_progbar_logger_auto_verbose_is_1(clock):
    cbs = CallbackList(add_progbar=True, verbose="auto", epochs=1, steps=1)
    assert cbs.progbar.verbose == 1


def test_progbar_logger_unknown_steps_learns_target(clock):
    out = io.StringIO()
    with redirect_stdout(out):
        cbs = CallbackList(add_progbar=True, verbose=1, epochs=2, steps=None)
        _fit(cbs, clock, epochs=2, steps=3, validation=False)
    lines = out.getvalue().splitlines()
    assert lines[1].startswith("3/3 [") and lines[3].startswith("3/3 [")


def test_progbar_logger_evaluate_and_predict_outside_fit(clock):
    out = io.StringIO()
    with redirect_stdout(out):
        cbs = CallbackList(add_progbar=True, verbose=1, epochs=1, steps=2)
        cbs.on_test_begin()
        clock.now += 1.0
        cbs.on_test_batch_end(0, {"loss": 0.5})
        clock.now += 1.0
        cbs.on_test_batch_end(1, {"loss": 0.25})
        cbs.on_test_end({"loss": 0.25, "accuracy": 0.75})
        cbs.on_predict_begin()
        clock.now += 1.0
        cbs.on_predict_batch_end(0, {"outputs": np.zeros((2, 2))})
        clock.now += 1.0
        cbs.on_predict_batch_end(1, {"outputs": np.zeros((2, 2))})
        cbs.on_predict_end()
    assert out.getvalue() == (
        "2/2 [==============================] - 2s 1s/step - loss: 0.2500 - accuracy: 0.7500\n"
        "2/2 [==============================] - 2s 1s/step\n"
    )


def test_progbar_logger_reused_after_fit_shows_evaluate(clock):
    out = io.StringIO()
    progbar = ProgbarLogger()
    with redirect_stdout(out):
        cbs = CallbackList([progbar], verbose=2, epochs=1, steps=1)
        _fit(cbs, clock, epochs=1, steps=1, validation=False)
        cbs.set_params({"verbose": 2, "epochs": 1, "steps": 1})
        cbs.on_test_begin()
        cbs.on_test_batch_end(0, {"loss": 1.0})
        cbs.on_test_end({"loss": 1.0})
    assert len(out.getvalue().splitlines()) == 2


def test_progbar_logger_count_mode():
    assert ProgbarLogger(count_mode="steps").count_mode == "steps"
    with pytest.raises(ValueError, match="count_mode"):
        ProgbarLogger(count_mode="samples")
