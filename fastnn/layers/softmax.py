"""``Softmax``: softmax over the last axis (keras/src/layers/activations/softmax.py, axis=-1; fastnn supports
the last axis only)."""
import numbers

from fastnn.layers.activation import Activation
from fastnn.utils.validation import describe


class Softmax(Activation):
    def __init__(self, axis=-1, **kwargs):
        super().__init__("softmax", **kwargs)
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise ValueError(f"Softmax '{self.name}': argument `axis` must be an integer; received {describe(axis)}")
        self.axis = int(axis)

    def build(self, input_shape):
        if self.axis not in (-1, len(input_shape) - 1):
            raise ValueError(f"Softmax '{self.name}': fastnn normalises over the last axis only (axis=-1); "
                             f"received axis={self.axis} for inputs of rank {len(input_shape)}.")
        self.built = True

    def call(self, inputs, training=False, logits=False, mask=None):
        if mask is not None:
            raise ValueError(f"Softmax '{self.name}': argument `mask` is not supported by fastnn; received "
                             f"{describe(mask)}.")
        return super().call(inputs, training=training, logits=logits)

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        config["axis"] = self.axis
        return config
