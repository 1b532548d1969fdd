"""RMSprop, Keras 3 formulation: epsilon inside the square root (PyTorch puts it outside)."""
from fastnn import _kernels as K
from fastnn.optimizers.base import Optimizer


class RMSprop(Optimizer):
    kind = "rmsprop"
    slot_names = ("velocity", "momentum", "average_gradient")

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 name="rmsprop", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho = self._check_float("rho", rho, 0.0, 1.0)
        self.momentum = self._check_float("momentum", momentum, 0.0, 1.0, high_inclusive=True)
        self.epsilon = self._check_float("epsilon", epsilon, 0.0, 1.0)
        self.centered = self._check_bool("centered", centered)

    def hyper(self):
        return {"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon, "centered": self.centered}

    def _own_slots(self):
        names = ["velocity"]
        if self.momentum > 0:
            names.append("momentum")
        if self.centered:
            names.append("average_gradient")
        return tuple(names)

    def update_step(self, params, grads, learning_rate):
        velocity, momentum, average_gradient = self.slots[:3]
        K.rmsprop_update(params, grads, velocity, momentum, average_gradient, learning_rate, self.rho,
                         self.momentum, self.epsilon, self.centered)
