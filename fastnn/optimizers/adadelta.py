"""Adadelta with Keras 3 defaults (learning_rate 0.001; old Keras 2.3 and PyTorch use 1.0)."""
from fastnn import _kernels as K
from fastnn.optimizers.base import Optimizer


class Adadelta(Optimizer):
    kind = "adadelta"
    slot_names = ("accumulated_grad", "accumulated_delta")

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, name="adadelta", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho = self._check_float("rho", rho, 0.0, 1.0)
        self.epsilon = self._check_float("epsilon", epsilon, 0.0, 1.0)

    def hyper(self):
        return {"rho": self.rho, "epsilon": self.epsilon}

    def update_step(self, params, grads, learning_rate):
        accumulated_grad, accumulated_delta = self.slots[:2]
        K.adadelta_update(params, grads, accumulated_grad, accumulated_delta, learning_rate, self.rho,
                          self.epsilon)
