"""A layer weight: a named NumPy array plus its gradient buffer.

When a layer is part of a built model, ``value`` and ``grad`` are views into
the model's parameter and gradient arenas (one contiguous buffer each, so an
optimizer update is one flat kernel call); a stand-alone layer owns them.
"""
import numpy as np

from fastnn.utils.validation import shape_str


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

    def assign(self, value):
        value = np.asarray(value)
        if value.shape != self.value.shape:
            raise ValueError(
                f"Cannot assign to weight '{self.name}': expected shape {shape_str(self.value.shape)}, "
                f"received {shape_str(value.shape)}."
            )
        self.value[...] = value

    def bind(self, value, grad):
        """Move this weight into arena views ``value`` and ``grad`` (keeps the current value)."""
        value[...] = self.value.reshape(value.shape)
        self.value = value
        self.grad = grad

    def __array__(self, dtype=None, copy=None):
        return self.value if dtype is None else self.value.astype(dtype)

    def __repr__(self):
        return f"<Weight '{self.name}' shape={shape_str(self.shape)} dtype={self.dtype}>"
