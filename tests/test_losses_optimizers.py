"""Losses (values, gradients, clipping, accuracy) and optimizer update rules."""
import numpy as np
import pytest

from minicnn import SGD, Dense, RMSprop, losses, optimizers
from minicnn.activations import Sigmoid, Softmax
from minicnn.backend import to_device, to_numpy
from minicnn.gradcheck import check_loss


def _probabilities(rng, n, k):
    p = rng.uniform(0.05, 1.0, (n, k))
    return p / p.sum(axis=1, keepdims=True)


def test_binary_crossentropy_formula_mean_over_last_axis_then_batch():
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    p = np.array([[0.8, 0.2], [0.4, 0.6]])
    expected = np.mean([np.mean([-np.log(0.8), -np.log(0.8)]),
                        np.mean([-np.log(0.6), -np.log(0.6)])])
    # float64 inputs: a few float64 roundings (eps 2.2e-16) apart at most
    assert float(losses.binary_crossentropy(y, p).mean()) == pytest.approx(expected, rel=1e-12)


def test_categorical_crossentropy_sums_classes_then_averages_batch():
    y = np.array([[0, 1, 0], [0, 0, 1]], dtype=float)
    p = np.array([[0.2, 0.7, 0.1], [0.3, 0.3, 0.4]])
    expected = (-np.log(0.7) - np.log(0.4)) / 2
    # float64 inputs: a few float64 roundings (eps 2.2e-16) apart at most
    assert float(losses.categorical_crossentropy(y, p).mean()) == pytest.approx(expected, rel=1e-12)


def test_predictions_at_exactly_zero_and_one_are_clipped():
    y = np.array([[1.0], [0.0]], dtype=np.float32)
    p = np.array([[0.0], [1.0]], dtype=np.float32)     # the worst possible answers
    value = float(losses.binary_crossentropy(y, p).mean())
    assert np.isfinite(value)
    # float32: clip(1) = 1 - 1e-7 rounds to 0.99999988, so log(1 - p) = log(1.19e-7).
    eps = np.float32(1e-7)
    expected = -(np.log(eps) + np.log(np.float32(1) - (np.float32(1) - eps))) / 2
    # both from the same float32 values; the mean and log add a few roundings: 8 eps32
    assert value == pytest.approx(float(expected), rel=1e-6)
    grad = losses.BinaryCrossentropy().gradient(y, p)
    np.testing.assert_array_equal(grad, 0.0)            # clip blocks the gradient
    assert grad.dtype == np.float32


@pytest.mark.parametrize("loss", [losses.BinaryCrossentropy(), losses.CategoricalCrossentropy(),
                                  losses.MeanSquaredError()])
@pytest.mark.parametrize("classes", [1, 2, 5])
def test_loss_gradients(loss, classes):
    rng = np.random.default_rng(classes)
    p = rng.uniform(0.05, 0.95, (4, classes)) if classes == 1 else _probabilities(rng, 4, classes)
    y = (rng.uniform(size=(4, classes)) > 0.5).astype(float) if classes == 1 else \
        np.eye(classes)[rng.integers(0, classes, 4)]
    report = check_loss(loss, y, p)
    assert report.max_relative_error < 1e-6, report


@pytest.mark.parametrize("head,loss", [(Softmax(), losses.BinaryCrossentropy()),
                                       (Softmax(), losses.CategoricalCrossentropy()),
                                       (Sigmoid(), losses.BinaryCrossentropy())])
def test_loss_gradient_flows_through_the_head(head, loss):
    """The tutorial's 2-unit softmax + binary cross-entropy, and a sigmoid head."""
    rng = np.random.default_rng(0)
    k = 1 if isinstance(head, Sigmoid) else 2
    logits = rng.standard_normal((5, k))
    y = np.eye(2)[rng.integers(0, 2, 5)] if k == 2 else rng.integers(0, 2, (5, 1)).astype(float)

    def total(z):
        return float(loss(y, head.forward(z)))

    probs = head.forward(logits)
    analytic = head.backward(loss.gradient(y, probs), probs)
    numeric = np.zeros_like(logits)
    for i in np.ndindex(logits.shape):
        step = np.zeros_like(logits)
        step[i] = 1e-6
        numeric[i] = (total(logits + step) - total(logits - step)) / 2e-6
    # float64 central differences with step 1e-6: truncation ~h^2 f''' ~ 1e-12, rounding
    # ~eps64 |f| / h ~ 1e-10; 1e-6 relative leaves a wide margin
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


def test_accuracy_follows_the_loss():
    p = np.array([[0.7, 0.3], [0.4, 0.6], [0.9, 0.1]], dtype=np.float32)
    y = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    assert float(losses.CategoricalCrossentropy().accuracy(y, p)) == pytest.approx(1 / 3)
    assert float(losses.BinaryCrossentropy().accuracy(y, p)) == pytest.approx(1 / 3)
    sig = np.array([[0.2], [0.7], [0.5]], dtype=np.float32)   # 0.5 is not > 0.5
    assert float(losses.BinaryCrossentropy().accuracy(np.array([0, 1, 1]), sig)) == \
        pytest.approx(2 / 3)


def test_mismatched_labels_say_what_was_expected():
    with pytest.raises(ValueError, match=r"labels of shape \(4,\).*\(4, 3\).*to_categorical"):
        losses.categorical_crossentropy(np.zeros(4), np.full((4, 3), 1 / 3))


def test_unknown_loss_and_optimizer_list_valid_names():
    with pytest.raises(ValueError, match="unknown loss 'hinge'.*binary_crossentropy"):
        losses.get("hinge")
    with pytest.raises(ValueError, match="unknown optimizer 'lamb'.*'adam'.*rmsprop.*sgd"):
        optimizers.get("lamb")


def _layer_with(weights, grads):
    """A Dense layer on the current device with these weights and kernel gradients."""
    layer = Dense(weights.shape[1])
    layer.build((weights.shape[0],))
    layer.set_weights([weights, np.zeros(weights.shape[1])])
    layer.grads = {"kernel": to_device(grads, dtype=np.float32),
                   "bias": to_device(np.zeros(weights.shape[1]), dtype=np.float32)}
    return layer


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_follows_the_keras_update_with_time_decay(momentum, nesterov, device):
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((3, 2))
    grads = [rng.standard_normal((3, 2)) for _ in range(5)]
    lr, decay = 0.1, 0.1 / 50
    layer = _layer_with(w0, grads[0])
    opt = SGD(lr, momentum=momentum, nesterov=nesterov, decay=decay)
    w, v = w0.copy(), np.zeros_like(w0)
    for t, g in enumerate(grads):
        layer.grads["kernel"] = to_device(g, dtype=np.float32)
        opt.apply([layer])
        lr_t = lr / (1 + decay * t)
        v = momentum * v - lr_t * g
        w = w + (momentum * v - lr_t * g if nesterov else v)
    # float32 against float64 over 5 steps of a few roundings each (~4 eps32 of |w| + |v|
    # per step): 5 * 4 * 1.2e-7 * (|w| + |v|) = 2.4e-6 relative; 1e-5 holds it
    np.testing.assert_allclose(to_numpy(layer.params["kernel"]), w, rtol=1e-5, atol=1e-6)
    assert opt.iterations == 5


def test_rmsprop_puts_epsilon_inside_the_square_root(device):
    rng = np.random.default_rng(1)
    w0, g = rng.standard_normal((2, 2)), rng.standard_normal((2, 2)) * 1e-4
    layer = _layer_with(w0, g)
    RMSprop(0.01, rho=0.9, epsilon=1e-7).apply([layer])
    a = 0.1 * g * g
    # float32 against float64: w0 rounded once, the step (~0.03) with ~6 roundings of
    # its own: within 1e-5 of |w0| + |step| for |w0| >= 0.1 or so
    np.testing.assert_allclose(to_numpy(layer.params["kernel"]),
                               w0 - 0.01 * g / np.sqrt(a + 1e-7), rtol=1e-5)


@pytest.mark.parametrize("optimizer", [SGD(0.05, momentum=0.9),
                                       SGD(0.05, momentum=0.9, nesterov=True),
                                       RMSprop(0.01, rho=0.9),
                                       optimizers.Adam(0.01),
                                       optimizers.Adam(0.01, amsgrad=True),
                                       optimizers.AdamW(0.01, weight_decay=0.1)])
@pytest.mark.parametrize("shape", [(3, 2), (300, 700)])   # the large one: one slice per thread
def test_cpu_optimizer_kernels_give_numpys_numbers(optimizer, shape, monkeypatch):
    """On the CPU an optimizer step is one numba pass (cpu_kernels.optim: sgd_momentum_,
    rmsprop_, adam_); it does NumPy's float32 operations in NumPy's order: the same
    numbers, bit for bit."""
    from minicnn.engine import cpu_kernels
    if not cpu_kernels.usable(np.zeros(1, np.float32)):
        pytest.skip("numba kernels unavailable here")
    rng = np.random.default_rng(2)
    w0 = rng.standard_normal(shape)
    grads = [rng.standard_normal(shape) for _ in range(3)]
    results = []
    for fused in (True, False):
        if not fused:
            monkeypatch.setattr(cpu_kernels, "usable", lambda x: False)
        optimizer.slots.clear()
        optimizer.iterations = 0
        layer = _layer_with(w0, grads[0])
        layer.params = {k: to_numpy(v) for k, v in layer.params.items()}
        for g in grads:
            layer.grads = {"kernel": g.astype(np.float32),
                           "bias": np.zeros(shape[1], np.float32)}
            optimizer.apply([layer])
        results.append(layer.params["kernel"].copy())
    assert results[0].dtype == np.float32
    assert not np.array_equal(results[0], w0.astype(np.float32))   # it did move
    np.testing.assert_array_equal(results[0], results[1])


def test_frozen_layers_are_not_updated():
    layer = _layer_with(np.ones((2, 2)), np.ones((2, 2)))
    layer.trainable = False
    SGD(0.1).apply([layer])
    np.testing.assert_array_equal(to_numpy(layer.params["kernel"]), 1.0)
