"""Seeds. ``set_seed(s)`` makes every later weight initialisation, dropout mask,
and the shuffles and augmentations of data iterators made without ``seed=``,
repeat from run to run, as ``keras.utils.set_random_seed`` does.

Each consumer (an initialiser, a dropout layer, an iterator) asks for its own generator with
:func:`new_generator`; the generators are spawned from one ``SeedSequence``, so
they are independent of each other and of the order NumPy is used elsewhere.
"""
from __future__ import annotations

import numpy as np

_seed_sequence = np.random.SeedSequence()


def set_seed(seed: int) -> None:
    """Make all following random draws in minicnn repeat for the same ``seed``."""
    global _seed_sequence
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _seed_sequence = np.random.SeedSequence(int(seed))


def new_generator(seed: int | None = None) -> np.random.Generator:
    """A fresh NumPy generator: from ``seed`` if given, else the next one spawned
    from the global seed."""
    if seed is not None:
        return np.random.default_rng(seed)
    return np.random.default_rng(_seed_sequence.spawn(1)[0])


def new_seed(seed: int | None = None) -> int:
    """An integer seed drawn the same way (for generators that live on the GPU)."""
    return int(new_generator(seed).integers(0, 2**31 - 1))
