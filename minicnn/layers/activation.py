"""Activations as layers of their own: Activation (by name), LeakyReLU and ReLU."""
from __future__ import annotations

import math
import warnings

from .. import activations, engine
from ..backend import get_array_module
from .base import Layer, register


@register
class Activation(Layer):
    """An activation on its own: ``Activation("relu" | "sigmoid" | "softmax" | ...)``."""

    default_name = "activation"
    kind = "activation"

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def forward(self, x, training=False):
        x = self.accept(x)
        if self.activation.name == "relu":     # the engine's one-pass max(x, 0)
            y = engine.relu_forward(self, x)
        else:
            y = self.activation.forward(x)
        self.keep(y=y)
        return y

    def backward(self, dout):
        if self.activation.name == "relu":
            return engine.relu_backward(self, dout, self._y)
        return self.activation.backward(dout, self._y)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation.name}


def _at_least_zero(value, what, layer, allow_none=False):
    """``value`` as a float >= 0 (or None when allowed); else Keras's ValueError."""
    if value is None and allow_none:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not number >= 0 or math.isinf(number):
        raise ValueError(f"{what} of a {layer} layer must be a number >= 0. Received: "
                         f"{what}={value!r}")
    return number


_warned_alpha = False


@register
class LeakyReLU(Activation):
    """y = x if x > 0 else negative_slope * x; dy/dx = 1 if x > 0 else negative_slope.

    Keras 2 called ``negative_slope`` ``alpha`` (``LeakyReLU(alpha=0.1)``, the
    Fashion-MNIST tutorial's): accepted, with a warning once per process.
    """

    default_name = "leaky_re_lu"
    kind = "leaky_relu"

    def __init__(self, negative_slope=0.3, **kwargs):
        global _warned_alpha
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
            if not _warned_alpha:
                _warned_alpha = True
                warnings.warn("LeakyReLU: 'alpha' is Keras 2's name; Keras 3 (and minicnn) "
                              "call it 'negative_slope'", stacklevel=2)
        self.negative_slope = _at_least_zero(negative_slope, "negative_slope", "LeakyReLU")
        super().__init__(activations.LeakyReLU(self.negative_slope), **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["activation"]             # it is always leaky_relu with this slope
        return {**config, "negative_slope": self.negative_slope}


@register
class ReLU(Layer):
    """Keras's ReLU layer, with its three settings (all >= 0)::

        y = min(x, max_value)                      if x > threshold
        y = negative_slope * (x - threshold)       otherwise

    (``max_value=None``: no upper limit; the defaults make it max(x, 0)). dy/dx is 1
    between threshold and max_value, negative_slope below threshold, 0 above
    max_value. At the corners TensorFlow's conventions, which Keras's gradients follow:
    0 at x == threshold (negative_slope there when it is the plain leaky ReLU:
    threshold 0, no max_value); 1 at x == max_value (clip_by_value's), except for
    max_value 6 with threshold 0, which TensorFlow computes as relu6: 0 there.
    """

    default_name = "re_lu"
    kind = "relu"

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.max_value = _at_least_zero(max_value, "max_value", "ReLU", allow_none=True)
        self.negative_slope = _at_least_zero(negative_slope, "negative_slope", "ReLU")
        self.threshold = _at_least_zero(threshold, "threshold", "ReLU")

    def plain(self) -> bool:
        """The default settings: y = max(x, 0), which the engine runs in one pass."""
        return self.max_value is None and not self.negative_slope and not self.threshold

    def forward(self, x, training=False):
        x = self.accept(x)
        if self.plain():
            y = engine.relu_forward(self, x)
            self.keep(x=None, y=y)
            return y
        xp, t = get_array_module(x), x.dtype.type(self.threshold)
        y = xp.where(x > t, x, x.dtype.type(0))
        if self.max_value is not None:
            y = xp.minimum(y, x.dtype.type(self.max_value))
        if self.negative_slope:
            y = y + x.dtype.type(self.negative_slope) * xp.minimum(x - t, 0)
        self.keep(x=x, y=None)
        return y

    def backward(self, dout):
        if self.plain():
            return engine.relu_backward(self, dout, self._y)
        x = self._x
        t = x.dtype.type(self.threshold)
        slope = (x > t).astype(dout.dtype)
        if self.max_value is not None:
            relu6 = self.max_value == 6 and self.threshold == 0
            limit = x.dtype.type(self.max_value)
            slope *= (x < limit) if relu6 else (x <= limit)
        if self.negative_slope:
            plain_leaky = self.max_value is None and self.threshold == 0
            below = (x <= t) if plain_leaky else (x < t)
            slope += below * dout.dtype.type(self.negative_slope)
        return dout * slope

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value,
                "negative_slope": self.negative_slope, "threshold": self.threshold}
