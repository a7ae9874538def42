"""Fashion-MNIST's IDX reader and the stratified train/validation split."""
import gzip
import os

import numpy as np
import pytest

from minicnn.data import FASHION_MNIST_CLASS_NAMES, load_fashion_mnist, train_validation_split
from minicnn.data.arrays import to_categorical
from minicnn.data.fashion_mnist import FILES, parse_idx


def _idx_bytes(array, type_code=0x08):
    """The IDX encoding of ``array``: magic 00 00 type ndim, big-endian sizes, values."""
    dtype = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4"}[type_code]
    header = bytes([0, 0, type_code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + np.asarray(array, dtype).tobytes()


def _write_fashion_folder(folder, n_train=12, n_test=5, gz=True):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "y_test": rng.integers(0, 10, n_test, dtype=np.uint8)}
    folder.mkdir(exist_ok=True)
    for key, base in FILES.items():
        data = _idx_bytes(arrays[key])
        if gz:
            (folder / (base + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / base).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_load_fashion_mnist_reads_what_was_written(tmp_path, gz):
    arrays = _write_fashion_folder(tmp_path / "fm", gz=gz)
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(str(tmp_path / "fm"))
    for got, key in ((x_train, "x_train"), (y_train, "y_train"), (x_test, "x_test"),
                     (y_test, "y_test")):
        assert got.dtype == np.uint8 and np.array_equal(got, arrays[key])
    assert x_train.shape == (12, 28, 28) and y_test.shape == (5,)


def test_parse_idx_is_big_endian_and_keeps_other_types():
    values = np.array([[1, -2, 300], [4, 5, -32768]], dtype=np.int16)
    data = _idx_bytes(values, 0x0B)
    assert data[8:12] == b"\x00\x00\x00\x03"                     # sizes are big-endian
    parsed = parse_idx(data)
    assert parsed.shape == (2, 3) and parsed.dtype == np.int16
    assert np.array_equal(parsed, values)
    floats = parse_idx(_idx_bytes(np.array([1.5, -2.25]), 0x0D))
    assert floats.dtype == np.float32 and list(floats) == [1.5, -2.25]


def test_corrupt_headers_give_clear_errors(tmp_path):
    good = _idx_bytes(np.zeros((2, 3, 3), np.uint8))
    with pytest.raises(ValueError, match="magic number"):
        parse_idx(b"\x1f\x00" + good[2:])
    with pytest.raises(ValueError, match="magic number"):
        parse_idx(good[:2] + b"\x42" + good[3:])                   # unknown type byte
    with pytest.raises(ValueError, match=r"shape \(2, 3, 3\).*has 33 bytes"):
        parse_idx(good[:-1])                                       # truncated data
    with pytest.raises(ValueError, match="too short"):
        parse_idx(b"\x00\x00")
    _write_fashion_folder(tmp_path / "fm")
    (tmp_path / "fm" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(ValueError, match="gzip"):
        load_fashion_mnist(str(tmp_path / "fm"))


def test_missing_files_say_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(str(tmp_path / "nowhere"))
    _write_fashion_folder(tmp_path / "fm")
    os.remove(tmp_path / "fm" / "train-labels-idx1-ubyte.gz")
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        load_fashion_mnist(str(tmp_path / "fm"))


def test_mismatched_counts_are_refused(tmp_path):
    _write_fashion_folder(tmp_path / "fm")
    labels = _idx_bytes(np.zeros(4, np.uint8))                     # 4 labels for 5 images
    (tmp_path / "fm" / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))
    with pytest.raises(ValueError, match="test"):
        load_fashion_mnist(str(tmp_path / "fm"))


@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"),
                    reason="dataset-fashion-mnist is not installed")
def test_the_installed_dataset_has_keras_shapes():
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.dtype == np.uint8 and np.bincount(y_train).tolist() == [6000] * 10
    assert len(FASHION_MNIST_CLASS_NAMES) == 10 and FASHION_MNIST_CLASS_NAMES[9] == "Ankle boot"


# -- train_validation_split --------------------------------------------------------------------
def _imbalanced(n_per_class=(50, 30, 20)):
    y = np.concatenate([np.full(n, c) for c, n in enumerate(n_per_class)])
    x = np.arange(len(y) * 2, dtype=np.float32).reshape(len(y), 2)
    return x, y


def test_split_is_a_stratified_partition():
    x, y = _imbalanced()
    (x_train, y_train), (x_val, y_val) = train_validation_split(x, y, 0.2, seed=0)
    assert len(x_val) == 20 and len(x_train) == 80
    assert np.bincount(y_val).tolist() == [10, 6, 4]                 # 20% of every class
    everything = np.concatenate([x_train[:, 0], x_val[:, 0]])
    assert sorted(everything) == sorted(x[:, 0])                     # each sample once
    assert np.array_equal(y_train, y[(x_train[:, 0] / 2).astype(int)])   # x, y stay paired


def test_split_works_with_one_hot_labels_and_rounds_to_the_total():
    x, y = _imbalanced((7, 7, 7))
    (_, y_train), (_, y_val) = train_validation_split(x, to_categorical(y), 0.3, seed=1)
    assert y_val.shape == (6, 3)                                     # round(21 * 0.3) = 6
    assert np.bincount(y_val.argmax(1), minlength=3).tolist() == [2, 2, 2]
    assert y_train.shape == (15, 3)


def test_split_is_seeded():
    x, y = _imbalanced()
    a = train_validation_split(x, y, seed=3)[1][0]
    b = train_validation_split(x, y, seed=3)[1][0]
    c = train_validation_split(x, y, seed=4)[1][0]
    d = train_validation_split(x, y, seed=3, stratify=False)[1][0]
    assert np.array_equal(a, b) and not np.array_equal(a, c) and len(d) == 20


def test_split_rejects_bad_input():
    x, y = _imbalanced()
    with pytest.raises(ValueError, match="in \\(0, 1\\)"):
        train_validation_split(x, y, validation_split=1.0)
    with pytest.raises(ValueError, match="100 samples but y has 99"):
        train_validation_split(x, y[:-1])
