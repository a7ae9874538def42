"""Fashion-MNIST as ``keras.datasets.fashion_mnist.load_data()`` returns it.

The four IDX files are found by :func:`minicnn.locate.find_fashion_mnist`:
$MINICNN_FASHION_MNIST, the Debian package's folder (``apt-get install
dataset-fashion-mnist``), then Keras's download folder (``$KERAS_HOME`` or
``~/.keras``, ``datasets/fashion-mnist/``). Classes: :data:`CLASS_NAMES`.
"""
from __future__ import annotations

import os

from .. import locate
from ..data.fashion_mnist import CLASS_NAMES, load_fashion_mnist


def load_data():
    """``(x_train, y_train), (x_test, y_test)``: uint8 images (N, 28, 28) and uint8
    labels (N,) in 0..9, 60,000 for training and 10,000 for testing. Raises
    FileNotFoundError, with how to get the files, when they are nowhere."""
    found = locate.find_fashion_mnist()
    if found is None:
        raise FileNotFoundError(f"Fashion-MNIST is not on this machine (minicnn does not "
                                f"download); {locate.FASHION_MNIST_HELP}")
    folder, name = found
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Fashion-MNIST: folder {folder!r} (from {name}) does not "
                                f"exist; {locate.FASHION_MNIST_HELP}")
    return load_fashion_mnist(folder)


__all__ = ["CLASS_NAMES", "load_data"]
