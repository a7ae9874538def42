"""minicnn.locate: data and weights are found by argument, then variable, then Keras's folders."""
import os

import pytest

from minicnn import locate


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty home folder and no minicnn or Keras variables."""
    for variable in (locate.DATA_VARIABLE, locate.VGG16_WEIGHTS_VARIABLE,
                     locate.FASHION_MNIST_VARIABLE, "KERAS_HOME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_fashion_mnist_from_argument_variable_then_keras_datasets(home, tmp_path, monkeypatch):
    monkeypatch.setattr(locate, "FASHION_MNIST_PACKAGE_FOLDER", str(tmp_path / "no-package"))
    assert locate.find_fashion_mnist() is None
    keras = home / ".keras" / "datasets" / "fashion-mnist"
    keras.mkdir(parents=True)
    assert locate.find_fashion_mnist() == (str(keras),
                                           os.path.join("~", ".keras", "datasets", "fashion-mnist"))
    monkeypatch.setenv(locate.FASHION_MNIST_VARIABLE, str(tmp_path / "idx"))
    assert locate.find_fashion_mnist() == (str(tmp_path / "idx"), "$MINICNN_FASHION_MNIST")
    assert locate.find_fashion_mnist(str(keras))[0] == str(keras)


def test_kaggle_photos_named_but_missing_say_where_they_came_from(home, tmp_path, monkeypatch):
    assert locate.find_kaggle_photos() is None
    monkeypatch.setenv(locate.DATA_VARIABLE, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"from \$MINICNN_DATA.*kaggle.com"):
        locate.find_kaggle_photos()
    (tmp_path / "train").mkdir()
    assert locate.find_kaggle_photos(str(tmp_path / "train"))[0] == str(tmp_path / "train")


def test_portable_path_names_no_machine_folder(home, tmp_path, monkeypatch):
    work = tmp_path / "deep" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    assert locate.portable_path(work / "a" / "b.h5") == os.path.join("a", "b.h5")
    assert locate.portable_path(tmp_path / "deep" / "shared") == os.path.join("..", "shared")
    assert locate.portable_path(home / "x") == os.path.join("~", "x")      # two levels up
