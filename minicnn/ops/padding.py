"""Output sizes and padding, computed exactly as Keras/TensorFlow do."""
from __future__ import annotations

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
