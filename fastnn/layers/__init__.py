"""Layers with Keras' names and arguments."""
from fastnn._missing import missing_attribute
from fastnn.layers.activation import Activation
from fastnn.layers.base import Layer
from fastnn.layers.batch_normalization import BatchNormalization
from fastnn.layers.dense import Dense
from fastnn.layers.dropout import Dropout
from fastnn.layers.elu import ELU
from fastnn.layers.flatten import Flatten
from fastnn.layers.input_layer import Input, InputLayer
from fastnn.layers.leaky_relu import LeakyReLU
from fastnn.layers.prelu import PReLU
from fastnn.layers.relu import ReLU
from fastnn.layers.softmax import Softmax

__all__ = ["Activation", "BatchNormalization", "Dense", "Dropout", "ELU", "Flatten", "Input", "InputLayer", "Layer",
           "LeakyReLU", "PReLU", "ReLU", "Softmax"]


def __getattr__(name):
    # A Keras name fastnn lacks: say what to use instead (fastnn._missing).
    raise missing_attribute(__name__, name)
