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


def as_array(value, what):
    """``np.asarray(value)``, with a ValueError naming ``what`` and the first uneven row for ragged nested
    lists (NumPy's own message, "inhomogeneous shape after 1 dimensions", names neither)."""
    try:
        array = np.asarray(value)
    except ValueError:
        where = ragged_position(value)
        if where is None:
            raise
        raise ValueError(f"{what} is a ragged nested list: {where}. fastnn needs one length per dimension; pad "
                         "the rows to one length (e.g. with zeros) or pass a scipy.sparse matrix.") from None
    if array.dtype == object:
        where = ragged_position(value)
        if where is not None:
            raise ValueError(f"{what} is a ragged array of objects: {where}. fastnn needs one length per "
                             "dimension; pad the rows to one length (e.g. with zeros) or pass a scipy.sparse "
                             "matrix.")
    return array


def _is_row(value):
    return isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim > 0)


def ragged_position(value, index=()):
    """Where ``value`` (nested lists/tuples/arrays) stops being rectangular: a phrase like "row [1] has 2
    elements where row [0] has 4", or None if it is rectangular (or not a sequence)."""
    if not _is_row(value):
        return None
    items = list(value)
    if not items:
        return None
    first = items[0]

    def name(i):
        return "row [" + ", ".join(str(k) for k in index + (i,)) + "]"
    for i, item in enumerate(items[1:], 1):
        if _is_row(item) != _is_row(first):
            kinds = ["a sequence" if _is_row(v) else "a scalar" for v in (item, first)]
            return f"item {name(i)[4:]} is {kinds[0]} where item {name(0)[4:]} is {kinds[1]}"
        if _is_row(item) and len(item) != len(first):
            return f"{name(i)} has {len(item)} element{'s' * (len(item) != 1)} where {name(0)} has {len(first)}"
    for i, item in enumerate(items):
        where = ragged_position(item, index + (i,))
        if where is not None:
            return where
    return None
