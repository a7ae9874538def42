"""numba im2col and col2im: the copy loops of ``ops.conv``, each element touched once.

Layout (channels-last): x (N, H, W, C); cols (N, OH, OW, KH, KW, C), returned as
(N*OH*OW, KH*KW*C). Padding by bounds checks, not by a padded copy: a tap outside the
image reads 0. col2im gathers (loops over input pixels and adds the few windows that
cover each, in the (i, j) order of the NumPy loops): every pixel is written once, by
one thread, and the float32 sums are NumPy's bit for bit.
"""
from __future__ import annotations

import numpy as np

from ...ops.padding import conv_geometry
from .jit import jit


@jit
def _im2col_kernel(x, kh, kw, sh, sw, pad_top, pad_left, cols):
    """cols[n, oy, ox, i, j, :] = x[n, oy*sh + i - pad_top, ox*sw + j - pad_left, :] (0 outside)."""
    n_images, height, width, channels = x.shape
    out_h, out_w = cols.shape[1], cols.shape[2]
    for row in range(n_images * out_h):
        n, oy = row // out_h, row % out_h
        for ox in range(out_w):
            left = ox * sw - pad_left
            row_inside = 0 <= left and left + kw <= width   # no column of the window is padding
            for i in range(kh):
                iy = oy * sh + i - pad_top
                if row_inside and 0 <= iy < height:      # the common case: copy, no checks
                    for j in range(kw):
                        for c in range(channels):
                            cols[n, oy, ox, i, j, c] = x[n, iy, left + j, c]
                    continue
                for j in range(kw):
                    ix = left + j
                    if 0 <= iy < height and 0 <= ix < width:
                        for c in range(channels):
                            cols[n, oy, ox, i, j, c] = x[n, iy, ix, c]
                    else:
                        for c in range(channels):
                            cols[n, oy, ox, i, j, c] = 0.0


@jit
def _im2col_runs_kernel(x_rows, kh, kw, sh, sw, pad_top, pad_left, cols_runs):
    """The same copy for inputs with few channels, on flattened rows:
    x_rows (N, H, W*C) and cols_runs (N, OH, OW, KH, KW*C).

    In channels-last order one row of a window, x[n, iy, left:left+KW, :], is a single
    run of KW*C consecutive floats. With C = 3 (RGB) copying it as one loop of 9 is
    about twice as fast as KW loops of 3; with many channels the loops over
    (j, c) of ``_im2col_kernel`` are as fast and this buys nothing.
    """
    n_images, height, row_length = x_rows.shape
    out_h, out_w, run = cols_runs.shape[1], cols_runs.shape[2], cols_runs.shape[4]
    channels = run // kw
    width = row_length // channels
    for row in range(n_images * out_h):
        n, oy = row // out_h, row % out_h
        # Input row by input row (i outer), with that row and each destination as 1-D
        # views: each copy then indexes a 1-D array instead of recomputing a 5-D offset.
        for i in range(kh):
            iy = oy * sh + i - pad_top
            if iy < 0 or iy >= height:
                for ox in range(out_w):
                    for t in range(run):
                        cols_runs[n, oy, ox, i, t] = 0.0
                continue
            source = x_rows[n, iy]
            for ox in range(out_w):
                left = ox * sw - pad_left
                target = cols_runs[n, oy, ox, i]
                if 0 <= left and left + kw <= width:     # one run, no checks
                    start = left * channels
                    for t in range(run):
                        target[t] = source[start + t]
                else:                                    # a window at the left/right edge
                    for j in range(kw):
                        ix = left + j
                        for c in range(channels):
                            target[j * channels + c] = \
                                source[ix * channels + c] if 0 <= ix < width else 0.0


@jit
def _col2im_kernel(cols, sh, sw, pad_top, pad_left, x):
    """x[n, iy, ix, :] = sum of cols[n, oy, ox, i, j, :] over the windows that cover it."""
    n_images, height, width, channels = x.shape
    out_h, out_w, kh, kw = cols.shape[1], cols.shape[2], cols.shape[3], cols.shape[4]
    for row in range(n_images * height):
        n, iy = row // height, row % height
        for ix in range(width):
            for c in range(channels):
                x[n, iy, ix, c] = 0.0
            for i in range(kh):             # same order as the NumPy loops: i, then j
                ty = iy + pad_top - i       # = oy * sh for the window that put tap i here
                if ty < 0:
                    break                   # and for every later i
                oy = ty if sh == 1 else ty // sh    # a division costs more than the adds
                if oy >= out_h or (sh != 1 and ty % sh != 0):
                    continue
                for j in range(kw):
                    tx = ix + pad_left - j
                    if tx < 0:
                        break
                    ox = tx if sw == 1 else tx // sw
                    if ox >= out_w or (sw != 1 and tx % sw != 0):
                        continue
                    for c in range(channels):
                        x[n, iy, ix, c] += cols[n, oy, ox, i, j, c]


def _c_contiguous(a):
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


# im2col copies whole window rows (``_im2col_runs_kernel``) for fewer channels than this.
IM2COL_RUNS_BELOW_CHANNELS = 8


def im2col(x, kernel_size, strides=(1, 1), padding="valid", out=None, rows=None):
    """x (N, H, W, C) -> cols (N*OH*OW, KH*KW*C); see ``conv.im2col``.

    ``rows=(start, stop)`` unfolds only output rows start..stop-1 of each image ->
    (N*(stop-start)*OW, KH*KW*C): a chunk of a large image's rows, whose matrix fits in
    the cache where the whole image's would not. A chunk of rows is the same copy with the
    window origin moved down by ``start*SH`` rows: the kernels' bounds checks do the rest.
    """
    n, _, _, channels = x.shape
    kh, kw = kernel_size
    out_h, out_w, pad_h, pad_w = conv_geometry(x.shape, kernel_size, strides, padding)
    start, stop = (0, out_h) if rows is None else rows
    pad_top = pad_h[0] - start * strides[0]     # negative in the middle of the image
    shape = (n * (stop - start) * out_w, kh * kw * channels)
    cols = np.empty(shape, dtype=x.dtype) if out is None else out
    x = _c_contiguous(x)
    if channels < IM2COL_RUNS_BELOW_CHANNELS:
        _im2col_runs_kernel(x.reshape(n, x.shape[1], -1), kh, kw, strides[0], strides[1],
                            pad_top, pad_w[0],
                            cols.reshape(n, stop - start, out_w, kh, kw * channels))
    else:
        _im2col_kernel(x, kh, kw, strides[0], strides[1], pad_top, pad_w[0],
                       cols.reshape(n, stop - start, out_w, kh, kw, channels))
    return cols


def col2im(cols, x_shape, kernel_size, strides=(1, 1), padding="valid", out=None):
    """cols (N*OH*OW, KH*KW*C) -> (N, H, W, C), the adjoint of im2col; see ``conv.col2im``."""
    n, _, _, channels = x_shape
    kh, kw = kernel_size
    out_h, out_w, pad_h, pad_w = conv_geometry(x_shape, kernel_size, strides, padding)
    x = np.empty(x_shape, dtype=cols.dtype) if out is None else out
    _col2im_kernel(_c_contiguous(cols).reshape(n, out_h, out_w, kh, kw, channels),
                   strides[0], strides[1], pad_h[0], pad_w[0], x)
    return x
