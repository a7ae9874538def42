"""The fast kernels (numba on the CPU, CuPy on the GPU) against the NumPy definitions.

The NumPy code in ``minicnn/ops/conv.py`` and ``pooling.py`` is the
definition; each kernel must give the same numbers on random inputs of odd
sizes, for every stride, padding, kernel and pool size the layers accept.
The numba gather loops add in the same order as the NumPy loops, so most
comparisons are exact.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn
from minicnn import backend
from minicnn import engine
from minicnn.engine import conv_im2col, cpu_kernels, gpu_kernels
from minicnn.engine import settings as engine_settings
from minicnn.ops import conv, pooling

from float32_error import assert_within, conv_layer_bounds, linear_bound, sum_bound

numba_works = cpu_kernels.usable(np.zeros(1, np.float32))
needs_numba = pytest.mark.skipif(not numba_works, reason="numba kernels unavailable here")
needs_gpu = pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a CUDA device")

# (H, W, C, kernel, stride, padding): odd sizes, every stride 1/2/3, kernels 1/3/5
CONV_GEOMETRIES = [
    (7, 9, 1, 1, 1, "valid"), (7, 9, 3, 3, 1, "same"), (8, 5, 2, 3, 2, "valid"),
    (9, 9, 3, 5, 1, "same"), (10, 7, 2, 5, 2, "same"), (6, 11, 4, 3, 3, "same"),
    (11, 6, 5, 3, 3, "valid"), (5, 5, 3, 5, 3, "same"), (9, 4, 2, 1, 2, "same"),
]
# (H, W, pool, stride, padding): pools 2/3, overlapping (stride < pool) and not
POOL_GEOMETRIES = [
    (7, 9, 2, 2, "valid"), (7, 9, 2, 2, "same"), (8, 8, 3, 3, "valid"), (7, 5, 3, 2, "same"),
    (6, 7, 2, 1, "valid"), (5, 6, 3, 1, "same"), (10, 9, 3, 3, "same"), (9, 11, 2, 3, "valid"),
]


def _random(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


@pytest.fixture
def numpy_only(monkeypatch):
    """Run the portable NumPy definitions even where numba works."""
    monkeypatch.setattr(cpu_kernels, "enabled", False)


def _reference(function, *args, **kwargs):
    """``function`` run with the fast kernels (numba and CuPy) switched off: the engine
    "numpy"."""
    with engine.use_engine("numpy"):
        return function(*args, **kwargs)


# -- numba against NumPy ------------------------------------------------------------

@needs_numba
@pytest.mark.parametrize("h,w,c,k,s,padding", CONV_GEOMETRIES)
@pytest.mark.parametrize("batch", [1, 3])
def test_numba_im2col_and_col2im_equal_numpy(h, w, c, k, s, padding, batch):
    rng = np.random.default_rng(0)
    x = _random(rng, batch, h, w, c)
    cols = cpu_kernels.im2col(x, (k, k), (s, s), padding)
    expected = _reference(conv.im2col, x, (k, k), (s, s), padding)
    assert cols.dtype == np.float32
    np.testing.assert_array_equal(cols, expected)

    grad_cols = _random(rng, *cols.shape)
    grad_x = cpu_kernels.col2im(grad_cols, x.shape, (k, k), (s, s), padding)
    expected = _reference(conv.col2im, grad_cols, x.shape, (k, k), (s, s), padding)
    assert grad_x.dtype == np.float32 and grad_x.shape == x.shape
    np.testing.assert_array_equal(grad_x, expected)   # same adds in the same order


@needs_numba
@pytest.mark.parametrize("h,w,c,k,s,padding", CONV_GEOMETRIES)
@pytest.mark.parametrize("channels", [cpu_kernels.IM2COL_RUNS_BELOW_CHANNELS - 1,
                                      cpu_kernels.IM2COL_RUNS_BELOW_CHANNELS, 11])
def test_numba_im2col_both_kernels_equal_numpy(h, w, c, k, s, padding, channels):
    """Few channels take the window-row runs kernel, more the (j, c) loops: both exact."""
    x = _random(np.random.default_rng(10), 2, h, w, channels)
    np.testing.assert_array_equal(cpu_kernels.im2col(x, (k, k), (s, s), padding),
                                  _reference(conv.im2col, x, (k, k), (s, s), padding))


@needs_numba
@pytest.mark.parametrize("h,w,c,k,s,padding", CONV_GEOMETRIES)
@pytest.mark.parametrize("channels", [3, 9])
def test_numba_im2col_bands_are_slices_of_the_whole(h, w, c, k, s, padding, channels):
    """rows=(start, stop) gives exactly those output rows of the full im2col matrix."""
    x = _random(np.random.default_rng(11), 2, h, w, channels)
    out_h, out_w, _, _ = conv.conv_geometry(x.shape, (k, k), (s, s), padding)
    whole = cpu_kernels.im2col(x, (k, k), (s, s), padding).reshape(2, out_h, out_w, -1)
    for start in range(out_h):
        for stop in range(start + 1, out_h + 1):
            band = cpu_kernels.im2col(x, (k, k), (s, s), padding, rows=(start, stop))
            np.testing.assert_array_equal(band.reshape(2, stop - start, out_w, -1),
                                          whole[:, start:stop])


@needs_numba
@pytest.mark.parametrize("h,w,pool,s,padding", POOL_GEOMETRIES)
def test_numba_maxpool_equals_numpy(h, w, pool, s, padding):
    rng = np.random.default_rng(1)
    x = _random(rng, 2, h, w, 3)
    x[0, :2, :2, 0] = 1.5      # a tie: the first maximum in window order must win
    out, argmax = cpu_kernels.maxpool2d_forward(x, (pool, pool), (s, s), padding)
    ref_out, ref_argmax = _reference(pooling.maxpool2d_forward, x, (pool, pool), (s, s), padding)
    assert out.dtype == np.float32 and argmax.dtype == np.uint8
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(argmax, ref_argmax)

    grad_out = _random(rng, *out.shape)
    grad_x = cpu_kernels.maxpool2d_backward(grad_out, argmax, x.shape, (pool, pool), (s, s),
                                            padding)
    expected = _reference(pooling.maxpool2d_backward, grad_out, argmax, x.shape, (pool, pool),
                          (s, s), padding)
    assert grad_x.dtype == np.float32
    np.testing.assert_array_equal(grad_x, expected)


@needs_numba
@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 4),
       k=st.sampled_from([1, 2, 3, 5]), s=st.integers(1, 3),
       padding=st.sampled_from(["valid", "same"]), seed=st.integers(0, 2**16))
def test_numba_conv_kernels_property(batch, h, w, c, k, s, padding, seed):
    """Any geometry the layers accept: numba equals NumPy, and col2im is im2col's adjoint."""
    if padding == "valid" and (h < k or w < k):
        return   # no output: Conv2D refuses such inputs
    rng = np.random.default_rng(seed)
    x = _random(rng, batch, h, w, c)
    cols = cpu_kernels.im2col(x, (k, k), (s, s), padding)
    np.testing.assert_array_equal(cols, _reference(conv.im2col, x, (k, k), (s, s), padding))
    y = _random(rng, *cols.shape)
    back = cpu_kernels.col2im(y, x.shape, (k, k), (s, s), padding)
    np.testing.assert_array_equal(back, _reference(conv.col2im, y, x.shape, (k, k), (s, s),
                                                   padding))
    # <im2col(x), y> == <x, col2im(y)>: the products are exact in float64, and col2im's
    # float32 sums (at most KH*KW overlapping terms per pixel) are the only rounding.
    lhs = float((cols.astype(np.float64) * y).sum())
    rhs = float((x.astype(np.float64) * back).sum())
    overlap_bound = linear_bound(lambda g: _reference(conv.col2im, g, x.shape, (k, k), (s, s),
                                                      padding), k * k, y)
    assert abs(lhs - rhs) <= float((np.abs(x) * overlap_bound).sum()) + 1e-12 * abs(lhs)


@needs_numba
def test_fused_bias_relu_and_relu_backward_equal_numpy():
    rng = np.random.default_rng(2)
    z, bias = _random(rng, 4, 5, 7, 6), _random(rng, 6)
    expected = np.maximum(z + bias, 0)
    fused = cpu_kernels.bias_relu_(z.copy(), bias)
    assert fused.dtype == np.float32
    np.testing.assert_array_equal(fused, expected)

    grad_y = _random(rng, *z.shape)
    grad_z = cpu_kernels.relu_backward(grad_y, expected)
    assert grad_z.dtype == np.float32
    np.testing.assert_array_equal(grad_z, grad_y * (expected > 0))


@needs_numba
@pytest.mark.parametrize("h,w,c,k,s,padding", [g for g in CONV_GEOMETRIES if g[4] == 1]
                         + [(6, 8, 3, 2, 1, "same"), (9, 6, 1, 4, 1, "valid"),
                            (50, 47, 3, 3, 1, "same")])   # > FILTER_GRAD_CHUNK pixels
@pytest.mark.parametrize("filters", [5, 8])
@pytest.mark.parametrize("relu", [True, False])
def test_numba_filter_grad_equals_im2col_backward(h, w, c, k, s, padding, filters, relu):
    """The kernel gradient by dot products on planes (few channels) against im2col +
    matmul in NumPy: kernels of 1 to 5 taps a side (taps go in threes, so 1, 2, 4, 5 run
    with dummy taps), filters a multiple of 4 and not (5: three dummy filters)."""
    rng = np.random.default_rng(9)
    x = _random(rng, 3, h, w, c)
    kernel = _random(rng, k, k, c, filters)
    out_h, out_w, _, _ = conv.conv_geometry(x.shape, (k, k), (s, s), padding)
    grad_y = _random(rng, 3, out_h, out_w, filters)
    y = np.maximum(_random(rng, *grad_y.shape), 0) if relu else None
    grad_z = grad_y * (y > 0) if relu else grad_y
    cols = _reference(conv.im2col, x, (k, k), (s, s), padding)
    _, expected_kernel, expected_bias = _reference(conv.conv2d_backward, grad_z, cols, x.shape,
                                                   kernel, (s, s), padding, False)
    grad_kernel, grad_bias = cpu_kernels.conv2d_kernel_grad(x, grad_y, kernel.shape, (s, s),
                                                            padding, y=y)
    assert grad_kernel.dtype == grad_bias.dtype == np.float32
    # Both are float32 sums over the N*OH*OW positions, in different orders.
    grad_z_2d = grad_z.reshape(-1, filters)                       # (N*OH*OW, F)
    positions = len(grad_z_2d)
    kernel_bound = linear_bound(lambda c, g: c.T @ g, positions, cols, grad_z_2d)
    assert_within(grad_kernel, expected_kernel, kernel_bound.reshape(kernel.shape), "kernel")
    assert_within(grad_bias, expected_bias,
                  sum_bound(positions, np.abs(grad_z_2d).sum(axis=0)), "bias")


@needs_numba
def test_numba_filter_grad_refuses_strides():
    x = np.zeros((1, 6, 6, 3), np.float32)
    with pytest.raises(ValueError, match=r"stride-1 convolutions only, got strides \(2, 2\)"):
        cpu_kernels.conv2d_kernel_grad(x, np.zeros((1, 2, 2, 4), np.float32), (3, 3, 3, 4),
                                       (2, 2), "valid")


@needs_numba
def test_bias_relu_keeps_nan_so_divergence_is_seen():
    z = np.array([[np.nan, -1.0, 2.0]], np.float32)
    out = cpu_kernels.bias_relu_(z, np.zeros(3, np.float32))
    assert np.isnan(out[0, 0]) and out[0, 1] == 0 and out[0, 2] == 2


def test_usable_only_for_float32_numpy_arrays():
    assert not cpu_kernels.usable(np.zeros(3, np.float64))   # gradcheck's float64: NumPy path
    assert not cpu_kernels.usable([1.0, 2.0])
    assert cpu_kernels.usable(np.zeros(3, np.float32)) == numba_works


def test_disabled_kernels_fall_back_to_numpy(numpy_only):
    x = np.arange(2 * 4 * 4 * 1, dtype=np.float32).reshape(2, 4, 4, 1)
    assert not cpu_kernels.usable(x)
    out, _ = pooling.maxpool2d_forward(x)
    np.testing.assert_array_equal(out[0, :, :, 0], [[5, 7], [13, 15]])


# -- through the layers: fast kernels == portable definitions ---------------------------

def _layer_pass(layer, x, grad_y):
    """Forward and backward on the layer's device; the results as NumPy arrays."""
    y = layer.forward(backend.to_device(x), training=True)
    grad_x = layer.backward(backend.to_device(grad_y))
    return (backend.to_numpy(y), None if grad_x is None else backend.to_numpy(grad_x),
            {k: backend.to_numpy(v).copy() for k, v in layer.grads.items()})


def _assert_passes_agree(layer, x, grad_y, fast, slow):
    """Two runs of ``_layer_pass`` agree within the float32 bounds of a conv layer's sums."""
    weights = layer.get_weights()
    bias = weights[1] if len(weights) > 1 else None
    bounds = conv_layer_bounds(x, weights[0], bias, grad_y, layer.strides, layer.padding)
    assert_within(fast[0], slow[0], bounds[0], "output")
    assert_within(fast[1], slow[1], bounds[1], "input gradient")
    for key in slow[2]:
        assert fast[2][key].dtype == np.float32
        assert_within(fast[2][key], slow[2][key], bounds[2][key], f"{key} gradient")


def _skip_without_fast_kernels(device):
    if device == "cpu" and not numba_works:
        pytest.skip("numba kernels unavailable here")


@pytest.mark.parametrize("activation", ["relu", None])
@pytest.mark.parametrize("strides,padding", [(1, "same"), (2, "valid"), (3, "same")])
def test_conv2d_layer_fast_kernels_equal_portable_code(activation, strides, padding, device,
                                                       monkeypatch):
    """numba (CPU) or CuPy kernels (GPU) against the NumPy/CuPy array code, in a layer."""
    _skip_without_fast_kernels(device)
    rng = np.random.default_rng(3)
    layer = minicnn.Conv2D(5, 3, strides=strides, padding=padding, activation=activation,
                           input_shape=(11, 10, 3))
    layer.build((11, 10, 3))
    layer.set_weights([layer.get_weights()[0], _random(rng, 5)])
    x = _random(rng, 4, 11, 10, 3)
    grad_y = _random(rng, 4, *layer.output_shape)
    # A tiny chunk budget makes the layer work in several chunks, as with big images.
    monkeypatch.setattr(engine_settings, "IM2COL_BUDGET_BYTES", 2 * 10 * 11 * 27 * 4)
    fast = _layer_pass(layer, x, grad_y)
    slow = _reference(_layer_pass, layer, x, grad_y)
    assert fast[0].dtype == fast[1].dtype == np.float32
    _assert_passes_agree(layer, x, grad_y, fast, slow)


@needs_numba
@pytest.mark.parametrize("activation,use_bias", [("relu", True), (None, True), ("relu", False)])
@pytest.mark.parametrize("strides,padding", [(1, "same"), (2, "valid"), (3, "same")])
@pytest.mark.parametrize("channels", [3, 8])
def test_conv2d_forward_in_row_bands_equals_portable_code(activation, use_bias, strides, padding,
                                                          channels, monkeypatch):
    """A chunk budget below one image's im2col matrix makes the CPU forward pass work
    in bands of output rows (2 or 3 rows here); outputs and gradients must not change."""
    rng = np.random.default_rng(12)
    layer = minicnn.Conv2D(5, 3, strides=strides, padding=padding, activation=activation,
                           use_bias=use_bias, input_shape=(11, 10, channels))
    layer.build((11, 10, channels))
    if use_bias:
        layer.set_weights([layer.get_weights()[0], _random(rng, 5)])
    out_h, out_w, _ = layer.output_shape
    monkeypatch.setattr(engine_settings, "CPU_CHUNK_BYTES", 2 * out_w * 9 * channels * 4 + 4)
    x = _random(rng, 3, 11, 10, channels)
    assert any(rows is not None for _, rows in conv_im2col.forward_chunks(layer, x)) == (out_h > 2)
    grad_y = _random(rng, 3, *layer.output_shape)
    fast = _layer_pass(layer, x, grad_y)
    slow = _reference(_layer_pass, layer, x, grad_y)
    _assert_passes_agree(layer, x, grad_y, fast, slow)   # BLAS sums in its own order


def test_conv2d_can_skip_the_input_gradient(device):
    """The first layer's backward skips grad_x; the weight gradients stay the same."""
    rng = np.random.default_rng(8)
    layer = minicnn.Conv2D(4, 3, padding="same", activation="relu")
    x = _random(rng, 2, 6, 5, 3)
    grad_y = _random(rng, 2, 6, 5, 4)
    _, grad_x, grads = _layer_pass(layer, x, grad_y)
    layer.forward(backend.to_device(x), training=True)
    assert grad_x is not None
    assert layer.backward(backend.to_device(grad_y), need_input_grad=False) is None
    # equal up to rounding: on the CPU, 3 channels take the direct loop
    bounds = conv_layer_bounds(x, *layer.get_weights(), grad_y, (1, 1), "same")[2]
    for key in grads:
        assert_within(backend.to_numpy(layer.grads[key]), grads[key], bounds[key], key)


@pytest.mark.parametrize("pool,strides,padding", [(2, None, "valid"), (3, 2, "same"),
                                                  (2, 1, "same")])
def test_maxpool_layer_fast_kernels_equal_portable_code(pool, strides, padding, device):
    _skip_without_fast_kernels(device)
    rng = np.random.default_rng(4)
    layer = minicnn.MaxPooling2D(pool, strides=strides, padding=padding)
    x = _random(rng, 3, 9, 7, 4)
    grad_y = _random(rng, 3, *layer.compute_output_shape((9, 7, 4)))
    fast = _layer_pass(layer, x, grad_y)
    slow = _reference(_layer_pass, layer, x, grad_y)
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])
    assert fast[0].dtype == fast[1].dtype == np.float32


# -- CuPy against NumPy (only where a GPU is lent) -------------------------------------

@needs_gpu
@pytest.mark.parametrize("h,w,c,k,s,padding", CONV_GEOMETRIES)
def test_cupy_im2col_and_col2im_equal_numpy(h, w, c, k, s, padding):
    cp = backend._load_cupy()
    rng = np.random.default_rng(5)
    x = _random(rng, 2, h, w, c)
    cols = gpu_kernels.im2col(cp.asarray(x), (k, k), (s, s), padding)
    np.testing.assert_array_equal(cols.get(), _reference(conv.im2col, x, (k, k), (s, s), padding))
    grad_cols = _random(rng, *cols.shape)
    grad_x = gpu_kernels.col2im(cp.asarray(grad_cols), x.shape, (k, k), (s, s), padding)
    assert grad_x.dtype == cp.float32
    # col2im adds up to KH*KW overlapping values per pixel, in the kernel's own order
    col2im = lambda g: _reference(conv.col2im, g, x.shape, (k, k), (s, s), padding)  # noqa: E731
    assert_within(grad_x.get(), col2im(grad_cols), linear_bound(col2im, k * k, grad_cols))


@needs_gpu
@pytest.mark.parametrize("h,w,pool,s,padding", POOL_GEOMETRIES)
def test_cupy_maxpool_equals_numpy(h, w, pool, s, padding):
    cp = backend._load_cupy()
    rng = np.random.default_rng(6)
    x = _random(rng, 2, h, w, 3)
    out, argmax = gpu_kernels.maxpool2d_forward(cp.asarray(x), (pool, pool), (s, s), padding)
    ref_out, ref_argmax = _reference(pooling.maxpool2d_forward, x, (pool, pool), (s, s), padding)
    np.testing.assert_array_equal(out.get(), ref_out)
    np.testing.assert_array_equal(argmax.get(), ref_argmax)
    grad_out = _random(rng, *out.shape)
    grad_x = gpu_kernels.maxpool2d_backward(cp.asarray(grad_out), argmax, x.shape, (pool, pool),
                                            (s, s), padding)
    expected = _reference(pooling.maxpool2d_backward, grad_out, ref_argmax, x.shape,
                          (pool, pool), (s, s), padding)
    # overlapping windows (stride < pool) add up to pool*pool gradients per pixel
    unpool = lambda g: _reference(pooling.maxpool2d_backward, g, ref_argmax, x.shape,  # noqa: E731
                                  (pool, pool), (s, s), padding)
    assert_within(grad_x.get(), expected, linear_bound(unpool, pool * pool, grad_out))


@needs_gpu
def test_cupy_fused_bias_relu_and_relu_backward_equal_numpy():
    cp = backend._load_cupy()
    rng = np.random.default_rng(7)
    z, bias, grad_y = _random(rng, 3, 4, 5, 6), _random(rng, 6), _random(rng, 3, 4, 5, 6)
    expected = np.maximum(z + bias, 0)
    fused = gpu_kernels.bias_relu_(cp.asarray(z), cp.asarray(bias))
    np.testing.assert_array_equal(fused.get(), expected)
    grad_z = gpu_kernels.relu_backward(cp.asarray(grad_y), cp.asarray(expected))
    np.testing.assert_array_equal(grad_z.get(), grad_y * (expected > 0))


# -- recycled result arrays (CPU) -------------------------------------------------------

def _recycling_layers():
    conv = minicnn.Conv2D(4, 3, padding="same", activation="relu", input_shape=(9, 8, 3))
    pool = minicnn.MaxPooling2D(2)
    return conv, pool


def test_results_are_recycled_only_when_nobody_holds_them(cpu_device):
    """A layer writes its next output / input gradient into last step's array when no
    caller kept that array (no new pages to fault in), and never when one did. NumPy only:
    on the GPU, CuPy's memory pool already reuses memory."""
    rng = np.random.default_rng(13)
    conv, pool = _recycling_layers()
    x1, x2 = _random(rng, 2, 9, 8, 3), _random(rng, 2, 9, 8, 3)

    def step(x):
        y = pool.forward(conv.forward(x, training=True), training=True)
        grad_h = pool.backward(np.ones_like(y))
        return conv.forward(x, training=True), grad_h, conv.backward(grad_h)

    kept = step(x1)                       # a caller keeps every result ...
    copies = [a.copy() for a in kept]
    view = kept[0][1]                     # ... and a view of one
    again = step(x2)
    for a, b in zip(kept, copies):        # ... so nothing it holds changed
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(view, copies[0][1])
    assert not any(np.shares_memory(a, b) for a, b in zip(kept, again))

    addresses = [a.ctypes.data for a in again]
    del again, kept, view, a, b
    fresh = step(x1)                      # nobody holds the last results: same memory
    if numba_works:                       # (recycling needs NumPy float32 on the CPU)
        assert [a.ctypes.data for a in fresh] == addresses
    for a, b in zip(fresh, copies):       # and the same numbers as the first time
        np.testing.assert_array_equal(a, b)


@needs_gpu
@pytest.mark.parametrize("nesterov", [False, True])
def test_cupy_fused_optimizer_steps_equal_the_numpy_formulas(nesterov):
    cp = backend._load_cupy()
    rng = np.random.default_rng(9)
    param, grad, slot = (_random(rng, 7, 5) for _ in range(3))
    slot = np.abs(slot)   # RMSprop's running mean of squares is never negative
    lr, momentum, rho, epsilon = 0.05, 0.9, 0.8, 1e-7

    p, v = cp.asarray(param), cp.asarray(slot)
    gpu_kernels.sgd_momentum_(p, v, cp.asarray(grad), lr, momentum, nesterov)
    velocity = np.float32(momentum) * slot - np.float32(lr) * grad
    expected = param + (np.float32(momentum) * velocity - np.float32(lr) * grad
                        if nesterov else velocity)
    # A few float32 roundings (or FMAs) per element: within 4 eps of the magnitudes involved.
    step = np.abs(np.float32(momentum) * slot) + np.abs(np.float32(lr) * grad)
    assert_within(v.get(), velocity, sum_bound(4, step), "velocity")
    assert_within(p.get(), expected, sum_bound(4, np.abs(param) + 2 * step), "parameter")

    p, a = cp.asarray(param), cp.asarray(slot)
    gpu_kernels.rmsprop_(p, a, cp.asarray(grad), lr, rho, epsilon)
    mean_square = np.float32(rho) * slot + np.float32(1 - rho) * grad * grad
    assert_within(a.get(), mean_square, sum_bound(4, mean_square), "mean square")
    # lr * g / sqrt(a + eps): the mean square's error halves under the root; with the
    # product, division and subtraction, at most ~8 roundings of the step's size
    update = np.float32(lr) * grad / np.sqrt(mean_square + np.float32(epsilon))
    assert_within(p.get(), param - update, sum_bound(8, np.abs(param) + np.abs(update)),
                  "parameter")


@pytest.mark.parametrize("fast", [True, False])
def test_maxpool_writes_into_given_arrays(device, xp, fast):
    """``out=`` (and ``argmax_out=``), which the layer uses to reuse last step's arrays,
    give the same results as new arrays, in the arrays given, forward and backward."""
    rng = np.random.default_rng(14)
    x = backend.to_device(_random(rng, 2, 7, 6, 3))
    run = (lambda f, *a, **k: f(*a, **k)) if fast else _reference
    kernels = engine.kernels_for(x) if fast else pooling   # the engine's kernels, or the ops
    geometry = ((3, 3), (2, 2), "same")
    expected_out, expected_argmax = run(kernels.maxpool2d_forward, x, *geometry)
    # stale values in the targets: every one must be replaced
    targets = (xp.full(expected_out.shape, 7.0, dtype=np.float32),
               xp.full(expected_out.shape, 9, dtype=np.uint8),
               xp.full(x.shape, 7.0, dtype=np.float32))
    out, argmax = run(kernels.maxpool2d_forward, x, *geometry, out=targets[0],
                      argmax_out=targets[1])
    grad_out = backend.to_device(_random(rng, *out.shape))
    expected_grad = run(kernels.maxpool2d_backward, grad_out, argmax, x.shape, *geometry)
    grad = run(kernels.maxpool2d_backward, grad_out, argmax, x.shape, *geometry, out=targets[2])
    assert all(got is target for got, target in zip((out, argmax, grad), targets))
    for got, expected in zip(targets, (expected_out, expected_argmax, expected_grad)):
        np.testing.assert_array_equal(backend.to_numpy(got), backend.to_numpy(expected))
