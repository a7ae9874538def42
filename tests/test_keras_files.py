"""Model files both ways with Keras 3 (issue 17): what ``model.save("x.h5")`` writes opens in
``keras.models.load_model`` with the same predictions, and what Keras saves (``.h5`` and
``.keras``) opens in ``minicnn.models.load_model``.

Weights are copied, so they must be equal exactly. Predictions: both sides compute the same float32 sums in other orders, so outputs differ
by rounding only. :func:`magnitude_bound` gives each output its worst case, as
``float32_error.sequential_bound`` does (``terms * eps32 * sum of |terms|``, the sums of
|terms| from the same network on |x| with |weights| in float64), extended to the layers
it does not cover: every activation becomes the identity (on values >= 0 it is at least
ReLU, LeakyReLU or tanh, whose slopes are <= 1, so errors carried through are not
underestimated), and a BatchNormalization ``(x - mean) / sqrt(var + eps) * gamma + beta``
becomes ``|scale| * x + |mean * scale| + |beta|`` with ``scale = gamma / sqrt(var + eps)``.
(Worst cases: for the cats/dogs net the bound on its softmax outputs exceeds 1, so there
the exact weights carry the test; the small nets' bounds are 3e-5 to 5e-4, the measured
differences 3e-8 to 1.2e-7.)
"""
import json
import os
import warnings
import zipfile

import h5py
import numpy as np
import pytest

import minicnn
from minicnn import layers as L
from minicnn.models import Sequential, load_model
from minicnn.tutorial import build_cats_dogs_model, compile_cats_dogs

from float32_error import EPS32, assert_within, sum_bound

pytestmark = pytest.mark.keras


def import_keras():
    """Keras, or a skip (a failure when MINICNN_REQUIRE_KERAS=1, as in CI)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get("MINICNN_REQUIRE_KERAS") == "1":
        import keras
        return keras
    return pytest.importorskip("keras")


def magnitude_bound(model, x, terms):
    """Elementwise bound on two float32 evaluations of ``model`` on ``x`` (module doc);
    ``terms`` is the longest chain of additions from input to output."""
    copies, weights, squashed = [], [], False
    for layer in model.layers:
        config = dict(layer.get_config())
        if config.get("activation") in ("softmax", "sigmoid"):
            squashed = True
        if isinstance(layer, (L.Activation, L.ReLU, L.LeakyReLU)):
            copies.append(L.Activation("linear", name=layer.name))
            continue
        if "activation" in config:
            config["activation"] = None
        copies.append(L.from_config(type(layer).__name__, config))
        arrays = [np.abs(np.asarray(w, np.float64)) for w in layer.get_weights()]
        if isinstance(layer, L.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()    # center and scale: 4
            scale = gamma / np.sqrt(variance + layer.epsilon)
            # gamma' / sqrt(1 + eps) = |scale|, beta' = |mean * scale| + |beta|
            arrays = [np.abs(scale) * np.sqrt(1 + layer.epsilon),
                      np.abs(mean * scale) + np.abs(beta), np.zeros_like(mean),
                      np.ones_like(variance)]
        weights += arrays
    magnitudes = Sequential(copies)
    magnitudes.build(model.layers[0].input_shape)
    magnitudes.set_weights(weights)
    bound = sum_bound(terms, magnitudes.forward(np.abs(np.asarray(x, np.float64))))
    return bound + (sum_bound(4, 1.0) if squashed else 0.0)


def prediction_bound(model, x, terms):
    """``magnitude_bound``, where it says something. The worst case multiplies every
    layer's sum of |weights|, and for the three-conv cats/dogs net it exceeds the outputs
    themselves (a check that could not fail); there the parity suite's tolerance for
    outputs applies (tests/keras_reference/harness.py: float32 sums of a few hundred
    terms in two orders differ near 1e-6 relative, and 1e-5 of the largest output holds)."""
    bound = magnitude_bound(model, x, terms)
    largest = float(np.abs(model.predict(x)).max())
    return bound if bound.max() < 0.01 * largest else 1e-5 * largest


def images(shape, n=4, seed=0):
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


# The cats/dogs net on 32x32 images: three 3x3 convs (27+1, 288+1, 288+1 terms), the dense
# layers (4*4*64+1 and 64+1 terms).
CATS_DOGS_TERMS = 28 + 289 + 289 + 1025 + 65
# ZeroPadding, conv 3x3x3 (28), BN (4 roundings), 2x2 average (4), conv 3x3x8 (73), BN (4),
# global average of 3x3 (9), dense (8 + 1).
BN_NET_TERMS = 28 + 4 + 4 + 73 + 4 + 9 + 9


def bn_net(seed=0):
    """Every layer Keras and minicnn share but Flatten (in the cats/dogs net) and
    GlobalMaxPooling2D (in :func:`gmp_net`)."""
    model = Sequential([
        L.ZeroPadding2D(1, input_shape=(8, 8, 3)),
        L.Conv2D(8, 3, kernel_regularizer=minicnn.regularizers.l2(1e-4), seed=seed),
        L.BatchNormalization(), L.LeakyReLU(0.1), L.AveragePooling2D(2),
        L.Conv2D(8, 3, padding="same", activation="tanh", seed=seed + 1),
        L.BatchNormalization(momentum=0.9, epsilon=1e-2), L.ReLU(max_value=6.0),
        L.Dropout(0.3), L.GlobalAveragePooling2D(), L.Activation("relu"),
        L.Dense(3, activation="softmax", seed=seed + 2)], name="bn_net")
    rng = np.random.default_rng(seed)
    for layer in model.layers:       # moving statistics that are not the initial 0 and 1
        if isinstance(layer, L.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 1.5, 8).astype(np.float32),
                               rng.normal(0, 0.2, 8).astype(np.float32),
                               rng.normal(0, 0.3, 8).astype(np.float32),
                               rng.uniform(0.2, 2.0, 8).astype(np.float32)])
    return model


def gmp_net():
    return Sequential([L.Conv2D(4, 3, input_shape=(6, 6, 2), seed=3),
                       L.GlobalMaxPooling2D(), L.Dense(1, activation="sigmoid", seed=4)])


def keras_load(keras, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # Keras 3 calls the .h5 format legacy
        return keras.models.load_model(path)


# -- minicnn -> Keras ----------------------------------------------------------------------

@pytest.mark.parametrize("make, terms, shape", [
    (lambda: compile_cats_dogs(build_cats_dogs_model((32, 32, 3)), epochs=5),
     CATS_DOGS_TERMS, (32, 32, 3)),
    (bn_net, BN_NET_TERMS, (8, 8, 3)),
    (gmp_net, 28 + 16 + 5, (6, 6, 2)),
], ids=["cats_dogs", "bn_leaky_gap_zeropad", "global_max"])
def test_keras_opens_what_minicnn_saves_with_the_same_predictions(tmp_path, make, terms,
                                                                   shape):
    keras = import_keras()
    model = make()
    model.save(tmp_path / "m.h5")
    k_model = keras_load(keras, tmp_path / "m.h5")
    x = images(shape)
    assert [layer.name for layer in k_model.layers] == [layer.name for layer in model.layers]
    for mine, theirs in zip(model.get_weights(), k_model.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)      # copied, in the same layouts
    assert_within(k_model.predict(x, verbose=0), model.predict(x),
                  prediction_bound(model, x, terms))


def test_keras_compiles_what_minicnn_saved_compiled(tmp_path):
    """The tutorial's SGD(lr, momentum, decay): Keras 3 has no decay, its InverseTimeDecay
    (lr, 1, decay) is the same rule; the step count comes along, so the rate goes on
    decaying where minicnn left it."""
    keras = import_keras()
    model = compile_cats_dogs(build_cats_dogs_model((16, 16, 3)), epochs=5)
    x = images((16, 16, 3), n=8)
    model.fit(x, minicnn.to_categorical(np.arange(8) % 2, 2), batch_size=4, verbose=0)
    model.save(tmp_path / "m.h5")
    k_model = keras_load(keras, tmp_path / "m.h5")
    optimizer = k_model.optimizer
    assert type(optimizer).__name__ == "SGD" and optimizer.momentum == pytest.approx(0.9)
    schedule = optimizer.get_config()["learning_rate"]
    assert schedule["class_name"] == "InverseTimeDecay"
    assert schedule["config"]["decay_rate"] == pytest.approx(0.002)
    assert int(optimizer.iterations) == model.optimizer.iterations == 2
    # lr / (1 + decay * step), computed in float32 on Keras's side
    assert float(optimizer.learning_rate) == pytest.approx(0.01 / (1 + 0.002 * 2),
                                                           rel=4 * EPS32)
    assert k_model.loss in ("binary_crossentropy", keras.losses.binary_crossentropy) or \
        getattr(k_model.loss, "__name__", "") == "binary_crossentropy"


def test_a_minicnn_file_keeps_its_own_parts_beside_keras_parts(tmp_path):
    model = bn_net()
    model.compile(minicnn.Adam(0.01), "categorical_crossentropy", ["accuracy"])
    model.save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5") as f:
        config = json.loads(f.attrs["model_config"])
        training = json.loads(f.attrs["training_config"])
        assert f.attrs["minicnn_format_version"] == 2
        assert config["class_name"] == "Sequential"
        assert config["config"]["layers"][0]["class_name"] == "InputLayer"
        assert [s["class_name"] for s in config["config"]["layers"][1:]] == \
            [s["class_name"] for s in config["layers"]]
        assert training["optimizer_config"]["class_name"] == "Adam"
        assert training["optimizer"]["name"] == "adam"
        names = [n.decode() for n in f["model_weights"].attrs["layer_names"]]
        assert names == [layer.name for layer in model.layers]
        assert [n.decode() for n in f["model_weights/batch_normalization"].attrs[
            "weight_names"]] == ["gamma", "beta", "moving_mean", "moving_variance"]


# -- Keras -> minicnn ----------------------------------------------------------------------

def keras_bn_net(keras):
    K = keras.layers
    model = keras.Sequential([
        keras.Input((8, 8, 3)), K.ZeroPadding2D(1),
        K.Conv2D(8, 3, kernel_regularizer=keras.regularizers.l2(1e-4)),
        K.BatchNormalization(), K.LeakyReLU(negative_slope=0.1), K.AveragePooling2D(2),
        K.Conv2D(8, 3, padding="same", activation="tanh"),
        K.BatchNormalization(momentum=0.9, epsilon=1e-2), K.ReLU(max_value=6.0),
        K.Dropout(0.3), K.GlobalAveragePooling2D(), K.Activation("relu"),
        K.Dense(3, activation="softmax")])
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if isinstance(layer, K.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 1.5, 8), rng.normal(0, 0.2, 8),
                               rng.normal(0, 0.3, 8), rng.uniform(0.2, 2.0, 8)])
    return model


def keras_cats_dogs(keras):
    K = keras.layers
    return keras.Sequential([
        keras.Input((32, 32, 3)),
        K.Conv2D(32, 3, padding="same", activation="relu"), K.MaxPooling2D(2),
        K.Conv2D(32, 3, padding="same", activation="relu"), K.MaxPooling2D(2),
        K.Conv2D(64, 3, padding="same", activation="relu"), K.MaxPooling2D(2),
        K.Dropout(0.25), K.Flatten(), K.Dense(64, activation="relu"), K.Dropout(0.5),
        K.Dense(2, activation="softmax")])


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
@pytest.mark.parametrize("make, terms, shape", [
    (keras_cats_dogs, CATS_DOGS_TERMS, (32, 32, 3)),
    (keras_bn_net, BN_NET_TERMS, (8, 8, 3)),
], ids=["cats_dogs", "bn_leaky_gap_zeropad"])
def test_minicnn_opens_what_keras_saves_with_the_same_predictions(tmp_path, suffix, make,
                                                                   terms, shape):
    keras = import_keras()
    k_model = make(keras)
    k_model.compile(keras.optimizers.Adam(0.002), "categorical_crossentropy",
                    metrics=["accuracy"])
    path = tmp_path / f"k{suffix}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k_model.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # compiled: nothing to warn about
        model = load_model(path)
    assert [layer.name for layer in model.layers] == [layer.name for layer in k_model.layers]
    for mine, theirs in zip(model.get_weights(), k_model.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)      # copied, in the same layouts
    assert type(model.optimizer).__name__ == "Adam"
    assert model.optimizer.learning_rate == pytest.approx(0.002, rel=EPS32)
    assert model.loss.name == "categorical_crossentropy" and model.metrics == ["accuracy"]
    x = images(shape, seed=2)
    assert_within(model.predict(x), k_model.predict(x, verbose=0),
                  prediction_bound(model, x, terms))


def test_a_keras_training_config_minicnn_lacks_loads_uncompiled_with_a_warning(tmp_path):
    keras = import_keras()
    k_model = keras_cats_dogs(keras)
    k_model.compile("adam", "huber")
    k_model.save(tmp_path / "k.keras")
    with pytest.warns(UserWarning, match=r"not compiled, because minicnn has no loss "
                                         r"'huber'"):
        model = load_model(tmp_path / "k.keras")
    assert model.optimizer is None and model.loss is None


@pytest.mark.parametrize("layer, expected", [
    (lambda K: K.Conv2D(2, 3, dilation_rate=2, name="wide"),
     r"layer 'wide' \(Conv2D\) has dilation_rate=\[2, 2\]; minicnn supports only "
     r"dilation_rate=\[1, 1\]"),
    (lambda K: K.DepthwiseConv2D(3, name="dw"), r"layer 'dw' is a Keras DepthwiseConv2D, "
                                                r"which minicnn does not have"),
    (lambda K: K.Dense(2, kernel_constraint="non_neg", name="d"),
     r"layer 'd' \(Dense\) has kernel_constraint="),
], ids=["dilation", "depthwise", "constraint"])
def test_a_keras_model_minicnn_cannot_rebuild_is_named(tmp_path, layer, expected):
    keras = import_keras()
    k_model = keras.Sequential([keras.Input((6, 6, 2)), layer(keras.layers)])
    k_model.save(tmp_path / "k.keras")
    with pytest.raises(ValueError, match=rf"written by Keras .*cannot rebuild: {expected}"):
        load_model(tmp_path / "k.keras")


def test_minicnn_to_keras_to_minicnn(tmp_path):
    """Keras re-saves a file minicnn wrote; minicnn reads Keras's file back."""
    keras = import_keras()
    model = bn_net(seed=7)
    model.save(tmp_path / "m.h5")
    keras_load(keras, tmp_path / "m.h5").save(tmp_path / "k.keras")
    with pytest.warns(UserWarning, match=r"k\.keras' has no training configuration, so "
                                         r"the model is not compiled") as caught:
        back = load_model(tmp_path / "k.keras")
    assert caught[0].filename == __file__           # the warning points at this call
    for a, b in zip(model.get_weights(), back.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)      # weights are copied, never computed


def test_a_zip_that_is_not_a_keras_model_says_so(tmp_path):
    path = tmp_path / "notes.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match=r"is a zip file but not a Keras model \(\.keras\): "
                                         r"it lacks config\.json, model\.weights\.h5"):
        load_model(path)


def test_a_file_of_format_1_from_before_the_keras_parts_still_loads(tmp_path):
    """minicnn's files of format 1 had only minicnn's parts: remove Keras's from a new one."""
    model = bn_net()
    model.compile(minicnn.Adam(0.01), "categorical_crossentropy", ["accuracy"])
    x = images((8, 8, 3))
    model.fit(x, minicnn.to_categorical(np.arange(4) % 3, 3), verbose=0)
    path = tmp_path / "old.h5"
    model.save(path)
    with h5py.File(path, "a") as f:
        for name in ("keras_version", "backend", "minicnn_version"):
            del f.attrs[name]
        f.attrs["minicnn_format_version"] = 1
        config = json.loads(f.attrs["model_config"])
        f.attrs["model_config"] = json.dumps({"name": config["name"],
                                              "layers": config["layers"]})
        training = json.loads(f.attrs["training_config"])
        f.attrs["training_config"] = json.dumps({k: training[k] for k in
                                                 ("loss", "metrics", "optimizer")})
        del f["optimizer_weights"]
        for group in [f["model_weights"], *f["model_weights"].values()]:
            for name in list(group.attrs):
                del group.attrs[name]
    restored = load_model(path)
    np.testing.assert_array_equal(restored.predict(x), model.predict(x))
    assert restored.optimizer.get_state()["slots"].keys() == \
        model.optimizer.get_state()["slots"].keys()
    assert restored.optimizer.iterations == model.optimizer.iterations == 1
