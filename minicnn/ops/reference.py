"""Convolution, pooling and batch normalization written as plain loops, for reading.

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
    """Each gradient goes to the (first) position of its window's maximum: the argmax
    of the forward pass, then the routing by it."""
    argmax = maxpool2d_argmax_loops(x, pool_size, strides, padding)
    return maxpool2d_backward_argmax_loops(dout, argmax, x.shape, pool_size, strides, padding)


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


def avgpool2d_forward_loops(x, pool_size=(2, 2), strides=(2, 2), padding="valid"):
    """out[n, oy, ox, c] = the mean of the window's image pixels (padding is not counted)."""
    n_images, height, width, channels = x.shape
    ph, pw = pool_size
    sh, sw = strides
    out_h, out_w, pad_h, pad_w = conv_geometry(x.shape, pool_size, strides, padding)
    out = np.zeros((n_images, out_h, out_w, channels), dtype=x.dtype)
    for n in range(n_images):
        for oy in range(out_h):
            for ox in range(out_w):
                for c in range(channels):
                    total, count = 0.0, 0
                    for i in range(ph):
                        for j in range(pw):
                            iy, ix = oy * sh + i - pad_h[0], ox * sw + j - pad_w[0]
                            if 0 <= iy < height and 0 <= ix < width:
                                total += x[n, iy, ix, c]
                                count += 1
                    out[n, oy, ox, c] = total / count
    return out


def avgpool2d_backward_loops(dout, x_shape, pool_size=(2, 2), strides=(2, 2), padding="valid"):
    """Each window hands dout / count to every image pixel it covers."""
    n_images, height, width, channels = x_shape
    ph, pw = pool_size
    sh, sw = strides
    out_h, out_w, pad_h, pad_w = conv_geometry(x_shape, pool_size, strides, padding)
    dx = np.zeros(x_shape, dtype=dout.dtype)
    for n in range(n_images):
        for oy in range(out_h):
            for ox in range(out_w):
                inside = [(oy * sh + i - pad_h[0], ox * sw + j - pad_w[0])
                          for i in range(ph) for j in range(pw)
                          if 0 <= oy * sh + i - pad_h[0] < height
                          and 0 <= ox * sw + j - pad_w[0] < width]
                for c in range(channels):
                    for iy, ix in inside:
                        dx[n, iy, ix, c] += dout[n, oy, ox, c] / len(inside)
    return dx


def global_pool_loops(x, kind):
    """out[n, c] = the mean ("average") or maximum ("max") of x[n, :, :, c]."""
    n_images, height, width, channels = x.shape
    out = np.zeros((n_images, channels), dtype=x.dtype)
    for n in range(n_images):
        for c in range(channels):
            values = [x[n, i, j, c] for i in range(height) for j in range(width)]
            out[n, c] = sum(values) / len(values) if kind == "average" else max(values)
    return out


def global_pool_backward_loops(dout, x, kind):
    """dx (N, H, W, C): dout / (H * W) everywhere ("average"), or dout shared among the
    pixels that hold the maximum ("max", as TensorFlow's reduce_max)."""
    n_images, height, width, channels = x.shape
    dx = np.zeros(x.shape, dtype=dout.dtype)
    for n in range(n_images):
        for c in range(channels):
            plane = x[n, :, :, c]
            chosen = (np.ones_like(plane, dtype=bool) if kind == "average"
                      else plane == plane.max())
            dx[n, :, :, c] = np.where(chosen, dout[n, c] / chosen.sum(), 0)
    return dx


def batchnorm_moments_loops(x):
    """Per channel of x (..., C): mean = sum / m, then variance = sum (x - mean)^2 / m."""
    rows = x.reshape(-1, x.shape[-1])        # (m, C): every value of a channel in a column
    m, channels = rows.shape
    mean = np.zeros(channels, dtype=x.dtype)
    variance = np.zeros(channels, dtype=x.dtype)
    for c in range(channels):
        total = 0.0
        for r in range(m):
            total += rows[r, c]
        mean[c] = total / m
        squares = 0.0
        for r in range(m):
            squares += (rows[r, c] - mean[c]) ** 2
        variance[c] = squares / m
    return mean, variance


def batchnorm_forward_loops(x, mean, variance, gamma, beta, epsilon):
    """y = gamma * (x - mean) / sqrt(variance + epsilon) + beta, value by value (x (..., C))."""
    rows = x.reshape(-1, x.shape[-1])
    y = np.zeros_like(rows)
    for r in range(rows.shape[0]):
        for c in range(rows.shape[1]):
            x_hat = (rows[r, c] - mean[c]) / np.sqrt(variance[c] + epsilon)
            y[r, c] = (1 if gamma is None else gamma[c]) * x_hat + (0 if beta is None else beta[c])
    return y.reshape(x.shape)


def batchnorm_backward_loops(dout, x, mean, variance, gamma, epsilon, batch_stats=True):
    """(dx, dgamma, dbeta) by the chain rule, channel by channel (see ops.normalization):
    first the two sums, then dx from them."""
    rows, grad = x.reshape(-1, x.shape[-1]), dout.reshape(-1, x.shape[-1])
    m, channels = rows.shape
    dx = np.zeros_like(grad)
    dgamma = np.zeros(channels, dtype=dout.dtype)
    dbeta = np.zeros(channels, dtype=dout.dtype)
    for c in range(channels):
        s = 1 / np.sqrt(variance[c] + epsilon)
        k = s * (1 if gamma is None else gamma[c])
        for r in range(m):
            dbeta[c] += grad[r, c]
            dgamma[c] += grad[r, c] * (rows[r, c] - mean[c]) * s
        for r in range(m):
            if batch_stats:
                x_hat = (rows[r, c] - mean[c]) * s
                dx[r, c] = k * (grad[r, c] - dbeta[c] / m - x_hat * dgamma[c] / m)
            else:
                dx[r, c] = k * grad[r, c]
    return dx.reshape(x.shape), dgamma, dbeta
