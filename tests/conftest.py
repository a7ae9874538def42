"""Shared fixtures. ``xp`` runs a test body on NumPy and, where CuPy sees a GPU, on CuPy."""
import numpy as np
import pytest

import minicnn
from minicnn import backend

DEVICES = ["cpu"] + (["gpu"] if backend.gpu_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    """Run the test with minicnn's current device set to each available device."""
    previous = backend.device()
    backend.set_device(request.param)
    yield request.param
    backend.set_device(previous)


@pytest.fixture
def xp(device):
    """The array module of the device under test (numpy or cupy)."""
    return backend.xp()


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same seed and default layer names."""
    minicnn.set_seed(1234)
    minicnn.clear_session()
    np.random.seed(1234)


@pytest.fixture
def cpu_device():
    """Run the test on the CPU even where a GPU is the default (CPU-only behaviour)."""
    previous = backend.device()
    backend.set_device("cpu")
    yield "cpu"
    backend.set_device(previous)
