"""``InputLayer`` and ``Input``: declare the input shape of a Sequential model.

fastnn has no functional API, so ``Input(shape=...)`` returns an
``InputLayer`` (Keras returns a symbolic tensor); both work as the first item
of ``Sequential([...])``, which is how tutorials use them.
"""
from fastnn.layers.base import Layer
from fastnn.utils.validation import describe


class InputLayer(Layer):
    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, **kwargs):
        if shape is not None:
            kwargs["input_shape"] = shape
        if kwargs.get("input_shape") is None and kwargs.get("batch_input_shape") is None:
            raise ValueError(f"InputLayer: argument `shape` is required (e.g. shape=(784,)); received {shape!r}")
        super().__init__(name=name, dtype=dtype, batch_size=batch_size, **kwargs)
        self.built = True

    def build_for(self, input_shape):
        self.input_shape = self.output_shape = (None,) + tuple(self.batch_input_shape[1:])
        return self.output_shape

    def call(self, inputs, training=False):
        return inputs

    def backward(self, dy, need_dx=True):
        return dy


def Input(shape=None, batch_size=None, dtype=None, name=None, **kwargs):
    """Declare a model input: ``Sequential([Input(shape=(784,)), Dense(10)])``."""
    if shape is None and "batch_shape" not in kwargs:
        raise ValueError(f"Input: argument `shape` is required (e.g. shape=(784,)); received {describe(shape)}")
    if "batch_shape" in kwargs:
        kwargs["batch_input_shape"] = kwargs.pop("batch_shape")
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name, **kwargs)
