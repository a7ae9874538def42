"""Weight penalties added to the loss, as Keras adds them.

A layer given ``kernel_regularizer=l2(1e-4)`` adds ``penalty(kernel)`` to the loss the
model minimises and reports, and ``penalty.gradient(kernel)`` to the kernel's gradient:

    L1(l1):      penalty = l1 * sum(|w|)                 gradient = l1 * sign(w)
    L2(l2):      penalty = l2 * sum(w^2)                 gradient = 2 * l2 * w
    L1L2(l1, l2) the sum of the two

(no 1/2 in front of the L2 sum, and no division by the batch size: Keras's formulas).
The names as Keras 3 has them: classes ``L1``, ``L2``, ``L1L2``, their lower-case aliases
``l1``, ``l2``, ``l1_l2``, and the strings ``"l1"``, ``"l2"``, ``"l1l2"`` (default factors).
"""
from __future__ import annotations

import math

from .backend import get_array_module


def _factor(value, name):
    value = 0.0 if value is None else value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


class L1L2:
    """``l1 * sum(|w|) + l2 * sum(w^2)``; its gradient ``l1 * sign(w) + 2 * l2 * w``."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = _factor(l1, "l1"), _factor(l2, "l2")

    def __call__(self, weights) -> float:
        """The penalty, a float (summed in float64: it is added to the loss)."""
        xp = get_array_module(weights)
        total = 0.0
        if self.l1:
            total += self.l1 * float(xp.abs(weights).sum(dtype="float64"))
        if self.l2:
            total += self.l2 * float((weights.astype("float64") ** 2).sum())
        return total

    def gradient(self, weights):
        """d penalty / d weights, an array like ``weights``."""
        xp = get_array_module(weights)
        grad = xp.zeros_like(weights)
        if self.l1:
            grad += weights.dtype.type(self.l1) * xp.sign(weights)
        if self.l2:
            grad += weights.dtype.type(2 * self.l2) * weights
        return grad

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}

    def __repr__(self):
        settings = ", ".join(f"{k}={v}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({settings})"


class L1(L1L2):
    """``l1 * sum(|w|)``."""

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 * sum(w^2)``."""

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


l1, l2, l1_l2 = L1, L2, L1L2     # Keras's lower-case names for the same classes
REGULARIZERS = {"L1": L1, "L2": L2, "L1L2": L1L2, "l1": L1, "l2": L2, "l1l2": L1L2}


def get(identifier):
    """A regularizer from a name, a ``{"class_name", "config"}`` dict, or itself (None: none)."""
    if identifier is None or isinstance(identifier, L1L2):
        return identifier
    if isinstance(identifier, str):
        if identifier not in REGULARIZERS:
            raise ValueError(f"unknown regularizer {identifier!r}: expected one of "
                             f"{sorted(REGULARIZERS)} or an object such as l2(1e-4)")
        return REGULARIZERS[identifier]()
    if isinstance(identifier, dict) and identifier.get("class_name") in REGULARIZERS:
        return REGULARIZERS[identifier["class_name"]](**identifier.get("config", {}))
    raise TypeError(f"a regularizer must be a name, a config dict or an L1/L2/L1L2 object, "
                    f"got {identifier!r}")


def serialize(regularizer):
    """The dict ``get`` reads back (None stays None)."""
    if regularizer is None:
        return None
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}
