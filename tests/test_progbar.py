"""Progbar: tf.keras 2.x text format (docs/keras_semantics.md#progress-bar), tty vs file output
(docs/keras_semantics.md#progress-bar-files)."""
import io
import sys
from contextlib import redirect_stdout

import numpy as np
import pytest

from fastnn.utils import progbar as progbar_mod
from fastnn.utils.progbar import Progbar, format_eta, format_time, format_value

CONTROL = ("\r", "\b", "\x1b")


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class TTY(io.StringIO):
    def isatty(self):
        return True


class KernelStream(io.StringIO):
    """Stands in for ipykernel.iostream.OutStream: not a tty, but a Jupyter front end honours \\r."""

    def __init__(self):
        super().__init__()
        self.writes = []

    def write(self, text):
        self.writes.append(text)
        return super().write(text)


KernelStream.__module__ = "ipykernel.iostream"


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(progbar_mod, "_clock", fake)
    return fake


@pytest.fixture
def no_ipykernel(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)


# pytest re-installs its own sys.stdout when the test body starts, so the
# redirection is done inside each test with contextlib.redirect_stdout.
@pytest.fixture
def file_stdout(no_ipykernel):
    return io.StringIO()  # isatty() is False


@pytest.fixture
def tty_stdout(no_ipykernel):
    return TTY()


def _run_epoch(bar, clock, steps, step_seconds=0.5, loss=0.25):
    for i in range(1, steps + 1):
        clock.now += step_seconds
        bar.update(i, [("loss", loss)])


# -- formatting helpers ------------------------------------------------------
@pytest.mark.parametrize(
    "value, expected",
    [
        (0.5, "0.5000"),
        (0.29504, "0.2950"),
        (-0.5, "-0.5000"),
        (12.0, "12.0000"),
        (1e-4, "1.0000e-04"),
        (1e-3, "1.0000e-03"),  # strict > 1e-3, as Keras
        (-2e-5, "-2.0000e-05"),
        (0.0, "0.0000e+00"),
        (np.float32(0.75), "0.7500"),
        (np.array([0.5, 1.5]), "1.0000"),
    ],
)
def test_format_value(value, expected):
    assert format_value(value) == expected


@pytest.mark.parametrize(
    "seconds, expected",
    [
        (2.0, "2s/step"),
        (0.0, "0s/step"),
        (0.5, "500ms/step"),
        (0.0015, "2ms/step"),
        (1e-3, "1ms/step"),
        (5e-4, "500us/step"),
    ],
)
def test_format_time(seconds, expected):
    assert format_time(seconds, "step") == expected


@pytest.mark.parametrize("seconds, expected", [(12.7, "12s"), (60, "60s"), (125, "2:05"), (3725, "1:02:05")])
def test_format_eta(seconds, expected):
    assert format_eta(seconds) == expected


# -- file / pipe mode --------------------------------------------------------
def test_file_mode_prints_one_complete_line_at_finalize(clock, file_stdout):
    with redirect_stdout(file_stdout):
        bar = Progbar(4, stateful_metrics=["loss", "accuracy"])
        for i in range(1, 4):
            clock.now += 0.5
            bar.update(i, [("loss", 0.25), ("accuracy", 0.5)])
        assert file_stdout.getvalue() == ""  # nothing before finalize
        clock.now += 0.5
        bar.update(4, [("loss", 0.25), ("accuracy", 0.9151)])
        out = file_stdout.getvalue()
        assert out == (
            "4/4 [==============================] - 2s 500ms/step - loss: 0.2500 - accuracy: 0.9151\n"
        )
        assert not any(c in out for c in CONTROL)


def test_file_mode_one_line_per_epoch(clock, file_stdout):
    with redirect_stdout(file_stdout):
        for _ in range(3):
            bar = Progbar(1875, stateful_metrics=["loss"])
            for i in range(1, 1876, 25):
                clock.now += 0.025
                bar.update(i, [("loss", 0.3)])
            bar.update(1875, [("loss", 0.2950)], finalize=True)
        out = file_stdout.getvalue()
        lines = out.splitlines()
        assert len(lines) == 3
        assert all(line.startswith("1875/1875 [==============================] - ") for line in lines)
        assert all(line.endswith(" - loss: 0.2950") for line in lines)
        assert not any(c in out for c in CONTROL)


def test_unknown_target_file_mode(clock, file_stdout):
    with redirect_stdout(file_stdout):
        bar = Progbar(None)
        clock.now += 1.5
        bar.update(3, [("loss", 1.0)])
        assert file_stdout.getvalue() == ""
        bar.update(3, finalize=True)
        assert file_stdout.getvalue() == "      3/Unknown - 2s 500ms/step - loss: 1.0000\n"


# -- terminal mode -------------------------------------------------------------
def test_tty_mode_redraws_with_carriage_return_and_eta(clock, tty_stdout):
    with redirect_stdout(tty_stdout):
        bar = Progbar(4, stateful_metrics=["loss"])
        clock.now += 0.5
        bar.update(1, [("loss", 0.5)])
        clock.now += 0.5
        bar.update(2, [("loss", 0.5)])
        out = tty_stdout.getvalue()
        assert out == (
            "\r1/4 [======>.......................] - ETA: 1s - loss: 0.5000"
            "\r2/4 [==============>...............] - ETA: 1s - loss: 0.5000"
        )
        clock.now += 1.0
        bar.update(4, [("loss", 0.25)])
        out = tty_stdout.getvalue()
        assert out.endswith("\r4/4 [==============================] - 2s 500ms/step - loss: 0.2500\n")
        assert "\b" not in out and "\x1b" not in out


def test_tty_detection_uses_isatty_at_construction(monkeypatch, no_ipykernel, clock):
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert Progbar(3)._dynamic_display is False
    monkeypatch.setattr(out, "isatty", lambda: True)
    assert Progbar(3)._dynamic_display is True


def test_ipykernel_stream_enables_dynamic_mode(monkeypatch, clock):
    monkeypatch.setitem(sys.modules, "ipykernel", object())
    with redirect_stdout(KernelStream()):
        bar = Progbar(3)
        assert bar._dynamic_display is True and bar._notebook is True


def test_redirected_stdout_inside_kernel_is_file_mode(monkeypatch, clock):
    # A notebook user writing the log to a file must not get \r in it.
    monkeypatch.setitem(sys.modules, "ipykernel", object())
    out = io.StringIO()
    with redirect_stdout(out):
        bar = Progbar(3)
        assert bar._dynamic_display is False
        _run_epoch(bar, clock, 3)
    assert out.getvalue().count("\n") == 1 and not any(c in out.getvalue() for c in CONTROL)


def test_kernel_stream_class_without_ipykernel_loaded_is_not_dynamic(no_ipykernel, clock):
    with redirect_stdout(KernelStream()):
        assert Progbar(3)._dynamic_display is False


def test_posix_module_does_not_enable_dynamic_mode(file_stdout, clock):
    # Keras' `"posix" in sys.modules` clause is deliberately absent (§3.6).
    assert "posix" in sys.modules or sys.platform == "win32"
    with redirect_stdout(file_stdout):
        assert Progbar(3)._dynamic_display is False


def test_tty_mode_rate_limited_by_interval(clock, tty_stdout):
    with redirect_stdout(tty_stdout):
        bar = Progbar(100, interval=0.05)
        bar.update(1)
        clock.now += 0.01
        bar.update(2)  # within the interval: skipped
        clock.now += 0.01
        bar.update(3)  # still within 0.05 s of the last draw
        clock.now += 0.05
        bar.update(4)
        assert tty_stdout.getvalue().count("\r") == 2
        bar.update(100)  # finalize always draws
        assert tty_stdout.getvalue().count("\r") == 3


def test_tty_mode_pads_shorter_line(clock, tty_stdout):
    with redirect_stdout(tty_stdout):
        bar = Progbar(10, stateful_metrics=["a_long_metric_name"])
        clock.now += 1
        bar.update(1, [("a_long_metric_name", 1.0)])
        first = tty_stdout.getvalue()
        bar.stateful_metrics = set()
        bar._values_order = []
        bar._values = {}
        clock.now += 1
        bar.update(2)
        second = tty_stdout.getvalue()[len(first):]
        assert len(second) == len(first)  # old text overwritten with spaces
        assert second.rstrip(" ") == "\r 2/10 [=====>........................] - ETA: 8s"


def test_writes_to_current_sys_stdout(clock, monkeypatch, no_ipykernel):
    bar = Progbar(1)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)  # replaced after construction
    bar.update(1)
    assert out.getvalue().startswith("1/1 [")


def test_capsys_captures_output(clock, capsys, no_ipykernel):
    bar = Progbar(2, verbose=2)
    _run_epoch(bar, clock, 2)
    assert capsys.readouterr().out == "2/2 - 1s - 500ms/step - loss: 0.2500\n"


# -- averaging ---------------------------------------------------------------------
def test_stateless_values_are_averaged_over_steps(clock, file_stdout):
    with redirect_stdout(file_stdout):
        bar = Progbar(3)
        bar.update(1, [("loss", 1.0)])
        bar.update(3, [("loss", 4.0)])  # covers 2 steps: (1*1 + 4*2) / 3
        assert file_stdout.getvalue().endswith(" - loss: 3.0000\n")


def test_stateful_values_shown_as_given(clock, file_stdout):
    with redirect_stdout(file_stdout):
        bar = Progbar(3, stateful_metrics={"loss"})
        bar.update(1, [("loss", 1.0)])
        bar.update(3, {"loss": 4.0})  # a dict is accepted too
        assert file_stdout.getvalue().endswith(" - loss: 4.0000\n")


def test_add_advances(clock, file_stdout):
    with redirect_stdout(file_stdout):
        bar = Progbar(4, stateful_metrics=["loss"])
        bar.add(2, [("loss", 0.1)])
        bar.add(2, [("loss", 0.2)])
        assert file_stdout.getvalue().startswith("4/4 [====")
        assert bar._seen_so_far == 4


def test_time_per_step_ignores_first_step(clock, file_stdout):
    with redirect_stdout(file_stdout):
        bar = Progbar(3)
        clock.now += 10.0  # slow first step (warm-up)
        bar.update(1)
        clock.now += 0.002
        bar.update(2)
        clock.now += 0.002
        bar.update(3)
        assert "- 10s 2ms/step" in file_stdout.getvalue()


def test_microsecond_steps(clock, file_stdout):
    with redirect_stdout(file_stdout):
        bar = Progbar(1000, stateful_metrics=["loss"])
        for i in range(1, 1001):
            clock.now += 0.0004
            bar.update(i, [("loss", 5e-4)])
        assert file_stdout.getvalue() == (
            "1000/1000 [==============================] - 0s 400us/step - loss: 5.0000e-04\n"
        )


# -- verbose=2 and 0 ------------------------------------------------------------
def test_verbose_2_one_line_at_finalize(clock, tty_stdout):
    with redirect_stdout(tty_stdout):
        bar = Progbar(4, verbose=2, stateful_metrics=["loss", "accuracy"])
        for i in range(1, 5):
            clock.now += 0.5
            bar.update(i, [("loss", 0.295), ("accuracy", 0.9151)])
        assert tty_stdout.getvalue() == "4/4 - 2s - 500ms/step - loss: 0.2950 - accuracy: 0.9151\n"


def test_verbose_0_silent(clock, tty_stdout):
    with redirect_stdout(tty_stdout):
        bar = Progbar(4, verbose=0)
        _run_epoch(bar, clock, 4)
        assert tty_stdout.getvalue() == ""


# -- Jupyter: in-place redraws, rate-limited -------------------------------------------
def test_notebook_redraws_at_most_every_notebook_interval(monkeypatch, clock):
    monkeypatch.setitem(sys.modules, "ipykernel", object())
    out = KernelStream()
    with redirect_stdout(out):
        bar = Progbar(100, stateful_metrics=["loss"])  # interval 0.05 s, as Keras
        for i in range(1, 101):
            clock.now += 0.05
            bar.update(i, [("loss", 0.5)])
    draws = [w for w in out.writes if w.startswith("\r")]
    # 5 s of training: one redraw per 0.2 s (25) plus the first and the final one, not 100.
    assert 20 <= len(draws) <= 27
    assert out.getvalue().count("\n") == 1 and "\b" not in out.getvalue()
    assert "ETA: " in draws[1] and draws[-1].endswith(" - 5s 50ms/step - loss: 0.5000\n")


# -- through model.fit -------------------------------------------------------------------
class TickingClock:
    """A clock that advances by ``step`` seconds each time it is read."""

    def __init__(self, step):
        self.now, self.step = 0.0, step

    def __call__(self):
        self.now += self.step
        return self.now


def _fit_output(monkeypatch, stdout, verbose, tick, epochs=3):
    import fastnn as keras

    monkeypatch.setattr(progbar_mod, "_clock", TickingClock(tick))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3200, 8)).astype(np.float32)  # 100 steps of 32
    y = (x[:, 0] > 0).astype(np.float32)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Dense(4, activation="relu", input_shape=(8,)),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    with redirect_stdout(stdout):
        model.fit(x, y, epochs=epochs, verbose=verbose, validation_data=(x[:64], y[:64]))
    return stdout.getvalue()


_FINAL_LINE = (r"100/100 \[=+\] - \d+s \d+(s|ms|us)/step - loss: \d\.\d{4} - accuracy: \d\.\d{4} "
               r"- val_loss: \d\.\d{4} - val_accuracy: \d\.\d{4}")


def test_fit_in_notebook_redraws_one_line_per_epoch(monkeypatch):
    import re

    monkeypatch.setitem(sys.modules, "ipykernel", object())
    out = _fit_output(monkeypatch, KernelStream(), verbose=1, tick=0.3)
    lines = out.split("\n")
    assert lines[-1] == "" and len(lines) == 7  # 3 x ("Epoch i/3", one bar line), then the final newline
    for epoch in range(3):
        assert lines[2 * epoch] == f"Epoch {epoch + 1}/3"
        segments = lines[2 * epoch + 1].split("\r")
        assert segments[0] == "" and len(segments) > 3  # several in-place redraws of one line
        assert all(" - ETA: " in seg for seg in segments[1:-1])
        assert re.fullmatch(_FINAL_LINE, segments[-1].rstrip(" ")), segments[-1]


@pytest.mark.parametrize("stdout_kind", ["tty", "file", "notebook"])
def test_fit_verbose_2_prints_one_line_per_epoch(monkeypatch, stdout_kind):
    import re

    if stdout_kind == "notebook":
        monkeypatch.setitem(sys.modules, "ipykernel", object())
        stdout = KernelStream()
    else:
        monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
        stdout = TTY() if stdout_kind == "tty" else io.StringIO()
    out = _fit_output(monkeypatch, stdout, verbose=2, tick=0.001)
    assert not any(c in out for c in CONTROL)
    lines = out.splitlines()
    assert len(lines) == 6
    pattern = (r"100/100 - \d+s - \d+(s|ms|us)/step - loss: \d\.\d{4} - accuracy: \d\.\d{4} - "
               r"val_loss: \d\.\d{4} - val_accuracy: \d\.\d{4}")
    for epoch in range(3):
        assert lines[2 * epoch] == f"Epoch {epoch + 1}/3"
        assert re.fullmatch(pattern, lines[2 * epoch + 1]), lines[2 * epoch + 1]


def test_fit_in_terminal_shows_eta_then_time_per_step(monkeypatch):
    import re

    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    out = _fit_output(monkeypatch, TTY(), verbose=1, tick=0.06, epochs=1)
    segments = out.rstrip("\n").split("\r")
    assert len(segments) > 10 and all(re.search(r" - ETA: [1-9]\d*s - ", seg) for seg in segments[1:5])
    assert re.fullmatch(_FINAL_LINE, segments[-1].rstrip(" ")), segments[-1]
    assert re.search(r" - \d+s 3\dms/step - ", segments[-1])  # one 0.06 s clock read per 2-step chunk
