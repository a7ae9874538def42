"""Where minicnn finds the data and weights a user already has. It never downloads.

Each input is looked for, in this order: the path given (an argument or a command-line
option), an environment variable, then the folders where Keras keeps what it downloads
(``$KERAS_HOME``, else ``~/.keras``), under Keras's own file names, so a machine that
has run the Keras tutorials once already has everything:

    Kaggle's cats/dogs train/   path   $MINICNN_DATA
    VGG16 notop weights (.h5)   path   $MINICNN_VGG16_WEIGHTS   $KERAS_HOME/models/, ~/.keras/models/
    Fashion-MNIST IDX files     path   $MINICNN_FASHION_MNIST   /usr/share/datasets/fashion-mnist/
                                                                (apt-get install dataset-fashion-mnist),
                                                                $KERAS_HOME/datasets/fashion-mnist/,
                                                                ~/.keras/datasets/fashion-mnist/
    MNIST (mnist.npz or IDX)    path   $MINICNN_MNIST           $KERAS_HOME/datasets/mnist.npz,
                                                                ~/.keras/datasets/mnist.npz

The ``find_*`` functions return ``(path, name)``: where the thing is, and how a result
file may record it without naming this machine (``$MINICNN_DATA``, ``~/.keras/...``,
``../shared/...``: :func:`portable_path`).
"""
from __future__ import annotations

import os

DATA_VARIABLE = "MINICNN_DATA"
VGG16_WEIGHTS_VARIABLE = "MINICNN_VGG16_WEIGHTS"
FASHION_MNIST_VARIABLE = "MINICNN_FASHION_MNIST"
MNIST_VARIABLE = "MINICNN_MNIST"

VGG16_NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG16_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
             + VGG16_NOTOP_FILE)
FASHION_MNIST_PACKAGE_FOLDER = "/usr/share/datasets/fashion-mnist/"
# The file keras.datasets.mnist.load_data() downloads into ~/.keras/datasets/. Debian has
# no MNIST package (only dataset-fashion-mnist), so there is no system folder to look in.
MNIST_FILE = "mnist.npz"
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/" + MNIST_FILE

DATA_HELP = ("get the photos from https://www.kaggle.com/c/dogs-vs-cats/data (train.zip), "
             f"unzip it and pass the train/ folder with --data or ${DATA_VARIABLE}")
VGG16_WEIGHTS_HELP = (f"download {VGG16_URL} into ~/.keras/models/ (what "
                      "keras.applications.VGG16(include_top=False) does), or pass the file "
                      f"with --weights or ${VGG16_WEIGHTS_VARIABLE}")
FASHION_MNIST_HELP = ("install it with: apt-get install dataset-fashion-mnist (into "
                      f"{FASHION_MNIST_PACKAGE_FOLDER}), or pass the folder of the four IDX "
                      f"files with --data or ${FASHION_MNIST_VARIABLE}; "
                      "keras.datasets.fashion_mnist.load_data() leaves them in "
                      "~/.keras/datasets/fashion-mnist/ too")
MNIST_HELP = (f"download {MNIST_URL} into ~/.keras/datasets/ (what "
              "keras.datasets.mnist.load_data() does), or name the mnist.npz file, or a folder "
              f"holding it or the four IDX files, with ${MNIST_VARIABLE}")


def portable_path(path) -> str:
    """``path`` as a result file may record it without naming this machine: relative to
    the current folder when it lies inside it or beside it (``../shared/...``),
    ``~/...`` inside the home folder, otherwise as it is (``/usr/share/...``)."""
    path = os.path.abspath(os.fspath(path))
    relative = os.path.relpath(path, os.getcwd())
    if not relative.startswith(os.path.join(os.pardir, os.pardir)):
        return relative
    home = os.path.expanduser("~")
    if path.startswith(home.rstrip(os.sep) + os.sep):
        return os.path.join("~", os.path.relpath(path, home))
    return path


def keras_cache(relative) -> list[tuple[str, str]]:
    """``(path, name)`` of ``relative`` in Keras's folders: $KERAS_HOME, then ~/.keras."""
    places = []
    if os.environ.get("KERAS_HOME"):
        places.append((os.path.join(os.environ["KERAS_HOME"], relative),
                       os.path.join("$KERAS_HOME", relative)))
    places.append((os.path.join(os.path.expanduser("~"), ".keras", relative),
                   os.path.join("~", ".keras", relative)))
    return places


def find(given, variable, places=(), exists=os.path.exists):
    """``(path, name)`` of the first of: ``given``, ``$variable``, the ``(path, name)``
    places that ``exists``; None when there is none. A path given or named by the
    variable is taken as it is (the caller reports it when it is missing)."""
    if given:
        return os.fspath(given), portable_path(given)
    if os.environ.get(variable):
        return os.environ[variable], "$" + variable
    return next(((path, name) for path, name in places if exists(path)), None)


def _named(found):
    """``'PATH'``, and where it came from when an environment variable named it."""
    path, name = found
    return f"{path!r} (from {name})" if name.startswith("$") else repr(path)


def find_kaggle_photos(data=None):
    """Kaggle's cats/dogs ``train/`` folder (or a split of it): ``--data``, else
    $MINICNN_DATA; None when neither is given. A folder given but missing is an error."""
    found = find(data, DATA_VARIABLE)
    if found and not os.path.isdir(found[0]):
        raise FileNotFoundError(f"data folder {_named(found)} does not exist; {DATA_HELP}")
    return found


def find_vgg16_weights(weights=None):
    """The VGG16 ImageNet "notop" weight file: ``weights``, else $MINICNN_VGG16_WEIGHTS,
    else Keras's download in $KERAS_HOME/models or ~/.keras/models; None when there is
    none anywhere. A file given but missing is an error."""
    found = find(weights, VGG16_WEIGHTS_VARIABLE,
                 keras_cache(os.path.join("models", VGG16_NOTOP_FILE)), os.path.isfile)
    if found and not os.path.isfile(found[0]):
        raise FileNotFoundError(f"no VGG16 weight file {_named(found)}; {VGG16_WEIGHTS_HELP}")
    return found


def find_fashion_mnist(data=None):
    """The folder of the Fashion-MNIST IDX files: ``data``, else $MINICNN_FASHION_MNIST,
    else the Debian package's folder, else Keras's download folder; None when none
    exists."""
    places = [(FASHION_MNIST_PACKAGE_FOLDER, FASHION_MNIST_PACKAGE_FOLDER),
              *keras_cache(os.path.join("datasets", "fashion-mnist"))]
    return find(data, FASHION_MNIST_VARIABLE, places, os.path.isdir)


def find_mnist(data=None, file_name=MNIST_FILE):
    """MNIST: ``data``, else $MINICNN_MNIST (an ``.npz`` file, or a folder holding
    ``mnist.npz`` or the four IDX files), else Keras's download ``file_name`` in
    $KERAS_HOME/datasets or ~/.keras/datasets; None when none exists."""
    return find(data, MNIST_VARIABLE, keras_cache(os.path.join("datasets", file_name)),
                os.path.isfile)
