"""Adam, Keras 3 formulation: bias correction folded into the step size, epsilon "hat"."""
from fastnn import _kernels as K
from fastnn.optimizers.base import Optimizer


class Adam(Optimizer):
    kind = "adam"
    slot_names = ("m", "v", "vhat")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 name="adam", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = self._check_float("beta_1", beta_1, 0.0, 1.0)
        self.beta_2 = self._check_float("beta_2", beta_2, 0.0, 1.0)
        self.epsilon = self._check_float("epsilon", epsilon, 0.0, float("inf"))
        self.amsgrad = self._check_bool("amsgrad", amsgrad)

    def hyper(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon, "amsgrad": self.amsgrad}

    def _own_slots(self):
        return type(self).slot_names if self.amsgrad else ("m", "v")

    def update_step(self, params, grads, learning_rate):
        m, v, vhat = self.slots[:3]
        K.adam_update(params, grads, m, v, vhat, learning_rate, self.beta_1, self.beta_2, self.epsilon,
                      self.iterations + 1, self.amsgrad)
