"""``BatchNormalization``: ``gamma * (x - mean) / sqrt(var + epsilon) + beta`` per feature (the last axis).

Keras 3 semantics (K3 ``layers/normalization/batch_normalization.py``):

* training (``fit``, or ``training=True``) and ``trainable``: mean and biased
  variance of the current batch, and the moving statistics are updated with
  ``moving = moving * momentum + batch * (1 - momentum)``;
* otherwise (evaluate, predict, ``model(x)``, or a frozen layer): the moving
  statistics;
* weights in the order gamma (``scale=True``), beta (``center=True``),
  moving_mean, moving_variance; the last two are non-trainable, so the
  trainer never changes them in an optimizer step and ``summary()`` counts
  them as "Non-trainable params".

fastnn normalizes the last axis only (``axis=-1``, which is what follows a
Dense layer); any rank >= 2 works, the statistics are taken over every
other axis. Other axes (``axis=1`` on channels-first images) are rejected.
"""
import numbers

import numpy as np

from fastnn import _kernels as K
from fastnn import initializers
from fastnn.layers.base import Layer
from fastnn.utils.validation import check_in_range, describe, shape_str

_INITIALIZERS = ("beta_initializer", "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer")


class BatchNormalization(Layer):
    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 synchronized=False, **kwargs):
        super().__init__(**kwargs)
        owner = f"BatchNormalization '{self.name}'"
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise ValueError(f"{owner}: argument `axis` must be an integer; received {describe(axis)}.")
        self.axis = int(axis)
        self.momentum = check_in_range(owner, "momentum", momentum, 0.0, 1.0)
        self.epsilon = check_in_range(owner, "epsilon", epsilon, 0.0, np.inf, low_inclusive=False)
        for name, value in (("center", center), ("scale", scale), ("synchronized", synchronized)):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{owner}: argument `{name}` must be True or False; received {describe(value)}.")
        self.center, self.scale = bool(center), bool(scale)
        if synchronized:
            # Keras 3 raises the same for every backend but TensorFlow.
            raise ValueError(f"{owner}: argument synchronized=True is only supported with the TensorFlow "
                             "backend (it synchronizes statistics across devices); fastnn runs on one CPU.")
        self.synchronized = False
        for name, value in (("beta_regularizer", beta_regularizer), ("gamma_regularizer", gamma_regularizer),
                            ("beta_constraint", beta_constraint), ("gamma_constraint", gamma_constraint)):
            if value is not None:
                raise ValueError(f"{owner}: argument `{name}` is not supported by fastnn yet; received "
                                 f"{describe(value)}.")
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None
        self._cache = None

    def build(self, input_shape):
        rank = len(input_shape)
        if rank < 2 or input_shape[-1] is None:
            raise ValueError(f"BatchNormalization '{self.name}' expects input of shape (None, ..., features) with "
                             f"a known number of features; received {shape_str(input_shape)}.")
        if self.axis not in (-1, rank - 1):
            raise ValueError(f"BatchNormalization '{self.name}': fastnn normalizes the last axis only (axis=-1 "
                             f"or {rank - 1} here); received axis={self.axis} for input of shape "
                             f"{shape_str(input_shape)}.")
        shape = (input_shape[-1],)
        if self.scale:
            self.gamma = self.add_weight("gamma", shape, self.gamma_initializer)
        if self.center:
            self.beta = self.add_weight("beta", shape, self.beta_initializer)
        self.moving_mean = self.add_weight("moving_mean", shape, self.moving_mean_initializer, trainable=False)
        self.moving_variance = self.add_weight("moving_variance", shape, self.moving_variance_initializer,
                                               trainable=False)
        self.built = True

    def _value(self, weight):
        return None if weight is None else weight.value

    def call(self, inputs, training=False):
        features = inputs.shape[-1]
        x = inputs.reshape(-1, features)
        gamma, beta = self._value(self.gamma), self._value(self.beta)
        if training and self.trainable:
            outputs, mean, var = K.batch_norm_forward_train(x, gamma, beta, self.epsilon)
            K.batch_norm_update_moving(self.moving_mean.value, self.moving_variance.value, mean, var, self.momentum)
        else:
            outputs = K.batch_norm_forward_infer(x, self.moving_mean.value, self.moving_variance.value, gamma, beta,
                                                 self.epsilon)
            # The statistics backward sees: those of this forward pass, as constants.
            mean = self.moving_mean.value.astype(np.float64)
            var = self.moving_variance.value.astype(np.float64)
            training = False
        self._cache = (x, mean, var, bool(training), inputs.shape)
        return outputs.reshape(inputs.shape)

    def backward(self, dy, need_dx=True):
        if self._cache is None:
            raise RuntimeError(f"BatchNormalization '{self.name}': backward() called before call().")
        x, mean, var, training, shape = self._cache
        dgamma = self.gamma.grad if self.scale else None
        dbeta = self.beta.grad if self.center else None
        dx = K.batch_norm_backward(dy.reshape(x.shape), x, mean, var, self._value(self.gamma), self.epsilon,
                                   dgamma, dbeta, training=training, compute_dX=need_dx)
        return None if dx is None else dx.reshape(shape)

    def get_config(self):
        config = super().get_config()
        config.update(axis=self.axis, momentum=self.momentum, epsilon=self.epsilon, center=self.center,
                      scale=self.scale, beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                      gamma_constraint=None, synchronized=self.synchronized)
        for key in _INITIALIZERS:
            config[key] = initializers.serialize(getattr(self, key))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in _INITIALIZERS:
            value = config.get(key)
            if isinstance(value, dict):
                config[key] = type(initializers.get(value["class_name"])).from_config(value["config"])
        return cls(**config)

    def __repr__(self):
        return f"<BatchNormalization name={self.name}, momentum={self.momentum}, epsilon={self.epsilon}>"
