"""numba kernels for the CPU (filled in by the speed work; see issue 6)."""


def usable(x) -> bool:
    return False
