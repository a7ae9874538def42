"""Weight initialisers with Keras's defaults.

Keras initialises kernels with ``glorot_uniform``: U(-limit, limit) with
limit = sqrt(6 / (fan_in + fan_out)), where for a conv kernel (KH, KW, C, F)
fan_in = KH*KW*C and fan_out = KH*KW*F. Biases start at zero.
"""
from __future__ import annotations

import math

import numpy as np


def fans(shape):
    """(fan_in, fan_out) of a dense (in, out) or conv (KH, KW, C, F) kernel."""
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def glorot_uniform(shape, rng: np.random.Generator):
    fan_in, fan_out = fans(shape)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def he_normal(shape, rng: np.random.Generator):
    fan_in, _ = fans(shape)
    return (rng.standard_normal(size=shape) * math.sqrt(2.0 / fan_in)).astype(np.float32)


def zeros(shape, rng=None):
    return np.zeros(shape, dtype=np.float32)


INITIALIZERS = {"glorot_uniform": glorot_uniform, "he_normal": he_normal, "zeros": zeros}


def get(name):
    if callable(name):
        return name
    if name not in INITIALIZERS:
        raise ValueError(f"unknown initializer {name!r}: expected one of {sorted(INITIALIZERS)}")
    return INITIALIZERS[name]
