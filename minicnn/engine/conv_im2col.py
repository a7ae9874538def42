"""Conv2D by im2col + one matmul, the batch in chunks shared among the CPU's threads.

A chunk is some whole images of the batch or, on the CPU when one image's im2col
matrix exceeds ``settings.CPU_CHUNK_BYTES`` (VGG16's first blocks: 50 MB an image),
some output rows of one image. Each thread takes its chunks through im2col -> matmul
-> bias + ReLU while the chunk's matrix is still in its core's cache, in its own
scratch buffers; every chunk writes its own rows of the output.
"""
from __future__ import annotations

import numpy as np

from ..ops.conv import conv2d_backward, conv2d_forward
from . import cpu_kernels, settings, threads
from .choice import kernels_for
from .scratch import scratch_for


def images_per_chunk(layer, x):
    """How many images go through im2col at once: at most ``IM2COL_BUDGET_BYTES`` of
    im2col matrix; with the numba kernels, about ``CPU_CHUNK_BYTES``, so that a chunk's
    matrix is still in the cache when the product (and the backward pass) reads it."""
    out_h, out_w, _ = layer.output_shape
    kh, kw = layer.kernel_size
    bytes_per_image = out_h * out_w * kh * kw * x.shape[-1] * x.dtype.itemsize
    budget = settings.IM2COL_BUDGET_BYTES
    if kernels_for(x) is cpu_kernels:
        budget = min(budget, settings.CPU_CHUNK_BYTES)
    return max(1, budget // max(bytes_per_image, 1))


def forward_chunks(layer, x):
    """The forward pass's chunks: ``(images, rows)`` pairs, ``images`` a slice of the batch
    and ``rows`` None (whole images) or ``(start, stop)``, output rows of one image."""
    n = x.shape[0]
    out_h, out_w, _ = layer.output_shape
    kh, kw = layer.kernel_size
    bytes_per_row = out_w * kh * kw * x.shape[-1] * x.dtype.itemsize
    on_cpu = kernels_for(x) is cpu_kernels
    rows_per_chunk = settings.CPU_CHUNK_BYTES // bytes_per_row if on_cpu else out_h
    if rows_per_chunk >= out_h:
        chunk = images_per_chunk(layer, x)
        return [(slice(start, start + chunk), None) for start in range(0, n, chunk)]
    rows_per_chunk = max(1, rows_per_chunk)
    return [(slice(image, image + 1), (top, min(top + rows_per_chunk, out_h)))
            for image in range(n) for top in range(0, out_h, rows_per_chunk)]


def forward(layer, x, z, fused, training, pool=None):
    """z = conv(x) + bias, ReLU'd if ``fused`` (the kernels that fuse bias + ReLU), chunk
    by chunk. Returns the im2col matrix when one chunk held the whole batch and
    ``training`` (the backward pass then need not rebuild it), else None.

    ``pool=(pool_size, pooled, argmax)``: the chunks are whole images, and each chunk's
    activation goes straight into the max pooling after this layer, written to
    ``pooled`` and ``argmax``; ``z`` is then None (see ``fusion``).
    """
    kernel, bias = layer.params["kernel"], layer.params.get("bias")
    kh, kw = layer.kernel_size
    out_h, out_w, filters = layer.output_shape
    kernels = kernels_for(x)
    scratch = scratch_for(layer)

    def convolve(chunk, worker):
        images, rows = chunk
        x_chunk = x[images]
        chunk_h = out_h if rows is None else rows[1] - rows[0]
        cols = scratch.buffer(("cols", worker), (len(x_chunk) * chunk_h * out_w,
                                                 kh * kw * x.shape[-1]), x)
        if rows is None:   # whole images
            # Fused with the pooling: this chunk's activation lives only in a scratch
            # buffer, read from the cache by the pooling.
            z_out = z[images] if pool is None else scratch.buffer(
                ("z", worker), (len(x_chunk), out_h, out_w, filters), x)
            z_chunk, cols = conv2d_forward(x_chunk, kernel, None if fused else bias,
                                           layer.strides, layer.padding, out=z_out,
                                           cols_out=cols, im2col=kernels.im2col)
        else:              # some output rows of one large image (CPU only)
            z_chunk = z[images, rows[0]:rows[1]]                      # (1, rows, OW, F)
            cols = cpu_kernels.im2col(x_chunk, layer.kernel_size, layer.strides,
                                      layer.padding, out=cols, rows=rows)  # (rows*OW, KH*KW*C)
            np.matmul(cols, kernel.reshape(-1, filters),
                      out=z_chunk.reshape(-1, filters))               # (rows*OW, F)
            if bias is not None and not fused:
                z_chunk += bias
        if pool is not None:   # bias + ReLU + max pooling in one pass
            pool_size, pooled, argmax = pool
            cpu_kernels.bias_relu_pool(z_chunk, bias, pool_size, pooled[images], argmax[images])
        elif fused:   # bias + ReLU in one pass, while z_chunk is still in the cache
            fused.bias_relu_(z_chunk, bias)
        return cols

    chunks = forward_chunks(layer, x)
    cols = threads.map_chunks(convolve, chunks, enabled=kernels is cpu_kernels)[-1]
    whole_batch = len(chunks) == 1 and chunks[0][1] is None
    return cols if training and whole_batch else None


def backward(layer, dout, x, relu_y, cols, need_input_grad):
    """-> (dx or None, dkernel, dbias), chunk by chunk; ``relu_y`` and ``cols`` as in
    ``conv.conv2d_backward``. The chunks' kernel and bias gradients are added up in
    chunk order, so the sums do not depend on the number of threads."""
    kernel = layer.params["kernel"]
    kh, kw = layer.kernel_size
    out_h, out_w, filters = layer.output_shape
    n, channels = x.shape[0], x.shape[-1]
    kernels = kernels_for(x)
    scratch = scratch_for(layer)
    chunk = n if cols is not None else images_per_chunk(layer, x)
    dx = scratch.result("dx", x.shape, x) if need_input_grad else None

    def backpropagate(images, worker):
        count = images.stop - images.start
        rows = count * out_h * out_w
        if relu_y is not None:   # ReLU's backward without a boolean temporary
            dz = kernels.relu_backward(
                dout[images], relu_y[images],
                out=scratch.buffer(("dz", worker), (count, out_h, out_w, filters), x))
        else:
            dz = dout[images]
        chunk_cols = cols
        if chunk_cols is None:   # rebuild this chunk's im2col matrix
            chunk_cols = kernels.im2col(x[images], layer.kernel_size, layer.strides,
                                        layer.padding,
                                        out=scratch.buffer(("cols", worker),
                                                           (rows, kh * kw * channels), x))
        _, dkernel, dbias = conv2d_backward(
            dz, chunk_cols, (count, *x.shape[1:]), kernel, layer.strides, layer.padding,
            need_input_grad, dx_out=None if dx is None else dx[images],
            dcols_out=scratch.buffer(("dcols", worker), (rows, kh * kw * channels), x),
            col2im=kernels.col2im)
        return dkernel, dbias

    chunks = [slice(start, min(start + chunk, n)) for start in range(0, n, chunk)]
    dkernel, dbias = threads.sum_chunks(backpropagate, chunks, enabled=kernels is cpu_kernels)
    return dx, dkernel, dbias
