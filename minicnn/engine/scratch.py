"""One cache of arrays per layer, reused from step to step.

Why: a new large NumPy array costs as much as filling it, because the OS maps and
zeroes each page on first touch (and, in a VM that hands freed memory back to its
host, several times that). A training step needs the same shapes every time, so the
engine keeps its arrays and hands them out again:

* :meth:`Scratch.buffer`: a work array (im2col matrix, Winograd tiles) that never
  leaves the engine: always reused;
* :meth:`Scratch.result`: an array returned to the caller (a layer's output or input
  gradient): reused only when its reference count shows that nobody kept it (or a
  view of it), so a result someone holds never changes under them.

CuPy arrays are not recycled as results: CuPy's memory pool already reuses GPU memory.
"""
from __future__ import annotations

import math
import sys
import weakref

import numpy as np

from ..backend import get_array_module


class Scratch:
    """The arrays one layer's passes reuse (see the module's docstring)."""

    def __init__(self):
        self._buffers: dict = {}
        self._results: dict = {}

    def buffer(self, name, shape, like):
        """A work array of ``shape`` (device and dtype of ``like``), reused between steps."""
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if (buffer is None or buffer.size < size or buffer.dtype != like.dtype
                or get_array_module(buffer) is not get_array_module(like)):
            buffer = get_array_module(like).empty(size, dtype=like.dtype)
            self._buffers[name] = buffer
        return buffer[:size].reshape(shape)

    def result(self, name, shape, like, dtype=None):
        """An empty array of ``shape`` (device of ``like``; its dtype unless ``dtype`` is
        given) for the result ``name``: last step's when nobody else refers to it, else new."""
        dtype = like.dtype if dtype is None else np.dtype(dtype)
        old = self._results.pop(name, None)
        # getrefcount counts `old` and its own argument: 2 means nobody else holds it.
        if (old is not None and type(old) is np.ndarray and type(like) is np.ndarray
                and old.shape == tuple(shape) and old.dtype == dtype
                and sys.getrefcount(old) == 2):
            array = old
        else:
            array = get_array_module(like).empty(shape, dtype=dtype)
        if type(array) is np.ndarray:
            self._results[name] = array
        return array


_scratch: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def scratch_for(layer) -> Scratch:
    """The cache of ``layer``, made on first use (it goes when the layer goes)."""
    cache = _scratch.get(layer)
    if cache is None:
        cache = _scratch[layer] = Scratch()
    return cache
