"""kernel_regularizer / bias_regularizer on Conv2D and Dense: the loss the model trains on
and reports includes the penalties, and their gradients reach the optimizer (the Keras
comparison is in keras_reference/cases.py)."""
import numpy as np
import pytest

import minicnn
from minicnn import Conv2D, Dense, Flatten, Sequential, regularizers
from minicnn.layers import from_config


def _model(frozen=False, **regularized):
    minicnn.clear_session()
    model = Sequential([
        Conv2D(3, 3, input_shape=(5, 5, 2), seed=1, **regularized),
        Flatten(),
        Dense(2, activation="softmax", seed=2, trainable=not frozen, **regularized)])
    model.compile(minicnn.SGD(0.1), "categorical_crossentropy")
    return model


def _data():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((4, 5, 5, 2)).astype(np.float32),
            np.eye(2, dtype=np.float32)[[0, 1, 1, 0]])


@pytest.mark.parametrize("kernel,bias", [("l2", None), (regularizers.l1(0.05), "l1"),
                                         (regularizers.l1_l2(0.01, 0.02), regularizers.L2(0.3))])
def test_config_round_trips(kernel, bias):
    for layer in (Conv2D(2, 3, kernel_regularizer=kernel, bias_regularizer=bias),
                  Dense(2, kernel_regularizer=kernel, bias_regularizer=bias)):
        config = layer.get_config()
        copy = from_config(type(layer).__name__, config)
        assert copy.get_config() == config
        assert repr(copy.kernel_regularizer) == repr(regularizers.get(kernel))


def test_unknown_regularizer_is_named():
    with pytest.raises(ValueError, match="unknown regularizer 'l3'"):
        Dense(2, kernel_regularizer="l3")


def test_loss_and_gradients_include_the_penalties():
    x, y = _data()
    l1, l2 = regularizers.L1(0.01), regularizers.L2(0.05)
    plain, penalised = _model(), _model(kernel_regularizer=l2, bias_regularizer=l1)
    penalised.set_weights([w + 0.1 for w in plain.get_weights()])   # biases not all zero
    plain.set_weights(penalised.get_weights())
    weights = {(layer.name, key): np.array(p) for layer in penalised.layers
               for key, p in layer.params.items()}
    penalty = sum(l2(w) if key == "kernel" else l1(w) for (_, key), w in weights.items())

    plain_loss = plain.train_on_batch(x, y)["loss"]
    loss = penalised.train_on_batch(x, y)["loss"]
    # float64 penalties added to the same float32 loss: equal to a few float32 roundings
    assert loss == pytest.approx(plain_loss + penalty, rel=1e-6)
    for layer, plain_layer in zip(penalised.layers, plain.layers):
        for key, param in layer.params.items():
            w = weights[(layer.name, key)]
            extra = (l2 if key == "kernel" else l1).gradient(w)
            # SGD: w - lr * (grad + extra); the plain model took w - lr * grad
            np.testing.assert_allclose(param, plain_layer.params[key] - 0.1 * extra,
                                       rtol=1e-6, atol=1e-7)
    evaluate = penalised.evaluate(x, y)
    penalty_now = sum(l2(p) if key == "kernel" else l1(p) for layer in penalised.layers
                      for key, p in layer.params.items())
    plain.set_weights(penalised.get_weights())
    assert evaluate == pytest.approx(plain.evaluate(x, y) + penalty_now, rel=1e-6)


def test_a_frozen_layer_adds_no_penalty():
    x, y = _data()
    model = _model(frozen=True, kernel_regularizer=regularizers.L2(1.0))
    conv_penalty = regularizers.L2(1.0)(model.layers[0].params["kernel"])
    plain = _model(frozen=True)
    plain.set_weights(model.get_weights())
    assert model.evaluate(x, y) == pytest.approx(plain.evaluate(x, y) + conv_penalty, rel=1e-6)


def test_save_and_load_keep_the_regularizers(tmp_path):
    model = _model(kernel_regularizer=regularizers.L1L2(0.01, 0.02), bias_regularizer="l2")
    model.save(tmp_path / "r.h5")
    loaded = minicnn.load_model(tmp_path / "r.h5")
    assert loaded.get_config() == model.get_config()
    x, y = _data()
    assert loaded.evaluate(x, y) == model.evaluate(x, y)
