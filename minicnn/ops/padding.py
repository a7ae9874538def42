"""Geometry of a window op (convolution, pooling): output sizes and padding, computed
exactly as Keras/TensorFlow do, and the padded copy of a batch."""
from __future__ import annotations

from ..backend import get_array_module

VALID_PADDINGS = ("valid", "same")


def check_padding(padding: str) -> str:
    padding = str(padding).lower()
    if padding not in VALID_PADDINGS:
        raise ValueError(f"unknown padding {padding!r}: expected one of {VALID_PADDINGS}")
    return padding


def conv_output_length(size: int, window: int, stride: int, padding: str) -> int:
    """Length of one spatial axis after a window of ``window`` moved by ``stride``.

    "valid": only windows that fit, ``floor((size - window) / stride) + 1``.
    "same":  ``ceil(size / stride)``, padding as needed.
    """
    if check_padding(padding) == "same":
        return -(-size // stride)
    return (size - window) // stride + 1


def padding_amounts(size: int, window: int, stride: int, padding: str) -> tuple[int, int]:
    """(before, after) zeros to add on one axis.

    TensorFlow pads "same" so that the output has ``ceil(size / stride)``
    positions, and puts the odd extra pixel *after* (bottom/right). Copying this
    rule is what makes strided "same" convolutions agree with Keras.
    """
    if check_padding(padding) == "valid":
        return 0, 0
    out = conv_output_length(size, window, stride, padding)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def conv_geometry(x_shape, kernel_size, strides, padding):
    """Output size and padding of a 2-D window op on a (N, H, W, C) input.

    Returns ``(out_h, out_w, (pad_top, pad_bottom), (pad_left, pad_right))``.
    """
    _, height, width, _ = x_shape
    kh, kw = kernel_size
    sh, sw = strides
    out_h = conv_output_length(height, kh, sh, padding)
    out_w = conv_output_length(width, kw, sw, padding)
    return (out_h, out_w,
            padding_amounts(height, kh, sh, padding),
            padding_amounts(width, kw, sw, padding))


def pad(x, pad_h, pad_w, value=0.0):
    """x (N, H, W, C) -> (N, H + pad_h[0] + pad_h[1], W + pad_w[0] + pad_w[1], C), the
    new border filled with ``value`` (0 for a convolution, -inf for max pooling)."""
    if tuple(pad_h) == (0, 0) and tuple(pad_w) == (0, 0):
        return x
    xp = get_array_module(x)
    return xp.pad(x, ((0, 0), pad_h, pad_w, (0, 0)), mode="constant", constant_values=value)
