"""Activation functions, each with its derivative beside it.

Every activation maps an array to an array of the same shape. ``backward(dout, y)``
gets dout = dLoss/dy and the output y, and returns dx = dLoss/dx; the two whose slope
the output does not tell (swish, gelu) keep what they need from their forward pass.
"""
from __future__ import annotations

import numpy as np

from .backend import get_array_module


class Linear:
    name = "linear"

    def forward(self, x):
        return x

    def backward(self, dout, y):
        return dout


class ReLU:
    """y = max(x, 0); dy/dx = 1 where y > 0, else 0 (0 at x == 0, as in TensorFlow)."""
    name = "relu"

    def forward(self, x):
        xp = get_array_module(x)
        return xp.maximum(x, 0, dtype=x.dtype)

    def backward(self, dout, y):
        return dout * (y > 0)


class Sigmoid:
    """y = 1 / (1 + exp(-x)); dy/dx = y (1 - y)."""
    name = "sigmoid"

    def forward(self, x):
        xp = get_array_module(x)
        # exp(-|x|) never overflows; the two branches are the same function.
        e = xp.exp(-xp.abs(x))
        return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)

    def backward(self, dout, y):
        return dout * y * (1 - y)


class Tanh:
    """y = tanh(x); dy/dx = 1 - y^2."""
    name = "tanh"

    def forward(self, x):
        return get_array_module(x).tanh(x)

    def backward(self, dout, y):
        return dout * (1 - y * y)


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

    def backward(self, dout, y):
        return y * (dout - (dout * y).sum(axis=-1, keepdims=True))


class ELU:
    """y = x if x > 0 else alpha (exp(x) - 1); dy/dx = 1 if x > 0 else y + alpha."""
    name = "elu"

    def __init__(self, alpha=1.0):
        self.alpha = float(alpha)

    def forward(self, x):
        xp = get_array_module(x)
        # expm1 keeps the small negative outputs exact; min(x, 0) keeps exp from overflowing
        negative = (self.alpha * xp.expm1(xp.minimum(x, 0))).astype(x.dtype, copy=False)
        return xp.where(x > 0, x, negative)

    def backward(self, dout, y):
        xp = get_array_module(y)
        return dout * xp.where(y > 0, 1, y + self.alpha).astype(y.dtype, copy=False)


class SELU(ELU):
    """y = scale * elu(x, alpha) with Klambauer et al.'s constants (as Keras):
    dy/dx = scale if x > 0 else y + scale * alpha."""
    name = "selu"
    ALPHA, SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946

    def __init__(self):
        super().__init__(self.ALPHA)

    def forward(self, x):
        return (self.SCALE * super().forward(x)).astype(x.dtype, copy=False)

    def backward(self, dout, y):
        xp = get_array_module(y)
        slope = xp.where(y > 0, self.SCALE, y + self.SCALE * self.ALPHA)
        return dout * slope.astype(y.dtype, copy=False)


class Softplus:
    """y = log(1 + exp(x)); dy/dx = sigmoid(x) = 1 - exp(-y)."""
    name = "softplus"

    def forward(self, x):
        xp = get_array_module(x)
        # max(x, 0) + log(1 + exp(-|x|)): the same function, with no overflow for large x
        return (xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))).astype(x.dtype, copy=False)

    def backward(self, dout, y):
        xp = get_array_module(y)
        return dout * -xp.expm1(-y)    # 1 - exp(-y), exact also where y is tiny


class LeakyReLU:
    """y = x if x > 0 else negative_slope * x; dy/dx = 1 or negative_slope.

    (For negative_slope >= 0, y > 0 exactly where x > 0, so the output tells the slope.)
    """
    name = "leaky_relu"

    def __init__(self, negative_slope=0.2):
        if not float(negative_slope) >= 0:
            raise ValueError(f"negative_slope must be >= 0, got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def forward(self, x):
        xp = get_array_module(x)
        return xp.where(x > 0, x, x * x.dtype.type(self.negative_slope))

    def backward(self, dout, y):
        xp = get_array_module(y)
        return dout * xp.where(y > 0, 1, self.negative_slope).astype(y.dtype, copy=False)


class Swish:
    """y = x * sigmoid(x) (also called SiLU); dy/dx = s + y (1 - s) with s = sigmoid(x).

    The output alone does not give the slope, so forward keeps s for backward.
    """
    name = "swish"

    def forward(self, x):
        self._sigmoid = Sigmoid().forward(x)
        return x * self._sigmoid

    def backward(self, dout, y):
        s = self._sigmoid
        return dout * (s + y * (1 - s))


class GELU:
    """y = x * Phi(x) = x/2 (1 + erf(x / sqrt(2))), the exact form Keras uses by default;
    dy/dx = Phi(x) + x phi(x), phi the standard normal density.

    The output alone does not give the slope, so forward keeps x for backward. NumPy has
    no erf: :func:`erf` is Abramowitz & Stegun's 7.1.26, within 1.5e-7 of it, below
    float32's resolution near 1.
    """
    name = "gelu"

    def forward(self, x):
        self._x = x
        return (x * (0.5 * (1 + erf(x * np.float32(1 / np.sqrt(2)))))).astype(x.dtype,
                                                                          copy=False)

    def backward(self, dout, y):
        u = self._x * np.float32(1 / np.sqrt(2))
        # d/dx of x/2 (1 + erf(u)) with u = x / sqrt(2); erf' is the derivative of the
        # erf computed above (not of the exact one), so backward matches forward
        slope = 0.5 * (1 + erf(u)) + 0.5 * u * erf_derivative(u)
        return dout * slope.astype(y.dtype, copy=False)


# Abramowitz & Stegun 7.1.26: erf(a) = 1 - P(t) exp(-a^2), t = 1 / (1 + p a), a >= 0
_ERF_P = 0.3275911
_ERF_COEFFICIENTS = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _erf_polynomial(t):
    """P(t) = a1 t + a2 t^2 + ... + a5 t^5 and its derivative P'(t), by Horner's rule."""
    value = slope = 0.0
    for coefficient in reversed(_ERF_COEFFICIENTS):
        slope = slope * t + value
        value = value * t + coefficient
    return value * t, slope * t + value


def erf(x):
    """The error function, Abramowitz & Stegun 7.1.26: within 1.5e-7 of it for all x."""
    xp = get_array_module(x)
    a = xp.abs(x)
    polynomial, _ = _erf_polynomial(1 / (1 + _ERF_P * a))
    return xp.sign(x) * (1 - polynomial * xp.exp(-a * a))


def erf_derivative(x):
    """d/dx of :func:`erf` as computed (even in x): exp(-a^2) (p t^2 P'(t) + 2 a P(t))."""
    xp = get_array_module(x)
    a = xp.abs(x)
    t = 1 / (1 + _ERF_P * a)
    polynomial, slope = _erf_polynomial(t)
    return xp.exp(-a * a) * (_ERF_P * t * t * slope + 2 * a * polynomial)


ACTIVATIONS = {cls.name: cls for cls in (Linear, ReLU, Sigmoid, Tanh, Softmax, ELU, SELU,
                                         Softplus, LeakyReLU, Swish, GELU)}
ACTIVATIONS["silu"] = Swish        # Keras 3's name for the same function


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
