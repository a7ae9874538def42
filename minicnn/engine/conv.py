"""Conv2D's two passes, as the engine runs them: the one call each way a layer makes.

``conv2d_forward(layer, x, training) -> (y, cols)`` and ``conv2d_backward(layer, dout,
x, y, cols, need_input_grad) -> (dx, grads)``. What they compute is ``ops.conv``'s
im2col + one matmul + bias, then the activation; how depends on the engine
(``choice``) and the device:

* engine "reference": the loops of ``ops.reference``;
* im2col in chunks (``conv_im2col``), on any device, with bias + ReLU fused into one
  pass where the kernels have it (numba, CuPy);
* on the CPU with numba: Winograd's F(2x2, 3x3) for 3x3 stride-1 layers of enough
  channels (``conv_winograd``), and the kernel gradient of an RGB first layer on
  image planes (``cpu_kernels.conv2d_kernel_grad``).
"""
from __future__ import annotations

from ..backend import get_array_module, to_numpy
from ..ops import reference, winograd
from . import conv_im2col, conv_winograd, cpu_kernels, threads
from .choice import engine_name, kernels_for
from .scratch import scratch_for


def _relu(layer) -> bool:
    return getattr(layer.activation, "name", None) == "relu"


def fused_kernels(layer, x):
    """The kernels that fuse this layer's bias + ReLU on ``x``, or None (separate passes)."""
    kernels = kernels_for(x)
    return kernels if kernels.FUSED and layer.use_bias and _relu(layer) else None


def uses_winograd(layer, x) -> bool:
    """Whether the forward pass takes Winograd's F(2x2, 3x3): CPU kernels, a 3x3 stride-1
    layer, ``layer.cpu_winograd`` and at least ``layer.winograd_min_channels`` channels."""
    return (layer.cpu_winograd and winograd.applies(layer.kernel_size, layer.strides)
            and x.shape[-1] >= layer.winograd_min_channels and kernels_for(x) is cpu_kernels)


def uses_winograd_backward(layer, x, need_input_grad) -> bool:
    """Whether the backward pass takes Winograd too: its input gradient is a correlation
    of F channels, worth it only from ``winograd_min_channels`` filters as well."""
    return (uses_winograd(layer, x)
            and (not need_input_grad or layer.filters >= layer.winograd_min_channels))


def uses_planes(layer, x) -> bool:
    """Whether the kernel gradient goes to ``cpu_kernels.conv2d_kernel_grad`` (few input
    channels, stride 1, CPU kernels): there im2col's product is too skinny for BLAS."""
    return (x.shape[-1] <= cpu_kernels.FILTER_GRAD_MAX_CHANNELS and layer.strides == (1, 1)
            and kernels_for(x) is cpu_kernels)


def conv2d_forward(layer, x, training):
    """activation(conv(x) + bias): x (N, H, W, C) -> (y (N, OH, OW, F), cols), where
    ``cols`` is the im2col matrix kept for the backward pass, or None (rebuilt then)."""
    if engine_name() == "reference":
        bias = layer.params.get("bias")
        z = reference.conv2d_forward_loops(to_numpy(x), to_numpy(layer.params["kernel"]),
                                           None if bias is None else to_numpy(bias),
                                           layer.strides, layer.padding)
        return layer.activation.forward(get_array_module(x).asarray(z)), None
    z = scratch_for(layer).result("z", (x.shape[0], *layer.output_shape), x)
    if uses_winograd(layer, x):
        relu = _relu(layer)
        conv_winograd.forward(layer, x, z, relu)
        return (z if relu else layer.activation.forward(z)), None
    fused = fused_kernels(layer, x)
    cols = conv_im2col.forward(layer, x, z, fused, training)
    return (z if fused else layer.activation.forward(z)), cols


def conv2d_backward(layer, dout, x, y, cols, need_input_grad):
    """dout (N, OH, OW, F), the gradient of y -> (dx (N, H, W, C) or None, grads), with
    ``grads["kernel"]`` and ``grads["bias"]`` for the layer's params."""
    if engine_name() == "reference":
        dz = layer.activation.backward(dout, y)
        dx, dkernel, dbias = reference.conv2d_backward_loops(
            to_numpy(dz), to_numpy(x), to_numpy(layer.params["kernel"]), layer.strides,
            layer.padding)
        xp = get_array_module(x)
        dx = xp.asarray(dx) if need_input_grad else None
        return dx, grads_dict(layer, xp.asarray(dkernel), xp.asarray(dbias))
    if fused_kernels(layer, dout):   # ReLU's backward fused into the passes below
        return backward_from_dz(layer, dout, x, y, cols, need_input_grad)
    dz = layer.activation.backward(dout, y)
    return backward_from_dz(layer, dz, x, None, cols, need_input_grad)


def grads_dict(layer, dkernel, dbias):
    """The layer's grads: kernel, and bias if it has one."""
    return {"kernel": dkernel, "bias": dbias} if layer.use_bias else {"kernel": dkernel}


def backward_from_dz(layer, dout, x, relu_y, cols, need_input_grad):
    """The backward pass from ``dout``: dz, the gradient of conv(x) + bias, if ``relu_y``
    is None; else the gradient of ReLU's output ``relu_y``, which each path masks by
    relu_y > 0 in one of its own passes. -> (dx or None, grads)"""
    if uses_winograd_backward(layer, x, need_input_grad):
        dz = dout
        if relu_y is not None:   # ReLU's backward for the whole batch, a chunk per thread
            dz = scratch_for(layer).buffer("dz_batch", dout.shape, x)
            threads.map_chunks(
                lambda images, _worker: cpu_kernels.relu_backward(
                    dout[images], relu_y[images], out=dz[images]),
                threads.batch_chunks(x.shape[0]))
        dx, dkernel, dbias = conv_winograd.backward(layer, x, dz, need_input_grad)
    elif not need_input_grad and uses_planes(layer, x):
        # Few input channels (RGB), CPU: dot products on planes, ReLU's backward fused.
        dkernel, dbias = cpu_kernels.conv2d_kernel_grad(
            x, dout, layer.params["kernel"].shape, layer.strides, layer.padding, y=relu_y)
        dx = None
    else:
        dx, dkernel, dbias = conv_im2col.backward(layer, dout, x, relu_y, cols, need_input_grad)
    return dx, grads_dict(layer, dkernel, dbias)

