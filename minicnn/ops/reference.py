"""Convolution and max pooling written as plain loops, for reading.

These do exactly what ``conv.py`` and ``pooling.py`` do, one multiply-add at a
time, in the order a textbook would write it. They are slow (pure Python) and
NumPy-only; the tests run them on small inputs and check that the fast
versions give the same numbers.

Layout: x (N, H, W, C), kernel (KH, KW, C, F), out (N, OH, OW, F).
"""
from __future__ import annotations

import numpy as np

from .padding import conv_geometry


def _pad_loops(x, pad_h, pad_w, value):
    n, height, width, channels = x.shape
    padded = np.full((n, height + sum(pad_h), width + sum(pad_w), channels), value, dtype=x.dtype)
    padded[:, pad_h[0]:pad_h[0] + height, pad_w[0]:pad_w[0] + width, :] = x
    return padded


def conv2d_forward_loops(x, kernel, bias=None, strides=(1, 1), padding="valid"):
    """out[n, oy, ox, f] = sum over (ky, kx, c) of x_pad[n, oy*s+ky, ox*s+kx, c] * kernel[ky, kx, c, f]."""
    n_images, _, _, channels = x.shape
    kh, kw, _, filters = kernel.shape
    sh, sw = strides
    out_h, out_w, pad_h, pad_w = conv_geometry(x.shape, (kh, kw), strides, padding)
    x_pad = _pad_loops(x, pad_h, pad_w, 0.0)
    out = np.zeros((n_images, out_h, out_w, filters), dtype=x.dtype)
    for n in range(n_images):
        for oy in range(out_h):
            for ox in range(out_w):
                for f in range(filters):
                    total = 0.0 if bias is None else bias[f]
                    for ky in range(kh):
                        for kx in range(kw):
                            for c in range(channels):
                                total += x_pad[n, oy * sh + ky, ox * sw + kx, c] * kernel[ky, kx, c, f]
                    out[n, oy, ox, f] = total
    return out


def conv2d_backward_loops(dout, x, kernel, strides=(1, 1), padding="valid"):
    """Returns (dx, dkernel, dbias) by the chain rule, term by term.

    Each output out[n, oy, ox, f] used x_pad[n, oy*s+ky, ox*s+kx, c] with weight
    kernel[ky, kx, c, f], so its gradient flows back along that same product.
    """
    n_images, height, width, channels = x.shape
    kh, kw, _, filters = kernel.shape
    sh, sw = strides
    out_h, out_w, pad_h, pad_w = conv_geometry(x.shape, (kh, kw), strides, padding)
    x_pad = _pad_loops(x, pad_h, pad_w, 0.0)
    dx_pad = np.zeros_like(x_pad)
    dkernel = np.zeros_like(kernel)
    dbias = np.zeros(filters, dtype=kernel.dtype)
    for n in range(n_images):
        for oy in range(out_h):
            for ox in range(out_w):
                for f in range(filters):
                    g = dout[n, oy, ox, f]
                    dbias[f] += g
                    for ky in range(kh):
                        for kx in range(kw):
                            for c in range(channels):
                                iy, ix = oy * sh + ky, ox * sw + kx
                                dkernel[ky, kx, c, f] += x_pad[n, iy, ix, c] * g
                                dx_pad[n, iy, ix, c] += kernel[ky, kx, c, f] * g
    dx = dx_pad[:, pad_h[0]:pad_h[0] + height, pad_w[0]:pad_w[0] + width, :]
    return dx, dkernel, dbias


def maxpool2d_forward_loops(x, pool_size=(2, 2), strides=(2, 2), padding="valid"):
    """out[n, oy, ox, c] = max of the window; padding ("same") never wins."""
    n_images, _, _, channels = x.shape
    ph, pw = pool_size
    sh, sw = strides
    out_h, out_w, pad_h, pad_w = conv_geometry(x.shape, pool_size, strides, padding)
    x_pad = _pad_loops(x, pad_h, pad_w, -np.inf)
    out = np.zeros((n_images, out_h, out_w, channels), dtype=x.dtype)
    for n in range(n_images):
        for oy in range(out_h):
            for ox in range(out_w):
                for c in range(channels):
                    out[n, oy, ox, c] = x_pad[n, oy * sh:oy * sh + ph, ox * sw:ox * sw + pw, c].max()
    return out


def maxpool2d_backward_loops(dout, x, pool_size=(2, 2), strides=(2, 2), padding="valid"):
    """Each gradient goes to the (first) position of its window's maximum."""
    n_images, height, width, channels = x.shape
    ph, pw = pool_size
    sh, sw = strides
    out_h, out_w, pad_h, pad_w = conv_geometry(x.shape, pool_size, strides, padding)
    x_pad = _pad_loops(x, pad_h, pad_w, -np.inf)
    dx_pad = np.zeros_like(x_pad)
    for n in range(n_images):
        for oy in range(out_h):
            for ox in range(out_w):
                for c in range(channels):
                    window = x_pad[n, oy * sh:oy * sh + ph, ox * sw:ox * sw + pw, c]
                    ky, kx = np.unravel_index(np.argmax(window), window.shape)
                    dx_pad[n, oy * sh + ky, ox * sw + kx, c] += dout[n, oy, ox, c]
    return dx_pad[:, pad_h[0]:pad_h[0] + height, pad_w[0]:pad_w[0] + width, :]


def maxpool2d_argmax_loops(x, pool_size=(2, 2), strides=(2, 2), padding="valid"):
    """argmax[n, oy, ox, c] = the slot i * pool_w + j of the window's (first) maximum, uint8."""
    n_images, _, _, channels = x.shape
    ph, pw = pool_size
    sh, sw = strides
    out_h, out_w, pad_h, pad_w = conv_geometry(x.shape, pool_size, strides, padding)
    x_pad = _pad_loops(x, pad_h, pad_w, -np.inf)
    argmax = np.zeros((n_images, out_h, out_w, channels), dtype=np.uint8)
    for n in range(n_images):
        for oy in range(out_h):
            for ox in range(out_w):
                for c in range(channels):
                    window = x_pad[n, oy * sh:oy * sh + ph, ox * sw:ox * sw + pw, c]
                    argmax[n, oy, ox, c] = np.argmax(window)   # row-major: i * pw + j
    return argmax


def maxpool2d_backward_argmax_loops(dout, argmax, x_shape, pool_size=(2, 2), strides=(2, 2),
                                    padding="valid"):
    """:func:`maxpool2d_backward_loops` from the forward pass's argmax instead of x."""
    n_images, height, width, channels = x_shape
    ph, pw = pool_size
    sh, sw = strides
    out_h, out_w, pad_h, pad_w = conv_geometry(x_shape, pool_size, strides, padding)
    dx_pad = np.zeros((n_images, height + sum(pad_h), width + sum(pad_w), channels),
                      dtype=dout.dtype)
    for n in range(n_images):
        for oy in range(out_h):
            for ox in range(out_w):
                for c in range(channels):
                    ky, kx = divmod(int(argmax[n, oy, ox, c]), pw)
                    dx_pad[n, oy * sh + ky, ox * sw + kx, c] += dout[n, oy, ox, c]
    return dx_pad[:, pad_h[0]:pad_h[0] + height, pad_w[0]:pad_w[0] + width, :]
