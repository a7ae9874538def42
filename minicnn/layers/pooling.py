"""Pooling: the maximum or the mean over each window (MaxPooling2D, AveragePooling2D),
or over the whole image (GlobalAveragePooling2D, GlobalMaxPooling2D)."""
from __future__ import annotations

from .. import engine
from ..ops.padding import check_padding, conv_geometry
from .base import Layer, pair, register


class Pooling2D(Layer):
    """What the window poolings share: pool_size, strides (default: pool_size), padding.

    x (N, H, W, C) -> y (N, OH, OW, C), OH = (H - pool_h) // stride_h + 1 ("valid";
    "same": ceil(H / stride_h)), likewise OW.
    """

    expected_rank = 3

    def __init__(self, pool_size=2, strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = pair(pool_size, "pool_size")
        self.strides = pair(strides, "strides") if strides is not None else self.pool_size
        self.padding = check_padding(padding)

    def compute_output_shape(self, input_shape):
        out_h, out_w, _, _ = conv_geometry((1, *input_shape), self.pool_size, self.strides,
                                           self.padding)
        if out_h < 1 or out_w < 1:
            raise ValueError(f"layer {self.name!r}: input {input_shape} is smaller than the "
                             f"pool {self.pool_size}")
        return (out_h, out_w, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding}


@register
class MaxPooling2D(Pooling2D):
    """Maximum over each (pool_h, pool_w) window: x (N, H, W, C) -> y (N, OH, OW, C).

    The forward pass records, for every output, which slot of its window
    (``i * pool_w + j``) held the maximum (``argmax``, uint8); the backward pass sends
    each gradient to that position, and every other position gets zero.
    """

    default_name = "max_pooling2d"
    kind = "max_pooling2d"

    def forward(self, x, training=False):
        x = self.accept(x)
        self.forget_forward_state()   # last step's argmax may then be reused
        y, argmax = engine.maxpool2d_forward(self, x)
        self.keep(argmax=argmax, x_shape=tuple(x.shape))
        return y

    @property
    def argmax(self):
        """The last forward pass's winning slot (i * pool_w + j) of each window, uint8."""
        return self._argmax

    def backward(self, dout):
        """dout (N, OH, OW, C) -> dx (N, H, W, C)."""
        return engine.maxpool2d_backward(self, dout, self._argmax, self._x_shape)


@register
class AveragePooling2D(Pooling2D):
    """Mean over each (pool_h, pool_w) window: x (N, H, W, C) -> y (N, OH, OW, C)::

        y[n, oy, ox, c] = sum of x over the window's image pixels / their count
        dx[n, iy, ix, c] = sum over the windows covering the pixel of dout / count

    With "same" padding a border window covers fewer image pixels, and its mean is over
    those only (the padding is not counted), as TensorFlow's ``avg_pool`` and so Keras.
    """

    default_name = "average_pooling2d"
    kind = "average_pooling2d"

    def forward(self, x, training=False):
        x = self.accept(x)
        self.keep(x_shape=tuple(x.shape))
        return engine.avgpool2d_forward(self, x)

    def backward(self, dout):
        """dout (N, OH, OW, C) -> dx (N, H, W, C)."""
        return engine.avgpool2d_backward(self, dout, self._x_shape)


class GlobalPooling2D(Layer):
    """x (N, H, W, C) -> y (N, C), or (N, 1, 1, C) with ``keepdims=True``: one value
    per image and channel, reduced over the whole H x W plane."""

    expected_rank = 3
    reduction = ""   # "average" or "max", for the engine

    def __init__(self, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(keepdims, bool):
            raise ValueError(f"keepdims must be True or False. Received: keepdims={keepdims!r}")
        self.keepdims = keepdims

    def compute_output_shape(self, input_shape):
        return (1, 1, input_shape[-1]) if self.keepdims else (input_shape[-1],)

    def forward(self, x, training=False):
        x = self.accept(x)
        y = engine.global_pool_forward(self, x)                  # (N, C)
        self.keep(x=x, y=y)
        return y.reshape(y.shape[0], 1, 1, y.shape[1]) if self.keepdims else y

    def backward(self, dout):
        """dout (N, C) or (N, 1, 1, C) -> dx (N, H, W, C)."""
        dout = dout.reshape(dout.shape[0], -1)                   # (N, C)
        return engine.global_pool_backward(self, dout, self._x, self._y)

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


@register
class GlobalAveragePooling2D(GlobalPooling2D):
    """y[n, c] = mean of x[n, :, :, c]; dx = dout / (H * W) at every pixel."""

    default_name = "global_average_pooling2d"
    kind = "global_average_pooling2d"
    reduction = "average"


@register
class GlobalMaxPooling2D(GlobalPooling2D):
    """y[n, c] = max of x[n, :, :, c]; dx = dout at the maximum, shared equally among
    tied pixels (TensorFlow's ``reduce_max`` gradient, so Keras's), 0 elsewhere."""

    default_name = "global_max_pooling2d"
    kind = "global_max_pooling2d"
    reduction = "max"
