"""VGG16's convolutional base and its preprocessing, checked against Keras.

The comparison with Keras needs the real weight file and a few real photos; it
is skipped where they are absent, and where Keras is not installed unless
MINICNN_REQUIRE_KERAS=1 (then a missing Keras fails, as CI wants).
"""
import os
from pathlib import Path

import numpy as np
import pytest

from minicnn import Sequential
from minicnn.applications import VGG16, preprocess_input
from minicnn.applications.vgg16 import IMAGENET_BGR_MEAN
from minicnn.backend import get_array_module, to_numpy
from minicnn.weights import save_weights

# The weight file and Kaggle's photos: from the environment, else from ../shared/data
# beside the clone (where CI puts them). Skip reasons name no machine's folders.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
WEIGHTS = Path(os.environ.get("MINICNN_VGG16_WEIGHTS")
               or SHARED_DATA / "vgg16" / "vgg16_imagenet_notop.h5")
PHOTOS = Path(os.environ.get("MINICNN_DATA") or SHARED_DATA / "cats_dogs" / "train")

needs_weights = pytest.mark.skipif(
    not WEIGHTS.is_file(), reason="no VGG16 weights: set MINICNN_VGG16_WEIGHTS (Keras's notop "
    ".h5) or provide ../shared/data/vgg16/vgg16_imagenet_notop.h5 beside the clone")
needs_photos = pytest.mark.skipif(
    not PHOTOS.is_dir(), reason="no cats/dogs photos: set MINICNN_DATA (Kaggle's train "
    "folder) or provide ../shared/data/cats_dogs/train beside the clone")

LAYER_SHAPES_150 = [
    ("block1_conv1", (150, 150, 64), 1_792), ("block1_conv2", (150, 150, 64), 36_928),
    ("block1_pool", (75, 75, 64), 0),
    ("block2_conv1", (75, 75, 128), 73_856), ("block2_conv2", (75, 75, 128), 147_584),
    ("block2_pool", (37, 37, 128), 0),
    ("block3_conv1", (37, 37, 256), 295_168), ("block3_conv2", (37, 37, 256), 590_080),
    ("block3_conv3", (37, 37, 256), 590_080), ("block3_pool", (18, 18, 256), 0),
    ("block4_conv1", (18, 18, 512), 1_180_160), ("block4_conv2", (18, 18, 512), 2_359_808),
    ("block4_conv3", (18, 18, 512), 2_359_808), ("block4_pool", (9, 9, 512), 0),
    ("block5_conv1", (9, 9, 512), 2_359_808), ("block5_conv2", (9, 9, 512), 2_359_808),
    ("block5_conv3", (9, 9, 512), 2_359_808), ("block5_pool", (4, 4, 512), 0),
]


def import_keras():
    """Keras, or a skip (a failure when MINICNN_REQUIRE_KERAS=1, as in CI)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get("MINICNN_REQUIRE_KERAS") == "1":
        import keras
        return keras
    return pytest.importorskip("keras")


# -- architecture ----------------------------------------------------------------------


def test_architecture_names_shapes_and_parameter_count():
    model = VGG16(include_top=False, weights=None, input_shape=(150, 150, 3))
    got = [(layer.name, layer.output_shape, layer.count_params()) for layer in model.layers]
    assert got == LAYER_SHAPES_150
    assert model.output_shape == (None, 4, 4, 512)   # Keras's form
    assert model.input_shape == (None, 150, 150, 3)
    assert model.count_params() == 14_714_688
    conv = model.get_layer("block3_conv2")
    assert (conv.kernel_size, conv.strides, conv.padding, conv.activation.name) == \
        ((3, 3), (1, 1), "same", "relu")
    pool = model.get_layer("block3_pool")
    assert (pool.pool_size, pool.strides) == ((2, 2), (2, 2))


@pytest.mark.parametrize("size, out", [(224, 7), (32, 1), (100, 3)])
def test_output_size_is_input_over_32_rounded_down(size, out):
    assert VGG16(input_shape=(size, size, 3)).output_shape == (None, out, out, 512)


def test_forward_of_a_small_batch():
    model = VGG16(input_shape=(32, 32, 3))
    y = model.predict(np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)))
    assert y.shape == (2, 1, 1, 512) and y.dtype == np.float32
    assert (y >= 0).all()      # the last conv is a ReLU and max pooling keeps signs


def test_split_into_two_models_keeps_the_weights():
    """The example runs blocks 1-4 and block 5 as two models sharing VGG16's layers."""
    base = VGG16(input_shape=(32, 32, 3))
    x = np.random.default_rng(3).uniform(-100, 100, (2, 32, 32, 3))
    whole = base.predict(x)
    weights = base.get_weights()
    split = [layer.name for layer in base.layers].index("block5_conv1")
    bottom = Sequential(base.layers[:split])
    top = Sequential(base.layers[split:])
    for a, b in zip(base.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    # the split falls between blocks (whole conv + pool pairs): the same sums in the same
    # order, so the same bits
    np.testing.assert_array_equal(top.predict(bottom.predict(x)), whole)


def test_include_top_is_refused_with_an_explanation():
    with pytest.raises(ValueError, match="only the convolutional base"):
        VGG16(include_top=True)


def test_imagenet_without_the_weight_file_says_where_to_put_it(tmp_path, monkeypatch):
    """weights='imagenet' loads Keras's cached file (tests/test_keras2_names.py loads the
    real one); with none anywhere, one line names the file and the folder."""
    monkeypatch.delenv("MINICNN_VGG16_WEIGHTS", raising=False)
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))           # no ~/.keras/models here
    with pytest.raises(ValueError, match=r"vgg16_weights_tf_dim_ordering_tf_kernels_notop\.h5"
                                         r".*~/\.keras/models"):
        VGG16(weights="imagenet")


@pytest.mark.parametrize("shape", [(150, 150), (150, 150, 1), (31, 150, 3)])
def test_bad_input_shape(shape):
    with pytest.raises(ValueError, match=r"VGG16 expects input_shape \(height, width, 3\)"):
        VGG16(input_shape=shape)


def test_weights_argument_loads_a_file(tmp_path):
    source = VGG16(input_shape=(32, 32, 3))
    save_weights(source, tmp_path / "w.h5")
    loaded = VGG16(weights=tmp_path / "w.h5", input_shape=(32, 32, 3))
    for a, b in zip(source.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


@needs_weights
def test_real_weights_match_published_statistics():
    """Values published for Keras's ImageNet VGG16 (see the weight file's README)."""
    model = VGG16(weights=WEIGHTS)
    kernel = model.get_layer("block1_conv1").get_weights()[0]
    assert kernel.shape == (3, 3, 3, 64)
    assert kernel.min() == pytest.approx(-0.67140007, abs=1e-7)
    assert kernel.max() == pytest.approx(0.6085159, abs=1e-7)
    assert model.get_layer("block5_conv3").get_weights()[1].max() == \
        pytest.approx(9.431553, abs=1e-6)


# -- preprocessing ------------------------------------------------------------------------


def test_caffe_by_hand(xp):
    rgb = xp.asarray([[[10, 20, 30], [255, 0, 128]]], dtype=xp.uint8)      # (1, 2, 3)
    out = preprocess_input(rgb)
    assert get_array_module(out) is xp and out.dtype == np.float32 and out.shape == (1, 2, 3)
    # BGR order, minus (103.939, 116.779, 123.68)
    expected = np.array([[[30 - 103.939, 20 - 116.779, 10 - 123.68],
                          [128 - 103.939, 0 - 116.779, 255 - 123.68]]], dtype=np.float32)
    # one float32 rounding of values up to ~128: 128 * eps32 / 2 = 7.6e-6
    np.testing.assert_allclose(to_numpy(out), expected, rtol=0, atol=1e-5)


def test_rescale_by_hand(xp):
    rgb = xp.asarray([[0, 51, 255]], dtype=xp.float64)
    out = preprocess_input(rgb, mode="rescale")
    assert out.dtype == np.float32
    np.testing.assert_allclose(to_numpy(out), [[0.0, 0.2, 1.0]], rtol=1e-6)   # one rounding


def test_input_is_not_modified():
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    before = x.copy()
    for mode in ("caffe", "rescale"):
        out = preprocess_input(x, mode=mode)
        assert not np.shares_memory(out, x)
    np.testing.assert_array_equal(x, before)


def test_caffe_inverts():
    x = np.random.default_rng(1).integers(0, 256, (3, 5, 5, 3)).astype(np.float32)
    back = (preprocess_input(x) + np.array(IMAGENET_BGR_MEAN, np.float32))[..., ::-1]
    # two float32 roundings of values up to 255: 2 * 255 * eps32 / 2 = 3e-5
    np.testing.assert_allclose(back, x, atol=1e-4)


def test_preprocessing_errors():
    with pytest.raises(ValueError, match=r"unknown preprocessing mode 'torch'"):
        preprocess_input(np.zeros((1, 2, 2, 3)), mode="torch")
    with pytest.raises(ValueError, match=r"3 channels last, got shape \(1, 2, 2, 4\)"):
        preprocess_input(np.zeros((1, 2, 2, 4)))


@pytest.mark.keras
def test_caffe_equals_keras_preprocess_input():
    keras = import_keras()
    x = np.random.default_rng(2).integers(0, 256, (2, 8, 8, 3)).astype(np.float32)
    expected = keras.applications.vgg16.preprocess_input(x.copy())   # Keras works in place
    np.testing.assert_array_equal(preprocess_input(x), expected)


# -- the real weights against Keras ------------------------------------------------------------


def load_photos(names, size=150):
    from PIL import Image

    return np.stack([np.asarray(Image.open(PHOTOS / n).convert("RGB").resize((size, size)),
                                dtype=np.float32) for n in names])


@pytest.mark.keras
@needs_weights
@needs_photos
def test_block5_pool_features_equal_keras_on_real_photos():
    """minicnn's VGG16 and Keras's, same weight file, same preprocessed photos.

    Metric: max|a - b| / max|b| below 1e-4 (measured: about 6e-7). Elementwise,
    rtol 1e-4 with atol 1e-5 * max|b|: float32 round-off in a sum grows with the
    size of the terms summed, not of the result, so an output near zero (most
    of them, after ReLU) can only be as exact as the layer's scale; 1e-5 of the
    scale is about 100 float32 epsilons, room for 13 layers of 4608-term sums
    summed in a different order than Keras's.
    """
    keras = import_keras()
    photos = load_photos(["cat.0.jpg", "cat.1.jpg", "dog.0.jpg", "dog.1.jpg"])
    ours = VGG16(weights=WEIGHTS, input_shape=(150, 150, 3)).predict(preprocess_input(photos))

    reference = keras.applications.VGG16(include_top=False, weights=None,
                                         input_shape=(150, 150, 3))
    reference.load_weights(str(WEIGHTS))
    theirs = reference.predict(keras.applications.vgg16.preprocess_input(photos.copy()),
                               verbose=0)

    assert ours.shape == theirs.shape == (4, 4, 4, 512)
    scale = np.abs(theirs).max()
    assert scale > 1.0      # real features, not an all-zero output
    assert np.abs(ours - theirs).max() / scale < 1e-4
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5 * scale)
