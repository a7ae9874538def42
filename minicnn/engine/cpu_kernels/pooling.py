"""numba max pooling, forward and backward, on chunks of the batch shared among threads.

pooled (N, OH, OW, C); argmax (N, OH, OW, C) uint8 = the winning slot i*PW + j of each
window, the first maximum in row-major order (as TensorFlow). The backward pass gathers:
each input pixel sums the windows whose argmax it is.
"""
from __future__ import annotations

import numpy as np

from ...ops.padding import conv_geometry
from .. import threads
from .im2col import _c_contiguous
from .jit import jit


@jit
def _maxpool_forward_kernel(x, ph, pw, sh, sw, pad_top, pad_left, out, argmax):
    """out = max over each window (outside the image counts as -inf); argmax = first winner."""
    n_images, height, width, channels = x.shape
    out_h, out_w = out.shape[1], out.shape[2]
    for row in range(n_images * out_h):
        n, oy = row // out_h, row % out_h
        for ox in range(out_w):
            for i in range(ph):
                iy = oy * sh + i - pad_top
                for j in range(pw):
                    ix = ox * sw + j - pad_left
                    inside = 0 <= iy < height and 0 <= ix < width
                    if i == 0 and j == 0:       # slot 0 starts the window, as in NumPy
                        for c in range(channels):
                            if inside:
                                out[n, oy, ox, c] = x[n, iy, ix, c]
                            else:
                                out[n, oy, ox, c] = -np.inf
                            argmax[n, oy, ox, c] = 0
                    elif inside:                # -inf never beats anything: skip outside
                        for c in range(channels):
                            value = x[n, iy, ix, c]
                            if value > out[n, oy, ox, c]:   # strict: first maximum wins ties
                                out[n, oy, ox, c] = value
                                argmax[n, oy, ox, c] = i * pw + j


@jit
def _maxpool_backward_kernel(dout, argmax, ph, pw, sh, sw, pad_top, pad_left, dx):
    """dx[n, iy, ix, c] = sum of dout over the windows whose argmax is this pixel."""
    n_images, height, width, channels = dx.shape
    out_h, out_w = dout.shape[1], dout.shape[2]
    for row in range(n_images * height):
        n, iy = row // height, row % height
        for ix in range(width):
            for c in range(channels):
                dx[n, iy, ix, c] = 0.0
            for i in range(ph):
                ty = iy + pad_top - i
                if ty < 0 or ty % sh != 0 or ty // sh >= out_h:
                    continue
                oy = ty // sh
                for j in range(pw):
                    tx = ix + pad_left - j
                    if tx < 0 or tx % sw != 0 or tx // sw >= out_w:
                        continue
                    ox = tx // sw
                    slot = i * pw + j
                    for c in range(channels):
                        if argmax[n, oy, ox, c] == slot:
                            dx[n, iy, ix, c] += dout[n, oy, ox, c]


@jit
def _maxpool_backward_disjoint_kernel(dout, argmax, ph, pw, sh, sw, pad_top, pad_left, dx):
    """The same when windows do not overlap (stride >= pool, the usual case): each pixel
    is in at most one window, which writes it directly, row by row. Pixels that no
    window reaches must already be zero."""
    n_images, height, width, channels = dx.shape
    out_h, out_w = dout.shape[1], dout.shape[2]
    for n in range(n_images):
        for oy in range(out_h):
            for i in range(ph):
                iy = oy * sh + i - pad_top
                if iy < 0 or iy >= height:
                    continue
                for ox in range(out_w):
                    for j in range(pw):
                        ix = ox * sw + j - pad_left
                        if ix < 0 or ix >= width:
                            continue
                        slot = i * pw + j
                        for c in range(channels):
                            if argmax[n, oy, ox, c] == slot:
                                dx[n, iy, ix, c] = dout[n, oy, ox, c]
                            else:
                                dx[n, iy, ix, c] = 0.0


def maxpool2d_forward(x, pool_size=(2, 2), strides=(2, 2), padding="valid", out=None,
                      argmax_out=None):
    """x (N, H, W, C) -> (out (N, OH, OW, C), argmax uint8); see ``pooling.maxpool2d_forward``."""
    out_h, out_w, pad_h, pad_w = conv_geometry(x.shape, pool_size, strides, padding)
    shape = (x.shape[0], out_h, out_w, x.shape[3])
    out = np.empty(shape, dtype=x.dtype) if out is None else out
    argmax = np.empty(shape, dtype=np.uint8) if argmax_out is None else argmax_out
    x = _c_contiguous(x)

    def pool(images, _worker):   # a chunk of the batch, one per thread
        _maxpool_forward_kernel(x[images], pool_size[0], pool_size[1], strides[0],
                                strides[1], pad_h[0], pad_w[0], out[images], argmax[images])

    threads.map_chunks(pool, threads.batch_chunks(x.shape[0]))
    return out, argmax


def maxpool2d_backward(dout, argmax, x_shape, pool_size=(2, 2), strides=(2, 2),
                       padding="valid", out=None):
    """Route each dout value to its window's argmax -> (N, H, W, C).

    ``out``, if given, is a C-contiguous (N, H, W, C) array to write the result into.
    """
    out_h, out_w, pad_h, pad_w = conv_geometry(x_shape, pool_size, strides, padding)
    (ph, pw), (sh, sw) = pool_size, strides
    dout, argmax = _c_contiguous(dout), _c_contiguous(argmax)
    dx = np.empty(x_shape, dtype=dout.dtype) if out is None else out
    if sh < ph or sw < pw:   # overlapping windows: gather and sum at each pixel
        kernel = _maxpool_backward_kernel
    else:
        kernel = _maxpool_backward_disjoint_kernel
        windows_tile_input = (pad_h[0] == pad_w[0] == 0 and sh == ph and sw == pw
                              and out_h * sh == x_shape[1] and out_w * sw == x_shape[2])
        if not windows_tile_input:   # pixels that no window reaches get no write: zero them
            dx[...] = 0.0

    def route(images, _worker):   # a chunk of the batch, one per thread
        kernel(dout[images], argmax[images], ph, pw, sh, sw, pad_h[0], pad_w[0],
               dx[images])

    threads.map_chunks(route, threads.batch_chunks(x_shape[0]))
    return dx
