"""Winograd's F(2x2, 3x3) against the plain convolution it replaces.

The NumPy version (``ops.winograd.forward``) and the numba path of
``Conv2D`` must give the direct sum's numbers up to float32 rounding, on odd
sizes (tiles that stick out), both paddings, with and without bias and ReLU,
in pieces that cross image borders, on any number of threads.
"""
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn
from minicnn.engine import conv as engine_conv
from minicnn.engine import conv_winograd
from minicnn.engine import cpu_kernels
from minicnn.engine import settings as engine_settings
from minicnn.engine import threads as engine_threads
from minicnn.ops import conv, winograd

from float32_error import assert_within, sum_bound

needs_numba = pytest.mark.skipif(not cpu_kernels.usable(np.zeros(1, np.float32)),
                                 reason="numba kernels unavailable here")

# (H, W, C, F, padding): odd and even sizes, outputs of 1 to 11 pixels a side
GEOMETRIES = [(7, 9, 16, 5, "same"), (8, 5, 17, 3, "valid"), (11, 10, 32, 4, "same"),
              (3, 3, 16, 2, "valid"), (1, 2, 16, 3, "same"), (6, 13, 20, 7, "valid")]


def _random(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _direct(x, kernel, bias, padding):
    """The plain convolution in float64: the numbers Winograd must reproduce."""
    out, _ = conv.conv2d_forward(x.astype(np.float64), kernel.astype(np.float64),
                                 None if bias is None else bias.astype(np.float64),
                                 (1, 1), padding)
    return out


def _input_grad(dz, kernel, x_shape, padding):
    """dLoss/dx of a 3x3 stride-1 convolution by Winograd: dz correlated with the kernel
    turned by 180 degrees, padded by 2 - pad on each side (see ``winograd.forward``)."""
    _, _, pad_h, pad_w = conv.conv_geometry(x_shape, (3, 3), (1, 1), padding)
    padded = np.pad(dz, ((0, 0), (2 - pad_h[0], 2 - pad_h[1]), (2 - pad_w[0], 2 - pad_w[1]),
                         (0, 0)))
    return winograd.forward(padded, winograd.flip_kernel(kernel), None, "valid")


def _abs_paths(function, *operands):
    """``function`` (one of ``winograd``'s) on |operands| with |B^T|, |G| and |A^T|, in
    float64: for every result, the sum of the magnitudes of all the products and
    transform terms that reach it, cancelled or not. Every float32 rounding on the way
    is at most eps/2 of a partial sum, and no partial sum exceeds this."""
    saved = winograd.B_T, winograd.G, winograd.A_T
    winograd.B_T, winograd.G, winograd.A_T = (np.abs(m) for m in saved)
    try:
        return function(*(np.abs(np.asarray(op, np.float64)) for op in operands))
    finally:
        winograd.B_T, winograd.G, winograd.A_T = saved


def _winograd_bounds(x, kernel, bias, grad_y, padding):
    """Bounds for the layer's output, input gradient, kernel and bias gradients computed
    by Winograd against any other float32 order (im2col included).

    Along each path: the input transform rounds twice, the kernel transform four times,
    the product once, the output transform four times; then a sum over C (forward), F
    (input gradient) or the N*tiles tiles (kernel gradient). The direct convolution's
    K = 9*C terms (or 9*F, or N*OH*OW) is the longer chain of the two, and the direct sum's
    magnitudes are among Winograd's (the F(2x2, 3x3) paths of matching taps have weight
    1 or 2), so ``sum_bound(max(K_direct, K_winograd + 11), winograd paths)`` holds both.
    """
    channels, filters = kernel.shape[2:]
    bias_abs = 0.0 if bias is None else np.abs(bias.astype(np.float64))
    output = _abs_paths(lambda a, k: winograd.forward(a, k, None, padding), x, kernel)
    output = output + bias_abs
    grad_input = _abs_paths(lambda g, k: _input_grad(g, k, x.shape, padding),
                            grad_y, kernel)
    grad_kernel = _abs_paths(lambda a, g: winograd.kernel_grad(a, g, padding), x, grad_y)
    positions = grad_y.size // filters
    return (sum_bound(9 * channels + 12, output),
            sum_bound(9 * filters + 12, grad_input),
            {"kernel": sum_bound(positions + 12, grad_kernel),
             "bias": sum_bound(positions, np.abs(grad_y.astype(np.float64)).sum(axis=(0, 1, 2)))})


def test_kernel_transform_is_g_times_kernel_times_g_transposed():
    rng = np.random.default_rng(0)
    kernel = _random(rng, 3, 3, 2, 3)
    u = winograd.transform_kernel(kernel)
    assert u.shape == (16, 2, 3) and u.dtype == np.float32
    for c in range(2):
        for f in range(3):
            expected = winograd.G @ kernel[:, :, c, f] @ winograd.G.T
            # G g G^T: each element adds up to 9 taps (weights 1/4 to 1), in float32 here
            # and in float64 on the right
            magnitude = np.abs(winograd.G) @ np.abs(kernel[:, :, c, f]) @ np.abs(winograd.G).T
            assert_within(u[:, c, f].reshape(4, 4), expected, sum_bound(9, magnitude))


@pytest.mark.parametrize("h,w,c,f,padding", GEOMETRIES)
@pytest.mark.parametrize("use_bias", [True, False])
def test_numpy_winograd_equals_the_direct_convolution(h, w, c, f, padding, use_bias):
    rng = np.random.default_rng(h * w + c)
    x, kernel = _random(rng, 2, h, w, c), _random(rng, 3, 3, c, f)
    bias = _random(rng, f) if use_bias else None
    got = winograd.forward(x, kernel, bias, padding)
    expected = _direct(x, kernel, bias, padding)
    assert got.shape == expected.shape and got.dtype == np.float32
    grad_y = np.zeros_like(got)   # only the output's bound is used here
    assert_within(got, expected, _winograd_bounds(x, kernel, bias, grad_y, padding)[0])


def test_winograd_refuses_other_kernels_by_name():
    x = np.zeros((1, 6, 6, 2), np.float32)
    with pytest.raises(ValueError, match="needs a 3x3 kernel, got \\(5, 5\\)"):
        winograd.forward(x, np.zeros((5, 5, 2, 1), np.float32))
    assert winograd.applies((3, 3, 2, 1), (1, 1))
    assert not winograd.applies((3, 3, 2, 1), (2, 2))
    assert not winograd.applies((5, 5, 2, 1), (1, 1))


def _layer(h, w, c, f, padding, activation, use_bias, rng):
    layer = minicnn.Conv2D(f, 3, padding=padding, activation=activation, use_bias=use_bias,
                           input_shape=(h, w, c))
    layer.build((h, w, c))
    weights = [_random(rng, 3, 3, c, f)] + ([_random(rng, f)] if use_bias else [])
    layer.set_weights(weights)
    layer.winograd_min_channels = 16   # small test inputs take the Winograd path too
    return layer


@needs_numba
@pytest.mark.parametrize("h,w,c,f,padding", GEOMETRIES)
@pytest.mark.parametrize("activation,use_bias", [("relu", True), (None, True),
                                                 ("sigmoid", False), ("relu", False)])
def test_layer_winograd_equals_im2col(h, w, c, f, padding, activation, use_bias, cpu_device,
                                      monkeypatch):
    rng = np.random.default_rng(7)
    layer = _layer(h, w, c, f, padding, activation, use_bias, rng)
    x = _random(rng, 3, h, w, c)
    # pieces of one tile row: they cross from one image to the next
    monkeypatch.setattr(engine_settings, "WINOGRAD_TILES_PER_CHUNK", 1)
    monkeypatch.setattr(engine_settings, "WINOGRAD_CHUNK_BYTES", 0)
    assert engine_conv.uses_winograd(layer, x)
    got = layer.forward(x).copy()
    layer.cpu_winograd = False
    expected = layer.forward(x)
    bias = layer.get_weights()[1] if use_bias else None
    bound = _winograd_bounds(x, layer.get_weights()[0], bias, np.zeros_like(got), padding)[0]
    if activation == "sigmoid":   # 1/4-Lipschitz, plus its own few roundings of the result
        bound = bound / 4 + sum_bound(4, np.abs(expected))
    assert_within(got, expected, bound)


@needs_numba
@pytest.mark.parametrize("h,w,c,f,padding", GEOMETRIES)
@pytest.mark.parametrize("activation,use_bias", [("relu", True), (None, True), ("relu", False)])
@pytest.mark.parametrize("need_input_grad", [True, False])
def test_layer_backward_by_winograd_equals_im2col(h, w, c, f, padding, activation, use_bias,
                                                  need_input_grad, cpu_device, monkeypatch):
    rng = np.random.default_rng(9)
    layer = _layer(h, w, c, f, padding, activation, use_bias, rng)
    layer.winograd_min_channels = 1   # every layer here takes Winograd, forward and backward
    monkeypatch.setattr(engine_settings, "WINOGRAD_TILES_PER_CHUNK", 1)   # pieces of one tile row
    monkeypatch.setattr(engine_settings, "WINOGRAD_CHUNK_BYTES", 0)
    x = _random(rng, 3, h, w, c)
    grad_y = _random(rng, 3, *layer.output_shape)
    assert engine_conv.uses_winograd_backward(layer, x, need_input_grad)

    def gradients():
        layer.forward(x, training=True)
        grad_x = layer.backward(grad_y, need_input_grad=need_input_grad)
        return [None if grad_x is None else grad_x.copy()] + \
            [layer.grads[key].copy() for key in sorted(layer.grads)]

    with_winograd = gradients()
    layer.cpu_winograd = False
    weights = layer.get_weights()
    bounds = _winograd_bounds(x, weights[0], weights[1] if use_bias else None, grad_y, padding)
    grad_bounds = [bounds[1]] + [bounds[2][key] for key in sorted(layer.grads)]
    for got, expected, bound in zip(with_winograd, gradients(), grad_bounds):
        if expected is None:
            assert got is None
            continue
        # ReLU's mask comes from each forward pass's output: equal unless an output sits
        # within rounding of 0, which these random inputs do not produce
        assert got.dtype == np.float32
        assert_within(got, expected, bound)


@needs_numba
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_layer_winograd_gives_the_same_numbers_on_any_number_of_threads(threads, cpu_device,
                                                                        monkeypatch):
    rng = np.random.default_rng(11)
    layer = _layer(9, 7, 16, 32, "same", "relu", True, rng)
    monkeypatch.setattr(engine_settings, "WINOGRAD_TILES_PER_CHUNK", 8)   # 2 rows of 4 tiles a piece
    x, grad_y = _random(rng, 5, 9, 7, 16), _random(rng, 5, 9, 7, 32)

    def gradients():
        y = layer.forward(x, training=True).copy()
        grad_x = layer.backward(grad_y).copy()
        return [y, grad_x] + [layer.grads[key].copy() for key in ("kernel", "bias")]

    monkeypatch.setattr(engine_threads, "thread_count", lambda: 1)
    expected = gradients()
    monkeypatch.setattr(engine_threads, "thread_count", lambda: threads)
    engine_threads._pool.cache_clear()
    assert engine_conv.uses_winograd_backward(layer, x, True)
    for got, want in zip(gradients(), expected):
        np.testing.assert_array_equal(got, want)
    engine_threads._pool.cache_clear()


@needs_numba
def test_backward_keeps_im2col_when_the_input_gradient_has_few_channels(cpu_device):
    rng = np.random.default_rng(12)
    layer = _layer(8, 8, 32, 8, "same", "relu", True, rng)   # grad_x: a correlation of 8
    layer.winograd_min_channels = 32
    x = _random(rng, 1, 8, 8, 32)
    assert engine_conv.uses_winograd(layer, x)
    assert not engine_conv.uses_winograd_backward(layer, x, need_input_grad=True)
    assert engine_conv.uses_winograd_backward(layer, x, need_input_grad=False)


@needs_numba
def test_small_inputs_and_strided_layers_keep_im2col(cpu_device):
    rng = np.random.default_rng(10)
    few_channels = _layer(8, 8, 3, 4, "same", "relu", True, rng)
    assert not engine_conv.uses_winograd(few_channels, _random(rng, 1, 8, 8, 3))
    default = minicnn.Conv2D(4, 3, input_shape=(8, 8, 32))
    default.build((8, 8, 32))
    assert engine_conv.uses_winograd(default, _random(rng, 1, 8, 8, 32))
    narrow = minicnn.Conv2D(4, 3, input_shape=(8, 8, 16))
    narrow.build((8, 8, 16))
    assert not engine_conv.uses_winograd(narrow, _random(rng, 1, 8, 8, 16))   # below 32 channels
    strided = minicnn.Conv2D(4, 3, strides=2, input_shape=(8, 8, 16))
    strided.build((8, 8, 16))
    assert not engine_conv.uses_winograd(strided, _random(rng, 1, 8, 8, 16))
    assert not engine_conv.uses_winograd(_layer(8, 8, 16, 4, "same", "relu", True, rng),
                                         rng.standard_normal((1, 8, 8, 16)))   # float64


@needs_numba
@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12), c=st.integers(1, 5), f=st.integers(1, 4),
       batch=st.integers(1, 3), padding=st.sampled_from(["same", "valid"]),
       tiles_per_piece=st.sampled_from([1, 5, 192]),
       tiles_per_product=st.sampled_from([1, 4, 512]), seed=st.integers(0, 2**16))
def test_winograd_layer_property(h, w, c, f, batch, padding, tiles_per_piece,
                                 tiles_per_product, seed):
    """Any size, channel count, piece size and chunk of the kernel gradient's products:
    the numba Winograd path of a layer (forward, kernel and input gradients) equals the
    direct convolution and the chain rule."""
    if padding == "valid" and (h < 3 or w < 3):
        return   # no output at all: the layer refuses such inputs (tested elsewhere)
    rng = np.random.default_rng(seed)
    layer = minicnn.Conv2D(f, 3, padding=padding, input_shape=(h, w, c))
    layer.build((h, w, c))
    layer.winograd_min_channels = 1
    kernel, bias = _random(rng, 3, 3, c, f), _random(rng, f)
    layer.set_weights([kernel, bias])
    x = _random(rng, batch, h, w, c)
    assert engine_conv.uses_winograd(layer, x) and engine_conv.uses_winograd_backward(layer, x, True)
    with mock.patch.multiple(engine_settings, WINOGRAD_TILES_PER_CHUNK=tiles_per_piece,
                             WINOGRAD_CHUNK_BYTES=0,
                             WINOGRAD_TILES_PER_PRODUCT=tiles_per_product):
        y = layer.forward(x, training=True)
        grad_y = _random(rng, *y.shape)
        grad_x = layer.backward(grad_y)
    x64, k64 = x.astype(np.float64), kernel.astype(np.float64)
    expected_y, cols = conv.conv2d_forward(x64, k64, bias.astype(np.float64), (1, 1), padding)
    expected = conv.conv2d_backward(grad_y.astype(np.float64), cols, x.shape, k64, (1, 1),
                                    padding)
    bounds = _winograd_bounds(x, kernel, bias, grad_y, padding)
    for got, want, bound in [(y, expected_y, bounds[0]), (grad_x, expected[0], bounds[1]),
                             (layer.grads["kernel"], expected[1], bounds[2]["kernel"]),
                             (layer.grads["bias"], expected[2], bounds[2]["bias"])]:
        assert_within(got, want, bound)


# -- each numba transform kernel against its NumPy definition --------------------------

@needs_numba
@pytest.mark.parametrize("h,w,c,f,padding", GEOMETRIES)
def test_numba_transform_kernels_equal_numpy(h, w, c, f, padding):
    """winograd_input (B^T d B), winograd_gradient (A g A^T) and winograd_output
    (A^T M A + bias, ReLU) tile by tile, starting mid-batch, against the einsums."""
    rng = np.random.default_rng(h * 7 + w)
    n = 2
    x = _random(rng, n, h, w, c)
    out_h, out_w, pad_h, pad_w = conv.conv_geometry(x.shape, (3, 3), (1, 1), padding)
    tiles_h, tiles_w = winograd.tile_counts(out_h, out_w)
    first, rows = tiles_h - 1, tiles_h          # from the last tile row of image 0 into image 1
    tiles = rows * tiles_w

    patches = winograd._patches(x, pad_h[0], pad_w[0], tiles_h, tiles_w)
    v_numpy = np.einsum("ia,ntwabc,jb->ntwijc", winograd.B_T, patches, winograd.B_T)
    v_numpy = v_numpy.reshape(n * tiles_h * tiles_w, 16, c)[first * tiles_w:][:tiles]
    v = cpu_kernels.winograd_input(x, pad_h[0], pad_w[0], first, tiles_h, tiles_w,
                                   np.empty((16, tiles, c), np.float32))   # position-major
    # each V element adds up to 4 pixels (B^T's rows have 2 nonzero +-1 entries)
    v_abs = np.einsum("ia,ntwabc,jb->ntwijc", np.abs(winograd.B_T), np.abs(patches),
                      np.abs(winograd.B_T)).reshape(-1, 16, c)
    v_abs = v_abs[first * tiles_w:][:tiles]
    assert_within(v.transpose(1, 0, 2), v_numpy, sum_bound(4, v_abs), "V")

    grad_z = _random(rng, n, out_h, out_w, f)
    blocks = np.zeros((n, 2 * tiles_h, 2 * tiles_w, f), np.float32)
    blocks[:, :out_h, :out_w] = grad_z
    blocks = blocks.reshape(n, tiles_h, 2, tiles_w, 2, f).transpose(0, 1, 3, 2, 4, 5)
    a = winograd.A_T.T
    z_numpy = np.einsum("ia,ntwabf,jb->ntwijf", a, blocks, a)
    z_numpy = z_numpy.reshape(n * tiles_h * tiles_w, 16, f)[first * tiles_w:][:tiles]
    z = cpu_kernels.winograd_gradient(grad_z, first, tiles_h, tiles_w,
                                      np.empty((16, tiles, f), np.float32))   # position-major
    z_abs = np.einsum("ia,ntwabf,jb->ntwijf", np.abs(a), np.abs(blocks), np.abs(a))
    z_abs = z_abs.reshape(-1, 16, f)[first * tiles_w:][:tiles]   # up to 4 terms each
    assert_within(z.transpose(1, 0, 2), z_numpy, sum_bound(4, z_abs), "Z")

    m, bias = _random(rng, tiles, 16, f), _random(rng, f)
    y = np.einsum("pi,tijf,qj->tpqf", winograd.A_T, m.reshape(tiles, 4, 4, f), winograd.A_T)
    # A^T M A + bias: each output adds 9 terms of M and the bias
    y_abs = np.einsum("pi,tijf,qj->tpqf", np.abs(winograd.A_T),
                      np.abs(m.reshape(tiles, 4, 4, f)), np.abs(winograd.A_T)) + np.abs(bias)
    for relu in (False, True):
        out = np.full((n, out_h, out_w, f), 7.0, np.float32)   # untouched outside these tiles
        cpu_kernels.winograd_output(np.ascontiguousarray(m.transpose(1, 0, 2)), bias, relu,
                                    first, tiles_h, tiles_w, out)
        for t in range(tiles):
            r, tx = divmod(first * tiles_w + t, tiles_w)
            image, ty = divmod(r, tiles_h)
            block = y[t] + bias
            if relu:
                block = np.maximum(block, 0)
            rows_in, cols_in = min(2, out_h - 2 * ty), min(2, out_w - 2 * tx)
            assert_within(out[image, 2 * ty:2 * ty + rows_in, 2 * tx:2 * tx + cols_in],
                          block[:rows_in, :cols_in],
                          sum_bound(10, y_abs[t][:rows_in, :cols_in]), "output tile")
        written = np.zeros(out.shape, bool)
        for t in range(tiles):
            r, tx = divmod(first * tiles_w + t, tiles_w)
            image, ty = divmod(r, tiles_h)
            written[image, 2 * ty:2 * ty + 2, 2 * tx:2 * tx + 2] = True
        assert (out[~written] == 7.0).all()


@needs_numba
@pytest.mark.parametrize("h,w,c,f,padding", GEOMETRIES)
def test_unpooled_transform_kernels_equal_the_dense_ones(h, w, c, f, padding):
    """winograd_unpooled_input and winograd_unpooled_gradient, which read the gradient a
    2x2 max pooling sends back from its output gradient and argmax, against winograd_input
    and winograd_gradient on that gradient written out by the pooling's backward pass
    (odd sizes: the last row or column gets no gradient), from mid-batch."""
    rng = np.random.default_rng(h * 5 + w)
    n = 2
    out_h, out_w, pad_h, pad_w = conv.conv_geometry((n, h, w, c), (3, 3), (1, 1), padding)
    if out_h < 2 or out_w < 2:
        return   # no pooling window
    grad_pooled = _random(rng, n, out_h // 2, out_w // 2, f)
    argmax = rng.integers(0, 4, grad_pooled.shape).astype(np.uint8)
    dense = cpu_kernels.maxpool2d_backward(grad_pooled, argmax, (n, out_h, out_w, f))
    tiles_h, tiles_w = winograd.tile_counts(out_h, out_w)
    first, rows = tiles_h - 1, tiles_h          # from the last tile row of image 0 into image 1
    tiles = rows * tiles_w
    # The input gradient's correlation reads grad_z padded by 2 - pad on each side.
    expected = cpu_kernels.winograd_input(dense, 2 - pad_h[0], 2 - pad_w[0], first, tiles_h,
                                          tiles_w, np.empty((16, tiles, f), np.float32))
    got = cpu_kernels.winograd_unpooled_input(grad_pooled, argmax, 2 - pad_h[0], 2 - pad_w[0],
                                              first, tiles_h, tiles_w,
                                              np.empty((16, tiles, f), np.float32))
    np.testing.assert_array_equal(got, expected)
    expected = cpu_kernels.winograd_gradient(dense, first, tiles_h, tiles_w,
                                             np.empty((16, tiles, f), np.float32))
    got = cpu_kernels.winograd_unpooled_gradient(grad_pooled, argmax, first, tiles_h, tiles_w,
                                                 np.full((16, tiles, f), np.nan, np.float32))
    np.testing.assert_array_equal(got, expected)


@needs_numba
def test_winograd_output_keeps_nan_through_relu():
    """A NaN in the products stays NaN through bias + ReLU (so a diverging step is seen),
    on the fast path of whole 2x2 blocks and on the cut blocks of an odd size."""
    m = np.zeros((16, 2 * 2, 3), np.float32)       # 2x2 tiles of a 3x3 output, 3 filters
    m[:, :, 1] = np.nan                            # filter 1 of every tile
    out = np.zeros((1, 3, 3, 3), np.float32)
    cpu_kernels.winograd_output(m, np.full(3, -1.0, np.float32), True, 0, 2, 2, out)
    assert np.isnan(out[..., 1]).all()
    np.testing.assert_array_equal(out[..., [0, 2]], 0.0)   # -1 after ReLU


def test_winograd_pieces_hold_more_tiles_for_few_channels():
    """A piece is whole tile rows of at least winograd_tiles_per_piece tiles, more when
    few channels make V and M small (winograd_piece_bytes), and the pieces cover the
    batch's tile rows once, in order."""
    layer = minicnn.Conv2D(32, 3, padding="same")
    layer.build((75, 75, 32))
    for channels, tiles in [(32, 384), (256, 192)]:   # 1.5 MB of V and M; the floor
        pieces = conv_winograd._chunks(3, 38, 38, channels, channels)
        rows = pieces[0][1] - pieces[0][0]
        assert rows * 38 >= tiles > (rows - 1) * 38
        assert [p[0] for p in pieces[1:]] == [p[1] for p in pieces[:-1]]
        assert pieces[0][0] == 0 and pieces[-1][1] == 3 * 38
