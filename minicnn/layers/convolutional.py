"""Keras 2's ``keras.layers.convolutional``, as an alias: ``from minicnn.layers.convolutional
import Conv2D, MaxPooling2D`` runs as the tutorials of 2017-2019 wrote it. (Keras 2's
module re-exported the pooling layers too, and ``Convolution2D`` as Conv2D's old name.)
The layers themselves live in ``conv``, ``pooling`` and ``reshaping``."""
from .conv import Conv2D
from .pooling import (AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D,
                      MaxPooling2D)
from .reshaping import ZeroPadding2D

Convolution2D = Conv2D

__all__ = ["AveragePooling2D", "Conv2D", "Convolution2D", "GlobalAveragePooling2D",
           "GlobalMaxPooling2D", "MaxPooling2D", "ZeroPadding2D"]
