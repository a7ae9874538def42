"""Small built-in two-class image sets, for demos and tests without downloads.

* shapes: class 0 ("circles") images hold a filled disc, class 1 ("squares") a
  filled square, at a random position, size and colour over a noisy background.
  A small CNN with RMSprop learns it in a few epochs.
* stripes: class 0 horizontal, class 1 vertical stripes of random period, phase
  and colours, with noise. Edge detectors separate them at once, so even the
  cats/dogs tutorial's slow SGD learns them within an epoch: the demo's dataset.

A model that has learned nothing scores 50% on either.
"""
from __future__ import annotations

import os

import numpy as np

CLASS_NAMES = ("circles", "squares")


def _balanced_images(name, n, size, channels, seed, draw, noise):
    """n images from ``draw(rng, label, yy, xx) -> (size, size, channels)``, half of
    each label in a seeded order, plus Gaussian ``noise``, clipped to [0, 1]."""
    if n < 2 or size < 8:
        raise ValueError(f"{name} needs n >= 2 and size >= 8, got n={n}, size={size}")
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    rng.shuffle(labels)
    yy, xx = np.mgrid[0:size, 0:size]
    images = np.empty((n, size, size, channels), dtype=np.float32)
    for i, label in enumerate(labels):
        image = draw(rng, label, yy, xx, channels)
        image += rng.normal(0.0, noise, image.shape)
        images[i] = np.clip(image, 0.0, 1.0)
    return images, labels.astype(np.int64)


def _draw_shape(rng, label, yy, xx, channels):
    size = yy.shape[0]
    background = rng.uniform(0.0, 0.5, channels)
    colour = rng.uniform(0.5, 1.0, channels)
    radius = rng.uniform(size * 0.15, size * 0.3)
    cy, cx = rng.uniform(radius, size - radius, 2)
    if label == 0:
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
    else:
        inside = (np.abs(yy - cy) <= radius * 0.85) & (np.abs(xx - cx) <= radius * 0.85)
    return np.where(inside[..., None], colour, background)


def _draw_stripes(rng, label, yy, xx, channels):
    size = yy.shape[0]
    period = rng.uniform(size / 10, size / 4)
    across = yy if label == 0 else xx          # horizontal stripes vary along y
    on = np.sin(2 * np.pi * (across + rng.uniform(0, period)) / period) > 0
    return np.where(on[..., None], rng.uniform(0.6, 1.0, channels),
                    rng.uniform(0.0, 0.4, channels))


def make_shapes(n=400, size=32, channels=3, seed=0):
    """``n`` images (n, size, size, channels) float32 in [0, 1] and labels (n,) int64,
    balanced between circles (0) and squares (1)."""
    return _balanced_images("make_shapes", n, size, channels, seed, _draw_shape, 0.05)


def make_stripes(n=400, size=32, channels=3, seed=0):
    """``n`` images (n, size, size, channels) float32 in [0, 1] and labels (n,) int64:
    horizontal (0) or vertical (1) stripes, balanced."""
    return _balanced_images("make_stripes", n, size, channels, seed, _draw_stripes, 0.08)


GENERATORS = {"shapes": make_shapes, "stripes": make_stripes}


def write_shapes_directory(dest, n_train=200, n_validation=80, size=64, seed=0,
                           class_names=("cats", "dogs"), kind="shapes"):
    """Write JPEGs of a synthetic set (``kind`` "shapes" or "stripes") as
    ``dest/{train,validation}/{class}/*.jpg``, the layout the cats/dogs pipeline
    reads, so that the whole path from files to a trained model runs without the
    real photos. Returns ``dest``."""
    from PIL import Image

    if kind not in GENERATORS:
        raise ValueError(f"unknown synthetic set {kind!r}: expected one of {sorted(GENERATORS)}")
    for split, count, split_seed in (("train", n_train, seed), ("validation", n_validation,
                                                                seed + 1)):
        images, labels = GENERATORS[kind](count, size, 3, split_seed)
        for name in class_names:
            os.makedirs(os.path.join(dest, split, name), exist_ok=True)
        for i, (image, label) in enumerate(zip(images, labels)):
            name = class_names[label]
            path = os.path.join(dest, split, name, f"{name[:-1]}.{i}.jpg")
            Image.fromarray((image * 255).round().astype(np.uint8)).save(path, quality=95)
    return dest
