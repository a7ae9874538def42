"""Small helpers for labels."""
from __future__ import annotations

import numpy as np


def to_categorical(labels, num_classes=None):
    """Class indices (N,) -> one-hot float32 (N, num_classes), as Keras's to_categorical."""
    labels = np.asarray(labels)
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
    one_hot = np.zeros((labels.size, num_classes), dtype=np.float32)
    one_hot[np.arange(labels.size), labels] = 1.0
    return one_hot
