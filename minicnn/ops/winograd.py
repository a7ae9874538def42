"""Winograd's minimal filtering F(2x2, 3x3): a 3x3 convolution with 2.25x fewer multiplies.

A 3x3 convolution at stride 1 computes each 2x2 block of outputs from a 4x4
patch of the input. Done directly, that is 2*2*3*3 = 36 multiplies per input
channel and filter. Winograd (Lavin & Gray, "Fast Algorithms for Convolutional
Neural Networks", 2015) gets the same four outputs from 16 multiplies, by moving
both the patch and the kernel into a space where the convolution is an
elementwise product:

    V = B^T d B        the 4x4 input patch d, transformed       (one per tile and channel)
    U = G g G^T        the 3x3 kernel g, transformed to 4x4      (one per channel and filter)
    M = sum over c of U * V      16 elementwise products, summed over the channels
    Y = A^T M A        the 2x2 output block

The sum over channels of ``U[k] * V[k]`` for each of the 16 positions k is a
matrix product: (tiles x C) @ (C x F). So a convolution becomes 16 matrix
products, each with 1/9 of im2col's columns, plus two cheap transforms: fewer
multiplies for errors of a few float32 roundings (tested against the direct sum).

Layout, as everywhere in minicnn (channels-last):

    x        (N, H, W, C)
    kernel   (3, 3, C, F)    -> U (16, C, F), position k = 4*row + column of the 4x4 tile
    tiles    one per 2x2 output block: tiles_h = ceil(OH / 2) rows of tiles_w = ceil(OW / 2)
    V        (tiles, 16, C);  M (tiles, 16, F)

This module is the readable NumPy version (:func:`forward`, :func:`kernel_grad`);
the engine runs the numba kernels of ``engine.cpu_kernels.winograd``, which do the
same transforms tile by tile in the cache, and the tests prove them equal to the
plain convolution.
"""
from __future__ import annotations

import numpy as np

from .padding import conv_geometry

# The transforms of F(2x2, 3x3), from Lavin & Gray (2015).
B_T = np.array([[1, 0, -1, 0],
                [0, 1, 1, 0],
                [0, -1, 1, 0],
                [0, 1, 0, -1]], dtype=np.float32)
G = np.array([[1, 0, 0],
              [0.5, 0.5, 0.5],
              [0.5, -0.5, 0.5],
              [0, 0, 1]], dtype=np.float32)
A_T = np.array([[1, 1, 1, 0],
                [0, 1, -1, -1]], dtype=np.float32)


def applies(kernel_shape, strides) -> bool:
    """Whether F(2x2, 3x3) can compute this convolution: a 3x3 kernel at stride 1."""
    return tuple(kernel_shape[:2]) == (3, 3) and tuple(strides) == (1, 1)


def tile_counts(out_h, out_w):
    """Rows and columns of 2x2 output tiles (the last ones may stick out of an odd size)."""
    return (out_h + 1) // 2, (out_w + 1) // 2


def transform_kernel(kernel):
    """U = G g G^T for every (channel, filter): (3, 3, C, F) -> (16, C, F).

    Written as one matrix product: U[4a+b] = sum over (i, j) of G[a, i] G[b, j] g[i, j],
    and kron(G, G)[4a+b, 3i+j] = G[a, i] G[b, j].
    """
    _, _, channels, filters = kernel.shape
    gg = np.kron(G, G).astype(kernel.dtype)                          # (16, 9)
    return (gg @ kernel.reshape(9, channels * filters)).reshape(16, channels, filters)


def forward(x, kernel, bias=None, padding="valid"):
    """A 3x3, stride-1 convolution by F(2x2, 3x3), in plain NumPy: x (N, H, W, C) -> (N, OH, OW, F).

    Equals ``conv.conv2d_forward(x, kernel, bias, (1, 1), padding)`` up to float32 rounding.
    Its input gradient is the same correlation of dz with :func:`flip_kernel`'s kernel,
    padded by 2 - pad on each side.
    """
    _check_kernel(kernel)
    out_h, out_w, pad_h, pad_w = conv_geometry(x.shape, (3, 3), (1, 1), padding)
    out = _correlate(x, kernel, pad_h[0], pad_w[0], out_h, out_w)
    return out if bias is None else (out + bias).astype(x.dtype)


def flip_kernel(kernel):
    """(3, 3, C, F) -> (3, 3, F, C): turned by 180 degrees, in and out channels swapped."""
    return np.ascontiguousarray(kernel[::-1, ::-1].transpose(0, 1, 3, 2))


def kernel_grad(x, dz, padding="valid"):
    """dLoss/dkernel of a 3x3, stride-1 convolution by F(3x3, 2x2): -> (3, 3, C, F).

    The kernel gradient sum over (n, y, x) of x[n, y+i-pad, x+j-pad, c] * dz[n, y, x, f] is
    itself a small correlation: 3 "outputs" (the taps) from a 2-tap "filter" (a 2x2 block
    of dz) over a 4-input tile. Its Winograd form uses the same matrices, transposed:
    with Z = A g A^T for each 2x2 block g of dz (A = A_T.T) and V = B^T d B for the
    4x4 input tile d under it, the gradient is G^T (sum over tiles of Z * V) G.
    """
    n, _, _, channels = x.shape
    out_h, out_w, pad_h, pad_w = conv_geometry(x.shape, (3, 3), (1, 1), padding)
    tiles_h, tiles_w = tile_counts(out_h, out_w)
    v = np.einsum("ia,ntwabc,jb->ntwijc", B_T, _patches(x, pad_h[0], pad_w[0], tiles_h, tiles_w),
                  B_T)
    # dz in 2x2 blocks, zeros where the last blocks stick out of an odd size
    blocks = np.zeros((n, 2 * tiles_h, 2 * tiles_w, dz.shape[3]), dtype=dz.dtype)
    blocks[:, :out_h, :out_w] = dz
    blocks = blocks.reshape(n, tiles_h, 2, tiles_w, 2, -1).transpose(0, 1, 3, 2, 4, 5)
    z = np.einsum("ia,ntwabf,jb->ntwijf", A_T.T, blocks, A_T.T)   # A g A^T
    summed = np.einsum("ntwijc,ntwijf->ijcf", v, z)                # sum over tiles of Z * V
    return untransform_kernel_grad(summed.reshape(16, channels, -1)).astype(x.dtype)


def untransform_kernel_grad(summed):
    """G^T X G for every (channel, filter): (16, C, F) sums over tiles of Z * V -> (3, 3, C, F)."""
    _, channels, filters = summed.shape
    gg = np.kron(G.T, G.T).astype(summed.dtype)                      # (9, 16)
    return (gg @ summed.reshape(16, channels * filters)).reshape(3, 3, channels, filters)


def _check_kernel(kernel):
    if not applies(kernel.shape, (1, 1)):
        raise ValueError(f"Winograd F(2x2, 3x3) needs a 3x3 kernel, got {kernel.shape[:2]}")


def _patches(x, pad_top, pad_left, tiles_h, tiles_w):
    """d[n, ty, tx, a, b, c]: the 4x4 patch of tile (ty, tx), starting at input pixel
    (2ty - pad_top, 2tx - pad_left); zeros outside the image."""
    n, height, width, channels = x.shape
    padded = np.zeros((n, 2 * tiles_h + 2, 2 * tiles_w + 2, channels), dtype=x.dtype)
    rows = min(height, padded.shape[1] - pad_top)
    cols = min(width, padded.shape[2] - pad_left)
    padded[:, pad_top:pad_top + rows, pad_left:pad_left + cols] = x[:, :rows, :cols]
    patches = np.empty((n, tiles_h, tiles_w, 4, 4, channels), dtype=x.dtype)
    for a in range(4):
        for b in range(4):
            patches[:, :, :, a, b] = padded[:, a:a + 2 * tiles_h:2, b:b + 2 * tiles_w:2]
    return patches


def _correlate(x, kernel, pad_top, pad_left, out_h, out_w):
    """out[n, y, x, f] = sum of x[n, y+i-pad_top, x+j-pad_left, c] * kernel[i, j, c, f]."""
    n = x.shape[0]
    channels, filters = kernel.shape[2:]
    tiles_h, tiles_w = tile_counts(out_h, out_w)
    v = np.einsum("ia,ntwabc,jb->ntwijc", B_T, _patches(x, pad_top, pad_left, tiles_h, tiles_w),
                  B_T)                                                 # B^T d B
    u = transform_kernel(kernel).reshape(4, 4, channels, filters)     # G g G^T
    m = np.einsum("ntwijc,ijcf->ntwijf", v, u)                        # sum over c of U * V
    y = np.einsum("pi,ntwijf,qj->ntwpqf", A_T, m, A_T)                # A^T M A: 2x2 blocks
    out = y.transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * tiles_h, 2 * tiles_w, filters)
    return np.ascontiguousarray(out[:, :out_h, :out_w], dtype=x.dtype)
