"""The optimizer steps' kernels: one pass over each array instead of NumPy's four."""
from __future__ import annotations

from . import cpu_kernels
from .choice import kernels_for


def step_kernels(param, slot):
    """The kernels that run an optimizer step in one pass on ``param`` and its ``slot``
    (``sgd_momentum_``, ``rmsprop_``), or None: then the optimizer's array code."""
    kernels = kernels_for(param)
    if not kernels.FUSED:
        return None
    if kernels is cpu_kernels and not (param.flags.c_contiguous and slot.flags.c_contiguous):
        return None
    return kernels
