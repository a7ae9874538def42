"""Layers: each says what it computes, forward and backward, and hands the work to the
engine (``minicnn.engine``) in one call each way.

``base`` (the contract every layer keeps), ``conv`` (Conv2D), ``pooling``
(MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D), ``core``
(Dense, Flatten, Dropout), ``activation`` (Activation, LeakyReLU, ReLU),
``normalization`` (BatchNormalization), ``reshaping`` (ZeroPadding2D).
"""
from .activation import Activation, LeakyReLU, ReLU
from .base import (LAYERS, Layer, check_layer_name, clear_session, from_config, register,
                   unique_name)
from .conv import Conv2D
from .core import Dense, Dropout, Flatten
from .normalization import BatchNormalization
from .pooling import (AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D,
                      MaxPooling2D)
from .reshaping import ZeroPadding2D

__all__ = ["LAYERS", "Activation", "AveragePooling2D", "BatchNormalization", "Conv2D", "Dense",
           "Dropout", "Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Layer",
           "LeakyReLU", "MaxPooling2D", "ReLU", "ZeroPadding2D", "check_layer_name",
           "clear_session", "from_config", "register", "unique_name"]
