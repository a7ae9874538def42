"""The plain ``ops`` code under the names of the fast kernels (``cpu_kernels``,
``gpu_kernels``), so that the engine calls one interface whichever it runs.

It has no fused passes (bias + ReLU, optimizer steps): the engine asks ``FUSED``.
"""
from ..ops.conv import col2im, im2col
from ..ops.pooling import maxpool2d_backward, maxpool2d_forward

FUSED = False

__all__ = ["FUSED", "col2im", "im2col", "maxpool2d_backward", "maxpool2d_forward"]
