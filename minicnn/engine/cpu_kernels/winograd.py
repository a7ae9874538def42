"""numba tile transforms of Winograd's F(2x2, 3x3) (defined in NumPy in ``ops.winograd``).

Tile rows are numbered across the batch: row r is tile row r % tiles_h of image
r // tiles_h, so a chunk of tile rows may cross image borders. V and M are
position-major, (16, tiles, C) and (16, tiles, F): the 16 matrix products between the
transforms run on contiguous matrices.
"""
from __future__ import annotations

import numpy as np

from .im2col import _c_contiguous
from .jit import jit


@jit(inline=True)
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


@jit(inline=True)
def _winograd_input_inside(x, n, top, left, t, v):
    """v[:, t] = B^T d B for the patch d = x[n, top:top+4, left:left+4] (inside the image),
    the same numbers as ``_winograd_input_transform``: row a of B^T d is the sum or
    difference of two rows of d, then each row's 4 values combine into 4 outputs.

    Written as 4 passes over the channels, one per row a, each reading 8 pixels and
    writing 4 outputs: LLVM turns such a loop into SIMD code, not one that reads 16 and
    writes 16 arrays (its run-time overlap checks give up), nor one on 1-D views (each
    view costs reference counting).
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


@jit
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


@jit(inline=True)
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


@jit
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


@jit
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


@jit
def _winograd_gradient_transform(g00, g01, g10, g11, half, t, f, z):
    """Rows a = half and half + 1 of A g A^T (8 of its 16 values) for one 2x2 block g of
    filter f, into z[4a:4a+4, t, f]; z (16, tiles, F).

    The callers write a tile in two passes over the filters, 8 values each: a loop
    that writes 16 arrays at once is more than LLVM checks for overlap at run time,
    and it gives up SIMD code.
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


@jit
def _winograd_gradient_kernel(dz, first_row, tiles_h, tiles_w, z):
    """Z = A g A^T for the 2x2 blocks g of dz (N, OH, OW, F) under some tile rows
    (numbered across the batch as in ``_winograd_input_kernel``): z (16, rows*tiles_w, F),
    position-major. Blocks sticking out of an odd size read 0 there.
    A = A_T.T = [[1, 0], [1, 1], [1, -1], [0, -1]].
    """
    _, out_h, out_w, filters = dz.shape
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
                            dz[n, oy, ox, f], dz[n, oy, ox + 1, f],
                            dz[n, oy + 1, ox, f], dz[n, oy + 1, ox + 1, f], half, t, f, z)
                    continue
                for f in range(filters):
                    g00 = dz[n, oy, ox, f]
                    g01 = dz[n, oy, ox + 1, f] if right else zero
                    g10 = dz[n, oy + 1, ox, f] if below else zero
                    g11 = dz[n, oy + 1, ox + 1, f] if right and below else zero
                    _winograd_gradient_transform(g00, g01, g10, g11, half, t, f, z)


@jit
def _winograd_unpooled_gradient_kernel(dout, argmax, first_row, tiles_h, tiles_w, z):
    """``_winograd_gradient_kernel`` on the gradient that a 2x2 max pooling sends back to
    its input (see ``_winograd_input_kernel`` with an argmax): each tile's 2x2 block is one
    pooling window, all 0 but its winner. dout (the pooling's output gradient), argmax
    (N, PH, PW, F)."""
    _, pooled_h, pooled_w, filters = dout.shape
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
                    # g * (slot == k), not a select: the product runs as SIMD code, several
                    # times faster (the same numbers, 0 or g, for any finite g; a NaN
                    # gradient stays NaN either way).
                    g, slot = dout[n, ty, tx, f], argmax[n, ty, tx, f]
                    _winograd_gradient_transform(
                        g * np.float32(slot == 0), g * np.float32(slot == 1),
                        g * np.float32(slot == 2), g * np.float32(slot == 3), half, t, f, z)


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


def winograd_gradient(dz, first_row, tiles_h, tiles_w, out):
    """Z = A g A^T of F(3x3, 2x2) (see ``winograd.conv2d_filter_grad``) for the 2x2 blocks
    of dz (N, OH, OW, F) under some tile rows: out (16, rows*tiles_w, F), position-major
    (the layout of the products that follow)."""
    _winograd_gradient_kernel(_c_contiguous(dz), first_row, tiles_h, tiles_w, out)
    return out


def winograd_unpooled_input(dout, argmax, pad_top, pad_left, first_row, tiles_h, tiles_w,
                            out):
    """:func:`winograd_input` of the gradient a 2x2 max pooling sends back to its input,
    read from its output gradient dout and argmax (N, PH, PW, C) without being
    written out."""
    _winograd_input_kernel(_c_contiguous(dout), _c_contiguous(argmax), pad_top,
                           pad_left, first_row, tiles_h, tiles_w, out)
    return out


def winograd_unpooled_gradient(dout, argmax, first_row, tiles_h, tiles_w, out):
    """:func:`winograd_gradient` of the gradient a 2x2 max pooling sends back to its input
    (see :func:`winograd_unpooled_input`)."""
    _winograd_unpooled_gradient_kernel(_c_contiguous(dout), _c_contiguous(argmax),
                                       first_row, tiles_h, tiles_w, out)
    return out
