"""``Flatten``: (batch, d1, d2, ...) -> (batch, d1 * d2 * ...)."""
import numpy as np

from fastnn.layers.base import Layer
from fastnn.utils.sparse_utils import CSRRows


class Flatten(Layer):
    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last", "channels_first"):
            raise ValueError(f"Flatten '{self.name}': `data_format` must be 'channels_last' or "
                             f"'channels_first'; received {data_format!r}")
        self.data_format = data_format
        self._input_batch_shape = None

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else int(np.prod(rest, dtype=np.int64))
        return (input_shape[0], size)

    def call(self, inputs, training=False):
        if isinstance(inputs, CSRRows):  # already (batch, features)
            self._input_batch_shape = None
            return inputs
        self._input_batch_shape = inputs.shape
        if self.data_format == "channels_first" and inputs.ndim > 2:
            # Keras moves the channel axis last before flattening.
            inputs = np.moveaxis(inputs, 1, -1)
        return np.ascontiguousarray(inputs).reshape(inputs.shape[0], -1)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        shape = self._input_batch_shape
        if shape is None:
            return dy
        if self.data_format == "channels_first" and len(shape) > 2:
            moved = (shape[0],) + tuple(shape[2:]) + (shape[1],)
            return np.ascontiguousarray(np.moveaxis(dy.reshape(moved), -1, 1))
        return dy.reshape(shape)

    def get_config(self):
        config = super().get_config()
        config["data_format"] = self.data_format
        return config
