"""Conv2D by Winograd's F(2x2, 3x3) on the CPU, forward and backward (``ops.winograd``
has the maths in NumPy): 2.25x fewer multiplies than im2col, for a few float32
roundings of difference.

The tile rows of the whole batch are numbered one after another and cut into chunks
shared among the threads; each chunk is transformed, multiplied (16 products) and
transformed back while in the cache.
"""
from __future__ import annotations

import numpy as np

from ..ops import winograd
from ..ops.conv import column_sums
from ..ops.padding import conv_geometry
from . import cpu_kernels, settings, threads
from .scratch import scratch_for


def forward(layer, x, z, relu, pool=None):
    """z = conv(x) + bias (then ReLU if ``relu``); with ``pool=(pooled, argmax)``,
    ReLU'd and max-pooled 2x2 into those instead of z (z is then None)."""
    _, _, pad_h, pad_w = conv_geometry(x.shape, layer.kernel_size, layer.strides, layer.padding)
    bias = layer.params.get("bias")
    if bias is None:
        bias = np.zeros(layer.filters, dtype=x.dtype)
    u = winograd.transform_kernel(layer.params["kernel"])            # (16, C, F)
    _correlate(layer, x, u, bias, relu, pad_h[0], pad_w[0], z, pool)


def _chunks(n, tiles_h, tiles_w, channels, filters):
    """Chunks of whole tile rows, numbered across the batch: ``(first, stop)`` pairs of at
    least ``WINOGRAD_TILES_PER_CHUNK`` tiles, more if ``WINOGRAD_CHUNK_BYTES`` allows."""
    per_tile = 16 * (channels + filters) * 4                         # bytes of V and M
    tiles = max(settings.WINOGRAD_TILES_PER_CHUNK, settings.WINOGRAD_CHUNK_BYTES // per_tile)
    rows = -(-tiles // tiles_w)                                       # at least one
    total = n * tiles_h                                               # tile rows in the batch
    return [(first, min(first + rows, total)) for first in range(0, total, rows)]


def _correlate(layer, x, u, bias, relu, pad_top, pad_left, out, pool=None, argmax=None):
    """out (N, OH, OW, F) = sum of x[n, y+i-pad_top, x+j-pad_left, c] * g[i, j, c, f] + bias
    (then ReLU if ``relu``), by F(2x2, 3x3), given U = G g G^T (16, C, F).

    ``pool=(pooled, argmax)`` (then ``out`` is None): each tile's 2x2 output block, ReLU'd,
    is a window of the 2x2 max pooling after this layer, whose output goes to pooled and
    argmax (N, OH // 2, OW // 2, F). With ``argmax``, x is the output gradient of a 2x2
    max pooling, whose input gradient is correlated without being written out.
    """
    n, _, _, channels = x.shape
    out_h, out_w, filters = layer.output_shape if out is None else out.shape[1:]
    tiles_h, tiles_w = winograd.tile_counts(out_h, out_w)
    scratch = scratch_for(layer)

    def correlate(chunk, worker):
        first, stop = chunk
        tiles = (stop - first) * tiles_w
        # Position-major (16, tiles, .): the 16 products below run on contiguous matrices.
        v = scratch.buffer(("winograd_v", worker), (16, tiles, channels), x)
        m = scratch.buffer(("winograd_m", worker), (16, tiles, filters), x)
        if argmax is None:
            cpu_kernels.winograd_input(x, pad_top, pad_left, first, tiles_h, tiles_w, v)
        else:
            cpu_kernels.winograd_unpooled_input(x, argmax, pad_top, pad_left, first, tiles_h,
                                                tiles_w, v)
        np.matmul(v, u, out=m)   # the 16 products (tiles, C) @ (C, F) in one call
        if pool is None:
            cpu_kernels.winograd_output(m, bias, relu, first, tiles_h, tiles_w, out)
        else:
            cpu_kernels.winograd_output_pool(m, bias, first, tiles_h, tiles_w, *pool)

    threads.map_chunks(correlate, _chunks(n, tiles_h, tiles_w, channels, filters))


def backward(layer, x, dz, need_input_grad, argmax=None):
    """(dx or None, dkernel, dbias) by Winograd, dz the gradient of conv(x) + bias.

    With ``argmax``, dz is given pooled: this layer's output went through a fused 2x2 max
    pooling with that argmax, and dz is the pooling's output gradient masked by ReLU's
    backward (N, OH // 2, OW // 2, F); the transforms read dz's unpooled values from it.

    Kernel gradient: for a few tile rows at a time, V = B^T d B of the input tiles and
    Z = A g A^T of the 2x2 blocks of dz, then 16 products V[k]^T @ Z[k]
    (C, tiles) @ (tiles, F), summed over the batch in image order, and G^T (sum) G
    (see ``winograd.kernel_grad``). Input gradient: dz correlated with the kernel turned
    by 180 degrees.
    """
    n, _, _, channels = x.shape
    out_h, out_w, filters = layer.output_shape
    _, _, pad_h, pad_w = conv_geometry(x.shape, layer.kernel_size, layer.strides, layer.padding)
    tiles_h, tiles_w = winograd.tile_counts(out_h, out_w)
    scratch = scratch_for(layer)
    # Whole images a chunk, enough of them for WINOGRAD_TILES_PER_CHUNK tiles: the
    # products run over the tiles, and VGG16's 9x9 images have only 25.
    images_per_chunk = -(-settings.WINOGRAD_TILES_PER_CHUNK // (tiles_h * tiles_w))
    # Within a chunk, a few tile rows at a time: their V and Z stay in the core's L2 cache
    # from the transforms to the products.
    rows_per_product = -(-settings.WINOGRAD_TILES_PER_PRODUCT // tiles_w)

    def image_sums(images, worker):
        summed = None
        stop_row = images.stop * tiles_h
        for first_row in range(images.start * tiles_h, stop_row, rows_per_product):
            tiles = (min(first_row + rows_per_product, stop_row) - first_row) * tiles_w
            v = scratch.buffer(("winograd_v16", worker), (16, tiles, channels), x)
            z = scratch.buffer(("winograd_z16", worker), (16, tiles, filters), x)
            cpu_kernels.winograd_input(x, pad_h[0], pad_w[0], first_row, tiles_h, tiles_w, v)
            if argmax is None:
                cpu_kernels.winograd_gradient(dz, first_row, tiles_h, tiles_w, z)
            else:
                cpu_kernels.winograd_unpooled_gradient(dz, argmax, first_row, tiles_h,
                                                       tiles_w, z)
            if summed is None:
                summed = np.matmul(v.transpose(0, 2, 1), z)                  # (16, C, F)
            else:
                term = scratch.buffer(("winograd_term", worker), summed.shape, x)
                summed += np.matmul(v.transpose(0, 2, 1), z, out=term)
        return summed, column_sums(dz[images].reshape(-1, filters))

    chunks = [slice(start, min(start + images_per_chunk, n))
              for start in range(0, n, images_per_chunk)]
    summed, dbias = threads.sum_chunks(image_sums, chunks)
    dkernel = winograd.untransform_kernel_grad(summed)
    dx = None
    if need_input_grad:
        dx = scratch.result("dx", x.shape, x)
        turned = winograd.flip_kernel(layer.params["kernel"])          # (3, 3, F, C)
        _correlate(layer, dz, winograd.transform_kernel(turned), np.zeros(channels, x.dtype),
                   False, 2 - pad_h[0], 2 - pad_w[0], dx, argmax=argmax)
    return dx, dkernel, dbias
