"""Max pooling, forward and backward, channels-last.

    x     (N, H, W, C)  ->  out (N, OH, OW, C)

The forward pass records, for every output, which slot of its window
(``i * pool_w + j``) held the maximum; the backward pass routes each
gradient to exactly that input position and nowhere else. With ties the
first maximum in row-major window order wins, as in TensorFlow.
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


def _into(result, out):
    """``result``, copied into ``out`` when a destination array was given."""
    if out is None:
        return result
    out[...] = result
    return out
