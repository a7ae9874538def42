"""ReLU's two passes as the engine runs them (the ReLU layer with its default settings,
and ``Activation("relu")``): one pass each way, into last step's arrays.

The layer's formula, ``where(x > 0, x, 0)``, builds a boolean array and then a third
array; ``maximum(x, 0, out=y)`` reads x once and writes y once, and the backward kernel
reads dout and y once without the boolean temporary (benchmarks/results/ has the
timings). The numbers are the same: y > 0 exactly where x > 0, so the backward pass
may test y instead of x. One difference, on purpose: max(NaN, 0) is NaN (as
``activations.ReLU``, TensorFlow's relu and the fused conv + ReLU), not 0.
"""
from __future__ import annotations

from ..backend import get_array_module
from .choice import kernels_for
from .scratch import scratch_for


def relu_forward(layer, x):
    """y = max(x, 0), shape of x, in last step's output array when nobody holds it."""
    y = scratch_for(layer).result("y", x.shape, x)
    return get_array_module(x).maximum(x, x.dtype.type(0), out=y)


def relu_backward(layer, dout, y):
    """dx = dout where y > 0, else 0 (y: the forward pass's output), shape of dout."""
    dx = scratch_for(layer).result("dx", dout.shape, dout)
    kernels = kernels_for(dout)
    if hasattr(kernels, "relu_backward"):                 # numba, CuPy
        return kernels.relu_backward(dout, y, out=dx)
    return get_array_module(dout).multiply(dout, y > 0, out=dx)
