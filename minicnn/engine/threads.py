"""Every core for the CPU kernels: the batch cut into chunks, one thread per core.

Each numba kernel runs on one core, and the matrix products of a convolution are
too skinny ((5625 x 288) @ (288 x 32) per image for the tutorial's second layer) for
OpenBLAS to spread well over several. So on the CPU minicnn parallelises the other
way round: the work is cut into chunks (slices of the batch, or of one image's rows),
each thread takes whole chunks through im2col -> matrix product -> bias + ReLU while
the chunk is still in its core's cache, and BLAS runs on one thread inside each chunk
(benchmarks/results/ has the timings of both ways).

BLAS has to stay on one thread for the whole step, not only inside the chunks:
after a multi-threaded product, OpenBLAS's own threads keep spinning for a while
and fight ours for the cores. ``Sequential.forward`` and ``backward`` therefore run
under :func:`single_threaded_blas`, and so does every :func:`map_chunks`.

Results do not depend on the number of threads: every chunk is computed on its own
and the caller combines the chunks' results in chunk order, as one thread would.

The number of threads: ``MINICNN_CPU_THREADS`` if set, else the cores this
process may run on. One thread, or no ``threadpoolctl`` (needed to pin BLAS
to one thread), runs the chunks one after another in the calling thread.
"""
from __future__ import annotations

import contextlib
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

try:
    import threadpoolctl
except ImportError:   # a dependency; without it minicnn runs on one thread
    threadpoolctl = None


@functools.lru_cache(maxsize=1)
def thread_count() -> int:
    """Threads for the CPU kernels: ``MINICNN_CPU_THREADS``, else the usable cores."""
    requested = os.environ.get("MINICNN_CPU_THREADS", "").strip()
    if requested:
        if not requested.isdigit() or int(requested) < 1:
            raise ValueError(f"MINICNN_CPU_THREADS must be a positive integer, "
                             f"got {requested!r}")
        return int(requested)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:   # not on Linux
        return max(1, os.cpu_count() or 1)


@functools.lru_cache(maxsize=1)
def _blas_libraries():
    """threadpoolctl's handles on the BLAS libraries loaded in this process (NumPy's)."""
    if threadpoolctl is None:
        return ()
    return tuple(threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers)


_blas_lock = threading.Lock()
_blas_depth = 0          # how many single_threaded_blas() blocks are open
_blas_saved = ()         # each library's thread count before the outermost one


@contextlib.contextmanager
def single_threaded_blas():
    """Run the block with BLAS on one thread; nested blocks are free.

    Setting the thread count is a plain C call (under a microsecond), so a
    training step can afford it twice. The previous counts come back on exit.
    """
    global _blas_depth, _blas_saved
    with _blas_lock:
        if _blas_depth == 0:
            libraries = _blas_libraries()
            _blas_saved = tuple(lib.num_threads for lib in libraries)
            for lib in libraries:
                lib.set_num_threads(1)
        _blas_depth += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_depth -= 1
            if _blas_depth == 0:
                for lib, count in zip(_blas_libraries(), _blas_saved):
                    lib.set_num_threads(count)


@functools.lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    # The calling thread works too, so the pool needs one thread fewer than there are cores.
    return ThreadPoolExecutor(max_workers=max(1, thread_count() - 1),
                              thread_name_prefix="minicnn-cpu")


def parallel() -> bool:
    """Whether :func:`map_chunks` runs chunks on several threads here."""
    return thread_count() > 1 and threadpoolctl is not None and bool(_blas_libraries())


def map_chunks(function, chunks, enabled=True):
    """``[function(chunk, worker) for chunk in chunks]``, chunks shared among the threads.

    Thread ``worker`` (0 .. threads-1) takes one contiguous run of the chunks, in
    order, so ``worker`` can pick that thread's scratch buffers. The results come
    back in chunk order. ``enabled=False`` (a GPU array, say) runs everything here.
    """
    chunks = list(chunks)
    workers = min(thread_count(), len(chunks)) if enabled and parallel() else 1
    if workers <= 1:
        return [function(chunk, 0) for chunk in chunks]
    bounds = [len(chunks) * w // workers for w in range(workers + 1)]

    def run(worker):
        return [function(chunk, worker) for chunk in chunks[bounds[worker]:bounds[worker + 1]]]

    with single_threaded_blas():
        others = [_pool().submit(run, worker) for worker in range(1, workers)]
        try:
            results = run(0)
        finally:   # never return (or raise) while another thread still writes
            wait(others)
        for future in others:   # .result() re-raises a worker's exception here
            results.extend(future.result())
    return results


CHUNKS_PER_GROUP = 8


def sum_chunks(function, chunks, enabled=True):
    """The sum over chunks of ``function(chunk, worker)`` (arrays, or tuples of arrays).

    The chunks run in groups of ``CHUNKS_PER_GROUP`` (or one per thread, if more), and
    each group's results are added to the total in chunk order before the next group
    starts: the same sum, in the same order, on any number of threads, with a bounded
    number of partial results in memory (VGG16's deepest kernels: 16 MB each).
    """
    chunks = list(chunks)
    group = max(CHUNKS_PER_GROUP, thread_count()) if enabled and parallel() else 1
    total = None
    for start in range(0, len(chunks), group):
        for result in map_chunks(function, chunks[start:start + group], enabled):
            terms = result if isinstance(result, tuple) else (result,)
            if total is None:
                total = [term.copy() for term in terms]
            else:
                for sum_so_far, term in zip(total, terms):
                    sum_so_far += term
    if total is None:
        raise ValueError("sum_chunks needs at least one chunk")
    return tuple(total) if isinstance(result, tuple) else total[0]


def batch_chunks(n, enabled=True):
    """Slices that cut a batch of ``n`` into one contiguous chunk per thread."""
    workers = max(1, min(thread_count(), n) if enabled and parallel() else 1)
    return [slice(n * w // workers, n * (w + 1) // workers) for w in range(workers)]
