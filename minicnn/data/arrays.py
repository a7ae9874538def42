"""Helpers for datasets held in arrays: a seeded, stratified train/validation split."""
from __future__ import annotations

import numpy as np

from ..utils import to_categorical

__all__ = ["to_categorical", "train_validation_split"]


def _class_ids(y):
    """Labels (N,) of integers, or one-hot (N, K) -> class indices (N,)."""
    y = np.asarray(y)
    if y.ndim == 2:
        return y.argmax(axis=1)
    if y.ndim == 1:
        return y
    raise ValueError(f"labels must be (N,) class indices or (N, K) one-hot, got shape {y.shape}")


def _validation_counts(counts, validation_split):
    """Per-class validation sizes summing to round(N * split): largest remainders win."""
    ideal = counts * validation_split
    taken = np.floor(ideal).astype(int)
    missing = int(round(counts.sum() * validation_split)) - taken.sum()
    by_remainder = np.argsort(-(ideal - taken), kind="stable")
    taken[by_remainder[:max(missing, 0)]] += 1
    return taken


def train_validation_split(x, y, validation_split=0.2, seed=0, stratify=True):
    """``(x_train, y_train), (x_val, y_val)``: a seeded split of the samples (axis 0).

    With ``stratify`` every class keeps its share in both parts (class counts
    split by largest remainder, so the validation part has round(N * split)
    samples). Samples keep their original order within each part.
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"train_validation_split: x has {len(x)} samples but y has {len(y)}")
    if not 0.0 < validation_split < 1.0:
        raise ValueError(f"validation_split must be in (0, 1), got {validation_split!r}")
    rng = np.random.default_rng(seed)
    n = len(x)
    if stratify:
        labels = _class_ids(y)
        classes, class_of = np.unique(labels, return_inverse=True)
        members = [np.flatnonzero(class_of == c) for c in range(len(classes))]
        counts = np.array([len(m) for m in members])
        take = _validation_counts(counts, validation_split)
        validation = np.concatenate([rng.permutation(m)[:k] for m, k in zip(members, take)])
    else:
        validation = rng.permutation(n)[:int(round(n * validation_split))]
    is_validation = np.zeros(n, dtype=bool)
    is_validation[validation] = True
    return (x[~is_validation], y[~is_validation]), (x[is_validation], y[is_validation])
