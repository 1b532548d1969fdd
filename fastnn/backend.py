"""The few ``keras.backend`` functions tutorials call."""
from fastnn.utils.naming import reset_names

_EPSILON = 1e-7
_FLOATX = "float32"


def epsilon():
    """The fuzz factor of the cross-entropies on probabilities (Keras: 1e-7): they clip to
    [epsilon, 1 - epsilon] in the predictions' dtype (float32: [1e-7, 0.99999988]). The kernels are
    compiled with this value, so there is no ``set_epsilon``."""
    return _EPSILON


def floatx():
    """The default float type: ``'float32'``."""
    return _FLOATX


def clear_session(free_memory=True):
    """Reset automatic layer/model names, as ``keras.backend.clear_session()`` does: the next ``Dense`` is
    ``dense`` again. ``free_memory`` is accepted for Keras 3 compatibility: fastnn holds no global graph or
    device memory to release, and a model's arrays are freed when the model is no longer referenced."""
    reset_names()
