"""Layers: each says what it computes, forward and backward, and hands the work to the
engine (``minicnn.engine``) in one call each way.

``base`` (the contract every layer keeps), ``conv`` (Conv2D), ``pooling``
(MaxPooling2D), ``core`` (Dense, Flatten, Dropout), ``activation`` (Activation).
"""
from .activation import Activation
from .base import (LAYERS, Layer, check_layer_name, clear_session, from_config, register,
                   unique_name)
from .conv import Conv2D
from .core import Dense, Dropout, Flatten
from .pooling import MaxPooling2D

__all__ = ["LAYERS", "Activation", "Conv2D", "Dense", "Dropout", "Flatten", "Layer",
           "MaxPooling2D", "check_layer_name", "clear_session", "from_config", "register",
           "unique_name"]
