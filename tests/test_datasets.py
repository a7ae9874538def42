"""minicnn.datasets: Fashion-MNIST and MNIST as Keras's ``load_data()`` returns them, found
where minicnn.locate looks (variable, Debian package, Keras's folders), never downloaded.

The files are tiny ones written here (a few 28x28 images in Keras's own formats: the four
gzipped IDX files of Fashion-MNIST, MNIST's ``mnist.npz``); a fake home folder and
monkeypatched variables stand in for the machine's. Where Keras is installed, its own
``load_data`` reads the same files (its download step pointed at them) and must give the
same arrays.
"""
import gzip
import os

import numpy as np
import pytest

from minicnn import locate
from minicnn.data.fashion_mnist import FILES
from minicnn.datasets import fashion_mnist, mnist

SPLITS = {"train": 5, "test": 3}


def tiny_arrays(seed=0):
    """``{x_train, y_train, x_test, y_test}``: uint8 images (N, 28, 28), labels in 0..9."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in SPLITS.items():
        arrays["x_" + split] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays["y_" + split] = rng.integers(0, 10, n, dtype=np.uint8)
    return arrays


def idx_bytes(array):
    """The IDX encoding of a uint8 array: magic 00 00 08 ndim, big-endian sizes, values."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.tobytes()


def write_idx_folder(folder, arrays, gzipped=True):
    """The four IDX files of ``arrays`` in ``folder``, under their standard names."""
    folder.mkdir(parents=True, exist_ok=True)
    for key, base in FILES.items():
        data = idx_bytes(arrays[key])
        if gzipped:
            (folder / (base + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / base).write_bytes(data)
    return folder


def write_npz(path, arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def assert_keras_arrays(loaded, arrays):
    """``loaded`` is ``(x_train, y_train), (x_test, y_test)`` holding ``arrays``, uint8."""
    (x_train, y_train), (x_test, y_test) = loaded
    for key, got in zip(("x_train", "y_train", "x_test", "y_test"),
                        (x_train, y_train, x_test, y_test)):
        assert got.dtype == np.uint8, key
        assert got.shape == arrays[key].shape, key
        np.testing.assert_array_equal(got, arrays[key], err_msg=key)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty home folder, no minicnn or Keras variables, no Debian package folder."""
    for variable in (locate.FASHION_MNIST_VARIABLE, locate.MNIST_VARIABLE, "KERAS_HOME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(locate, "FASHION_MNIST_PACKAGE_FOLDER", str(tmp_path / "no-package"))
    return tmp_path / "home"


def import_keras():
    """Keras, or a skip (a failure when MINICNN_REQUIRE_KERAS=1, as in CI)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get("MINICNN_REQUIRE_KERAS", "") not in ("", "0"):
        import keras
        return keras
    return pytest.importorskip("keras")


# -- Fashion-MNIST ---------------------------------------------------------------------


def test_fashion_mnist_from_keras_download_folder(home):
    arrays = tiny_arrays()
    write_idx_folder(home / ".keras" / "datasets" / "fashion-mnist", arrays)
    assert_keras_arrays(fashion_mnist.load_data(), arrays)


def test_fashion_mnist_variable_comes_before_keras_folders(home, tmp_path, monkeypatch):
    write_idx_folder(home / ".keras" / "datasets" / "fashion-mnist", tiny_arrays(0))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    write_idx_folder(tmp_path / "keras-home" / "datasets" / "fashion-mnist", tiny_arrays(1))
    assert_keras_arrays(fashion_mnist.load_data(), tiny_arrays(1))      # $KERAS_HOME first
    monkeypatch.setenv(locate.FASHION_MNIST_VARIABLE,
                       str(write_idx_folder(tmp_path / "idx", tiny_arrays(2), gzipped=False)))
    assert_keras_arrays(fashion_mnist.load_data(), tiny_arrays(2))      # then the variable


def test_fashion_mnist_debian_package_folder_comes_before_keras(home, tmp_path, monkeypatch):
    write_idx_folder(home / ".keras" / "datasets" / "fashion-mnist", tiny_arrays(0))
    package = write_idx_folder(tmp_path / "usr-share", tiny_arrays(3))
    monkeypatch.setattr(locate, "FASHION_MNIST_PACKAGE_FOLDER", str(package))
    assert_keras_arrays(fashion_mnist.load_data(), tiny_arrays(3))


def test_fashion_mnist_absent_says_how_to_get_it_in_one_line(home):
    with pytest.raises(FileNotFoundError) as error:
        fashion_mnist.load_data()
    message = str(error.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "$MINICNN_FASHION_MNIST" in message and "\n" not in message


def test_fashion_mnist_variable_naming_nothing_says_so(home, tmp_path, monkeypatch):
    monkeypatch.setenv(locate.FASHION_MNIST_VARIABLE, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"'.*nowhere' \(from \$MINICNN_FASHION_MNIST\)"):
        fashion_mnist.load_data()


@pytest.mark.keras
def test_fashion_mnist_matches_keras_on_the_same_files(home, tmp_path, monkeypatch):
    keras = import_keras()
    from keras.src.datasets import fashion_mnist as keras_fashion_mnist

    arrays = tiny_arrays(4)
    folder = write_idx_folder(tmp_path / "idx", arrays)
    monkeypatch.setenv(locate.FASHION_MNIST_VARIABLE, str(folder))
    # Keras's own reading code, its download step replaced by the files written here.
    monkeypatch.setattr(keras_fashion_mnist, "get_file",
                        lambda fname, **_: str(folder / fname))
    reference = keras.datasets.fashion_mnist.load_data()
    assert_keras_arrays(reference, arrays)          # the stand-in really was used
    assert_keras_arrays(fashion_mnist.load_data(), arrays)


# -- MNIST -----------------------------------------------------------------------------


def test_mnist_from_keras_download(home):
    arrays = tiny_arrays(5)
    write_npz(home / ".keras" / "datasets" / "mnist.npz", arrays)
    assert_keras_arrays(mnist.load_data(), arrays)


def test_mnist_keras_home_then_variable(home, tmp_path, monkeypatch):
    write_npz(home / ".keras" / "datasets" / "mnist.npz", tiny_arrays(0))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    write_npz(tmp_path / "keras-home" / "datasets" / "mnist.npz", tiny_arrays(1))
    assert_keras_arrays(mnist.load_data(), tiny_arrays(1))
    monkeypatch.setenv(locate.MNIST_VARIABLE, str(write_npz(tmp_path / "m.npz", tiny_arrays(2))))
    assert_keras_arrays(mnist.load_data(), tiny_arrays(2))


@pytest.mark.parametrize("layout", ["npz-in-folder", "idx-gz", "idx"])
def test_mnist_variable_may_name_a_folder(home, tmp_path, monkeypatch, layout):
    arrays = tiny_arrays(6)
    folder = tmp_path / "mnist"
    if layout == "npz-in-folder":
        write_npz(folder / "mnist.npz", arrays)
    else:
        write_idx_folder(folder, arrays, gzipped=layout == "idx-gz")
    monkeypatch.setenv(locate.MNIST_VARIABLE, str(folder))
    assert_keras_arrays(mnist.load_data(), arrays)


def test_mnist_path_argument_is_a_name_in_keras_datasets_folder(home):
    # keras.datasets.mnist.load_data(path="mnist-copy.npz"): relative to ~/.keras/datasets
    arrays = tiny_arrays(7)
    write_npz(home / ".keras" / "datasets" / "mnist-copy.npz", arrays)
    assert_keras_arrays(mnist.load_data("mnist-copy.npz"), arrays)
    with pytest.raises(FileNotFoundError):
        mnist.load_data()                           # mnist.npz itself is not there


def test_mnist_absent_says_how_to_get_it_in_one_line(home):
    with pytest.raises(FileNotFoundError) as error:
        mnist.load_data()
    message = str(error.value)
    assert "~/.keras/datasets/" in message and "$MINICNN_MNIST" in message
    assert "mnist.npz" in message and "\n" not in message


def test_mnist_variable_naming_nothing_says_so(home, tmp_path, monkeypatch):
    monkeypatch.setenv(locate.MNIST_VARIABLE, str(tmp_path / "nowhere.npz"))
    with pytest.raises(FileNotFoundError, match=r"nowhere.npz' \(from \$MINICNN_MNIST\)"):
        mnist.load_data()


def test_mnist_folder_without_the_files_names_them(home, tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv(locate.MNIST_VARIABLE, str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match=r"neither mnist.npz nor train-images-idx3-ubyte"):
        mnist.load_data()


def test_mnist_npz_missing_an_array_is_named(home, tmp_path, monkeypatch):
    arrays = tiny_arrays()
    del arrays["y_test"]
    monkeypatch.setenv(locate.MNIST_VARIABLE, str(write_npz(tmp_path / "m.npz", arrays)))
    with pytest.raises(ValueError, match=r"lacks the arrays \['y_test'\]"):
        mnist.load_data()


def test_mnist_npz_with_mismatched_lengths_is_refused(home, tmp_path, monkeypatch):
    arrays = tiny_arrays()
    arrays["y_train"] = arrays["y_train"][:-1]
    monkeypatch.setenv(locate.MNIST_VARIABLE, str(write_npz(tmp_path / "m.npz", arrays)))
    with pytest.raises(ValueError, match=r"MNIST train .* expected images \(N, 28, 28\)"):
        mnist.load_data()


@pytest.mark.keras
def test_mnist_matches_keras_on_the_same_file(home, tmp_path, monkeypatch):
    keras = import_keras()
    from keras.src.datasets import mnist as keras_mnist

    arrays = tiny_arrays(8)
    path = write_npz(tmp_path / "mnist.npz", arrays)
    monkeypatch.setenv(locate.MNIST_VARIABLE, str(path))
    monkeypatch.setattr(keras_mnist, "get_file", lambda fname, **_: str(path))
    reference = keras.datasets.mnist.load_data()
    assert_keras_arrays(reference, arrays)
    assert_keras_arrays(mnist.load_data(), arrays)
