"""Activation: an activation function as a layer of its own."""
from __future__ import annotations

from .. import activations
from .base import Layer, register


@register
class Activation(Layer):
    """An activation on its own: ``Activation("relu" | "sigmoid" | "softmax" | ...)``."""

    default_name = "activation"
    kind = "activation"

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def forward(self, x, training=False):
        x = self.accept(x)
        y = self.activation.forward(x)
        self.keep(y=y)
        return y

    def backward(self, dout):
        return self.activation.backward(dout, self._y)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation.name}
