"""numba kernels for the CPU: the copy loops of im2col/col2im and max pooling,
the fused bias/ReLU (and bias/ReLU/max-pool) passes, the kernel gradient of
RGB layers as dot products on image planes, and the tile transforms of
Winograd's F(2x2, 3x3) (defined in NumPy in ``winograd.py``).

``conv.py`` and ``pooling.py`` define these operations in vectorised NumPy
(the portable definition); here the same operations are written as plain
loops that numba compiles to machine code. They exist because the NumPy
versions waste passes over memory: a padded copy of the input, one strided
copy per kernel tap, ``where`` temporaries, a final ``padded[...]`` slice.
A loop touches every element once.

Layout, as everywhere in minicnn (channels-last):

    x       (N, H, W, C)
    cols    (N, OH, OW, KH, KW, C), returned as (N*OH*OW, KH*KW*C)
    pooled  (N, OH, OW, C), argmax (N, OH, OW, C) uint8 = winning slot i*PW + j

Two choices make the kernels easy to check against NumPy:

* **Gather, not scatter.** The backward passes (col2im, max-pool backward)
  loop over *input* pixels and sum the few outputs that used each one, in the
  same (i, j) order as the NumPy loops add them. Every pixel is written once
  by one thread (no races, no zero-fill pass) and the float32 sums come out
  bit for bit as NumPy's.
* **Padding by bounds checks**, not by a padded copy: a tap outside the
  image reads 0 (convolution) or -inf (pooling).

Each kernel runs on one core (see ``_jit`` for why); the cores share the
work by taking different slices of the batch (``cpu_threads``), which is why
the kernels release the GIL (``nogil=True``). Compiled code is cached on disk
(``cache=True``), so only the first process after an install pays the
compilation. If numba is missing, cannot compile,
or ``MINICNN_DISABLE_NUMBA=1`` is set, :func:`usable` returns False and the
NumPy code runs instead; nothing else changes.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from . import cpu_threads
from .conv import conv_geometry

try:  # numba is a dependency, but minicnn must still work without it
    import numba
except Exception:  # ImportError, or a numba that does not match this NumPy
    numba = None

# Flip to False (or set MINICNN_DISABLE_NUMBA=1) to run the NumPy definitions.
enabled = numba is not None and os.environ.get("MINICNN_DISABLE_NUMBA", "") in ("", "0")
_checked = False   # whether the kernels were compiled (or loaded) and tried once


def _jit(function=None, *, fastmath=False, inline=False):
    """``numba.njit`` with on-disk caching, and without it where no cache dir is writable.

    A kernel runs on one core, on purpose: numba's own threads (``parallel=True``)
    fought OpenBLAS's spinning threads for the cores, and a training step measured
    5x *slower* on a 2-core machine (2.2 s against 0.38 s). Instead each thread of
    ``cpu_threads`` calls a kernel on its own slice of the batch, with BLAS pinned
    to one thread.

    ``@_jit(fastmath={"contract"})`` lets LLVM fuse ``a += b * c`` into one
    fused multiply-add (one rounding instead of two), nothing else.
    ``@_jit(inline=True)``: a helper that numba copies into each kernel that calls it,
    where a call per tile would cost as much as the helper's work.
    """
    if function is None:
        return lambda f: _jit(f, fastmath=fastmath, inline=inline)
    if numba is None:
        return function
    options = dict(nogil=True, fastmath=fastmath, inline="always" if inline else "never")
    try:
        return numba.njit(cache=True, **options)(function)
    except Exception:  # "no locator available": neither the package nor ~/.cache is writable
        return numba.njit(**options)(function)


# --------------------------------------------------------------------------
# The kernels. Arguments are arrays and ints only (what numba compiles best);
# geometry comes from ``conv_geometry`` in the Python wrappers below.

@_jit
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


@_jit
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
        # views: the copies index them directly (RGB, 3x3: 0.42 -> 0.26 ms an image of 150).
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


@_jit
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


@_jit
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


@_jit
def _maxpool_backward_kernel(grad_out, argmax, ph, pw, sh, sw, pad_top, pad_left, grad_x):
    """grad_x[n, iy, ix, c] = sum of grad_out over the windows whose argmax is this pixel."""
    n_images, height, width, channels = grad_x.shape
    out_h, out_w = grad_out.shape[1], grad_out.shape[2]
    for row in range(n_images * height):
        n, iy = row // height, row % height
        for ix in range(width):
            for c in range(channels):
                grad_x[n, iy, ix, c] = 0.0
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
                            grad_x[n, iy, ix, c] += grad_out[n, oy, ox, c]


@_jit
def _maxpool_backward_disjoint_kernel(grad_out, argmax, ph, pw, sh, sw, pad_top, pad_left,
                                      grad_x):
    """The same when windows do not overlap (stride >= pool, the usual case): each pixel
    is in at most one window, which writes it directly, row by row. Pixels that no
    window reaches must already be zero."""
    n_images, height, width, channels = grad_x.shape
    out_h, out_w = grad_out.shape[1], grad_out.shape[2]
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
                                grad_x[n, iy, ix, c] = grad_out[n, oy, ox, c]
                            else:
                                grad_x[n, iy, ix, c] = 0.0


@_jit
def _bias_relu_kernel(z, bias):
    """In place: z = max(z + bias, 0) on z (rows, F). NaN stays NaN (as np.maximum)."""
    for r in range(z.shape[0]):
        for f in range(z.shape[1]):
            value = z[r, f] + bias[f]
            if value < 0:
                z[r, f] = 0.0
            else:
                z[r, f] = value


@_jit
def _relu_backward_kernel(grad_y, y, grad_z):
    """grad_z = grad_y where y > 0, else 0, on (rows, F) arrays."""
    for r in range(grad_y.shape[0]):
        for f in range(grad_y.shape[1]):
            if y[r, f] > 0:
                grad_z[r, f] = grad_y[r, f]
            else:
                grad_z[r, f] = 0.0


@_jit
def _bias_relu_pool_kernel(z, bias, ph, pw, out, argmax):
    """A Conv2D's bias + ReLU and the MaxPooling2D after it, in one pass over z:
    out = max over the disjoint (ph, pw) windows of max(z + bias, 0), argmax = first winner.

    z (N, OH, OW, F) -> out, argmax (N, OH // ph, OW // pw, F) (pooling "valid"). The
    same numbers, NaN and ties included, as ``_bias_relu_kernel`` then
    ``_maxpool_forward_kernel``; but z, the layer's largest array, is read once from
    the cache instead of being written out and read back by the pooling layer.
    """
    n_images, out_h, out_w, filters = out.shape
    for n in range(n_images):
        for oy in range(out_h):
            for ox in range(out_w):
                for i in range(ph):
                    for j in range(pw):
                        for f in range(filters):
                            value = z[n, oy * ph + i, ox * pw + j, f] + bias[f]
                            if value < 0:
                                value = np.float32(0.0)
                            if (i == 0 and j == 0) or value > out[n, oy, ox, f]:
                                out[n, oy, ox, f] = value     # strict: first maximum wins
                                argmax[n, oy, ox, f] = i * pw + j


@_jit
def _sgd_momentum_kernel(param, velocity, grad, lr, momentum, nesterov):
    """One step of ``optimizers.SGD`` with momentum on flat float32 arrays, in one pass
    (NumPy's version makes four). Same float32 operations in the same order, and no
    fused multiply-adds: the same numbers as NumPy's."""
    for i in range(param.shape[0]):
        v = momentum * velocity[i] - lr * grad[i]
        velocity[i] = v
        if nesterov:
            param[i] += momentum * v - lr * grad[i]
        else:
            param[i] += v


@_jit
def _rmsprop_kernel(param, mean_square, grad, lr, rho, one_minus_rho, epsilon):
    """One step of ``optimizers.RMSprop`` on flat float32 arrays, in one pass, with
    NumPy's float32 operations in NumPy's order (the same numbers)."""
    for i in range(param.shape[0]):
        g = grad[i]
        a = rho * mean_square[i] + one_minus_rho * g * g
        mean_square[i] = a
        param[i] -= lr * g / np.sqrt(a + epsilon)


@_jit
def _input_planes_kernel(x, pad_top, pad_left, row, top, planes):
    """Rows top, top+1, ... of one image x (H, W, C), zero-padded -> planes (C, length):
    each channel's rows of ``row`` pixels one after another, then zeros to the end.

    planes[c, (iy + pad_top - top) * row + ix + pad_left] = x[iy, ix, c]
    """
    height, width, channels = x.shape
    planes[...] = 0.0
    for r in range(min(planes.shape[1] // row, height + pad_top - top)):
        iy = top + r - pad_top
        if iy < 0:
            continue
        start = r * row + pad_left
        for ix in range(width):
            for c in range(channels):
                planes[c, start + ix] = x[iy, ix, c]


@_jit
def _gradient_planes_kernel(grad_y, y, relu, row, top, planes, grad_bias):
    """Output rows top .. top + rows - 1 of one image's output gradient grad_y (OH, OW, F)
    -> planes (F', rows*row), F' >= F: planes[f, (oy - top)*row + ox] = grad_z[oy, ox, f],
    with grad_z = grad_y * (y > 0) if ``relu`` (ReLU's backward, fused) else grad_y; zero
    in the columns ox >= OW and the planes f >= F. Adds grad_z's sums to grad_bias (F,)."""
    out_w, filters = grad_y.shape[1], grad_y.shape[2]
    planes[...] = 0.0
    for r in range(planes.shape[1] // row):
        oy = top + r
        for ox in range(out_w):
            for f in range(filters):
                g = grad_y[oy, ox, f]
                if relu and not y[oy, ox, f] > 0:
                    g = np.float32(0.0)     # (a bare 0.0 would make g float64)
                planes[f, r * row + ox] = g
                grad_bias[f] += g


@_jit
def _pooled_gradient_planes_kernel(grad_pooled, pooled, argmax, ph, pw, row, top, planes,
                                   grad_bias):
    """Like ``_gradient_planes_kernel`` for a Conv2D + ReLU whose output went through a
    max pooling fused into it (``_bias_relu_pool_kernel``): grad_z at (oy, ox) is the
    pooled gradient of its window if (oy, ox) held the window's maximum and that
    maximum is > 0 (ReLU's backward), else 0. grad_pooled, pooled, argmax (PH, PW', F);
    ``top`` and the planes' rows are multiples of ph."""
    pooled_h, pooled_w, filters = grad_pooled.shape
    planes[...] = 0.0
    # Where each window's slot i*pw + j lies in the planes, from the window's corner.
    slot_offset = np.empty(ph * pw, np.int64)
    for i in range(ph):
        for j in range(pw):
            slot_offset[i * pw + j] = i * row + j
    first = top // ph
    zero = np.float32(0.0)
    for py in range(first, min(first + planes.shape[1] // row // ph, pooled_h)):
        for px in range(pooled_w):
            corner = (py - first) * ph * row + px * pw
            for f in range(filters):
                # No branch on pooled > 0: it is a coin toss, and mispredicted branches
                # cost more than writing a zero where a zero already is.
                g = grad_pooled[py, px, f] if pooled[py, px, f] > 0 else zero
                planes[f, corner + slot_offset[argmax[py, px, f]]] = g
                grad_bias[f] += g


# Bytes of gradient planes a band in ``_conv_filter_grad_kernel``: they and the band's
# input planes stay in the L2 cache while the dot products read them 9 times.
FILTER_GRAD_BAND_BYTES = 256 * 1024
# Pixels a chunk in ``_filter_grad_dots_kernel``: 7 rows of 8 KB stay in the L1 cache.
# The tutorial's first layer, one image: 0.48 ms in one pass, 0.44 in chunks of 2048.
FILTER_GRAD_CHUNK = 2048


@_jit(fastmath={"contract", "reassoc"})
def _filter_grad_dots_kernel(x_planes, g_planes, row, grad_kernel):
    """grad_kernel[i, j, c, f] += sum over p of x_planes[c, p + i*row + j] * g_planes[f, p].

    For a stride-1 convolution on padded planes (``_input_planes_kernel``,
    ``_gradient_planes_kernel``, same ``row``), output pixel p = oy*row + ox reads input
    p + i*row + j through tap (i, j): each weight's gradient is one dot product of two
    long contiguous vectors, which LLVM turns into SIMD code (``reassoc`` lets it keep
    several partial sums). grad_kernel (KH, KW', C, F'): KW' a multiple of 3 and F' of
    4, because each pass over the pixels takes 3 taps j and 4 filters f at once: 12
    sums from 3 + 4 loads per pixel, where one sum alone would need 2 loads per
    multiply-add. The pixels go in chunks that stay in the L1 cache across the passes.
    """
    kh, kw, channels, filters = grad_kernel.shape
    length = g_planes.shape[1]
    for f in range(0, filters, 4):
        for start in range(0, length, FILTER_GRAD_CHUNK):
            n = min(FILTER_GRAD_CHUNK, length - start)
            g0 = g_planes[f, start:start + n]
            g1 = g_planes[f + 1, start:start + n]
            g2 = g_planes[f + 2, start:start + n]
            g3 = g_planes[f + 3, start:start + n]
            for c in range(channels):
                for i in range(kh):
                    for j in range(0, kw, 3):
                        first = start + i * row + j
                        x0 = x_planes[c, first:first + n]
                        x1 = x_planes[c, first + 1:first + 1 + n]
                        x2 = x_planes[c, first + 2:first + 2 + n]
                        s00 = s01 = s02 = s03 = np.float32(0.0)
                        s10 = s11 = s12 = s13 = np.float32(0.0)
                        s20 = s21 = s22 = s23 = np.float32(0.0)
                        for p in range(n):
                            a0, a1, a2 = x0[p], x1[p], x2[p]
                            b0, b1, b2, b3 = g0[p], g1[p], g2[p], g3[p]
                            s00 += a0 * b0
                            s01 += a0 * b1
                            s02 += a0 * b2
                            s03 += a0 * b3
                            s10 += a1 * b0
                            s11 += a1 * b1
                            s12 += a1 * b2
                            s13 += a1 * b3
                            s20 += a2 * b0
                            s21 += a2 * b1
                            s22 += a2 * b2
                            s23 += a2 * b3
                        grad_kernel[i, j, c, f] += s00
                        grad_kernel[i, j, c, f + 1] += s01
                        grad_kernel[i, j, c, f + 2] += s02
                        grad_kernel[i, j, c, f + 3] += s03
                        grad_kernel[i, j + 1, c, f] += s10
                        grad_kernel[i, j + 1, c, f + 1] += s11
                        grad_kernel[i, j + 1, c, f + 2] += s12
                        grad_kernel[i, j + 1, c, f + 3] += s13
                        grad_kernel[i, j + 2, c, f] += s20
                        grad_kernel[i, j + 2, c, f + 1] += s21
                        grad_kernel[i, j + 2, c, f + 2] += s22
                        grad_kernel[i, j + 2, c, f + 3] += s23


@_jit
def _conv_filter_grad_kernel(x, grad_y, y, relu, argmax, ph, pw, out_h, out_w, pad_top,
                             pad_left, grad_kernel, grad_bias):
    """grad_kernel[i, j, c, f] += sum over (n, oy, ox) of x[n, oy + i - pad_top,
    ox + j - pad_left, c] * grad_z[n, oy, ox, f] and grad_bias[f] += sum of grad_z[..., f],
    for a stride-1 convolution of output size (out_h, out_w), where grad_z is
    grad_y * (y > 0) if ``relu`` else grad_y, or, if ``ph`` > 0, the gradient under a
    fused (ph, pw) max pooling: grad_y, y and argmax are then the pooling's (see
    ``_pooled_gradient_planes_kernel``).

    Image by image, in bands of output rows: the band's input and grad_z go to padded
    planes, then ``_filter_grad_dots_kernel`` takes the dot products. Each image's sums are taken
    in float32 (as a chunked matmul would), then added to the float64 totals.
    grad_kernel (KH, KW, C, F) and grad_bias (F,) are float64.
    """
    n_images, channels = x.shape[0], x.shape[3]
    kh, kw, _, filters = grad_kernel.shape
    row = out_w + kw - 1                    # the padded input's width
    wide = -(-kw // 3) * 3                  # taps j in threes, filters in fours
    many = -(-filters // 4) * 4
    # Bands of output rows whose planes stay in the core's L2 cache (a multiple of ph).
    band = max(1, FILTER_GRAD_BAND_BYTES // (4 * many * row))
    if ph > 0:
        band = max(ph, band // ph * ph)
    band = min(band, out_h)
    # A band's input planes: its rows + (kh - 1), + (wide - 1) zeros at the end: the last
    # taps j of the widened kernel read past the padded input (their sums are dropped).
    x_flat = np.empty(channels * ((band + kh - 1) * row + wide - 1), np.float32)
    g_flat = np.empty(many * band * row, np.float32)
    image_kernel = np.empty((kh, wide, channels, many), np.float32)
    image_bias = np.empty(filters, np.float32)
    for n in range(n_images):
        image_kernel[...] = 0.0
        image_bias[:] = 0.0
        for top in range(0, out_h, band):
            rows = min(band, out_h - top)
            x_planes = x_flat[:channels * ((rows + kh - 1) * row + wide - 1)].reshape(
                channels, -1)
            g_planes = g_flat[:many * rows * row].reshape(many, -1)
            _input_planes_kernel(x[n], pad_top, pad_left, row, top, x_planes)
            if ph > 0:
                _pooled_gradient_planes_kernel(grad_y[n], y[n], argmax[n], ph, pw, row, top,
                                               g_planes, image_bias)
            else:
                _gradient_planes_kernel(grad_y[n], y[n], relu, row, top, g_planes, image_bias)
            _filter_grad_dots_kernel(x_planes, g_planes, row, image_kernel)
        for i in range(kh):
            for j in range(kw):
                for c in range(channels):
                    for f in range(filters):
                        grad_kernel[i, j, c, f] += image_kernel[i, j, c, f]
        for f in range(filters):
            grad_bias[f] += image_bias[f]


@_jit(inline=True)
def _winograd_input_transform(d, t, v):
    """v[:, t] = B^T d B for one patch d (4, 4, C), which it overwrites; v (16, tiles, C)."""
    channels = d.shape[2]
    for b in range(4):          # B^T d: combine rows (B^T's rows, written out)
        for c in range(channels):
            d0, d1, d2, d3 = d[0, b, c], d[1, b, c], d[2, b, c], d[3, b, c]
            d[0, b, c] = d0 - d2
            d[1, b, c] = d1 + d2
            d[2, b, c] = d2 - d1
            d[3, b, c] = d1 - d3
    for a in range(4):          # (B^T d) B: combine columns
        for c in range(channels):
            e0, e1, e2, e3 = d[a, 0, c], d[a, 1, c], d[a, 2, c], d[a, 3, c]
            v[4 * a, t, c] = e0 - e2
            v[4 * a + 1, t, c] = e1 + e2
            v[4 * a + 2, t, c] = e2 - e1
            v[4 * a + 3, t, c] = e1 - e3


@_jit(inline=True)
def _winograd_input_inside(x, n, top, left, t, v):
    """v[:, t] = B^T d B for the patch d = x[n, top:top+4, left:left+4] (inside the image),
    the same numbers as ``_winograd_input_transform``: row a of B^T d is the sum or
    difference of two rows of d, then each row's 4 values combine into 4 outputs.

    Written as 4 passes over the channels, one per row a, each reading 8 pixels and
    writing 4 outputs: LLVM turns such a loop into SIMD code, not one that reads 16 and
    writes 16 arrays (its run-time overlap checks give up), nor one on 1-D views (each
    view costs reference counting). The tutorial's 2nd layer: 0.36 -> 0.14 ms an image.
    """
    for a in range(4):   # B^T's rows: d0 - d2, d1 + d2, d2 - d1, d1 - d3
        if a == 0:
            p, q, sign = top, top + 2, np.float32(-1.0)
        elif a == 1:
            p, q, sign = top + 1, top + 2, np.float32(1.0)
        elif a == 2:
            p, q, sign = top + 2, top + 1, np.float32(-1.0)
        else:
            p, q, sign = top + 1, top + 3, np.float32(-1.0)
        for c in range(x.shape[3]):
            e0 = x[n, p, left, c] + sign * x[n, q, left, c]
            e1 = x[n, p, left + 1, c] + sign * x[n, q, left + 1, c]
            e2 = x[n, p, left + 2, c] + sign * x[n, q, left + 2, c]
            e3 = x[n, p, left + 3, c] + sign * x[n, q, left + 3, c]
            v[4 * a, t, c] = e0 - e2
            v[4 * a + 1, t, c] = e1 + e2
            v[4 * a + 2, t, c] = e2 - e1
            v[4 * a + 3, t, c] = e1 - e3


@_jit
def _winograd_input_kernel(x, argmax, pad_top, pad_left, first_row, tiles_h, tiles_w, v):
    """V = B^T d B for the tiles of F(2x2, 3x3) (see ``winograd``), tile row by tile row.

    Tile rows are numbered across the batch: row r is tile row r % tiles_h of image
    r // tiles_h. Fills v (16, rows*tiles_w, C), position-major (the layout of the
    products that follow), for rows first_row, first_row+1, ...
    The patch of tile (ty, tx) starts at input pixel (2ty - pad_top, 2tx - pad_left);
    pixels outside the image read 0.

    With a non-empty ``argmax``, x (N, PH, PW, C) is the output gradient of a 2x2 max
    pooling and argmax its argmax, and the tiles are those of the gradient the pooling
    sends back to its input (N, 2PH, 2PW, C), read without being written out: pixel
    (iy, ix) is x[n, iy // 2, ix // 2, c] if it won its window, else 0.
    """
    unpool = argmax.size > 0
    _, height, width, channels = x.shape
    if unpool:
        height, width = 2 * height, 2 * width
    rows = v.shape[1] // tiles_w
    d = np.empty((4, 4, channels), np.float32)     # one patch, stays in L1
    for r in range(first_row, first_row + rows):
        n, ty = r // tiles_h, r % tiles_h
        for tx in range(tiles_w):
            t = (r - first_row) * tiles_w + tx
            top, left = 2 * ty - pad_top, 2 * tx - pad_left
            if (not unpool and 0 <= top and top + 4 <= height and 0 <= left
                    and left + 4 <= width):   # a patch inside the image: the fast path
                _winograd_input_inside(x, n, top, left, t, v)
                continue
            for a in range(4):
                iy = 2 * ty - pad_top + a
                for b in range(4):
                    ix = 2 * tx - pad_left + b
                    if not (0 <= iy < height and 0 <= ix < width):
                        for c in range(channels):
                            d[a, b, c] = 0.0
                    elif unpool:
                        py, px, slot = iy // 2, ix // 2, (iy % 2) * 2 + ix % 2
                        for c in range(channels):
                            if argmax[n, py, px, c] == slot:
                                d[a, b, c] = x[n, py, px, c]
                            else:
                                d[a, b, c] = 0.0
                    else:
                        for c in range(channels):
                            d[a, b, c] = x[n, iy, ix, c]
            _winograd_input_transform(d, t, v)


@_jit(inline=True)
def _winograd_output_block(m, t, f, bias):
    """Y = A^T M A + bias for filter f of tile t of m (16, tiles, F): its 2x2 outputs
    (y00, y01, y10, y11)."""
    # A^T M (2 x 4), then (A^T M) A (2 x 2)
    top0 = m[0, t, f] + m[4, t, f] + m[8, t, f]
    top1 = m[1, t, f] + m[5, t, f] + m[9, t, f]
    top2 = m[2, t, f] + m[6, t, f] + m[10, t, f]
    top3 = m[3, t, f] + m[7, t, f] + m[11, t, f]
    bot0 = m[4, t, f] - m[8, t, f] - m[12, t, f]
    bot1 = m[5, t, f] - m[9, t, f] - m[13, t, f]
    bot2 = m[6, t, f] - m[10, t, f] - m[14, t, f]
    bot3 = m[7, t, f] - m[11, t, f] - m[15, t, f]
    return (top0 + top1 + top2 + bias, top1 - top2 - top3 + bias,
            bot0 + bot1 + bot2 + bias, bot1 - bot2 - bot3 + bias)


@_jit
def _winograd_output_kernel(m, bias, relu, first_row, tiles_h, tiles_w, out):
    """Y = A^T M A + bias (then ReLU if ``relu``): m (16, rows*tiles_w, F) -> the 2x2
    output blocks of those tiles in out (N, OH, OW, F); blocks sticking out of an odd
    size are cut. Tile rows are numbered across the batch as in the input kernel."""
    _, out_h, out_w, filters = out.shape
    rows = m.shape[1] // tiles_w
    for r in range(first_row, first_row + rows):
        n, oy = r // tiles_h, 2 * (r % tiles_h)
        for tx in range(tiles_w):
            t = (r - first_row) * tiles_w + tx
            ox = 2 * tx
            if oy + 1 < out_h and ox + 1 < out_w:   # the common case, without conditions
                zero = np.float32(0.0)
                for f in range(filters):
                    y00, y01, y10, y11 = _winograd_output_block(m, t, f, bias[f])
                    if relu:   # (not max(): NaN stays NaN, as in the loop below)
                        y00 = zero if y00 < zero else y00
                        y01 = zero if y01 < zero else y01
                        y10 = zero if y10 < zero else y10
                        y11 = zero if y11 < zero else y11
                    out[n, oy, ox, f], out[n, oy, ox + 1, f] = y00, y01
                    out[n, oy + 1, ox, f], out[n, oy + 1, ox + 1, f] = y10, y11
                continue
            for f in range(filters):
                block = _winograd_output_block(m, t, f, bias[f])
                for p in range(2):
                    if oy + p >= out_h:
                        break
                    for q in range(2):
                        if ox + q >= out_w:
                            break
                        value = block[2 * p + q]
                        if relu and value < 0:
                            value = np.float32(0.0)
                        out[n, oy + p, ox + q, f] = value


@_jit
def _winograd_output_pool_kernel(m, bias, first_row, tiles_h, tiles_w, pooled, argmax):
    """The output transform, ReLU and a 2x2 max pooling in one pass: each tile's 2x2
    output block is one pooling window. pooled, argmax (N, OH // 2, OW // 2, F); the
    blocks of an odd size's last row or column are dropped, as pooling "valid" drops
    them. The numbers of ``_winograd_output_kernel`` then ``_maxpool_forward_kernel``."""
    _, pooled_h, pooled_w, filters = pooled.shape
    rows = m.shape[1] // tiles_w
    zero = np.float32(0.0)
    for r in range(first_row, first_row + rows):
        n, ty = r // tiles_h, r % tiles_h
        if ty >= pooled_h:
            continue
        for tx in range(min(tiles_w, pooled_w)):
            t = (r - first_row) * tiles_w + tx
            for f in range(filters):
                block = _winograd_output_block(m, t, f, bias[f])
                best, slot = zero, 0
                for s in range(4):
                    value = block[s]
                    if value < 0:
                        value = zero
                    if s == 0 or value > best:   # strict: first maximum wins ties
                        best, slot = value, s
                pooled[n, ty, tx, f] = best
                argmax[n, ty, tx, f] = slot


@_jit
def _winograd_gradient_transform(g00, g01, g10, g11, half, t, f, z):
    """Rows a = half and half + 1 of A g A^T (8 of its 16 values) for one 2x2 block g of
    filter f, into z[4a:4a+4, t, f]; z (16, tiles, F).

    The callers write a tile in two passes over the filters, 8 values each: a loop
    that writes 16 arrays at once is more than LLVM checks for overlap at run time,
    and it gives up SIMD code (0.26 -> 0.17 ms for an image of the tutorial's 2nd layer).
    """
    # A g: rows g0, g0 + g1, g0 - g1, -g1 (each a pair); then (A g) A^T: the
    # same combination of each row's pair (p, q) -> p, p + q, p - q, -q
    for a in range(half, half + 2):
        if a == 0:
            p, q = g00, g01
        elif a == 1:
            p, q = g00 + g10, g01 + g11
        elif a == 2:
            p, q = g00 - g10, g01 - g11
        else:
            p, q = -g10, -g11
        z[4 * a, t, f] = p
        z[4 * a + 1, t, f] = p + q
        z[4 * a + 2, t, f] = p - q
        z[4 * a + 3, t, f] = -q


@_jit
def _winograd_gradient_kernel(grad_z, first_row, tiles_h, tiles_w, z):
    """Z = A g A^T for the 2x2 blocks g of grad_z (N, OH, OW, F) under some tile rows
    (numbered across the batch as in ``_winograd_input_kernel``): z (16, rows*tiles_w, F),
    position-major. Blocks sticking out of an odd size read 0 there.
    A = A_T.T = [[1, 0], [1, 1], [1, -1], [0, -1]].
    """
    _, out_h, out_w, filters = grad_z.shape
    rows = z.shape[1] // tiles_w
    zero = np.float32(0.0)
    for r in range(first_row, first_row + rows):
        n, oy = r // tiles_h, 2 * (r % tiles_h)
        for tx in range(tiles_w):
            t = (r - first_row) * tiles_w + tx
            ox = 2 * tx
            right, below = ox + 1 < out_w, oy + 1 < out_h
            for half in range(0, 4, 2):
                if right and below:   # the common case, without conditions: SIMD code
                    for f in range(filters):
                        _winograd_gradient_transform(
                            grad_z[n, oy, ox, f], grad_z[n, oy, ox + 1, f],
                            grad_z[n, oy + 1, ox, f], grad_z[n, oy + 1, ox + 1, f], half, t, f, z)
                    continue
                for f in range(filters):
                    g00 = grad_z[n, oy, ox, f]
                    g01 = grad_z[n, oy, ox + 1, f] if right else zero
                    g10 = grad_z[n, oy + 1, ox, f] if below else zero
                    g11 = grad_z[n, oy + 1, ox + 1, f] if right and below else zero
                    _winograd_gradient_transform(g00, g01, g10, g11, half, t, f, z)


@_jit
def _winograd_unpooled_gradient_kernel(grad_pooled, argmax, first_row, tiles_h, tiles_w, z):
    """``_winograd_gradient_kernel`` on the gradient that a 2x2 max pooling sends back to
    its input (see ``_winograd_input_kernel`` with an argmax): each tile's 2x2 block is one
    pooling window, all 0 but its winner. grad_pooled, argmax (N, PH, PW, F)."""
    _, pooled_h, pooled_w, filters = grad_pooled.shape
    rows = z.shape[1] // tiles_w
    for r in range(first_row, first_row + rows):
        n, ty = r // tiles_h, r % tiles_h
        for tx in range(tiles_w):
            t = (r - first_row) * tiles_w + tx
            if ty >= pooled_h or tx >= pooled_w:   # no window: an odd size's last block
                z[:, t, :] = 0.0
                continue
            for half in range(0, 4, 2):
                for f in range(filters):
                    # g * (slot == k), not a select: 3x faster as SIMD code (the same numbers,
                    # 0 or g, for any finite g; a NaN gradient stays NaN either way).
                    g, slot = grad_pooled[n, ty, tx, f], argmax[n, ty, tx, f]
                    _winograd_gradient_transform(
                        g * np.float32(slot == 0), g * np.float32(slot == 1),
                        g * np.float32(slot == 2), g * np.float32(slot == 3), half, t, f, z)


# --------------------------------------------------------------------------
# When to use them

def _warm_up():
    """Compile (or load from the cache) every kernel on tiny inputs; False if any fails."""
    try:
        x = np.zeros((1, 3, 3, 1), np.float32)
        cols = im2col(x, (2, 2), (1, 1), "valid")
        im2col(np.zeros((1, 3, 3, 8), np.float32), (2, 2), (1, 1), "valid")
        col2im(cols, x.shape, (2, 2), (1, 1), "valid")
        out, argmax = maxpool2d_forward(x, (2, 2), (1, 1), "valid")
        maxpool2d_backward(out, argmax, x.shape, (2, 2), (1, 1), "valid")
        maxpool2d_backward(out, argmax, x.shape, (1, 1), (1, 1), "valid")
        z = np.zeros((2, 2), np.float32)
        bias_relu_(z, np.zeros(2, np.float32))
        bias_relu_pool(z.reshape(1, 2, 1, 2), np.zeros(2, np.float32), (2, 1),
                       np.empty((1, 1, 1, 2), np.float32), np.empty((1, 1, 1, 2), np.uint8))
        relu_backward(z, z)
        conv2d_filter_grad(x, np.zeros((1, 2, 2, 2), np.float32), (2, 2, 1, 2), (1, 1),
                           "valid", y=np.zeros((1, 2, 2, 2), np.float32))
        sgd_momentum_(z, z.copy(), z, 0.1, 0.9, False)
        rmsprop_(z, z.copy(), z, 0.1, 0.9, 1e-7)
        return True
    except Exception as error:  # a numba/LLVM failure must not break training
        warnings.warn(f"minicnn: numba kernels unavailable ({type(error).__name__}: {error}); "
                      "using the NumPy code", RuntimeWarning, stacklevel=3)
        return False


def usable(x) -> bool:
    """True when ``x`` is a float32 NumPy array and the numba kernels work here.

    Other dtypes (the float64 of gradient checks) and CuPy arrays take the
    portable NumPy/CuPy code.
    """
    global _checked, enabled
    if not (enabled and type(x) is np.ndarray and x.dtype == np.float32):
        return False
    if not _checked:
        _checked = True
        enabled = _warm_up()
    return enabled


# --------------------------------------------------------------------------
# Wrappers with the signatures of the NumPy functions in conv.py / pooling.py.
# ``out=`` lets a layer reuse one buffer between training steps.

def _c_contiguous(a):
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


# im2col copies whole window rows (``_im2col_runs_kernel``) for fewer channels than this.
IM2COL_RUNS_BELOW_CHANNELS = 8


def im2col(x, kernel_size, strides=(1, 1), padding="valid", out=None, rows=None):
    """x (N, H, W, C) -> cols (N*OH*OW, KH*KW*C); see ``conv.im2col``.

    ``rows=(start, stop)`` unfolds only output rows start..stop-1 of each image ->
    (N*(stop-start)*OW, KH*KW*C): a band of a large image, whose matrix fits in the
    cache where the whole image's would not. A band is the same copy with the window
    origin moved down by ``start*SH`` rows: the kernels' bounds checks do the rest.
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


def maxpool2d_forward(x, pool_size=(2, 2), strides=(2, 2), padding="valid", out=None,
                      argmax_out=None):
    """x (N, H, W, C) -> (out (N, OH, OW, C), argmax uint8); see ``pooling.maxpool2d_forward``."""
    out_h, out_w, pad_h, pad_w = conv_geometry(x.shape, pool_size, strides, padding)
    shape = (x.shape[0], out_h, out_w, x.shape[3])
    out = np.empty(shape, dtype=x.dtype) if out is None else out
    argmax = np.empty(shape, dtype=np.uint8) if argmax_out is None else argmax_out
    x = _c_contiguous(x)

    def pool(images, _worker):   # a slice of the batch, one per thread
        _maxpool_forward_kernel(x[images], pool_size[0], pool_size[1], strides[0],
                                strides[1], pad_h[0], pad_w[0], out[images], argmax[images])

    cpu_threads.map_pieces(pool, cpu_threads.batch_slices(x.shape[0]))
    return out, argmax


def maxpool2d_backward(grad_out, argmax, x_shape, pool_size=(2, 2), strides=(2, 2),
                       padding="valid", out=None):
    """Route each grad_out value to its window's argmax -> (N, H, W, C).

    ``out``, if given, is a C-contiguous (N, H, W, C) array to write the result into.
    """
    out_h, out_w, pad_h, pad_w = conv_geometry(x_shape, pool_size, strides, padding)
    (ph, pw), (sh, sw) = pool_size, strides
    grad_out, argmax = _c_contiguous(grad_out), _c_contiguous(argmax)
    grad_x = np.empty(x_shape, dtype=grad_out.dtype) if out is None else out
    if sh < ph or sw < pw:   # overlapping windows: gather and sum at each pixel
        kernel = _maxpool_backward_kernel
    else:
        kernel = _maxpool_backward_disjoint_kernel
        windows_tile_input = (pad_h[0] == pad_w[0] == 0 and sh == ph and sw == pw
                              and out_h * sh == x_shape[1] and out_w * sw == x_shape[2])
        if not windows_tile_input:   # pixels that no window reaches get no write: zero them
            grad_x[...] = 0.0

    def route(images, _worker):   # a slice of the batch, one per thread
        kernel(grad_out[images], argmax[images], ph, pw, sh, sw, pad_h[0], pad_w[0],
               grad_x[images])

    cpu_threads.map_pieces(route, cpu_threads.batch_slices(x_shape[0]))
    return grad_x


def bias_relu_(z, bias):
    """In place on z (..., F): z = max(z + bias, 0), one pass instead of two. Returns z."""
    _bias_relu_kernel(z.reshape(-1, z.shape[-1]), bias)
    return z


def relu_backward(grad_y, y, out=None):
    """grad_y * (y > 0) without the boolean temporary; shapes (..., F)."""
    grad_z = np.empty_like(grad_y) if out is None else out
    _relu_backward_kernel(_c_contiguous(grad_y).reshape(-1, grad_y.shape[-1]),
                          _c_contiguous(y).reshape(-1, y.shape[-1]),
                          grad_z.reshape(-1, grad_z.shape[-1]))
    return grad_z


def bias_relu_pool(z, bias, pool_size, out, argmax):
    """pooled max(z + bias, 0) over disjoint windows ("valid"): z (N, OH, OW, F) ->
    out, argmax (N, OH // ph, OW // pw, F), float32 and uint8 arrays to write into.
    The numbers of ``bias_relu_`` then ``maxpool2d_forward`` (strides = pool_size),
    without writing the activation out (see ``_bias_relu_pool_kernel``)."""
    _bias_relu_pool_kernel(_c_contiguous(z), bias, pool_size[0], pool_size[1], out, argmax)
    return out, argmax


def _elementwise(kernel, arrays, *scalars):
    """``kernel(*flat slices of arrays, *scalars)`` over the arrays' elements, one slice per
    thread (elementwise: the numbers do not depend on how they are cut)."""
    flat = [a.reshape(-1) for a in arrays]
    size = flat[0].size

    def run(part, _worker):
        kernel(*(a[part] for a in flat), *scalars)

    cpu_threads.map_pieces(run, cpu_threads.batch_slices(size, enabled=size >= 2**16))


def sgd_momentum_(param, velocity, grad, lr, momentum, nesterov):
    """One SGD-with-momentum step on ``param`` and ``velocity`` (C-contiguous), in place."""
    t = np.float32
    _elementwise(_sgd_momentum_kernel, (param, velocity, _c_contiguous(grad)), t(lr),
                 t(momentum), bool(nesterov))


def rmsprop_(param, mean_square, grad, lr, rho, epsilon):
    """One RMSprop step on ``param`` and ``mean_square`` (C-contiguous), in place."""
    t = np.float32
    _elementwise(_rmsprop_kernel, (param, mean_square, _c_contiguous(grad)), t(lr), t(rho),
                 t(1.0 - rho), t(epsilon))


_NO_ARGMAX = np.zeros((0, 0, 0, 0), np.uint8)   # "not unpooled" for _winograd_input_kernel


def winograd_input(x, pad_top, pad_left, first_row, tiles_h, tiles_w, out):
    """V = B^T d B of F(2x2, 3x3) (see ``winograd``) for some tile rows of x (N, H, W, C).

    ``out`` (16, rows*tiles_w, C), position-major, receives the tiles of tile rows first_row ..
    first_row+rows-1, counted across the batch (row r: image r // tiles_h).
    """
    _winograd_input_kernel(_c_contiguous(x), _NO_ARGMAX, pad_top, pad_left, first_row,
                           tiles_h, tiles_w, out)
    return out


def winograd_output(m, bias, relu, first_row, tiles_h, tiles_w, out):
    """Y = A^T M A + bias (ReLU'd if ``relu``) from m (16, rows*tiles_w, F) into those
    tile rows' 2x2 output blocks of out (N, OH, OW, F)."""
    _winograd_output_kernel(m, bias, relu, first_row, tiles_h, tiles_w, out)
    return out


def winograd_output_pool(m, bias, first_row, tiles_h, tiles_w, pooled, argmax):
    """Y = A^T M A + bias, ReLU'd and max-pooled over each 2x2 output block, from
    m (16, rows*tiles_w, F) into those tile rows' windows of pooled and argmax
    (N, OH // 2, OW // 2, F)."""
    _winograd_output_pool_kernel(m, bias, first_row, tiles_h, tiles_w, pooled, argmax)
    return pooled, argmax


def winograd_gradient(grad_z, first_row, tiles_h, tiles_w, out):
    """Z = A g A^T of F(3x3, 2x2) (see ``winograd.conv2d_filter_grad``) for the 2x2 blocks
    of grad_z (N, OH, OW, F) under some tile rows: out (16, rows*tiles_w, F), position-major
    (the layout of the products that follow)."""
    _winograd_gradient_kernel(_c_contiguous(grad_z), first_row, tiles_h, tiles_w, out)
    return out


def winograd_unpooled_input(grad_pooled, argmax, pad_top, pad_left, first_row, tiles_h,
                            tiles_w, out):
    """:func:`winograd_input` of the gradient a 2x2 max pooling sends back to its input,
    read from its output gradient grad_pooled and argmax (N, PH, PW, C) without being
    written out."""
    _winograd_input_kernel(_c_contiguous(grad_pooled), _c_contiguous(argmax), pad_top,
                           pad_left, first_row, tiles_h, tiles_w, out)
    return out


def winograd_unpooled_gradient(grad_pooled, argmax, first_row, tiles_h, tiles_w, out):
    """:func:`winograd_gradient` of the gradient a 2x2 max pooling sends back to its input
    (see :func:`winograd_unpooled_input`)."""
    _winograd_unpooled_gradient_kernel(_c_contiguous(grad_pooled), _c_contiguous(argmax),
                                       first_row, tiles_h, tiles_w, out)
    return out


# Conv2D asks this before taking :func:`conv2d_filter_grad` for its kernel gradient.
FILTER_GRAD_MAX_CHANNELS = 4


def conv2d_filter_grad(x, grad_y, kernel_shape, strides=(1, 1), padding="valid", y=None,
                       pooled=None):
    """Kernel and bias gradients of a stride-1 convolution, without im2col.

    x (N, H, W, C), grad_y (N, OH, OW, F) -> (grad_kernel (KH, KW, C, F), grad_bias (F,)).
    With ``y`` (the ReLU's output, (N, OH, OW, F)) the gradient is first masked by
    ``y > 0``: ReLU's backward in the same pass. Equals ``conv.conv2d_backward``'s
    grad_kernel and grad_bias (to float32 rounding: the sums run in another order).
    ``pooled=(pooled_y, argmax, (ph, pw))``: the convolution's ReLU output went through
    a fused max pooling (:func:`bias_relu_pool`); grad_y is then the pooling's output
    gradient, (N, OH // ph, OW // pw, F), and ``y`` is not used.

    For inputs with few channels (an RGB image): there im2col has KH*KW*C = 27 columns,
    the product cols.T @ grad_z is a skinny one that BLAS does slowly, and building cols
    costs more than the product. Here every weight's gradient is a dot product over the
    pixels of two padded planes (``_filter_grad_dots_kernel``). The tutorial's first layer,
    one image on one core: 0.8 ms (0.44 of them the products), against 1.5 ms for the
    direct loop over pixels and taps that this replaced and ~1.0 for im2col + matmul.
    """
    if tuple(strides) != (1, 1):
        raise ValueError(f"conv2d_filter_grad takes stride-1 convolutions only, got strides "
                         f"{tuple(strides)} (im2col + matmul handles the others)")
    kh, kw, channels, filters = kernel_shape
    out_h, out_w, pad_h, pad_w = conv_geometry(x.shape, (kh, kw), strides, padding)
    x, grad_y = _c_contiguous(x), _c_contiguous(grad_y)
    if pooled is not None:
        y, argmax, (ph, pw) = _c_contiguous(pooled[0]), _c_contiguous(pooled[1]), pooled[2]
        relu = True
    else:
        y = grad_y if y is None else _c_contiguous(y)
        relu = y is not grad_y
        argmax, ph, pw = np.zeros((x.shape[0], 1, 1, 1), np.uint8), 0, 0

    def sums(images, _worker):   # float64 sums over a slice of the batch, one per thread
        grad_kernel = np.zeros(kernel_shape, np.float64)
        grad_bias = np.zeros(filters, np.float64)
        _conv_filter_grad_kernel(x[images], grad_y[images], y[images], relu, argmax[images],
                                 ph, pw, out_h, out_w, pad_h[0], pad_w[0], grad_kernel,
                                 grad_bias)
        return grad_kernel, grad_bias

    # Each image's float32 sums enter float64 totals, where adding a few dozen of them
    # loses nothing unless their magnitudes lie 2**29 apart: in practice the result does
    # not depend on how many threads shared the batch.
    parts = cpu_threads.map_pieces(sums, cpu_threads.batch_slices(x.shape[0]))
    grad_kernel = sum(part[0] for part in parts)
    grad_bias = sum(part[1] for part in parts)
    return grad_kernel.astype(np.float32), grad_bias.astype(np.float32)
