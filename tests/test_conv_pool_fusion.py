"""A Conv2D + ReLU and the MaxPooling2D after it, run as one pass (``engine.fusion.forward_pair``).

``Sequential`` fuses such a pair on the CPU; the fused pass must give the numbers of
the two layers run one after the other (``Sequential.fuse_conv_pool = False``): the
same outputs and argmax bit for bit (same products, same ties), and the same gradients
up to the order of float32 sums.
"""
import numpy as np
import pytest

import minicnn
from minicnn import Conv2D, Dense, Flatten, MaxPooling2D, Sequential
from minicnn.engine import conv as engine_conv
from minicnn.engine import cpu_kernels, settings

from float32_error import assert_within, sum_bound

pytestmark = pytest.mark.skipif(not cpu_kernels.usable(np.zeros(1, np.float32)),
                                reason="the fusion runs on the numba kernels")


def _net(height, width, padding, pool, second_conv, bias_shift, filters=5):
    """RGB conv + pool (+ a second small conv + pool), flatten, dense; seeded weights.
    The second conv needs its input gradient; it runs by im2col on ``filters`` = 5
    channels, by Winograd (forward and backward) on 32. ``bias_shift`` < 0 makes many activations 0: windows
    of ties after the ReLU."""
    minicnn.clear_session()
    layers = [Conv2D(filters, 3, padding=padding, activation="relu", seed=1,
                     input_shape=(height, width, 3)), MaxPooling2D(pool)]
    if second_conv:   # on 32 channels, 32 filters: Winograd for its input gradient too
        layers += [Conv2D(4 if filters < 32 else 32, 3, padding="same", activation="relu",
                          seed=2), MaxPooling2D(2)]
    layers += [Flatten(), Dense(3, activation="softmax", seed=3)]
    model = Sequential(layers)
    for layer in model.layers:
        if isinstance(layer, Conv2D):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, np.full_like(bias, bias_shift) + 0.1 * np.arange(
                bias.size, dtype=np.float32)])
    return model


def _pass(model, x, grad, fuse, need_input_grad):
    model.fuse_conv_pool = fuse
    y = model.forward(x, training=True).copy()
    argmax = model.layers[1]._argmax.copy()
    grad_x = model.backward(grad, need_input_grad=need_input_grad)
    grads = {(layer.name, key): value.copy()
             for layer in model.layers for key, value in layer.grads.items()}
    return y, argmax, None if grad_x is None else grad_x.copy(), grads, list(model._steps)


@pytest.mark.parametrize("height,width,padding,pool", [
    (12, 10, "same", 2), (11, 9, "valid", 2), (13, 14, "same", 3), (9, 12, "valid", (2, 3))])
@pytest.mark.parametrize("second_conv,filters", [(False, 5), (True, 5), (True, 32)])
@pytest.mark.parametrize("bias_shift", [0.0, -1.5])
@pytest.mark.parametrize("need_input_grad", [False, True])
def test_fused_conv_pool_gives_the_unfused_numbers(height, width, padding, pool, second_conv,
                                                    filters, bias_shift, need_input_grad,
                                                    monkeypatch):
    model = _net(height, width, padding, pool, second_conv, bias_shift, filters)
    if filters == 32:   # (the assertions below would hold without Winograd, vacuously)
        x_second = np.zeros((1, *model.layers[2].input_shape), np.float32)
        assert engine_conv.uses_winograd_backward(model.layers[2], x_second, True)
        monkeypatch.setattr(settings, "WINOGRAD_TILES_PER_CHUNK", 2)   # chunks that start mid-image
        monkeypatch.setattr(settings, "WINOGRAD_CHUNK_BYTES", 0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, height, width, 3)).astype(np.float32)
    grad = rng.standard_normal((4, 3)).astype(np.float32)
    plain = _pass(model, x, grad, False, need_input_grad)
    fused = _pass(model, x, grad, True, need_input_grad)
    assert all(len(step) == 1 for step in plain[4])
    assert fused[4][0] == (0, 1)                       # the first pair did run fused
    assert ((2, 3) in fused[4]) == second_conv
    np.testing.assert_array_equal(fused[0], plain[0])   # outputs
    np.testing.assert_array_equal(fused[1], plain[1])   # the first pooling's argmax
    # The backward passes make the same products and add them in other orders: a kernel
    # gradient sums over the N*OH*OW = at most 4*14*13 = 728 positions, an input gradient
    # over F*KH*KW <= 288 terms. Two orders of a K-term float32 sum differ by at most
    # K eps sum|terms| (tests/float32_error.py); for these gradients of one network, with
    # inputs, weights and head gradient of order 1, sum|terms| stays within a few times the
    # largest gradient value, so K eps times 4x the largest value bounds each comparison.
    positions = 4 * height * width
    if need_input_grad:
        assert_within(fused[2], plain[2], sum_bound(4 * positions, np.abs(plain[2]).max()))
    else:
        assert fused[2] is None and plain[2] is None
    assert fused[3].keys() == plain[3].keys()
    for key, value in plain[3].items():
        assert_within(fused[3][key], value, sum_bound(4 * positions, np.abs(value).max()),
                      str(key))


def test_fused_training_repeats_and_learns_like_the_unfused_one():
    """A few SGD steps with and without the fusion end at the same weights."""
    rng = np.random.default_rng(3)
    x = rng.random((8, 12, 12, 3), dtype=np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 8)]
    weights = {}
    for fuse in (False, True):
        model = _net(12, 12, "same", 2, True, 0.0)
        model.fuse_conv_pool = fuse
        model.compile(minicnn.SGD(0.05, momentum=0.9), "categorical_crossentropy")
        for _ in range(5):
            model.train_on_batch(x, y)
        weights[fuse] = [w for layer in model.layers for w in layer.get_weights()]
    for unfused, fused in zip(weights[False], weights[True]):
        np.testing.assert_allclose(fused, unfused, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("case", ["overlapping windows", "same padding", "winograd, 3x3 pool",
                                  "float64", "linear activation"])
def test_pairs_that_are_not_fused(case):
    """Only ReLU + bias convolutions, float32 on the CPU, with a pooling of disjoint
    "valid" windows (2x2 after a Winograd layer), are fused; anything else runs layer by
    layer."""
    channels, pool, conv = 3, MaxPooling2D(2), dict(activation="relu")
    if case == "overlapping windows":
        pool = MaxPooling2D(3, strides=2)
    elif case == "same padding":
        pool = MaxPooling2D(2, padding="same")
    elif case == "winograd, 3x3 pool":   # the pooling windows are not Winograd's tiles
        channels, pool = 32, MaxPooling2D(3)
    elif case == "linear activation":
        conv = dict(activation=None)
    minicnn.clear_session()
    model = Sequential([Conv2D(4, 3, padding="same", input_shape=(10, 9, channels), **conv),
                        pool, Flatten(), Dense(2)])
    x = np.random.default_rng(0).random((2, 10, 9, channels))
    x = x if case == "float64" else x.astype(np.float32)
    model.forward(x, training=True)
    assert all(len(step) == 1 for step in model._steps)
