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
On the CPU they hand the copy loops to numba kernels when those are available
(``minicnn.ops.cpu_kernels``); the NumPy code below is the portable definition.
"""
from __future__ import annotations

import functools

from ..backend import get_array_module
from .padding import conv_output_length, padding_amounts


def conv_geometry(x_shape, kernel_size, strides, padding):
    """Output size and padding of a 2-D window op on a (N, H, W, C) input.

    Returns ``(out_h, out_w, (pad_top, pad_bottom), (pad_left, pad_right))``.
    """
    _, height, width, _ = x_shape
    kh, kw = kernel_size
    sh, sw = strides
    out_h = conv_output_length(height, kh, sh, padding)
    out_w = conv_output_length(width, kw, sw, padding)
    return (out_h, out_w,
            padding_amounts(height, kh, sh, padding),
            padding_amounts(width, kw, sw, padding))


def _pad(x, pad_h, pad_w, value=0.0):
    xp = get_array_module(x)
    if pad_h == (0, 0) and pad_w == (0, 0):
        return x
    return xp.pad(x, ((0, 0), pad_h, pad_w, (0, 0)), mode="constant", constant_values=value)


def im2col(x, kernel_size, strides=(1, 1), padding="valid", out=None):
    """Unfold every receptive field of ``x`` into a row.

    x: (N, H, W, C) -> cols: (N*OH*OW, KH*KW*C), columns ordered (kh, kw, c)
    to match ``kernel.reshape(KH*KW*C, F)``. ``out``, if given, is a C-contiguous
    array of that shape to write into (a buffer reused between steps).
    """
    from . import cpu_kernels, gpu_kernels

    if cpu_kernels.usable(x):
        return cpu_kernels.im2col(x, kernel_size, strides, padding, out=out)
    if gpu_kernels.usable(x):
        return gpu_kernels.im2col(x, kernel_size, strides, padding, out=out)
    xp = get_array_module(x)
    n, _, _, channels = x.shape
    kh, kw = kernel_size
    sh, sw = strides
    out_h, out_w, pad_h, pad_w = conv_geometry(x.shape, kernel_size, strides, padding)
    x_padded = _pad(x, pad_h, pad_w)
    shape = (n, out_h, out_w, kh, kw, channels)
    cols = xp.empty(shape, dtype=x.dtype) if out is None else out.reshape(shape)
    # One strided slice per kernel tap: KH*KW copies of the whole batch,
    # instead of N*OH*OW small copies of a window each.
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = x_padded[:, i:i + sh * out_h:sh, j:j + sw * out_w:sw, :]
    return cols.reshape(n * out_h * out_w, kh * kw * channels)


def col2im(cols, x_shape, kernel_size, strides=(1, 1), padding="valid", out=None):
    """The adjoint of :func:`im2col`: scatter-add rows back into an image.

    cols: (N*OH*OW, KH*KW*C) -> (N, H, W, C). Overlapping windows add up, so
    ``<im2col(x), y> == <x, col2im(y)>`` for all x, y (a tested property).
    ``out``, if given, is an (N, H, W, C) array to write the result into.
    """
    from . import cpu_kernels, gpu_kernels

    if cpu_kernels.usable(cols):
        return cpu_kernels.col2im(cols, x_shape, kernel_size, strides, padding, out=out)
    if gpu_kernels.usable(cols):
        return gpu_kernels.col2im(cols, x_shape, kernel_size, strides, padding, out=out)
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
    x = padded[:, pad_h[0]:pad_h[0] + height, pad_w[0]:pad_w[0] + width, :]
    if out is None:
        return x
    out[...] = x
    return out


def _matmul(a, b, out=None):
    """a @ b, written into ``out`` (a C-contiguous buffer of the result's shape) if given."""
    if out is None:
        return a @ b
    return get_array_module(a).matmul(a, b, out=out)


def conv2d_forward(x, kernel, bias=None, strides=(1, 1), padding="valid", out=None,
                   cols_out=None):
    """Cross-correlation of x (N, H, W, C) with kernel (KH, KW, C, F) -> (N, OH, OW, F).

    Returns ``(out, cols)``; ``cols`` is kept by the layer for the backward pass.
    ``out`` (N, OH, OW, F) and ``cols_out`` (N*OH*OW, KH*KW*C), if given, are
    C-contiguous buffers to write into instead of allocating new arrays.
    """
    kh, kw, channels, filters = kernel.shape
    out_h, out_w, _, _ = conv_geometry(x.shape, (kh, kw), strides, padding)
    cols = im2col(x, (kh, kw), strides, padding, out=cols_out)
    out_2d = None if out is None else _contiguous_view(out, (-1, filters))  # (N*OH*OW, F)
    out_2d = _matmul(cols, kernel.reshape(kh * kw * channels, filters), out=out_2d)
    if bias is not None:
        out_2d += bias
    return out_2d.reshape(x.shape[0], out_h, out_w, filters), cols


def conv2d_backward(grad_out, cols, x_shape, kernel, strides=(1, 1), padding="valid",
                    need_input_grad=True, grad_x_out=None, grad_cols_out=None):
    """Gradients of :func:`conv2d_forward`.

    grad_out: (N, OH, OW, F); cols: the forward's im2col matrix.
    Returns ``(grad_x, grad_kernel, grad_bias)``; ``grad_x`` is None when not needed
    (the first layer of a network never needs it). ``grad_x_out`` (N, H, W, C) and
    ``grad_cols_out`` (N*OH*OW, KH*KW*C), if given, are buffers to write into.
    """
    kh, kw, channels, filters = kernel.shape
    grad_2d = grad_out.reshape(-1, filters)                       # (N*OH*OW, F)
    grad_kernel = (cols.T @ grad_2d).reshape(kernel.shape)        # (KH*KW*C, F)
    grad_bias = column_sums(grad_2d)
    grad_x = None
    if need_input_grad:
        grad_cols = _matmul(grad_2d, kernel.reshape(kh * kw * channels, filters).T,
                            out=grad_cols_out)                    # (N*OH*OW, KH*KW*C)
        grad_x = col2im(grad_cols, x_shape, (kh, kw), strides, padding, out=grad_x_out)
    return grad_x, grad_kernel, grad_bias


def column_sums(matrix):
    """Sum over the rows of ``matrix`` (M, F) -> (F,): the gradient of a bias.

    ``matrix.sum(axis=0)`` is the natural way to write it, but the columns of a
    conv layer's gradient are few and very long, which reductions handle badly:
    CuPy took ~17 ms on an H100 for the tutorial's first layer ((720000, 32)),
    NumPy 0.10 ms per image of its second ((5625, 32)). The same sum as a
    matrix-vector product with ones goes to (cu)BLAS: ~0.07 ms on the H100,
    0.01 ms per image on the CPU.
    """
    xp = get_array_module(matrix)
    return _ones(xp, matrix.shape[0], matrix.dtype) @ matrix


@functools.lru_cache(maxsize=16)
def _ones(xp, length, dtype):
    """A vector of ones, made once per length (a training step needs the same few)."""
    return xp.ones(length, dtype=dtype)


def _contiguous_view(array, shape):
    """``array.reshape(shape)``, refusing to return a copy (writes must reach ``array``)."""
    if not array.flags.c_contiguous:
        raise ValueError(f"expected a C-contiguous output buffer, got one of shape "
                         f"{tuple(array.shape)} with strides {array.strides}")
    return array.reshape(shape)
