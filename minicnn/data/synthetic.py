"""A small built-in dataset of two shapes, for demos and tests without downloads.

Class 0 ("circles") images hold a filled disc, class 1 ("squares") a filled
square, each at a random position, size and colour over a noisy random
background. A small CNN learns it in a few epochs; a model that has not
learned anything scores 50%.
"""
from __future__ import annotations

import os

import numpy as np

CLASS_NAMES = ("circles", "squares")


def make_shapes(n=400, size=32, channels=3, seed=0):
    """``n`` images (n, size, size, channels) float32 in [0, 1] and labels (n,) int64,
    balanced between circles (0) and squares (1)."""
    if n < 2 or size < 8:
        raise ValueError(f"make_shapes needs n >= 2 and size >= 8, got n={n}, size={size}")
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    rng.shuffle(labels)
    yy, xx = np.mgrid[0:size, 0:size]
    images = np.empty((n, size, size, channels), dtype=np.float32)
    for i, label in enumerate(labels):
        background = rng.uniform(0.0, 0.5, channels)
        colour = rng.uniform(0.5, 1.0, channels)
        radius = rng.uniform(size * 0.15, size * 0.3)
        cy, cx = rng.uniform(radius, size - radius, 2)
        if label == 0:
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
        else:
            inside = (np.abs(yy - cy) <= radius * 0.85) & (np.abs(xx - cx) <= radius * 0.85)
        image = np.where(inside[..., None], colour, background)
        image += rng.normal(0.0, 0.05, image.shape)
        images[i] = np.clip(image, 0.0, 1.0)
    return images, labels.astype(np.int64)


def write_shapes_directory(dest, n_train=200, n_validation=80, size=64, seed=0,
                           class_names=("cats", "dogs")):
    """Write JPEGs of :func:`make_shapes` as ``dest/{train,validation}/{class}/*.jpg``,
    the layout the cats/dogs pipeline reads, so that the whole path from files to a
    trained model runs without the real photos. Returns ``dest``."""
    from PIL import Image

    for split, count, split_seed in (("train", n_train, seed), ("validation", n_validation,
                                                                seed + 1)):
        images, labels = make_shapes(count, size, 3, split_seed)
        for name in class_names:
            os.makedirs(os.path.join(dest, split, name), exist_ok=True)
        for i, (image, label) in enumerate(zip(images, labels)):
            name = class_names[label]
            path = os.path.join(dest, split, name, f"{name[:-1]}.{i}.jpg")
            Image.fromarray((image * 255).round().astype(np.uint8)).save(path, quality=95)
    return dest
