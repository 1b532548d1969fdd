"""A layer weight: a named NumPy array plus its gradient buffer.

When a layer is part of a built model, ``value`` and ``grad`` are views into
the model's parameter and gradient arenas (one contiguous buffer each, so an
optimizer update is one flat kernel call); a stand-alone layer owns them.
"""
import warnings

import numpy as np

from fastnn.utils.validation import as_array, describe, shape_str


class Weight:
    def __init__(self, name, value, trainable=True, regularizer=None):
        self.name = name
        self.value = value
        self.grad = np.zeros_like(value)
        self.trainable = trainable
        # A fastnn.regularizers.Regularizer (or None): the trainer adds its penalty to the loss
        # and its gradient to ``grad`` while the weight is trainable (Keras' variable.regularizer).
        self.regularizer = regularizer

    @property
    def shape(self):
        return self.value.shape

    @property
    def dtype(self):
        return self.value.dtype

    @property
    def size(self):
        return self.value.size

    @property
    def nbytes(self):
        return self.value.nbytes

    def numpy(self):
        """A copy of the current value (like ``tf.Variable.numpy()``)."""
        return self.value.copy()

    def checked(self, value):
        """``value`` as an array this weight can take: numeric, of its shape. Raises naming the weight."""
        array = as_array(value, f"The value for weight '{self.name}'")
        if array.dtype.kind not in "biuf":
            raise ValueError(f"Cannot assign to weight '{self.name}': expected a numeric array of shape "
                             f"{shape_str(self.value.shape)}; received {describe(value)}.")
        if array.shape != self.value.shape:
            raise ValueError(
                f"Cannot assign to weight '{self.name}': expected shape {shape_str(self.value.shape)}, "
                f"received {shape_str(array.shape)}."
            )
        return array

    def assign(self, value):
        self.value[...] = self.checked(value)

    def bind(self, value, grad):
        """Move this weight into arena views ``value`` and ``grad`` (keeps the current value)."""
        value[...] = self.value.reshape(value.shape)
        self.value = value
        self.grad = grad

    def __array__(self, dtype=None, copy=None):
        return self.value if dtype is None else self.value.astype(dtype)

    def __repr__(self):
        return f"<Weight '{self.name}' shape={shape_str(self.shape)} dtype={self.dtype}>"


def set_values(weights, values, owner):
    """``set_weights``: check every value first (a bad one leaves all weights unchanged), then assign.

    NaN and infinite values are warned about, not refused: Keras accepts them, and they have uses (a -inf
    bias masks a class out of a softmax; tests set NaN weights on purpose), but a model given them by
    accident predicts NaN everywhere, so it must not pass silently (issue 15).
    """
    arrays = [weight.checked(value) for weight, value in zip(weights, values)]
    with np.errstate(over="ignore"):  # float64 values beyond float32's range: reported below, as inf
        cast = [np.asarray(array, dtype=weight.dtype) for weight, array in zip(weights, arrays)]
    for weight, source, array in zip(weights, arrays, cast):
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            bad = ~np.isfinite(array)
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            why = (f"{source[first]:g} is too large for {array.dtype} and becomes {array[first]}"
                   if source.dtype.kind != "f" or np.isfinite(source[first]) else f"{array[first]}")
            warnings.warn(f"{owner}: the value for weight '{weight.name}' holds {int(bad.sum())} NaN or infinite "
                          f"entries of {array.size} (the first at index {first}: {why}). Outputs and "
                          "gradients that depend on them will be NaN.", UserWarning, stacklevel=3)
    arrays = cast
    for weight, array in zip(weights, arrays):
        weight.value[...] = array
