"""Every layer: gradients against float64 central differences, dtypes, shapes, errors."""
import numpy as np
import pytest

import minicnn
from minicnn import Activation, Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from minicnn.backend import to_device, to_numpy
from minicnn.engine import settings
from minicnn.gradcheck import check_layer, relative_error

from float32_error import assert_within, conv_layer_bounds

TOLERANCE = 1e-6   # float64 central differences agree to ~1e-8 on these sizes


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("kernel", [1, 3, 5])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("channels,filters", [(1, 2), (3, 4)])
def test_conv2d_gradients(kernel, stride, padding, channels, filters):
    layer = Conv2D(filters, kernel, strides=stride, padding=padding)
    report = check_layer(layer, _x(2, 7, 6, channels))   # odd, non-square input
    assert report.max_relative_error < TOLERANCE, report


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "softmax"])
def test_conv2d_fused_activation_gradients(activation):
    report = check_layer(Conv2D(3, 3, padding="same", activation=activation), _x(1, 5, 4, 2))
    assert report.max_relative_error < TOLERANCE, report


def test_conv2d_without_bias_has_only_a_kernel():
    layer = Conv2D(2, 3, use_bias=False)
    report = check_layer(layer, _x(1, 5, 5, 2))
    assert list(layer.params) == ["kernel"] and set(report.errors) == {"input", "kernel"}
    assert report.max_relative_error < TOLERANCE, report


def test_conv2d_batch_one_large_input_uses_directional_check():
    layer = Conv2D(8, 3, padding="same")
    report = check_layer(layer, _x(1, 17, 13, 4), max_full=200)  # input has 884 values
    assert report.max_relative_error < TOLERANCE, report


def test_conv2d_chunked_batch_equals_whole_batch(device, monkeypatch):
    """Above the im2col budget the batch runs in chunks; results must not change."""
    x = to_device(_x(5, 9, 9, 3), dtype=np.float32)
    whole = Conv2D(4, 3, padding="same", activation="relu")
    chunked = Conv2D(4, 3, padding="same", activation="relu")
    y1 = whole.forward(x, training=True)
    g = to_device(_x(*y1.shape, seed=3), dtype=np.float32)
    dx1 = whole.backward(g)
    chunked.build(x.shape[1:])
    chunked.set_weights(whole.get_weights())
    monkeypatch.setattr(settings, "IM2COL_BUDGET_BYTES", 2 * 81 * 27 * 4)  # two images a chunk
    y2 = chunked.forward(x, training=True)
    # The same sums, cut at other places (BLAS blocks by the matrix sizes): within the
    # float32 bound of each sum (tests/float32_error.py)
    bounds = conv_layer_bounds(to_numpy(x), *whole.get_weights(), to_numpy(g), (1, 1), "same")
    assert_within(to_numpy(y1), to_numpy(y2), bounds[0], "output")
    assert_within(to_numpy(dx1), to_numpy(chunked.backward(g)), bounds[1],
                  "input gradient")
    for key in whole.grads:
        assert_within(to_numpy(whole.grads[key]), to_numpy(chunked.grads[key]), bounds[2][key],
                      key)


@pytest.mark.parametrize("pool,stride,padding", [(2, None, "valid"), (2, None, "same"),
                                                 (3, 2, "valid"), (3, 1, "same")])
def test_maxpool_gradients(pool, stride, padding):
    # A permutation has no ties, so the numerical derivative is well defined.
    x = np.random.default_rng(0).permutation(2 * 7 * 5 * 3).reshape(2, 7, 5, 3) / 10.0
    report = check_layer(MaxPooling2D(pool, stride, padding), x)
    assert report.max_relative_error < TOLERANCE, report


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "softmax", "tanh"])
def test_dense_gradients(activation):
    report = check_layer(Dense(5, activation=activation), _x(3, 7))
    assert report.max_relative_error < TOLERANCE, report


@pytest.mark.parametrize("name", ["relu", "sigmoid", "softmax", "linear", "tanh", "elu", "selu",
                                  "gelu", "softplus", "swish", "silu", "leaky_relu"])
def test_activation_layer_gradients(name):
    report = check_layer(Activation(name), _x(4, 6))
    assert report.max_relative_error < TOLERANCE, report


def test_flatten_gradients_and_keras_order():
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)
    y = Flatten().forward(x)
    np.testing.assert_array_equal(y[1], x[1].reshape(-1))   # channels-last, row-major
    assert check_layer(Flatten(), _x(2, 3, 2, 2)).max_relative_error < TOLERANCE


def test_dropout_is_inverted_seeded_and_off_at_inference():
    x = np.ones((200, 50), dtype=np.float32)
    layer = Dropout(0.4, seed=7)
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    y = layer.forward(x, training=True)
    kept = y != 0
    assert 0.55 < kept.mean() < 0.65
    np.testing.assert_allclose(y[kept], 1 / 0.6, rtol=1e-6)      # survivors scaled up (one rounding: eps/2 = 6e-8)
    assert y.dtype == np.float32
    grad = layer.backward(np.full_like(x, 2.0))
    np.testing.assert_allclose(grad, 2.0 * y)                   # same mask backward
    again = Dropout(0.4, seed=7).forward(x, training=True)
    np.testing.assert_array_equal(again, y)                     # seeded: repeats


LAYERS_AND_INPUTS = [
    (lambda: Conv2D(3, 3, padding="same", activation="relu"), (2, 6, 5, 2)),
    (lambda: MaxPooling2D(), (2, 6, 5, 2)),
    (lambda: Dense(4, activation="softmax"), (2, 7)),
    (lambda: Flatten(), (2, 3, 3, 2)),
    (lambda: Dropout(0.5), (2, 7)),
    (lambda: Activation("sigmoid"), (2, 7)),
]


@pytest.mark.parametrize("make,shape", LAYERS_AND_INPUTS)
@pytest.mark.parametrize("training", [False, True])
def test_outputs_and_gradients_stay_float32(make, shape, training, xp):
    layer = make()
    x = xp.asarray(_x(*shape), dtype=np.float32)
    y = layer.forward(x, training=training)
    assert y.dtype == np.float32, type(layer).__name__
    grad = layer.backward(xp.ones_like(y))
    assert grad.dtype == np.float32 and grad.shape == x.shape
    assert all(g.dtype == np.float32 for g in layer.grads.values())


def test_keras_default_initialisers():
    layer = Conv2D(16, 3)
    layer.build((10, 10, 8))
    limit = np.sqrt(6 / (3 * 3 * 8 + 3 * 3 * 16))      # glorot_uniform
    kernel, bias = layer.get_weights()
    assert kernel.shape == (3, 3, 8, 16) and np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.9 * limit
    np.testing.assert_array_equal(bias, 0)


def test_seeds_make_weights_repeat():
    minicnn.set_seed(42)
    a = Dense(3)
    a.build((4,))
    minicnn.set_seed(42)
    b = Dense(3)
    b.build((4,))
    np.testing.assert_array_equal(a.get_weights()[0], b.get_weights()[0])


@pytest.mark.parametrize("layer,bad_shape,expected", [
    (Conv2D(2, 3, input_shape=(8, 8, 3)), (2, 8, 8), "expects input shape (batch, 8, 8, 3)"),
    (Conv2D(2, 3, input_shape=(8, 8, 3)), (2, 8, 8, 1), "expects input shape (batch, 8, 8, 3)"),
    (MaxPooling2D(), (4, 8), "expects inputs of rank 4"),
    (Dense(2), (4, 3, 3), "expects inputs of rank 2"),
])
def test_wrong_input_shape_names_layer_and_expected_shape(layer, bad_shape, expected):
    with pytest.raises(ValueError, match=layer.name) as err:
        layer.forward(np.zeros(bad_shape, dtype=np.float32))
    assert expected in str(err.value)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="unknown activation 'swishy'.*relu"):
        Dense(2, activation="swishy")
    with pytest.raises(ValueError, match="unknown padding 'full'.*same"):
        Conv2D(2, 3, padding="full")
    with pytest.raises(ValueError, match="filters must be a positive integer"):
        Conv2D(0, 3)
    with pytest.raises(ValueError, match=r"Dropout rate must be in \[0, 1\)"):
        Dropout(1.0)


def test_relative_error_ignores_rounding_on_tiny_entries():
    assert relative_error([1.0, 1e-12], [1.0, 2e-12]) <= 1e-9
    assert relative_error([1.0, 0.5], [1.0, 0.6]) > 0.1


@pytest.mark.parametrize("layer", [minicnn.Conv2D(2, 3), minicnn.MaxPooling2D(),
                                   minicnn.Dense(3), minicnn.Flatten()])
def test_an_empty_batch_is_refused_by_name(layer):
    shape = (4,) if isinstance(layer, minicnn.Dense) else (5, 5, 2)
    with pytest.raises(ValueError, match="got an empty batch .*expected at least one sample"):
        layer.forward(np.zeros((0, *shape), np.float32))
