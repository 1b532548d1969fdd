"""``ELU``: ``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise (keras/src/layers/activations/elu.py,
alpha=1.0)."""
from fastnn.layers.activation import Activation
from fastnn.layers.relu import check_number


class ELU(Activation):
    def __init__(self, alpha=1.0, **kwargs):
        super().__init__("elu", **kwargs)
        self.alpha = check_number(f"ELU '{self.name}'", "alpha", alpha)

    @property
    def activation_spec(self):
        return ("elu", self.alpha)

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        config["alpha"] = self.alpha
        return config
