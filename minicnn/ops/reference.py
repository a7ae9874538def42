"""Convolution and max pooling written as plain loops, for reading.

These do exactly what ``conv.py`` and ``pooling.py`` do, one multiply-add at a
time, in the order a textbook would write it. They are slow (pure Python) and
NumPy-only; the tests run them on small inputs and check that the fast
versions give the same numbers.

Layout: x (N, H, W, C), kernel (KH, KW, C, F), out (N, OH, OW, F).
"""
from __future__ import annotations

import numpy as np

from .conv import conv_geometry


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


def conv2d_backward_loops(grad_out, x, kernel, strides=(1, 1), padding="valid"):
    """Returns (grad_x, grad_kernel, grad_bias) by the chain rule, term by term.

    Each output out[n, oy, ox, f] used x_pad[n, oy*s+ky, ox*s+kx, c] with weight
    kernel[ky, kx, c, f], so its gradient flows back along that same product.
    """
    n_images, height, width, channels = x.shape
    kh, kw, _, filters = kernel.shape
    sh, sw = strides
    out_h, out_w, pad_h, pad_w = conv_geometry(x.shape, (kh, kw), strides, padding)
    x_pad = _pad_loops(x, pad_h, pad_w, 0.0)
    grad_x_pad = np.zeros_like(x_pad)
    grad_kernel = np.zeros_like(kernel)
    grad_bias = np.zeros(filters, dtype=kernel.dtype)
    for n in range(n_images):
        for oy in range(out_h):
            for ox in range(out_w):
                for f in range(filters):
                    g = grad_out[n, oy, ox, f]
                    grad_bias[f] += g
                    for ky in range(kh):
                        for kx in range(kw):
                            for c in range(channels):
                                iy, ix = oy * sh + ky, ox * sw + kx
                                grad_kernel[ky, kx, c, f] += x_pad[n, iy, ix, c] * g
                                grad_x_pad[n, iy, ix, c] += kernel[ky, kx, c, f] * g
    grad_x = grad_x_pad[:, pad_h[0]:pad_h[0] + height, pad_w[0]:pad_w[0] + width, :]
    return grad_x, grad_kernel, grad_bias


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


def maxpool2d_backward_loops(grad_out, x, pool_size=(2, 2), strides=(2, 2), padding="valid"):
    """Each gradient goes to the (first) position of its window's maximum."""
    n_images, height, width, channels = x.shape
    ph, pw = pool_size
    sh, sw = strides
    out_h, out_w, pad_h, pad_w = conv_geometry(x.shape, pool_size, strides, padding)
    x_pad = _pad_loops(x, pad_h, pad_w, -np.inf)
    grad_pad = np.zeros_like(x_pad)
    for n in range(n_images):
        for oy in range(out_h):
            for ox in range(out_w):
                for c in range(channels):
                    window = x_pad[n, oy * sh:oy * sh + ph, ox * sw:ox * sw + pw, c]
                    ky, kx = np.unravel_index(np.argmax(window), window.shape)
                    grad_pad[n, oy * sh + ky, ox * sw + kx, c] += grad_out[n, oy, ox, c]
    return grad_pad[:, pad_h[0]:pad_h[0] + height, pad_w[0]:pad_w[0] + width, :]
