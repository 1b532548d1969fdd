"""Layers with Keras' names and arguments."""
from fastnn.layers.activation import Activation
from fastnn.layers.base import Layer
from fastnn.layers.dense import Dense
from fastnn.layers.flatten import Flatten
from fastnn.layers.input_layer import Input, InputLayer

__all__ = ["Activation", "Dense", "Flatten", "Input", "InputLayer", "Layer"]
