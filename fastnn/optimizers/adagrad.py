"""Adagrad (Duchi et al. 2011), Keras 3: accumulator (from 0.1) += g^2; w -= lr g / sqrt(accumulator + eps)."""
from fastnn import _kernels as K
from fastnn.optimizers.base import Optimizer


class Adagrad(Optimizer):
    kind = "adagrad"
    slot_names = ("accumulator",)

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, name="adagrad", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.initial_accumulator_value = self._check_float("initial_accumulator_value", initial_accumulator_value,
                                                           0.0, float("inf"))
        self.epsilon = self._check_float("epsilon", epsilon, 0.0, float("inf"))
        self.slot_initial = {"accumulator": self.initial_accumulator_value}

    def hyper(self):
        return {"epsilon": self.epsilon}

    def get_config(self):
        return dict(super().get_config(), initial_accumulator_value=self.initial_accumulator_value)

    def update_step(self, params, grads, learning_rate):
        K.adagrad_update(params, grads, self.slots[0], learning_rate, self.epsilon)
