"""Array kernels behind the layers: im2col / col2im convolution and max pooling.

``conv`` and ``pooling`` hold the fast versions used by the layers (vectorised
NumPy/CuPy, with numba kernels on the CPU where they pay off); ``reference``
holds plain loop versions written for reading, which the tests prove equal.
"""
from .conv import col2im, conv2d_backward, conv2d_forward, im2col
from .padding import conv_output_length, padding_amounts
from .pooling import maxpool2d_backward, maxpool2d_forward

__all__ = [
    "col2im",
    "conv2d_backward",
    "conv2d_forward",
    "conv_output_length",
    "im2col",
    "maxpool2d_backward",
    "maxpool2d_forward",
    "padding_amounts",
]
