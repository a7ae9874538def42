"""Floating-point operations of the layers that do the arithmetic: 2 per multiply-add.

Only Conv2D and Dense count; pooling, activations and normalization are a few operations
per value, negligible beside them. The benchmarks turn these counts into GFLOP/s; the
recipes' table reports each model's cost per image.
"""
from __future__ import annotations


def layer_flops(layer, batch):
    """(forward, backward) floating-point operations of one layer for a batch."""
    from .layers import Conv2D, Dense

    if isinstance(layer, Conv2D):
        out_h, out_w, filters = layer.output_shape
        kh, kw = layer.kernel_size
        forward = 2 * batch * out_h * out_w * kh * kw * layer.input_shape[-1] * filters
        return forward, 2 * forward   # dkernel and dx: one product each
    if isinstance(layer, Dense):
        forward = 2 * batch * layer.input_shape[0] * layer.units
        return forward, 2 * forward
    return 0, 0


def forward_gflops(model) -> float:
    """One image's forward pass through ``model``'s layers, in billions of operations
    (rounded to 3 decimals)."""
    return round(sum(layer_flops(layer, 1)[0] for layer in model.layers) / 1e9, 3)
