"""ZeroPadding2D: a border of zeros around each image."""
from __future__ import annotations

from ..ops.padding import pad
from .base import Layer, is_positive_int, register


def _amount(value):
    """``value`` as an int >= 0, or None if it is not one (bools are not amounts)."""
    if isinstance(value, bool) or not (value == 0 or is_positive_int(value)):
        return None
    return int(value)


def padding_pairs(padding):
    """((top, bottom), (left, right)) from an int, a pair (symmetric height, width) or a
    pair of pairs, as Keras reads ZeroPadding2D's ``padding``; every amount an int >= 0."""
    if not isinstance(padding, (tuple, list)):
        pairs = [(padding, padding)] * 2                        # one amount everywhere
    elif len(padding) == 2:
        pairs = [tuple(side) if isinstance(side, (tuple, list)) else (side, side)
                 for side in padding]
    else:
        pairs = []
    amounts = [[_amount(v) for v in side] for side in pairs]
    if len(amounts) != 2 or any(len(side) != 2 or None in side for side in amounts):
        raise ValueError("`padding` should be either an int, a tuple of 2 ints "
                         "(symmetric_height_pad, symmetric_width_pad), or a tuple of 2 tuples "
                         "of 2 ints ((top_pad, bottom_pad), (left_pad, right_pad)). "
                         f"Received: padding={padding!r}")
    return tuple(tuple(side) for side in amounts)


@register
class ZeroPadding2D(Layer):
    """x (N, H, W, C) -> y (N, top + H + bottom, left + W + right, C), the new border 0;
    the backward pass cuts the border off dout: dx = dout[:, top:top + H, left:left + W]."""

    default_name = "zero_padding2d"
    kind = "zero_padding2d"
    expected_rank = 3

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = padding_pairs(padding)

    def compute_output_shape(self, input_shape):
        (top, bottom), (left, right) = self.padding
        height, width, channels = input_shape
        return (top + height + bottom, left + width + right, channels)

    def forward(self, x, training=False):
        x = self.accept(x)
        self.keep(x_shape=tuple(x.shape))
        return pad(x, *self.padding)

    def backward(self, dout):
        (top, _), (left, _) = self.padding
        _, height, width, _ = self._x_shape
        return dout[:, top:top + height, left:left + width, :]

    def get_config(self):
        return {**super().get_config(), "padding": [list(p) for p in self.padding]}
