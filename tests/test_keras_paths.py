"""Keras's module paths (Keras 2's and Keras 3's) import from minicnn and give minicnn's
own objects, so that a tutorial runs with ``keras`` changed to ``minicnn`` in its imports.

Each row is the import as a tutorial writes it, with ``keras`` replaced by ``minicnn``,
and the object it must be. Where Keras is installed, the rows Keras 3 still has are
checked to exist there too (a row that Keras 3 dropped says so).
"""
import importlib
import io
import os
import warnings

import numpy as np
import pytest

import minicnn
from minicnn import applications, callbacks, data, locate
from minicnn.applications import vgg16
from minicnn.data import fashion_mnist as data_fashion_mnist

# The paths built here (issue 17); layers, models and optimizers paths are built elsewhere.
# (module, name, the minicnn object, whether Keras 3 still has the path)
PATHS = [
    ("minicnn.preprocessing.image", "ImageDataGenerator", data.ImageDataGenerator, False),
    ("minicnn.preprocessing.image", "DirectoryIterator", data.DirectoryIterator, False),
    ("minicnn.preprocessing.image", "load_img", None, True),
    ("minicnn.preprocessing.image", "img_to_array", None, True),
    ("minicnn.preprocessing.image", "array_to_img", None, True),
    ("minicnn.preprocessing.image", "save_img", None, True),
    ("minicnn.utils", "load_img", None, True),
    ("minicnn.utils", "img_to_array", None, True),
    ("minicnn.utils", "array_to_img", None, True),
    ("minicnn.utils", "save_img", None, True),
    ("minicnn.utils", "to_categorical", minicnn.to_categorical, True),
    ("minicnn.utils", "normalize", None, True),
    ("minicnn.utils.np_utils", "to_categorical", minicnn.to_categorical, False),
    ("minicnn.utils.np_utils", "normalize", None, False),
    ("minicnn.applications", "VGG16", vgg16.VGG16, True),
    ("minicnn.applications.vgg16", "VGG16", applications.VGG16, True),
    ("minicnn.applications.vgg16", "preprocess_input", applications.preprocess_input, True),
    ("minicnn.datasets.fashion_mnist", "load_data", None, True),
    ("minicnn.datasets.mnist", "load_data", None, True),
    ("minicnn.callbacks", "Callback", minicnn.Callback, True),
    ("minicnn.callbacks", "History", minicnn.History, True),
    ("minicnn.callbacks", "EarlyStopping", minicnn.EarlyStopping, True),
    ("minicnn.callbacks", "ModelCheckpoint", minicnn.ModelCheckpoint, True),
    # models and layers: Keras 3's paths and Keras 2's submodules (aliases)
    ("minicnn.models", "Sequential", minicnn.Sequential, True),
    ("minicnn.models", "load_model", minicnn.load_model, True),
    ("minicnn.models", "Model", None, True),
    ("minicnn.models", "Input", None, False),   # Keras 2's; Keras 3: keras.Input
    ("minicnn.layers", "Input", None, True),
    ("minicnn.layers", "InputLayer", None, True),
    ("minicnn.layers.convolutional", "Conv2D", minicnn.Conv2D, False),
    ("minicnn.layers.convolutional", "Convolution2D", minicnn.Conv2D, False),
    ("minicnn.layers.convolutional", "MaxPooling2D", minicnn.MaxPooling2D, False),
    ("minicnn.layers.convolutional", "ZeroPadding2D", minicnn.ZeroPadding2D, False),
    ("minicnn.layers.core", "Dense", minicnn.Dense, False),
    ("minicnn.layers.core", "Flatten", minicnn.Flatten, False),
    ("minicnn.layers.core", "Dropout", minicnn.Dropout, False),
    ("minicnn.layers.core", "Activation", minicnn.Activation, False),
    ("minicnn.layers.pooling", "MaxPooling2D", minicnn.MaxPooling2D, False),
    ("minicnn.layers.normalization", "BatchNormalization", minicnn.BatchNormalization, False),
    ("minicnn.layers.advanced_activations", "LeakyReLU", minicnn.LeakyReLU, False),
    ("minicnn.layers.advanced_activations", "ReLU", minicnn.ReLU, False),
    # losses, metrics, optimizers, backend
    ("minicnn.losses", "categorical_crossentropy", None, True),
    ("minicnn.losses", "binary_crossentropy", None, True),
    ("minicnn.losses", "mean_squared_error", None, True),
    ("minicnn.losses", "CategoricalCrossentropy", minicnn.CategoricalCrossentropy, True),
    ("minicnn.losses", "BinaryCrossentropy", minicnn.BinaryCrossentropy, True),
    ("minicnn.losses", "MeanSquaredError", None, True),
    ("minicnn.metrics", "binary_accuracy", None, True),
    ("minicnn.metrics", "categorical_accuracy", None, True),
    ("minicnn.metrics", "sparse_categorical_accuracy", None, True),
    ("minicnn.optimizers", "SGD", minicnn.SGD, True),
    ("minicnn.optimizers", "Adam", minicnn.Adam, True),
    ("minicnn.optimizers", "RMSprop", minicnn.RMSprop, True),
    ("minicnn.backend", "image_data_format", None, True),
]


def import_keras():
    """Keras, or a skip (a failure when MINICNN_REQUIRE_KERAS=1, as in CI)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get("MINICNN_REQUIRE_KERAS", "") not in ("", "0"):
        import keras
        return keras
    return pytest.importorskip("keras")


@pytest.mark.parametrize("module, name, expected, in_keras3", PATHS,
                         ids=[f"{m}.{n}" for m, n, _, _ in PATHS])
def test_keras_path_imports_minicnn_object(module, name, expected, in_keras3):
    got = getattr(importlib.import_module(module), name)
    assert callable(got)
    if expected is not None:
        assert got is expected


def test_the_keras_2_layer_submodules_are_attributes_too():
    import minicnn.layers as layers

    assert layers.convolutional.Conv2D is layers.Conv2D
    assert layers.advanced_activations.LeakyReLU is layers.LeakyReLU
    assert layers.core.Activation is layers.Activation
    assert minicnn.backend.image_data_format() == "channels_last"


@pytest.mark.keras
def test_loss_and_accuracy_functions_match_keras():
    keras = import_keras()
    from minicnn import losses, metrics

    rng = np.random.default_rng(3)
    y = np.eye(4)[rng.integers(0, 4, 6)]
    p = rng.dirichlet(np.ones(4), 6)
    for name in ("binary_crossentropy", "categorical_crossentropy", "mean_squared_error"):
        # per-sample losses: a log and a mean over 4 classes, a few float32 roundings
        # each (<= 8 eps = 1e-6 relative)
        np.testing.assert_allclose(getattr(losses, name)(y, p),
                                   np.asarray(getattr(keras.losses, name)(y, p)), rtol=1e-6)
    for name in ("binary_accuracy", "categorical_accuracy"):
        np.testing.assert_array_equal(getattr(metrics, name)(y, p),
                                      np.asarray(getattr(keras.metrics, name)(y, p)))
    labels = y.argmax(axis=1)
    np.testing.assert_array_equal(metrics.sparse_categorical_accuracy(labels, p),
                                  np.asarray(keras.metrics.sparse_categorical_accuracy(labels, p)))


def test_compile_takes_keras_loss_functions_and_classes():
    from minicnn import losses

    for loss in (losses.categorical_crossentropy, losses.CategoricalCrossentropy,
                 losses.CategoricalCrossentropy()):
        model = minicnn.Sequential([minicnn.Dense(3, activation="softmax", input_shape=(2,))])
        model.compile("adam", loss, ["accuracy"])
        assert model.loss.name == "categorical_crossentropy"


def test_image_functions_are_one_set_of_objects():
    from minicnn.preprocessing import image
    from minicnn.utils import array_to_img, img_to_array, load_img, save_img

    assert (load_img, img_to_array, array_to_img, save_img) == \
        (image.load_img, image.img_to_array, image.array_to_img, image.save_img)


def test_the_tutorials_import_lines_run():
    # The import lines of the two tutorials of issue 17 that this part covers, verbatim but
    # for the package name.
    from minicnn import applications as apps
    from minicnn.datasets import fashion_mnist, mnist
    from minicnn.preprocessing.image import (ImageDataGenerator, array_to_img, img_to_array,
                                             load_img)
    from minicnn.utils import np_utils, to_categorical
    from minicnn.utils.np_utils import to_categorical as np_to_categorical

    assert np_to_categorical is to_categorical is np_utils.to_categorical
    assert apps.VGG16 is applications.VGG16
    assert ImageDataGenerator is data.ImageDataGenerator
    assert all(map(callable, (array_to_img, img_to_array, load_img, fashion_mnist.load_data,
                              mnist.load_data)))


def test_subpackages_are_attributes_of_minicnn_as_of_keras():
    # keras.datasets.mnist.load_data() after a plain ``import keras``
    assert minicnn.datasets.fashion_mnist.load_data is \
        importlib.import_module("minicnn.datasets.fashion_mnist").load_data
    assert minicnn.preprocessing.image.ImageDataGenerator is data.ImageDataGenerator
    assert minicnn.applications.VGG16 is vgg16.VGG16
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        minicnn.nothing                                                   # noqa: B018


def test_datasets_use_the_loaders_of_minicnn_data_and_locate():
    from minicnn.datasets import fashion_mnist

    assert fashion_mnist.CLASS_NAMES == data_fashion_mnist.CLASS_NAMES
    assert fashion_mnist.load_fashion_mnist is data.load_fashion_mnist
    assert callbacks.KERAS2_NAMES == {"acc": "accuracy", "val_acc": "val_accuracy"}
    assert locate.MNIST_FILE == "mnist.npz"


@pytest.mark.keras
def test_the_same_paths_exist_in_keras_3():
    keras = import_keras()
    for module, name, _, in_keras3 in PATHS:
        keras_module = module.replace("minicnn", "keras", 1)
        try:
            found = hasattr(importlib.import_module(keras_module), name)
        except ImportError:
            found = False
        assert found == in_keras3, (
            f"{keras_module}.{name}: Keras {keras.__version__} "
            f"{'has' if found else 'lacks'} it, the table says the opposite")


# -- the image functions do what Keras's do ----------------------------------------------

def write_images(folder):
    """Small image files of the modes photos come in: RGB JPEG and PNG, RGBA, grayscale
    8- and 16-bit, and a palette image. Returns their paths."""
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)
    images = {
        "rgb.jpg": Image.fromarray(rgb), "rgb.png": Image.fromarray(rgb),
        "rgba.png": Image.fromarray(rng.integers(0, 256, (13, 17, 4), dtype=np.uint8)),
        "gray.png": Image.fromarray(rgb[..., 0]),
        "gray16.png": Image.fromarray(rng.integers(0, 65536, (13, 17), dtype=np.uint16)),
        "palette.png": Image.fromarray(rgb).convert("P"),
    }
    paths = []
    for name, image in images.items():
        image.save(folder / name)
        paths.append(folder / name)
    return paths


LOAD_ARGUMENTS = [
    {}, {"color_mode": "grayscale"}, {"color_mode": "rgba"},
    {"target_size": (8, 11)}, {"target_size": (20, 9), "interpolation": "bilinear"},
    {"target_size": (6, 6), "interpolation": "bicubic", "keep_aspect_ratio": True},
    {"target_size": (13, 17)},
]


def test_load_img_returns_a_pil_image_of_the_mode_and_size_asked(tmp_path):
    from minicnn.preprocessing.image import img_to_array, load_img

    for path in write_images(tmp_path):
        img = load_img(path, target_size=(8, 11))
        assert img.mode == "RGB" and img.size == (11, 8)       # PIL: width first
        x = img_to_array(img)
        assert x.shape == (8, 11, 3) and x.dtype == np.float32
    gray = img_to_array(load_img(tmp_path / "rgb.png", color_mode="grayscale"))
    assert gray.shape == (13, 17, 1)


def test_load_img_grayscale_keyword_of_keras_2_warns_once(tmp_path, monkeypatch):
    from minicnn.preprocessing import image

    monkeypatch.setattr(image, "_warned_grayscale", False)
    path = write_images(tmp_path)[0]
    with pytest.warns(UserWarning, match=r"Keras 2's name; Keras 3 writes .*color_mode='grayscale'"):
        assert image.load_img(path, grayscale=True).mode == "L"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert image.load_img(path, grayscale=True).mode == "L"


@pytest.mark.parametrize("call, error, match", [
    (lambda image, path: image.load_img(path, color_mode="bgr"), ValueError,
     r"color_mode must be one of \('grayscale', 'rgb', 'rgba'\), got 'bgr'"),
    (lambda image, path: image.load_img(path, target_size=(4, 4), interpolation="cubic"),
     ValueError, r"unknown interpolation 'cubic': expected one of nearest, bilinear"),
    (lambda image, path: image.load_img(3), TypeError, r"path should be a path .* got int"),
    (lambda image, path: image.array_to_img(np.zeros((2, 2))), ValueError,
     r"rank 3 .* got an array of shape \(2, 2\)"),
    (lambda image, path: image.array_to_img(np.zeros((2, 2, 2))), ValueError,
     r"unsupported number of channels 2 \(expected 1, 3 or 4\)"),
    (lambda image, path: image.img_to_array(np.zeros((2, 2, 2, 2))), ValueError,
     r"unsupported image shape \(2, 2, 2, 2\)"),
    (lambda image, path: image.img_to_array(np.zeros((2, 2)), data_format="nhwc"), ValueError,
     r"data_format must be one of \('channels_last', 'channels_first'\)"),
])
def test_image_function_errors_say_what_was_expected(tmp_path, call, error, match):
    from minicnn.preprocessing import image

    with pytest.raises(error, match=match):
        call(image, write_images(tmp_path)[0])


def test_array_to_img_scales_to_0_255_and_leaves_the_input_alone():
    from minicnn.preprocessing.image import array_to_img, img_to_array

    x = np.linspace(-1, 1, 2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    before = x.copy()
    back = img_to_array(array_to_img(x))
    np.testing.assert_array_equal(x, before)
    assert back.min() == 0 and back.max() == 255
    unscaled = img_to_array(array_to_img(np.full((2, 2, 1), 7.9), scale=False))
    np.testing.assert_array_equal(unscaled, np.full((2, 2, 1), 7))   # truncated, as Keras


@pytest.mark.keras
def test_load_img_and_img_to_array_match_keras(tmp_path):
    keras = import_keras()
    from minicnn.preprocessing.image import img_to_array, load_img

    for path in write_images(tmp_path):
        for arguments in LOAD_ARGUMENTS:
            ours, theirs = load_img(path, **arguments), keras.utils.load_img(path, **arguments)
            assert (ours.mode, ours.size) == (theirs.mode, theirs.size), (path.name, arguments)
            for data_format in ("channels_last", "channels_first"):
                a = img_to_array(ours, data_format=data_format)
                b = keras.utils.img_to_array(theirs, data_format=data_format)
                assert a.dtype == b.dtype == np.float32
                np.testing.assert_array_equal(a, b, err_msg=f"{path.name} {arguments}")
        with open(path, "rb") as f:               # an in-memory file too
            data = f.read()
        np.testing.assert_array_equal(img_to_array(load_img(io.BytesIO(data))),
                                      keras.utils.img_to_array(keras.utils.load_img(
                                          io.BytesIO(data))))


@pytest.mark.keras
@pytest.mark.parametrize("shape", [(5, 7, 3), (5, 7, 4), (5, 7, 1)])
@pytest.mark.parametrize("scale", [True, False])
@pytest.mark.parametrize("values", ["unit", "bytes", "standardized", "constant", "wide"])
def test_array_to_img_matches_keras(shape, scale, values):
    keras = import_keras()
    from minicnn.preprocessing.image import array_to_img

    rng = np.random.default_rng(1)
    x = {"unit": lambda: rng.random(shape), "bytes": lambda: rng.integers(0, 256, shape),
         "standardized": lambda: rng.normal(size=shape), "constant": lambda: np.full(shape, 3.0),
         "wide": lambda: rng.uniform(0, 1000, shape)}[values]()
    ours, theirs = array_to_img(x, scale=scale), keras.utils.array_to_img(x, scale=scale)
    assert (ours.mode, ours.size) == (theirs.mode, theirs.size)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


@pytest.mark.keras
def test_save_img_writes_what_keras_writes(tmp_path):
    keras = import_keras()
    from minicnn.preprocessing.image import save_img

    x = np.random.default_rng(2).random((6, 5, 3))
    save_img(tmp_path / "ours.png", x)
    keras.utils.save_img(tmp_path / "theirs.png", x)
    assert (tmp_path / "ours.png").read_bytes() == (tmp_path / "theirs.png").read_bytes()
