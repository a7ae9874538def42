"""The examples never overwrite what is committed.

Each example runs here as a user runs it, ``python examples/<name>.py`` from the
repository root with its default output options, on tiny generated data: it must
write into a new ``runs/<name>-<date>-<time>`` folder (git ignores runs/) and leave
``git status`` as it was. An existing non-empty --output is refused unless --force,
and missing data or weights are reported in one line, not a traceback.
"""
import gzip
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from checkout import REPO, git_status

RUNS = REPO / "runs"
# CI puts the shared data beside the clone; MINICNN_VGG16_WEIGHTS overrides it.
SHARED_DATA = REPO.parent / "shared" / "data"
KERAS_WEIGHTS_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"


def find_vgg16_weights():
    candidates = [os.environ.get("MINICNN_VGG16_WEIGHTS"),
                  SHARED_DATA / "vgg16" / "vgg16_imagenet_notop.h5",
                  Path("~/.keras/models").expanduser() / KERAS_WEIGHTS_FILE]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


# -- tiny data ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Kaggle's layout in miniature: cat.N.png and dog.N.png, five of each."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("kaggle") / "train"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for animal, shade in (("cat", 60), ("dog", 190)):
        for i in range(5):
            pixels = np.clip(rng.normal(shade, 30, (40, 48, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{animal}.{i}.png")
    return folder


def write_idx_gz(path, array):
    """A gzipped IDX file: 0x00 0x00, type 0x08 (uint8), ndim, big-endian sizes, data."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    """Fashion-MNIST in miniature: 4 training and 2 test images per class."""
    folder = tmp_path_factory.mktemp("fashion")
    rng = np.random.default_rng(0)
    for split, per_class in (("train", 4), ("t10k", 2)):
        labels = np.repeat(np.arange(10), per_class)
        write_idx_gz(folder / f"{split}-images-idx3-ubyte.gz",
                     rng.integers(0, 256, (len(labels), 28, 28)))
        write_idx_gz(folder / f"{split}-labels-idx1-ubyte.gz", labels)
    return folder


# -- running an example as a user does ------------------------------------------------------
def run_example(name, *args, env=None):
    """``python examples/<name>.py ARGS`` in the repository root; the finished process."""
    environment = {**os.environ, "MPLBACKEND": "Agg", **(env or {})}
    environment.pop("MINICNN_DATA", None)           # the data comes from the arguments
    return subprocess.run([sys.executable, str(REPO / "examples" / f"{name}.py"), *map(str, args)],
                          cwd=REPO, env=environment, capture_output=True, text=True, timeout=600)


EXAMPLES = ("cats_dogs_scratch", "fashion_mnist", "cats_dogs_vgg16")


def example_run_folders():
    """The examples' default run folders in runs/ (others there are not ours to touch)."""
    names = os.listdir(RUNS) if RUNS.is_dir() else []
    return {name for name in names if name.startswith(tuple(f"{e}-" for e in EXAMPLES))}


@pytest.fixture
def new_run_folders():
    """A function listing the examples' run folders the test added to runs/; those
    are removed afterwards, and nothing else."""
    before = example_run_folders()
    yield lambda: sorted(example_run_folders() - before)
    for name in example_run_folders() - before:
        shutil.rmtree(RUNS / name, ignore_errors=True)


def small_run(name, photos, fashion, tmp_path):
    """Arguments for a run of a few seconds (data, sizes; never an output option) and
    files the run folder must then hold."""
    if name == "cats_dogs_scratch":
        return (["--data", photos, "--n", 8, "--epochs", 1, "--image-size", 32,
                 "--batch-size", 4], ["model.h5", "results.json"])
    if name == "fashion_mnist":
        return (["--data", fashion, "--epochs", 1, "--baseline-epochs", 1, "--batch-size", 16,
                 "--verbose", 0], ["results.json", "classification_report.txt"])
    weights = find_vgg16_weights()
    if weights is None:
        pytest.skip("no VGG16 weights: set MINICNN_VGG16_WEIGHTS or provide "
                    "../shared/data/vgg16/vgg16_imagenet_notop.h5 beside the clone")
    # Its split of the photos and its feature cache are scratch, not results: kept out of runs/.
    return (["--data", photos, "--weights", weights, "--n", 8, "--epochs", 1, "--batch-size", 4,
             "--work", tmp_path / "work", "--cache", tmp_path / "cache"],
            ["results.json", "history_caffe_lr0.0001.json"])


@pytest.mark.parametrize("name", EXAMPLES)
def test_default_output_is_a_new_ignored_run_folder(name, photos, fashion, tmp_path,
                                                    new_run_folders):
    args, expected = small_run(name, photos, fashion, tmp_path)
    status = git_status()
    if status is None:
        pytest.skip(f"{REPO} is not a git checkout (or git is missing)")
    done = run_example(name, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert git_status() == status                       # nothing committed was touched
    added = new_run_folders()
    assert len(added) == 1 and added[0].startswith(f"{name}-"), added
    for file in expected:
        assert (RUNS / added[0] / file).is_file(), file


@pytest.mark.parametrize("name", EXAMPLES)
def test_existing_output_is_refused_without_force(name, photos, fashion, tmp_path,
                                                  new_run_folders):
    output = tmp_path / "earlier_run"
    output.mkdir()
    (output / "results.json").write_text('{"best": 0.9}')
    data = {"cats_dogs_scratch": ["--data", photos], "fashion_mnist": ["--data", fashion],
            # Refused before the weights are read: any existing file will do.
            "cats_dogs_vgg16": ["--data", photos, "--weights", output / "results.json"]}[name]
    done = run_example(name, *data, "--output", output)
    assert done.returncode != 0
    assert "--force" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert (output / "results.json").read_text() == '{"best": 0.9}'
    assert os.listdir(output) == ["results.json"]
    assert new_run_folders() == []


def test_force_writes_into_an_existing_output(photos, tmp_path):
    output = tmp_path / "earlier_run"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    done = run_example("cats_dogs_scratch", "--data", photos, "--n", 8, "--epochs", 1,
                       "--image-size", 32, "--batch-size", 4, "--output", output, "--force")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (output / "results.json").is_file()
    assert (output / "notes.txt").read_text() == "mine"     # only same-named files replaced


def one_line_error(done):
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_missing_photos_or_weights_are_one_line_saying_how_to_get_them(photos, tmp_path,
                                                                       new_run_folders):
    line = one_line_error(run_example("cats_dogs_vgg16"))
    assert "--data" in line and "MINICNN_DATA" in line and "kaggle.com" in line
    # Photos but no weights anywhere (an empty home, no KERAS_HOME): say where they go.
    weights_env = {"HOME": str(tmp_path), "KERAS_HOME": "", "MINICNN_VGG16_WEIGHTS": ""}
    line = one_line_error(run_example("cats_dogs_vgg16", "--data", photos, env=weights_env))
    assert "--weights" in line and "MINICNN_VGG16_WEIGHTS" in line
    assert "~/.keras/models" in line and KERAS_WEIGHTS_FILE in line
    assert new_run_folders() == []                      # nothing created for a failed start


def test_missing_fashion_mnist_is_one_line_saying_how_to_get_it(tmp_path, new_run_folders):
    line = one_line_error(run_example("fashion_mnist", "--data", tmp_path / "missing"))
    assert "--data" in line and "MINICNN_FASHION_MNIST" in line
    assert "apt-get install dataset-fashion-mnist" in line and "/usr/share/datasets" in line
    assert new_run_folders() == []


def load_example(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{name}_example",
                                                  REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vgg16_weights_from_option_variable_then_keras_folders(tmp_path, monkeypatch):
    example = load_example("cats_dogs_vgg16")
    monkeypatch.delenv("MINICNN_VGG16_WEIGHTS", raising=False)
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(FileNotFoundError, match="~/.keras/models"):
        example.find_weights(None)
    in_home = tmp_path / "home" / ".keras" / "models" / KERAS_WEIGHTS_FILE
    in_keras_home = tmp_path / "keras" / "models" / KERAS_WEIGHTS_FILE
    for file in (in_home, in_keras_home):
        file.parent.mkdir(parents=True)
        file.write_bytes(b"")
    # Results name where the file was found, never this machine's folders.
    assert example.find_weights(None) == (str(in_home), f"~/.keras/models/{KERAS_WEIGHTS_FILE}")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert example.find_weights(None) == (str(in_keras_home),
                                          f"$KERAS_HOME/models/{KERAS_WEIGHTS_FILE}")
    monkeypatch.setenv("MINICNN_VGG16_WEIGHTS", str(in_home))
    assert example.find_weights(None) == (str(in_home), "$MINICNN_VGG16_WEIGHTS")
    monkeypatch.chdir(tmp_path)
    assert example.find_weights(str(in_keras_home))[1] == f"keras/models/{KERAS_WEIGHTS_FILE}"
    with pytest.raises(FileNotFoundError, match="--weights"):
        example.find_weights(str(tmp_path / "missing.h5"))


def test_vgg16_training_set_joins_the_photos_and_their_copies():
    """Photos first, then copy 1, copy 2; block4 (fine-tuning's input) joined only when
    asked, so a run without fine-tuning does not hold it all in memory."""
    example = load_example("cats_dogs_vgg16")
    def part(value, n=2):
        return (np.full((n, 3, 3, 4), value, np.float32), np.full((n, 2), value, np.float32),
                np.full(n, value, np.float32), {"images": n, "from": value})
    features = {"train": part(0), "validation": part(9), "train_augmented_1": part(1),
                "train_augmented_2": part(2)}
    block4, block5, labels, info = example.training_set(features, 2)
    assert block4 is None and info == {"images": 2, "from": 0}
    np.testing.assert_array_equal(labels, [0, 0, 1, 1, 2, 2])
    assert block5.shape == (6, 2) and block5[:, 0].tolist() == [0, 0, 1, 1, 2, 2]
    block4, _, _, _ = example.training_set(features, 1, block4=True)
    assert block4.shape == (4, 3, 3, 4) and block4[:, 0, 0, 0].tolist() == [0, 0, 1, 1]
