"""Numerical helpers with Keras' ``keras.utils`` API."""
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
