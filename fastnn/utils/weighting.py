"""Sample weights and reductions, as Keras 3 applies them to losses and mean metrics.

Pure NumPy bookkeeping on the per-sample values the loss and metric kernels return (float64):

* ``reduce_weighted_values``: a loss's reduction (K3 ``keras/src/losses/loss.py``): the weights are
  brought to the rank of the losses (``squeeze_or_expand_to_same_rank``), multiplied in with NumPy
  broadcasting, then ``"sum"`` sums, ``"sum_over_batch_size"``/``"mean"`` divide that sum by the number
  of loss values, ``"mean_with_sample_weight"`` by the sum of the weights, and ``None``/``"none"`` return
  the weighted values;
* ``reduce_to_samplewise_values``: a mean metric's update (K3 ``keras/src/metrics/reduction_metrics.py``):
  per-sample weighted values and per-sample weights, whose sums are the metric's total and count.
"""
import numpy as np

from fastnn.utils.validation import describe, shape_str

REDUCTIONS = ("sum_over_batch_size", "sum", None, "none", "mean", "mean_with_sample_weight")


def standardize_reduction(owner, reduction):
    """``reduction`` as Keras 3 accepts it; tf.keras' ``"auto"`` means ``"sum_over_batch_size"``."""
    if reduction == "auto":
        return "sum_over_batch_size"
    if not (reduction is None or isinstance(reduction, str)) or reduction not in REDUCTIONS:
        raise ValueError(f"{owner}: invalid value for argument `reduction`. Expected one of "
                         f"{list(REDUCTIONS)}; received reduction={reduction!r}.")
    return reduction


def as_weights(owner, sample_weight):
    """``sample_weight`` (a number or an array) as a finite float64 array; raise naming the argument."""
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"{owner}: argument `sample_weight` must be a number or a numeric array; received "
                        f"{describe(sample_weight)}.")
    w = w.astype(np.float64)
    if not np.isfinite(w).all():
        raise ValueError(f"{owner}: argument `sample_weight` must be finite; received {describe(sample_weight)} "
                         "containing NaN or infinity.")
    return w


def squeeze_or_expand_to_same_rank(x1, x2, expand_rank_1=True):
    """Keras' rule: when the ranks differ by one and the longer array ends in a unit axis, squeeze it (or,
    when the shorter one has rank 1, give that one a unit axis instead)."""
    r1, r2 = x1.ndim, x2.ndim
    if r1 == r2:
        return x1, x2
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = x2[..., None]
        else:
            x1 = x1[..., 0]
    if r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = x1[..., None]
        else:
            x2 = x2[..., 0]
    return x1, x2


def _broadcast_error(owner, weights, values, what):
    return ValueError(f"{owner}: argument `sample_weight` of shape {shape_str(weights.shape)} cannot be broadcast "
                      f"to the {what} of shape {shape_str(values.shape)}: give one weight per sample "
                      f"({values.shape[0] if values.ndim else 1},), one per sample as a column, or one per "
                      f"{what[:-1] if what.endswith('s') else what} (shape {shape_str(values.shape)}).")


def reduce_weighted_values(owner, values, sample_weight=None, reduction="sum_over_batch_size"):
    """A loss's reduction of its per-sample ``values`` (float64), weighted by ``sample_weight``."""
    values = np.asarray(values, dtype=np.float64)
    w = None
    if sample_weight is not None:
        w = as_weights(owner, sample_weight)
        values, w = squeeze_or_expand_to_same_rank(values, w)
        try:
            values = values * w
        except ValueError:
            raise _broadcast_error(owner, w, values, "losses") from None
    if reduction is None or reduction == "none" or values.shape in ((), (0,)):
        return values
    total = float(values.sum())
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and w is not None:
        # The sum of the weights as given, not broadcast: a scalar weight 2.3 divides by 2.3, so the result
        # is then the *sum* of the losses. Keras 3 does this and documents exactly this ("divides by the sum
        # of the sample weights"); fastnn follows it.
        divisor = float(w.sum())
        return total / divisor if divisor != 0 else 0.0  # divide_no_nan
    return total / values.size


def reduce_to_samplewise_values(owner, values, sample_weight):
    """(per-sample weighted values, per-sample weights or None) of a mean metric's update: the weights are
    brought to the values' rank, values with more axes than the weights are averaged down to them, the
    weights broadcast to the values and multiplied in; weights with more than one axis are then averaged
    per sample, and so are the values."""
    values = np.asarray(values, dtype=np.float64)
    w = None
    if sample_weight is not None:
        w = as_weights(owner, sample_weight)
        values, w = squeeze_or_expand_to_same_rank(values, w)
        weight_ndim = w.ndim
        if values.ndim > weight_ndim:
            values = values.mean(axis=tuple(range(weight_ndim, values.ndim)))
        try:
            w = np.broadcast_to(w, values.shape)
        except ValueError:
            raise _broadcast_error(owner, w, values, "metric values") from None
        values = values * w
        if weight_ndim > 1:
            w = w.mean(axis=tuple(range(1, weight_ndim)))
    if values.ndim > 1:
        values = values.mean(axis=tuple(range(1, values.ndim)))
    return values, w
