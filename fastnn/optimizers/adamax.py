"""Adamax (Kingma & Ba 2014, section 7.1), Keras 3: m += (g - m)(1 - b1); u = max(b2 u, |g|);
w -= lr m / ((1 - b1^t)(u + eps))."""
from fastnn import _kernels as K
from fastnn.optimizers.base import Optimizer


class Adamax(Optimizer):
    kind = "adamax"
    slot_names = ("m", "u")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, name="adamax", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = self._check_float("beta_1", beta_1, 0.0, 1.0)
        self.beta_2 = self._check_float("beta_2", beta_2, 0.0, 1.0)
        self.epsilon = self._check_float("epsilon", epsilon, 0.0, float("inf"))

    def hyper(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}

    def update_step(self, params, grads, learning_rate):
        m, u = self.slots[:2]
        K.adamax_update(params, grads, m, u, learning_rate, self.beta_1, self.beta_2, self.epsilon,
                        self.iterations + 1)
