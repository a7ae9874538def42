"""The pooling layers' two passes, as the engine runs them (one call each way): max
pooling by the kernels (numba, CuPy); average and global pooling by the ``ops.pooling``
code on NumPy or CuPy arrays (a few strided sums: no kernel pays here)."""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module, to_numpy
from ..ops import pooling, reference
from .choice import engine_name, kernels_for
from .scratch import scratch_for


def maxpool2d_forward(layer, x):
    """x (N, H, W, C) -> (y (N, OH, OW, C), argmax (N, OH, OW, C) uint8, the winning slot
    i * pool_w + j of each window), into last step's arrays when nobody holds them."""
    geometry = (layer.pool_size, layer.strides, layer.padding)
    if engine_name() == "reference":
        xp, x_host = get_array_module(x), to_numpy(x)
        return (xp.asarray(reference.maxpool2d_forward_loops(x_host, *geometry)),
                xp.asarray(reference.maxpool2d_argmax_loops(x_host, *geometry)))
    y, argmax = output_arrays(layer, x.shape, x)
    return kernels_for(x).maxpool2d_forward(x, *geometry, out=y, argmax_out=argmax)


def output_arrays(layer, x_shape, like):
    """(y, argmax) to fill for a pass on inputs of ``x_shape`` (see ``scratch.result``)."""
    shape = (x_shape[0], *layer.output_shape)
    scratch = scratch_for(layer)
    return scratch.result("y", shape, like), scratch.result("argmax", shape, like, np.uint8)


def maxpool2d_backward(layer, dout, argmax, x_shape):
    """dout (N, OH, OW, C) -> dx (N, H, W, C): each value goes to its window's argmax."""
    geometry = (layer.pool_size, layer.strides, layer.padding)
    if engine_name() == "reference":
        dx = reference.maxpool2d_backward_argmax_loops(to_numpy(dout), to_numpy(argmax),
                                                       x_shape, *geometry)
        return get_array_module(dout).asarray(dx)
    return kernels_for(dout).maxpool2d_backward(
        dout, argmax, x_shape, *geometry, out=scratch_for(layer).result("dx", x_shape, dout))


def avgpool2d_forward(layer, x):
    """x (N, H, W, C) -> y (N, OH, OW, C), each window's mean over its image pixels."""
    geometry = (layer.pool_size, layer.strides, layer.padding)
    if engine_name() == "reference":
        return get_array_module(x).asarray(reference.avgpool2d_forward_loops(to_numpy(x),
                                                                              *geometry))
    return pooling.avgpool2d_forward(x, *geometry)


def avgpool2d_backward(layer, dout, x_shape):
    """dout (N, OH, OW, C) -> dx (N, H, W, C): each window shares its gradient equally."""
    geometry = (layer.pool_size, layer.strides, layer.padding)
    if engine_name() == "reference":
        return get_array_module(dout).asarray(
            reference.avgpool2d_backward_loops(to_numpy(dout), x_shape, *geometry))
    return pooling.avgpool2d_backward(dout, x_shape, *geometry)


def global_pool_forward(layer, x):
    """x (N, H, W, C) -> (N, C): the mean (``layer.reduction == "average"``) or maximum."""
    if engine_name() == "reference":
        return get_array_module(x).asarray(reference.global_pool_loops(to_numpy(x),
                                                                       layer.reduction))
    if layer.reduction == "average":
        return pooling.global_avgpool_forward(x)
    return pooling.global_maxpool_forward(x)


def global_pool_backward(layer, dout, x, y):
    """dout (N, C) -> dx (N, H, W, C) (see ``ops.pooling.global_maxpool_backward``)."""
    if engine_name() == "reference":
        return get_array_module(dout).asarray(reference.global_pool_backward_loops(
            to_numpy(dout), to_numpy(x), layer.reduction))
    if layer.reduction == "average":
        return pooling.global_avgpool_backward(dout, x.shape)
    return pooling.global_maxpool_backward(dout, x, y)
