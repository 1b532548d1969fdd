"""Utilities with Keras' names."""
from fastnn.utils.numerical_utils import to_categorical
from fastnn.utils.progbar import Progbar
from fastnn.utils.rng_utils import set_random_seed

__all__ = ["Progbar", "set_random_seed", "to_categorical"]
