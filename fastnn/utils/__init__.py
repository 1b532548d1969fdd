"""Utilities with Keras' names."""
from fastnn.utils.numerical_utils import to_categorical
from fastnn.utils.progbar import Progbar
from fastnn.utils.rng_utils import set_random_seed
from fastnn.utils.sequence_utils import multi_hot

__all__ = ["Progbar", "multi_hot", "set_random_seed", "to_categorical"]
