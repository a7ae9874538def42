"""BatchNormalization: gradients (training and inference), the engines, the moving
statistics, trainable=False, non-trainable weights in the summary, saving and the optimizer."""
import numpy as np
import pytest

import minicnn
from minicnn import BatchNormalization, Conv2D, Dense, Flatten, Sequential
from minicnn.backend import to_device, to_numpy
from minicnn.gradcheck import check_layer
from minicnn.ops import normalization

from float32_error import EPS32, assert_within, sum_bound

TOLERANCE = 1e-6   # float64 central differences agree to ~1e-8 on these sizes
ENGINES = ["reference", "numpy", "fast"]


def _x(*shape, seed=0, scale=1.0, shift=0.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale + shift


def _layer(channels, seed=5, sample_shape=None, **kwargs):
    """A built layer with gamma, beta and moving statistics away from their initial values,
    for samples (4, 5, channels) (or ``sample_shape``)."""
    layer = BatchNormalization(**kwargs)
    rng = np.random.default_rng(seed)
    if sample_shape is None:
        sample_shape = (4, 5, channels) if kwargs.get("axis", -1) in (-1, 3) else (channels, 4, 5)
    layer.build(sample_shape)
    values = {"gamma": rng.uniform(0.5, 2, channels), "beta": rng.standard_normal(channels),
              "moving_mean": rng.standard_normal(channels) * 0.3,
              "moving_variance": rng.uniform(0.5, 1.5, channels)}
    layer.set_weights([values[key] for key in layer.params])
    return layer


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False),
                                          (False, False)])
def test_gradients_images(training, center, scale):
    layer = _layer(3, center=center, scale=scale)
    report = check_layer(layer, _x(2, 4, 5, 3, seed=1, scale=2, shift=1), training=training)
    assert report.max_relative_error < TOLERANCE, report
    assert set(report.errors) == {"input", *(["gamma"] if scale else []),
                                  *(["beta"] if center else [])}


@pytest.mark.parametrize("training", [True, False])
def test_gradients_features_and_another_axis(training):
    layer = BatchNormalization()
    report = check_layer(layer, _x(6, 4, seed=2), training=training)
    assert report.max_relative_error < TOLERANCE, report
    layer = _layer(3, axis=1)                                      # (N, C, H, W)
    report = check_layer(layer, _x(2, 3, 4, 5, seed=3), training=training)
    assert report.max_relative_error < TOLERANCE, report


def test_forward_is_the_formula_and_moving_statistics_follow_keras():
    x = _x(4, 3, 2, 5, seed=4).astype(np.float32)
    layer = _layer(5, sample_shape=(3, 2, 5), momentum=0.9, epsilon=0.01)
    gamma, beta, moving_mean, moving_variance = layer.get_weights()
    y = layer.forward(x, training=True)
    mean, variance = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))        # biased variance
    expected = (x - mean) / np.sqrt(variance + 0.01) * gamma + beta
    # y of order 3, a handful of float32 roundings and a 24-term mean: well inside 1e-5
    np.testing.assert_allclose(y, expected, atol=1e-5)
    # moving = moving * 0.9 + batch * 0.1: two products and a sum in float32 on each side,
    # at most 3 roundings of the result's size (3 eps/2 = 1.8e-7 < 1e-6)
    np.testing.assert_allclose(layer.params["moving_mean"], moving_mean * 0.9 + mean * 0.1,
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(layer.params["moving_variance"],
                               moving_variance * 0.9 + variance * 0.1, rtol=1e-6)
    inference = layer.forward(x, training=False)                # the moving statistics now
    m, v = layer.params["moving_mean"], layer.params["moving_variance"]
    np.testing.assert_allclose(inference, (x - m) / np.sqrt(v + 0.01) * gamma + beta, atol=1e-5)


def test_frozen_layer_runs_in_inference_mode_and_has_no_trainable_params():
    layer = _layer(3, trainable=False)
    before = layer.get_weights()
    x = _x(2, 4, 5, 3, seed=6).astype(np.float32)
    np.testing.assert_array_equal(layer.forward(x, training=True), layer.forward(x))
    for new, old in zip(layer.get_weights(), before):          # nothing moved
        np.testing.assert_array_equal(new, old)
    layer.backward(np.ones_like(x))
    assert layer.grads == {} and layer.count_trainable_params() == 0
    assert layer.count_params() == 12
    report = check_layer(_layer(3, trainable=False), x.astype(np.float64), training=True)
    assert set(report.errors) == {"input"} and report.max_relative_error < TOLERANCE


def test_summary_counts_moving_statistics_as_non_trainable():
    model = Sequential([Conv2D(4, 3, input_shape=(6, 6, 2)), BatchNormalization(), Flatten(),
                        Dense(2)])
    lines = []
    model.summary(print_fn=lines.append)
    text = lines[0]
    conv, bn, dense = 3 * 3 * 2 * 4 + 4, 4 * 4, 4 * 4 * 4 * 2 + 2
    assert f"Total params: {conv + bn + dense:,}" in text
    assert f"Trainable params: {conv + 8 + dense:,}" in text
    assert "Non-trainable params: 8" in text
    assert list(model.layers[1].params) == ["gamma", "beta", "moving_mean", "moving_variance"]


def batchnorm_bounds(x, gamma, beta, dout, epsilon, moving=None):
    """Elementwise bounds for two float32 computations of BatchNormalization (last axis),
    (y, dx, dgamma, dbeta), whatever order their sums add in.

    Per channel, m values; c = x - mean, s = 1 / sqrt(variance + epsilon):
    * mean = sum(x) / m: two float32 sums of m terms differ by sum_bound(m, sum|x|), the
      division adds one rounding: e_mean = sum_bound(m + 1, sum|x|) / m.
    * variance = sum(c^2) / m with every c off by e_mean (plus its own rounding, and the
      square's: 2 more terms' worth): e_var = sum_bound(m + 3, sum (|c| + e_mean)^2) / m.
    * s moves by s^3 e_var / 2 (d s / d var = -s^3 / 2), and two roundings: e_s.
    * y = gamma * s * c + beta: e_y = |gamma| (s e_mean + |c| e_s) + 3 roundings; the
      kernels compute it as x * scale + offset (offset = beta - mean * scale), whose
      roundings are of |x scale| and |offset|: 3 eps (|gamma| s (|x| + |mean|) + |beta|).
    Backward, x_hat = c s off by e_xhat = s e_mean + |c| e_s (+ a rounding):
    * dbeta = sum(dout): sum_bound(m, sum|dout|); dgamma = sum(dout x_hat): a sum of m
      products, plus what e_xhat carries: sum(|dout| e_xhat).
    * dx = k (dout - dbeta / m - x_hat dgamma / m), k = gamma s: the inner sum's terms
      carry the errors above (and 4 roundings), k its relative e_s / s.
    With the moving statistics (inference, ``moving=(mean, variance)``) mean and variance
    are given: e_mean = e_var = 0.
    """
    rows = x.reshape(-1, x.shape[-1]).astype(np.float64)
    grad = np.abs(dout.reshape(rows.shape).astype(np.float64))
    m = len(rows)
    batch_stats = moving is None
    mean, variance = ((rows.mean(0), rows.var(0)) if batch_stats
                      else (np.asarray(v, np.float64) for v in moving))
    c = np.abs(rows - mean)
    s = 1 / np.sqrt(variance + epsilon)
    gamma = np.abs(np.ones_like(s) if gamma is None else gamma.astype(np.float64))
    beta = np.zeros_like(s) if beta is None else np.abs(beta.astype(np.float64))
    e_mean = sum_bound(m + 1, np.abs(rows).sum(0)) / m if batch_stats else 0 * s
    e_var = sum_bound(m + 3, ((c + e_mean) ** 2).sum(0)) / m if batch_stats else 0 * s
    e_s = s ** 3 * e_var / 2 + 2 * EPS32 * s
    affine = gamma * s * (np.abs(rows) + np.abs(mean)) + beta    # >= |y|
    e_y = gamma * (s * e_mean + c * e_s) + 3 * EPS32 * affine
    x_hat = c * s
    e_xhat = s * e_mean + c * e_s + EPS32 * x_hat
    dbeta, dgamma = grad.sum(0), (grad * x_hat).sum(0)
    e_dbeta = sum_bound(m, dbeta)
    e_dgamma = sum_bound(m + 1, dgamma) + (grad * e_xhat).sum(0)
    k = gamma * s
    if batch_stats:
        inner = grad + dbeta / m + x_hat * dgamma / m
        e_inner = (e_dbeta / m + e_xhat * dgamma / m + x_hat * e_dgamma / m
                   + 4 * EPS32 * inner)
    else:
        inner, e_inner = grad, 0 * grad
    e_dx = gamma * e_s * inner + k * e_inner + EPS32 * k * inner
    return e_y.reshape(x.shape), e_dx.reshape(x.shape), e_dgamma, e_dbeta


def _run(name, x, dout, training, make):
    minicnn.clear_session()
    layer = make()
    with minicnn.use_engine(name):
        y = to_numpy(layer.forward(to_device(x), training=training))
        dx = to_numpy(layer.backward(to_device(dout)))
    return y, dx, {k: to_numpy(v) for k, v in layer.grads.items()}, layer.get_weights()


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape,shift", [((2, 4, 5, 3), 0.0), ((3, 6, 7, 16), 0.0),
                                         ((2, 5, 5, 8), 300.0)])   # a mean far from 0
def test_engines_agree(shape, shift, training, cpu_device):
    """The reference loops, the NumPy code and the numba kernels ("fast"): the same
    numbers within the float32 bounds of their sums (``batchnorm_bounds``)."""
    x = _x(*shape, seed=7, shift=shift).astype(np.float32)
    dout = _x(*shape, seed=8).astype(np.float32)

    def make():
        layer = _layer(shape[-1], sample_shape=shape[1:])
        if shift:
            layer.params["moving_mean"][:] = shift
        return layer

    results = {name: _run(name, x, dout, training, make) for name in ENGINES}
    probe = make()
    gamma, beta = probe.params["gamma"], probe.params["beta"]
    moving = None if training else (probe.params["moving_mean"],
                                    probe.params["moving_variance"])
    bounds = batchnorm_bounds(x, gamma, beta, dout, probe.epsilon, moving)
    expected = results["numpy"]
    for name in ("reference", "fast"):
        y, dx, grads, weights = results[name]
        assert_within(y, expected[0], bounds[0], f"{name} output")
        assert_within(dx, expected[1], bounds[1], f"{name} input gradient")
        assert_within(grads["gamma"], expected[2]["gamma"], bounds[2], f"{name} dgamma")
        assert_within(grads["beta"], expected[2]["beta"], bounds[3], f"{name} dbeta")
        # moving = moving * momentum + batch * (1 - momentum): the batch statistics' bounds
        # scaled by 1 - momentum, plus the update's own roundings (3 of |moving|)
        m = x.size // shape[-1]
        e_mean = sum_bound(m + 1, np.abs(x.astype(np.float64)).reshape(-1, shape[-1]).sum(0))
        e_mean = e_mean / m * 0.01 + 3 * EPS32 * np.abs(expected[3][2])
        assert_within(weights[2], expected[3][2], e_mean, f"{name} moving mean")
        np.testing.assert_allclose(weights[3], expected[3][3], rtol=1e-5)   # see below
    # (moving variance: its batch value is within e_var of the NumPy one, relative
    # e_var / var <= (m + 3) eps (|c| + e_mean)^2 summed / sum c^2 ~ (m + 3) eps ~ 4e-5 at
    # most here, scaled by 1 - momentum = 0.01, so 1e-5 relative holds with room)


def test_variance_of_a_large_mean_keeps_its_digits(cpu_device):
    """sum(x^2)/m - mean^2 in float32 would lose every digit here (mean 1e4, spread 1);
    the kernels sum from each channel's first value, in float64."""
    x = _x(4, 8, 8, 2, seed=9, shift=1e4).astype(np.float32)
    mean, variance = minicnn.engine.cpu_kernels.batchnorm_moments(x)
    exact = x.astype(np.float64).reshape(-1, 2)
    np.testing.assert_allclose(variance, exact.var(0), rtol=1e-10)
    np.testing.assert_allclose(mean, exact.mean(0), rtol=1e-12)


def test_ops_reference_is_the_textbook_formula():
    x, dout = _x(3, 2, 2, 4, seed=10), _x(3, 2, 2, 4, seed=11)
    mean, variance = normalization.moments(x)
    gamma = np.linspace(0.5, 1.5, 4)
    dx, dgamma, dbeta = normalization.batchnorm_backward(dout, x, mean, variance, gamma, 1e-3)
    from minicnn.ops import reference
    loops = reference.batchnorm_backward_loops(dout, x, mean, variance, gamma, 1e-3)
    for got, expected in zip((dx, dgamma, dbeta), loops):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)   # float64


def test_optimizer_leaves_the_moving_statistics_to_the_layer():
    minicnn.set_seed(3)
    model = Sequential([Dense(4, input_shape=(3,)), BatchNormalization(momentum=0.5), Dense(2)])
    model.compile(minicnn.SGD(0.5, momentum=0.9), "categorical_crossentropy")
    x = _x(8, 3, seed=12).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[[0, 1] * 4]
    bn = model.layers[1]
    h = model.layers[0].forward(x)                      # the batch the layer will see
    mean, variance = h.mean(0), h.var(0)
    model.train_on_batch(x, y)
    assert set(bn.grads) == {"gamma", "beta"}
    # one moving-average step (3 roundings) of a float32 batch mean/variance over the
    # batch (a sum of N*H*W terms, <= N*H*W eps relative to the sum of |x|): within 1e-5
    np.testing.assert_allclose(bn.params["moving_mean"], 0.5 * mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(bn.params["moving_variance"], 0.5 + 0.5 * variance, rtol=1e-5)
    assert not any(key[1].startswith("moving") for key in model.optimizer.slots)


def test_save_and_load_keep_the_moving_statistics(tmp_path):
    model = Sequential([Conv2D(3, 3, input_shape=(6, 6, 2)), BatchNormalization(momentum=0.8),
                        Flatten(), Dense(2, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy")
    x = _x(4, 6, 6, 2, seed=13).astype(np.float32)
    model.fit(x, np.eye(2, dtype=np.float32)[[0, 1, 1, 0]], epochs=2, verbose=0)
    model.save(tmp_path / "bn.h5")
    loaded = minicnn.load_model(tmp_path / "bn.h5")
    assert loaded.layers[1].get_config() == model.layers[1].get_config()
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


@pytest.mark.parametrize("kwargs,message", [
    ({"axis": 0}, "Received: axis=0"), ({"axis": 4}, "Received: axis=4"),
    ({"axis": "last"}, "Received: axis='last'"), ({"momentum": 1.5}, "Received: momentum=1.5"),
    ({"epsilon": 0}, "Received: epsilon=0")])
def test_errors_echo_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BatchNormalization(**kwargs).build((4, 4, 2))


def test_on_the_device_as_on_the_cpu(xp):
    """The same numbers on every device (CuPy: the ops code on the GPU)."""
    x = _x(2, 4, 5, 3, seed=14).astype(np.float32)
    dout = _x(2, 4, 5, 3, seed=15).astype(np.float32)
    with minicnn.use_engine("numpy"):
        expected = _run("numpy", x, dout, True, lambda: _layer(3))
    layer = _layer(3)
    y = layer.forward(xp.asarray(x), training=True)
    dx = layer.backward(xp.asarray(dout))
    bounds = batchnorm_bounds(x, to_numpy(layer.params["gamma"]), to_numpy(layer.params["beta"]),
                              dout, 1e-3)
    assert_within(to_numpy(y), expected[0], bounds[0], "output")
    assert_within(to_numpy(dx), expected[1], bounds[1], "input gradient")
