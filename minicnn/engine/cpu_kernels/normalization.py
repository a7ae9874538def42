"""numba batch normalization over the last axis: two passes over the activation each way.

``ops.normalization`` is the definition; its NumPy code makes a temporary array for
every step of a formula (x - mean, its square, x_hat, dout * x_hat...), six or more
passes over memory. Here, on x seen as (rows, C) with rows = N*H*W:

    forward:  pass 1  per-channel sums of (x - x[0]) and of its square (float64)
              pass 2  y = x * scale + offset         (scale, offset per channel)
    backward: pass 1  per-channel sums of dout and of dout * (x - mean) (float64)
              pass 2  dx = a * dout + b * (x - mean) + c     (a, b, c per channel)
    inference backward: one pass, the two sums and dx = a * dout together.

The sums start from each channel's first value (``shift``), so that the variance,
sum (x - shift)^2 / m - (sum (x - shift) / m)^2, does not lose its digits to a mean
that is large next to the spread. Each thread sums a chunk of rows; the chunks'
sums are added in chunk order (``threads.sum_chunks``).
"""
from __future__ import annotations

import numpy as np

from .. import threads
from .im2col import _c_contiguous
from .jit import jit


@jit
def _shifted_sums_kernel(x, shift, sums, squares):
    """sums[c] = sum over rows of (x[r, c] - shift[c]); squares[c] the same of its square."""
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            d = np.float64(x[r, c]) - shift[c]
            sums[c] += d
            squares[c] += d * d


@jit
def _affine_kernel(x, scale, offset, out):
    """out = x * scale + offset, per channel (the normalization, gamma and beta in one)."""
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            out[r, c] = x[r, c] * scale[c] + offset[c]


@jit
def _gradient_sums_kernel(dout, x, mean, sum_dout, sum_dout_centered):
    """sum_dout[c] = sum of dout[:, c]; sum_dout_centered[c] = sum of dout * (x - mean)."""
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            g = np.float64(dout[r, c])
            sum_dout[c] += g
            sum_dout_centered[c] += g * (np.float64(x[r, c]) - mean[c])


@jit
def _input_gradient_kernel(dout, x, mean, a, b, c0, dx):
    """dx = a * dout + b * (x - mean) + c0, per channel."""
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            dx[r, c] = a[c] * dout[r, c] + b[c] * (x[r, c] - mean[c]) + c0[c]


@jit
def _inference_backward_kernel(dout, x, mean, a, sum_dout, sum_dout_centered, dx):
    """The two sums of ``_gradient_sums_kernel`` and dx = a * dout, in one pass."""
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            g = dout[r, c]
            sum_dout[c] += g
            sum_dout_centered[c] += np.float64(g) * (np.float64(x[r, c]) - mean[c])
            dx[r, c] = a[c] * g


def _rows(array):
    """(N, ..., C) -> a C-contiguous (rows, C) view (or copy, if it was not contiguous)."""
    return _c_contiguous(array).reshape(-1, array.shape[-1])


def _row_chunks(rows):
    return threads.batch_chunks(rows)


def batchnorm_moments(x):
    """(mean, variance) of x (..., C) per channel, float64 (C,) arrays; variance biased."""
    rows = _rows(x)
    m, channels = rows.shape
    shift = rows[0].astype(np.float64)

    def sums(part, _worker):
        partial = (np.zeros(channels), np.zeros(channels))
        _shifted_sums_kernel(rows[part], shift, *partial)
        return partial

    total, squares = threads.sum_chunks(sums, _row_chunks(m))
    mean_shifted = total / m
    variance = np.maximum(squares / m - mean_shifted * mean_shifted, 0.0)
    return shift + mean_shifted, variance


def batchnorm_normalize(x, scale, offset, out):
    """out = x * scale + offset per channel (x, out (..., C) float32; scale, offset (C,))."""
    rows, out_rows = _rows(x), out.reshape(-1, out.shape[-1])
    scale, offset = scale.astype(x.dtype), offset.astype(x.dtype)

    def affine(part, _worker):
        _affine_kernel(rows[part], scale, offset, out_rows[part])

    threads.map_chunks(affine, _row_chunks(len(rows)))
    return out


def batchnorm_gradient_sums(dout, x, mean):
    """(sum of dout, sum of dout * (x - mean)) per channel, float64 (C,) arrays."""
    rows, grad_rows = _rows(x), _rows(dout)
    mean = np.asarray(mean, np.float64)

    def sums(part, _worker):
        partial = (np.zeros(rows.shape[1]), np.zeros(rows.shape[1]))
        _gradient_sums_kernel(grad_rows[part], rows[part], mean, *partial)
        return partial

    return threads.sum_chunks(sums, _row_chunks(len(rows)))


def batchnorm_input_gradient(dout, x, mean, a, b, c0, out):
    """out = a * dout + b * (x - mean) + c0 per channel (the training-mode dx)."""
    rows, grad_rows, out_rows = _rows(x), _rows(dout), out.reshape(-1, out.shape[-1])
    mean, a, b, c0 = (np.asarray(v, x.dtype) for v in (mean, a, b, c0))

    def gradient(part, _worker):
        _input_gradient_kernel(grad_rows[part], rows[part], mean, a, b, c0, out_rows[part])

    threads.map_chunks(gradient, _row_chunks(len(rows)))
    return out


def batchnorm_inference_backward(dout, x, mean, a, out):
    """out = a * dout, and the sums of ``batchnorm_gradient_sums``, in one pass."""
    rows, grad_rows, out_rows = _rows(x), _rows(dout), out.reshape(-1, out.shape[-1])
    mean64, a = np.asarray(mean, np.float64), np.asarray(a, x.dtype)

    def backward(part, _worker):
        partial = (np.zeros(rows.shape[1]), np.zeros(rows.shape[1]))
        _inference_backward_kernel(grad_rows[part], rows[part], mean64, a, *partial,
                                   out_rows[part])
        return partial

    return threads.sum_chunks(backward, _row_chunks(len(rows)))
