"""Gradient checking: compare analytic gradients with central differences.

For a layer, the scalar checked is ``L = sum(forward(x) * R)`` for a fixed
random ``R``; then dL/dy = R, so ``backward(R)`` must return dL/dx and fill
``grads`` with dL/dparam. Each is compared with

    (L(theta + h e) - L(theta - h e)) / (2 h)

in float64, where rounding is small enough for ~1e-7 agreement: ``e`` runs over
every coordinate (the full Jacobian-vector product) for small arrays, or is a
few random unit directions for large ones, where the check becomes
``<grad, e>`` against the directional derivative.

    >>> report = check_layer(Conv2D(4, 3, padding="same"), x)
    >>> report.max_relative_error < 1e-6
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .backend import to_numpy


@dataclass
class GradcheckReport:
    """Worst relative error for the input and for each named parameter."""

    errors: dict = field(default_factory=dict)

    @property
    def max_relative_error(self) -> float:
        return max(self.errors.values()) if self.errors else 0.0

    def __str__(self):
        rows = ", ".join(f"{name}: {err:.2e}" for name, err in self.errors.items())
        return f"max relative error {self.max_relative_error:.2e} ({rows})"


def relative_error(analytic, numeric) -> float:
    """max_i |a_i - n_i| / max(|a_i|, |n_i|, floor); the floor (1e-3 of the largest
    gradient, at least 1e-10) keeps tiny entries from dominating through rounding."""
    analytic, numeric = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    scale = max(np.abs(analytic).max(initial=0.0), np.abs(numeric).max(initial=0.0))
    floor = max(1e-3 * scale, 1e-10)
    denom = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), floor)
    return float((np.abs(analytic - numeric) / denom).max(initial=0.0))


def _numeric_directional(f, array, analytic, step, max_full, rng):
    """Numerical derivative of f() w.r.t. ``array`` (perturbed in place), compared with
    ``analytic``: coordinate by coordinate, or along random directions when large."""
    if array.size <= max_full:
        numeric = np.zeros_like(array)
        flat, num_flat = array.reshape(-1), numeric.reshape(-1)
        for i in range(flat.size):
            original = flat[i]
            flat[i] = original + step
            plus = f()
            flat[i] = original - step
            minus = f()
            flat[i] = original
            num_flat[i] = (plus - minus) / (2 * step)
        return relative_error(analytic, numeric)
    analytic_dots, numeric_dots = [], []
    for _ in range(8):
        direction = rng.standard_normal(array.shape)
        direction /= np.linalg.norm(direction)
        original = array.copy()
        array += step * direction
        plus = f()
        array[...] = original - step * direction
        minus = f()
        array[...] = original
        analytic_dots.append(float((analytic * direction).sum()))
        numeric_dots.append((plus - minus) / (2 * step))
    return relative_error(analytic_dots, numeric_dots)


def check_layer(layer, x, seed=0, step=1e-6, max_full=2000, training=False) -> GradcheckReport:
    """Check ``layer.backward`` against central differences at input ``x``.

    Runs in float64 on the CPU: the layer's parameters are cast for the check
    and restored afterwards (what a training pass changes, BatchNormalization's moving
    statistics, included). ``training=False`` by default (dropout is checked
    separately, its mask being random); ``training=True`` checks the training pass
    (BatchNormalization's batch statistics). Only the parameters that get a gradient
    are checked: non-trainable ones (moving statistics) get none.
    """
    rng = np.random.default_rng(seed)
    x = np.array(to_numpy(x), dtype=np.float64)
    if not layer.built:
        layer.build(x.shape[1:])
    saved = dict(layer.params)
    layer.params = {k: np.array(to_numpy(v), dtype=np.float64) for k, v in saved.items()}
    try:
        upstream = rng.standard_normal((x.shape[0], *layer.output_shape))

        def objective():
            return float((layer.forward(x, training=training) * upstream).sum())

        layer.forward(x, training=training)
        grad_x = to_numpy(layer.backward(upstream))
        analytic = {k: to_numpy(g).copy() for k, g in layer.grads.items()}
        report = GradcheckReport()
        report.errors["input"] = _numeric_directional(objective, x, grad_x, step, max_full, rng)
        for key, param in layer.params.items():
            if key not in analytic:
                continue
            report.errors[key] = _numeric_directional(objective, param, analytic[key], step,
                                                      max_full, rng)
        return report
    finally:
        layer.params = saved


def check_loss(loss, y_true, y_pred, seed=0, step=1e-6, max_full=2000) -> GradcheckReport:
    """Check ``loss.gradient`` against central differences of ``loss(y_true, y_pred)``."""
    rng = np.random.default_rng(seed)
    y_true = np.asarray(to_numpy(y_true), dtype=np.float64)
    y_pred = np.array(to_numpy(y_pred), dtype=np.float64)
    analytic = to_numpy(loss.gradient(y_true, y_pred))

    def objective():
        return float(loss(y_true, y_pred))

    return GradcheckReport({"y_pred": _numeric_directional(objective, y_pred, analytic, step,
                                                           max_full, rng)})
