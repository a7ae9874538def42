"""Label and array helpers, where Keras 2 kept them: ``from keras.utils import np_utils``,
then ``np_utils.to_categorical(y)``. Keras 3 has the same functions in ``keras.utils``;
minicnn has them in both places (``minicnn.utils.to_categorical`` is this one).
"""
from __future__ import annotations

import numpy as np


def to_categorical(labels, num_classes=None, dtype="float32"):
    """Class indices -> one-hot rows, as Keras's ``to_categorical``.

    labels: (N,) integer class indices (whole-number floats are accepted too), or
        (N, 1) as labels read from a column come, which Keras also accepts.
    num_classes: the number of columns; None: the largest index + 1.
    Returns an (N, num_classes) array of ``dtype`` (float32, Keras's default).
    """
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:    # a column of labels, as Keras squeezes it
        labels = labels[:, 0]
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        if labels.ndim == 1 and np.all(np.equal(np.mod(labels, 1), 0)):
            labels = labels.astype(np.int64)
        else:
            raise ValueError(f"to_categorical expects a 1-D array of integer class indices, "
                             f"got shape {labels.shape} and dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError("to_categorical: class indices must be >= 0")
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    if labels.size and labels.max() >= num_classes:
        raise ValueError(f"to_categorical: class index {int(labels.max())} is out of range "
                         f"for num_classes={num_classes}")
    one_hot = np.zeros((labels.size, num_classes), dtype=dtype)
    one_hot[np.arange(labels.size), labels] = 1
    return one_hot


def normalize(x, axis=-1, order=2):
    """``x`` divided by its ``order``-norm along ``axis`` (zero norms left as zeros), as
    Keras's ``normalize``. Returns float32 for integer input, else ``x``'s float type."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1                             # a zero vector stays zero, not NaN
    return x / np.expand_dims(norm, axis)


__all__ = ["normalize", "to_categorical"]
