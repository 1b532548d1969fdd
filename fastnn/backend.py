"""The few ``keras.backend`` functions tutorials call."""
from fastnn.utils.naming import reset_names

_EPSILON = 1e-7
_FLOATX = "float32"


def epsilon():
    """The fuzz factor used by losses on probabilities (Keras: 1e-7)."""
    return _EPSILON


def floatx():
    """The default float type: ``'float32'``."""
    return _FLOATX


def clear_session():
    """Reset automatic layer/model names, as ``keras.backend.clear_session()`` does."""
    reset_names()
