"""Kaggle's cats/dogs test set and submission file.

    ids, paths = list_test_images("test1")          # 1.jpg, 2.jpg, ..., 10.jpg, ...
    x, failed = load_images(paths, (150, 150))       # float32 (N, 150, 150, 3) in 0..255
    write_submission(ids, model.predict(x / 255).ravel(), "submission.csv")
"""
from __future__ import annotations

import concurrent.futures
import os
import re
import warnings

import numpy as np

from ..io_utils import atomic_path
from .iterator import DECODE_ERRORS, COLOR_MODES, check_workers, load_image

TEST_NAME = re.compile(r"^(\d+)\.(jpe?g|png|bmp)$", re.IGNORECASE)


def list_test_images(folder):
    """``(ids, paths)`` of ``folder/<id>.jpg``, sorted by the number (2 before 10)."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"list_test_images: folder {folder!r} not found")
    found = sorted((int(m.group(1)), name) for name in os.listdir(folder)
                   if (m := TEST_NAME.match(name)))
    return [i for i, _ in found], [os.path.join(folder, name) for _, name in found]


def load_images(paths, target_size=(150, 150), color_mode="rgb", interpolation="nearest",
                workers=None):
    """Decode ``paths`` with worker threads, as the iterator does (no augmentation).

    Returns ``(x, failed)``: x float32 (N, h, w, C) in 0..255, and the list of paths
    that could not be read (one warning each; their rows of x are zeros). Memory is
    N * h * w * C * 4 bytes, so pass a few thousand paths at a time.
    """
    threads = max(1, check_workers(workers))     # 0 (the calling thread) runs as 1 thread
    paths = list(paths)
    channels = COLOR_MODES[color_mode][1]
    x = np.zeros((len(paths), target_size[0], target_size[1], channels), dtype=np.float32)
    failed = []

    def decode(i):
        try:
            x[i] = load_image(paths[i], target_size, color_mode, interpolation)
            return None
        except DECODE_ERRORS as error:
            return error

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for i, error in enumerate(pool.map(decode, range(len(paths)))):
            if error is not None:
                failed.append(paths[i])
                warnings.warn(f"skipping unreadable image {paths[i]!r}: {error}",
                              RuntimeWarning, stacklevel=2)
    return x, failed


def write_submission(ids, dog_probabilities, path):
    """Write Kaggle's ``id,label`` CSV (label = P(dog)), sorted by id, atomically."""
    ids = np.asarray(ids)
    probabilities = np.asarray(dog_probabilities, dtype=np.float64)
    if probabilities.ndim == 2 and probabilities.shape[1] == 1:
        probabilities = probabilities[:, 0]       # model.predict's (N, 1) column
    if ids.ndim != 1 or probabilities.ndim != 1:
        raise ValueError(f"write_submission: ids and probabilities must be 1-D, got shapes "
                         f"{ids.shape} and {probabilities.shape}")
    if len(ids) != len(probabilities):
        raise ValueError(f"write_submission: {len(ids)} ids but {len(probabilities)} "
                         "probabilities")
    if len(np.unique(ids)) != len(ids):
        raise ValueError("write_submission: ids must be unique")
    bad = ~((probabilities >= 0.0) & (probabilities <= 1.0))   # also catches NaN
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(f"write_submission: probabilities must be in [0, 1]; id {ids[first]} "
                         f"has {probabilities[first]!r} ({int(bad.sum())} bad values)")
    order = np.argsort(ids, kind="stable")
    lines = ["id,label"] + [f"{ids[i]},{probabilities[i]:.6f}" for i in order]
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write("\n".join(lines) + "\n")
    return path
