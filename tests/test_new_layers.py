"""LeakyReLU, ReLU, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D and
ZeroPadding2D: gradients, the engines, Keras's corner cases, configs, saving, errors."""
import warnings

import numpy as np
import pytest

import minicnn
from minicnn import (AveragePooling2D, BatchNormalization, Conv2D, Dense, GlobalAveragePooling2D,
                     GlobalMaxPooling2D, LeakyReLU, ReLU, Sequential, ZeroPadding2D)
from minicnn.backend import to_device, to_numpy
from minicnn.gradcheck import check_layer
from minicnn.layers import activation as activation_layers
from minicnn.layers import from_config
from minicnn.ops import pooling

from float32_error import assert_within, sum_bound

TOLERANCE = 1e-6   # float64 central differences agree to ~1e-8 on these sizes
ENGINES = ["reference", "numpy", "fast"]


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


LAYERS = {
    "LeakyReLU": lambda: LeakyReLU(0.2),
    "ReLU": ReLU,
    "ReLU max 1.5 slope 0.1 threshold 0.3": lambda: ReLU(1.5, 0.1, 0.3),
    "ReLU max 6 slope 0.2": lambda: ReLU(6.0, negative_slope=0.2),
    "AveragePooling2D 2 valid": lambda: AveragePooling2D(2),
    "AveragePooling2D 3/2 same": lambda: AveragePooling2D(3, strides=2, padding="same"),
    "AveragePooling2D 2/1 same": lambda: AveragePooling2D(2, strides=1, padding="same"),
    "AveragePooling2D (2, 3)/(1, 2) valid": lambda: AveragePooling2D((2, 3), strides=(1, 2)),
    "GlobalAveragePooling2D": GlobalAveragePooling2D,
    "GlobalAveragePooling2D keepdims": lambda: GlobalAveragePooling2D(keepdims=True),
    "GlobalMaxPooling2D": GlobalMaxPooling2D,
    "GlobalMaxPooling2D keepdims": lambda: GlobalMaxPooling2D(keepdims=True),
    "ZeroPadding2D 1": ZeroPadding2D,
    "ZeroPadding2D (1, 2)": lambda: ZeroPadding2D((1, 2)),
    "ZeroPadding2D ((0, 2), (3, 1))": lambda: ZeroPadding2D(((0, 2), (3, 1))),
}


@pytest.mark.parametrize("name", LAYERS)
def test_gradients(name):
    # (inputs with no value within 1e-6 of a kink: central differences see a smooth function)
    x = _x(2, 5, 7, 3, seed=1)
    report = check_layer(LAYERS[name](), x)
    assert report.max_relative_error < TOLERANCE, report


@pytest.mark.parametrize("name", LAYERS)
def test_engines_agree_and_config_round_trips(name, cpu_device):
    """Pooling sums at most pool_h * pool_w (or H * W) terms and divides once: two engines
    differ by sum_bound(terms + 1, sum |terms|) (the same bound for the gradients, whose
    shares add up at most pool_h * pool_w at a pixel). The others pick or scale values:
    exactly equal."""
    x = _x(2, 5, 7, 3, seed=2).astype(np.float32)
    results = {}
    for engine_name in ENGINES:
        minicnn.clear_session()
        layer = LAYERS[name]()
        with minicnn.use_engine(engine_name):
            y = np.array(layer.forward(x, training=True))
            dout = _x(*y.shape, seed=3).astype(np.float32)
            results[engine_name] = (y, np.array(layer.backward(dout)))
    layer = LAYERS[name]()
    layer.build(x.shape[1:])
    window = getattr(layer, "pool_size", (5, 7) if "Global" in name else (1, 1))
    terms = window[0] * window[1] + 1
    x_abs, d_abs = np.abs(x.astype(np.float64)), np.abs(dout.astype(np.float64))
    scale = max(float(x_abs.max()), float(d_abs.max()))
    for engine_name in ("reference", "fast"):
        for got, expected in zip(results[engine_name], results["numpy"]):
            if "AveragePooling" in name:
                assert_within(got, expected, sum_bound(terms, terms * scale), engine_name)
            else:
                np.testing.assert_array_equal(got, expected)
    config = layer.get_config()
    copy = from_config(type(layer).__name__, config)
    assert copy.get_config() == config


def test_average_pooling_same_averages_over_image_pixels_only():
    x = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)
    y = AveragePooling2D(2, padding="same").forward(x)[0, :, :, 0]
    # windows [[0,1],[3,4]], [[2],[5]], [[6,7]], [[8]]: the padding is not counted
    np.testing.assert_array_equal(y, [[2.0, 3.5], [6.5, 8.0]])
    layer = AveragePooling2D(2, padding="same")
    layer.forward(x)
    dx = layer.backward(np.ones((1, 2, 2, 1), np.float32))[0, :, :, 0]
    np.testing.assert_array_equal(dx, [[0.25, 0.25, 0.5], [0.25, 0.25, 0.5], [0.5, 0.5, 1.0]])


def test_global_max_pooling_shares_a_tie():
    """As TensorFlow's reduce_max: equal maxima split the gradient equally."""
    x = np.zeros((1, 2, 2, 1), np.float32)
    x[0, 0, 1, 0] = x[0, 1, 0, 0] = 3.0
    layer = GlobalMaxPooling2D()
    assert layer.forward(x).tolist() == [[3.0]]
    dx = layer.backward(np.array([[1.0]], np.float32))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0.0, 0.5], [0.5, 0.0]])


@pytest.mark.parametrize("make,x,y,dy", [
    (ReLU, [-1, 0, 2], [0, 0, 2], [0, 0, 1]),
    (lambda: ReLU(negative_slope=0.1), [-1, 0, 2], [-0.1, 0, 2], [0.1, 0.1, 1]),
    (lambda: ReLU(6.0), [-1, 6, 7], [0, 6, 6], [0, 0, 0]),        # relu6: 0 at 6
    (lambda: ReLU(5.0), [-1, 5, 7], [0, 5, 5], [0, 1, 0]),        # clip: 1 at the max
    (lambda: ReLU(threshold=1.0, negative_slope=0.5), [0, 1, 2], [-0.5, 0, 2], [0.5, 0, 1]),
    (lambda: LeakyReLU(), [-1, 0, 2], [-0.3, 0, 2], [0.3, 0.3, 1]),
])
def test_relu_corners_follow_tensorflow(make, x, y, dy):
    layer = make()
    x = np.array([x], np.float32)
    # one or two float32 roundings of the value (<= eps = 1.2e-7 relative)
    np.testing.assert_allclose(layer.forward(x), [y], rtol=1e-6)
    np.testing.assert_allclose(layer.backward(np.ones_like(x)), [dy], rtol=1e-6)


def test_leaky_relu_takes_keras2s_alpha_warning_once(monkeypatch):
    monkeypatch.setattr(activation_layers, "_warned_alpha", False)
    with pytest.warns(UserWarning, match="'alpha' is Keras 2's name.*'negative_slope'"):
        layer = LeakyReLU(alpha=0.1)
    assert layer.negative_slope == 0.1 and layer.get_config()["negative_slope"] == 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LeakyReLU(alpha=0.2)


@pytest.mark.parametrize("make,message", [
    (lambda: AveragePooling2D(0), r"Received: pool_size=0"),
    (lambda: AveragePooling2D(2, strides=(1, 0)), r"Received: strides=\(1, 0\)"),
    (lambda: AveragePooling2D(2, padding="full"), "unknown padding 'full'"),
    (lambda: LeakyReLU(-0.1), r"Received: negative_slope=-0.1"),
    (lambda: ReLU(max_value=-1), r"Received: max_value=-1"),
    (lambda: ReLU(threshold=None), r"Received: threshold=None"),
    (lambda: ZeroPadding2D(-1), r"Received: padding=-1"),
    (lambda: ZeroPadding2D((1, 2, 3)), r"Received: padding=\(1, 2, 3\)"),
    (lambda: ZeroPadding2D(((1, 2), (3,))), r"Received: padding=\(\(1, 2\), \(3,\)\)"),
    (lambda: GlobalMaxPooling2D(keepdims=1), "Received: keepdims=1"),
])
def test_errors_echo_the_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_shapes_summary_save_and_load(tmp_path):
    model = Sequential([
        ZeroPadding2D(((1, 0), (2, 1)), input_shape=(6, 5, 2)), Conv2D(4, 3),
        BatchNormalization(), LeakyReLU(0.1), AveragePooling2D(2, padding="same"),
        ReLU(max_value=4.0), GlobalMaxPooling2D(keepdims=True), GlobalAveragePooling2D(),
        Dense(2, activation="softmax")])
    assert [layer.output_shape for layer in model.layers] == [
        (7, 8, 2), (5, 6, 4), (5, 6, 4), (5, 6, 4), (3, 3, 4), (3, 3, 4), (1, 1, 4), (4,), (2,)]
    lines = []
    model.summary(print_fn=lines.append)
    assert "global_max_pooling2d (GlobalMaxPooling2D)" in lines[0]
    assert "zero_padding2d (ZeroPadding2D)" in lines[0]
    model.compile("sgd", "categorical_crossentropy")
    x = _x(4, 6, 5, 2, seed=4).astype(np.float32)
    model.fit(x, np.eye(2, dtype=np.float32)[[0, 1, 0, 1]], epochs=1, verbose=0)
    model.save(tmp_path / "m.h5")
    loaded = minicnn.load_model(tmp_path / "m.h5")
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


@pytest.mark.parametrize("name", LAYERS)
def test_on_the_device_as_on_the_cpu(name, xp):
    """Every new layer runs on the device's arrays (CuPy through ``xp`` on the GPU)."""
    x = _x(2, 5, 7, 3, seed=5).astype(np.float32)
    cpu = LAYERS[name]()
    with minicnn.use_engine("numpy"):
        y_cpu = cpu.forward(x, training=True)
        dx_cpu = cpu.backward(np.ones_like(y_cpu))
    layer = LAYERS[name]()
    y = layer.forward(to_device(x), training=True)
    dx = layer.backward(xp.ones_like(y))
    assert type(y) is type(xp.asarray(y)) and y.shape == y_cpu.shape
    # the same operations in another library's order: the pooling bound above
    bound = sum_bound(5 * 7 + 1, (5 * 7 + 1) * float(np.abs(x).max()))
    assert_within(to_numpy(y), y_cpu, bound, "output")
    assert_within(to_numpy(dx), dx_cpu, bound, "input gradient")


def test_ops_average_pooling_matches_the_loops():
    from minicnn.ops import reference
    x = _x(2, 6, 5, 3, seed=6)
    for geometry in [((2, 2), (2, 2), "valid"), ((3, 3), (2, 2), "same"),
                     ((2, 3), (1, 1), "same")]:
        np.testing.assert_allclose(pooling.avgpool2d_forward(x, *geometry),
                                   reference.avgpool2d_forward_loops(x, *geometry), rtol=1e-12)
        y = pooling.avgpool2d_forward(x, *geometry)
        dout = _x(*y.shape, seed=7)
        np.testing.assert_allclose(pooling.avgpool2d_backward(dout, x.shape, *geometry),
                                   reference.avgpool2d_backward_loops(dout, x.shape, *geometry),
                                   rtol=1e-12, atol=1e-15)
