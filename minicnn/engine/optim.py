"""The optimizer steps' kernels: one pass over each array instead of NumPy's four to ten."""
from __future__ import annotations

from . import cpu_kernels
from .choice import kernels_for
from .cpu_kernels import optim as cpu_optim


def step_kernels(param, *slots):
    """The module whose kernels run an optimizer step in one pass on ``param`` and its
    ``slots`` (``sgd_momentum_``, ``rmsprop_``; ``adam_`` on the CPU), or None: then the
    optimizer's array code. An optimizer asks for its kernel with
    ``getattr(kernels, "adam_", None)``: a device without it runs the array code."""
    kernels = kernels_for(param)
    if not kernels.FUSED:
        return None
    if kernels is cpu_kernels:
        if not all(a.flags.c_contiguous for a in (param, *slots)):
            return None
        return cpu_optim
    return kernels
