"""Keras-style automatic names: ``dense``, ``dense_1``, ``sequential_1`` ..."""
import re

_counts = {}


def to_snake_case(name):
    """``BatchNormalization`` -> ``batch_normalization`` (as Keras names layers)."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def auto_name(class_name):
    """The next unique name for an instance of ``class_name`` in this session."""
    base = to_snake_case(class_name)
    count = _counts.get(base, 0)
    _counts[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


def reset_names():
    """Forget every name handed out (``fastnn.backend.clear_session()``)."""
    _counts.clear()
