"""Batch normalization, forward and backward, on NumPy or CuPy arrays (``xp``).

Over every axis but the channel axis (``axis``: the last, channels-last, by default)::

    mean     = x.mean(axes)                      (C,)   per channel, over N*H*W values
    variance = ((x - mean) ** 2).mean(axes)      (C,)   biased (divides by m = N*H*W)
    x_hat    = (x - mean) / sqrt(variance + epsilon)
    y        = gamma * x_hat + beta

Training normalizes with the batch's own mean and variance, inference with the
moving averages (then mean and variance are constants, not functions of x). This is
the readable definition; the engine's numba kernels compute the same in two passes
each way (``engine.cpu_kernels.normalization``).
"""
from __future__ import annotations

from ..backend import get_array_module


def channel_shape(ndim, axis):
    """The shape a per-channel (C,) vector takes to broadcast over x: (1, 1, 1, C)."""
    shape = [1] * ndim
    shape[axis] = -1
    return tuple(shape)


def reduction_axes(ndim, axis):
    """Every axis of x but the channel axis: (0, 1, 2) for NHWC with axis=-1."""
    return tuple(i for i in range(ndim) if i != axis % ndim)


def moments(x, axis=-1):
    """(mean, variance) per channel, both (C,); the variance is biased (/ m), as Keras's."""
    axes = reduction_axes(x.ndim, axis)
    mean = x.mean(axis=axes)
    centered = x - mean.reshape(channel_shape(x.ndim, axis))
    return mean, (centered * centered).mean(axis=axes)


def inverse_std(variance, epsilon):
    """1 / sqrt(variance + epsilon), (C,)."""
    xp = get_array_module(variance)
    return (1 / xp.sqrt(variance + variance.dtype.type(epsilon))).astype(variance.dtype)


def batchnorm_forward(x, mean, variance, gamma, beta, epsilon, axis=-1):
    """x (N, ..., C) -> y = gamma * (x - mean) / sqrt(variance + epsilon) + beta, same shape.
    ``gamma`` None means 1 (``scale=False``), ``beta`` None means 0 (``center=False``)."""
    shape = channel_shape(x.ndim, axis)
    x_hat = (x - mean.reshape(shape)) * inverse_std(variance, epsilon).reshape(shape)
    y = x_hat if gamma is None else x_hat * gamma.reshape(shape)
    return y if beta is None else y + beta.reshape(shape)


def batchnorm_backward(dout, x, mean, variance, gamma, epsilon, axis=-1, batch_stats=True):
    """dout (N, ..., C) = dL/dy -> (dx, dgamma (C,), dbeta (C,)).

    With m values per channel, s = 1 / sqrt(variance + epsilon)::

        dbeta  = sum(dout)                       dgamma = sum(dout * x_hat)
        batch statistics (training), mean and variance depend on x:
            dx = gamma * s / m * (m * dout - sum(dout) - x_hat * sum(dout * x_hat))
        moving statistics (inference), constants:
            dx = gamma * s * dout
    """
    axes = reduction_axes(x.ndim, axis)
    shape = channel_shape(x.ndim, axis)
    s = inverse_std(variance, epsilon)
    x_hat = (x - mean.reshape(shape)) * s.reshape(shape)
    dbeta = dout.sum(axis=axes)
    dgamma = (dout * x_hat).sum(axis=axes)
    k = s if gamma is None else gamma * s                    # (C,): dy/dx_hat * dx_hat/dx
    if not batch_stats:
        return dout * k.reshape(shape), dgamma, dbeta
    m = x.size // x.shape[axis]
    dx = (dout - (dbeta / m).reshape(shape) - x_hat * (dgamma / m).reshape(shape)) \
        * k.reshape(shape)
    return dx, dgamma, dbeta


def moving_average(moving, batch, momentum):
    """Keras's update, in place: moving = moving * momentum + batch * (1 - momentum)."""
    moving *= moving.dtype.type(momentum)
    moving += batch * batch.dtype.type(1.0 - momentum)
    return moving
