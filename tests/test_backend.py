"""The backend: device choice, transfers, and prefetching batches to the device."""
import numpy as np
import pytest

from minicnn import backend


def test_unknown_device_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"unknown device 'tpu'.*\('cpu', 'gpu'\)"):
        backend.set_device("tpu")


def test_to_device_and_back_keeps_values_and_casts(device, xp):
    host = np.arange(12, dtype=np.float64).reshape(3, 4)
    on_device = backend.to_device(host, dtype=np.float32)
    assert backend.get_array_module(on_device) is xp and on_device.dtype == np.float32
    np.testing.assert_array_equal(backend.to_numpy(on_device), host.astype(np.float32))


def test_prefetch_yields_every_batch_in_order_on_the_device(device, xp):
    rng = np.random.default_rng(0)
    batches = [(rng.random((4, 3, 2)), rng.integers(0, 2, (4, 1)).astype(np.float32))
               for _ in range(5)]
    got = list(backend.prefetch_to_device(iter(batches)))
    assert len(got) == len(batches)
    for (x, y), (xd, yd) in zip(batches, got):
        assert backend.get_array_module(xd) is xp and backend.get_array_module(yd) is xp
        np.testing.assert_array_equal(backend.to_numpy(xd), x.astype(np.float32))
        np.testing.assert_array_equal(backend.to_numpy(yd), y)


def test_prefetch_of_nothing_yields_nothing(device):
    assert list(backend.prefetch_to_device(iter([]))) == []
