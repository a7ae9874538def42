"""The engine's one-pass ReLU (``engine.relu_forward`` / ``relu_backward``), used by the
ReLU layer with its default settings and by ``Activation("relu")``, against the plain
formulas y = where(x > 0, x, 0), dx = dout * (x > 0) on every engine.

Exact equality: max(x, 0) and the mask select or zero values, they round nothing.
"""
import numpy as np
import pytest

import minicnn
from minicnn import layers as L


def _formula(x, dout):
    return np.where(x > 0, x, np.float32(0)), dout * (x > 0)


@pytest.mark.parametrize("engine", minicnn.engine.ENGINES)
@pytest.mark.parametrize("make", [L.ReLU, lambda: L.Activation("relu")],
                         ids=["ReLU", "Activation"])
def test_one_pass_relu_equals_the_formula(engine, make):
    rng = np.random.default_rng(0)
    layer = make()
    with minicnn.use_engine(engine):
        for step in range(3):           # later steps reuse last step's arrays
            x = rng.standard_normal((4, 6, 5, 3)).astype(np.float32)
            x[0, 0, 0] = 0.0            # the corner: gradient 0 at x == 0
            dout = rng.standard_normal(x.shape).astype(np.float32)
            layer.forget_forward_state()
            y = layer.forward(x, training=True)
            dx = layer.backward(dout)
            want_y, want_dx = _formula(x, dout)
            np.testing.assert_array_equal(y, want_y)
            np.testing.assert_array_equal(dx, want_dx)
            assert y.dtype == dx.dtype == np.float32


def test_a_held_output_is_not_overwritten_by_the_next_pass():
    layer = L.ReLU()
    first = layer.forward(np.ones((2, 3), np.float32))
    layer.forget_forward_state()
    second = layer.forward(-np.ones((2, 3), np.float32))
    np.testing.assert_array_equal(first, 1.0)       # the caller still holds it
    np.testing.assert_array_equal(second, 0.0)


def test_other_settings_keep_the_layers_formula():
    layer = L.ReLU(max_value=6.0, negative_slope=0.1, threshold=0.5)
    x = np.array([[-1.0, 0.25, 0.5, 3.0, 7.0]], np.float32)
    y = layer.forward(x)
    want = np.array([[0.1 * -1.5, 0.1 * -0.25, 0.0, 3.0, 6.0]], np.float32)
    # y rounds 0.1 to float32 and then the product (x - t is exact here): 2 roundings of
    # u = 2**-24; want rounds the float64 product to float32 once: within 3u = 1.5 eps.
    np.testing.assert_allclose(y, want, rtol=1.5 * np.finfo(np.float32).eps, atol=0)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)),   # 0 above max_value
                                  np.array([[0.1, 0.1, 0.0, 1.0, 0.0]], np.float32))


def test_the_benchmarks_formula_net_computes_the_same_numbers():
    """benchmarks/relu_layer.py compares speeds of two nets that must agree exactly."""
    from benchmarks.relu_layer import FormulaReLU, with_formula_relu
    from minicnn import recipes
    rng = np.random.default_rng(1)
    x = rng.random((3, 8, 8, 3), dtype=np.float32)
    y = np.eye(2, dtype=np.float32)[[0, 1, 1]]
    fast = recipes.cats_dogs_model((4, 4), batchnorm=True, size=8, dense=4)
    formula = with_formula_relu(recipes.cats_dogs_model((4, 4), batchnorm=True, size=8,
                                                        dense=4))
    assert sum(type(l) is FormulaReLU for l in formula.layers) == 2
    formula.set_weights(fast.get_weights())
    for model in (fast, formula):
        model.compile("sgd", "categorical_crossentropy")
        minicnn.set_seed(2)                  # the same dropout masks for both
        model.train_on_batch(x, y)
    for a, b in zip(fast.get_weights(), formula.get_weights()):
        np.testing.assert_array_equal(a, b)
