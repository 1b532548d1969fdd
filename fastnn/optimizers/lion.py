"""Lion (Chen et al. 2023), Keras 3: w -= lr sign(b1 m + (1 - b1) g); m = b2 m + (1 - b2) g. Its steps are
+-lr, so it wants a rate 3-10x smaller than AdamW's (Keras' docstring)."""
from fastnn import _kernels as K
from fastnn.optimizers.base import Optimizer


class Lion(Optimizer):
    kind = "lion"
    slot_names = ("momentum",)

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, name="lion", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if isinstance(beta_1, bool) or not isinstance(beta_1, (int, float)) or beta_1 <= 0 or beta_1 > 1:
            raise ValueError("Argument `beta_1` must be in the [0, 1] range. Otherwise, the optimizer degenerates "
                             f"to SignSGD. Received: beta_1={beta_1}.")
        self.beta_1 = float(beta_1)
        self.beta_2 = self._check_float("beta_2", beta_2, 0.0, 1.0, high_inclusive=True)

    def hyper(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2}

    def update_step(self, params, grads, learning_rate):
        K.lion_update(params, grads, self.slots[0], learning_rate, self.beta_1, self.beta_2)
