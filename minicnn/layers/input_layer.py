"""Keras's ``Input`` and ``InputLayer``, and the symbolic tensor that layer calls pass on.

``inputs = Input(shape=(28, 28, 1))`` is a :class:`KerasTensor`: no data, only the shape
(batch first, as None) and where it came from. Calling a layer on it
(``Conv2D(32, 3)(inputs)``, see ``Layer.__call__``) builds the layer for that shape and
returns the next symbolic tensor; ``Model(inputs, outputs)`` (``minicnn.functional``)
then follows the chain back from ``outputs`` to ``inputs``.

``Input(shape=...)`` or ``InputLayer(shape=...)`` may also open a ``Sequential``
(Keras 3 style); as in Keras's ``Sequential``, it is not one of ``model.layers``.
"""
from __future__ import annotations

from .base import Layer, register


class KerasTensor:
    """The symbolic output of a layer call: ``shape`` with the batch axis first (None),
    ``layer`` that produced it, ``parent`` the tensor that layer was called on (None for
    an ``Input``), ``consumers`` the layers called on it since."""

    is_keras_tensor = True     # what Layer.__call__ looks for (layers.base imports nothing)
    dtype = "float32"

    def __init__(self, shape, layer, parent=None):
        self.shape = tuple(shape)
        self.layer = layer
        self.parent = parent
        self.consumers: list = []
        self.name = layer.name

    @property
    def ndim(self):
        return len(self.shape)

    def followed_by(self, layer):
        """The tensor ``layer`` (built for ``self.shape[1:]``) makes from this one."""
        self.consumers.append(layer)
        return KerasTensor((self.shape[0], *layer.output_shape), layer, parent=self)

    def __array__(self, *args, **kwargs):
        raise TypeError(f"{self!r} is symbolic (Input(...) or a layer called on it): it holds "
                        "no values; build a Model(inputs, outputs) and call predict on data")

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype=float32, name={self.name}>"


@register
class InputLayer(Layer):
    """The input of a model: the shape of one sample, ``InputLayer(shape=(28, 28, 1))``
    (Keras 3) or ``InputLayer(input_shape=(28, 28, 1))`` (Keras 2). It computes nothing;
    ``.output`` is the symbolic tensor that ``Input(...)`` returns."""

    default_name = "input_layer"
    kind = "input"

    def __init__(self, shape=None, batch_size=None, name=None, input_shape=None,
                 batch_shape=None, batch_input_shape=None, dtype=None, sparse=False,
                 ragged=False, **kwargs):
        batch_shape = batch_shape if batch_shape is not None else batch_input_shape
        if batch_shape is not None:
            batch_size, shape = batch_shape[0], tuple(batch_shape)[1:]
        shape = shape if shape is not None else input_shape
        if shape is None:
            raise ValueError("Input/InputLayer needs the shape of one sample (no batch axis), "
                             "e.g. Input(shape=(28, 28, 1))")
        if dtype not in (None, "float32") or sparse or ragged:
            raise ValueError(f"minicnn's inputs are dense float32 arrays; got dtype={dtype!r}, "
                             f"sparse={sparse!r}, ragged={ragged!r}")
        super().__init__(name=name, input_shape=shape, **kwargs)
        self.batch_size = batch_size
        self.build(self.input_shape)
        self.output = KerasTensor((batch_size, *self.input_shape), self)

    def forward(self, x, training=False):
        return x

    def get_config(self):
        return {"name": self.name, "batch_shape": [self.batch_size, *self.input_shape]}


def Input(shape=None, batch_size=None, name=None, dtype=None, batch_shape=None, **kwargs):  # noqa: N802
    """A symbolic input, Keras's ``Input(shape=(28, 28, 1))``: call layers on it, then
    ``Model(inputs, outputs)``; or put it first in a ``Sequential``."""
    return InputLayer(shape=shape, batch_size=batch_size, name=name, dtype=dtype,
                      batch_shape=batch_shape, **kwargs).output
