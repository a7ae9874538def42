"""minicnn: a convolutional neural network framework written from scratch on NumPy,
with the same code running on the GPU through CuPy.

    import minicnn
    from minicnn import Sequential, Conv2D, MaxPooling2D, Flatten, Dense, SGD

Subpackages: ``minicnn.ops`` (im2col, pooling kernels and their loop
references), ``minicnn.data`` (image pipelines and datasets),
``minicnn.applications`` (VGG16), ``minicnn.viz`` (pictures of the internals).
"""
from . import activations, callbacks, gradcheck, initializers, losses, optimizers
from .backend import device, get_array_module, gpu_available, set_device, to_device, to_numpy
from .callbacks import Callback, EarlyStopping, History, ModelCheckpoint
from .layers import (Activation, Conv2D, Dense, Dropout, Flatten, Layer, MaxPooling2D,
                     clear_session)
from .losses import BinaryCrossentropy, CategoricalCrossentropy
from .models import Sequential, TrainingDivergedError, load_model
from .optimizers import SGD, RMSprop
from .random import set_seed
from .utils import to_categorical

__version__ = "0.1.0"

__all__ = [
    "SGD", "Activation", "BinaryCrossentropy", "Callback", "CategoricalCrossentropy", "Conv2D",
    "Dense", "Dropout", "EarlyStopping", "Flatten", "History", "Layer", "MaxPooling2D",
    "ModelCheckpoint", "RMSprop", "Sequential", "TrainingDivergedError", "activations",
    "callbacks", "clear_session", "device", "get_array_module", "gpu_available", "gradcheck",
    "initializers", "load_model", "losses", "optimizers", "set_device", "set_seed",
    "to_categorical", "to_device", "to_numpy",
]
