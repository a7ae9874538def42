"""Convolution as one matrix product: im2col, col2im and the conv2d passes.

Layout is channels-last, as in Keras:

    x       (N, H, W, C)           input batch
    kernel  (KH, KW, C, F)         F filters
    cols    (N*OH*OW, KH*KW*C)     one row per output pixel: its receptive field
    out     (N, OH, OW, F)         = cols @ kernel.reshape(KH*KW*C, F) + bias

A convolution is then ``im2col`` followed by a single matrix product, which
BLAS (or cuBLAS) does far faster than any loop we could write. The backward
pass needs the adjoint of im2col, ``col2im``: every row of ``cols`` is added
back to the window it came from, so pixels shared by overlapping windows
collect the sum of their gradients.

These functions take NumPy or CuPy arrays and return arrays of the same kind.
They are the portable definition: the engine's numba and CuPy kernels compute the
same things faster, and the tests prove them equal.
"""
from __future__ import annotations

import functools

from ..backend import get_array_module
from .padding import conv_geometry, pad

__all__ = ["col2im", "column_sums", "contiguous_view", "conv2d_backward", "conv2d_forward",
           "conv_geometry", "im2col", "matmul"]


def im2col(x, kernel_size, strides=(1, 1), padding="valid", out=None):
    """Unfold every receptive field of ``x`` into a row.

    x: (N, H, W, C) -> cols: (N*OH*OW, KH*KW*C), columns ordered (kh, kw, c)
    to match ``kernel.reshape(KH*KW*C, F)``. ``out``, if given, is a C-contiguous
    array of that shape to write into (a buffer reused between steps).
    """
    xp = get_array_module(x)
    n, _, _, channels = x.shape
    kh, kw = kernel_size
    sh, sw = strides
    out_h, out_w, pad_h, pad_w = conv_geometry(x.shape, kernel_size, strides, padding)
    x_padded = pad(x, pad_h, pad_w)                                  # (N, H+ph, W+pw, C)
    shape = (n, out_h, out_w, kh, kw, channels)
    cols = xp.empty(shape, dtype=x.dtype) if out is None else out.reshape(shape)
    # One strided slice per kernel tap: KH*KW copies of the whole batch,
    # instead of N*OH*OW small copies of a window each.
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = x_padded[:, i:i + sh * out_h:sh, j:j + sw * out_w:sw, :]
    return cols.reshape(n * out_h * out_w, kh * kw * channels)      # (N*OH*OW, KH*KW*C)


def col2im(cols, x_shape, kernel_size, strides=(1, 1), padding="valid", out=None):
    """The adjoint of :func:`im2col`: scatter-add rows back into an image.

    cols: (N*OH*OW, KH*KW*C) -> (N, H, W, C). Overlapping windows add up, so
    ``<im2col(x), y> == <x, col2im(y)>`` for all x, y (a tested property).
    ``out``, if given, is an (N, H, W, C) array to write the result into.
    """
    xp = get_array_module(cols)
    n, height, width, channels = x_shape
    kh, kw = kernel_size
    sh, sw = strides
    out_h, out_w, pad_h, pad_w = conv_geometry(x_shape, kernel_size, strides, padding)
    padded = xp.zeros((n, height + sum(pad_h), width + sum(pad_w), channels), dtype=cols.dtype)
    cols6 = cols.reshape(n, out_h, out_w, kh, kw, channels)
    for i in range(kh):
        for j in range(kw):
            padded[:, i:i + sh * out_h:sh, j:j + sw * out_w:sw, :] += cols6[:, :, :, i, j, :]
    x = padded[:, pad_h[0]:pad_h[0] + height, pad_w[0]:pad_w[0] + width, :]   # unpad
    if out is None:
        return x
    out[...] = x
    return out


def conv2d_forward(x, kernel, bias=None, strides=(1, 1), padding="valid", out=None,
                   cols_out=None, im2col=im2col):
    """Cross-correlation of x (N, H, W, C) with kernel (KH, KW, C, F) -> (N, OH, OW, F),
    OH = (H + pad_top + pad_bottom - KH) // SH + 1 (likewise OW).

    Returns ``(out, cols)``; the layer keeps ``cols`` for the backward pass.
    ``out`` (N, OH, OW, F) and ``cols_out`` (N*OH*OW, KH*KW*C), if given, are
    C-contiguous buffers to write into instead of allocating new arrays. ``im2col``: the
    function that unfolds x (the engine passes its numba or CuPy kernel).
    """
    kh, kw, channels, filters = kernel.shape
    out_h, out_w, _, _ = conv_geometry(x.shape, (kh, kw), strides, padding)
    cols = im2col(x, (kh, kw), strides, padding, out=cols_out)       # (N*OH*OW, KH*KW*C)
    out_2d = None if out is None else contiguous_view(out, (-1, filters))
    out_2d = matmul(cols, kernel.reshape(kh * kw * channels, filters), out=out_2d)  # (N*OH*OW, F)
    if bias is not None:
        out_2d += bias
    return out_2d.reshape(x.shape[0], out_h, out_w, filters), cols


def conv2d_backward(dout, cols, x_shape, kernel, strides=(1, 1), padding="valid",
                    need_input_grad=True, dx_out=None, dcols_out=None, col2im=col2im):
    """Gradients of :func:`conv2d_forward`: dout (N, OH, OW, F), the gradient of its output,
    and cols, its im2col matrix -> ``(dx, dkernel, dbias)``.

    ``dx`` (N, H, W, C) is None when not needed (the first layer of a network never needs
    it). ``dx_out`` (N, H, W, C) and ``dcols_out`` (N*OH*OW, KH*KW*C), if given, are
    buffers to write into. ``col2im``: the function that folds the columns back (the
    engine passes its numba or CuPy kernel).
    """
    kh, kw, channels, filters = kernel.shape
    dout_2d = dout.reshape(-1, filters)                               # (N*OH*OW, F)
    dkernel = (cols.T @ dout_2d).reshape(kernel.shape)                # (KH*KW*C, F) -> kernel's
    dbias = column_sums(dout_2d)                                      # (F,)
    dx = None
    if need_input_grad:
        dcols = matmul(dout_2d, kernel.reshape(kh * kw * channels, filters).T,
                       out=dcols_out)                                 # (N*OH*OW, KH*KW*C)
        dx = col2im(dcols, x_shape, (kh, kw), strides, padding, out=dx_out)   # (N, H, W, C)
    return dx, dkernel, dbias


def matmul(a, b, out=None):
    """a @ b, written into ``out`` (a C-contiguous buffer of the result's shape) if given."""
    if out is None:
        return a @ b
    return get_array_module(a).matmul(a, b, out=out)


def column_sums(matrix):
    """Sum over the rows of ``matrix`` (M, F) -> (F,): the gradient of a bias.

    ``matrix.sum(axis=0)`` is the natural way to write it, but the columns of a
    conv layer's gradient are few and very long, which reductions handle badly
    (on the GPU and the CPU alike); the same sum as a matrix-vector product with
    ones goes to (cu)BLAS, several times faster.
    """
    xp = get_array_module(matrix)
    return _ones(xp, matrix.shape[0], matrix.dtype) @ matrix


@functools.lru_cache(maxsize=16)
def _ones(xp, length, dtype):
    """A vector of ones, made once per length (a training step needs the same few)."""
    return xp.ones(length, dtype=dtype)


def contiguous_view(array, shape):
    """``array.reshape(shape)``, refusing to return a copy (writes must reach ``array``)."""
    if not array.flags.c_contiguous:
        raise ValueError(f"expected a C-contiguous output buffer, got one of shape "
                         f"{tuple(array.shape)} with strides {array.strides}")
    return array.reshape(shape)
