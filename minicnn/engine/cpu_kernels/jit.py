"""numba, if it is here and allowed, and the one ``jit`` decorator of minicnn.

Every numba kernel in minicnn (these modules, and the image augmentation's in
``minicnn.data.augment``) is compiled through :func:`jit`. numba missing, a numba
that does not match this NumPy, or ``MINICNN_DISABLE_NUMBA=1``: ``jit`` returns the
Python function as it is, and ``ALLOWED`` is False so that nobody calls it on big arrays.
"""
from __future__ import annotations

import os

try:  # numba is a dependency, but minicnn must still work without it
    import numba
except Exception:  # ImportError, or a numba that does not match this NumPy
    numba = None

# False: the NumPy code runs everywhere (the engine "numpy" on the CPU).
ALLOWED = numba is not None and os.environ.get("MINICNN_DISABLE_NUMBA", "") in ("", "0")


def jit(function=None, *, fastmath=False, inline=False):
    """``numba.njit`` with on-disk caching, and without it where no cache dir is writable.

    A kernel runs on one core, on purpose: numba's own threads (``parallel=True``)
    fight OpenBLAS's spinning threads for the cores. Instead each thread of
    ``engine.threads`` calls a kernel on its own chunk of the batch, with BLAS pinned
    to one thread; ``nogil=True`` lets those threads run at once.

    ``@jit(fastmath={"contract"})`` lets LLVM fuse ``a += b * c`` into one
    fused multiply-add (one rounding instead of two), nothing else.
    ``@jit(inline=True)``: a helper that numba copies into each kernel that calls it,
    where a call per tile would cost as much as the helper's work.
    """
    if function is None:
        return lambda f: jit(f, fastmath=fastmath, inline=inline)
    if numba is None:
        return function
    options = dict(nogil=True, fastmath=fastmath, inline="always" if inline else "never")
    try:
        return numba.njit(cache=True, **options)(function)
    except Exception:  # "no locator available": neither the package nor ~/.cache is writable
        return numba.njit(**options)(function)
