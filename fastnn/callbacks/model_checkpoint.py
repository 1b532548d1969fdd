"""``ModelCheckpoint``: save the model or its weights during ``fit``.

Keras 3 semantics (K3 ``keras/src/callbacks/model_checkpoint.py``):

* ``filepath`` may hold ``str.format`` fields filled from ``epoch`` (1-based),
  ``batch`` (1-based, with an integer ``save_freq``) and the logs, e.g.
  ``"ckpt-{epoch:02d}-{val_loss:.2f}.keras"``; a missing key raises a
  ``KeyError`` naming the path;
* ``save_freq="epoch"`` saves at each epoch end; an integer ``n`` saves every
  ``n`` training batches (with the running training logs);
* ``save_best_only`` saves only when the monitored value improves on the best
  so far (``initial_value_threshold``, if given, is the first value to beat).
  If the value is missing from the logs it warns (``"Can save best model only
  with val_loss available."``) and saves anyway, as Keras does. The best value
  is kept across ``fit`` calls (the file on disk holds it);
* ``verbose=1`` prints Keras' messages (``"Epoch 3: val_loss improved from
  0.41234 to 0.40001, saving model to best.keras"``);
* the model is written with ``model.save``, the weights with
  ``model.save_weights``, creating missing directories.

File names follow Keras' rules mapped to fastnn's formats: a model checkpoint
must end in ``.keras`` or ``.h5`` (or ``.fastnn``/``.hdf5``), a weights-only
one in ``.weights.h5`` (or ``.weights.npz``); in every case the file holds
fastnn's own format (see ``fastnn.saving``), loadable with
``fastnn.models.load_model`` / ``model.load_weights``.

Differences from Keras 3, on purpose: ``mode='auto'`` is only resolved when
``save_best_only`` needs a direction (Keras 3 raises at the first epoch end
for a monitor it cannot classify even when nothing depends on it), and it is
then resolved in ``on_train_begin`` so a bad ``monitor`` fails before the
first epoch; a NaN value is never an improvement (see ``MonitorCallback``).
"""
import numbers
import os
import warnings

import numpy as np

from fastnn.callbacks.monitor_callback import MonitorCallback, _check_real, _then, did_you_mean
from fastnn.utils.validation import describe


class ModelCheckpoint(MonitorCallback):
    """Callback to save the model or model weights at some frequency.

    Args:
        filepath: str or ``os.PathLike``, the path to save to, with optional
            formatting fields (``{epoch:02d}``, ``{batch}``, ``{val_loss:.2f}``,
            any key of the logs). It must end in ``.keras`` or ``.h5`` (model)
            or ``.weights.h5`` (``save_weights_only=True``); ``.fastnn`` and
            ``.weights.npz`` work too. The files hold fastnn's own format.
        monitor: the logged quantity ``save_best_only`` watches. Defaults to
            ``"val_loss"``.
        verbose: ``0`` (silent) or ``1`` (a message per save or skipped save).
        save_best_only: only save when ``monitor`` improves on the best value
            so far (an unformatted ``filepath`` then always holds the best model).
        save_weights_only: save only the weights (``model.save_weights``).
        mode: ``"auto"``, ``"min"`` or ``"max"``, the direction of improvement
            for ``save_best_only`` (``"auto"``: from the metric, as EarlyStopping).
        save_freq: ``"epoch"`` or a positive integer number of batches.
        initial_value_threshold: with ``save_best_only``, the value the first
            checkpoint has to beat.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        threshold = _check_real("ModelCheckpoint", "initial_value_threshold", initial_value_threshold,
                                allow_none=True)
        super().__init__(monitor=monitor, mode=mode)
        if not isinstance(filepath, (str, os.PathLike)):
            raise TypeError(f"ModelCheckpoint: argument `filepath` must be a str or os.PathLike; received "
                            f"{describe(filepath)}.")
        self.filepath = os.fsdecode(os.fspath(filepath))
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.initial_value_threshold = threshold
        self.best = threshold
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, numbers.Integral)
                                     or save_freq <= 0):
            raise ValueError(f"Unrecognized save_freq: {save_freq!r}. Expected save_freq are 'epoch' or positive "
                             "integer values.")
        self.save_freq = save_freq if save_freq == "epoch" else int(save_freq)
        self._check_extension()
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = None
        self._current_epoch = 0
        if self.save_freq != "epoch":
            # Only then does this callback need every batch: the trainer runs many steps per call
            # for callbacks whose batch hooks are the base class's no-ops (CallbackList.needs_batch_hooks).
            self.on_train_batch_end = self._on_train_batch_end

    def _check_extension(self):
        from fastnn.saving import file_format  # not at import time: `import fastnn` stays lean

        path = self.filepath
        if self.save_weights_only:
            if not path.endswith(file_format.WEIGHTS_EXTENSIONS):
                raise ValueError("When using `save_weights_only=True` in `ModelCheckpoint`, the filepath provided "
                                 "must end in `.weights.h5` (Keras' name) or `.weights.npz`; fastnn writes its own "
                                 f"weights format under either name. Received: filepath={path}")
        elif path.endswith(file_format.WEIGHTS_EXTENSIONS):
            raise ValueError(f"ModelCheckpoint: the filepath {path!r} names a weights file; pass "
                             "`save_weights_only=True` to save only the weights, or give it the `.keras` extension "
                             "to save the whole model.")
        elif not path.endswith(file_format.MODEL_EXTENSIONS):
            raise ValueError("The filepath provided must end in `.keras` (Keras model format; `.h5` and `.fastnn` "
                             "work too, all holding fastnn's own format). Received: "
                             f"filepath={path}")

    # ------------------------------------------------------------------ hooks
    def on_train_begin(self, logs=None):
        if self.save_best_only and self.monitor_op is None and self.model is not None:
            self._set_monitor_op()

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save_model(epoch=epoch, batch=None, logs=logs)

    def _on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save_model(epoch=self._current_epoch, batch=batch, logs=logs)

    def _should_save_on_batch(self, batch):
        """Count batches across epochs; True every ``save_freq`` of them (K3's counting)."""
        if self._last_batch_seen is None or batch <= self._last_batch_seen:
            add_batches = batch + 1  # a new epoch: batches are 0-based
        else:
            add_batches = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += add_batches
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    # ------------------------------------------------------------------ saving
    def _should_save_model(self, epoch, logs, filepath):
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available. Available metrics are: "
                          f"{','.join(logs.keys())}{_then('', did_you_mean(self.monitor, logs))}", UserWarning,
                          stacklevel=3)
            return True
        if np.ndim(current) > 0:
            warnings.warn(f"Can save best model only when `monitor` is a scalar value. Received: {current}. "
                          "Falling back to `save_best_only=False`.", UserWarning, stacklevel=3)
            return True
        if self.monitor_op is None:
            self._set_monitor_op()
        current = float(current)
        best_str = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best_str} to {current:.5f}, saving "
                      f"model to {filepath}")
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best_str}")
        return False

    def _save_model(self, epoch, batch, logs):
        logs = logs or {}
        filepath = self._get_file_path(epoch, batch, logs)
        if not self._should_save_model(epoch, logs, filepath):
            return
        if os.path.isdir(filepath):
            raise IOError("Please specify a non-directory filepath for ModelCheckpoint. Filepath used is an "
                          f"existing directory: {filepath}")
        dirname = os.path.dirname(filepath)
        if dirname and not os.path.isdir(dirname):
            from fastnn.saving import file_format

            try:  # raises if a regular file stands where a directory should be, naming it
                file_format.check_directory(filepath)
            except FileNotFoundError:
                os.makedirs(dirname)  # missing directories are created, as in Keras
        if self.save_weights_only:
            self.model.save_weights(filepath, overwrite=True)
        else:
            self.model.save(filepath, overwrite=True)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: finished saving model to {filepath}")

    def _get_file_path(self, epoch, batch, logs):
        """``filepath`` with its fields filled from the 1-based epoch (and batch) and the logs."""
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as exc:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". Reason: {exc}') from None
