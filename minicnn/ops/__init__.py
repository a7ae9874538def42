"""Stateless maths on NumPy or CuPy arrays (``xp``): the definitions the engine speeds up.

``padding`` (output sizes, padding, the padded copy), ``conv`` (im2col, col2im, the
conv2d passes), ``pooling`` (max pooling), ``winograd`` (F(2x2, 3x3) in NumPy) and
``reference`` (plain loops, for reading and for the tests). Nothing here picks a kernel
or a thread: that is ``minicnn.engine``'s work.
"""
from .conv import col2im, conv2d_backward, conv2d_forward, im2col
from .padding import conv_geometry, conv_output_length, padding_amounts
from .pooling import maxpool2d_backward, maxpool2d_forward

__all__ = [
    "col2im",
    "conv2d_backward",
    "conv2d_forward",
    "conv_geometry",
    "conv_output_length",
    "im2col",
    "maxpool2d_backward",
    "maxpool2d_forward",
    "padding_amounts",
]
