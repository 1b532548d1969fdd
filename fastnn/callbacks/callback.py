"""``Callback``: the base class for hooks into fit / evaluate / predict.

Keras 3 semantics (K3 ``keras/src/callbacks/callback.py``): every hook is a
no-op taking ``logs=None``; ``on_train_batch_begin/end`` call the legacy
``on_batch_begin/end`` aliases, so overriding either spelling works. A callback
stops training by setting ``self.model.stop_training = True``.

The trainer only calls the batch hooks for every batch when some callback
overrides them (``CallbackList.needs_batch_hooks``); otherwise it runs many
steps per call and reports at chunk boundaries. Overriding a batch hook
therefore has a cost, exactly as ``steps_per_execution`` does in Keras.
"""


class Callback:
    """Base class used to build new callbacks.

    Attributes:
        model: the model being trained (``None`` until ``set_model``).
        params: dict of training parameters (``verbose``, ``epochs``,
            ``steps``), set by the trainer through ``set_params``.
    """

    # Class-level default so a subclass that forgets ``super().__init__()``
    # still reads ``self.model`` as ``None`` instead of raising.
    model = None

    def __init__(self):
        self.model = None
        self.params = {}

    def set_params(self, params):
        self.params = params

    def set_model(self, model):
        self.model = model

    # Legacy aliases (Keras 2): called by the default on_train_batch_* below.
    def on_batch_begin(self, batch, logs=None):
        """Backwards-compatible alias for ``on_train_batch_begin``."""

    def on_batch_end(self, batch, logs=None):
        """Backwards-compatible alias for ``on_train_batch_end``."""

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of an epoch (training only)."""

    def on_epoch_end(self, epoch, logs=None):
        """Called at the end of an epoch; ``logs`` holds the epoch metrics,
        including ``val_*`` keys when validation ran."""

    def on_train_batch_begin(self, batch, logs=None):
        """Called before a training batch in ``fit``."""
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        """Called after a training batch; ``logs`` holds running means."""
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        """Called before a batch in ``evaluate`` (and validation in ``fit``)."""

    def on_test_batch_end(self, batch, logs=None):
        """Called after a batch in ``evaluate`` (and validation in ``fit``)."""

    def on_predict_batch_begin(self, batch, logs=None):
        """Called before a batch in ``predict``."""

    def on_predict_batch_end(self, batch, logs=None):
        """Called after a batch in ``predict``."""

    def on_train_begin(self, logs=None):
        """Called at the beginning of ``fit``."""

    def on_train_end(self, logs=None):
        """Called at the end of ``fit``; ``logs`` are the last epoch's logs."""

    def on_test_begin(self, logs=None):
        """Called at the beginning of ``evaluate`` or validation."""

    def on_test_end(self, logs=None):
        """Called at the end of ``evaluate`` or validation."""

    def on_predict_begin(self, logs=None):
        """Called at the beginning of ``predict``."""

    def on_predict_end(self, logs=None):
        """Called at the end of ``predict``."""
