"""compile / fit / evaluate / predict: the only place that loops over batches and calls callbacks.

Every call runs on one path, the training engine (``fastnn.models.runner``: compiled, or its NumPy twin with
``FASTNN_KERNELS=reference``), whatever the model: its layers, dtype, loss, optimizer, metrics, regularizers
and sample weights. This module keeps Keras' semantics around it: data checks once per call that name the
fix, shuffling, validation, callbacks, History and the progress bar.

Losses and metrics follow Keras 3 (``keras/src/trainers/trainer.py``): a batch's loss is
``sum(w * loss) / batch_size`` plus the regularization penalty of the weights the batch starts from; the
reported loss is the mean of the batch losses weighted by batch size. Metrics are stateful objects, reset at
the start of every epoch and evaluation, and reported as ``metric.result()``; the ``metrics`` of ``compile``
ignore sample weights; those of ``weighted_metrics`` are weighted by them (and by ``class_weight``), as in
Keras.
"""
import math
import numbers
import warnings

import numpy as np

from fastnn import losses as losses_module
from fastnn import metrics as metrics_module
from fastnn import optimizers as optimizers_module
from fastnn.callbacks.callback_list import CallbackList
from fastnn.callbacks.terminate_on_nan import TerminateOnNaN
from fastnn.layers.dense import Dense
from fastnn.layers.flatten import Flatten
from fastnn.models.call_data import (CallData, as_data_array, as_input, cast_data, check_cardinality,
                                     check_finite, class_weights, sample_weights, too_large)
from fastnn.models.data_parallel_runner import NOT_DATA_PARALLEL, data_parallel_runner
from fastnn.models.output_array import OutputArray
from fastnn.models.output_loss_checks import check_output_fits_loss, output_activation
from fastnn.models.runner import Runner
from fastnn.utils.rng_utils import global_rng
from fastnn.utils.sparse_utils import describe_sparse, is_sparse, maybe_sparsify, to_csr
from fastnn.utils.validation import check_kwargs, describe, shape_str

# Progress-bar refreshes per epoch (the engine runs the steps between two of them in one call).
_CHUNKS_PER_EPOCH = 50


def _resolve_verbose(verbose):
    if verbose == "auto":
        return 1
    if verbose in (0, 1, 2) and not isinstance(verbose, bool):
        return int(verbose)
    raise ValueError(f"Argument `verbose` must be 0, 1, 2 or 'auto'; received {describe(verbose)}")


def _reject(owner, **arguments):
    """Raise for arguments fastnn does not implement yet, when given a non-default value."""
    for name, value in arguments.items():
        if value is not None:
            raise ValueError(f"{owner}: argument `{name}` is not supported by fastnn yet; received "
                             f"{describe(value)}.")


def _name_weighted_metrics(metrics, weighted):
    """A weighted metric whose name an unweighted one already has gets the prefix 'weighted_', as
    tf.keras 2.x names it (Keras 3 keeps both names and its logs keep the last value: one would be lost)."""
    names = {m.name for m, w in zip(metrics, weighted) if not w}
    for metric, w in zip(metrics, weighted):
        if w and metric.name in names:
            metric.name = "weighted_" + metric.name
        names.add(metric.name)


def _warn_non_finite_loss(value, epoch, first, steps, iterations):
    """Keras 3 trains on through a NaN loss by default, and so does fastnn (a run's length and History stay
    those of Keras); but never silently: a long run whose weights went NaN at step 1,000 of 100,000 must say
    so where the user looks. The engine runs `steps` batches per call; their loss sum says only that one of
    them went bad, so the message gives the range (exact when `steps` is 1, e.g. with per-batch callbacks)."""
    where = (f"batch {first}" if steps == 1 else f"one of batches {first}-{first + steps - 1}")
    step = (f"optimizer step {iterations}" if steps == 1 else
            f"optimizer steps {iterations - steps + 1}-{iterations}")
    warnings.warn(f"fit: the training loss became {value} at epoch {epoch + 1}, {where} ({step}); the weights "
                  "are probably NaN or infinite now and further training will not recover them. Lower the "
                  "learning rate or check the data and targets; pass `callbacks=[fastnn.callbacks."
                  "TerminateOnNaN()]` to stop at the first such batch.", RuntimeWarning, stacklevel=3)


def _metric_list(argument, metrics):
    """compile's `metrics` / `weighted_metrics` as a list of checked identifiers."""
    if metrics is None:
        return []
    if isinstance(metrics, (str, metrics_module.Metric)) or (
            isinstance(metrics, type) and issubclass(metrics, metrics_module.Metric)):
        metrics = [metrics]
    elif not isinstance(metrics, (list, tuple)):
        raise ValueError(f"compile: argument `{argument}` must be a list of metrics; received {describe(metrics)}")
    for identifier in metrics:
        metrics_module.check_identifier(identifier)
    return list(metrics)


class Trainer:
    def __init__(self):
        self.compiled = False
        self.optimizer = None
        self.loss = None
        self.stop_training = False
        self.history = None
        self._metric_ids = []
        self._metric_weighted = []  # per compiled metric: from `weighted_metrics` (reads the sample weights)
        self._compiled_metrics = []
        self._metrics_key = None
        self._loss_check_key = None  # (loss, outputs, output activation) last checked: warn once, not per call
        self._runner = Runner(self)

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True, **kwargs):
        """Configure training. ``run_eagerly``, ``steps_per_execution``, ``jit_compile`` and
        ``auto_scale_loss`` are accepted for compatibility; they do not change results in fastnn."""
        check_kwargs("compile", kwargs)
        _reject("compile", loss_weights=loss_weights)
        self.optimizer = optimizers_module.get(optimizer)
        self.optimizer.claim(self)
        self.loss = None if loss is None else losses_module.get(loss)
        if self.loss is not None and self.loss.reduction not in ("sum_over_batch_size", "mean"):
            raise ValueError(
                f"compile: fastnn trains with the loss reduction 'sum_over_batch_size' (the mean of the weighted "
                f"per-sample losses, Keras' default); received a loss with reduction={self.loss.reduction!r}. "
                "Other reductions are available when calling the loss directly.")
        metrics = _metric_list("metrics", metrics)
        weighted = _metric_list("weighted_metrics", weighted_metrics)
        shared = [m for m in weighted if isinstance(m, metrics_module.Metric) and any(m is u for u in metrics)]
        if shared:
            raise ValueError(f"compile: the metric instance '{shared[0].name}' is in both `metrics` and "
                             "`weighted_metrics`; pass two instances (their states are separate).")
        self._metric_ids = metrics + weighted
        self._metric_weighted = [False] * len(metrics) + [True] * len(weighted)
        self._metrics_key = None
        self._loss_check_key = None
        self.compiled = True
        self._invalidate_engine()

    @property
    def metrics_names(self):
        return ["loss"] + sorted(m.name for m in self._compiled_metrics)

    # ------------------------------------------------------------------ data preparation
    def _prepare_x(self, x, name="x"):
        """Validate ``x`` once and return what the layers take: a C-contiguous float array, or a CSR
        matrix (scipy.sparse input, or a large mostly-zero 2-D array such as a multi-hot encoding)."""
        dtype = self._params.dtype if self._params is not None and self._params.size else np.float32
        if is_sparse(x):
            return self._check_input_shape(to_csr(x, name, dtype), sparse=True)
        x = as_data_array(name, x)
        if x.ndim == 1 and (not self.built or len(self.input_shape) == 2):
            # Keras expands rank-1 inputs to (samples, 1): the "Hello World" tutorial fits
            # Dense(1, input_shape=[1]) on xs of shape (6,).
            x = x.reshape(-1, 1)
        if self._takes_sparse(x):
            csr = maybe_sparsify(x)
            if csr is not None:
                return self._check_input_shape(to_csr(csr, name, dtype), sparse=True)
        if 0 in x.shape[1:]:
            raise ValueError(f"Argument `{name}` must have at least one feature per sample; received "
                             f"{describe(x)}.")
        self._check_input_shape(x)
        return cast_data(name, x, self._params.dtype if self._params is not None and self._params.size else dtype)

    def _takes_sparse(self, x):
        """True when the model starts with a Dense layer on 2-D inputs (the sparse x dense kernel)."""
        first = next((layer for layer in self._layers if not isinstance(layer, Flatten)), None)
        return x.ndim == 2 and isinstance(first, Dense)

    def _check_input_shape(self, x, sparse=False):
        if sparse and x.shape[0] == 0:
            raise ValueError(f"Expected `x` to be non-empty; received {describe_sparse(x)}.")
        if sparse and not self._takes_sparse(x):
            raise ValueError(f"Sparse inputs need a model whose first layer is Dense; '{self._layers[0].name}' "
                             f"is a {type(self._layers[0]).__name__}.")
        if not self.built:
            self.build((None,) + tuple(x.shape[1:]))
        expected = self.input_shape
        if len(x.shape) != len(expected) or any(e is not None and e != r for e, r in zip(expected[1:], x.shape[1:])):
            first = self._layers[0]
            hint = ""
            if isinstance(first, Dense) and len(x.shape) > len(expected):
                hint = " Add a Flatten layer first."
            received = describe_sparse(x) if sparse else shape_str(x.shape)
            raise ValueError(f"{type(first).__name__} '{first.name}' expects input of shape {shape_str(expected)}; "
                             f"received {received}.{hint}")
        return x

    def _n_outputs(self):
        shape = self.output_shape
        return math.prod(shape[1:]) if len(shape) > 1 else 1

    def _prepare_targets(self, y, name="y"):
        y = as_data_array(name, y)
        with np.errstate(over="ignore"):
            targets = self.loss.prepare_targets(y, self._n_outputs(), dtype=self._params.dtype)
        if targets.dtype.kind == "f" and not np.isfinite(targets).all():  # y was finite: the cast overflowed
            raise too_large(name, targets.dtype, int(np.argwhere(~np.isfinite(targets))[0, 0]))
        return targets

    def _resolve_metrics(self, y_raw_shape):
        """The compiled metrics for targets of this shape: resolved once per compile and kind of targets
        ('accuracy' depends on them), then the same objects, as Keras builds its metrics once."""
        n_outputs = self._n_outputs()
        key = (len(y_raw_shape), y_raw_shape[-1] if len(y_raw_shape) > 1 else None, n_outputs)
        if key != self._metrics_key:
            self._compiled_metrics = [metrics_module.get(identifier, y_true_shape=y_raw_shape, n_outputs=n_outputs)
                                      for identifier in self._metric_ids]
            _name_weighted_metrics(self._compiled_metrics, self._metric_weighted)
            self._metrics_key = key
        return self._compiled_metrics

    def _prepare_data(self, x_raw, y_raw, sample_weight=None, class_weight=None, prefix="", resolve_metrics=False):
        """Validate one data set (``resolve_metrics``: and resolve the compiled metrics for its targets,
        once the model is built from it); ``CallData`` of what the batches read."""
        x = self._prepare_x(x_raw, prefix + "x")
        if resolve_metrics:
            self._check_output_fits_loss()
            self._resolve_metrics(y_raw.shape)
        check_finite(prefix + "y", y_raw)
        y = self._prepare_targets(y_raw, prefix + "y")
        if sample_weight is not None:
            sample_weight = sample_weights(sample_weight, x.shape[0], prefix + "sample_weight")
        elif class_weight is not None:
            sample_weight = class_weights(class_weight, y_raw)
        n_outputs, dtype = self._n_outputs(), self._params.dtype
        targets = [m.targets_for_model(y_raw, y, n_outputs, self.loss.name, dtype) for m in self._compiled_metrics]
        return CallData(x, y, sample_weight, targets)

    def _check_output_fits_loss(self):
        """Refuse (or warn about) an output activation/units that the loss cannot train
        (``output_loss_checks``); once per compile and output."""
        layer, act = output_activation(self)
        key = (id(self.loss), self._n_outputs(), id(layer), act)
        if key != self._loss_check_key:
            check_output_fits_loss(self, self.loss, self._n_outputs())
            self._loss_check_key = key

    def _reset_metrics(self):
        for metric in self._compiled_metrics:
            metric.reset_state()

    def _invalidate_engine(self):
        self._runner.invalidate()

    def _regularized_weights(self):
        return [w for w in self.trainable_weights if w.regularizer is not None]

    def _regularization(self):
        """Sum of the penalties of the trainable regularized weights (Keras adds it to the loss it
        reports, K3 Trainer.compute_loss)."""
        return sum(w.regularizer(w.value) for w in self._regularized_weights())

    @property
    def losses(self):
        """The regularization penalties of the trainable weights, as floats (Keras' ``model.losses``)."""
        return [w.regularizer(w.value) for w in self._regularized_weights()]

    def _logs(self, loss, prefix=""):
        logs = {prefix + "loss": float(loss)}
        for metric in self._compiled_metrics:
            value = metric.result()
            logs[prefix + metric.name] = float(value) if np.ndim(value) == 0 else np.asarray(value)
        return logs

    # ------------------------------------------------------------------ fit
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None, sample_weight=None,
            initial_epoch=0, steps_per_epoch=None, validation_steps=None, validation_batch_size=None,
            validation_freq=1, **kwargs):
        check_kwargs("fit", kwargs)
        if not self.compiled:
            raise RuntimeError("You must call `compile()` before calling `fit()`.")
        if self.loss is None:
            raise ValueError("The model was compiled without a loss; pass `loss=` to `compile()` before `fit()`.")
        _reject("fit", steps_per_epoch=steps_per_epoch, validation_steps=validation_steps)
        if class_weight is not None and sample_weight is not None:
            # K3 array_data_adapter.py raises the same (as "You cannot `class_weight` and `sample_weight` ...").
            raise ValueError("You cannot use `class_weight` and `sample_weight` at the same time. To combine "
                             "them, multiply each sample's weight by its class weight and pass `sample_weight`.")
        verbose = _resolve_verbose(verbose)
        batch_size = self._check_batch_size(batch_size)
        # epochs=0 (or initial_epoch >= epochs) trains nothing and returns an empty History, as in Keras 3
        # (its fit loops over range(initial_epoch, epochs)); the data are still checked.
        for name, value, low in (("epochs", epochs, 0), ("initial_epoch", initial_epoch, 0),
                                 ("validation_freq", validation_freq, 1)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"fit: argument `{name}` must be a {'positive' if low else 'non-negative'} "
                                 f"integer; received {describe(value)}")
        if shuffle not in (True, False, "batch"):
            raise ValueError(f"fit: argument `shuffle` must be True, False or 'batch'; received {describe(shuffle)}")

        x_raw = as_input("x", x)
        y_raw = as_data_array("y", y)
        check_cardinality(x_raw, y_raw)
        sw_raw = None if sample_weight is None else sample_weights(sample_weight, x_raw.shape[0])
        val = None
        if validation_data is not None:
            val = self._unpack_validation_data(validation_data)
        elif validation_split:
            if isinstance(validation_split, bool) or not isinstance(validation_split, numbers.Real) \
                    or not 0 < validation_split < 1:
                raise ValueError("fit: argument `validation_split` must be a float in (0, 1); received "
                                 f"{describe(validation_split)}")
            # Keras takes the LAST fraction of the data, before any shuffling
            # (K3 trainers/data_adapters/array_slicing.py train_validation_split).
            split_at = int(math.floor(x_raw.shape[0] * (1.0 - validation_split)))
            if split_at == 0 or split_at == x_raw.shape[0]:
                raise ValueError(f"Training data contains {x_raw.shape[0]} samples, which is not sufficient to "
                                 f"split it into a validation and training set as specified by "
                                 f"`validation_split={validation_split}`. Either provide more data, or a "
                                 "different value for the `validation_split` argument.")
            # Sample weights are split the same way; class_weight applies to the training part only.
            val = (x_raw[split_at:], y_raw[split_at:], None if sw_raw is None else sw_raw[split_at:])
            x_raw, y_raw = x_raw[:split_at], y_raw[:split_at]
            sw_raw = None if sw_raw is None else sw_raw[:split_at]

        train = self._prepare_data(x_raw, y_raw, sw_raw, class_weight, resolve_metrics=True)
        if val is not None:
            x_val = as_input("validation_data x", val[0])
            y_val_raw = as_data_array("validation_data y", val[1])
            check_cardinality(x_val, y_val_raw)
            val_data = self._prepare_data(x_val, y_val_raw, val[2], prefix="validation_data ")
        eval_batch = self._check_batch_size(validation_batch_size) if validation_batch_size else batch_size

        n = train.n
        parallel = self._parallel()
        if parallel is None:
            runner = self._runner
            batch_size = min(batch_size, n)  # as Keras: a batch larger than the data is the data
            steps = int(math.ceil(n / batch_size))
        else:  # batch_size is the global batch; every rank gets the global steps, loss and metrics
            runner = parallel
            batch_size, steps = parallel.begin_fit(train, val_data if val is not None else None, batch_size,
                                                   epochs, initial_epoch, shuffle, validation_freq)
        # The engine runs many steps per call; callbacks with batch hooks get one call per batch, the
        # progress bar about _CHUNKS_PER_EPOCH updates per epoch (the same on every rank: each chunk is one
        # exchange of the loss and metric sums).
        shown = verbose if parallel is None or parallel.rank == 0 else 0  # one progress bar: rank 0's
        callbacks = CallbackList(callbacks, add_history=True, add_progbar=shown != 0, model=self,
                                 verbose=shown, epochs=epochs, steps=steps)
        per_batch = callbacks.needs_batch_hooks
        chunk = 1 if per_batch else (max(1, steps // _CHUNKS_PER_EPOCH) if verbose == 1 else steps)

        self.stop_training = False
        callbacks.on_train_begin()
        logs = {}
        rng = global_rng()
        # A non-finite loss is reported once per fit, unless TerminateOnNaN is there to report it (and stop).
        nan_watch = not any(isinstance(c, TerminateOnNaN) for c in callbacks.callbacks)
        fit_rate = float(self.optimizer.learning_rate)
        for epoch in range(initial_epoch, epochs):
            callbacks.on_epoch_begin(epoch)
            order = (self._epoch_order(n, batch_size, shuffle, rng) if parallel is None
                     else parallel.epoch_order(n, batch_size, shuffle, rng, self._epoch_order))
            self._reset_metrics()
            loss_sum, seen = 0.0, 0
            batch = 0
            while batch < steps:
                todo = min(chunk, steps - batch)
                if per_batch:
                    callbacks.on_train_batch_begin(batch)
                l_sum, n_seen = runner.train(train, order, batch, todo, batch_size)
                loss_sum += l_sum
                seen += n_seen
                if nan_watch and not math.isfinite(l_sum):
                    _warn_non_finite_loss(l_sum, epoch, batch, todo, self.optimizer.iterations)
                    nan_watch = False
                batch += todo
                callbacks.on_train_batch_end(batch - 1, self._logs(loss_sum / seen))
                if self.stop_training and per_batch:
                    break
            logs = self._logs(loss_sum / seen)
            if val is not None and (epoch + 1) % validation_freq == 0:
                # Validation fires the test hooks, as Keras' fit does through evaluate().
                callbacks.on_test_begin()
                val_logs = self._evaluate(val_data, runner)
                callbacks.on_test_batch_end(int(math.ceil(val_data.n / eval_batch)) - 1, val_logs)
                callbacks.on_test_end(val_logs)
                logs.update({"val_" + k: v for k, v in val_logs.items()})
            rate = float(self.optimizer.learning_rate)
            if self.optimizer.schedule is not None or rate != fit_rate:
                # the rate the next step uses (a schedule's at the current step); Keras 3 logs it only from
                # ReduceLROnPlateau / LearningRateScheduler, which still overwrite this value
                logs["learning_rate"] = rate
            callbacks.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        callbacks.on_train_end(logs)
        return self.history

    def _evaluate(self, data, runner=None):
        """The logs (loss, then the metrics' results) over all samples of ``data``, without training."""
        self._reset_metrics()
        return self._logs((runner or self._runner).evaluate(data))

    def _parallel(self):
        """A DataParallelRunner when a DataParallel distribution spans several processes, else None."""
        return data_parallel_runner(self._runner)

    @staticmethod
    def _epoch_order(n, batch_size, shuffle, rng):
        if shuffle == "batch":
            starts = rng.permutation(int(math.ceil(n / batch_size))) * batch_size
            return np.concatenate([np.arange(s, min(s + batch_size, n)) for s in starts]).astype(np.intp)
        if shuffle:
            return rng.permutation(n).astype(np.intp)
        return np.arange(n, dtype=np.intp)

    @staticmethod
    def _check_batch_size(batch_size):
        if batch_size is None:
            return 32
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size <= 0:
            raise ValueError(f"Argument `batch_size` must be a positive integer; received {describe(batch_size)}")
        return int(batch_size)

    @staticmethod
    def _unpack_validation_data(validation_data):
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("fit: argument `validation_data` must be a tuple (x_val, y_val) or (x_val, y_val, "
                             f"val_sample_weight); received {describe(validation_data)}")
        return validation_data[0], validation_data[1], (validation_data[2] if len(validation_data) == 3 else None)

    # ------------------------------------------------------------------ evaluate / predict
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False, **kwargs):
        check_kwargs("evaluate", kwargs)
        if not self.compiled or self.loss is None:
            raise RuntimeError("You must call `compile()` with a loss before calling `evaluate()`.")
        _reject("evaluate", steps=steps)
        verbose = _resolve_verbose(verbose)
        batch_size = self._check_batch_size(batch_size)
        x_raw = as_input("x", x)
        y_raw = as_data_array("y", y)
        check_cardinality(x_raw, y_raw)
        data = self._prepare_data(x_raw, y_raw, sample_weight, resolve_metrics=True)
        n_steps = int(math.ceil(data.n / batch_size))
        parallel = self._parallel()
        verbose = verbose if parallel is None or parallel.rank == 0 else 0
        callbacks = CallbackList(callbacks, add_progbar=verbose != 0, model=self, verbose=verbose, epochs=1,
                                 steps=n_steps)
        callbacks.on_test_begin()
        logs = self._evaluate(data, parallel)
        callbacks.on_test_batch_end(n_steps - 1, logs)
        callbacks.on_test_end(logs)
        return self._flat_logs(logs, return_dict)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None, **kwargs):
        check_kwargs("predict", kwargs)
        _reject("predict", steps=steps)
        verbose = _resolve_verbose(verbose)
        batch_size = self._check_batch_size(batch_size)
        xs = self._prepare_x(x)
        n_steps = int(math.ceil(xs.shape[0] / batch_size))
        parallel = self._parallel()
        verbose = verbose if parallel is None or parallel.rank == 0 else 0
        callbacks = CallbackList(callbacks, add_progbar=verbose != 0, model=self, verbose=verbose, epochs=1,
                                 steps=n_steps) if (verbose or callbacks) else None
        if callbacks is not None:
            callbacks.on_predict_begin()
        out = (parallel or self._runner).predict(xs)
        if callbacks is not None:
            callbacks.on_predict_batch_end(n_steps - 1, {"outputs": out})
            callbacks.on_predict_end()
        return out

    def predict_on_batch(self, x):
        return self._runner.predict(self._prepare_x(x))

    def __call__(self, inputs, training=False):
        """The model's outputs for ``inputs`` (an ndarray with ``.numpy()``, as Keras tensors);
        ``training=True``: one batch in training arithmetic
        (BatchNormalization's batch statistics, which also update the moving ones, and dropout)."""
        xs = self._prepare_x(inputs)
        out = self._runner.forward_train(xs) if training else self._runner.predict(xs)
        return out.view(OutputArray)

    def _batch_data(self, owner, x, y, sample_weight=None, class_weight=None):
        """One batch's validated data (the checks of fit/evaluate, without their callbacks and loop)."""
        if not self.compiled or self.loss is None:
            raise RuntimeError(f"You must call `compile()` with a loss before calling `{owner}()`.")
        if class_weight is not None and sample_weight is not None:
            raise ValueError("You cannot use `class_weight` and `sample_weight` at the same time. To combine "
                             "them, multiply each sample's weight by its class weight and pass `sample_weight`.")
        x_raw = as_input("x", x)
        y_raw = as_data_array("y", y)
        check_cardinality(x_raw, y_raw)
        return self._prepare_data(x_raw, y_raw, sample_weight, class_weight, resolve_metrics=True)

    def _flat_logs(self, logs, return_dict):
        if return_dict:
            return logs
        if not self._compiled_metrics:
            return logs["loss"]
        # Keras 3 order: loss first, then the other keys sorted (trainer._flatten_metrics_in_order).
        return [logs["loss"]] + [logs[k] for k in sorted(k for k in logs if k != "loss")]

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on the batch (x, y); the loss and metrics of this batch alone (Keras 3 resets
        the metrics at the start of each call since keras-team/keras#22617, as tf.keras did)."""
        if self._parallel() is not None:
            raise RuntimeError(NOT_DATA_PARALLEL)
        data = self._batch_data("train_on_batch", x, y, sample_weight, class_weight)
        self._reset_metrics()
        loss_sum, seen = self._runner.train(data, np.arange(data.n, dtype=np.intp), 0, 1, data.n)
        return self._flat_logs(self._logs(loss_sum / seen), return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        data = self._batch_data("test_on_batch", x, y, sample_weight)
        return self._flat_logs(self._evaluate(data), return_dict)
