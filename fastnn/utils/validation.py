"""Message builders for user-facing errors.

Every check in fastnn that rejects user input builds its message here, so the
wording stays consistent and Keras-like: name the owner (layer, argument or
function), say what was expected, and show what was received.
"""
import numbers

import numpy as np


def shape_str(shape):
    """Format a shape the way Keras prints it: ``(None, 784)``."""
    shape = tuple(None if d is None else int(d) for d in shape)
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(d) for d in shape) + ")"


def describe(value):
    """Short description of a received value for an error message."""
    if isinstance(value, np.ndarray):
        return f"array of shape {shape_str(value.shape)} and dtype {value.dtype}"
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"{type(value).__name__} of shape {shape_str(value.shape)} and dtype {value.dtype}"
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} (of type {type(value).__name__})"


def check_kwargs(owner, kwargs, allowed=()):
    """Raise for keyword arguments ``owner`` does not understand (Keras wording)."""
    unknown = {k: v for k, v in kwargs.items() if k not in allowed}
    if unknown:
        raise TypeError(f"Unrecognized keyword arguments passed to {owner}: {unknown}")


def unknown_identifier(kind, identifier, valid):
    """ValueError for an unknown string identifier, listing the valid ones."""
    listed = ", ".join(repr(v) for v in sorted(valid))
    return ValueError(
        f"Could not interpret {kind} identifier: {identifier!r}. Expected one of: {listed}, "
        f"or a {kind} object."
    )


def check_positive_int(owner, name, value, allow_none=False):
    """Return ``int(value)``; raise if it is not a positive integer."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(
            f"{owner}: argument `{name}` must be a positive integer; received {describe(value)}."
        )
    return int(value)


def check_non_negative_float(owner, name, value):
    """Return ``float(value)``; raise if it is not a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise ValueError(
            f"{owner}: argument `{name}` must be a non-negative number; received {describe(value)}."
        )
    return float(value)


def check_in_range(owner, name, value, low, high, low_inclusive=True, high_inclusive=True):
    """Return ``float(value)``; raise if it is outside the stated interval."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if ok:
        ok = (value >= low if low_inclusive else value > low) and (value <= high if high_inclusive else value < high)
    if not ok:
        lo = "[" if low_inclusive else "("
        hi = "]" if high_inclusive else ")"
        raise ValueError(
            f"{owner}: argument `{name}` must be in {lo}{low}, {high}{hi}; received {describe(value)}."
        )
    return float(value)
