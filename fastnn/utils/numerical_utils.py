"""Numerical helpers with Keras' ``keras.utils`` API: ``to_categorical``, ``normalize``."""
import numpy as np

from fastnn.utils.validation import check_positive_int, describe, shape_str


def to_categorical(x, num_classes=None):
    """Convert integer class labels to one-hot rows (Keras ``keras.utils.to_categorical``).

    Args:
        x: class indices in ``[0, num_classes)``, of any shape; integer, bool or
            float values that are whole numbers. A trailing axis of size 1 is
            dropped first, as in Keras 3 (``(N, 1)`` labels give ``(N, C)``).
        num_classes: number of classes; None infers ``max(x) + 1``.

    Returns:
        A float32 array of shape ``x.shape + (num_classes,)`` (after dropping a
        trailing 1) with a single 1 per row. Keras 3 returns float64 here;
        fastnn computes in float32, as tf.keras' default ``dtype="float32"`` did.
    """
    owner = "to_categorical"
    num_classes = check_positive_int(owner, "num_classes", num_classes, allow_none=True)
    labels = np.asarray(x)
    if labels.dtype == bool:
        labels = labels.astype(np.intp)
    elif np.issubdtype(labels.dtype, np.floating):
        bad = ~np.isfinite(labels) | (labels != np.round(labels))
        if bad.any():
            raise ValueError(
                f"{owner}: argument `x` must hold integer class indices; received the value "
                f"{labels[bad].flat[0].item()!r} in {describe(labels)}."
            )
    elif not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{owner}: argument `x` must hold integer class indices; received {describe(x)}.")

    if labels.ndim > 1 and labels.shape[-1] == 1:
        labels = labels.reshape(labels.shape[:-1])
    if labels.size:
        low, high = labels.min(), labels.max()
        if low < 0:
            raise ValueError(
                f"{owner}: argument `x` must hold class indices >= 0; received the label {int(low)} in "
                f"{describe(np.asarray(x))}."
            )
        if num_classes is None:
            num_classes = int(high) + 1
        elif high >= num_classes:
            raise ValueError(
                f"{owner}: argument `x` must hold class indices below num_classes={num_classes}; received "
                f"the label {int(high)} in {describe(np.asarray(x))}. Pass num_classes={int(high) + 1} or "
                "larger, or check the labels."
            )
    elif num_classes is None:
        raise ValueError(
            f"{owner}: cannot infer `num_classes` from an empty `x` of shape {shape_str(labels.shape)}; "
            "pass num_classes."
        )

    flat = labels.reshape(-1).astype(np.intp)
    out = np.zeros((flat.size, num_classes), dtype=np.float32)
    out[np.arange(flat.size), flat] = 1.0
    return out.reshape(labels.shape + (num_classes,))


def normalize(x, axis=-1, order=2):
    """``x`` divided by its ``order``-norm along ``axis`` (Keras ``keras.utils.normalize``); all-zero
    slices stay zero (their norm is taken as 1, as in Keras).

    Args:
        x: an array (or array-like); integer inputs give float64, as NumPy's division does.
        axis: the axis to normalise along (default -1, the last); an int.
        order: the norm's order, as ``np.linalg.norm``'s ``ord`` (default 2, the Euclidean norm).

    Returns:
        A new array of ``x``'s shape. Keras 3 puts the norm back with ``axis or -1``, so for
        ``axis=0`` it divides along the wrong axis (or fails to broadcast); fastnn keeps the axis given.
    """
    x = np.asarray(x)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -max(x.ndim, 1) <= axis < max(
            x.ndim, 1):
        raise ValueError(f"normalize: argument `axis` must be an integer in [-{max(x.ndim, 1)}, "
                         f"{max(x.ndim, 1) - 1}] for an input of shape {shape_str(x.shape)}; received "
                         f"{describe(axis)}")
    if x.ndim == 0:
        x = x.reshape(1)
    norm = np.linalg.norm(x, ord=order, axis=int(axis), keepdims=True)
    norm[norm == 0] = 1
    return x / norm
