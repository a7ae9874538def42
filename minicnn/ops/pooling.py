"""Pooling, forward and backward, channels-last.

    x     (N, H, W, C)  ->  out (N, OH, OW, C)

Max pooling records, for every output, which slot of its window
(``i * pool_w + j``) held the maximum; the backward pass routes each
gradient to exactly that input position and nowhere else. With ties the
first maximum in row-major window order wins, as in TensorFlow.

Average pooling divides each window's sum by the number of *image* pixels in it:
with "same" padding the padded border is left out of the average (TensorFlow's
``avg_pool``, so Keras's). Global pooling reduces the whole H x W plane.
"""
from __future__ import annotations

from ..backend import get_array_module
from .padding import conv_geometry, pad


def maxpool2d_forward(x, pool_size=(2, 2), strides=(2, 2), padding="valid", out=None,
                      argmax_out=None):
    """Returns ``(out, argmax)``; ``argmax`` (N, OH, OW, C) uint8 is the winning slot.

    ``out`` and ``argmax_out``, if given, are C-contiguous arrays of those shapes
    (float and uint8) to write the results into.
    """
    xp = get_array_module(x)
    ph, pw = pool_size
    sh, sw = strides
    out_h, out_w, pad_h, pad_w = conv_geometry(x.shape, pool_size, strides, padding)
    # "same" pads with -inf so that padding never wins a window.
    x_padded = pad(x, pad_h, pad_w, value=-xp.inf)
    given_out, out = out, None
    argmax = xp.zeros((x.shape[0], out_h, out_w, x.shape[3]), dtype=xp.uint8)
    for i in range(ph):
        for j in range(pw):
            window_slot = x_padded[:, i:i + sh * out_h:sh, j:j + sw * out_w:sw, :]
            if out is None:
                out = window_slot.copy()
                continue
            better = window_slot > out          # strict: the first maximum wins ties
            out = xp.where(better, window_slot, out)
            argmax[better] = i * pw + j
    return _into(out, given_out), _into(argmax, argmax_out)


def maxpool2d_backward(dout, argmax, x_shape, pool_size=(2, 2), strides=(2, 2),
                       padding="valid", out=None):
    """Gradient w.r.t. the input: each dout value goes to its window's argmax.

    ``out``, if given, is a C-contiguous (N, H, W, C) array to write the result into.
    """
    xp = get_array_module(dout)
    n, height, width, channels = x_shape
    ph, pw = pool_size
    sh, sw = strides
    out_h, out_w, pad_h, pad_w = conv_geometry(x_shape, pool_size, strides, padding)
    dx_padded = xp.zeros((n, height + sum(pad_h), width + sum(pad_w), channels),
                           dtype=dout.dtype)
    for i in range(ph):
        for j in range(pw):
            routed = xp.where(argmax == i * pw + j, dout, 0)
            dx_padded[:, i:i + sh * out_h:sh, j:j + sw * out_w:sw, :] += routed
    dx = dx_padded[:, pad_h[0]:pad_h[0] + height, pad_w[0]:pad_w[0] + width, :]
    return _into(dx, out)


def window_counts(x_shape, pool_size, strides, padding, xp):
    """(OH, OW, 1): how many image pixels each window covers (the padded border does not
    count), as float: pool_h * pool_w everywhere for "valid"."""
    _, height, width, _ = x_shape
    ones = xp.ones((1, height, width, 1), dtype=xp.float64)
    return avgpool2d_sums(ones, pool_size, strides, padding)[0]


def avgpool2d_sums(x, pool_size, strides, padding):
    """Sum over each window of x (N, H, W, C) -> (N, OH, OW, C), the border counted as 0."""
    ph, pw = pool_size
    sh, sw = strides
    out_h, out_w, pad_h, pad_w = conv_geometry(x.shape, pool_size, strides, padding)
    x_padded = pad(x, pad_h, pad_w, value=0.0)
    total = None
    for i in range(ph):
        for j in range(pw):
            window_slot = x_padded[:, i:i + sh * out_h:sh, j:j + sw * out_w:sw, :]
            total = window_slot.copy() if total is None else total + window_slot
    return total


def avgpool2d_forward(x, pool_size=(2, 2), strides=(2, 2), padding="valid"):
    """out[n, oy, ox, c] = mean of x over the window's image pixels."""
    xp = get_array_module(x)
    counts = window_counts(x.shape, pool_size, strides, padding, xp).astype(x.dtype)
    return avgpool2d_sums(x, pool_size, strides, padding) / counts


def avgpool2d_backward(dout, x_shape, pool_size=(2, 2), strides=(2, 2), padding="valid"):
    """dx (N, H, W, C): each pixel gets dout / count from every window that covers it."""
    xp = get_array_module(dout)
    n, height, width, channels = x_shape
    ph, pw = pool_size
    sh, sw = strides
    out_h, out_w, pad_h, pad_w = conv_geometry(x_shape, pool_size, strides, padding)
    share = dout / window_counts(x_shape, pool_size, strides, padding, xp).astype(dout.dtype)
    dx_padded = xp.zeros((n, height + sum(pad_h), width + sum(pad_w), channels),
                         dtype=dout.dtype)
    for i in range(ph):
        for j in range(pw):
            dx_padded[:, i:i + sh * out_h:sh, j:j + sw * out_w:sw, :] += share
    return dx_padded[:, pad_h[0]:pad_h[0] + height, pad_w[0]:pad_w[0] + width, :]


def global_avgpool_forward(x):
    """x (N, H, W, C) -> (N, C), the mean over H and W."""
    return x.mean(axis=(1, 2))


def global_avgpool_backward(dout, x_shape):
    """dout (N, C) -> dx (N, H, W, C): every pixel gets dout / (H * W)."""
    xp = get_array_module(dout)
    _, height, width, _ = x_shape
    share = dout / dout.dtype.type(height * width)
    return xp.broadcast_to(share[:, None, None, :], x_shape).copy()


def global_maxpool_forward(x):
    """x (N, H, W, C) -> (N, C), the maximum over H and W."""
    return x.max(axis=(1, 2))


def global_maxpool_backward(dout, x, y):
    """dout (N, C) -> dx (N, H, W, C). As TensorFlow's ``reduce_max`` (Keras's global max
    pooling), a tie shares the gradient equally among the pixels that hold the maximum."""
    winners = (x == y[:, None, None, :]).astype(dout.dtype)           # (N, H, W, C)
    count = winners.sum(axis=(1, 2))                                  # (N, C), >= 1
    return winners * (dout / count)[:, None, None, :]


def _into(result, out):
    """``result``, copied into ``out`` when a destination array was given."""
    if out is None:
        return result
    out[...] = result
    return out
