"""Layers: each says what it computes, forward and backward, and hands the work to the
engine (``minicnn.engine``) in one call each way.

``base`` (the contract every layer keeps), ``conv`` (Conv2D), ``pooling``
(MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D), ``core``
(Dense, Flatten, Dropout), ``activation`` (Activation, LeakyReLU, ReLU),
``normalization`` (BatchNormalization), ``reshaping`` (ZeroPadding2D), ``input_layer``
(Input, InputLayer: Keras's functional API, see ``minicnn.functional``).

Keras 2's module paths are aliases: ``convolutional`` (Conv2D, the pooling layers,
ZeroPadding2D), ``core`` (Dense, Flatten, Dropout, Activation), ``pooling``,
``normalization``, ``advanced_activations`` (LeakyReLU, ReLU).
"""
from . import advanced_activations, convolutional  # Keras 2's paths (aliases)
from .activation import Activation, LeakyReLU, ReLU
from .base import (LAYERS, Layer, check_layer_name, clear_session, from_config, register,
                   unique_name)
from .conv import Conv2D
from .core import Dense, Dropout, Flatten
from .input_layer import Input, InputLayer, KerasTensor
from .normalization import BatchNormalization
from .pooling import (AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D,
                      MaxPooling2D)
from .reshaping import ZeroPadding2D

__all__ = ["LAYERS", "Activation", "AveragePooling2D", "BatchNormalization", "Conv2D", "Dense",
           "Dropout", "Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Input",
           "InputLayer", "KerasTensor", "Layer",
           "LeakyReLU", "MaxPooling2D", "ReLU", "ZeroPadding2D", "check_layer_name",
           "clear_session", "from_config", "register", "unique_name"]
