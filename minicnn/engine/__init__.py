"""The engine: how fast the layers run on this device (``layers -> engine -> ops``).

A layer says *what* it computes and hands the work to the engine in one call each way
(``conv2d_forward`` / ``conv2d_backward``, ``maxpool2d_*``, ``avgpool2d_*``,
``global_pool_*``, ``batchnorm_*``, ``dense_*``); the engine chooses *how*: the kernels
for the array (``kernels_for``: NumPy, numba or CuPy, the only place that chooses),
the chunks and threads (``threads``, ``conv_im2col``), Winograd (``conv_winograd``),
the conv + ReLU + max-pool fusion a ``Sequential`` asks for (``fusion``), the optimizer
steps (``optim``) and the knobs (``settings``).

``set_engine("reference" | "numpy" | "fast")`` switches every layer between the plain
loops, the plain im2col code and the fastest path (see ``choice``).
"""
from . import cpu_kernels, gpu_kernels, numpy_kernels, settings, threads
from .activation import relu_backward, relu_forward
from .choice import ENGINES, engine_name, kernels_for, set_engine, use_engine
from .conv import conv2d_backward, conv2d_forward
from .cpu_kernels import jit
from .dense import dense_backward, dense_forward
from .fusion import backward, forward
from .normalization import batchnorm_backward, batchnorm_forward
from .optim import step_kernels
from .pooling import (avgpool2d_backward, avgpool2d_forward, global_pool_backward,
                      global_pool_forward, maxpool2d_backward, maxpool2d_forward)

__all__ = ["ENGINES", "avgpool2d_backward", "avgpool2d_forward", "backward",
           "batchnorm_backward", "batchnorm_forward", "conv2d_backward", "conv2d_forward",
           "cpu_kernels", "dense_backward", "dense_forward", "engine_name", "forward",
           "global_pool_backward", "global_pool_forward", "gpu_kernels", "jit",
           "kernels_for", "maxpool2d_backward", "maxpool2d_forward", "numpy_kernels",
           "relu_backward", "relu_forward", "set_engine", "settings", "step_kernels",
           "threads", "use_engine"]
