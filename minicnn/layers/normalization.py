"""BatchNormalization: each channel normalized by its mean and variance."""
from __future__ import annotations

import math

import numpy as np

from .. import engine
from ..ops.normalization import moving_average
from .base import Layer, register


def _number(value, what, low, high=math.inf, low_included=True):
    """``value`` as a float in [low, high] (or (low, high]); else Keras-style ValueError."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    inside = (number >= low if low_included else number > low) and number <= high
    if isinstance(value, bool) or not (math.isfinite(number) and inside):
        interval = f"{'[' if low_included else '('}{low:g}, {high:g}]"
        raise ValueError(f"{what} must be a number in {interval}. Received: {what}={value!r}")
    return number


@register
class BatchNormalization(Layer):
    """Normalize each channel over the batch (Ioffe & Szegedy, 2015), as Keras 3 does.

    x (N, ..., C) -> y of the same shape; with m = the number of values per channel
    (N*H*W for images) and per-channel gamma, beta (C,)::

        training (batch statistics):    mean = x.mean(axes), variance = x.var(axes)  (/ m)
                                        moving_mean = moving_mean * momentum
                                                      + mean * (1 - momentum)  (same: variance)
        inference (``training=False``, or any time when ``trainable=False``):
                                        mean, variance = moving_mean, moving_variance
        x_hat = (x - mean) / sqrt(variance + epsilon)
        y     = gamma * x_hat + beta

    The backward pass, from dout = dLoss/dy, with s = 1 / sqrt(variance + epsilon)::

        grads["beta"]  = sum(dout)                  grads["gamma"] = sum(dout * x_hat)
        training:  dx = gamma * s / m * (m * dout - sum(dout) - x_hat * sum(dout * x_hat))
        inference: dx = gamma * s * dout

    (sums over every axis but the channel's). The weights, in Keras's order: gamma
    (``scale=True``), beta (``center=True``), moving_mean, moving_variance; the moving
    statistics are non-trainable (no gradient, the optimizer leaves them alone).
    """

    default_name = "batch_normalization"
    kind = "batch_normalization"
    non_trainable_keys = ("moving_mean", "moving_variance")

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"axis must be an integer (the channel axis). Received: "
                             f"axis={axis!r}")
        self.axis = int(axis)
        self.momentum = _number(momentum, "momentum", 0.0, 1.0)
        self.epsilon = _number(epsilon, "epsilon", 0.0, low_included=False)
        self.center, self.scale = bool(center), bool(scale)

    def build(self, input_shape):
        rank = len(self._sample_shape(input_shape)) + 1         # with the batch axis
        if not -rank <= self.axis < rank or self.axis % rank == 0:
            raise ValueError(f"layer {self.name!r}: axis must name a non-batch axis of inputs "
                             f"of rank {rank} (1..{rank - 1} or -1..-{rank - 1}). Received: "
                             f"axis={self.axis}")
        super().build(input_shape)

    def _create_params(self, input_shape):
        channels = (None, *input_shape)[self.axis]
        if self.scale:
            self._add_param("gamma", np.ones(channels, np.float32))
        if self.center:
            self._add_param("beta", np.zeros(channels, np.float32))
        self._add_param("moving_mean", np.zeros(channels, np.float32))
        self._add_param("moving_variance", np.ones(channels, np.float32))

    def forward(self, x, training=False):
        """x (N, ..., C) -> y, the same shape. Training (and trainable) normalizes by the
        batch's statistics and moves the moving averages towards them."""
        x = self.accept(x)
        self.forget_forward_state()   # last step's output may then be reused
        batch_stats = bool(training) and self.trainable
        y, mean, variance = engine.batchnorm_forward(self, x, batch_stats)
        if batch_stats:
            moving_average(self.params["moving_mean"], mean, self.momentum)
            moving_average(self.params["moving_variance"], variance, self.momentum)
        self.keep(x=x, mean=mean, variance=variance, batch_stats=batch_stats)
        return y

    def backward(self, dout):
        """dout (N, ..., C) -> dx, the same shape; fills grads["gamma"], grads["beta"]."""
        dx, grads = engine.batchnorm_backward(self, dout, self._x, self._mean, self._variance,
                                              self._batch_stats)
        self.store_grads(grads)
        return dx

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale}
