"""The engine's knobs, each with the reason for its value.

The timings behind these values are in benchmarks/results/ (the per-layer tables);
tests change them (``monkeypatch.setattr(settings, ...)``) to force the rarer paths on
small inputs. Sizes are in bytes unless named otherwise.
"""

# At most this much im2col matrix at once, on any device: VGG16's first layers at batch
# 32 would need over a gigabyte for the whole batch.
IM2COL_BUDGET_BYTES = 256 * 2**20

# With the numba kernels, a chunk's im2col matrix is about this size, so that it is
# still in the core's cache when the matrix product (and the backward pass) reads it.
CPU_CHUNK_BYTES = 4 * 2**20

# Conv2D's default for ``winograd_min_channels``: below 32 input channels the 16
# products (tiles, C) @ (C, F) of F(2x2, 3x3) are too thin to beat im2col.
WINOGRAD_MIN_CHANNELS = 32

# A Winograd forward chunk: at least this many tiles, so the 16 products run well and
# the Python overhead per chunk stays small ...
WINOGRAD_TILES_PER_CHUNK = 192
# ... and as many more as this many bytes of V and M hold, which stay in the L2 cache.
WINOGRAD_CHUNK_BYTES = 3 * 2**19

# The Winograd kernel gradient's tiles per product: enough for OpenBLAS to run well on
# the long (C, tiles) @ (tiles, F) products, few enough for V and Z to stay in the cache.
WINOGRAD_TILES_PER_PRODUCT = 512

# Dense kernels of at least this many weights are multiplied in chunks shared among the
# threads (BLAS itself runs on one thread during a step, see ``threads``) ...
DENSE_THREADS_FROM = 2**18
# ... chunks of this many rows or columns, a fixed size so that the numbers do not
# depend on the number of threads.
DENSE_CHUNK = 4096
# The forward product's chunks of kernel columns: the output has few (a Dense(64)).
DENSE_FORWARD_CHUNK = 32
