"""``PReLU``: ``x`` for ``x > 0``, ``alpha * x`` otherwise, with a trained ``alpha`` per feature
(keras/src/layers/activations/prelu.py: alpha shaped like one input sample, 1 along ``shared_axes``;
initialized to zeros). On the engine it is a "prelu" op whose alpha lives in the parameter arena; fastnn
shares alpha along leading axes only (``shared_axes=[1, ..., k]``, e.g. [1, 2] for (batch, H, W, C) data),
so feature j of a flattened sample uses alpha[j % C]."""
import numpy as np

from fastnn import _kernels as K
from fastnn import initializers, regularizers
from fastnn.layers.base import Layer
from fastnn.utils.validation import describe, shape_str


class PReLU(Layer):
    def __init__(self, alpha_initializer="Zeros", alpha_regularizer=None, alpha_constraint=None, shared_axes=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        if alpha_constraint is not None:
            raise ValueError(f"PReLU '{self.name}': argument `alpha_constraint` is not supported by fastnn yet; "
                             f"received {describe(alpha_constraint)}. Leave it None.")
        self.alpha_constraint = None
        if shared_axes is None:
            self.shared_axes = None
        else:
            axes = list(shared_axes) if isinstance(shared_axes, (list, tuple)) else [shared_axes]
            if any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) or a < 1 for a in axes):
                raise ValueError(f"PReLU '{self.name}': argument `shared_axes` must hold positive axis indices; "
                                 f"received {describe(shared_axes)}")
            self.shared_axes = [int(a) for a in axes]
        self.alpha = None
        self._cache = None

    def build(self, input_shape):
        param_shape = list(input_shape[1:])
        if any(d is None for d in param_shape):
            raise ValueError(f"PReLU '{self.name}' needs a fully known input shape; received {shape_str(input_shape)}.")
        shared = sorted(set(self.shared_axes or ()))
        if shared and (shared != list(range(1, len(shared) + 1)) or shared[-1] > len(param_shape)):
            raise ValueError(f"PReLU '{self.name}': fastnn shares alpha along leading axes only, shared_axes=[1, ..., k] "
                             f"with k < {len(param_shape) + 1} for inputs of shape {shape_str(input_shape)}; received "
                             f"shared_axes={self.shared_axes}.")
        for axis in shared:
            param_shape[axis - 1] = 1
        self.alpha = self.add_weight("alpha", tuple(param_shape), self.alpha_initializer,
                                     regularizer=self.alpha_regularizer)
        self.built = True

    @property
    def channels(self):
        """C: the alpha values, feature j of a flattened sample using alpha[j % C]."""
        return self.alpha.value.size

    def call(self, inputs, training=False):
        flat = inputs.reshape(inputs.shape[0], -1)
        self._cache = flat
        return K.prelu_forward(flat, self.alpha.value.reshape(-1)).reshape(inputs.shape)

    def backward(self, dy, need_dx=True):
        flat = self._cache
        dalpha = self.alpha.grad.reshape(-1)
        dx = K.prelu_backward(np.ascontiguousarray(dy.reshape(flat.shape)), flat, self.alpha.value.reshape(-1), dalpha)
        return dx.reshape(dy.shape) if need_dx else None

    def get_config(self):
        config = super().get_config()
        config.update(alpha_initializer=initializers.serialize(self.alpha_initializer),
                      alpha_regularizer=regularizers.serialize(self.alpha_regularizer), alpha_constraint=None,
                      shared_axes=self.shared_axes)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        value = config.get("alpha_initializer")
        if isinstance(value, dict):
            config["alpha_initializer"] = getattr(initializers, value["class_name"]).from_config(value["config"])
        config["alpha_regularizer"] = regularizers.get(config.get("alpha_regularizer"))
        return cls(**config)
