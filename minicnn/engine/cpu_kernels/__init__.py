"""numba kernels for the CPU, by topic: im2col/col2im, max pooling, the fused bias/ReLU
(and bias/ReLU/max-pool) passes, batch normalization's two passes each way, the kernel
gradient of RGB layers on image planes, Winograd's tile transforms, and the optimizer
steps.

``ops`` defines these operations in vectorised NumPy (the portable definition); here the
same operations are plain loops that numba compiles to machine code, because the NumPy
versions waste passes over memory (a padded copy of the input, one strided copy per
kernel tap, ``where`` temporaries). A loop touches every element once.

Compiled code is cached on disk, so only the first process after an install pays the
compilation. If numba is missing, cannot compile, or ``MINICNN_DISABLE_NUMBA=1`` is set,
:func:`usable` returns False and the engine runs the NumPy code instead.
"""
from __future__ import annotations

import warnings

import numpy as np

from .filter_grad import FILTER_GRAD_MAX_CHANNELS, conv2d_kernel_grad
from .im2col import IM2COL_RUNS_BELOW_CHANNELS, col2im, im2col
from .jit import ALLOWED, jit, numba
from .normalization import (batchnorm_gradient_sums, batchnorm_inference_backward,
                            batchnorm_input_gradient, batchnorm_moments, batchnorm_normalize)
from .optim import adam_, rmsprop_, sgd_momentum_
from .pooling import maxpool2d_backward, maxpool2d_forward
from .relu import bias_relu_, bias_relu_pool, relu_backward
from .winograd import (winograd_gradient, winograd_input, winograd_output,
                       winograd_output_pool, winograd_unpooled_gradient,
                       winograd_unpooled_input)

FUSED = True        # it has bias_relu_, relu_backward and the optimizer steps
enabled = ALLOWED   # False (by hand, by the tests, or after a failed warm-up): NumPy code
_checked = False    # whether the kernels were compiled (or loaded) and tried once


def _warm_up():
    """Compile (or load from the cache) every kernel on tiny inputs; False if any fails."""
    try:
        x = np.zeros((1, 3, 3, 1), np.float32)
        cols = im2col(x, (2, 2), (1, 1), "valid")
        im2col(np.zeros((1, 3, 3, 8), np.float32), (2, 2), (1, 1), "valid")
        col2im(cols, x.shape, (2, 2), (1, 1), "valid")
        out, argmax = maxpool2d_forward(x, (2, 2), (1, 1), "valid")
        maxpool2d_backward(out, argmax, x.shape, (2, 2), (1, 1), "valid")
        maxpool2d_backward(out, argmax, x.shape, (1, 1), (1, 1), "valid")
        z = np.zeros((2, 2), np.float32)
        bias_relu_(z, np.zeros(2, np.float32))
        bias_relu_pool(z.reshape(1, 2, 1, 2), np.zeros(2, np.float32), (2, 1),
                       np.empty((1, 1, 1, 2), np.float32), np.empty((1, 1, 1, 2), np.uint8))
        relu_backward(z, z)
        conv2d_kernel_grad(x, np.zeros((1, 2, 2, 2), np.float32), (2, 2, 1, 2), (1, 1),
                           "valid", y=np.zeros((1, 2, 2, 2), np.float32))
        sgd_momentum_(z, z.copy(), z, 0.1, 0.9, False)
        rmsprop_(z, z.copy(), z, 0.1, 0.9, 1e-7)
        adam_(z, z.copy(), z.copy(), None, z, 0.1, 0.9, 0.999, 1e-7)
        adam_(z, z.copy(), z.copy(), z.copy(), z, 0.1, 0.9, 0.999, 1e-7)   # AMSGrad
        mean, variance = batchnorm_moments(z)
        batchnorm_normalize(z, variance, mean, z.copy())
        batchnorm_gradient_sums(z, z, mean)
        batchnorm_input_gradient(z, z, mean, mean, mean, mean, z.copy())
        batchnorm_inference_backward(z, z, mean, mean, z.copy())
        return True
    except Exception as error:  # a numba/LLVM failure must not break training
        warnings.warn(f"minicnn: numba kernels unavailable ({type(error).__name__}: {error}); "
                      "using the NumPy code", RuntimeWarning, stacklevel=3)
        return False


def usable(x) -> bool:
    """True when ``x`` is a float32 NumPy array and the numba kernels work here.

    Other dtypes (the float64 of gradient checks) and CuPy arrays take the
    portable NumPy/CuPy code.
    """
    global _checked, enabled
    if not (enabled and type(x) is np.ndarray and x.dtype == np.float32):
        return False
    if not _checked:
        _checked = True
        enabled = _warm_up()
    return enabled


def dispatchers():
    """Every compiled kernel of these modules (for ``tutorial.cpu_kernels_need_compiling``)."""
    from . import (filter_grad, im2col, normalization, optim, pooling, relu,  # noqa: PLC0415
                   winograd)
    if numba is None:
        return []
    from numba.core.registry import CPUDispatcher  # noqa: PLC0415
    return [kernel for module in (filter_grad, im2col, normalization, optim, pooling, relu,
                                  winograd)
            for kernel in vars(module).values() if isinstance(kernel, CPUDispatcher)]


__all__ = ["FILTER_GRAD_MAX_CHANNELS", "IM2COL_RUNS_BELOW_CHANNELS", "batchnorm_gradient_sums",
           "batchnorm_inference_backward", "batchnorm_input_gradient", "batchnorm_moments",
           "batchnorm_normalize", "bias_relu_",
           "bias_relu_pool", "adam_", "col2im", "conv2d_kernel_grad", "enabled", "im2col", "jit",
           "maxpool2d_backward", "maxpool2d_forward", "relu_backward", "rmsprop_",
           "sgd_momentum_", "usable", "winograd_gradient", "winograd_input",
           "winograd_output", "winograd_output_pool", "winograd_unpooled_gradient",
           "winograd_unpooled_input"]
