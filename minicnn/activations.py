"""Activation functions, each with its derivative beside it.

Every activation maps an array to an array of the same shape and keeps what its
backward pass needs (its output ``y``). ``backward(grad_y, y)`` returns the
gradient with respect to the input.
"""
from __future__ import annotations

from .backend import get_array_module


class Linear:
    name = "linear"

    def forward(self, x):
        return x

    def backward(self, grad_y, y):
        return grad_y


class ReLU:
    """y = max(x, 0); dy/dx = 1 where y > 0, else 0 (0 at x == 0, as in TensorFlow)."""
    name = "relu"

    def forward(self, x):
        xp = get_array_module(x)
        return xp.maximum(x, 0, dtype=x.dtype)

    def backward(self, grad_y, y):
        return grad_y * (y > 0)


class Sigmoid:
    """y = 1 / (1 + exp(-x)); dy/dx = y (1 - y)."""
    name = "sigmoid"

    def forward(self, x):
        xp = get_array_module(x)
        # exp(-|x|) never overflows; the two branches are the same function.
        e = xp.exp(-xp.abs(x))
        return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)

    def backward(self, grad_y, y):
        return grad_y * y * (1 - y)


class Tanh:
    """y = tanh(x); dy/dx = 1 - y^2."""
    name = "tanh"

    def forward(self, x):
        return get_array_module(x).tanh(x)

    def backward(self, grad_y, y):
        return grad_y * (1 - y * y)


class Softmax:
    """y_i = exp(x_i) / sum_j exp(x_j) over the last axis.

    Its Jacobian is diag(y) - y y^T, so the vector-Jacobian product is
    y * (g - sum(g * y)): no (classes x classes) matrix is ever built.
    """
    name = "softmax"

    def forward(self, x):
        xp = get_array_module(x)
        shifted = x - x.max(axis=-1, keepdims=True)   # exp never overflows
        e = xp.exp(shifted)
        return e / e.sum(axis=-1, keepdims=True)

    def backward(self, grad_y, y):
        return y * (grad_y - (grad_y * y).sum(axis=-1, keepdims=True))


ACTIVATIONS = {cls.name: cls for cls in (Linear, ReLU, Sigmoid, Tanh, Softmax)}


def get(name):
    """An activation object from its name (``None`` means linear)."""
    if name is None:
        name = "linear"
    if not isinstance(name, str):
        if hasattr(name, "forward") and hasattr(name, "backward"):
            return name
        raise TypeError(f"activation must be a name or an activation object, got {name!r}")
    key = name.lower()
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}: expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[key]()
