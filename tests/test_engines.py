"""The three engines give every layer the same numbers, forward and backward.

``set_engine("reference")`` runs the plain loops of ``ops.reference``, ``"numpy"`` the
im2col code of ``ops``, ``"fast"`` the numba kernels, threads and Winograd on the CPU.
Each layer runs once per engine on the same inputs and weights; the engines' results
must agree within the float32 bound of the sums they make (``float32_error``): they add
the same products in other orders. Max pooling, Flatten, Dropout and Activation make no
sums, so there the engines agree bit for bit.
"""
import numpy as np
import pytest

import minicnn
import minicnn.ops.pooling
from minicnn import engine

from float32_error import assert_within, conv_layer_bounds, sum_bound
from test_winograd import _winograd_bounds

ENGINES = ["reference", "numpy", "fast"]


def _random(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _run(make_layer, weights, x, dout, name, need_input_grad=True):
    """Forward and backward of a fresh layer under engine ``name``: (y, dx, grads)."""
    minicnn.clear_session()
    layer = make_layer()
    layer.build(x.shape[1:])
    if weights:
        layer.set_weights(weights)
    with minicnn.use_engine(name):
        y = np.array(layer.forward(x, training=True))
        dx = layer.backward(dout, need_input_grad=need_input_grad) \
            if not need_input_grad else layer.backward(dout)
    return y, None if dx is None else np.array(dx), {k: np.array(v) for k, v in layer.grads.items()}


def test_the_switch_is_named_checked_and_scoped():
    assert minicnn.engine_name() == "fast"
    with minicnn.use_engine("reference"):
        assert minicnn.engine_name() == "reference"
        minicnn.set_engine("numpy")
        assert minicnn.engine_name() == "numpy"
    assert minicnn.engine_name() == "fast"   # the block's engine goes with the block
    with pytest.raises(ValueError, match="unknown engine 'quick'"):
        minicnn.set_engine("quick")
    with minicnn.use_engine("numpy"):
        assert engine.kernels_for(np.zeros(3, np.float32)) is engine.numpy_kernels


# (H, W, C, filters, kernel, strides, padding, activation, need_input_grad, Winograd)
CONV_CASES = [
    (7, 6, 3, 4, 3, 1, "same", "relu", True, False),     # im2col, bias + ReLU fused
    (7, 6, 3, 4, 3, 1, "same", "relu", False, False),    # the RGB planes' kernel gradient
    (8, 7, 2, 3, 3, 2, "valid", None, True, False),      # strided, no activation
    (6, 5, 5, 2, 1, 1, "valid", "relu", True, False),    # 1x1
    (5, 6, 16, 16, 3, 1, "same", None, True, True),      # Winograd, forward and backward
]


@pytest.mark.parametrize("h,w,c,f,k,s,padding,activation,need_input_grad,uses_winograd",
                         CONV_CASES)
def test_conv2d_engines_agree(h, w, c, f, k, s, padding, activation, need_input_grad,
                              uses_winograd, cpu_device):
    rng = np.random.default_rng(h * w + c)
    x = _random(rng, 2, h, w, c)
    kernel, bias = _random(rng, k, k, c, f), _random(rng, f)

    def make():
        layer = minicnn.Conv2D(f, k, strides=s, padding=padding, activation=activation)
        layer.winograd_min_channels = 16
        return layer

    probe = make()
    probe.build(x.shape[1:])
    dout = _random(rng, 2, *probe.output_shape)
    assert engine.conv.uses_winograd(probe, x) == (uses_winograd and engine.cpu_kernels.usable(x))
    results = {name: _run(make, [kernel, bias], x, dout, name, need_input_grad)
               for name in ENGINES}
    # Each engine adds the same products in its own order: two float32 sums of K terms
    # differ by at most K eps sum|terms| (conv_layer_bounds for im2col's sums; Winograd's
    # transforms add a dozen roundings along each path, _winograd_bounds).
    if uses_winograd:
        output, grad_input, grads = _winograd_bounds(x, kernel, bias, dout, padding)
    else:
        output, grad_input, grads = conv_layer_bounds(x, kernel, bias, dout, (s, s), padding)
    # ReLU's mask could differ where an output lies within rounding of 0: none does here.
    z = results["numpy"][0]
    assert activation is None or not np.any((z > 0) & (z <= output)), "choose another seed"
    expected = results["numpy"]
    for name in ("reference", "fast"):
        y, dx, got = results[name]
        assert_within(y, expected[0], output, f"{name} output")
        if need_input_grad:
            assert_within(dx, expected[1], grad_input, f"{name} input gradient")
        else:
            assert dx is None and expected[1] is None
        for key in ("kernel", "bias"):
            assert_within(got[key], expected[2][key], grads[key], f"{name} {key} gradient")


@pytest.mark.parametrize("h,w,pool,strides,padding", [
    (7, 6, 2, None, "valid"), (7, 6, 3, 2, "same"), (6, 6, 2, 1, "valid")])
def test_maxpool_engines_agree(h, w, pool, strides, padding, cpu_device):
    """Max pooling picks values (the same bits) and routes gradients (added up where
    windows overlap)."""
    rng = np.random.default_rng(h + pool)
    x = _random(rng, 2, h, w, 3)

    def make():
        return minicnn.MaxPooling2D(pool, strides=strides, padding=padding)

    probe = make()
    probe.build(x.shape[1:])
    dout = _random(rng, 2, *probe.output_shape)
    results = {name: _run(make, None, x, dout, name) for name in ENGINES}
    # Where windows overlap, a pixel adds the gradients of up to pool*pool windows, in
    # each engine's order: float32 sums of pool*pool terms of |dout| routed to it.
    argmax = minicnn.ops.pooling.maxpool2d_forward(x, probe.pool_size, probe.strides, padding)[1]
    routed = minicnn.ops.pooling.maxpool2d_backward(np.abs(dout.astype(np.float64)), argmax,
                                                    x.shape, probe.pool_size, probe.strides,
                                                    padding)
    for name in ("reference", "fast"):
        np.testing.assert_array_equal(results[name][0], results["numpy"][0])
        assert_within(results[name][1], results["numpy"][1], sum_bound(pool * pool, routed),
                      f"{name} input gradient")


@pytest.mark.parametrize("activation", ["relu", "softmax", None])
def test_dense_engines_agree(activation, cpu_device):
    rng = np.random.default_rng(5)
    x, kernel, bias = _random(rng, 4, 30), _random(rng, 30, 6), _random(rng, 6)
    dout = _random(rng, 4, 6)
    results = {name: _run(lambda: minicnn.Dense(6, activation=activation),
                          [kernel, bias], x, dout, name) for name in ENGINES}
    x_abs, k_abs = np.abs(x.astype(np.float64)), np.abs(kernel.astype(np.float64))
    # z = x @ kernel + bias: 31 terms an output; softmax moves by at most the change of
    # its inputs (slopes below 1) and rounds a few times itself (4 eps: it is <= 1).
    output = sum_bound(31, x_abs @ k_abs + np.abs(bias)) + sum_bound(4, 1.0)
    z = x @ kernel + bias
    assert activation != "relu" or not np.any(np.abs(z) <= output), "choose another seed"
    expected = results["numpy"]
    for name in ("reference", "fast"):
        y, dx, grads = results[name]
        assert_within(y, expected[0], output, f"{name} output")
        if activation is None:   # then dz = dout exactly, and the bounds below are sharp:
            d_abs = np.abs(dout.astype(np.float64))
            # dx = dz @ kernel.T: 6 terms; kernel gradient x.T @ dz: 4 (the batch) terms
            assert_within(dx, expected[1], sum_bound(6, d_abs @ k_abs.T), f"{name} dx")
            assert_within(grads["kernel"], expected[2]["kernel"],
                          sum_bound(4, x_abs.T @ d_abs), f"{name} kernel gradient")
            assert_within(grads["bias"], expected[2]["bias"], sum_bound(4, d_abs.sum(0)),
                          f"{name} bias gradient")


@pytest.mark.parametrize("make", [lambda: minicnn.Flatten(), lambda: minicnn.Dropout(0.4, seed=3),
                                  lambda: minicnn.Activation("relu")])
def test_layers_without_sums_agree_exactly(make, cpu_device):
    rng = np.random.default_rng(6)
    x = _random(rng, 3, 4, 5, 2)
    probe = make()
    probe.build(x.shape[1:])
    dout = _random(rng, 3, *probe.compute_output_shape(x.shape[1:]))
    results = {name: _run(make, None, x, dout, name) for name in ENGINES}
    for name in ("reference", "fast"):
        for got, expected in zip(results[name][:2], results["numpy"][:2]):
            np.testing.assert_array_equal(got, expected)


def test_a_model_trains_the_same_on_every_engine(cpu_device):
    """Two SGD steps of a small conv net (fused conv + pool pairs under "fast") end at
    the same weights on all three engines (a loose check of the whole chain; the
    per-layer bounds are above)."""
    rng = np.random.default_rng(8)
    x, y = _random(rng, 2, 8, 8, 3), np.eye(2, dtype=np.float32)[[0, 1]]
    weights = {}
    for name in ENGINES:
        minicnn.clear_session()
        model = minicnn.Sequential([
            minicnn.Conv2D(4, 3, padding="same", activation="relu", seed=1,
                           input_shape=(8, 8, 3)),
            minicnn.MaxPooling2D(2), minicnn.Flatten(),
            minicnn.Dense(2, activation="softmax", seed=2)])
        model.compile(minicnn.SGD(0.1), "categorical_crossentropy")
        with minicnn.use_engine(name):
            for _ in range(2):
                model.train_on_batch(x, y)
        weights[name] = model.get_weights()
    for name in ("reference", "fast"):
        for got, expected in zip(weights[name], weights["numpy"]):
            # the weights move by lr * gradient (order 0.1 at most): the engines' float32
            # sums differ by a few hundred eps of that (K <= 8*8*4 + 28 terms)
            assert_within(got, expected, sum_bound(300, 1.0), name)
