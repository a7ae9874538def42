"""minicnn: a convolutional neural network framework written from scratch on NumPy,
with the same code running on the GPU through CuPy.

    import minicnn
    from minicnn import Sequential, Conv2D, MaxPooling2D, Flatten, Dense, SGD

Layers say what they compute (``minicnn.layers``), the engine how fast
(``minicnn.engine``: ``set_engine("reference" | "numpy" | "fast")``), on the maths of
``minicnn.ops`` (im2col, pooling, Winograd and their loop references).
Also ``minicnn.data`` (image pipelines and datasets),
``minicnn.applications`` (VGG16), ``minicnn.viz`` (pictures of the internals).
Under Keras's paths: ``minicnn.datasets`` (``fashion_mnist``, ``mnist``),
``minicnn.preprocessing.image``, ``minicnn.utils`` (``to_categorical``, ``np_utils``).
"""
from . import (activations, callbacks, gradcheck, initializers, losses, optimizers,
               regularizers)
from .backend import device, get_array_module, gpu_available, set_device, to_device, to_numpy
from .callbacks import (CSVLogger, Callback, EarlyStopping, History, LearningRateScheduler,
                        ModelCheckpoint, ReduceLROnPlateau, TensorBoard, TerminateOnNaN)
from .engine import engine_name, set_engine, use_engine
from .layers import (Activation, AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout,
                     Flatten, GlobalAveragePooling2D, GlobalMaxPooling2D, Layer, LeakyReLU,
                     MaxPooling2D, ReLU, ZeroPadding2D, clear_session)
from .losses import BinaryCrossentropy, CategoricalCrossentropy
from .models import Sequential, TrainingDivergedError, load_model
from .optimizers import SGD, Adagrad, Adam, AdamW, Nadam, RMSprop
from .random import set_seed
from .utils import to_categorical

__version__ = "0.1.0"

__all__ = [
    "SGD", "Activation", "Adagrad", "Adam", "AdamW", "AveragePooling2D", "BatchNormalization",
    "BinaryCrossentropy", "CSVLogger", "Callback", "CategoricalCrossentropy", "Conv2D", "Dense", "Dropout", "EarlyStopping",
    "Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "History", "Layer",
    "LearningRateScheduler", "LeakyReLU", "MaxPooling2D", "ModelCheckpoint", "Nadam", "RMSprop",
    "ReLU", "ReduceLROnPlateau", "Sequential", "TensorBoard", "TerminateOnNaN",
    "TrainingDivergedError", "ZeroPadding2D", "activations", "callbacks", "clear_session",
    "device", "engine_name", "get_array_module", "gpu_available", "gradcheck",
    "initializers", "load_model", "losses", "optimizers", "regularizers", "set_device",
    "set_engine",
    "set_seed", "to_categorical", "to_device", "to_numpy", "use_engine",
]


def __getattr__(name):
    # Keras's subpackages, loaded on first use (``minicnn.datasets.mnist.load_data()`` as
    # ``keras.datasets...``), so that ``import minicnn`` does not load Pillow and h5py.
    if name in ("applications", "datasets", "preprocessing"):
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
