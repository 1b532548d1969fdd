"""``Precision``, ``Recall`` and ``AUC``: metrics that are ratios of confusion counts.

Keras 3 semantics (K3 ``keras/src/metrics/confusion_metrics.py`` and
``metrics_utils.update_confusion_matrix_variables``):

* every prediction is compared with its own label: ``y_true`` has the shape
  of ``y_pred`` and is cast to bool (any non-zero label is a positive), and a
  prediction counts as positive at threshold ``t`` when ``y_pred > t``;
* unless ``AUC(multi_label=True)``, all columns are flattened into one binary
  problem (a softmax output with one-hot labels: every class column counts);
* the counts (weighted by ``sample_weight`` in ``update_state``: a number, one
  weight per sample, or one per prediction, shape (B, L)) accumulate
  over batches, and ``result()`` is a ratio of the totals, 0 when the
  denominator is 0 (``divide_no_nan``) -- not a mean of per-batch ratios;
* ``Precision``/``Recall``: ``thresholds=None`` means 0.5 (or, with ``top_k``,
  every one of the ``top_k`` largest predictions of a row is positive);
  ``top_k`` keeps the k largest predictions per row (ties to the lower index),
  then ``class_id`` keeps one column;
* ``AUC``: ``num_thresholds`` thresholds ``[-eps, 1/(n-1), ..., (n-2)/(n-1),
  1+eps]`` (``eps = 1e-7``), a Riemann sum over them (``'interpolation'`` is
  the trapezoid rule for ROC and Davis & Goadrich's interpolation for PR), so
  the value differs slightly from the exact area; with evenly spaced
  thresholds Keras clips predictions to [0, 1] first (its bucketing path), and
  so does fastnn.

The counts are accumulated by the compiled ``confusion_counts`` kernel (one
pass over the data, then a cumulative sum over the thresholds).
"""
import numbers

import numpy as np

from fastnn import _kernels as K
from fastnn.metrics.metric import Metric
from fastnn.utils.array_utils import predictions_2d
from fastnn.utils.validation import describe, shape_str
from fastnn.utils.weighting import as_weights

# keras.backend.epsilon(), added around AUC's thresholds; NEG_INF is Keras' metrics_utils.NEG_INF.
_EPSILON = 1e-7
NEG_INF = -1e10


def _to_list(value):
    return list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]


def _evenly_distributed(thresholds):
    """Keras' ``is_evenly_distributed_thresholds``: at least 3 thresholds spaced evenly over [0, 1]."""
    n = len(thresholds)
    if n < 3:
        return False
    return bool(np.allclose(thresholds, np.arange(n, dtype=np.float32) / (n - 1), atol=_EPSILON))


def _divide_no_nan(a, b):
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)


class _ConfusionMetric(Metric):
    """State: the confusion counts (4, T, L) float64 [tp, fp, tn, fn]; L = 1 unless multi-label."""

    direction = "up"
    multi_label = False
    rows_additive = True  # the counts are sums over rows

    def _setup(self, thresholds, clip, top_k=None, class_id=None, from_logits=False):
        self._thresholds = np.asarray(thresholds, dtype=np.float64)
        self._clip = clip
        self.top_k = top_k
        self.class_id = class_id
        self._from_logits = from_logits
        self.reset_state()

    def reset_state(self):
        if hasattr(self, "_thresholds"):
            self._counts = None

    # ------------------------------------------------------------------ updates
    def _check_targets(self, y_true, shape):
        y = np.asarray(y_true)
        if y.dtype.kind not in "biuf":
            raise ValueError(f"{type(self).__name__} '{self.name}': `y_true` must be numeric; received "
                             f"{describe(y_true)}.")
        if y.ndim == 1 and shape[1] == 1 and y.shape[0] == shape[0]:
            y = y.reshape(-1, 1)
        if y.shape != shape:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' compares each prediction with its own label, so `y_true` "
                f"must have the shape of `y_pred`, {shape_str(shape)}; received {describe(y)}. For integer "
                f"class ids and a {shape[1]}-unit output, one-hot encode the labels "
                f"(fastnn.utils.to_categorical(y, {shape[1]})).")
        return y

    def _check_sample_weight(self, sample_weight, shape):
        """None, or the weights as a float64 (B,) per-row or (B, L) per-element array: a number, (B,) or
        (B, 1) weigh each sample, (B, L) each prediction (Keras broadcasts them to y_pred's shape)."""
        if sample_weight is None:
            return None
        w = as_weights(f"{type(self).__name__} '{self.name}'", sample_weight)
        if w.ndim == 2 and w.shape[1] == 1:
            w = w[:, 0]
        if w.ndim == 0:
            w = np.full(shape[0], float(w))
        if w.shape == (shape[0],) or w.shape == shape:
            return w
        raise ValueError(f"{type(self).__name__} '{self.name}': argument `sample_weight` must be a number, one "
                         f"weight per sample ({shape[0]},) or one per prediction {shape_str(shape)}; received "
                         f"{describe(sample_weight)}.")

    def update_state(self, y_true, y_pred, sample_weight=None):
        one_d = np.ndim(y_pred) == 1
        if one_d and self.class_id is not None:
            raise ValueError(f"{type(self).__name__} '{self.name}': when `class_id` is given, `y_pred` must be a 2D "
                             f"array of shape (num_samples, num_classes); received {describe(y_pred)}.")
        y_pred = predictions_2d(y_pred)
        y = self._check_targets(y_true, y_pred.shape)
        w = self._check_sample_weight(sample_weight, y_pred.shape)
        if not np.isfinite(y.astype(np.float64, copy=False)).all():
            raise ValueError(f"{type(self).__name__} '{self.name}': `y_true` contains NaN or infinity.")
        top_k_done = False
        if one_d and self.top_k is not None:
            # Keras takes the top k along the last axis: of a 1-D y_pred, the whole vector
            y_pred = self._filter_top_k(y_pred.reshape(1, -1)).reshape(-1, 1)
            top_k_done = True
        self._accumulate(y_pred, y, w, top_k_done)

    def targets_for_model(self, y, y_loss, n_outputs, loss_name, dtype=np.float32):
        y = np.asarray(y)
        targets = np.ascontiguousarray(self._check_targets(y, (y.shape[0], n_outputs)), dtype=dtype)
        # The loss's own targets when they are the same values (no label smoothing): batches slice them once.
        if y_loss.shape == targets.shape and y_loss.dtype == targets.dtype and np.array_equal(y_loss, targets):
            return y_loss
        return targets

    def update_batch(self, y_pred, y_true, sample_weight=None):
        self._accumulate(y_pred, y_true, sample_weight)

    def _filter_top_k(self, y_pred):
        """The k largest predictions of each row stay, the others become NEG_INF (ties: the lower index
        first, as tf.math.top_k; Keras' metrics_utils._filter_top_k)."""
        if self.top_k > y_pred.shape[1]:
            raise ValueError(f"{type(self).__name__} '{self.name}': `top_k={self.top_k}` is larger than the "
                             f"{y_pred.shape[1]} predictions of a sample.")
        order = np.argsort(-y_pred, axis=1, kind="stable")[:, :self.top_k]
        kept = np.full(y_pred.shape, NEG_INF, dtype=y_pred.dtype)
        np.put_along_axis(kept, order, np.take_along_axis(y_pred, order, axis=1), axis=1)
        return kept

    def _predictions(self, y_pred, top_k_done=False):
        """Predictions as the counts see them: sigmoid (from_logits), top_k, class_id, clip."""
        if self._from_logits:
            y_pred = K.activation_forward(y_pred, "sigmoid")
        n_cols = y_pred.shape[1]
        if self.top_k is not None and not top_k_done:
            y_pred = self._filter_top_k(y_pred)
        if self.class_id is not None:
            if self.class_id >= n_cols:
                raise ValueError(f"{type(self).__name__} '{self.name}': `class_id={self.class_id}` is out of range "
                                 f"for predictions with {n_cols} classes.")
            y_pred = y_pred[:, self.class_id:self.class_id + 1]
        if self._clip:
            y_pred = np.clip(y_pred, 0.0, 1.0)
        return np.ascontiguousarray(y_pred)

    def _accumulate(self, y_pred, y_true, sample_weight, top_k_done=False):
        p = self._predictions(y_pred, top_k_done)
        y = y_true if self.class_id is None else y_true[:, self.class_id:self.class_id + 1]
        w = sample_weight  # None, (B,) per row, or (B, L) per prediction
        if w is not None and w.ndim == 2 and self.class_id is not None:
            w = w[:, self.class_id]
        n_cols = p.shape[1]
        weights_per_column = self._column_weights(n_cols)
        if not self.multi_label and n_cols > 1:
            # one binary problem over all the columns (row-major, as Keras' reshape [-1])
            if w is not None or weights_per_column is not None:
                w = (np.ones(p.shape[0]) if w is None else w)
                w = (w[:, None] if w.ndim == 1 else w) * (
                    1.0 if weights_per_column is None else weights_per_column[None, :])
                w = np.broadcast_to(w, p.shape).reshape(-1)
            p, y = p.reshape(-1, 1), np.reshape(y, (-1, 1))
            n_cols = 1
        elif weights_per_column is not None and not self.multi_label:
            w = (np.ones(p.shape[0]) if w is None else w.reshape(-1)) * weights_per_column[0]
        elif w is not None and w.ndim == 2 and n_cols == 1:
            w = w[:, 0]
        if self._counts is None:
            self._counts = np.zeros((4, self._thresholds.shape[0], n_cols))
        elif self._counts.shape[2] != n_cols:
            raise ValueError(f"{type(self).__name__} '{self.name}': received predictions with {n_cols} labels after "
                             f"{self._counts.shape[2]}; with multi_label=True every batch must have the same number.")
        if w is not None and w.ndim == 2:  # multi-label, a weight per prediction: the kernel weighs rows
            for c in range(n_cols):
                column = np.zeros((4, self._thresholds.shape[0], 1))
                K.confusion_counts(np.ascontiguousarray(y[:, c:c + 1]), np.ascontiguousarray(p[:, c:c + 1]),
                                   self._thresholds, sample_weight=np.ascontiguousarray(w[:, c]), counts=column)
                self._counts[:, :, c] += column[:, :, 0]
            return
        K.confusion_counts(y, p, self._thresholds, sample_weight=w, counts=self._counts)

    def _column_weights(self, n_cols):
        return None

    # ------------------------------------------------------------------ results
    def _totals(self):
        """tp, fp, tn, fn, each (T, L); zeros before any update."""
        counts = self._counts if self._counts is not None else np.zeros((4, self._thresholds.shape[0], 1))
        return counts[0], counts[1], counts[2], counts[3]

    @staticmethod
    def _scalar_or_list(values):
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        return float(values[0]) if values.size == 1 else values

    @property
    def thresholds(self):
        return [float(t) for t in self._thresholds]


def _check_thresholds(owner, thresholds):
    if thresholds is None:
        return None
    values = _to_list(thresholds)
    bad = [t for t in values if not isinstance(t, numbers.Real) or isinstance(t, bool) or not 0 <= t <= 1]
    if bad or not values:
        raise ValueError(f"{owner}: threshold values must be in [0, 1]; received thresholds={thresholds!r}.")
    return [float(t) for t in values]


def _check_optional_index(owner, name, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < (1 if name == "top_k" else 0):
        kind = "positive" if name == "top_k" else "non-negative"
        raise ValueError(f"{owner}: argument `{name}` must be a {kind} integer or None; received {describe(value)}.")
    return int(value)


class _PrecisionRecall(_ConfusionMetric):
    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        owner = type(self).__name__
        self.init_thresholds = thresholds
        top_k = _check_optional_index(owner, "top_k", top_k)
        class_id = _check_optional_index(owner, "class_id", class_id)
        values = _check_thresholds(owner, thresholds)
        if values is None:
            values = [0.5 if top_k is None else NEG_INF]
        self._values = values
        # the kernel takes ascending thresholds; results come back in the order given (as Keras)
        order = np.argsort(values, kind="stable")
        self._unsort = np.argsort(order, kind="stable")
        super().__init__(name=name, dtype=dtype)
        self._setup(np.asarray(values)[order], clip=_evenly_distributed(values), top_k=top_k, class_id=class_id)

    @property
    def thresholds(self):
        return list(self._values)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "thresholds": self.init_thresholds, "top_k": self.top_k,
                "class_id": self.class_id}


class Precision(_PrecisionRecall):
    """Precision ``tp / (tp + fp)`` at ``thresholds`` (one value, or one per threshold).

    Args:
        thresholds: a float or a list of floats in [0, 1]; default 0.5 (or, with ``top_k``, the
            ``top_k`` largest predictions of each row are the positives).
        top_k: only the ``top_k`` largest predictions of each row can be positive.
        class_id: compute the metric for this column only.
        name, dtype: as in Keras (``dtype`` is recorded; results are float64).
    """

    default_name = "precision"

    def result(self):
        tp, fp, _, _ = self._totals()
        return self._scalar_or_list(_divide_no_nan(tp.sum(axis=1), tp.sum(axis=1) + fp.sum(axis=1))[self._unsort])


class Recall(_PrecisionRecall):
    """Recall ``tp / (tp + fn)`` at ``thresholds``; arguments as ``Precision``."""

    default_name = "recall"

    def result(self):
        tp, _, _, fn = self._totals()
        return self._scalar_or_list(_divide_no_nan(tp.sum(axis=1), tp.sum(axis=1) + fn.sum(axis=1))[self._unsort])


_CURVES = {"roc": "ROC", "pr": "PR", "prgain": "PRGAIN"}
_SUMMATIONS = ("interpolation", "majoring", "minoring")


class AUC(_ConfusionMetric):
    """Area under the ROC or PR curve, approximated over ``num_thresholds`` thresholds (Keras 3).

    Args:
        num_thresholds: number of thresholds (> 1), 200 by default.
        curve: ``'ROC'`` (default), ``'PR'`` or ``'PRGAIN'``.
        summation_method: ``'interpolation'`` (default), ``'minoring'`` or ``'majoring'``.
        name, dtype: as in Keras.
        thresholds: explicit thresholds in [0, 1] (then ``num_thresholds`` is their number + 2).
        multi_label: one curve per label column, averaged (weighted by ``label_weights``);
            otherwise all columns are flattened into one binary problem.
        num_labels: number of label columns when ``multi_label`` (else taken from the first batch).
        label_weights: one non-negative weight per label column.
        from_logits: predictions are logits (a sigmoid is applied first).
    """

    default_name = "auc"

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation", name=None, dtype=None,
                 thresholds=None, multi_label=False, num_labels=None, label_weights=None, from_logits=False):
        curve_key = curve.lower() if isinstance(curve, str) and curve in ("roc", "ROC", "pr", "PR", "prgain",
                                                                          "PRGAIN") else None
        if curve_key is None:
            raise ValueError(f'AUC: invalid `curve` value: "{curve}". Expected values are ["PR", "ROC", "PRGAIN"].')
        if summation_method not in _SUMMATIONS + tuple(m.capitalize() for m in _SUMMATIONS):
            raise ValueError(f'AUC: invalid `summation_method` value: "{summation_method}". Expected values are '
                             '["interpolation", "majoring", "minoring"].')
        self.curve = _CURVES[curve_key]
        self.summation_method = summation_method.lower()
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            inner = sorted(_check_thresholds("AUC", thresholds))
            self.num_thresholds = len(inner) + 2
            evenly = _evenly_distributed(np.array([0.0] + inner + [1.0]))
        else:
            if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, numbers.Integral) \
                    or num_thresholds <= 1:
                raise ValueError(f"AUC: argument `num_thresholds` must be an integer > 1; received "
                                 f"num_thresholds={num_thresholds!r}.")
            self.num_thresholds = int(num_thresholds)
            inner = [(i + 1) * 1.0 / (self.num_thresholds - 1) for i in range(self.num_thresholds - 2)]
            evenly = True
        self.multi_label = bool(multi_label)
        if num_labels is not None and not self.multi_label:
            raise ValueError("AUC: `num_labels` is needed only when `multi_label` is True.")
        self.num_labels = _check_optional_index("AUC", "num_labels", num_labels)
        if label_weights is not None:
            lw = np.asarray(label_weights, dtype=np.float64)
            if lw.ndim != 1 or not np.isfinite(lw).all() or (lw < 0).any():
                raise ValueError(f"AUC: `label_weights` must be a 1-D list of non-negative numbers; received "
                                 f"{describe(label_weights)}.")
            label_weights = lw
        self.label_weights = label_weights
        super().__init__(name=name, dtype=dtype)
        self._setup([0.0 - _EPSILON] + inner + [1.0 + _EPSILON], clip=evenly, from_logits=bool(from_logits))

    def _column_weights(self, n_cols):
        if self.label_weights is None:
            return None
        if self.label_weights.shape[0] != n_cols:
            raise ValueError(f"AUC '{self.name}': `label_weights` has {self.label_weights.shape[0]} entries for "
                             f"predictions with {n_cols} labels.")
        if self.multi_label:
            return None  # multi-label: the label weights average the per-label AUCs in result()
        return self.label_weights

    def _accumulate(self, y_pred, y_true, sample_weight, top_k_done=False):
        if self.multi_label and self.num_labels is not None and y_pred.shape[1] != self.num_labels:
            raise ValueError(f"AUC '{self.name}': expected {self.num_labels} labels (num_labels); received "
                             f"predictions with {y_pred.shape[1]}.")
        super()._accumulate(y_pred, y_true, sample_weight, top_k_done)

    def _per_label(self):
        """The area of each label's curve, (L,)."""
        tp, fp, tn, fn = self._totals()
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr_auc(tp, fp, fn)
        recall = _divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _divide_no_nan(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, _divide_no_nan(tp, tp + fp)
        else:  # PRGAIN
            scale = _divide_no_nan(tp + fn, tn + fp)
            recall_gain = np.where(tp == 0, 0.0, 1.0 - scale * _divide_no_nan(fn, tp))
            x = np.maximum(recall_gain, 0.0)
            y = np.where(tp == 0, 1.0, 1.0 - scale * _divide_no_nan(fp, tp))
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return ((x[:-1] - x[1:]) * heights).sum(axis=0)

    @staticmethod
    def _interpolate_pr_auc(tp, fp, fn):
        """Davis & Goadrich (2006) interpolation of the PR curve between thresholds, as Keras computes it."""
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _divide_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = np.where(both, _divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
        with np.errstate(divide="ignore"):
            log_ratio = np.log(np.where(ratio > 0, ratio, 1.0))
        return _divide_no_nan(slope * (dtp + intercept * log_ratio), np.maximum(tp[1:] + fn[1:], 0)).sum(axis=0)

    def result(self):
        by_label = self._per_label()
        if not self.multi_label:
            return float(by_label.sum())
        if self.label_weights is None:
            return float(by_label.mean())
        return float(_divide_no_nan(np.sum(by_label * self.label_weights), np.sum(self.label_weights)))

    def get_config(self):
        config = {"name": self.name, "dtype": self.dtype, "num_thresholds": self.num_thresholds,
                  "curve": self.curve, "summation_method": self.summation_method, "multi_label": self.multi_label,
                  "num_labels": self.num_labels,
                  "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
                  "from_logits": self._from_logits}
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return config
