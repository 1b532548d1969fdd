"""Losses with Keras' names, aliases and semantics.

Reduction is Keras' default "sum_over_batch_size": the sum over the batch of
the per-sample losses (each a mean over the last axis for MSE/MAE/BCE), each
times its sample weight if there are weights, divided by the batch size.

Cross-entropies have two paths, as in Keras on the TensorFlow backend
(K3 ``backend/tensorflow/nn.py`` ``_get_logits``): when the model's last
activation is the matching softmax/sigmoid (or ``from_logits=True``), the loss
is computed from the logits by a fused kernel with no clipping; otherwise the
probabilities are clipped to [1e-7, 1 - 1e-7] (K3 ``backend/numpy/nn.py``).
Each loss also validates its targets against the model output, so the classic
mistakes get an actionable message instead of a shape error.
"""
import numpy as np

from fastnn import _kernels as K
from fastnn.utils.array_utils import predictions_2d
from fastnn.utils.validation import check_in_range, check_kwargs, describe, shape_str, unknown_identifier


class Loss:
    """Base class. Subclasses set ``kernel`` (probabilities/outputs path),
    ``logits_kernel`` and ``fused_activation`` (for cross-entropies)."""

    kernel = None
    logits_kernel = None
    fused_activation = None
    default_name = None

    def __init__(self, reduction="sum_over_batch_size", name=None, from_logits=False, **kwargs):
        check_kwargs(type(self).__name__, kwargs)
        if reduction not in ("sum_over_batch_size", "auto"):
            raise ValueError(f"{type(self).__name__}: only reduction='sum_over_batch_size' is supported; "
                             f"received reduction={reduction!r}")
        self.reduction = "sum_over_batch_size"
        self.name = name or self.default_name
        self.from_logits = bool(from_logits)

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

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The batch loss: mean of the per-sample losses, or with ``sample_weight`` (one weight per
        sample) ``sum(w * loss) / batch_size`` (Keras' "sum_over_batch_size" reduction)."""
        y_pred = predictions_2d(y_pred)
        y = self.prepare_targets(np.asarray(y_true), y_pred.shape[1], dtype=y_pred.dtype)
        if sample_weight is not None:
            w = np.asarray(sample_weight)
            w = w[:, 0] if w.ndim == 2 and w.shape[1] == 1 else w
            if w.dtype.kind not in "biuf" or w.shape != (y_pred.shape[0],):
                raise ValueError(f"{type(self).__name__}: `sample_weight` must hold one weight per sample, "
                                 f"shape ({y_pred.shape[0]},); received {describe(sample_weight)}")
            sample_weight = w.astype(np.float64)
        total = self.batch_sum(y_pred, y, logits=self.from_logits, sample_weight=sample_weight)
        return total / y_pred.shape[0]

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, "from_logits": self.from_logits}


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

    def __init__(self, from_logits=False, label_smoothing=0.0, reduction="sum_over_batch_size",
                 name="binary_crossentropy", **kwargs):
        super().__init__(reduction=reduction, name=name, from_logits=from_logits, **kwargs)
        self.label_smoothing = check_in_range(type(self).__name__, "label_smoothing", label_smoothing, 0, 1)

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


# Keras' functional forms: per-sample losses (mean over the last axis).
def _functional(cls, doc):
    def fn(y_true, y_pred, **kwargs):
        loss = cls(**kwargs)
        y_pred2 = predictions_2d(y_pred, rows_of_last_axis=True)
        y = loss.prepare_targets(np.asarray(y_true), y_pred2.shape[1], dtype=y_pred2.dtype)
        return loss.per_sample(y_pred2, y, logits=loss.from_logits)
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
