"""compile / fit / evaluate / predict: the only place that loops over batches and calls callbacks.

Two ways to run a training step, with the same maths:

* the fused engine (``fastnn._kernels.MLP``), used whenever the model is a
  stack of Flatten/Dense/Activation layers with a built-in loss and metrics:
  it runs many whole steps (gather, forward, loss, backward, optimizer update)
  in one compiled call, so a step costs microseconds of overhead, not the
  tens of microseconds of a Python loop (KERAS_SEMANTICS §3.2, §3.14);
* the layer-by-layer path (``Layer.call``/``Layer.backward``), used for
  everything else and as the engine's reference in the tests.

Data checks happen once, at the start of ``fit``/``evaluate``/``predict``,
and name the fix (KERAS_SEMANTICS §3.7).
"""
import math
import numbers

import numpy as np

from fastnn import _kernels as K
from fastnn import losses as losses_module
from fastnn import metrics as metrics_module
from fastnn import optimizers as optimizers_module
from fastnn.callbacks.callback_list import CallbackList
from fastnn.layers.activation import Activation
from fastnn.layers.dense import Dense
from fastnn.layers.flatten import Flatten
from fastnn.utils.rng_utils import global_rng
from fastnn.utils.sparse_utils import CSRRows, describe_sparse, is_sparse, maybe_sparsify, to_csr
from fastnn.utils.validation import check_kwargs, describe, shape_str

# Rows per forward chunk in evaluate/predict: batch size does not change their
# results, so they run in large chunks (fewer kernel calls) whatever batch_size is.
_INFERENCE_ROWS = 4096
# Progress-bar refreshes per epoch when the engine runs steps in chunks.
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


def _as_array(name, value):
    if value is None:
        raise ValueError(f"Argument `{name}` is required; received None.")
    array = np.asarray(value)
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise ValueError(f"Argument `{name}` must be numeric array-like data; received {describe(value)}.")
    if array.ndim == 0:
        raise ValueError(f"Argument `{name}` must have a batch dimension; received a scalar {describe(value)}.")
    if array.shape[0] == 0:
        raise ValueError(f"Expected `{name}` to be non-empty; received {describe(array)}.")
    return array


def _check_finite(name, array):
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int(np.argwhere(~np.isfinite(array.reshape(array.shape[0], -1)))[0, 0])
        raise ValueError(f"Argument `{name}` contains NaN or infinity (first at sample {bad}). Clean or impute "
                         "the data before training.")


def _check_cardinality(x, y):
    if x.shape[0] != y.shape[0]:
        raise ValueError("Data cardinality is ambiguous. Make sure all arrays contain the same number of "
                         f"samples. x sizes: {x.shape[0]}, y sizes: {y.shape[0]}.")


def _n_rows(x):
    return x.shape[0] if is_sparse(x) else _as_array("x", x).shape[0]


def _take(x, rows):
    """Rows of a dense array or of a CSR matrix (as ``CSRRows``: nothing is copied)."""
    if is_sparse(x):
        if isinstance(rows, slice):
            rows = np.arange(*rows.indices(x.shape[0]), dtype=np.intp)
        return CSRRows(x, rows)
    return x[rows]


class Trainer:
    def __init__(self):
        self.compiled = False
        self.optimizer = None
        self.loss = None
        self.stop_training = False
        self.history = None
        self._metric_ids = []
        self._compiled_metrics = []
        self._engine = None
        self._engine_key = None

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True, **kwargs):
        """Configure training. ``run_eagerly``, ``steps_per_execution``, ``jit_compile`` and
        ``auto_scale_loss`` are accepted for compatibility; they do not change results in fastnn."""
        check_kwargs("compile", kwargs)
        _reject("compile", loss_weights=loss_weights, weighted_metrics=weighted_metrics)
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = None if loss is None else losses_module.get(loss)
        if metrics is None:
            metrics = []
        elif isinstance(metrics, (str, metrics_module.Metric)) or (
                isinstance(metrics, type) and issubclass(metrics, metrics_module.Metric)):
            metrics = [metrics]
        elif not isinstance(metrics, (list, tuple)):
            raise ValueError(f"compile: argument `metrics` must be a list of metrics; received {describe(metrics)}")
        for identifier in metrics:
            metrics_module.check_identifier(identifier)
        self._metric_ids = list(metrics)
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
        x = _as_array(name, x)
        if x.ndim == 1 and (not self.built or len(self.input_shape) == 2):
            # Keras expands rank-1 inputs to (samples, 1): the "Hello World" tutorial fits
            # Dense(1, input_shape=[1]) on xs of shape (6,).
            x = x.reshape(-1, 1)
        if self._takes_sparse(x):
            csr = maybe_sparsify(x)
            if csr is not None:
                return self._check_input_shape(to_csr(csr, name, dtype), sparse=True)
        _check_finite(name, x)
        self._check_input_shape(x)
        return np.ascontiguousarray(x, dtype=dtype)

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
        return int(np.prod(shape[1:])) if len(shape) > 1 else 1

    def _prepare_targets(self, y, name="y"):
        y = _as_array(name, y)
        return self.loss.prepare_targets(y, self._n_outputs(), dtype=self._params.dtype)

    def _resolve_metrics(self, y_raw_shape, y_prepared):
        n_outputs = self._n_outputs()
        resolved = []
        for identifier in self._metric_ids:
            metric = metrics_module.get(identifier, y_true_shape=y_raw_shape, n_outputs=n_outputs)
            if metric.sparse_targets != (y_prepared.ndim == 1):
                raise ValueError(f"Metric '{metric.name}' cannot be computed with loss '{self.loss.name}': the "
                                 f"targets have shape {shape_str(y_prepared.shape)} for a model output of "
                                 f"shape {shape_str(self.output_shape)}.")
            resolved.append(metric)
        self._compiled_metrics = resolved
        return resolved

    # ------------------------------------------------------------------ loss path selection
    def _loss_mode(self):
        """'fused' (last activation folded into the loss), 'logits' (outputs are logits) or 'outputs'."""
        loss = self.loss
        if loss.fused_activation is None:
            return "outputs"
        if loss.from_logits:
            return "logits"
        last = self._layers[-1]
        if getattr(last, "activation_name", None) == loss.fused_activation:
            return "fused"
        return "outputs"

    def _engine_specs(self):
        """Layer specs for ``K.MLP``, or None when the model needs the layer-by-layer path."""
        if self._params is None or self._params.dtype != np.float32 or not self.trainable:
            return None
        mode = self._loss_mode()
        if mode == "outputs" and self.loss.fused_activation is not None:
            return None  # cross-entropy on probabilities (clipped): not in the engine
        if mode == "logits" and self._layers[-1].activation_name != "linear":
            return None
        specs = []
        seen_dense = False
        for layer in self._layers:
            if isinstance(layer, Flatten) and not seen_dense and layer.data_format != "channels_first":
                continue
            if isinstance(layer, Dense) and layer.trainable:
                seen_dense = True
                b_off = self.weight_offset(layer.bias) if layer.use_bias else -1
                specs.append([layer.kernel.shape[0], layer.units, self.weight_offset(layer.kernel), b_off,
                              layer.activation_name])
            elif isinstance(layer, Activation) and specs and specs[-1][4] == "linear":
                specs[-1][4] = layer.activation_name
            else:
                return None
        if not specs:
            return None
        return [tuple(s) for s in specs]

    def _invalidate_engine(self):
        self._engine = None
        self._engine_key = None

    def _get_engine(self, batch_size):
        if not getattr(self, "_engine_enabled", True):
            return None
        specs = self._engine_specs()
        if specs is None:
            return None
        kernel = self.loss.logits_kernel if self.loss.fused_activation else self.loss.kernel
        metric_kernels = tuple(m.kernel for m in self._compiled_metrics)
        opt = self.optimizer
        opt.build(self._params.shape[0], self._params.dtype)
        key = (tuple(specs), kernel, metric_kernels, id(opt), tuple(sorted(opt.hyper().items())), batch_size,
               id(self._params), tuple(id(s) for s in opt.slots))
        if self._engine_key != key:
            self._engine = K.MLP(self._params, self._grads, specs, kernel, metric_kernels, opt.kind, opt.slots,
                                 opt.hyper(), batch_size)
            self._engine_key = key
        return self._engine

    # ------------------------------------------------------------------ layer-by-layer path
    def _forward(self, x, training=False, logits=False):
        """Run every layer; ``logits=True`` stops the last layer before its activation."""
        last = len(self._layers) - 1
        for i, layer in enumerate(self._layers):
            if i == last and logits:
                x = layer.call(x, training=training, logits=True)
            else:
                x = layer.call(x, training=training)
        return x

    def _loss_and_outputs(self, x, y, training, scale=None):
        """(loss_sum, metric outputs, dloss) of a batch; dloss is None when ``scale`` is None."""
        mode = self._loss_mode()
        final = self._forward(x, training=training, logits=mode == "fused")
        final2 = final.reshape(final.shape[0], -1)
        use_logits = mode in ("fused", "logits")
        if scale is None:
            loss_sum = float(self.loss.per_sample(final2, y, logits=use_logits).astype(np.float64).sum())
            dloss = None
        else:
            loss_sum, dloss = self.loss.backward(final2, y, scale, logits=use_logits)
            dloss = dloss.reshape(final.shape)
        outputs = K.activation_forward(final2, self.loss.fused_activation) if mode == "fused" else final2
        return loss_sum, outputs, dloss

    def _train_batch_layers(self, x, y):
        n = x.shape[0]
        loss_sum, outputs, dy = self._loss_and_outputs(x, y, training=True, scale=1.0 / n)
        metric_sums = [m.batch_sum(outputs, y) for m in self._compiled_metrics]
        self._grads[...] = 0
        for i in range(len(self._layers) - 1, -1, -1):
            dy = self._layers[i].backward(dy, need_dx=i > 0)
        self._apply_update()
        return loss_sum, np.array(metric_sums, dtype=np.float64), n

    def _apply_update(self):
        """One optimizer step over the arena that leaves non-trainable weights exactly as they were
        (their optimizer state may still hold momentum from before they were frozen)."""
        frozen = self.non_trainable_weights
        if len(frozen) == len(self.weights):
            return
        saved = [w.value.copy() for w in frozen]
        self.optimizer.apply(self._params, self._grads)
        for weight, value in zip(frozen, saved):
            weight.value[...] = value

    def _evaluate_arrays(self, x, y, batch_size):
        """(mean loss, [mean metric]) over all samples, without training."""
        rows = max(batch_size, _INFERENCE_ROWS // batch_size * batch_size)
        loss_sum = 0.0
        metric_sums = np.zeros(len(self._compiled_metrics))
        for start in range(0, x.shape[0], rows):
            xb, yb = _take(x, slice(start, start + rows)), y[start:start + rows]
            batch_loss, outputs, _ = self._loss_and_outputs(xb, yb, training=False)
            loss_sum += batch_loss
            for k, metric in enumerate(self._compiled_metrics):
                metric_sums[k] += metric.batch_sum(outputs, yb)
        n = x.shape[0]
        return loss_sum / n, list(metric_sums / n)

    def _logs(self, loss, metric_values, prefix=""):
        logs = {prefix + "loss": float(loss)}
        for metric, value in zip(self._compiled_metrics, metric_values):
            logs[prefix + metric.name] = float(value)
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
        _reject("fit", class_weight=class_weight, sample_weight=sample_weight, steps_per_epoch=steps_per_epoch,
                validation_steps=validation_steps)
        verbose = _resolve_verbose(verbose)
        batch_size = self._check_batch_size(batch_size)
        for name, value in (("epochs", epochs), ("initial_epoch", initial_epoch), ("validation_freq", validation_freq)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < (1 if name != "initial_epoch" else 0):
                raise ValueError(f"fit: argument `{name}` must be a {'positive' if name != 'initial_epoch' else 'non-negative'} "
                                 f"integer; received {describe(value)}")
        if shuffle not in (True, False, "batch"):
            raise ValueError(f"fit: argument `shuffle` must be True, False or 'batch'; received {describe(shuffle)}")

        x_raw = x if is_sparse(x) else _as_array("x", x)
        y_raw = _as_array("y", y)
        _check_cardinality(x_raw, y_raw)
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
            val = (x_raw[split_at:], y_raw[split_at:])
            x_raw, y_raw = x_raw[:split_at], y_raw[:split_at]

        x_train = self._prepare_x(x_raw)
        _check_finite("y", y_raw)
        y_train = self._prepare_targets(y_raw)
        self._resolve_metrics(y_raw.shape, y_train)
        if val is not None:
            x_val = self._prepare_x(val[0], "validation_data x")
            y_val_raw = _as_array("validation_data y", val[1])
            _check_cardinality(x_val, y_val_raw)
            _check_finite("validation_data y", y_val_raw)
            y_val = self._prepare_targets(y_val_raw, "validation_data y")
        eval_batch = self._check_batch_size(validation_batch_size) if validation_batch_size else batch_size

        n = x_train.shape[0]
        steps = int(math.ceil(n / batch_size))
        engine = None if is_sparse(x_train) else self._get_engine(batch_size)
        x_engine = x_train.reshape(n, -1) if engine is not None else None
        callbacks = CallbackList(callbacks, add_history=True, add_progbar=verbose != 0, model=self,
                                 verbose=verbose, epochs=epochs, steps=steps)
        per_batch = callbacks.needs_batch_hooks
        chunk = 1 if per_batch else (max(1, steps // _CHUNKS_PER_EPOCH) if verbose == 1 else steps)

        self.stop_training = False
        callbacks.on_train_begin()
        logs = {}
        rng = global_rng()
        for epoch in range(initial_epoch, epochs):
            callbacks.on_epoch_begin(epoch)
            order = self._epoch_order(n, batch_size, shuffle, rng)
            loss_sum, metric_sums, seen = 0.0, np.zeros(len(self._compiled_metrics)), 0
            batch = 0
            while batch < steps:
                todo = min(chunk, steps - batch)
                if per_batch:
                    callbacks.on_train_batch_begin(batch)
                if engine is not None:
                    l_sum, m_sums, n_seen = engine.train_steps(x_engine, y_train, order, batch, todo,
                                                               self.optimizer.iterations,
                                                               self.optimizer.learning_rate)
                    self.optimizer.iterations += todo
                else:
                    l_sum, m_sums, n_seen = 0.0, np.zeros(len(self._compiled_metrics)), 0
                    for b in range(batch, batch + todo):
                        rows = order[b * batch_size:(b + 1) * batch_size]
                        bl, bm, bn = self._train_batch_layers(_take(x_train, rows), y_train[rows])
                        l_sum, m_sums, n_seen = l_sum + bl, m_sums + bm, n_seen + bn
                loss_sum += l_sum
                metric_sums += m_sums
                seen += n_seen
                batch += todo
                callbacks.on_train_batch_end(batch - 1, self._logs(loss_sum / seen, metric_sums / seen))
                if self.stop_training and per_batch:
                    break
            logs = self._logs(loss_sum / seen, metric_sums / seen)
            if val is not None and (epoch + 1) % validation_freq == 0:
                # Validation fires the test hooks, as Keras' fit does through evaluate().
                callbacks.on_test_begin()
                val_logs = self._logs(*self._evaluate_arrays(x_val, y_val, eval_batch))
                callbacks.on_test_batch_end(int(math.ceil(x_val.shape[0] / eval_batch)) - 1, val_logs)
                callbacks.on_test_end(val_logs)
                logs.update({"val_" + k: v for k, v in val_logs.items()})
            callbacks.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        callbacks.on_train_end(logs)
        return self.history

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
            raise ValueError("fit: argument `validation_data` must be a tuple (x_val, y_val); received "
                             f"{describe(validation_data)}")
        if len(validation_data) == 3 and validation_data[2] is not None:
            raise ValueError("fit: sample weights in `validation_data` are not supported by fastnn yet.")
        return validation_data[0], validation_data[1]

    # ------------------------------------------------------------------ evaluate / predict
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False, **kwargs):
        check_kwargs("evaluate", kwargs)
        if not self.compiled or self.loss is None:
            raise RuntimeError("You must call `compile()` with a loss before calling `evaluate()`.")
        _reject("evaluate", sample_weight=sample_weight, steps=steps)
        verbose = _resolve_verbose(verbose)
        batch_size = self._check_batch_size(batch_size)
        x_raw = x if is_sparse(x) else _as_array("x", x)
        y_raw = _as_array("y", y)
        _check_cardinality(x_raw, y_raw)
        xs = self._prepare_x(x_raw)
        _check_finite("y", y_raw)
        ys = self._prepare_targets(y_raw)
        self._resolve_metrics(y_raw.shape, ys)
        n_steps = int(math.ceil(xs.shape[0] / batch_size))
        callbacks = CallbackList(callbacks, add_progbar=verbose != 0, model=self, verbose=verbose, epochs=1,
                                 steps=n_steps)
        callbacks.on_test_begin()
        loss, metric_values = self._evaluate_arrays(xs, ys, batch_size)
        logs = self._logs(loss, metric_values)
        callbacks.on_test_batch_end(n_steps - 1, logs)
        callbacks.on_test_end(logs)
        if return_dict:
            return logs
        if not self._compiled_metrics:
            return logs["loss"]
        # Keras 3 order: loss first, then the other keys sorted (trainer._flatten_metrics_in_order).
        return [logs["loss"]] + [logs[k] for k in sorted(k for k in logs if k != "loss")]

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None, **kwargs):
        check_kwargs("predict", kwargs)
        _reject("predict", steps=steps)
        verbose = _resolve_verbose(verbose)
        batch_size = self._check_batch_size(batch_size)
        xs = self._prepare_x(x)
        n_steps = int(math.ceil(xs.shape[0] / batch_size))
        callbacks = CallbackList(callbacks, add_progbar=verbose != 0, model=self, verbose=verbose, epochs=1,
                                 steps=n_steps) if (verbose or callbacks) else None
        if callbacks is not None:
            callbacks.on_predict_begin()
        out = self._predict_arrays(xs, batch_size)
        if callbacks is not None:
            callbacks.on_predict_batch_end(n_steps - 1, {"outputs": out})
            callbacks.on_predict_end()
        return out

    def _predict_arrays(self, xs, batch_size):
        rows = max(batch_size, _INFERENCE_ROWS // batch_size * batch_size)
        if xs.shape[0] <= rows:
            return self._forward(_take(xs, slice(None)) if is_sparse(xs) else xs)
        return np.concatenate([self._forward(_take(xs, slice(s, s + rows))) for s in range(0, xs.shape[0], rows)])

    def predict_on_batch(self, x):
        return self._predict_arrays(self._prepare_x(x), _INFERENCE_ROWS)

    def __call__(self, inputs, training=False):
        xs = self._prepare_x(inputs)
        return self._forward(_take(xs, slice(None)) if is_sparse(xs) else xs, training=training)

    def train_on_batch(self, x, y, return_dict=False):
        history = self.fit(x, y, batch_size=_n_rows(x), epochs=1, verbose=0, shuffle=False)
        logs = {k: v[-1] for k, v in history.history.items()}
        if return_dict:
            return logs
        if not self._compiled_metrics:
            return logs["loss"]
        return [logs["loss"]] + [logs[k] for k in sorted(k for k in logs if k != "loss")]

    def test_on_batch(self, x, y, return_dict=False):
        return self.evaluate(x, y, batch_size=_n_rows(x), verbose=0, return_dict=return_dict)
