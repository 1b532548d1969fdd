"""Activation functions by their Keras names.

Each function works on NumPy arrays of shape (batch, ..., features) through the kernels; ``get`` resolves
Keras identifiers (a string, one of these functions, or ``None`` for linear). Layers keep the resolved
function and pass its name (with its parameters, ``spec``) to the kernels and the engine, which implement
forward and backward for each of them. Definitions and defaults are Keras 3's
(keras/src/activations/activations.py).
"""
import numpy as np

from fastnn import _kernels as K
from fastnn.utils.validation import describe, unknown_identifier


def _apply(name, x, spec=None):
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float32)
    if x.ndim == 0:
        raise ValueError(f"activation `{name}` expects an array with at least 1 dimension; received {describe(x)}")
    shape = x.shape
    x2 = np.ascontiguousarray(x.reshape(-1, shape[-1]))
    return K.activation_forward(x2, spec or name).reshape(shape)


def _last_axis(name, x, axis):
    if axis not in (-1, np.ndim(x) - 1):
        raise ValueError(f"{name}: only axis=-1 is supported; received axis={axis!r}")


def relu_spec(negative_slope=0.0, max_value=None, threshold=0.0):
    """The kernels' name for relu with these arguments (checked as Keras' ReLU does)."""
    for arg, value in (("negative_slope", negative_slope), ("threshold", threshold)):
        if value is None or isinstance(value, bool) or not np.isscalar(value) or not np.isfinite(value):
            raise ValueError(f"relu: argument `{arg}` must be a finite number; received {describe(value)}")
    if max_value is not None and (isinstance(max_value, bool) or not np.isscalar(max_value)
                                  or not np.isfinite(max_value)):
        raise ValueError(f"relu: argument `max_value` must be a finite number or None; received {describe(max_value)}")
    if negative_slope == 0 and max_value is None and threshold == 0:
        return "relu"
    return ("relu", float(negative_slope), None if max_value is None else float(max_value), float(threshold))


def linear(x):
    """Identity: ``linear(x) = x``."""
    return np.asarray(x)


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Rectified linear unit: ``max(x, 0)`` with Keras' defaults. Otherwise ``x`` for ``x > threshold``
    (else 0), clipped to ``[0, max_value]`` if given, minus ``negative_slope * max(threshold - x, 0)``."""
    return _apply("relu", x, relu_spec(negative_slope, max_value, threshold))


def leaky_relu(x, negative_slope=0.2):
    """``x`` for ``x > 0``, ``negative_slope * x`` otherwise (Keras' default slope 0.2)."""
    return _apply("leaky_relu", x, ("leaky_relu", negative_slope))


def relu6(x):
    """``min(max(x, 0), 6)``."""
    return _apply("relu6", x)


def sigmoid(x):
    """Logistic sigmoid ``1 / (1 + exp(-x))`` (computed stably in both tails)."""
    return _apply("sigmoid", x)


def tanh(x):
    """Hyperbolic tangent."""
    return _apply("tanh", x)


def softmax(x, axis=-1):
    """Softmax over the last axis (the only axis fastnn supports)."""
    _last_axis("softmax", x, axis)
    return _apply("softmax", x)


def log_softmax(x, axis=-1):
    """``x - log(sum(exp(x)))`` over the last axis (the only axis fastnn supports), computed stably."""
    _last_axis("log_softmax", x, axis)
    return _apply("log_softmax", x)


def elu(x, alpha=1.0):
    """Exponential linear unit: ``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise."""
    return _apply("elu", x, ("elu", alpha))


def selu(x):
    """Scaled ELU: ``scale * elu(x, alpha)`` with alpha = 1.67326324, scale = 1.05070098 (Klambauer et al.)."""
    return _apply("selu", x)


def gelu(x, approximate=False):
    """Gaussian error linear unit: ``0.5 x (1 + erf(x / sqrt(2)))``; with ``approximate=True``
    ``0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))``."""
    if not isinstance(approximate, (bool, np.bool_)):
        raise ValueError(f"gelu: argument `approximate` must be a bool; received {describe(approximate)}")
    return _apply("gelu", x, ("gelu", bool(approximate)))


def silu(x):
    """Swish / SiLU: ``x * sigmoid(x)``."""
    return _apply("silu", x)


swish = silu  # Keras exports the same function under both names (its name is "silu")


def softplus(x):
    """``log(exp(x) + 1)``, computed without overflow."""
    return _apply("softplus", x)


def softsign(x):
    """``x / (abs(x) + 1)``."""
    return _apply("softsign", x)


def hard_sigmoid(x):
    """Keras 3's hard sigmoid: ``relu6(x + 3) / 6``: 0 below -3, 1 above 3, ``x / 6 + 0.5`` between."""
    return _apply("hard_sigmoid", x)


def hard_silu(x):
    """Hard SiLU / hard swish: ``x * hard_sigmoid(x)``."""
    return _apply("hard_silu", x)


hard_swish = hard_silu


def exponential(x):
    """``exp(x)``."""
    return _apply("exponential", x)


_FUNCTIONS = (linear, relu, sigmoid, tanh, softmax, elu, selu, gelu, silu, softplus, softsign, leaky_relu, relu6,
              hard_sigmoid, exponential, log_softmax, hard_silu)
_BY_NAME = {fn.__name__: fn for fn in _FUNCTIONS}
_ALIASES = {"swish": silu, "hard_swish": hard_silu}


def get(identifier):
    """Resolve a Keras activation identifier to one of this module's functions."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        fn = _BY_NAME.get(identifier.lower()) or _ALIASES.get(identifier.lower())
        if fn is None:
            raise unknown_identifier("activation", identifier, {**_BY_NAME, **_ALIASES})
        return fn
    if callable(identifier) and getattr(identifier, "__name__", None) in _BY_NAME \
            and _BY_NAME[identifier.__name__] is identifier:
        return identifier
    raise ValueError(
        f"Could not interpret activation identifier: {describe(identifier)}. fastnn computes gradients "
        f"with its own kernels, so the activation must be one of: {', '.join(sorted({**_BY_NAME, **_ALIASES}))}."
    )


def serialize(activation):
    """The Keras name of an activation function from this module."""
    return get(activation).__name__
