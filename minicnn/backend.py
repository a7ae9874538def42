"""The one module that knows whether arrays live in NumPy (CPU) or CuPy (GPU).

Every other module is written once against an array module ``xp`` that it gets
from here, so the same layer code runs on both devices:

    xp = get_array_module(x)        # numpy or cupy, from the array itself
    y = xp.maximum(x, 0)

The current device decides where *new* arrays (weights, dropout masks, input
batches) are created. It is chosen, in order of precedence, by
``set_device("cpu" | "gpu")``, the environment variable ``MINICNN_DEVICE``,
and otherwise: the GPU when CuPy imports and sees a CUDA device, else the CPU.

No other module imports cupy.
"""
from __future__ import annotations

import os

import numpy as np

_VALID_DEVICES = ("cpu", "gpu")
_cupy = None            # the cupy module once imported successfully
_cupy_checked = False   # whether we already tried
_device: str | None = None


def _load_cupy():
    """Import CuPy once; return it when a CUDA device is usable, else None."""
    global _cupy, _cupy_checked
    if not _cupy_checked:
        _cupy_checked = True
        try:
            import cupy  # noqa: PLC0415  (the only cupy import in minicnn)

            if cupy.cuda.runtime.getDeviceCount() > 0:
                _cupy = cupy
        except Exception:  # ImportError, CUDA driver errors, no device...
            _cupy = None
    return _cupy


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    return _load_cupy() is not None


def set_device(name: str) -> None:
    """Choose where new arrays are created: ``"cpu"`` or ``"gpu"``."""
    global _device
    name = str(name).lower()
    if name not in _VALID_DEVICES:
        raise ValueError(f"unknown device {name!r}: expected one of {_VALID_DEVICES}")
    if name == "gpu" and not gpu_available():
        raise RuntimeError(
            "device 'gpu' requested but CuPy is not installed or sees no CUDA device; "
            "install the GPU extra (pip install 'minicnn[gpu]') or use set_device('cpu')"
        )
    _device = name


def device() -> str:
    """The current device, ``"cpu"`` or ``"gpu"``."""
    global _device
    if _device is None:
        requested = os.environ.get("MINICNN_DEVICE", "").strip().lower()
        if requested:
            set_device(requested)
        else:
            _device = "gpu" if gpu_available() else "cpu"
    return _device


def xp():
    """The array module of the current device (numpy or cupy)."""
    return _load_cupy() if device() == "gpu" else np


def get_array_module(x):
    """numpy or cupy, whichever owns the array ``x``."""
    cupy = _cupy
    if cupy is None and type(x).__module__.startswith("cupy"):
        cupy = _load_cupy()   # a CuPy array made before minicnn looked for a GPU
    if cupy is not None and isinstance(x, cupy.ndarray):
        return cupy
    return np   # never import cupy just to look at a NumPy array


def is_gpu_array(x) -> bool:
    return get_array_module(x) is not np


def to_device(x, dtype=None):
    """Copy ``x`` (array-like) to the current device, optionally casting it."""
    module = xp()
    if module is np:
        x = to_numpy(x)
        return np.asarray(x, dtype=dtype)
    return module.asarray(x, dtype=dtype)


def to_numpy(x):
    """A NumPy array with the contents of ``x`` (a no-op for NumPy input)."""
    if is_gpu_array(x):
        return x.get()
    return np.asarray(x)


def synchronize(x=None) -> None:
    """Wait for queued GPU work (for honest timings); a no-op on the CPU."""
    if _cupy is not None and (x is None or is_gpu_array(x)):
        _cupy.cuda.get_current_stream().synchronize()


def prefetch_to_device(batches):
    """Yield the ``(x, y)`` batches of ``batches`` as float32 arrays on the current device,
    copying batch k+1 to the GPU while the caller trains on batch k.

    On the GPU the next batch goes into page-locked ("pinned") host memory and
    from there to the device on a second CUDA stream, which runs beside the
    stream that computes; the computing stream waits for that copy only when it
    needs the batch. On the CPU there is nothing to copy: arrays that already
    are float32 pass through as they are.
    """
    if device() != "gpu":
        for batch in batches:
            yield tuple(np.asarray(to_numpy(array), dtype=np.float32) for array in batch)
        return
    cupy = _load_cupy()
    copy_stream = cupy.cuda.Stream(non_blocking=True)

    def start_copy(batch):
        on_device, keep_alive = [], []
        # The targets come from the memory pool of the computing stream, which may hand
        # out blocks that its queued kernels still read: the copy waits for those first.
        copy_stream.wait_event(cupy.cuda.get_current_stream().record())
        for array in batch:
            if isinstance(array, cupy.ndarray):
                on_device.append(array)
                continue
            host = np.ascontiguousarray(array, dtype=np.float32)
            pinned = cupy.cuda.alloc_pinned_memory(host.nbytes)
            staged = np.frombuffer(pinned, np.float32, host.size).reshape(host.shape)
            staged[...] = host
            target = cupy.empty(host.shape, dtype=np.float32)
            target.set(staged, stream=copy_stream)   # asynchronous: from pinned memory
            on_device.append(target)
            keep_alive.append(pinned)   # held until the computing stream has waited for it
        return tuple(on_device), copy_stream.record(), keep_alive

    pending = None
    for batch in batches:
        started = start_copy(batch)
        if pending is not None:
            arrays, done, _ = pending
            cupy.cuda.get_current_stream().wait_event(done)
            yield arrays
        pending = started
    if pending is not None:
        arrays, done, _ = pending
        cupy.cuda.get_current_stream().wait_event(done)
        yield arrays


def image_data_format() -> str:
    """Always "channels_last": minicnn's images are (N, H, W, C), Keras's default. (Keras
    2 tutorials ask ``K.image_data_format()`` to choose their input shape.)"""
    return "channels_last"
