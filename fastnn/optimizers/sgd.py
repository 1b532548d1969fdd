"""Stochastic gradient descent with optional (Nesterov) momentum, Keras 3 formulation."""
from fastnn import _kernels as K
from fastnn.optimizers.base import Optimizer


class SGD(Optimizer):
    kind = "sgd"
    slot_names = ("momentum",)

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, name="SGD", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = self._check_float("momentum", momentum, 0.0, 1.0, high_inclusive=True)
        self.nesterov = self._check_bool("nesterov", nesterov)

    def hyper(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def _own_slots(self):
        return type(self).slot_names if self.momentum != 0 else ()

    def update_step(self, params, grads, learning_rate):
        K.sgd_update(params, grads, self.slots[0], learning_rate, self.momentum, self.nesterov)
