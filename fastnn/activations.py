"""Activation functions by their Keras names.

Each function works on NumPy arrays of shape (batch, features) through the
kernels; ``get`` resolves Keras identifiers (a string, one of these functions,
or ``None`` for linear). Layers keep the resolved function and pass its name
to the kernels, which implement forward and backward for each of them.
"""
import numpy as np

from fastnn import _kernels as K
from fastnn.utils.validation import describe, unknown_identifier


def _apply(name, x):
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float32)
    if x.ndim == 0:
        raise ValueError(f"activation `{name}` expects an array with at least 1 dimension; received {describe(x)}")
    shape = x.shape
    x2 = np.ascontiguousarray(x.reshape(-1, shape[-1]))
    return K.activation_forward(x2, name).reshape(shape)


def linear(x):
    """Identity: ``linear(x) = x``."""
    return np.asarray(x)


def relu(x):
    """Rectified linear unit: ``max(x, 0)``."""
    return _apply("relu", x)


def sigmoid(x):
    """Logistic sigmoid ``1 / (1 + exp(-x))`` (computed stably in both tails)."""
    return _apply("sigmoid", x)


def tanh(x):
    """Hyperbolic tangent."""
    return _apply("tanh", x)


def softmax(x, axis=-1):
    """Softmax over the last axis (the only axis fastnn supports)."""
    if axis not in (-1, np.ndim(x) - 1):
        raise ValueError(f"softmax: only axis=-1 is supported; received axis={axis!r}")
    return _apply("softmax", x)


_BY_NAME = {"linear": linear, "relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax}


def get(identifier):
    """Resolve a Keras activation identifier to one of this module's functions."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        fn = _BY_NAME.get(identifier.lower())
        if fn is None:
            raise unknown_identifier("activation", identifier, _BY_NAME)
        return fn
    if callable(identifier) and getattr(identifier, "__name__", None) in _BY_NAME \
            and _BY_NAME[identifier.__name__] is identifier:
        return identifier
    raise ValueError(
        f"Could not interpret activation identifier: {describe(identifier)}. fastnn computes gradients "
        f"with its own kernels, so the activation must be one of: {', '.join(sorted(_BY_NAME))}."
    )


def serialize(activation):
    """The Keras name of an activation function from this module."""
    return get(activation).__name__
