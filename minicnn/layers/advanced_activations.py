"""Keras 2's ``keras.layers.advanced_activations``, as an alias: ``from
minicnn.layers.advanced_activations import LeakyReLU`` (the Fashion-MNIST tutorial's
import). The layers live in ``activation``."""
from .activation import LeakyReLU, ReLU

__all__ = ["LeakyReLU", "ReLU"]
