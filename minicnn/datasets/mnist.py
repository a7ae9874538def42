"""MNIST as ``keras.datasets.mnist.load_data()`` returns it.

Found by :func:`minicnn.locate.find_mnist`: $MINICNN_MNIST (Keras's ``mnist.npz``, or a
folder holding it or the four IDX files of LeCun's site), then Keras's download
(``$KERAS_HOME`` or ``~/.keras``, ``datasets/mnist.npz``).

``mnist.npz`` holds the arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``; the IDX
files are those named in :data:`minicnn.data.fashion_mnist.FILES` (Fashion-MNIST
copied MNIST's names and format), gzipped or not.
"""
from __future__ import annotations

import os

import numpy as np

from .. import locate
from ..data.fashion_mnist import FILES as IDX_FILES
from ..data.fashion_mnist import checked_splits, read_idx

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_data(path=locate.MNIST_FILE):
    """``(x_train, y_train), (x_test, y_test)``: uint8 images (N, 28, 28) and uint8
    labels (N,) in 0..9, 60,000 for training and 10,000 for testing.

    path: as in Keras, the file's name in Keras's ``datasets`` folder (or an absolute
        path); $MINICNN_MNIST, when set, is used instead.
    Raises FileNotFoundError, with how to get the data, when it is nowhere.
    """
    found = locate.find_mnist(file_name=path)
    if found is None:
        raise FileNotFoundError(f"MNIST is not on this machine (minicnn does not download); "
                                f"{locate.MNIST_HELP}")
    where, name = found
    if os.path.isdir(where):
        if os.path.isfile(os.path.join(where, locate.MNIST_FILE)):
            return _load_npz(os.path.join(where, locate.MNIST_FILE))
        return _load_idx_folder(where)
    if not os.path.isfile(where):
        raise FileNotFoundError(f"MNIST: {where!r} (from {name}) does not exist; "
                                f"{locate.MNIST_HELP}")
    return _load_npz(where)


def _load_npz(path):
    """The four arrays of Keras's ``mnist.npz`` (pickled objects refused, as Keras does)."""
    with np.load(path, allow_pickle=False) as f:
        missing = [key for key in NPZ_KEYS if key not in f.files]
        if missing:
            raise ValueError(f"MNIST: {path!r} lacks the arrays {missing} (Keras's mnist.npz "
                             f"holds {list(NPZ_KEYS)}; it has {f.files})")
        arrays = {key: f[key] for key in NPZ_KEYS}
    return checked_splits(arrays, "MNIST", path)


def _load_idx_folder(folder):
    """The four IDX files (``name.gz`` or ``name``) in ``folder``."""
    arrays = {}
    for key, base in IDX_FILES.items():
        candidates = [os.path.join(folder, base + suffix) for suffix in (".gz", "")]
        existing = [c for c in candidates if os.path.isfile(c)]
        if not existing:
            raise FileNotFoundError(f"MNIST: neither {locate.MNIST_FILE} nor {base}[.gz] is in "
                                    f"{folder!r}; {locate.MNIST_HELP}")
        arrays[key] = read_idx(existing[0])
    return checked_splits(arrays, "MNIST", folder)


__all__ = ["load_data"]
