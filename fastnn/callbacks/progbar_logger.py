"""``ProgbarLogger``: prints the per-epoch progress bar for fit/evaluate/predict.

Follows K3 ``keras/src/callbacks/progbar_logger.py`` (and TFK's, which has the
same logic): ``Epoch i/n`` is printed only when ``epochs > 1``; inside ``fit``
the validation pass is silent; ``evaluate`` and ``predict`` get their own bar.
Differences:

* The trainer already passes running means in the batch logs, so every key is
  shown as given (all stateful). K3 re-averages them in its Progbar.
* ``on_train_end`` clears the "inside fit" flag, so an instance reused for a
  later ``evaluate`` still shows its bar (K3 never clears it).
"""
import sys

from fastnn.callbacks.callback import Callback
from fastnn.utils.progbar import Progbar
from fastnn.utils.validation import describe


class ProgbarLogger(Callback):
    """Callback that prints metrics to stdout.

    Args:
        count_mode: only ``"steps"`` (the bar counts batches). tf.keras 2.x
            also had ``"samples"``; Keras 3 removed it and so does fastnn.
    """

    def __init__(self, count_mode="steps"):
        super().__init__()
        if count_mode != "steps":
            raise ValueError(
                "ProgbarLogger: argument `count_mode` must be 'steps' (Keras 3 removed 'samples'); "
                f"received {describe(count_mode)}."
            )
        self.count_mode = count_mode
        self.seen = 0
        self.progbar = None
        self.target = None
        self.verbose = 1
        self.epochs = 1
        self._called_in_fit = False

    def set_params(self, params):
        super().set_params(params)
        verbose = params.get("verbose", 1)
        if verbose == "auto":
            verbose = 1
        self.verbose = verbose
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    # -- fit ----------------------------------------------------------------
    def on_train_begin(self, logs=None):
        # Inside fit the validation pass is silent.
        self._called_in_fit = True

    def on_train_end(self, logs=None):
        self._called_in_fit = False

    def on_epoch_begin(self, epoch, logs=None):
        self._reset_progbar()
        self._maybe_init_progbar()
        if self.verbose and self.epochs > 1:
            _print_line(f"Epoch {epoch + 1}/{self.epochs}")

    def on_train_batch_end(self, batch, logs=None):
        self._update_progbar(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._finalize_progbar(logs)

    # -- evaluate -----------------------------------------------------------
    def on_test_begin(self, logs=None):
        if not self._called_in_fit:
            self._reset_progbar()
            self._maybe_init_progbar()

    def on_test_batch_end(self, batch, logs=None):
        if not self._called_in_fit:
            self._update_progbar(batch, logs)

    def on_test_end(self, logs=None):
        if not self._called_in_fit:
            self._finalize_progbar(logs)

    # -- predict ------------------------------------------------------------
    def on_predict_begin(self, logs=None):
        self._reset_progbar()
        self._maybe_init_progbar()

    def on_predict_batch_end(self, batch, logs=None):
        # Never show prediction outputs.
        self._update_progbar(batch, None)

    def on_predict_end(self, logs=None):
        self._finalize_progbar(None)

    # -- helpers ------------------------------------------------------------
    def _reset_progbar(self):
        self.seen = 0
        self.progbar = None

    def _maybe_init_progbar(self):
        if self.progbar is None:
            self.progbar = Progbar(target=self.target, verbose=self.verbose, unit_name="step")

    def _values(self, logs):
        logs = logs or {}
        # Running means arrive already averaged: show them as given.
        self.progbar.stateful_metrics.update(logs)
        return list(logs.items())

    def _update_progbar(self, batch, logs):
        self._maybe_init_progbar()
        self.seen = batch + 1  # one-based
        if self.verbose == 1:
            self.progbar.update(self.seen, self._values(logs), finalize=False)

    def _finalize_progbar(self, logs):
        self._maybe_init_progbar()
        if self.target is None:
            self.target = self.seen
            self.progbar.target = self.target
        self.progbar.update(self.target, self._values(logs), finalize=True)


def _print_line(text):
    stdout = sys.stdout
    stdout.write(text + "\n")
    stdout.flush()
