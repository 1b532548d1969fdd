"""``ReLU``: Keras 3's ReLU layer (keras/src/layers/activations/relu.py): ``activations.relu`` with
``max_value``, ``negative_slope`` and ``threshold``."""
from fastnn import activations
from fastnn.layers.activation import Activation
from fastnn.utils.validation import describe


def check_number(owner, name, value, low=None, allow_none=False):
    """A finite number (>= low when given), or None when allow_none: Keras' checks of these layers."""
    import numbers
    import math

    if value is None and allow_none:
        return None
    if value is None or isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or (low is not None and value < low):
        want = "a finite number" + (f" >= {low}" if low is not None else "") + (" or None" if allow_none else "")
        raise ValueError(f"{owner}: argument `{name}` must be {want}; received {describe(value)}")
    return float(value)


class ReLU(Activation):
    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__("relu", **kwargs)
        owner = f"ReLU '{self.name}'"
        self.max_value = check_number(owner, "max_value", max_value, 0.0, allow_none=True)
        self.negative_slope = check_number(owner, "negative_slope", negative_slope, 0.0)
        self.threshold = check_number(owner, "threshold", threshold)

    @property
    def activation_spec(self):
        return activations.relu_spec(self.negative_slope, self.max_value, self.threshold)

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        config.update(max_value=self.max_value, negative_slope=self.negative_slope, threshold=self.threshold)
        return config
