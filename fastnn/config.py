"""``fastnn.config``: the ``keras.config`` functions tutorials call."""
from fastnn._config import get_num_threads, set_num_threads, show_config
from fastnn.backend import epsilon, floatx

_state = {"determinism": False}


def enable_op_determinism():
    """Accepted for tf.keras compatibility. fastnn's kernels reduce in a fixed order, so training is
    already reproducible for a given seed, data and thread count; this records the request."""
    _state["determinism"] = True


def is_op_determinism_enabled():
    return _state["determinism"]


__all__ = ["enable_op_determinism", "epsilon", "floatx", "get_num_threads", "is_op_determinism_enabled",
           "set_num_threads", "show_config"]
