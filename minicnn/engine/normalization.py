"""BatchNormalization's two passes, as the engine runs them (one call each way).

The maths is ``ops.normalization``'s (the engine "numpy", and CuPy arrays on the GPU);
the engine "reference" runs the loops of ``ops.reference``; on the CPU the engine
"fast" runs the numba kernels of ``cpu_kernels.normalization``: two passes over the
activation forward (the sums, then y) and two backward (the sums, then dx), one when
the statistics are the moving ones.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module, to_numpy
from ..ops import normalization, reference
from . import cpu_kernels
from .choice import engine_name, kernels_for
from .scratch import scratch_for


def _last_axis(layer, x):
    return layer.axis % x.ndim == x.ndim - 1


def _uses_kernels(layer, x):
    return kernels_for(x) is cpu_kernels and _last_axis(layer, x)


def batchnorm_forward(layer, x, batch_stats):
    """x (N, ..., C) -> (y like x, mean (C,), variance (C,)): the batch's statistics when
    ``batch_stats`` (training), else the layer's moving ones."""
    gamma, beta = layer.params.get("gamma"), layer.params.get("beta")
    if engine_name() == "reference":
        return _reference_forward(layer, x, batch_stats, gamma, beta)
    if not _uses_kernels(layer, x):
        if batch_stats:
            mean, variance = normalization.moments(x, layer.axis)
        else:
            mean, variance = layer.params["moving_mean"], layer.params["moving_variance"]
        y = normalization.batchnorm_forward(x, mean, variance, gamma, beta, layer.epsilon,
                                            layer.axis)
        return y, mean, variance
    if batch_stats:
        mean, variance = cpu_kernels.batchnorm_moments(x)            # float64 (C,)
    else:
        mean, variance = layer.params["moving_mean"], layer.params["moving_variance"]
    scale = 1 / np.sqrt(np.asarray(variance, np.float64) + layer.epsilon)   # s
    if gamma is not None:
        scale = scale * gamma
    offset = -np.asarray(mean, np.float64) * scale           # y = x * scale + offset
    if beta is not None:
        offset = offset + beta
    y = scratch_for(layer).result("y", x.shape, x)
    cpu_kernels.batchnorm_normalize(x, scale, offset, y)
    return y, np.asarray(mean, x.dtype), np.asarray(variance, x.dtype)


def batchnorm_backward(layer, dout, x, mean, variance, batch_stats):
    """dout (N, ..., C) -> (dx, {"gamma": (C,), "beta": (C,)}) (the keys the layer has)."""
    gamma = layer.params.get("gamma")
    if engine_name() == "reference":
        dx, dgamma, dbeta = _reference_backward(layer, dout, x, mean, variance, gamma,
                                                batch_stats)
    elif not _uses_kernels(layer, x):
        dx, dgamma, dbeta = normalization.batchnorm_backward(
            dout, x, mean, variance, gamma, layer.epsilon, layer.axis, batch_stats)
    else:
        dx, dgamma, dbeta = _kernel_backward(layer, dout, x, mean, variance, gamma,
                                             batch_stats)
    grads = {}
    if "gamma" in layer.params:
        grads["gamma"] = dgamma
    if "beta" in layer.params:
        grads["beta"] = dbeta
    return dx, grads


def _kernel_backward(layer, dout, x, mean, variance, gamma, batch_stats):
    """The numba passes: the sums (and dx, from the moving statistics) then dx."""
    s = 1 / np.sqrt(variance.astype(np.float64) + layer.epsilon)      # (C,)
    k = s if gamma is None else s * gamma                              # dy/dx, statistics fixed
    dx = scratch_for(layer).result("dx", x.shape, dout)
    if not batch_stats:
        sum_dout, sum_centered = cpu_kernels.batchnorm_inference_backward(dout, x, mean, k, dx)
    else:
        sum_dout, sum_centered = cpu_kernels.batchnorm_gradient_sums(dout, x, mean)
        m = x.size // x.shape[-1]
        # dx = k (dout - sum(dout) / m - x_hat sum(dout x_hat) / m), x_hat = (x - mean) s,
        # written per channel as a * dout + b * (x - mean) + c0:
        a, b, c0 = k, -k * s * s * sum_centered / m, -k * sum_dout / m
        cpu_kernels.batchnorm_input_gradient(dout, x, mean, a, b, c0, dx)
    return dx, (sum_centered * s).astype(dout.dtype), sum_dout.astype(dout.dtype)


def _channels_last(array, axis):
    return np.moveaxis(to_numpy(array), axis, -1)


def _reference_forward(layer, x, batch_stats, gamma, beta):
    xp, host = get_array_module(x), _channels_last(x, layer.axis)
    host_params = [None if p is None else to_numpy(p) for p in (gamma, beta)]
    if batch_stats:
        mean, variance = reference.batchnorm_moments_loops(host)
    else:
        mean, variance = (to_numpy(layer.params[k]) for k in ("moving_mean", "moving_variance"))
    y = reference.batchnorm_forward_loops(host, mean, variance, *host_params, layer.epsilon)
    return (xp.asarray(np.moveaxis(y, -1, layer.axis)), xp.asarray(mean),
            xp.asarray(variance))


def _reference_backward(layer, dout, x, mean, variance, gamma, batch_stats):
    xp = get_array_module(dout)
    dx, dgamma, dbeta = reference.batchnorm_backward_loops(
        _channels_last(dout, layer.axis), _channels_last(x, layer.axis), to_numpy(mean),
        to_numpy(variance), None if gamma is None else to_numpy(gamma), layer.epsilon,
        batch_stats)
    return xp.asarray(np.moveaxis(dx, -1, layer.axis)), xp.asarray(dgamma), xp.asarray(dbeta)
