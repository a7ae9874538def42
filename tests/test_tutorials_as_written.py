"""The classic Keras tutorials run as written, with ``keras`` changed to ``minicnn`` in their
imports and nothing else (issue 17), on tiny data made here.

The transcriptions are in tests/tutorials/ (each says what, if anything, it changes beyond
the imports); each runs as a script in a subprocess, in a fresh folder, as a learner
would run it, and must finish and leave the files the tutorial writes.
"""
import gzip
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minicnn.data import organize_kaggle_split
from minicnn.data.fashion_mnist import FILES

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = Path(__file__).resolve().parent / "tutorials"
VGG16_NOTOP = ROOT.parent / "shared" / "data" / "vgg16" / "vgg16_imagenet_notop.h5"


def run_script(script, cwd, env=None, timeout=300):
    """Run ``script`` (its text) with Python in ``cwd``; returns its stdout."""
    (cwd / "tutorial.py").write_text(script)
    environment = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT),
                   "PYTHONWARNINGS": "ignore", **(env or {})}
    result = subprocess.run([sys.executable, "tutorial.py"], cwd=cwd, env=environment,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"the tutorial failed:\n{result.stdout[-3000:]}\n" \
                                   f"{result.stderr[-5000:]}"
    return result.stdout


# -- the Keras blog's cats and dogs ------------------------------------------------------

def kaggle_folder(folder, per_class=6):
    """Kaggle's layout in miniature: cat.N.jpg and dog.N.jpg, cats reddish, dogs bluish."""
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    for animal, channel in (("cat", 0), ("dog", 2)):
        for n in range(per_class):
            pixels = rng.integers(0, 120, (90, 120, 3), dtype=np.uint8)
            pixels[..., channel] += 120
            Image.fromarray(pixels).save(folder / f"{animal}.{n}.jpg")
    return folder


@pytest.fixture
def cats_dogs(tmp_path):
    """tmp_path/data/{train,validation}/{cats,dogs}, 4 + 4 and 2 + 2 images, made by
    minicnn's organize_kaggle_split as the tutorial's readers made theirs by hand."""
    counts = organize_kaggle_split(kaggle_folder(tmp_path / "kaggle"), tmp_path / "data",
                                   n=12, ratio=1 / 3, link="copy")
    assert counts["train"] == {"cats": 4, "dogs": 4}
    assert counts["validation"] == {"cats": 2, "dogs": 2}
    return tmp_path


KERAS2_IMPORTS = {   # the same tutorial with Keras 2's module paths
    "from minicnn.layers import Conv2D, MaxPooling2D":
        "from minicnn.layers.convolutional import Conv2D, MaxPooling2D",
    "from minicnn.layers import Activation, Dropout, Flatten, Dense":
        "from minicnn.layers.core import Activation, Dropout, Flatten, Dense",
}


@pytest.mark.parametrize("paths", ["layers", "keras2-submodules"])
def test_cats_dogs_scratch_convnet_runs_as_written(cats_dogs, paths):
    script = (TUTORIALS / "cats_dogs_scratch.py").read_text()
    if paths == "keras2-submodules":
        for line, keras2_line in KERAS2_IMPORTS.items():
            assert line in script
            script = script.replace(line, keras2_line)
    out = run_script(script, cats_dogs)
    assert "(None, 1)" in out                           # model.output_shape, Keras's form
    assert "8 batch losses" in out                      # 2 epochs x 4 steps, by LossHistory
    for name in ("first_try.h5", "first_try_model.h5", "accuracy.png", "batch_losses.png"):
        assert (cats_dogs / name).stat().st_size > 0, name

    import minicnn

    model = minicnn.load_model(cats_dogs / "first_try_model.h5")
    assert model.output_shape == (None, 1)
    model.load_weights(cats_dogs / "first_try.h5")


def test_cats_dogs_vgg16_bottleneck_features_run_as_written(cats_dogs):
    if not VGG16_NOTOP.is_file():
        pytest.skip(f"no VGG16 ImageNet weights at {VGG16_NOTOP} (the shared data folder "
                    "beside the repository): VGG16(weights='imagenet') needs Keras's file")
    script = (TUTORIALS / "cats_dogs_bottleneck.py").read_text()
    run_script(script, cats_dogs, env={"MINICNN_VGG16_WEIGHTS": str(VGG16_NOTOP)})
    train = np.load(cats_dogs / "bottleneck_features_train.npy")
    validation = np.load(cats_dogs / "bottleneck_features_validation.npy")
    assert train.shape == (8, 4, 4, 512) and validation.shape == (4, 4, 4, 512)
    assert np.isfinite(train).all() and train.max() > 0
    assert (cats_dogs / "bottleneck_fc_model.h5").stat().st_size > 0


# -- DataCamp's Fashion-MNIST ------------------------------------------------------------

def write_fashion_mnist(folder, train=60, test=20):
    """The four gzipped IDX files, tiny: every class in both parts, images that differ by
    class (a bright band whose row is the label)."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("test", test)):
        labels = np.arange(n, dtype=np.uint8) % 10
        images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
        for image, label in zip(images, labels):
            image[2 + 2 * label:4 + 2 * label] = 250
        for key, array in (("x_" + split, images), ("y_" + split, labels)):
            header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
            (folder / (FILES[key] + ".gz")).write_bytes(gzip.compress(header + array.tobytes()))
    return folder


# Without scikit-learn, the tutorial's two sklearn imports become minicnn's equivalents
# (the only lines changed beyond keras -> minicnn); train_test_split is sklearn's call
# written over minicnn.data.train_validation_split.
SKLEARN_STANDINS = {
    "train_test_split": (
        "from minicnn.data import train_validation_split  # sklearn is not installed\n"
        "def train_test_split(x, y, test_size, random_state):\n"
        "    (x_train, y_train), (x_test, y_test) = train_validation_split(\n"
        "        x, y, test_size, seed=random_state)\n"
        "    return x_train, x_test, y_train, y_test\n"),
    "classification_report": "from minicnn.metrics import classification_report  "
                             "# sklearn is not installed\n",
}


def test_fashion_mnist_tutorial_runs_as_written(tmp_path):
    script = (TUTORIALS / "fashion_mnist_datacamp.py").read_text()
    if importlib.util.find_spec("sklearn") is None:
        lines = script.splitlines(keepends=True)
        for i, line in enumerate(lines):
            if "# SKLEARN " in line:
                lines[i] = SKLEARN_STANDINS[line.split("# SKLEARN ")[1].strip()]
        script = "".join(lines)
    data = write_fashion_mnist(tmp_path / "fashion")
    out = run_script(script, tmp_path, env={"MINICNN_FASHION_MNIST": str(data)})
    assert "Training data shape :  (60, 28, 28) (60,)" in out
    assert "Test accuracy:" in out and "Found" in out and "correct labels" in out
    assert "Class 9" in out and "weighted avg" in out            # the classification report
    assert (tmp_path / "fashion_model_dropout.h5py").stat().st_size > 0

    import minicnn

    model = minicnn.load_model(tmp_path / "fashion_model_dropout.h5py")
    assert model.output_shape == (None, 10)
