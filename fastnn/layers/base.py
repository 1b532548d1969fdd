"""``Layer``: the base class of every fastnn layer.

Life cycle, as in Keras: ``__init__`` stores the configuration, ``build``
creates the weights once the input shape is known, ``call`` computes the
output. Because fastnn has no autodiff, each layer also implements
``backward(dy)``, which returns the gradient with respect to its input and
accumulates its weights' gradients into ``weight.grad``. Layers work on NumPy
arrays and call ``fastnn._kernels`` only; they never branch on dtype.
"""
import numbers

import numpy as np

from fastnn.backend import floatx
from fastnn.layers.weight import Weight, set_values
from fastnn.utils.naming import auto_name
from fastnn.utils.sparse_utils import CSRRows, is_sparse, to_csr
from fastnn.utils.validation import check_kwargs, check_positive_int, describe, shape_str


def _as_shape(owner, name, value):
    """A shape tuple of positive ints or None. Strict: tuple("784") would give (7, 8, 4), int(2.5) 2, and a
    dimension of 0 or less leaves weights a kernel cannot use (Keras refuses negative ones)."""
    dims = None if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") else tuple(value)
    if dims is None or any(d is not None and (isinstance(d, (bool, np.bool_)) or not isinstance(d, numbers.Integral)
                                              or d <= 0) for d in dims):
        raise ValueError(f"{owner}: argument `{name}` must be a tuple of positive integers (or None); received "
                         f"{describe(value)}")
    return tuple(None if d is None else int(d) for d in dims)


class Layer:
    def __init__(self, name=None, dtype=None, trainable=True, input_shape=None, input_dim=None,
                 batch_input_shape=None, batch_size=None, **kwargs):
        cls = type(self).__name__
        check_kwargs(cls, kwargs)
        if name is not None and not isinstance(name, str):
            raise ValueError(f"{cls}: argument `name` must be a string; received {describe(name)}")
        self.name = name or auto_name(cls)
        try:
            self.dtype = np.dtype(dtype or floatx())
        except TypeError:  # NumPy's "data type 'float8' not understood" names neither the layer nor the choices
            self.dtype = None
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"{cls} '{self.name}': `dtype` must be 'float32' or 'float64'; received {dtype!r}")
        self.trainable = bool(trainable)
        self.batch_input_shape = None
        if input_dim is not None and input_shape is None:
            input_shape = (check_positive_int(cls, "input_dim", input_dim),)
        if input_shape is not None:
            shape = (input_shape,) if isinstance(input_shape, (int, np.integer)) else input_shape
            self.batch_input_shape = (batch_size,) + _as_shape(cls, "input_shape", shape)
        elif batch_input_shape is not None:
            self.batch_input_shape = _as_shape(cls, "batch_input_shape", batch_input_shape)
        self.built = False
        self.input_shape = None
        self.output_shape = None
        self._weights = []

    # ------------------------------------------------------------------ weights
    def add_weight(self, name, shape, initializer, trainable=True, regularizer=None):
        try:
            value = np.ascontiguousarray(initializer(tuple(shape), dtype=self.dtype))
        except MemoryError:  # NumPy's message names neither the layer nor the argument that asked for it
            size = float(np.prod(shape, dtype=np.float64)) * self.dtype.itemsize
            raise MemoryError(f"{type(self).__name__} '{self.name}': its weight `{name}` of shape {shape_str(shape)} "
                              f"needs {size / 2 ** 30:,.1f} GiB, more than this machine can allocate. Check "
                              "`units` and the input shape (a Flatten of a large input?).") from None
        weight = Weight(f"{self.name}/{name}", value, trainable=trainable, regularizer=regularizer)
        self._weights.append(weight)
        return weight

    @property
    def weights(self):
        return list(self._weights)

    @property
    def trainable_weights(self):
        return [w for w in self._weights if w.trainable and self.trainable]

    @property
    def non_trainable_weights(self):
        return [w for w in self._weights if not (w.trainable and self.trainable)]

    def count_params(self):
        if not self.built:
            raise ValueError(f"You tried to call `count_params` on layer '{self.name}', but the layer isn't "
                             "built. You can build it manually via: `layer.build(input_shape)`.")
        return int(sum(w.value.size for w in self._weights))

    def get_weights(self):
        return [w.numpy() for w in self._weights]

    def set_weights(self, weights):
        weights = list(weights)
        if len(weights) != len(self._weights):
            raise ValueError(f"Layer '{self.name}' expects {len(self._weights)} weight arrays; "
                             f"received {len(weights)}.")
        set_values(self._weights, weights, f"Layer '{self.name}' set_weights")

    # ------------------------------------------------------------------ shapes and building
    def build(self, input_shape):
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def build_for(self, input_shape):
        """Build (once) for ``input_shape`` (batch dim included) and record the shapes."""
        input_shape = tuple(input_shape)
        if not self.built:
            self.build(input_shape)
            self.built = True
        self.input_shape = (None,) + input_shape[1:]
        self.output_shape = tuple(self.compute_output_shape(self.input_shape))
        return self.output_shape

    def check_input(self, x):
        """Raise a Keras-style error when ``x`` does not fit the shape this layer was built for."""
        if self.input_shape is None:
            return
        expected = self.input_shape
        if len(x.shape) != len(expected) or any(e is not None and e != r for e, r in zip(expected[1:], x.shape[1:])):
            hint = " Add a Flatten layer first." if len(x.shape) > len(expected) and len(expected) == 2 else ""
            raise ValueError(f"{type(self).__name__} '{self.name}' expects input of shape {shape_str(expected)}; "
                             f"received {shape_str(x.shape)}.{hint}")

    # ------------------------------------------------------------------ computation
    def __call__(self, inputs, training=False):
        if isinstance(inputs, Layer):
            # `Dense(64)(keras.Input((784,)))`: the functional API, which fastnn does not have.
            raise TypeError(f"{type(self).__name__} '{self.name}' was called on the layer '{inputs.name}'; "
                            "fastnn has no functional API (keras.Model(inputs, outputs)). Put the layers in a "
                            "chain instead: fastnn.Sequential([fastnn.Input(shape=...), layers.Dense(...), ...]).")
        if is_sparse(inputs):
            x = CSRRows(to_csr(inputs, "inputs", self.dtype))
            if not self.built:
                self.build_for((None, x.shape[1]))
            self.check_input(x)
            return self.call(x, training=training)
        x = np.asarray(inputs)
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        x = np.ascontiguousarray(x)
        if not self.built:
            self.build_for(x.shape)
        self.check_input(x)
        return self.call(x, training=training)

    def call(self, inputs, training=False):
        raise NotImplementedError(f"{type(self).__name__} must implement call()")

    def backward(self, dy, need_dx=True):
        """Gradient w.r.t. the input of the last ``call``; accumulates weight gradients."""
        raise NotImplementedError(f"{type(self).__name__} must implement backward()")

    # ------------------------------------------------------------------ config
    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype.name}
        if self.batch_input_shape is not None:
            config["batch_input_shape"] = self.batch_input_shape
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"
