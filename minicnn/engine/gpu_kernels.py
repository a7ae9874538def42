"""CuPy kernels for the GPU: im2col/col2im, max pooling, fused bias+ReLU.

The same operations as ``cpu_kernels`` (and with the same gather-not-scatter
design): one CUDA thread per *output* element, each computing its value
from the few inputs it depends on. Nothing is scattered, so no atomics, no
zero-fill pass and no races; the matrix products around them go to cuBLAS
through ``cupy.matmul``. All arrays stay on the device.

Layout (channels-last), as in ``cpu_kernels``:

    x       (N, H, W, C)
    cols    (N*OH*OW, KH*KW*C), element (n, oy, ox, i, j, c) in row-major order
    pooled  (N, OH, OW, C), argmax uint8 = winning slot i*PW + j

CuPy is never imported here: the module comes from the arrays themselves
(``backend.get_array_module``), so this file imports on machines without a
GPU, and the kernels are compiled on first use (CuPy caches the binaries on
disk, in ~/.cupy/kernel_cache).
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..ops.padding import conv_geometry

_kernels: dict = {}   # (name, index type) -> compiled cupy.ElementwiseKernel
FUSED = True          # it has bias_relu_, relu_backward and the optimizer steps
enabled = True        # False: run the portable CuPy code of ops.conv / ops.pooling instead

# Shared by the kernels: split the flat index i of an (N, H, W, C) element.
_SPLIT_NHWC = """
    const IDX c = (IDX)i % channels;
    const IDX ix = ((IDX)i / channels) % width;
    const IDX iy = ((IDX)i / channels / width) % height;
    const IDX n = (IDX)i / channels / width / height;
"""

_SOURCES = {
    # cols[n, oy, ox, ki, kj, c] = x[n, oy*sh + ki - pad_top, ox*sw + kj - pad_left, c], 0 outside
    "im2col": (
        "raw T x", "T cols",
        """
        const IDX c = (IDX)i % channels;
        IDX rest = (IDX)i / channels;
        const int kj = rest % kw;  rest /= kw;
        const int ki = rest % kh;  rest /= kh;
        const IDX ox = rest % out_w;  rest /= out_w;
        const IDX oy = rest % out_h;
        const IDX n = rest / out_h;
        const IDX iy = oy * sh + ki - pad_top;
        const IDX ix = ox * sw + kj - pad_left;
        cols = (iy >= 0 && iy < height && ix >= 0 && ix < width)
            ? x[((n * height + iy) * width + ix) * channels + c] : (T)0;
        """),
    # x[n, iy, ix, c] = sum of the cols entries of every window tap that covers it
    "col2im": (
        "raw T cols", "T x",
        _SPLIT_NHWC + """
        T total = 0;
        for (int ki = 0; ki < kh; ++ki) {          // same order as the NumPy loops
            const IDX ty = iy + pad_top - ki;  // = oy * sh
            if (ty < 0 || ty % sh != 0 || ty / sh >= out_h) continue;
            const IDX oy = ty / sh;
            for (int kj = 0; kj < kw; ++kj) {
                const IDX tx = ix + pad_left - kj;
                if (tx < 0 || tx % sw != 0 || tx / sw >= out_w) continue;
                const IDX ox = tx / sw;
                total += cols[((((n * out_h + oy) * out_w + ox) * kh + ki) * kw + kj)
                              * channels + c];
            }
        }
        x = total;
        """),
    # out[n, oy, ox, c] = max over the window (outside = -inf); argmax = first winning slot
    "maxpool_forward": (
        "raw T x, T neg_inf", "T out, uint8 argmax",
        """
        const IDX c = (IDX)i % channels;
        const IDX ox = ((IDX)i / channels) % out_w;
        const IDX oy = ((IDX)i / channels / out_w) % out_h;
        const IDX n = (IDX)i / channels / out_w / out_h;
        T best = neg_inf;
        int best_slot = 0;
        for (int pi = 0; pi < ph; ++pi) {
            const IDX iy = oy * sh + pi - pad_top;
            for (int pj = 0; pj < pw; ++pj) {
                const IDX ix = ox * sw + pj - pad_left;
                const bool inside = iy >= 0 && iy < height && ix >= 0 && ix < width;
                const T value = inside ? x[((n * height + iy) * width + ix) * channels + c]
                                       : neg_inf;
                if (pi == 0 && pj == 0) { best = value; }      // slot 0 starts the window
                else if (value > best) { best = value; best_slot = pi * pw + pj; }
            }
        }
        out = best;
        argmax = (unsigned char)best_slot;
        """),
    # dx[n, iy, ix, c] = sum of dout over the windows whose argmax is this pixel
    "maxpool_backward": (
        "raw T dout, raw uint8 argmax", "T dx",
        _SPLIT_NHWC + """
        T total = 0;
        for (int pi = 0; pi < ph; ++pi) {
            const IDX ty = iy + pad_top - pi;
            if (ty < 0 || ty % sh != 0 || ty / sh >= out_h) continue;
            const IDX oy = ty / sh;
            for (int pj = 0; pj < pw; ++pj) {
                const IDX tx = ix + pad_left - pj;
                if (tx < 0 || tx % sw != 0 || tx / sw >= out_w) continue;
                const IDX o = ((n * out_h + oy) * out_w + tx / sw) * channels + c;
                if (argmax[o] == pi * pw + pj) total += dout[o];
            }
        }
        dx = total;
        """),
    # in place: z = max(z + bias, 0); NaN stays NaN
    "bias_relu": ("T bias", "T z", "const T v = z + bias; z = v < (T)0 ? (T)0 : v;"),
    "relu_backward": ("T dout, T y", "T dz", "dz = y > (T)0 ? dout : (T)0;"),
    # SGD with momentum, in place: the formulas of optimizers.SGD in one pass
    "sgd_momentum": (
        "T grad, T lr, T momentum, bool nesterov", "T param, T velocity",
        """
        velocity = momentum * velocity - lr * grad;
        param += nesterov ? momentum * velocity - lr * grad : velocity;
        """),
    # RMSprop, in place: the formulas of optimizers.RMSprop in one pass
    "rmsprop": (
        "T grad, T lr, T rho, T epsilon", "T param, T mean_square",
        """
        mean_square = rho * mean_square + ((T)1 - rho) * grad * grad;
        param -= lr * grad / sqrt(mean_square + epsilon);
        """),
}


def _kernel(cp, name, geometry, *arrays):
    """The compiled ElementwiseKernel ``name`` for this geometry and these arrays.

    ``geometry`` ({"height": 150, "channels": 64, ...}) is compiled into the kernel as
    constants rather than passed as arguments: the kernels spend most of their time
    splitting a flat index into (n, y, x, c), and a division by a constant known at
    compile time is a multiply and a shift, where a division by a run-time value is a
    loop of some twenty instructions. Each new layer shape therefore compiles its own
    kernels once (a fraction of a second; CuPy keeps them on disk for the next run).
    Index arithmetic uses 32-bit integers when every array has fewer than 2**31
    elements: a GPU divides 64-bit integers in software.
    """
    index_type = "int" if all(a.size < 2**31 for a in arrays) else "long long"
    key = (name, index_type, tuple(geometry.items()))   # _geometry fixes the order
    if key not in _kernels:
        in_params, out_params, body = _SOURCES[name]
        constants = "".join(f"constexpr int {k} = {int(v)};\n" for k, v in geometry.items())
        _kernels[key] = cp.ElementwiseKernel(in_params, out_params,
                                             body.replace("IDX", index_type),
                                             f"minicnn_{name}", preamble=constants)
    return _kernels[key]


def usable(x) -> bool:
    """True when the kernels are enabled and ``x`` is a CuPy array of float32 or float64."""
    xp = get_array_module(x)
    return enabled and xp is not np and x.dtype in (np.float32, np.float64)


# --------------------------------------------------------------------------
# Wrappers with the signatures of the NumPy functions in ops.conv / ops.pooling.

def _geometry(x_shape, window, strides, padding, window_names=("kh", "kw")):
    """The constants a window kernel is compiled with (see ``_kernel``)."""
    _, height, width, channels = x_shape
    out_h, out_w, pad_h, pad_w = conv_geometry(x_shape, window, strides, padding)
    return {"height": height, "width": width, "channels": channels, "out_h": out_h,
            "out_w": out_w, window_names[0]: window[0], window_names[1]: window[1],
            "sh": strides[0], "sw": strides[1], "pad_top": pad_h[0], "pad_left": pad_w[0]}


def im2col(x, kernel_size, strides=(1, 1), padding="valid", out=None):
    """x (N, H, W, C) -> cols (N*OH*OW, KH*KW*C); see ``conv.im2col``."""
    cp = get_array_module(x)
    geometry = _geometry(x.shape, kernel_size, strides, padding)
    if out is None:
        rows = x.shape[0] * geometry["out_h"] * geometry["out_w"]
        out = cp.empty((rows, kernel_size[0] * kernel_size[1] * x.shape[3]), dtype=x.dtype)
    x = cp.ascontiguousarray(x)
    _kernel(cp, "im2col", geometry, x, out)(x, out)
    return out


def col2im(cols, x_shape, kernel_size, strides=(1, 1), padding="valid", out=None):
    """cols (N*OH*OW, KH*KW*C) -> (N, H, W, C), the adjoint of im2col; see ``conv.col2im``."""
    cp = get_array_module(cols)
    geometry = _geometry(x_shape, kernel_size, strides, padding)
    if out is None:
        out = cp.empty(x_shape, dtype=cols.dtype)
    cols = cp.ascontiguousarray(cols)
    _kernel(cp, "col2im", geometry, cols, out)(cols, out)
    return out


def maxpool2d_forward(x, pool_size=(2, 2), strides=(2, 2), padding="valid", out=None,
                      argmax_out=None):
    """x (N, H, W, C) -> (out (N, OH, OW, C), argmax uint8), into ``out``/``argmax_out`` if given."""
    cp = get_array_module(x)
    geometry = _geometry(x.shape, pool_size, strides, padding, ("ph", "pw"))
    if out is None:
        out = cp.empty((x.shape[0], geometry["out_h"], geometry["out_w"], x.shape[3]),
                       dtype=x.dtype)
    argmax = cp.empty(out.shape, dtype=cp.uint8) if argmax_out is None else argmax_out
    x = cp.ascontiguousarray(x)
    _kernel(cp, "maxpool_forward", geometry, x, out)(x, x.dtype.type(-np.inf), out, argmax)
    return out, argmax


def maxpool2d_backward(dout, argmax, x_shape, pool_size=(2, 2), strides=(2, 2),
                       padding="valid", out=None):
    """Route each dout value to its window's argmax -> (N, H, W, C), into ``out`` if given."""
    cp = get_array_module(dout)
    geometry = _geometry(x_shape, pool_size, strides, padding, ("ph", "pw"))
    dx = cp.empty(x_shape, dtype=dout.dtype) if out is None else out
    dout, argmax = cp.ascontiguousarray(dout), cp.ascontiguousarray(argmax)
    _kernel(cp, "maxpool_backward", geometry, dout, dx)(dout, argmax, dx)
    return dx


def bias_relu_(z, bias):
    """In place on z (..., F): z = max(z + bias, 0) in one pass. Returns z."""
    _kernel(get_array_module(z), "bias_relu", {}, z)(bias, z)
    return z


def sgd_momentum_(param, velocity, grad, lr, momentum, nesterov):
    """One SGD-with-momentum step on ``param`` and ``velocity``, in place, in one kernel
    (the array code of ``optimizers.SGD`` launches four)."""
    t = param.dtype.type
    _kernel(get_array_module(param), "sgd_momentum", {}, param)(
        grad, t(lr), t(momentum), bool(nesterov), param, velocity)


def rmsprop_(param, mean_square, grad, lr, rho, epsilon):
    """One RMSprop step on ``param`` and ``mean_square``, in place, in one kernel."""
    t = param.dtype.type
    _kernel(get_array_module(param), "rmsprop", {}, param)(
        grad, t(lr), t(rho), t(epsilon), param, mean_square)


def relu_backward(dout, y, out=None):
    """dout * (y > 0) in one pass, without the boolean temporary."""
    cp = get_array_module(dout)
    if out is None:
        out = cp.empty_like(dout)
    _kernel(cp, "relu_backward", {}, out)(dout, y, out)
    return out
