"""``Progbar``: the tf.keras 2.x text progress bar.

Output format (TFK ``tf_keras/utils/generic_utils.py`` Progbar; K3
``keras/src/utils/progbar.py`` for the ``verbose=2`` line)::

    verbose=1   1875/1875 [==============================] - 3s 1ms/step - loss: 0.2950 - accuracy: 0.9151
    running     1000/1875 [===============>..............] - ETA: 1s - loss: 0.3312
    verbose=2   1875/1875 - 3s - 1ms/step - loss: 0.2950 - accuracy: 0.9151

Deliberate difference from Keras: the in-place ("dynamic") redraw is used only
when stdout is a terminal or a Jupyter kernel's output stream. Keras also turns
it on whenever ``"posix" in sys.modules`` (always true on Linux/macOS), so logs
redirected to a file fill up with ``\\b``/``\\r`` and one line per step
(keras-team/keras#13716, #1007; docs/keras_semantics.md#progress-bar-files). When stdout is a file
or pipe, ``verbose=1`` prints one complete line when the bar is finalized and
nothing before, and no control characters at all.

Jupyter: a kernel's stdout is not a tty, but its front ends (Notebook, Lab,
VS Code, Colab) honour ``\\r``, so the bar redraws one line in place there
(Keras checks ``"ipykernel" in sys.modules``; fastnn also checks that stdout
is still the kernel's stream, so ``redirect_stdout`` to a file inside a
notebook gets the file behaviour). Each redraw is one message to the front
end, and ipykernel's ``OutStream.flush()`` waits for its IO thread to send it,
so in a kernel the bar redraws at most every ``_NOTEBOOK_INTERVAL`` seconds,
the period at which ipykernel batches output on its own
(``OutStream.flush_interval``); Keras' 0.05 s sends four times as many.
``\\b`` is never written: terminals and Jupyter both redraw with ``\\r``.
"""
import math
import sys
import time

import numpy as np

# Module-level so tests can substitute a fake clock.
_clock = time.monotonic

# Minimum seconds between two redraws inside a Jupyter kernel (ipykernel's OutStream.flush_interval).
_NOTEBOOK_INTERVAL = 0.2


def _in_kernel_stream(stdout):
    """True if ``stdout`` is (a subclass of) a Jupyter kernel's output stream."""
    if "ipykernel" not in sys.modules:
        return False
    return any(cls.__module__.split(".")[0] == "ipykernel" for cls in type(stdout).__mro__)


def _dynamic_display():
    """True iff stdout can redraw a line in place (a tty or a Jupyter kernel's stream)."""
    stdout = sys.stdout
    isatty = getattr(stdout, "isatty", None)
    try:
        tty = bool(isatty()) if isatty is not None else False
    except (ValueError, OSError):  # closed or detached stream
        tty = False
    return tty or _in_kernel_stream(stdout)


def _write(text):
    # Look sys.stdout up at call time: pytest's capsys and user redirection
    # (contextlib.redirect_stdout) replace it after import.
    stdout = sys.stdout
    stdout.write(text)
    stdout.flush()


def format_value(value):
    """Format a metric value as Keras does: ``.4f`` if |v| > 1e-3 else ``.4e``."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        try:
            value = float(np.mean(value))
        except (TypeError, ValueError):
            return str(value)
    if abs(value) > 1e-3:
        return f"{value:.4f}"
    return f"{value:.4e}"


def format_time(seconds, unit_name):
    """Format a per-unit duration: ``2s/step``, ``15ms/step`` or ``840us/step``."""
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/{unit_name}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit_name}"
    return f"{seconds * 1e6:.0f}us/{unit_name}"


def format_eta(seconds):
    """Format an ETA: ``12s``, ``3:05`` or ``1:02:03``."""
    if seconds > 3600:
        return "%d:%02d:%02d" % (seconds // 3600, (seconds % 3600) // 60, seconds % 60)
    if seconds > 60:
        return "%d:%02d" % (seconds // 60, seconds % 60)
    return "%ds" % seconds


class Progbar:
    """Displays a progress bar.

    Args:
        target: total number of steps expected, or ``None`` if unknown.
        width: width of the bar in characters.
        verbose: 0 (silent), 1 (bar), 2 (one line when finalized).
        interval: minimum time in seconds between two redraws.
        stateful_metrics: names of values shown as given; all other values
            are averaged over the steps seen so far.
        unit_name: name of one step in the time-per-step display.
    """

    def __init__(self, target, width=30, verbose=1, interval=0.05, stateful_metrics=None, unit_name="step"):
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        self.stateful_metrics = set(stateful_metrics) if stateful_metrics else set()

        self._dynamic_display = _dynamic_display()
        self._notebook = self._dynamic_display and _in_kernel_stream(sys.stdout)
        self._values = {}  # name -> [weighted sum, weight]
        self._values_order = []
        self._seen_so_far = 0
        self._start = _clock()
        self._last_update = None
        self._time_after_first_step = None
        self._prev_width = 0

    def update(self, current, values=None, finalize=None):
        """Update the bar to step ``current``.

        Args:
            current: index of the current step (1-based count of steps done).
            values: list of ``(name, value)`` pairs (or a dict). Values of
                stateful metrics are shown as given; others are averaged,
                weighted by the number of steps since the previous update.
            finalize: whether this is the last update; ``None`` means
                ``current >= target``.
        """
        if finalize is None:
            finalize = self.target is not None and current >= self.target

        if isinstance(values, dict):
            values = values.items()
        for key, value in values or ():
            if key not in self._values:
                self._values_order.append(key)
            if key in self.stateful_metrics:
                self._values[key] = [value, 1]
            else:
                # At least 1, so an update that repeats `current` (a finalize
                # right after the last batch update) still counts its value.
                weight = max(current - self._seen_so_far, 1)
                acc = self._values.get(key)
                if acc is None:
                    self._values[key] = [value * weight, weight]
                else:
                    acc[0] += value * weight
                    acc[1] += weight
        self._seen_so_far = current

        now = _clock()
        time_per_unit = self._estimate_step_duration(current, now)
        if self.verbose == 1:
            self._draw(current, now, time_per_unit, finalize)
        elif self.verbose == 2 and finalize:
            self._draw_line(current, now, time_per_unit)

    def add(self, n, values=None):
        """Advance the bar by ``n`` steps."""
        self.update(self._seen_so_far + n, values)

    # -- rendering ---------------------------------------------------------
    def _known_target(self):
        return self.target is not None and self.target > 0

    def _values_text(self):
        parts = []
        for key in self._values_order:
            total, count = self._values[key]
            if count != 1:
                total = total / count
            parts.append(f" - {key}: {format_value(total)}")
        return "".join(parts)

    def _bar_text(self, current):
        if not self._known_target():
            return "%7d/Unknown" % current
        numdigits = int(math.log10(self.target)) + 1
        bar = f"%{numdigits}d/%d [" % (current, self.target)
        prog_width = int(self.width * min(current / self.target, 1.0))
        if prog_width > 0:
            bar += "=" * (prog_width - 1)
            bar += ">" if current < self.target else "="
        bar += "." * (self.width - prog_width)
        return bar + "]"

    def _draw(self, current, now, time_per_unit, finalize):
        if not finalize:
            if not self._dynamic_display:
                return  # files and pipes get one complete line, at finalize
            interval = max(self.interval, _NOTEBOOK_INTERVAL) if self._notebook else self.interval
            if self._last_update is not None and now - self._last_update < interval:
                return
        self._last_update = now

        line = self._bar_text(current)
        if finalize or not self._known_target():
            line += f" - {now - self._start:.0f}s {format_time(time_per_unit, self.unit_name)}"
        else:
            line += f" - ETA: {format_eta(time_per_unit * (self.target - current))}"
        line += self._values_text()

        if self._dynamic_display:
            width = len(line)
            if self._prev_width > width:
                line += " " * (self._prev_width - width)  # erase the previous, longer line
            self._prev_width = width
            line = "\r" + line
        if finalize:
            line += "\n"
        _write(line)

    def _draw_line(self, current, now, time_per_unit):
        if self._known_target():
            numdigits = int(math.log10(self.target)) + 1
            count = f"%{numdigits}d/%d" % (current, self.target)
        else:
            count = str(current)
        line = f"{count} - {now - self._start:.0f}s - {format_time(time_per_unit, self.unit_name)}"
        _write(line + self._values_text() + "\n")

    def _estimate_step_duration(self, current, now):
        """Seconds per step, ignoring the (compile/warm-up heavy) first step
        once later steps exist (same estimate as Keras)."""
        if not current:
            return 0.0
        if self._time_after_first_step is not None and current > 1:
            time_per_unit = (now - self._time_after_first_step) / (current - 1)
        else:
            time_per_unit = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return time_per_unit
