"""MaxPooling2D: the maximum over each window."""
from __future__ import annotations

from .. import engine
from ..ops.padding import check_padding, conv_geometry
from .base import Layer, pair, register


@register
class MaxPooling2D(Layer):
    """Maximum over each (pool_h, pool_w) window: x (N, H, W, C) -> y (N, OH, OW, C),
    OH = (H - pool_h) // stride_h + 1 ("valid"; "same": ceil(H / stride_h)).

    The forward pass records, for every output, which slot of its window
    (``i * pool_w + j``) held the maximum (``argmax``, uint8); the backward pass sends
    each gradient to that position, and every other position gets zero.
    """

    default_name = "max_pooling2d"
    kind = "max_pooling2d"
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

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding}
