"""Optimizers: how gradients become weight updates, with Keras 3's names and formulas.

    SGD (momentum, nesterov, Keras 2's decay)   sgd.py
    RMSprop                                     rmsprop.py
    Adam (amsgrad), AdamW, Nadam                adam.py
    Adagrad                                     adagrad.py
    ExponentialDecay, PiecewiseConstantDecay,   schedules.py  (as learning_rate)
    CosineDecay

Every optimizer also takes ``weight_decay``, ``clipnorm``, ``clipvalue`` and
``global_clipnorm``, and Keras 2's ``lr=`` (see ``base.Optimizer`` for the order in
which a step applies them). ``get("adam")`` makes one from its name.
"""
from __future__ import annotations

from . import schedules
from .adagrad import Adagrad
from .adam import Adam, AdamW, Nadam
from .base import (FLOAT32_MAX, Optimizer, clip_by_global_norm, clip_by_norm,
                   clip_by_value)
from .rmsprop import RMSprop
from .sgd import SGD

OPTIMIZERS = {cls.name: cls for cls in (SGD, RMSprop, Adam, AdamW, Nadam, Adagrad)}


def get(optimizer):
    """An optimizer from its name (with default settings) or the object itself."""
    if isinstance(optimizer, str):
        key = optimizer.lower()
        if key not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}: expected one of "
                             f"{sorted(OPTIMIZERS)}")
        return OPTIMIZERS[key]()
    if isinstance(optimizer, Optimizer):
        return optimizer
    raise TypeError(f"optimizer must be a name or an Optimizer, got {optimizer!r}")


def from_config(name: str, config: dict) -> Optimizer:
    """The optimizer ``get_config`` described; ValueError for an unknown name or setting."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}: expected one of {sorted(OPTIMIZERS)}")
    try:
        return OPTIMIZERS[name].from_config(config)
    except TypeError as err:      # a setting this optimizer does not have
        raise ValueError(f"optimizer {name!r}: cannot use the settings {config!r} ({err})") \
            from None


def serialize(optimizer: Optimizer) -> dict:
    """``{"class_name": "Adam", "config": {...}}``, as Keras serializes an optimizer."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(spec: dict) -> Optimizer:
    """The optimizer :func:`serialize` described."""
    by_class = {cls.__name__: cls for cls in OPTIMIZERS.values()}
    if not isinstance(spec, dict) or spec.get("class_name") not in by_class:
        raise ValueError(f"unknown optimizer {spec!r}: expected {{'class_name': one of "
                         f"{sorted(by_class)}, 'config': {{...}}}}")
    return from_config(by_class[spec["class_name"]].name, spec.get("config", {}))


__all__ = ["FLOAT32_MAX", "OPTIMIZERS", "SGD", "Adagrad", "Adam", "AdamW", "Nadam",
           "Optimizer", "RMSprop", "clip_by_global_norm", "clip_by_norm", "clip_by_value",
           "deserialize", "from_config", "get", "schedules", "serialize"]
