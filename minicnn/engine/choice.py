"""Which engine runs the layers, and the one place that picks the kernels for an array.

Three engines, the same numbers to float32 rounding (``tests/test_engines.py``):

* ``"reference"``: every layer through the plain loops of ``ops.reference`` (slow: for
  stepping through a convolution in a debugger); Flatten, Dropout and Activation run
  the same array code as in the other engines: a reshape, a mask and an elementwise
  function have no loop version that would show more;
* ``"numpy"``: the plain im2col code of ``ops`` on NumPy or CuPy arrays;
* ``"fast"`` (the default): the fastest this device has, numba kernels, threads,
  Winograd and fusion on the CPU, CuPy kernels on the GPU; the ``"numpy"`` code where
  those do not apply (float64 arrays, numba missing or ``MINICNN_DISABLE_NUMBA=1``).
"""
from __future__ import annotations

import contextlib
import os

from . import cpu_kernels, gpu_kernels, numpy_kernels

ENGINES = ("reference", "numpy", "fast")


def _checked(name) -> str:
    name = str(name).lower()
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}: expected one of {ENGINES}")
    return name


_current = _checked(os.environ.get("MINICNN_ENGINE", "").strip() or "fast")


def set_engine(name: str) -> None:
    """Run every layer from now on with ``"reference"``, ``"numpy"`` or ``"fast"``.

    ``"reference"`` runs the convolution, pooling and dense layers through plain loops;
    Flatten, Dropout and Activation have no loop version to show (a reshape, a mask, an
    elementwise function) and run the same code under every engine.
    """
    global _current
    _current = _checked(name)


def engine_name() -> str:
    """The engine the layers run with now: ``"reference"``, ``"numpy"`` or ``"fast"``."""
    return _current


@contextlib.contextmanager
def use_engine(name: str):
    """``with use_engine("reference"): ...`` runs the block with that engine, then goes
    back to the one before."""
    global _current
    previous, _current = _current, _checked(name)
    try:
        yield
    finally:
        _current = previous


def kernels_for(x):
    """The kernels for array ``x``: ``cpu_kernels`` (numba), ``gpu_kernels`` (CuPy), or
    ``numpy_kernels`` (the plain ``ops`` code, for the engine "numpy" and for arrays the
    fast kernels do not take). The only place in minicnn that makes this choice."""
    if _current == "fast":
        if cpu_kernels.usable(x):
            return cpu_kernels
        if gpu_kernels.usable(x):
            return gpu_kernels
    return numpy_kernels
