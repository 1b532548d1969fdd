"""Nadam (Dozat 2015), Keras 3: Adam with Nesterov momentum and the momentum schedule
u_t = beta_1 (1 - 0.5 * 0.96^t) (its running product is recomputed from t: _kernels/_optim_scalars.py)."""
from fastnn import _kernels as K
from fastnn.optimizers.base import Optimizer


class Nadam(Optimizer):
    kind = "nadam"
    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, name="nadam", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = self._check_float("beta_1", beta_1, 0.0, 1.0)
        self.beta_2 = self._check_float("beta_2", beta_2, 0.0, 1.0)
        self.epsilon = self._check_float("epsilon", epsilon, 0.0, float("inf"))

    def hyper(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}

    def update_step(self, params, grads, learning_rate):
        m, v = self.slots[:2]
        K.nadam_update(params, grads, m, v, learning_rate, self.beta_1, self.beta_2, self.epsilon,
                       self.iterations + 1)
