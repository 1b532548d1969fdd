"""``Dropout``: inverted dropout, active only when ``training=True`` (inside ``fit``).

In training each input unit is set to 0 with probability ``rate`` and the
others are scaled by ``1 / (1 - rate)``, so the expected sum is unchanged;
evaluate, predict and ``model(x)`` pass inputs through untouched (K3
``layers/regularization/dropout.py``). The uniform numbers come from a NumPy
Generator: fastnn's global one (reseeded by ``set_random_seed``, so runs are
bit-identical), or the layer's own stream when ``seed`` is given, as Keras'
``SeedGenerator(seed)``. ``noise_shape`` draws one number per cell of that
shape and broadcasts it, e.g. ``(None, 1, features)`` shares a mask over time.
"""
import numbers

import numpy as np

from fastnn import _kernels as K
from fastnn.layers.base import Layer
from fastnn.utils.rng_utils import global_rng
from fastnn.utils.validation import check_in_range, describe, shape_str


class Dropout(Layer):
    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        owner = f"Dropout '{self.name}'"
        self.rate = check_in_range(owner, "rate", rate, 0.0, 1.0)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
            raise ValueError(f"{owner}: argument `seed` must be a non-negative integer or None; "
                             f"received {describe(seed)}.")
        self.seed = None if seed is None else int(seed)
        self.noise_shape = self._check_noise_shape(noise_shape)
        self._rng = None if seed is None else np.random.default_rng(self.seed)
        self._mask = None

    def _check_noise_shape(self, noise_shape):
        if noise_shape is None:
            return None
        bad = isinstance(noise_shape, (str, bytes)) or not hasattr(noise_shape, "__iter__")
        dims = () if bad else tuple(noise_shape)
        if bad or not dims or any(d is not None and (isinstance(d, bool) or not isinstance(d, numbers.Integral)
                                                     or d <= 0) for d in dims):
            raise ValueError(f"Dropout '{self.name}': argument `noise_shape` must be a tuple of positive "
                             f"integers or None, one per input dimension; received {describe(noise_shape)}.")
        return tuple(None if d is None else int(d) for d in dims)

    def _mask_shape(self, shape):
        """noise_shape with None filled from ``shape``; it must broadcast to ``shape``."""
        if self.noise_shape is None:
            return shape
        if len(self.noise_shape) != len(shape):
            raise ValueError(f"Dropout '{self.name}': `noise_shape` {self.noise_shape} must have one entry per "
                             f"input dimension; received an input of shape {shape_str(shape)}.")
        filled = tuple(s if n is None else n for n, s in zip(self.noise_shape, shape))
        if any(n not in (1, s) for n, s in zip(filled, shape)):
            raise ValueError(f"Dropout '{self.name}': `noise_shape` {self.noise_shape} must broadcast to the "
                             f"input shape {shape_str(shape)} (each entry 1, None or the input's size).")
        return filled

    def _generator(self):
        """Where this step's uniforms come from: the layer's own stream (``seed``), else the global one.
        The fused engine draws from the same generator, in the same order (Trainer._engine_uniforms)."""
        return self._rng if self._rng is not None else global_rng()

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            self._mask = None
            return inputs
        shape = self._mask_shape(inputs.shape)
        u = self._generator().random(shape, dtype=inputs.dtype)
        if shape != inputs.shape:
            u = np.broadcast_to(u, inputs.shape)
        outputs, self._mask = K.dropout_forward(inputs, u, self.rate)
        return outputs

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        if self._mask is None:  # inference, or rate 0: the identity
            return dy
        return K.dropout_backward(dy, self._mask, self.rate)

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed,
                      noise_shape=None if self.noise_shape is None else list(self.noise_shape))
        return config

    def __repr__(self):
        return f"<Dropout name={self.name}, rate={self.rate}>"
