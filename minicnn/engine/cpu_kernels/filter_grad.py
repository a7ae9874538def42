"""numba kernel gradient of a stride-1 convolution with few input channels (RGB).

There im2col has KH*KW*C = 27 columns, cols.T @ dz is a skinny product that BLAS does
slowly, and building cols costs more than the product. Instead every weight's gradient
is a dot product over the pixels of two padded planes: one of the input channel, one of
the output gradient (ReLU's backward, and the fused max pooling's, applied on the way).
"""
from __future__ import annotations

import numpy as np

from ...ops.padding import conv_geometry
from .. import threads
from .im2col import _c_contiguous
from .jit import jit


@jit
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


@jit
def _gradient_planes_kernel(dout, y, relu, row, top, planes, dbias):
    """Output rows top .. top + rows - 1 of one image's output gradient dout (OH, OW, F)
    -> planes (F', rows*row), F' >= F: planes[f, (oy - top)*row + ox] = dz[oy, ox, f],
    with dz = dout * (y > 0) if ``relu`` (ReLU's backward, fused) else dout; zero in
    the columns ox >= OW and the planes f >= F. Adds dz's sums to dbias (F,)."""
    out_w, filters = dout.shape[1], dout.shape[2]
    planes[...] = 0.0
    for r in range(planes.shape[1] // row):
        oy = top + r
        for ox in range(out_w):
            for f in range(filters):
                g = dout[oy, ox, f]
                if relu and not y[oy, ox, f] > 0:
                    g = np.float32(0.0)     # (a bare 0.0 would make g float64)
                planes[f, r * row + ox] = g
                dbias[f] += g


@jit
def _pooled_gradient_planes_kernel(dout, pooled, argmax, ph, pw, row, top, planes, dbias):
    """Like ``_gradient_planes_kernel`` for a Conv2D + ReLU whose output went through a
    max pooling fused into it (``_bias_relu_pool_kernel``): dz at (oy, ox) is the
    pooling's output gradient dout of its window if (oy, ox) held the window's maximum
    and that maximum is > 0 (ReLU's backward), else 0. dout, pooled, argmax (PH, PW', F);
    ``top`` and the planes' rows are multiples of ph."""
    pooled_h, pooled_w, filters = dout.shape
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
                g = dout[py, px, f] if pooled[py, px, f] > 0 else zero
                planes[f, corner + slot_offset[argmax[py, px, f]]] = g
                dbias[f] += g


# Bytes of gradient planes per chunk of output rows in ``_conv_filter_grad_kernel``: they
# and the chunk's input planes stay in the L2 cache while the dot products read them 9 times.
FILTER_GRAD_ROW_CHUNK_BYTES = 256 * 1024


# Pixels a pass in ``_filter_grad_dots_kernel``: 7 rows of 8 KB stay in the L1 cache.
FILTER_GRAD_PIXEL_CHUNK = 2048


@jit(fastmath={"contract", "reassoc"})
def _filter_grad_dots_kernel(x_planes, g_planes, row, dkernel):
    """dkernel[i, j, c, f] += sum over p of x_planes[c, p + i*row + j] * g_planes[f, p].

    For a stride-1 convolution on padded planes (``_input_planes_kernel``,
    ``_gradient_planes_kernel``, same ``row``), output pixel p = oy*row + ox reads input
    p + i*row + j through tap (i, j): each weight's gradient is one dot product of two
    long contiguous vectors, which LLVM turns into SIMD code (``reassoc`` lets it keep
    several partial sums). dkernel (KH, KW', C, F'): KW' a multiple of 3 and F' of
    4, because each pass over the pixels takes 3 taps j and 4 filters f at once: 12
    sums from 3 + 4 loads per pixel, where one sum alone would need 2 loads per
    multiply-add. The pixels go in chunks that stay in the L1 cache across the passes.
    """
    kh, kw, channels, filters = dkernel.shape
    length = g_planes.shape[1]
    for f in range(0, filters, 4):
        for start in range(0, length, FILTER_GRAD_PIXEL_CHUNK):
            n = min(FILTER_GRAD_PIXEL_CHUNK, length - start)
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
                        dkernel[i, j, c, f] += s00
                        dkernel[i, j, c, f + 1] += s01
                        dkernel[i, j, c, f + 2] += s02
                        dkernel[i, j, c, f + 3] += s03
                        dkernel[i, j + 1, c, f] += s10
                        dkernel[i, j + 1, c, f + 1] += s11
                        dkernel[i, j + 1, c, f + 2] += s12
                        dkernel[i, j + 1, c, f + 3] += s13
                        dkernel[i, j + 2, c, f] += s20
                        dkernel[i, j + 2, c, f + 1] += s21
                        dkernel[i, j + 2, c, f + 2] += s22
                        dkernel[i, j + 2, c, f + 3] += s23


@jit
def _conv_filter_grad_kernel(x, dout, y, relu, argmax, ph, pw, out_h, out_w, pad_top,
                             pad_left, dkernel, dbias):
    """dkernel[i, j, c, f] += sum over (n, oy, ox) of x[n, oy + i - pad_top,
    ox + j - pad_left, c] * dz[n, oy, ox, f] and dbias[f] += sum of dz[..., f],
    for a stride-1 convolution of output size (out_h, out_w), where dz is
    dout * (y > 0) if ``relu`` else dout, or, if ``ph`` > 0, the gradient under a
    fused (ph, pw) max pooling: dout, y and argmax are then the pooling's (see
    ``_pooled_gradient_planes_kernel``).

    Image by image, in chunks of output rows: the chunk's input and dz go to padded
    planes, then ``_filter_grad_dots_kernel`` takes the dot products. Each image's sums are taken
    in float32 (as a chunked matmul would), then added to the float64 totals.
    dkernel (KH, KW, C, F) and dbias (F,) are float64.
    """
    n_images, channels = x.shape[0], x.shape[3]
    kh, kw, _, filters = dkernel.shape
    row = out_w + kw - 1                    # the padded input's width
    wide = -(-kw // 3) * 3                  # taps j in threes, filters in fours
    many = -(-filters // 4) * 4
    # Chunks of output rows whose planes stay in the core's L2 cache (a multiple of ph).
    rows_per_chunk = max(1, FILTER_GRAD_ROW_CHUNK_BYTES // (4 * many * row))
    if ph > 0:
        rows_per_chunk = max(ph, rows_per_chunk // ph * ph)
    rows_per_chunk = min(rows_per_chunk, out_h)
    # A chunk's input planes: its rows + (kh - 1), + (wide - 1) zeros at the end: the last
    # taps j of the widened kernel read past the padded input (their sums are dropped).
    x_flat = np.empty(channels * ((rows_per_chunk + kh - 1) * row + wide - 1), np.float32)
    g_flat = np.empty(many * rows_per_chunk * row, np.float32)
    image_kernel = np.empty((kh, wide, channels, many), np.float32)
    image_bias = np.empty(filters, np.float32)
    for n in range(n_images):
        image_kernel[...] = 0.0
        image_bias[:] = 0.0
        for top in range(0, out_h, rows_per_chunk):
            rows = min(rows_per_chunk, out_h - top)
            x_planes = x_flat[:channels * ((rows + kh - 1) * row + wide - 1)].reshape(
                channels, -1)
            g_planes = g_flat[:many * rows * row].reshape(many, -1)
            _input_planes_kernel(x[n], pad_top, pad_left, row, top, x_planes)
            if ph > 0:
                _pooled_gradient_planes_kernel(dout[n], y[n], argmax[n], ph, pw, row, top,
                                               g_planes, image_bias)
            else:
                _gradient_planes_kernel(dout[n], y[n], relu, row, top, g_planes, image_bias)
            _filter_grad_dots_kernel(x_planes, g_planes, row, image_kernel)
        for i in range(kh):
            for j in range(kw):
                for c in range(channels):
                    for f in range(filters):
                        dkernel[i, j, c, f] += image_kernel[i, j, c, f]
        for f in range(filters):
            dbias[f] += image_bias[f]


# The engine takes :func:`conv2d_kernel_grad` for inputs of at most this many channels,
# where im2col's KH*KW*C columns make a matrix product too skinny for BLAS to be fast.
FILTER_GRAD_MAX_CHANNELS = 4


def conv2d_kernel_grad(x, dout, kernel_shape, strides=(1, 1), padding="valid", y=None,
                       pooled=None):
    """Kernel and bias gradients of a stride-1 convolution, without im2col.

    x (N, H, W, C), dout (N, OH, OW, F) -> (dkernel (KH, KW, C, F), dbias (F,)).
    With ``y`` (the ReLU's output, (N, OH, OW, F)) the gradient is first masked by
    ``y > 0``: ReLU's backward in the same pass. Equals ``conv.conv2d_backward``'s
    dkernel and dbias (to float32 rounding: the sums run in another order).
    ``pooled=(pooled_y, argmax, (ph, pw))``: the convolution's ReLU output went through
    a fused max pooling (:func:`bias_relu_pool`); dout is then the pooling's output
    gradient, (N, OH // ph, OW // pw, F), and ``y`` is not used.

    For inputs with few channels (an RGB image): there im2col has KH*KW*C = 27 columns,
    the product cols.T @ dz is a skinny one that BLAS does slowly, and building cols
    costs more than the product. Here every weight's gradient is a dot product over the
    pixels of two padded planes (``_filter_grad_dots_kernel``), faster than im2col +
    matmul there (benchmarks/results/ has the per-layer times).
    """
    if tuple(strides) != (1, 1):
        raise ValueError(f"conv2d_kernel_grad takes stride-1 convolutions only, got strides "
                         f"{tuple(strides)} (im2col + matmul handles the others)")
    kh, kw, channels, filters = kernel_shape
    out_h, out_w, pad_h, pad_w = conv_geometry(x.shape, (kh, kw), strides, padding)
    x, dout = _c_contiguous(x), _c_contiguous(dout)
    if pooled is not None:
        y, argmax, (ph, pw) = _c_contiguous(pooled[0]), _c_contiguous(pooled[1]), pooled[2]
        relu = True
    else:
        y = dout if y is None else _c_contiguous(y)
        relu = y is not dout
        argmax, ph, pw = np.zeros((x.shape[0], 1, 1, 1), np.uint8), 0, 0

    def sums(images, _worker):   # float64 sums over a chunk of the batch, one per thread
        dkernel = np.zeros(kernel_shape, np.float64)
        dbias = np.zeros(filters, np.float64)
        _conv_filter_grad_kernel(x[images], dout[images], y[images], relu, argmax[images],
                                 ph, pw, out_h, out_w, pad_h[0], pad_w[0], dkernel,
                                 dbias)
        return dkernel, dbias

    # Each image's float32 sums enter float64 totals, where adding a few dozen of them
    # loses nothing unless their magnitudes lie 2**29 apart: in practice the result does
    # not depend on how many threads shared the batch.
    sums_per_chunk = threads.map_chunks(sums, threads.batch_chunks(x.shape[0]))
    dkernel = sum(chunk_sums[0] for chunk_sums in sums_per_chunk)
    dbias = sum(chunk_sums[1] for chunk_sums in sums_per_chunk)
    return dkernel.astype(np.float32), dbias.astype(np.float32)
