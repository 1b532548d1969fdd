"""The one source of randomness in fastnn.

Weight initialisation, per-epoch shuffling and (later) dropout masks all draw
from ``global_rng()``. ``set_random_seed`` seeds it together with Python's
``random`` and NumPy's legacy global state, as Keras 3's
``keras.utils.set_random_seed`` does (K3 ``utils/rng_utils.py``), so that the
same seed and data give bit-identical weights run after run.
"""
import numbers
import random

import numpy as np

_state = {"rng": np.random.default_rng()}


def set_random_seed(seed):
    """Seed Python's ``random``, NumPy's global state and fastnn's generator.

    Args:
        seed: a Python int (NumPy integers are accepted too).
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(
            f"Expected `seed` argument to be an integer. Received: seed={seed!r} (of type {type(seed).__name__})"
        )
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"Expected `seed` argument to be a non-negative integer. Received: seed={seed}")
    random.seed(seed)
    np.random.seed(seed % (2**32))
    _state["rng"] = np.random.default_rng(seed)


def global_rng():
    """Return fastnn's global ``numpy.random.Generator``."""
    return _state["rng"]


def make_rng(seed=None):
    """A generator for a component: its own if ``seed`` is given, else the global one."""
    if seed is None:
        return global_rng()
    return np.random.default_rng(int(seed))
