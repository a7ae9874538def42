"""How far two float32 computations of the same numbers may drift apart: the suite's tolerances.

Machines of this kind differ (Intel with AVX-512, AMD with AVX2): OpenBLAS, numba/LLVM and
TensorFlow pick other kernels on each, which add in other orders and fuse other multiply-adds.
So no tolerance may come from what one machine printed; each follows from a bound on the
rounding error of the computation it checks:

* one float32 rounding is off by at most ``EPS32 / 2`` relative (``EPS32 = 2**-23``);
* a sum of K terms, in ANY order, with or without FMA, is off by at most
  ``(K - 1) * EPS32 / 2 * sum |terms|`` (Higham, *Accuracy and Stability of Numerical
  Algorithms*, 2nd ed., eq. 3.5); two such sums differ by at most ``K * EPS32 * sum |terms|``.

For a linear map L (a convolution, a matrix product, col2im, a kernel gradient) the
``sum |terms|`` of every output element is L applied to the absolute values of the
operands, computed in float64: :func:`linear_bound` does that with the plain reference
code, so each element gets its own bound. These are worst-case bounds: a test that stays
inside them passes on every machine, and a real bug (a wrong index, a lost term) is
orders of magnitude outside them.
"""
from __future__ import annotations

import numpy as np

EPS32 = float(np.finfo(np.float32).eps)   # 2**-23 = 1.19e-7


def sum_bound(terms: int, abs_sum) -> np.ndarray:
    """Largest difference of two float32 sums of ``terms`` terms whose absolute values add
    up to ``abs_sum`` (a number or an array), whatever order each sums in."""
    return terms * EPS32 * np.asarray(abs_sum, dtype=np.float64)


def linear_bound(function, terms: int, *operands) -> np.ndarray:
    """Elementwise bound for two float32 evaluations of the linear ``function(*operands)``:
    ``function`` run in float64 on ``|operand|`` gives each output's sum of |terms|."""
    magnitudes = [np.abs(np.asarray(op, dtype=np.float64)) for op in operands]
    return sum_bound(terms, function(*magnitudes))


def assert_within(actual, expected, bound, what="result"):
    """``|actual - expected| <= bound`` elementwise; the message gives the worst element."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    excess = np.abs(actual - expected) - np.broadcast_to(bound, expected.shape)
    worst = np.unravel_index(np.argmax(excess), excess.shape) if excess.size else ()
    assert excess.size == 0 or excess[worst] <= 0, (
        f"{what}: {actual[worst]} vs {expected[worst]} at {worst}, beyond the float32 "
        f"bound {np.broadcast_to(bound, expected.shape)[worst]:.3g}")


def conv_layer_bounds(x, kernel, bias, grad_y, strides, padding):
    """Bounds for two float32 runs of a Conv2D layer's forward and backward passes.

    Returns ``(output, grad_input, {"kernel": ..., "bias": ...})`` as the layer's outputs
    are laid out, each from the sums the layer does (shapes as in ``ops.conv``):

        output       = im2col(x) @ kernel + bias     KH*KW*C + 1 terms
        grad_input   = col2im(grad_y @ kernel.T)     F, then up to KH*KW overlapping terms
        grad_kernel  = im2col(x).T @ grad_y          N*OH*OW terms
        grad_bias    = sum of grad_y                 N*OH*OW terms

    ReLU and its mask change no magnitude upwards, so the bounds hold with them too
    (as long as no output sits within rounding of 0, where the masks could differ).
    """
    from minicnn.ops import conv

    kh, kw, channels, filters = kernel.shape
    cols_abs = conv.im2col(np.abs(np.asarray(x, np.float64)), (kh, kw), strides, padding)
    kernel_abs = np.abs(np.asarray(kernel, np.float64)).reshape(-1, filters)
    grad_abs = np.abs(np.asarray(grad_y, np.float64)).reshape(-1, filters)
    bias_abs = 0.0 if bias is None else np.abs(np.asarray(bias, np.float64))
    positions = len(grad_abs)
    output = sum_bound(kh * kw * channels + 1, cols_abs @ kernel_abs + bias_abs)
    grad_input = sum_bound(filters + kh * kw, conv.col2im(grad_abs @ kernel_abs.T, x.shape,
                                                          (kh, kw), strides, padding))
    grads = {"kernel": sum_bound(positions, cols_abs.T @ grad_abs).reshape(kernel.shape),
             "bias": sum_bound(positions, grad_abs.sum(axis=0))}
    return output.reshape(grad_y.shape), grad_input, grads


def sequential_bound(model, x, terms: int) -> np.ndarray:
    """Elementwise bound for two float32 evaluations of a small ``Sequential`` on ``x``,
    in any summation orders.

    The same layers with |weights|, run on |x| in float64, give for every output the
    sum of the magnitudes of all the products that reach it: ReLU and max pooling of
    non-negative values keep the largest magnitude, so they bound the pass through the
    real ones. ``terms`` is the longest chain of additions from input to output: the sum
    over the layers of the terms of each (KH*KW*C + 1 per conv, inputs + 1 per dense),
    since an error made in one layer is carried, with its magnitude, into the next.
    Softmax and sigmoid outputs move by at most the change of their inputs (their
    slopes are below 1) and round a few times themselves (4 eps: they are <= 1).
    """
    from minicnn import layers as layers_module
    from minicnn.models import Sequential

    squashed = False
    copies = []
    for layer in model.layers:
        config = dict(layer.get_config())
        if config.get("activation") in ("softmax", "sigmoid"):
            config["activation"], squashed = None, True
        copies.append(layers_module.from_config(type(layer).__name__, config))
    magnitudes = Sequential(copies)
    magnitudes.build(model.input_shape[1:])   # (None, ...) -> one sample
    magnitudes.set_weights([np.abs(w) for w in model.get_weights()])
    bound = sum_bound(terms, magnitudes.forward(np.abs(np.asarray(x, np.float64))))
    return bound + (sum_bound(4, 1.0) if squashed else 0.0)
