"""``LeakyReLU``: ``x`` for ``x > 0``, ``negative_slope * x`` otherwise. Keras 3's layer default is 0.3
(keras/src/layers/activations/leaky_relu.py; the function ``activations.leaky_relu`` defaults to 0.2), and
it still accepts tf.keras 2's ``alpha`` with a warning."""
import warnings

from fastnn.layers.activation import Activation
from fastnn.layers.relu import check_number


class LeakyReLU(Activation):
    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
            warnings.warn("Argument `alpha` is deprecated. Use `negative_slope` instead.", stacklevel=2)
        super().__init__("leaky_relu", **kwargs)
        self.negative_slope = check_number(f"LeakyReLU '{self.name}'", "negative_slope", negative_slope, 0.0)

    @property
    def activation_spec(self):
        return ("leaky_relu", self.negative_slope)

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        config["negative_slope"] = self.negative_slope
        return config
