"""Dense, Flatten and Dropout; also ``Activation`` (defined in ``activation``), which
Keras 2's ``keras.layers.core`` held: ``from minicnn.layers.core import Activation``."""
from __future__ import annotations

import math

import numpy as np

from .. import activations, engine, initializers, regularizers
from ..backend import get_array_module
from ..random import new_generator, new_seed
from .activation import Activation  # noqa: F401  (Keras 2's keras.layers.core had it)
from .base import Layer, positive_int, register


@register
class Dense(Layer):
    """Fully connected: y = activation(x @ kernel + bias). x (N, in) -> (N, units).

    Backward, from dout = dLoss/dy::

        dz = activation.backward(dout, y)        # (N, units)
        grads["kernel"] = x.T @ dz               # (in, units)
        grads["bias"] = dz.sum(axis=0)           # (units,)
        dx = dz @ kernel.T                       # (N, in)
    """

    default_name = "dense"
    kind = "dense"
    expected_rank = 1

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", seed=None, kernel_regularizer=None,
                 bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = positive_int(units, "units")
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.seed = seed
        # penalties the model adds to its loss (and their gradients to grads["kernel"]...)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def compute_output_shape(self, input_shape):
        return (self.units,)

    def _create_params(self, input_shape):
        init = initializers.get(self.kernel_initializer)
        self._add_param("kernel", init((input_shape[0], self.units), new_generator(self.seed)))
        if self.use_bias:
            self._add_param("bias", np.zeros(self.units, dtype=np.float32))

    def forward(self, x, training=False):
        x = self.accept(x)
        y = engine.dense_forward(self, x)
        self.keep(x=x, y=y)
        return y

    def backward(self, dout):
        dx, grads = engine.dense_backward(self, dout, self._x, self._y)
        self.store_grads(grads)
        return dx

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": self.activation.name, "use_bias": self.use_bias,
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer)}


@register
class Flatten(Layer):
    """(N, H, W, C) -> (N, H*W*C), in channels-last order (as Keras flattens)."""

    default_name = "flatten"
    kind = "flatten"

    def compute_output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def forward(self, x, training=False):
        x = self.accept(x)
        self.keep(x_shape=x.shape)
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self._x_shape)


@register
class Dropout(Layer):
    """Inverted dropout: while training, zero each value with probability ``rate``
    and scale the survivors by 1 / (1 - rate), so that nothing changes at test time."""

    default_name = "dropout"
    kind = "dropout"

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self._rng = None

    def _generator(self, xp):
        if self._rng is None:
            seed = new_seed(self.seed)
            self._rng = (np.random.default_rng(seed) if xp is np
                         else xp.random.default_rng(seed))
        return self._rng

    def forward(self, x, training=False):
        x = self.accept(x)
        if not training or self.rate == 0.0:
            self.keep(mask=None)
            return x
        xp = get_array_module(x)
        survives = self._generator(xp).random(x.shape, dtype=np.float32) >= self.rate
        mask = survives.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.rate))
        self.keep(mask=mask)
        return x * mask

    def backward(self, dout):
        return dout if self._mask is None else dout * self._mask

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
