"""What fit, evaluate and predict receive, checked and cast once per call: inputs (arrays, or sparse
matrices whose structure is checked first), targets, sample and class weights, each error naming the
argument and the fix; and CallData, one call's validated arrays."""
import math
import numbers

import numpy as np

from fastnn.utils.sparse_utils import check_structure, describe_sparse, is_sparse
from fastnn.utils.validation import as_array, describe, shape_str


def as_data_array(name, value):
    if value is None:
        raise ValueError(f"Argument `{name}` is required; received None.")
    if is_sparse(value):
        raise ValueError(f"Argument `{name}` is a scipy.sparse matrix ({describe_sparse(value)}); fastnn takes "
                         f"sparse inputs `x` only. Pass `{name}` as a dense array, e.g. `{name}.toarray()`.")
    array = as_array(value, f"Argument `{name}`")
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise ValueError(f"Argument `{name}` must be numeric array-like data; received {describe(value)}.")
    if array.ndim == 0:
        raise ValueError(f"Argument `{name}` must have a batch dimension; received a scalar {describe(value)}.")
    if array.shape[0] == 0:
        raise ValueError(f"Expected `{name}` to be non-empty; received {describe(array)}.")
    return array


def as_input(name, x):
    """x as an array, or a sparse matrix whose structure was checked before anything (scipy included) reads
    it."""
    if is_sparse(x):
        check_structure(x, name)
        return x
    return as_data_array(name, x)


def check_finite(name, array):
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int(np.argwhere(~np.isfinite(array.reshape(array.shape[0], -1)))[0, 0])
        raise ValueError(f"Argument `{name}` contains NaN or infinity (first at sample {bad}). Clean or impute "
                         "the data before training.")


def cast_data(name, array, dtype):
    """``array`` as a C-contiguous ``dtype`` array with finite values. The check runs on the cast values: a
    float64 value beyond float32's range would otherwise become inf there, with only NumPy's overflow
    warning, and the loss NaN."""
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(array, dtype=dtype)
    if out.dtype.kind == "f" and not np.isfinite(out).all():
        bad = int(np.argwhere(~np.isfinite(out.reshape(out.shape[0], -1)))[0, 0])
        if array.dtype.kind != "f" or np.isfinite(array[bad]).all():
            raise too_large(name, out.dtype, bad)
        check_finite(name, array)
    return out


def too_large(name, dtype, bad):
    return ValueError(f"Argument `{name}` holds values too large for {dtype} (beyond {np.finfo(dtype).max:.4g}; "
                      f"first at sample {bad}), the dtype the model computes in. Scale the data.")


def check_cardinality(x, y):
    if x.shape[0] != y.shape[0]:
        raise ValueError("Data cardinality is ambiguous. Make sure all arrays contain the same number of "
                         f"samples. x sizes: {x.shape[0]}, y sizes: {y.shape[0]}.")


def sample_weights(value, n, name="sample_weight"):
    """``sample_weight`` as a float64 (n,) array: one finite, non-negative weight per sample."""
    w = as_data_array(name, value)
    if w.ndim == 2 and w.shape[1] == 1:
        w = w[:, 0]
    if w.ndim != 1:
        raise ValueError(f"Argument `{name}` must hold one weight per sample, of shape (samples,) or "
                         f"(samples, 1); received {describe(w)}. fastnn does not support per-output or "
                         "per-timestep weights.")
    if w.shape[0] != n:
        raise ValueError("Data cardinality is ambiguous. Make sure all arrays contain the same number of "
                         f"samples. x sizes: {n}, y sizes: {n}, {name} sizes: {w.shape[0]}.")
    w = np.ascontiguousarray(w, dtype=np.float64)
    check_finite(name, w)
    if (w < 0).any():
        bad = int(np.argmax(w < 0))
        raise ValueError(f"Argument `{name}` must be non-negative; received {w[bad]:g} at sample {bad}.")
    return w


def class_weights(class_weight, y):
    """Per-sample weights from a ``class_weight`` dict (class id -> weight) and the targets ``y``.

    Class ids as Keras 3 reads them (K3 data_adapter_utils.class_weight_to_sample_weights):
    the argmax of one-hot (or probability) targets, else the rounded label.
    """
    if not isinstance(class_weight, dict):
        raise ValueError("Argument `class_weight` must be a dict mapping class indices (integers) to weights "
                         f"(floats), e.g. {{0: 1.0, 1: 5.0}}; received {describe(class_weight)}.")
    weights = {}
    for key, value in class_weight.items():
        if isinstance(key, (bool, np.bool_)) or not isinstance(key, numbers.Integral):
            raise ValueError(f"`class_weight` keys must be integer class indices; received the key {key!r} "
                             f"(of type {type(key).__name__}).")
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
                or not math.isfinite(value) or value < 0:
            raise ValueError(f"`class_weight` values must be finite non-negative numbers; received "
                             f"{value!r} for class {key}.")
        weights[int(key)] = float(value)
    labels = np.asarray(y)
    if labels.ndim > 1:
        labels = labels.argmax(axis=-1) if labels.shape[-1] != 1 else labels[..., 0]
    if labels.ndim != 1:
        raise ValueError(f"`class_weight` needs one class per sample; received targets of shape "
                         f"{shape_str(np.shape(y))}.")
    classes = np.round(labels).astype(np.int64) if labels.dtype.kind == "f" else labels.astype(np.int64)
    present, inverse = np.unique(classes, return_inverse=True)
    missing = [int(c) for c in present if int(c) not in weights]
    if missing:
        # tf.keras 2.x raised here too; Keras 3 silently gives such classes the weight 1.0.
        raise ValueError(f"`class_weight` has no weight for the class(es) {missing} found in `y` (its keys are "
                         f"{sorted(weights)}). Give every class a weight, e.g. "
                         f"{ {c: 1.0 for c in missing[:3]} } for an unweighted class.")
    return np.array([weights[int(c)] for c in present], dtype=np.float64)[inverse.reshape(-1)]


class CallData:
    """One call's validated arrays: inputs, loss targets, per-sample weights (or None), and the
    targets each compiled metric reads (the same array object when metrics share them)."""

    __slots__ = ("x", "y", "sample_weight", "metric_targets")

    def __init__(self, x, y, sample_weight, metric_targets):
        self.x, self.y, self.sample_weight, self.metric_targets = x, y, sample_weight, metric_targets

    @property
    def n(self):
        return self.x.shape[0]
