"""Dense's two passes, as the engine runs them: x @ kernel + bias and its gradients.

On the CPU a large kernel is multiplied in chunks of rows or columns shared among the
threads (BLAS itself runs on one thread during a step, see ``threads``); each chunk
writes its own rows or columns of the result, so the numbers do not depend on the
thread count.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module, to_numpy
from ..ops.conv import column_sums
from . import cpu_kernels, settings, threads
from .choice import engine_name, kernels_for


def dense_forward(layer, x):
    """x (N, in) -> activation(x @ kernel + bias) (N, units)."""
    kernel = layer.params["kernel"]
    z = _product(x, kernel, "columns", settings.DENSE_FORWARD_CHUNK, kernel.size)
    if layer.use_bias:
        z += layer.params["bias"]
    return layer.activation.forward(z)


def dense_backward(layer, dout, x, y):
    """dout (N, units), the gradient of y -> (dx (N, in), grads)."""
    kernel = layer.params["kernel"]
    dz = layer.activation.backward(dout, y)                          # (N, units)
    grads = {"kernel": _product(x.T, dz, "rows", settings.DENSE_CHUNK, kernel.size)}
    if layer.use_bias:
        grads["bias"] = column_sums(dz)
    dx = _product(dz, kernel.T, "columns", settings.DENSE_CHUNK, kernel.size)
    return dx, grads


def _product(a, b, split, chunk_size, kernel_size):
    """a @ b; for a large kernel with the CPU kernels, in chunks of ``chunk_size`` rows of a
    (``split="rows"``) or columns of b, shared among the threads. The engine "reference"
    multiplies with loops (``_loops``)."""
    if engine_name() == "reference":
        return get_array_module(a).asarray(_loops(to_numpy(a), to_numpy(b)))
    if not (kernel_size >= settings.DENSE_THREADS_FROM and kernels_for(a) is cpu_kernels):
        return a @ b
    out = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    length = a.shape[0] if split == "rows" else b.shape[1]
    chunks = [slice(start, start + chunk_size) for start in range(0, length, chunk_size)]

    def multiply(chunk, _worker):
        if split == "rows":
            np.matmul(a[chunk], b, out=out[chunk])
        else:
            np.matmul(a, b[:, chunk], out=out[:, chunk])

    threads.map_chunks(multiply, chunks)
    return out


def _loops(a, b):
    """out[i, j] = sum over k of a[i, k] * b[k, j], one row of products at a time."""
    out = np.zeros((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    for i in range(a.shape[0]):
        for k in range(a.shape[1]):
            out[i] += a[i, k] * b[k]
    return out
