"""Layers. Each keeps its forward and backward pass side by side.

Every layer has

* ``forward(x, training=False) -> y``: computes the output and remembers what
  the backward pass will need;
* ``backward(grad_y) -> grad_x``: given dLoss/dy, stores dLoss/dparam in
  ``self.grads`` (same keys as ``self.params``) and returns dLoss/dx;
* ``params`` / ``grads``: ordered dicts of arrays, in Keras's weight order
  (kernel, then bias), so that ``get_weights`` lines up with Keras one-to-one.

Shapes are channels-last as in Keras: images (N, H, W, C), conv kernels
(KH, KW, C_in, C_out), dense kernels (in, out). Shapes written without the
batch axis (``input_shape``, ``output_shape``) are those of one sample.
"""
from __future__ import annotations

import math
import sys
from collections import defaultdict

import numpy as np

from . import activations, initializers
from .backend import get_array_module, to_device, to_numpy
from .backend import xp as device_array_module
from .ops import conv2d_backward, conv2d_forward, cpu_kernels, cpu_threads, gpu_kernels, im2col
from .ops import maxpool2d_backward, maxpool2d_forward, winograd
from .ops.conv import column_sums, conv_geometry
from .ops.padding import check_padding
from .random import new_generator, new_seed

_name_counts: dict[str, int] = defaultdict(int)


def unique_name(prefix: str) -> str:
    """Keras-style default names: conv2d, conv2d_1, conv2d_2, ..."""
    count = _name_counts[prefix]
    _name_counts[prefix] += 1
    return prefix if count == 0 else f"{prefix}_{count}"


def clear_session() -> None:
    """Restart default layer names from ``conv2d``, ``dense``... (as Keras's does)."""
    _name_counts.clear()


def _is_positive_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def _positive_int(value, what):
    """``value`` as an int, which must be >= 1 (Keras's wording for the error)."""
    if not _is_positive_int(value):
        raise ValueError(f"{what} must be a positive integer. Received: {what}={value!r}")
    return int(value)


def _pair(value, what):
    pair = (value, value) if _is_positive_int(value) else value
    try:
        pair = tuple(pair)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(_is_positive_int(v) for v in pair):
        raise ValueError(f"{what} must be a positive integer or a pair of them. "
                         f"Received: {what}={value!r}")
    return tuple(int(v) for v in pair)


def check_layer_name(name):
    """Layer names key groups in HDF5 files (weights, optimizer slots), so, as Keras 3
    does, a name must be a non-empty string without "/" (and not "." or "..")."""
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise ValueError("Argument `name` must be a non-empty string, not '.' or '..', and "
                         f"cannot contain character `/`. Received: name={name!r}")
    return name


class Layer:
    """Base class: naming, building on the first input, shape checks, weights."""

    default_name = "layer"
    expected_rank: int | None = None   # rank of one sample, e.g. 3 for (H, W, C)

    def __init__(self, name=None, input_shape=None, trainable=True):
        self.name = check_layer_name(unique_name(self.default_name) if name is None else name)
        self.trainable = trainable
        self.params: dict = {}
        self.grads: dict = {}
        self.input_shape = self._sample_shape(input_shape) if input_shape is not None else None
        self.output_shape = None
        self.built = False
        self._recycled: dict = {}   # last step's big result arrays (see _recycle)

    # -- building ---------------------------------------------------------
    def _sample_shape(self, shape):
        """``shape`` (one sample, no batch axis) as a tuple of positive ints."""
        try:
            dims = tuple(shape)
        except TypeError:
            dims = None
        if not dims or not all(_is_positive_int(d) for d in dims):
            raise ValueError(f"layer {self.name!r} ({type(self).__name__}): the input shape of "
                             "one sample (no batch axis) must be a tuple of positive "
                             f"integers, e.g. (28, 28, 1). Received: input_shape={shape!r}")
        return tuple(int(d) for d in dims)

    def build(self, input_shape):
        """Create parameters for one sample of shape ``input_shape`` (no batch axis)."""
        input_shape = self._sample_shape(input_shape)
        if self.expected_rank is not None and len(input_shape) != self.expected_rank:
            raise ValueError(
                f"layer {self.name!r} ({type(self).__name__}) expects inputs of rank "
                f"{self.expected_rank + 1} (batch, {self._shape_words()}), got a sample "
                f"shape {input_shape} (rank {len(input_shape) + 1} with the batch)")
        self.input_shape = input_shape
        self.output_shape = self.compute_output_shape(input_shape)
        self._create_params(input_shape)
        self.built = True

    def _shape_words(self):
        return {3: "height, width, channels", 1: "features"}.get(self.expected_rank, "...")

    def _create_params(self, input_shape):
        pass

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _accept(self, x):
        """Build on first use, check that ``x`` has the shape this layer was built for, and
        bring ``x`` to the device of the layer's weights (a NumPy batch into a GPU layer)."""
        if not self.built:
            self.build(x.shape[1:] if self.input_shape is None else self.input_shape)
        if self.params:
            weights_xp = get_array_module(next(iter(self.params.values())))
            if get_array_module(x) is not weights_xp:
                x = to_numpy(x) if weights_xp is np else weights_xp.asarray(x)
        if x.ndim != len(self.input_shape) + 1 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"layer {self.name!r} ({type(self).__name__}) expects input shape "
                f"(batch, {', '.join(map(str, self.input_shape))}), got {tuple(x.shape)}")
        if x.shape[0] == 0:
            raise ValueError(f"layer {self.name!r} ({type(self).__name__}) got an empty batch "
                             f"{tuple(x.shape)}: expected at least one sample")
        return x

    # What a forward pass keeps for the backward pass (attributes set by forward).
    _forward_state = ("_x", "_y", "_cols", "_mask", "_argmax", "_pooled")

    def forget_forward_state(self):
        """Drop what the last forward pass kept for the backward pass (input, output...).

        ``Sequential.forward`` calls this on every layer before a new pass. Otherwise a
        layer would still hold its last input, the previous layer's last output, just when
        that layer wants to reuse the array (see ``_recycle``), and every output of a chain
        of convolutions would be a new array, page faults and all.
        """
        for attribute in self._forward_state:
            setattr(self, attribute, None)

    def _recycle(self, name, shape, like, dtype=None):
        """An empty array of ``shape`` (device of ``like``; its dtype unless ``dtype`` is
        given) for the result ``name``: last step's array for it when nothing else refers
        to it any more, else a new one.

        Why: a new large NumPy array costs as much as filling it, because the OS maps and
        zeroes each page on first touch (10 ms per 92 MB here, and several times that, at
        random, in a VM that hands freed memory back to its host). Reusing last step's
        array skips this. It is reused only when its reference count shows that no caller
        kept it (or a view of it), so a result someone holds never changes under them.
        CuPy arrays are not recycled: CuPy's memory pool already reuses GPU memory.
        """
        dtype = like.dtype if dtype is None else np.dtype(dtype)
        old = self._recycled.pop(name, None)
        # getrefcount counts `old` and its own argument: 2 means nobody else holds it.
        if (old is not None and type(old) is np.ndarray and type(like) is np.ndarray
                and old.shape == tuple(shape) and old.dtype == dtype
                and sys.getrefcount(old) == 2):
            array = old
        else:
            array = get_array_module(like).empty(shape, dtype=dtype)
        if type(array) is np.ndarray:
            self._recycled[name] = array
        return array

    def _add_param(self, key, value):
        self.params[key] = to_device(value, dtype=np.float32)

    # -- weights ----------------------------------------------------------
    def count_params(self) -> int:
        return sum(int(np.prod(p.shape)) for p in self.params.values())

    def get_weights(self):
        return [to_numpy(p).copy() for p in self.params.values()]

    def set_weights(self, weights):
        """Copy ``weights`` (Keras's order) into the layer; on an error nothing changes."""
        self.assign_weights(self.prepare_weights(weights))

    def prepare_weights(self, weights):
        """Checked float32 copies of ``weights`` on the device, for ``assign_weights``.

        Copies, as Keras makes: training updates the parameters in place, and must not
        change the caller's arrays nor a parameter of another model given the same ones.
        All are checked and copied before any is assigned, so that a failure leaves the
        layer (and a model doing the same for all its layers first) as it was.
        """
        weights = list(weights)
        if len(weights) != len(self.params):
            raise ValueError(f"layer {self.name!r} has {len(self.params)} weights "
                             f"({', '.join(self.params)}), got {len(weights)}")
        for (key, current), new in zip(self.params.items(), weights):
            if tuple(np.shape(new)) != tuple(current.shape):
                raise ValueError(f"layer {self.name!r}: weight {key!r} has shape "
                                 f"{tuple(current.shape)}, got {tuple(np.shape(new))}")
        module = device_array_module()
        return [module.array(to_numpy(new) if module is np else new, dtype=np.float32)
                for new in weights]

    def assign_weights(self, arrays):
        """Take the arrays ``prepare_weights`` returned as the parameters."""
        for key, array in zip(list(self.params), arrays):
            self.params[key] = array

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable,
                "input_shape": list(self.input_shape) if self.input_shape else None}

    def __call__(self, x, training=False):
        return self.forward(x, training=training)

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


class Conv2D(Layer):
    """2-D cross-correlation (what Keras calls convolution), by im2col + one matmul.

    x (N, H, W, C) -> y (N, OH, OW, filters); kernel (KH, KW, C, filters).

    im2col turns the batch into a (N*OH*OW, KH*KW*C) matrix, which can be large
    (VGG16's first layers at batch 32: over a gigabyte), so the batch is
    processed in chunks of at most ``im2col_budget_bytes``. The forward pass of
    a training step keeps that matrix for the backward pass when it fits;
    otherwise the backward pass rebuilds it chunk by chunk.

    On the CPU, the chunks are shared among threads (``ops.cpu_threads``), and 3x3
    stride-1 convolutions with ``winograd_min_channels`` or more input channels take
    Winograd's F(2x2, 3x3) instead, forward and backward (``ops.winograd``): 2.25x
    fewer multiplies, the same numbers to float32 rounding.
    """

    default_name = "conv2d"
    expected_rank = 3
    im2col_budget_bytes = 256 * 2**20
    cpu_chunk_bytes = 4 * 2**20
    # 3x3 stride-1 convolutions of at least this many input channels run on the CPU
    # by Winograd's F(2x2, 3x3), forward and backward (``ops.winograd``); False: im2col.
    # Below 32 channels its 16 products, (tiles, C) @ (C, F), are too thin to gain. At
    # 32 (the tutorial's 2nd and 3rd layers) a training step measured 196 -> 185 ms and
    # inference 66 -> 56 ms; VGG16's layers (64 to 512 channels) run ~1.4x faster.
    cpu_winograd = True
    winograd_min_channels = 32
    # Enough tiles for the 16 products to run well (and for a piece's Python overhead
    # to be small), few enough for V and M to stay in the cache: at least
    # ``winograd_tiles_per_piece``, and as many as ``winograd_piece_bytes`` of V and M hold.
    # VGG16's block1_conv2 (64 -> 64 channels) at batch 32: 388 ms at 64 tiles a piece,
    # 246 at 128, 212 at 192 (1.5 MB), 244 at 256; its deeper layers change by < 10% from
    # 128 to 384. The tutorial's 2nd layer (32 -> 32), forward: 16.2 ms at 192 tiles,
    # 14.4 at 384 (1.5 MB); its 3rd (32 -> 64): 5.5 at 192 and 384, 6.4 at 512.
    winograd_tiles_per_piece = 192
    winograd_piece_bytes = 3 * 2**19
    # The kernel gradient's tiles a product (see _backward_winograd). The tutorial's 2nd
    # layer (32 x 32 channels, 1444 tiles an image), batch 32, 2 cores: whole images
    # 25.4 ms, 256 tiles 22.7, 512 tiles 21.3, 768 20.8; its 3rd layer (361 tiles an
    # image) is one product an image either way (8.3 ms).
    winograd_tiles_per_product = 512

    def __init__(self, filters, kernel_size, strides=1, padding="valid", activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", seed=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = _positive_int(filters, "filters")
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.padding = check_padding(padding)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.seed = seed
        self._buffers: dict = {}   # scratch arrays reused between steps (see _buffer)

    def compute_output_shape(self, input_shape):
        out_h, out_w, _, _ = conv_geometry((1, *input_shape), self.kernel_size, self.strides,
                                           self.padding)
        if out_h < 1 or out_w < 1:
            raise ValueError(f"layer {self.name!r}: input {input_shape} is smaller than the "
                             f"kernel {self.kernel_size} with padding {self.padding!r}")
        return (out_h, out_w, self.filters)

    def _create_params(self, input_shape):
        shape = (*self.kernel_size, input_shape[-1], self.filters)
        init = initializers.get(self.kernel_initializer)
        self._add_param("kernel", init(shape, new_generator(self.seed)))
        if self.use_bias:
            self._add_param("bias", np.zeros(self.filters, dtype=np.float32))

    def _images_per_chunk(self, x):
        """How many images go through im2col at once.

        At most ``im2col_budget_bytes`` of im2col matrix; on the CPU with the
        numba kernels, about ``cpu_chunk_bytes`` so that each chunk's matrix is
        still in the cache when the matrix product reads it (and again in the
        backward pass, which rebuilds it instead of keeping it in memory).
        """
        out_h, out_w, _ = self.output_shape
        kh, kw = self.kernel_size
        bytes_per_image = out_h * out_w * kh * kw * x.shape[-1] * x.dtype.itemsize
        budget = self.im2col_budget_bytes
        if cpu_kernels.usable(x):
            budget = min(budget, self.cpu_chunk_bytes)
        return max(1, budget // max(bytes_per_image, 1))

    def _pieces(self, x):
        """The forward pass's chunks of work: ``(images, rows)`` pairs.

        ``images`` is a slice of the batch and ``rows`` is None (whole images), or, on the
        CPU when a single image's im2col matrix exceeds ``cpu_chunk_bytes`` (VGG16's first
        blocks: 50 MB per image), a band ``(start, stop)`` of one image's output rows.
        """
        n = x.shape[0]
        out_h, out_w, _ = self.output_shape
        kh, kw = self.kernel_size
        bytes_per_row = out_w * kh * kw * x.shape[-1] * x.dtype.itemsize
        band_h = self.cpu_chunk_bytes // bytes_per_row if cpu_kernels.usable(x) else out_h
        if band_h >= out_h:
            chunk = self._images_per_chunk(x)
            for start in range(0, n, chunk):
                yield slice(start, start + chunk), None
            return
        band_h = max(1, band_h)
        for image in range(n):
            for top in range(0, out_h, band_h):
                yield slice(image, image + 1), (top, min(top + band_h, out_h))

    def _buffer(self, name, shape, like):
        """A scratch array of ``shape`` (same device and dtype as ``like``), reused from
        step to step: allocating and first-touching big arrays costs as much as filling them."""
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if (buffer is None or buffer.size < size or buffer.dtype != like.dtype
                or get_array_module(buffer) is not get_array_module(like)):
            buffer = get_array_module(like).empty(size, dtype=like.dtype)
            self._buffers[name] = buffer
        return buffer[:size].reshape(shape)

    def _fused_kernels(self, z):
        """The kernel module that fuses bias + ReLU for ``z``, or None (then: separate passes)."""
        if not (self.use_bias and getattr(self.activation, "name", None) == "relu"):
            return None
        for kernels in (cpu_kernels, gpu_kernels):
            if kernels.usable(z):
                return kernels
        return None

    def forward(self, x, training=False):
        """x (N, H, W, C) -> activation(conv(x) + bias) (N, OH, OW, filters), chunk by chunk.

        On the CPU the chunks are shared among threads (``cpu_threads``), each with
        its own scratch buffers; every chunk writes its own slice of the output.
        """
        x = self._accept(x)
        self.forget_forward_state()   # last step's output may then be recycled
        z = self._recycle("z", (x.shape[0], *self.output_shape), x)
        if self._uses_winograd(x):
            relu = getattr(self.activation, "name", None) == "relu"
            self._forward_winograd(x, z, relu)
            self._x = x
            self._y = z if relu else self.activation.forward(z)
            return self._y
        fused = self._fused_kernels(z)
        self._convolve_pieces(x, z, fused, training)
        self._x = x
        self._y = z if fused else self.activation.forward(z)
        return self._y

    def _convolve_pieces(self, x, z, fused, training, pool=None):
        """The im2col path of the forward pass: z = conv(x) + bias, ReLU'd if ``fused``
        (the kernel module that fuses bias + ReLU), chunk by chunk.

        ``pool=(pool_size, pooled, argmax)``: the chunks are whole images, and each chunk's
        activation goes straight into the max pooling after this layer, written to
        ``pooled`` and ``argmax``; ``z`` is then None (see :meth:`forward_pooled`).
        """
        kernel, bias = self.params["kernel"], self.params.get("bias")
        kh, kw = self.kernel_size
        out_h, out_w, _ = self.output_shape
        on_cpu = cpu_kernels.usable(x)

        def convolve(piece, worker):
            images, rows = piece
            part = x[images]
            band_h = out_h if rows is None else rows[1] - rows[0]
            cols_buffer = self._buffer(("cols", worker), (len(part) * band_h * out_w,
                                                          kh * kw * x.shape[-1]), x)
            if rows is None:   # whole images
                # Fused with the pooling: this chunk's activation lives only in a scratch
                # buffer, read from the cache by the pooling.
                z_out = z[images] if pool is None else self._buffer(
                    ("z", worker), (len(part), out_h, out_w, self.filters), x)
                z_part, cols = conv2d_forward(part, kernel, None if fused else bias,
                                              self.strides, self.padding, out=z_out,
                                              cols_out=cols_buffer)
            else:              # a band of output rows of one large image (CPU only)
                z_part = z[images, rows[0]:rows[1]]                    # (1, band_h, OW, F)
                cols = cpu_kernels.im2col(part, self.kernel_size, self.strides, self.padding,
                                          out=cols_buffer, rows=rows)  # (band_h*OW, KH*KW*C)
                np.matmul(cols, kernel.reshape(-1, self.filters),
                          out=z_part.reshape(-1, self.filters))        # (band_h*OW, F)
                if bias is not None and not fused:
                    z_part += bias
            if pool is not None:   # bias + ReLU + max pooling in one pass
                pool_size, pooled, argmax = pool
                cpu_kernels.bias_relu_pool(z_part, bias, pool_size, pooled[images],
                                           argmax[images])
            elif fused:   # bias + ReLU in one pass, while z_part is still in the cache
                fused.bias_relu_(z_part, bias)
            return cols

        pieces = list(self._pieces(x))
        cols = cpu_threads.map_pieces(convolve, pieces, enabled=on_cpu)[-1]
        # Keep the im2col matrix for the backward pass when one chunk held the whole batch.
        whole_batch = len(pieces) == 1 and pieces[0][1] is None
        self._cols = cols if training and whole_batch else None

    def fuses_pool(self, pool, x) -> bool:
        """Whether :meth:`forward_pooled` can take ``pool``, the MaxPooling2D after this layer,
        on input ``x``: on the CPU, for a bias + ReLU layer and a pooling of disjoint windows
        ("valid", strides = pool size); on the im2col path if its chunks are whole images
        (the tutorial's first layer), by Winograd if the windows are 2x2 (Winograd's output
        tiles: the tutorial's other layers)."""
        if not (isinstance(pool, MaxPooling2D) and pool.padding == "valid"
                and pool.strides == pool.pool_size and self._fused_kernels(x) is cpu_kernels):
            return False
        if self._uses_winograd(x):
            return pool.pool_size == (2, 2)
        return all(rows is None for _, rows in self._pieces(x))

    def forward_pooled(self, x, pool, training=False):
        """``pool.forward(self.forward(x))`` in one pass (see :meth:`fuses_pool`), without
        writing this layer's activation (N, OH, OW, F) out: each chunk's activation goes from
        the cache into the pooling. The tutorial's first layer, batch 32: that array is 92 MB,
        written once and read once per step, and twice more in the backward pass.

        ``pool`` keeps its argmax as if it had run; :meth:`backward_pooled` takes the pair back.
        """
        x = self._accept(x)
        self.forget_forward_state()
        pooled, argmax = pool.output_arrays((x.shape[0], *self.output_shape), x)
        if self._uses_winograd(x):
            self._forward_winograd(x, None, True, pool=(pooled, argmax))
        else:
            self._convolve_pieces(x, None, cpu_kernels, training,
                                  pool=(pool.pool_size, pooled, argmax))
        self._x = x
        self._pooled = pooled
        return pooled

    def _uses_winograd(self, x):
        """Whether the forward pass takes Winograd's F(2x2, 3x3) (CPU, 3x3, stride 1, enough
        channels): 2.25x fewer multiplies than im2col, for a few float32 roundings of
        difference (see ``ops.winograd``; the backward pass: ``_uses_winograd_backward``)."""
        return (self.cpu_winograd and winograd.applies(self.kernel_size, self.strides)
                and x.shape[-1] >= self.winograd_min_channels and cpu_kernels.usable(x))

    def _forward_winograd(self, x, z, relu, pool=None):
        """z = conv(x) + bias (then ReLU if ``relu``) by F(2x2, 3x3), on the CPU; with
        ``pool=(pooled, argmax)``, ReLU'd and max-pooled 2x2 into those instead of z."""
        _, _, pad_h, pad_w = conv_geometry(x.shape, self.kernel_size, self.strides, self.padding)
        bias = self.params.get("bias")
        if bias is None:
            bias = np.zeros(self.filters, dtype=x.dtype)
        u = winograd.transform_kernel(self.params["kernel"])          # (16, C, F)
        self._correlate_winograd(x, u, bias, relu, pad_h[0], pad_w[0], z, pool)

    def _winograd_pieces(self, n, tiles_h, tiles_w, channels, filters):
        """Pieces of whole tile rows, numbered across the batch: ``(first, stop)`` pairs of
        about ``winograd_tiles_per_piece`` tiles each, or more for few channels (see there)."""
        per_tile = 16 * (channels + filters) * 4                     # bytes of V and M
        tiles = max(self.winograd_tiles_per_piece, self.winograd_piece_bytes // per_tile)
        rows = -(-tiles // tiles_w)                                   # at least one
        total = n * tiles_h                                           # tile rows in the batch
        return [(first, min(first + rows, total)) for first in range(0, total, rows)]

    def _correlate_winograd(self, x, u, bias, relu, pad_top, pad_left, out, pool=None,
                            argmax=None):
        """out (N, OH, OW, F) = sum of x[n, y+i-pad_top, x+j-pad_left, c] * g[i, j, c, f] + bias
        (then ReLU if ``relu``), by F(2x2, 3x3), given U = G g G^T (16, C, F).

        The tile rows are cut into pieces shared among the threads; each piece is
        transformed, multiplied (16 products (tiles, C) @ (C, F)) and transformed back
        while in the cache. ``pool=(pooled, argmax)`` (then ``out`` is None): each tile's
        2x2 output block, ReLU'd, is a window of the 2x2 max pooling after this layer,
        whose output goes to pooled and argmax (N, OH // 2, OW // 2, F). With ``argmax``,
        x is the output gradient of a 2x2 max pooling, whose input gradient is correlated
        without being written out (``cpu_kernels.winograd_unpooled_input``).
        """
        n, _, _, channels = x.shape
        out_h, out_w, filters = self.output_shape if out is None else out.shape[1:]
        tiles_h, tiles_w = winograd.tile_counts(out_h, out_w)

        def correlate(piece, worker):
            first, stop = piece
            tiles = (stop - first) * tiles_w
            # Position-major (16, tiles, .): the 16 products below run on contiguous matrices.
            v = self._buffer(("winograd_v", worker), (16, tiles, channels), x)
            m = self._buffer(("winograd_m", worker), (16, tiles, filters), x)
            if argmax is None:
                cpu_kernels.winograd_input(x, pad_top, pad_left, first, tiles_h, tiles_w, v)
            else:
                cpu_kernels.winograd_unpooled_input(x, argmax, pad_top, pad_left, first, tiles_h,
                                                    tiles_w, v)
            # Sum over channels of U[k] * V[k] for the 16 positions k, every tile at once:
            # 16 products (tiles, C) @ (C, F) in one call.
            np.matmul(v, u, out=m)
            if pool is None:
                cpu_kernels.winograd_output(m, bias, relu, first, tiles_h, tiles_w, out)
            else:
                cpu_kernels.winograd_output_pool(m, bias, first, tiles_h, tiles_w, *pool)

        cpu_threads.map_pieces(correlate,
                               self._winograd_pieces(n, tiles_h, tiles_w, channels, filters))

    def _uses_winograd_backward(self, x, need_input_grad):
        """Whether the backward pass takes Winograd: F(3x3, 2x2) for the kernel gradient and,
        if needed, F(2x2, 3x3) for the input gradient (a correlation of F channels). Like
        the forward pass, only from ``winograd_min_channels`` input channels: with RGB
        inputs the products (3, tiles) @ (tiles, F) are too thin (the tutorial's first
        layer: 78 ms against 30 for the direct loop of the time; ~14 now on planes,
        ``cpu_kernels.conv2d_filter_grad``)."""
        return (self._uses_winograd(x)
                and (not need_input_grad or self.filters >= self.winograd_min_channels))

    def _backward_winograd(self, x, grad_z, need_input_grad, argmax=None):
        """(grad_x or None, grad_kernel, grad_bias) by Winograd, on the CPU.

        With ``argmax``, grad_z is given pooled: this layer's output went through a fused
        2x2 max pooling (:meth:`forward_pooled`) with that argmax, and grad_z is the
        pooling's output gradient, masked by ReLU's backward (N, OH // 2, OW // 2, F);
        the transforms read grad_z's unpooled values from it on the fly.

        Kernel gradient: for a few images at a time, V = B^T d B of the input tiles and
        Z = A g A^T of the 2x2 blocks of grad_z, then 16 products V[k]^T @ Z[k]
        (C, tiles) @ (tiles, F), summed over the batch in image order, and G^T (sum) G
        (see ``winograd.conv2d_filter_grad``).
        Input gradient: grad_z correlated with the kernel turned by 180 degrees.
        """
        n, height, width, channels = x.shape
        out_h, out_w, _ = self.output_shape
        _, _, pad_h, pad_w = conv_geometry(x.shape, self.kernel_size, self.strides, self.padding)
        tiles_h, tiles_w = winograd.tile_counts(out_h, out_w)
        # Whole images a piece, enough of them for ``winograd_tiles_per_piece`` tiles:
        # the products below run over the tiles, and VGG16's 9x9 images have only 25.
        per_piece = -(-self.winograd_tiles_per_piece // (tiles_h * tiles_w))
        # Within a piece, a few tile rows at a time: their V and Z (2 x 16 x tiles x C or F
        # floats) stay in the core's L2 cache from the transforms to the products, and
        # OpenBLAS multiplies small (C, F) faster on a few hundred tiles than on thousands.
        rows_a_chunk = -(-self.winograd_tiles_per_product // tiles_w)

        def image_sums(images, worker):
            summed = None
            stop_row = images.stop * tiles_h
            for first_row in range(images.start * tiles_h, stop_row, rows_a_chunk):
                tiles = (min(first_row + rows_a_chunk, stop_row) - first_row) * tiles_w
                # Position-major (16, tiles, C) and (16, tiles, F): the long products over
                # the tiles run ~1.5x faster on contiguous matrices than on (tiles, 16, .).
                v = self._buffer(("winograd_v16", worker), (16, tiles, channels), x)
                z = self._buffer(("winograd_z16", worker), (16, tiles, self.filters), x)
                cpu_kernels.winograd_input(x, pad_h[0], pad_w[0], first_row, tiles_h, tiles_w, v)
                if argmax is None:
                    cpu_kernels.winograd_gradient(grad_z, first_row, tiles_h, tiles_w, z)
                else:
                    cpu_kernels.winograd_unpooled_gradient(grad_z, argmax, first_row, tiles_h,
                                                           tiles_w, z)
                if summed is None:
                    summed = np.matmul(v.transpose(0, 2, 1), z)                # (16, C, F)
                else:
                    part = self._buffer(("winograd_part", worker), summed.shape, x)
                    summed += np.matmul(v.transpose(0, 2, 1), z, out=part)
            return summed, column_sums(grad_z[images].reshape(-1, self.filters))

        pieces = [slice(start, min(start + per_piece, n)) for start in range(0, n, per_piece)]
        summed, grad_bias = cpu_threads.sum_pieces(image_sums, pieces)
        grad_kernel = winograd.untransform_filter_grad(summed)
        grad_x = None
        if need_input_grad:
            grad_x = self._recycle("grad_x", x.shape, x)
            turned = winograd.flip_kernel(self.params["kernel"])          # (3, 3, F, C)
            self._correlate_winograd(grad_z, winograd.transform_kernel(turned),
                                     np.zeros(channels, dtype=x.dtype), False,
                                     2 - pad_h[0], 2 - pad_w[0], grad_x, argmax=argmax)
        return grad_x, grad_kernel, grad_bias

    def backward(self, grad_y, need_input_grad=True):
        """grad_y (N, OH, OW, filters) -> grad_x (N, H, W, C); fills grads["kernel"], ["bias"].

        ``need_input_grad=False`` skips grad_x (returns None): the first layer of a
        network has no use for it, and col2im is a good part of the work. On the CPU
        the chunks are shared among threads; their kernel and bias gradients are added
        up in chunk order, so the sums do not depend on the number of threads.
        """
        if self._fused_kernels(grad_y):   # ReLU's backward fused into the passes below
            return self._backward(grad_y, self._y, need_input_grad)
        return self._backward(self.activation.backward(grad_y, self._y), None, need_input_grad)

    def backward_pooled(self, grad_pooled, pool, need_input_grad=True):
        """The backward pass of :meth:`forward_pooled`: grad_pooled, the gradient of the
        pooling's output (N, OH // ph, OW // pw, F) -> grad_x; fills this layer's grads.

        Only the pixel that won its window gets a gradient, and ReLU's backward keeps it if
        the maximum was > 0. An RGB first layer's ``cpu_kernels.conv2d_filter_grad`` and
        the Winograd transforms read that straight from the pooled arrays; otherwise
        grad_z (N, OH, OW, F) is built first, by the pooling's backward pass.
        """
        x, pooled = self._x, self._pooled
        if not need_input_grad and self._planes_filter_grad(x):
            grad_kernel, grad_bias = cpu_kernels.conv2d_filter_grad(
                x, grad_pooled, self.params["kernel"].shape, self.strides, self.padding,
                pooled=(pooled, pool.argmax, pool.pool_size))
            self._store_grads(grad_kernel, grad_bias)
            return None
        grad_pooled = grad_pooled * (pooled > 0)          # ReLU's backward at the winners
        if self._uses_winograd_backward(x, need_input_grad):   # (then the pool is 2x2)
            grad_x, grad_kernel, grad_bias = self._backward_winograd(
                x, grad_pooled, need_input_grad, argmax=pool.argmax)
            self._store_grads(grad_kernel, grad_bias)
            return grad_x
        return self._backward(pool.backward(grad_pooled), None, need_input_grad)

    def _backward(self, grad, relu_y, need_input_grad):
        """The backward pass from ``grad``: grad_z, the gradient of conv(x) + bias, if
        ``relu_y`` is None; else the gradient of ReLU's output ``relu_y``, which each
        path below masks by relu_y > 0 in one of its own passes (no separate pass)."""
        kernel = self.params["kernel"]
        kh, kw = self.kernel_size
        out_h, out_w, _ = self.output_shape
        x = self._x
        n, channels = x.shape[0], x.shape[-1]
        chunk = n if self._cols is not None else self._images_per_chunk(x)
        if self._uses_winograd_backward(x, need_input_grad):
            grad_z = grad
            if relu_y is not None:   # ReLU's backward for the whole batch, a slice per thread
                grad_z = self._buffer("grad_z_batch", grad.shape, x)
                cpu_threads.map_pieces(
                    lambda images, _worker: cpu_kernels.relu_backward(
                        grad[images], relu_y[images], out=grad_z[images]),
                    cpu_threads.batch_slices(n))
            grad_x, grad_kernel, grad_bias = self._backward_winograd(x, grad_z, need_input_grad)
            self._store_grads(grad_kernel, grad_bias)
            self._cols = None
            return grad_x
        if not need_input_grad and self._planes_filter_grad(x):
            # Few input channels (RGB), CPU: dot products on planes, ReLU's backward fused.
            grad_kernel, grad_bias = cpu_kernels.conv2d_filter_grad(
                x, grad, kernel.shape, self.strides, self.padding, y=relu_y)
            self._store_grads(grad_kernel, grad_bias)
            self._cols = None
            return None
        grad_x = self._recycle("grad_x", x.shape, x) if need_input_grad else None
        fused = None if relu_y is None else self._fused_kernels(grad)

        def backpropagate(images, worker):
            count = images.stop - images.start
            rows = count * out_h * out_w
            if fused:   # ReLU's backward without a boolean temporary, chunk by chunk
                grad_z_part = fused.relu_backward(
                    grad[images], relu_y[images],
                    out=self._buffer(("grad_z", worker), (count, out_h, out_w, self.filters), x))
            else:
                grad_z_part = grad[images]
            cols = self._cols
            if cols is None:   # rebuild this chunk's im2col matrix
                cols = im2col(x[images], self.kernel_size, self.strides, self.padding,
                              out=self._buffer(("cols", worker), (rows, kh * kw * channels), x))
            gx, gk, gb = conv2d_backward(
                grad_z_part, cols, (count, *x.shape[1:]), kernel, self.strides,
                self.padding, need_input_grad,
                grad_x_out=None if grad_x is None else grad_x[images],
                grad_cols_out=self._buffer(("grad_cols", worker), (rows, kh * kw * channels), x))
            return gk, gb

        chunks = [slice(start, min(start + chunk, n)) for start in range(0, n, chunk)]
        grad_kernel, grad_bias = cpu_threads.sum_pieces(backpropagate, chunks,
                                                        enabled=cpu_kernels.usable(x))
        self._store_grads(grad_kernel, grad_bias)
        self._cols = None   # free the big matrix as soon as it has served
        return grad_x

    def _planes_filter_grad(self, x):
        """Whether the kernel gradient goes to ``cpu_kernels.conv2d_filter_grad``: on the
        CPU, for stride-1 layers on inputs of at most ``FILTER_GRAD_MAX_CHANNELS`` channels,
        where im2col's KH*KW*C columns make a matrix product too skinny for BLAS to be fast."""
        return (x.shape[-1] <= cpu_kernels.FILTER_GRAD_MAX_CHANNELS and self.strides == (1, 1)
                and cpu_kernels.usable(x))

    def _store_grads(self, grad_kernel, grad_bias):
        if self.trainable:
            self.grads["kernel"] = grad_kernel
            if self.use_bias:
                self.grads["bias"] = grad_bias

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "activation": self.activation.name,
                "use_bias": self.use_bias}


class MaxPooling2D(Layer):
    """Maximum over each (pool_h, pool_w) window. x (N, H, W, C) -> (N, OH, OW, C).

    The backward pass sends each gradient to the position that held its
    window's maximum; every other position gets zero.
    """

    default_name = "max_pooling2d"
    expected_rank = 3

    def __init__(self, pool_size=2, strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _pair(pool_size, "pool_size")
        self.strides = _pair(strides, "strides") if strides is not None else self.pool_size
        self.padding = check_padding(padding)

    def compute_output_shape(self, input_shape):
        out_h, out_w, _, _ = conv_geometry((1, *input_shape), self.pool_size, self.strides,
                                           self.padding)
        if out_h < 1 or out_w < 1:
            raise ValueError(f"layer {self.name!r}: input {input_shape} is smaller than the "
                             f"pool {self.pool_size}")
        return (out_h, out_w, input_shape[-1])

    def forward(self, x, training=False):
        x = self._accept(x)
        y, argmax = self.output_arrays(x.shape, x)
        y, self._argmax = maxpool2d_forward(x, self.pool_size, self.strides, self.padding,
                                            out=y, argmax_out=argmax)
        return y

    def output_arrays(self, x_shape, like):
        """(y, argmax) to fill for a pass on inputs of ``x_shape``: last step's arrays when
        nobody holds them any more (see ``_recycle``). Remembers what the backward pass
        needs: ``Conv2D.forward_pooled``, which fills them itself, calls this too."""
        self.forget_forward_state()   # last step's argmax may then be recycled
        shape = (x_shape[0], *self.output_shape)
        self._x_shape = tuple(x_shape)
        self._argmax = self._recycle("argmax", shape, like, dtype=np.uint8)
        return self._recycle("y", shape, like), self._argmax

    @property
    def argmax(self):
        """The last forward pass's winning slot (i * pool_w + j) of each window, uint8."""
        return self._argmax

    def backward(self, grad_y):
        # Into last step's array when nobody holds it any more (see _recycle).
        return maxpool2d_backward(grad_y, self._argmax, self._x_shape, self.pool_size,
                                  self.strides, self.padding,
                                  out=self._recycle("grad_x", self._x_shape, grad_y))

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding}


class Dense(Layer):
    """Fully connected: y = activation(x @ kernel + bias). x (N, in) -> (N, units)."""

    default_name = "dense"
    expected_rank = 1

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", seed=None, **kwargs):
        super().__init__(**kwargs)
        self.units = _positive_int(units, "units")
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.seed = seed

    def compute_output_shape(self, input_shape):
        return (self.units,)

    def _create_params(self, input_shape):
        init = initializers.get(self.kernel_initializer)
        self._add_param("kernel", init((input_shape[0], self.units), new_generator(self.seed)))
        if self.use_bias:
            self._add_param("bias", np.zeros(self.units, dtype=np.float32))

    # On the CPU, kernels of at least this many weights are multiplied in pieces of
    # ``cpu_piece`` rows or columns shared among the threads (BLAS itself runs on one
    # thread, see ``cpu_threads``): the tutorial's Dense(64) on 20736 inputs, batch 32,
    # forward + backward 5.0 -> 3.3 ms on 2 cores. Pieces of a fixed size, each writing
    # its own part of the result: the numbers do not depend on the number of threads.
    cpu_threads_from = 2**18
    cpu_piece = 4096

    def forward(self, x, training=False):
        x = self._accept(x)
        self._x = x
        z = self._product(x, self.params["kernel"], split="columns", piece=32)
        if self.use_bias:
            z += self.params["bias"]
        self._y = self.activation.forward(z)
        return self._y

    def backward(self, grad_y):
        grad_z = self.activation.backward(grad_y, self._y)
        if self.trainable:
            self.grads["kernel"] = self._product(self._x.T, grad_z, split="rows",
                                                 piece=self.cpu_piece)
            if self.use_bias:
                self.grads["bias"] = column_sums(grad_z)
        return self._product(grad_z, self.params["kernel"].T, split="columns",
                             piece=self.cpu_piece)

    def _product(self, a, b, split, piece):
        """a @ b; for a large kernel on the CPU, in pieces of ``piece`` rows of a (``split=
        "rows"``) or columns of b, shared among the threads."""
        if not (self.params["kernel"].size >= self.cpu_threads_from and cpu_kernels.usable(a)):
            return a @ b
        out = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
        length = a.shape[0] if split == "rows" else b.shape[1]
        parts = [slice(start, start + piece) for start in range(0, length, piece)]

        def multiply(part, _worker):
            if split == "rows":
                np.matmul(a[part], b, out=out[part])
            else:
                np.matmul(a, b[:, part], out=out[:, part])

        cpu_threads.map_pieces(multiply, parts)
        return out

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": self.activation.name, "use_bias": self.use_bias}


class Flatten(Layer):
    """(N, H, W, C) -> (N, H*W*C), in channels-last order (as Keras flattens)."""

    default_name = "flatten"

    def compute_output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def forward(self, x, training=False):
        x = self._accept(x)
        self._x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_y):
        return grad_y.reshape(self._x_shape)


class Dropout(Layer):
    """Inverted dropout: while training, zero each value with probability ``rate``
    and scale the survivors by 1 / (1 - rate), so that nothing changes at test time."""

    default_name = "dropout"

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self._rng = None

    def _generator(self, xp):
        if self._rng is None:
            seed = new_seed(self.seed)
            self._rng = (np.random.default_rng(seed) if xp is np
                         else xp.random.default_rng(seed))
        return self._rng

    def forward(self, x, training=False):
        x = self._accept(x)
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        xp = get_array_module(x)
        keep = self._generator(xp).random(x.shape, dtype=np.float32) >= self.rate
        self._mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.rate))
        return x * self._mask

    def backward(self, grad_y):
        return grad_y if self._mask is None else grad_y * self._mask

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class Activation(Layer):
    """An activation on its own: ``Activation("relu" | "sigmoid" | "softmax" | ...)``."""

    default_name = "activation"

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def forward(self, x, training=False):
        x = self._accept(x)
        self._y = self.activation.forward(x)
        return self._y

    def backward(self, grad_y):
        return self.activation.backward(grad_y, self._y)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation.name}


LAYERS = {cls.__name__: cls for cls in (Conv2D, MaxPooling2D, Dense, Flatten, Dropout,
                                        Activation)}


def from_config(class_name: str, config: dict) -> Layer:
    """Rebuild a layer from ``get_config()`` (used by ``load_model``)."""
    if class_name not in LAYERS:
        raise ValueError(f"unknown layer class {class_name!r}: expected one of {sorted(LAYERS)}")
    return LAYERS[class_name](**config)


__all__ = ["Activation", "Conv2D", "Dense", "Dropout", "Flatten", "Layer", "MaxPooling2D",
           "clear_session", "from_config"]
