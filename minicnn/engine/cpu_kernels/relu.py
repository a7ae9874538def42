"""numba passes that fuse a Conv2D's bias and ReLU (and the max pooling after it).

Each saves a pass over the layer's largest array: the activation is computed while the
matrix product's output is still in the cache, or never written out at all.
"""
from __future__ import annotations

import numpy as np

from .im2col import _c_contiguous
from .jit import jit


@jit
def _bias_relu_kernel(z, bias):
    """In place: z = max(z + bias, 0) on z (rows, F). NaN stays NaN (as np.maximum)."""
    for r in range(z.shape[0]):
        for f in range(z.shape[1]):
            value = z[r, f] + bias[f]
            if value < 0:
                z[r, f] = 0.0
            else:
                z[r, f] = value


@jit
def _relu_backward_kernel(dout, y, dz):
    """dz = dout where y > 0, else 0, on (rows, F) arrays (ReLU's backward)."""
    for r in range(dout.shape[0]):
        for f in range(dout.shape[1]):
            if y[r, f] > 0:
                dz[r, f] = dout[r, f]
            else:
                dz[r, f] = 0.0


@jit
def _bias_relu_pool_kernel(z, bias, ph, pw, out, argmax):
    """A Conv2D's bias + ReLU and the MaxPooling2D after it, in one pass over z:
    out = max over the disjoint (ph, pw) windows of max(z + bias, 0), argmax = first winner.

    z (N, OH, OW, F) -> out, argmax (N, OH // ph, OW // pw, F) (pooling "valid"). The
    same numbers, NaN and ties included, as ``_bias_relu_kernel`` then
    ``_maxpool_forward_kernel``; but z, the layer's largest array, is read once from
    the cache instead of being written out and read back by the pooling layer.
    """
    n_images, out_h, out_w, filters = out.shape
    for n in range(n_images):
        for oy in range(out_h):
            for ox in range(out_w):
                for i in range(ph):
                    for j in range(pw):
                        for f in range(filters):
                            value = z[n, oy * ph + i, ox * pw + j, f] + bias[f]
                            if value < 0:
                                value = np.float32(0.0)
                            if (i == 0 and j == 0) or value > out[n, oy, ox, f]:
                                out[n, oy, ox, f] = value     # strict: first maximum wins
                                argmax[n, oy, ox, f] = i * pw + j


def bias_relu_(z, bias):
    """In place on z (..., F): z = max(z + bias, 0), one pass instead of two. Returns z."""
    _bias_relu_kernel(z.reshape(-1, z.shape[-1]), bias)
    return z


def relu_backward(dout, y, out=None):
    """dout * (y > 0) without the boolean temporary; shapes (..., F)."""
    dz = np.empty_like(dout) if out is None else out
    _relu_backward_kernel(_c_contiguous(dout).reshape(-1, dout.shape[-1]),
                          _c_contiguous(y).reshape(-1, y.shape[-1]),
                          dz.reshape(-1, dz.shape[-1]))
    return dz


def bias_relu_pool(z, bias, pool_size, out, argmax):
    """pooled max(z + bias, 0) over disjoint windows ("valid"): z (N, OH, OW, F) ->
    out, argmax (N, OH // ph, OW // pw, F), float32 and uint8 arrays to write into.
    The numbers of ``bias_relu_`` then ``maxpool2d_forward`` (strides = pool_size),
    without writing the activation out (see ``_bias_relu_pool_kernel``)."""
    _bias_relu_pool_kernel(_c_contiguous(z), bias, pool_size[0], pool_size[1], out, argmax)
    return out, argmax
