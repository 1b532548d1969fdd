"""Losses with Keras' names, aliases and semantics.

Every loss class takes Keras 3's ``reduction`` (K3 ``keras/src/losses/loss.py``), applied to the
per-sample losses (each a mean over the last axis for MSE/MAE/BCE, a sum for the cross-entropies), each
times its ``sample_weight`` when one is given (a number, one weight per sample, or an array that
broadcasts to the losses):

* ``"sum_over_batch_size"`` (default; tf.keras' ``"auto"``) and ``"mean"``: the sum divided by the number
  of losses (not by the sum of the weights);
* ``"sum"``: the sum;
* ``"mean_with_sample_weight"``: the sum divided by the sum of the weights;
* ``None`` / ``"none"``: the weighted per-sample losses.

``fit``/``evaluate`` train and report with ``"sum_over_batch_size"`` (``"mean"`` is the same), which
the engine computes; the other reductions are for calling a loss directly.

Cross-entropies have two paths, as in Keras on the TensorFlow backend
(K3 ``backend/tensorflow/nn.py`` ``_get_logits``): when the model's last
activation is the matching softmax/sigmoid (or ``from_logits=True``), the loss
is computed from the logits by a fused kernel with no clipping; otherwise the
probabilities are clipped to [eps, 1 - eps] in their own dtype, eps =
``fastnn.config.epsilon()`` = 1e-7 (K3 ``backend/numpy/nn.py``; in float32 the upper bound is 0.99999988).
Each loss also validates its targets against the model output, so the classic
mistakes get an actionable message instead of a shape error.
"""
import numpy as np

from fastnn import _kernels as K
from fastnn.utils.array_utils import predictions_2d
from fastnn.utils.validation import check_in_range, check_kwargs, describe, shape_str, unknown_identifier
from fastnn.utils.weighting import reduce_weighted_values, standardize_reduction


class Loss:
    """Base class. Subclasses set ``kernel`` (probabilities/outputs path),
    ``logits_kernel`` and ``fused_activation`` (for cross-entropies).

    Args (Keras 3's): ``reduction`` (see the module docstring), ``name``, ``dtype``: ``"float32"`` or
    ``"float64"`` to compute in that dtype; None (default) computes in y_pred's dtype when it is float32 or
    float64, else float32. Keras 3 casts to ``floatx()`` (float32) when dtype is None; fastnn keeps float64
    inputs in float64, which only changes the last digits (and the clip bound, 1 - 1e-7 in float64).
    """

    kernel = None
    logits_kernel = None
    fused_activation = None
    default_name = None

    def __init__(self, reduction="sum_over_batch_size", name=None, from_logits=False, dtype=None, **kwargs):
        owner = type(self).__name__
        check_kwargs(owner, kwargs)
        self.reduction = standardize_reduction(owner, reduction)
        self.name = name or self.default_name
        self.from_logits = bool(from_logits)
        if dtype is not None and (not isinstance(dtype, (str, type, np.dtype)) or
                                  np.dtype(dtype) not in (np.float32, np.float64)):
            raise ValueError(f"{owner}: argument `dtype` must be None, 'float32' or 'float64'; received "
                             f"{describe(dtype)}.")
        self.dtype = None if dtype is None else np.dtype(dtype).name

    # -------------------------------------------------------------- kernels
    def kernel_for(self, logits):
        """Name of the kernel family (``<name>_forward``/``_backward``) to use."""
        return self.logits_kernel if logits else self.kernel

    def per_sample(self, y_pred, y_true, logits=False):
        return getattr(K, self.kernel_for(logits) + "_forward")(y_pred, y_true)

    def batch_sum(self, y_pred, y_true, logits=False, sample_weight=None):
        """Sum over the batch of the per-sample losses, each times its weight, in float64."""
        rows = self.per_sample(y_pred, y_true, logits=logits).astype(np.float64)
        return float(rows.sum() if sample_weight is None else rows @ sample_weight)

    def backward(self, y_pred, y_true, scale, logits=False, sample_weight=None):
        """(sum of per-sample losses, gradient of ``scale`` * that sum w.r.t. y_pred); with ``sample_weight``
        both weight each sample's loss."""
        return getattr(K, self.kernel_for(logits) + "_backward")(y_pred, y_true, scale,
                                                                  sample_weight=sample_weight)

    # -------------------------------------------------------------- targets
    def prepare_targets(self, y, n_outputs, dtype=np.float32):
        """Validate ``y`` against a model with ``n_outputs`` units; return what the kernels take."""
        y = _squeeze_to(y, n_outputs)
        if y.ndim != 2 or y.shape[1] != n_outputs:
            raise ValueError(f"{self.name}: targets of shape {shape_str(y.shape)} do not match the model "
                             f"output shape (None, {n_outputs}).")
        return np.ascontiguousarray(y, dtype=dtype)

    def call(self, y_true, y_pred):
        """The unreduced losses (Keras' ``Loss.call``): one per position of y_pred's last axis, shaped
        ``y_pred.shape[:-1]``; a 1-D y_pred is a column, (B,) -> (B,)."""
        y_pred = np.asarray(y_pred)
        if y_pred.ndim == 0:
            raise ValueError(f"{type(self).__name__}: `y_pred` must have a batch axis; received "
                             f"{describe(y_pred)}.")
        if self.dtype is not None:
            y_pred = y_pred.astype(self.dtype, copy=False)
        rows = predictions_2d(y_pred, rows_of_last_axis=True)
        y = np.asarray(y_true)
        if y_pred.ndim >= 3:  # rows of the last axis: the targets' leading axes flattened the same way
            y = y.reshape(-1, y.shape[-1]) if y.ndim == y_pred.ndim else y.reshape(-1)
        y = self.prepare_targets(y, rows.shape[1], dtype=rows.dtype)
        values = self.per_sample(rows, y, logits=self.from_logits)
        return values.reshape(y_pred.shape[:-1]) if y_pred.ndim >= 3 else values

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The reduced loss (a float; an array for ``reduction=None``/``"none"``): Keras 3's
        ``reduce_weighted_values`` of ``call`` with ``sample_weight`` a number, one weight per sample
        ((B,) or (B, 1)) or any array that broadcasts to the losses."""
        values = self.call(y_true, y_pred)
        loss = reduce_weighted_values(type(self).__name__, values, sample_weight, self.reduction)
        return loss.astype(values.dtype) if isinstance(loss, np.ndarray) else loss

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, "from_logits": self.from_logits,
                "dtype": self.dtype}


def _squeeze_to(y, n_outputs):
    """Keras squeezes or expands the last axis so ranks match (K3 squeeze_or_expand_to_same_rank)."""
    y = np.asarray(y)
    if y.ndim == 1:
        return y.reshape(-1, 1) if n_outputs == 1 else y
    return y


def _check_finite_labels(owner, y):
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError(f"{owner}: targets contain NaN or infinity.")


class MeanSquaredError(Loss):
    kernel = "mse"
    default_name = "mean_squared_error"

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", **kwargs):
        super().__init__(reduction=reduction, name=name, **kwargs)

    def prepare_targets(self, y, n_outputs, dtype=np.float32):
        _check_finite_labels(self.name, np.asarray(y))
        return super().prepare_targets(y, n_outputs, dtype)


class MeanAbsoluteError(MeanSquaredError):
    kernel = "mae"
    default_name = "mean_absolute_error"

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error", **kwargs):
        super().__init__(reduction=reduction, name=name, **kwargs)


class BinaryCrossentropy(Loss):
    kernel = "bxent"
    logits_kernel = "sigmoid_bxent"
    fused_activation = "sigmoid"
    default_name = "binary_crossentropy"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="binary_crossentropy", **kwargs):
        super().__init__(reduction=reduction, name=name, from_logits=from_logits, **kwargs)
        self.label_smoothing = check_in_range(type(self).__name__, "label_smoothing", label_smoothing, 0, 1)
        if axis != -1:
            raise ValueError(f"{type(self).__name__}: only axis=-1 is supported; received axis={axis!r}")

    def prepare_targets(self, y, n_outputs, dtype=np.float32):
        y = np.asarray(y)
        _check_finite_labels(self.name, y)
        if y.size and (y.min() < 0 or y.max() > 1):
            raise ValueError(f"{self.name}: targets must be in [0, 1] (0/1 labels); received values from "
                             f"{y.min()} to {y.max()}.")
        y = super().prepare_targets(y, n_outputs, dtype)
        if self.label_smoothing:
            t = np.dtype(dtype).type  # callers pass np.float32 or an np.dtype (model._params.dtype)
            y = y * t(1 - self.label_smoothing) + t(0.5 * self.label_smoothing)
        return y

    def get_config(self):
        return dict(super().get_config(), label_smoothing=self.label_smoothing)


class CategoricalCrossentropy(Loss):
    kernel = "xent"
    logits_kernel = "softmax_xent"
    fused_activation = "softmax"
    default_name = "categorical_crossentropy"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="categorical_crossentropy", **kwargs):
        super().__init__(reduction=reduction, name=name, from_logits=from_logits, **kwargs)
        self.label_smoothing = check_in_range(type(self).__name__, "label_smoothing", label_smoothing, 0, 1)
        if axis != -1:
            raise ValueError(f"{type(self).__name__}: only axis=-1 is supported; received axis={axis!r}")

    def prepare_targets(self, y, n_outputs, dtype=np.float32):
        y = np.asarray(y)
        _check_finite_labels(self.name, y)
        looks_sparse = y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1 and n_outputs > 1)
        if looks_sparse and n_outputs > 1:
            raise ValueError(
                f"{self.name}: targets of shape {shape_str(y.shape)} look like integer class ids, but "
                f"categorical_crossentropy expects one-hot targets of shape (None, {n_outputs}). Use "
                f"loss='sparse_categorical_crossentropy', or convert the labels with "
                f"fastnn.utils.to_categorical(y, {n_outputs})."
            )
        y = super().prepare_targets(y, n_outputs, dtype)
        if self.label_smoothing:
            t = np.dtype(dtype).type  # callers pass np.float32 or an np.dtype (model._params.dtype)
            y = y * t(1 - self.label_smoothing) + t(self.label_smoothing / n_outputs)
        return y

    def get_config(self):
        return dict(super().get_config(), label_smoothing=self.label_smoothing)


class SparseCategoricalCrossentropy(Loss):
    kernel = "xent"
    logits_kernel = "softmax_xent"
    fused_activation = "softmax"
    default_name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits=False, reduction="sum_over_batch_size",
                 name="sparse_categorical_crossentropy", **kwargs):
        super().__init__(reduction=reduction, name=name, from_logits=from_logits, **kwargs)

    def prepare_targets(self, y, n_outputs, dtype=np.float32):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            hint = ""
            if y.ndim == 2 and y.shape[1] == n_outputs:
                hint = " They look one-hot encoded: use loss='categorical_crossentropy' instead."
            raise ValueError(f"{self.name}: expects integer class ids of shape (None,) or (None, 1); "
                             f"received targets of shape {shape_str(y.shape)}.{hint}")
        if y.dtype.kind not in "iub":
            _check_finite_labels(self.name, y)
            if y.dtype.kind != "f" or not np.array_equal(y, np.round(y)):
                raise ValueError(f"{self.name}: targets must be integer class ids; received {describe(y)} "
                                 "with non-integer values.")
        if y.size:
            low, high = y.min(), y.max()
            if low < 0 or high >= n_outputs:
                bad = low if low < 0 else high
                raise ValueError(f"{self.name}: received a label value of {bad:g} which is outside the valid "
                                 f"range of [0, {n_outputs - 1}] for a model with {n_outputs} output units.")
        return np.ascontiguousarray(y, dtype=np.intp)


# Keras' functional forms: the unreduced losses (one per position of the last axis).
def _functional(cls, doc):
    def fn(y_true, y_pred, **kwargs):
        return cls(**kwargs).call(y_true, y_pred)
    fn.__name__ = cls.default_name
    fn.__doc__ = doc
    return fn


mean_squared_error = _functional(MeanSquaredError, "Per-sample mean squared error.")
mean_absolute_error = _functional(MeanAbsoluteError, "Per-sample mean absolute error.")
binary_crossentropy = _functional(BinaryCrossentropy, "Per-sample binary cross-entropy.")
categorical_crossentropy = _functional(CategoricalCrossentropy, "Per-sample categorical cross-entropy.")
sparse_categorical_crossentropy = _functional(SparseCategoricalCrossentropy,
                                              "Per-sample sparse categorical cross-entropy.")
mse, mae = mean_squared_error, mean_absolute_error

_BY_NAME = {
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError, "MSE": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError,
    "binary_crossentropy": BinaryCrossentropy, "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}
_BY_NAME.update({cls.__name__: cls for cls in set(_BY_NAME.values())})
_FUNCTIONS = {mean_squared_error: MeanSquaredError, mean_absolute_error: MeanAbsoluteError,
              binary_crossentropy: BinaryCrossentropy, categorical_crossentropy: CategoricalCrossentropy,
              sparse_categorical_crossentropy: SparseCategoricalCrossentropy}


def get(identifier):
    """Resolve a Keras loss identifier (string, class, instance or functional form)."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier)
        if cls is None:
            raise unknown_identifier("loss", identifier, [k for k in _BY_NAME if k[0].islower()])
        return cls()
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if identifier in _FUNCTIONS:
        return _FUNCTIONS[identifier]()
    raise ValueError(
        f"Could not interpret loss identifier: {describe(identifier)}. fastnn computes gradients with its own "
        f"kernels, so the loss must be one of: {', '.join(sorted(k for k in _BY_NAME if k[0].islower()))}."
    )
