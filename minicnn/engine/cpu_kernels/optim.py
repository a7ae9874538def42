"""numba optimizer steps: SGD with momentum, RMSprop and Adam, one pass over each array.

NumPy's float32 operations in NumPy's order, without fused multiply-adds: the same
numbers as the NumPy code of ``minicnn.optimizers``, bit for bit.

Divisions are written ``np.divide(a, b)``: numba's ``a / b`` follows Python and checks
each divisor for zero (to raise ZeroDivisionError), and that branch keeps LLVM from
vectorising the loop; ``np.divide`` has NumPy's semantics (x / 0 is inf, no check) and
the same correctly rounded result, so the loop runs in SIMD lanes (7x faster for Adam).
"""
from __future__ import annotations

import numpy as np

from .. import threads
from .im2col import _c_contiguous
from .jit import jit


@jit
def _sgd_momentum_kernel(param, velocity, grad, lr, momentum, nesterov):
    """One step of ``optimizers.SGD`` with momentum on flat float32 arrays, in one pass
    (NumPy's version makes four). Same float32 operations in the same order, and no
    fused multiply-adds: the same numbers as NumPy's."""
    for i in range(param.shape[0]):
        v = momentum * velocity[i] - lr * grad[i]
        velocity[i] = v
        if nesterov:
            param[i] += momentum * v - lr * grad[i]
        else:
            param[i] += v


@jit
def _rmsprop_kernel(param, mean_square, grad, lr, rho, one_minus_rho, epsilon):
    """One step of ``optimizers.RMSprop`` on flat float32 arrays, in one pass, with
    NumPy's float32 operations in NumPy's order (the same numbers)."""
    for i in range(param.shape[0]):
        g = grad[i]
        a = rho * mean_square[i] + one_minus_rho * g * g
        mean_square[i] = a
        param[i] -= np.divide(lr * g, np.sqrt(a + epsilon))


@jit
def _adam_kernel(param, m, v, v_hat, grad, alpha, one_minus_beta_1, one_minus_beta_2,
                 epsilon, amsgrad):
    """One step of ``optimizers.Adam`` on flat float32 arrays, in one pass (NumPy's
    version makes about ten), with NumPy's float32 operations in NumPy's order.
    ``v_hat`` is only read and written when ``amsgrad``."""
    for i in range(param.shape[0]):
        g = grad[i]
        mi = m[i] + (g - m[i]) * one_minus_beta_1
        m[i] = mi
        vi = v[i] + (g * g - v[i]) * one_minus_beta_2
        v[i] = vi
        if amsgrad:   # np.maximum(v_hat, v): a NaN on either side gives NaN
            vh = v_hat[i]
            if vi > vh or vi != vi:
                vh = vi
            v_hat[i] = vh
            vi = vh
        param[i] -= np.divide(mi * alpha, np.sqrt(vi) + epsilon)


def _elementwise(kernel, arrays, *scalars):
    """``kernel(*flat slices of arrays, *scalars)`` over the arrays' elements, one slice per
    thread (elementwise: the numbers do not depend on how they are cut)."""
    flat = [a.reshape(-1) for a in arrays]
    size = flat[0].size

    def run(part, _worker):
        kernel(*(a[part] for a in flat), *scalars)

    threads.map_chunks(run, threads.batch_chunks(size, enabled=size >= 2**16))


def sgd_momentum_(param, velocity, grad, lr, momentum, nesterov):
    """One SGD-with-momentum step on ``param`` and ``velocity`` (C-contiguous), in place."""
    t = np.float32
    _elementwise(_sgd_momentum_kernel, (param, velocity, _c_contiguous(grad)), t(lr),
                 t(momentum), bool(nesterov))


def rmsprop_(param, mean_square, grad, lr, rho, epsilon):
    """One RMSprop step on ``param`` and ``mean_square`` (C-contiguous), in place."""
    t = np.float32
    _elementwise(_rmsprop_kernel, (param, mean_square, _c_contiguous(grad)), t(lr), t(rho),
                 t(1.0 - rho), t(epsilon))


def adam_(param, m, v, v_hat, grad, alpha, beta_1, beta_2, epsilon):
    """One Adam step on ``param``, ``m``, ``v`` (and ``v_hat`` unless it is None: AMSGrad),
    all C-contiguous, in place; ``alpha`` is the step's bias-corrected rate."""
    t = np.float32
    amsgrad = v_hat is not None
    _elementwise(_adam_kernel, (param, m, v, v_hat if amsgrad else v, _c_contiguous(grad)),
                 t(alpha), t(1.0 - beta_1), t(1.0 - beta_2), t(epsilon), amsgrad)
