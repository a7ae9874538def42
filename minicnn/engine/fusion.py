"""A Sequential's passes, planned by the engine: each layer alone, or a Conv2D + ReLU
and the MaxPooling2D after it as one pass.

Fused (on the CPU, where the pair allows it: the tutorial's three pairs and VGG16's
five), the conv's activation, its largest array, is never written out, nor its gradient
in the backward pass: each chunk's activation goes from the cache into the pooling.
The plan reads what each layer declares (``layer.kind``), never its class.
"""
from __future__ import annotations

from . import conv as conv_engine
from . import conv_im2col, conv_winograd, cpu_kernels, threads
from .pooling import output_arrays


def fuses(conv, pool, x) -> bool:
    """Whether ``conv`` (kind "conv2d") and ``pool`` (kind "max_pooling2d") after it run as
    one pass on input ``x``: the numba kernels fuse bias + ReLU for ``conv``, and the
    pooling has disjoint "valid" windows; on the im2col path if its chunks are whole
    images, by Winograd if the windows are 2x2 (Winograd's output tiles)."""
    if not (getattr(conv, "kind", None) == "conv2d"
            and getattr(pool, "kind", None) == "max_pooling2d"
            and pool.padding == "valid" and pool.strides == pool.pool_size
            and conv_engine.fused_kernels(conv, x) is cpu_kernels):
        return False
    if conv_engine.uses_winograd(conv, x):
        return pool.pool_size == (2, 2)
    return all(rows is None for _, rows in conv_im2col.forward_chunks(conv, x))


def forward(layers, x, training=False, fuse=True):
    """Run ``layers`` on ``x``; returns ``(output, steps)``, the steps for :func:`backward`:
    ``(i,)`` for layer i alone, ``(i, i + 1)`` for a conv + pool pair run as one pass."""
    steps = []
    with threads.single_threaded_blas():   # the threads are minicnn's (see threads)
        i = 0
        while i < len(layers):
            layer, following = layers[i], layers[i + 1:i + 2]
            if fuse and following and fuses(layer, following[0], x):
                x = forward_pair(layer, following[0], x, training)
                steps.append((i, i + 1))
            else:
                x = layer.forward(x, training=training)
                steps.append((i,))
            i += len(steps[-1])
    return x, steps


def backward(layers, steps, dout, need_input_grad=True):
    """Backpropagate ``dout`` through the ``steps`` of the last :func:`forward`; returns
    the gradient of the input (None if not ``need_input_grad``)."""
    with threads.single_threaded_blas():
        for step in reversed(steps):
            layer = layers[step[0]]
            wanted = need_input_grad or step[0] > 0
            if len(step) == 2:
                dout = backward_pair(layer, layers[step[1]], dout, need_input_grad=wanted)
            elif not wanted and getattr(layer, "skips_input_grad", False):
                dout = layer.backward(dout, need_input_grad=False)
            else:
                dout = layer.backward(dout)
    return dout


def forward_pair(conv, pool, x, training=False):
    """``pool.forward(conv.forward(x))`` in one pass (see :func:`fuses`). Both layers keep
    what their backward passes need, as if each had run: ``pool`` its argmax."""
    x = conv.accept(x)
    conv.forget_forward_state()
    pool.forget_forward_state()
    z_shape = (x.shape[0], *conv.output_shape)
    pooled, argmax = output_arrays(pool, z_shape, x)
    if conv_engine.uses_winograd(conv, x):
        conv_winograd.forward(conv, x, None, True, pool=(pooled, argmax))
    else:
        conv_im2col.forward(conv, x, None, cpu_kernels, training,
                            pool=(pool.pool_size, pooled, argmax))
    conv.keep(x=x, pooled=pooled)
    pool.keep(argmax=argmax, x_shape=z_shape)
    return pooled


def backward_pair(conv, pool, dout, need_input_grad=True):
    """The backward pass of :func:`forward_pair`: dout, the gradient of the pooling's
    output (N, OH // ph, OW // pw, F) -> dx; fills ``conv.grads``.

    Only the pixel that won its window gets a gradient, and ReLU's backward keeps it if
    the maximum is > 0. The RGB planes and the Winograd transforms read that straight
    from the pooled arrays; otherwise dz (N, OH, OW, F) is built first, by the pooling's
    backward pass.
    """
    x, pooled, argmax = conv.kept("x"), conv.kept("pooled"), pool.kept("argmax")
    if not need_input_grad and conv_engine.uses_planes(conv, x):
        dkernel, dbias = cpu_kernels.conv2d_kernel_grad(
            x, dout, conv.params["kernel"].shape, conv.strides, conv.padding,
            pooled=(pooled, argmax, pool.pool_size))
        conv.store_grads(conv_engine.grads_dict(conv, dkernel, dbias))
        return None
    dout = dout * (pooled > 0)                  # ReLU's backward at the winners
    if conv_engine.uses_winograd_backward(conv, x, need_input_grad):   # (a 2x2 pool)
        dx, dkernel, dbias = conv_winograd.backward(conv, x, dout, need_input_grad,
                                                    argmax=argmax)
        conv.store_grads(conv_engine.grads_dict(conv, dkernel, dbias))
        return dx
    dx, grads = conv_engine.backward_from_dz(conv, pool.backward(dout), x, None, None,
                                             need_input_grad)
    conv.store_grads(grads)
    return dx
