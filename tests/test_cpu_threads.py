"""The CPU's threads (minicnn.engine.threads): chunks of a batch shared among cores.

What must hold: every piece is done exactly once and results come back in
piece order; BLAS is pinned to one thread inside and restored after; a
worker's exception reaches the caller; and a layer, a model step and the
pooling kernels give the same numbers with 1, 2 or 3 threads.
"""
import threading
import time

import numpy as np
import pytest

import minicnn
from minicnn.engine import cpu_kernels, settings
from minicnn.engine import threads as cpu_threads

needs_threads = pytest.mark.skipif(cpu_threads.threadpoolctl is None,
                                   reason="threadpoolctl missing: minicnn runs on one thread")
needs_numba = pytest.mark.skipif(not cpu_kernels.usable(np.zeros(1, np.float32)),
                                 reason="numba kernels unavailable here")


@pytest.fixture(params=[1, 2, 3])
def threads(request, monkeypatch):
    """Pretend the machine has 1, 2 or 3 cores (the pool grows to fit)."""
    monkeypatch.setattr(cpu_threads, "thread_count", lambda: request.param)
    cpu_threads._pool.cache_clear()
    yield request.param
    cpu_threads._pool.cache_clear()


@needs_threads
def test_map_chunks_does_each_piece_once_in_order(threads):
    seen_workers = {}
    lock = threading.Lock()

    def square(piece, worker):
        time.sleep(0.001 * (piece % 3))     # finish out of order
        with lock:
            seen_workers.setdefault(worker, []).append(piece)
        return piece * piece

    assert cpu_threads.map_chunks(square, range(10)) == [p * p for p in range(10)]
    assert sorted(seen_workers) == list(range(threads))
    # each worker takes one contiguous run of pieces, in order
    runs = [seen_workers[w] for w in range(threads)]
    assert sum(runs, []) == list(range(10))


def test_map_chunks_disabled_runs_in_the_calling_thread(threads):
    callers = set()
    cpu_threads.map_chunks(lambda p, w: callers.add((threading.get_ident(), w)), range(6),
                           enabled=False)
    assert callers == {(threading.get_ident(), 0)}


@needs_threads
def test_a_worker_exception_reaches_the_caller(threads):
    def fail_on_last(piece, worker):
        if piece == 5:
            raise ValueError("piece 5 is bad")
        return piece

    with pytest.raises(ValueError, match="piece 5 is bad"):
        cpu_threads.map_chunks(fail_on_last, range(6))


@needs_threads
def test_blas_runs_on_one_thread_inside_and_comes_back_after(threads):
    libraries = cpu_threads._blas_libraries()
    if not libraries:
        pytest.skip("threadpoolctl finds no BLAS library here")
    before = [lib.num_threads for lib in libraries]
    with cpu_threads.single_threaded_blas():
        with cpu_threads.single_threaded_blas():   # nested: still one thread
            assert [lib.num_threads for lib in libraries] == [1] * len(libraries)
        assert [lib.num_threads for lib in libraries] == [1] * len(libraries)
    assert [lib.num_threads for lib in libraries] == before


def test_bad_thread_count_from_the_environment_is_named(monkeypatch):
    cpu_threads.thread_count.cache_clear()
    monkeypatch.setenv("MINICNN_CPU_THREADS", "two")
    try:
        with pytest.raises(ValueError, match="MINICNN_CPU_THREADS must be a positive integer"):
            cpu_threads.thread_count()
        monkeypatch.setenv("MINICNN_CPU_THREADS", "3")
        cpu_threads.thread_count.cache_clear()
        assert cpu_threads.thread_count() == 3
    finally:
        cpu_threads.thread_count.cache_clear()


@needs_threads
@pytest.mark.parametrize("count", [1, 3, 8, 9, 17])
def test_sum_chunks_adds_in_piece_order_in_waves(threads, count):
    rng = np.random.default_rng(count)
    # float32 values of very different sizes: the sum depends on the order of additions
    values = (rng.standard_normal(count) * 10.0 ** rng.integers(-6, 6, count)).astype(np.float32)

    def part(piece, worker):
        return np.array([values[piece]], np.float32), np.array([1.0], np.float32)

    total, pieces = cpu_threads.sum_chunks(part, range(count))
    in_order = np.float32(values[0])
    for value in values[1:]:
        in_order = np.float32(in_order + value)
    assert total[0] == in_order and pieces[0] == count
    assert cpu_threads.sum_chunks(lambda p, w: np.ones(2) * p, range(4)).tolist() == [6.0, 6.0]
    with pytest.raises(ValueError, match="at least one chunk"):
        cpu_threads.sum_chunks(part, [])


@pytest.mark.parametrize("n", [0, 1, 2, 5, 32])
def test_batch_chunks_cover_the_batch(n, threads):
    slices = cpu_threads.batch_chunks(n)
    assert slices[0].start == 0 and slices[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(slices, slices[1:]))
    assert len(slices) <= max(1, min(threads, n))


def _one_thread(function):
    """``function()`` with minicnn's CPU work on a single thread."""
    saved = cpu_threads.thread_count
    cpu_threads.thread_count = lambda: 1
    try:
        return function()
    finally:
        cpu_threads.thread_count = saved


@needs_numba
@pytest.mark.parametrize("channels,padding", [(3, "same"), (6, "valid")])
def test_conv_layer_gives_the_same_numbers_on_any_number_of_threads(channels, padding, threads,
                                                                   cpu_device, monkeypatch):
    rng = np.random.default_rng(5)
    layer = minicnn.Conv2D(4, 3, padding=padding, activation="relu",
                           input_shape=(9, 8, channels))
    layer.build((9, 8, channels))
    layer.set_weights([layer.get_weights()[0], rng.standard_normal(4).astype(np.float32)])
    # one image per chunk, and bands of 2 output rows in the forward pass
    monkeypatch.setattr(settings, "CPU_CHUNK_BYTES", 2 * 8 * 9 * channels * 4 + 4)
    x = rng.standard_normal((5, 9, 8, channels)).astype(np.float32)
    grad_y = rng.standard_normal((5, *layer.output_shape)).astype(np.float32)

    def run(need_input_grad):
        y = layer.forward(x, training=True).copy()
        grad_x = layer.backward(grad_y, need_input_grad=need_input_grad)
        return y, None if grad_x is None else grad_x.copy(), \
            {k: v.copy() for k, v in layer.grads.items()}

    for need_input_grad in (True, False):   # False + 3 channels: the direct filter gradient
        expected = _one_thread(lambda: run(need_input_grad))
        y, grad_x, grads = run(need_input_grad)
        np.testing.assert_array_equal(y, expected[0])
        if need_input_grad:
            np.testing.assert_array_equal(grad_x, expected[1])
        for key in grads:
            np.testing.assert_array_equal(grads[key], expected[2][key])


@needs_numba
def test_pooling_gives_the_same_numbers_on_any_number_of_threads(threads):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((7, 9, 10, 3)).astype(np.float32)
    out, argmax = cpu_kernels.maxpool2d_forward(x, (3, 3), (2, 2), "same")
    expected_out, expected_argmax = _one_thread(
        lambda: cpu_kernels.maxpool2d_forward(x, (3, 3), (2, 2), "same"))
    np.testing.assert_array_equal(out, expected_out)
    np.testing.assert_array_equal(argmax, expected_argmax)
    grad_out = rng.standard_normal(out.shape).astype(np.float32)
    for pool, stride in (((3, 3), (2, 2)), ((2, 2), (2, 2))):
        out, argmax = cpu_kernels.maxpool2d_forward(x, pool, stride, "same")
        grad_x = cpu_kernels.maxpool2d_backward(grad_out[:, :out.shape[1], :out.shape[2]],
                                                argmax, x.shape, pool, stride, "same")
        expected = _one_thread(lambda: cpu_kernels.maxpool2d_backward(
            grad_out[:, :out.shape[1], :out.shape[2]], argmax, x.shape, pool, stride, "same"))
        np.testing.assert_array_equal(grad_x, expected)


@needs_numba
def test_a_training_step_gives_the_same_weights_on_any_number_of_threads(threads, cpu_device):
    def train():
        minicnn.set_seed(3)
        model = minicnn.Sequential([
            minicnn.Conv2D(4, 3, activation="relu", input_shape=(12, 12, 3)),
            minicnn.MaxPooling2D(),
            minicnn.Conv2D(6, 3, activation="relu"),
            minicnn.Flatten(),
            minicnn.Dense(2, activation="softmax"),
        ])
        model.compile(minicnn.SGD(0.1, momentum=0.9), "categorical_crossentropy")
        rng = np.random.default_rng(0)
        x = rng.random((6, 12, 12, 3), dtype=np.float32)
        y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, 6)]
        for _ in range(2):
            model.train_on_batch(x, y)
        return model.get_weights()

    expected = _one_thread(train)
    for got, want in zip(train(), expected):
        np.testing.assert_array_equal(got, want)


def test_without_threadpoolctl_everything_runs_in_the_calling_thread(monkeypatch):
    """BLAS cannot be pinned to one thread then, so minicnn's threads would fight its."""
    monkeypatch.setattr(cpu_threads, "threadpoolctl", None)
    monkeypatch.setattr(cpu_threads, "thread_count", lambda: 4)
    cpu_threads._blas_libraries.cache_clear()
    try:
        assert not cpu_threads.parallel()
        callers = set()
        assert cpu_threads.map_chunks(
            lambda p, w: callers.add((threading.get_ident(), w)) or p, range(5)) == list(range(5))
        assert callers == {(threading.get_ident(), 0)}
        assert cpu_threads.batch_chunks(10) == [slice(0, 10)]
        with cpu_threads.single_threaded_blas():   # a no-op, not an error
            pass
    finally:
        cpu_threads._blas_libraries.cache_clear()


@needs_numba
def test_large_dense_layers_give_the_same_numbers_in_pieces(threads, monkeypatch):
    """A Dense layer with a large kernel multiplies in pieces shared among the threads;
    the results equal one product's and do not depend on the number of threads."""
    rng = np.random.default_rng(7)
    layer = minicnn.Dense(40, activation="relu")
    layer.build((300,))
    x = rng.standard_normal((6, 300)).astype(np.float32)
    grad_y = rng.standard_normal((6, 40)).astype(np.float32)

    def run():
        y = layer.forward(x, training=True).copy()
        grad_x = layer.backward(grad_y)
        return y, grad_x, layer.grads["kernel"].copy()

    plain = run()
    monkeypatch.setattr(settings, "DENSE_THREADS_FROM", 1)     # pieces from here on
    monkeypatch.setattr(settings, "DENSE_CHUNK", 7)            # several, and a short last one
    pieces = run()
    for got, want in zip(pieces, plain):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    expected = _one_thread(run)
    for got, want in zip(pieces, expected):
        np.testing.assert_array_equal(got, want)
