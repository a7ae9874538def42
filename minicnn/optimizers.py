"""Optimizers: how gradients become weight updates, with Keras's formulas.

An optimizer keeps one slot array per parameter (a velocity, a running mean of
squared gradients...), keyed by ``(layer name, parameter name)``, and an
``iterations`` counter. ``apply(layers)`` updates every trainable layer's
``params`` in place from its ``grads``.
"""
from __future__ import annotations

import numpy as np

from .backend import get_array_module, to_device, to_numpy
from .ops import cpu_kernels, gpu_kernels


def _fused_kernels(param, slot):
    """The kernel module that runs an optimizer step in one pass on these arrays, or None
    (then the NumPy-style formulas below, on any array module)."""
    if gpu_kernels.usable(param):
        return gpu_kernels
    if cpu_kernels.usable(param) and param.flags.c_contiguous and slot.flags.c_contiguous:
        return cpu_kernels
    return None


class Optimizer:
    name = "optimizer"

    def __init__(self, learning_rate):
        if float(learning_rate) <= 0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
        self.learning_rate = float(learning_rate)
        self.iterations = 0
        self.slots: dict[tuple[str, str, str], object] = {}

    def current_learning_rate(self) -> float:
        return self.learning_rate

    def _slot(self, layer_name, key, slot_name, like):
        """The optimizer's state array for one parameter, created as zeros."""
        slot_key = (layer_name, key, slot_name)
        if slot_key not in self.slots:
            self.slots[slot_key] = get_array_module(like).zeros_like(like)
        return self.slots[slot_key]

    def apply(self, layers):
        """One update of every trainable parameter that has a gradient."""
        lr = self.current_learning_rate()
        for layer in layers:
            if not layer.trainable:
                continue
            for key, param in layer.params.items():
                grad = layer.grads.get(key)
                if grad is not None:
                    self.update(param, grad, lr, layer.name, key)
        self.iterations += 1

    def update(self, param, grad, lr, layer_name, key):
        raise NotImplementedError

    # -- saving -----------------------------------------------------------
    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate}

    def get_state(self) -> dict:
        """Iterations and slot arrays as NumPy, for ``Model.save``."""
        return {"iterations": self.iterations,
                "slots": {"/".join(k): to_numpy(v) for k, v in self.slots.items()}}

    def set_state(self, state: dict) -> None:
        self.iterations = int(state["iterations"])
        self.slots = {tuple(k.split("/")): to_device(v, dtype=np.float32)
                      for k, v in state["slots"].items()}


class SGD(Optimizer):
    """Stochastic gradient descent with momentum and Keras 2's time decay.

        lr_t = lr / (1 + decay * iterations)
        v    = momentum * v - lr_t * g
        w   += v                                 (plain momentum)
        w   += momentum * v - lr_t * g           (Nesterov)

    With momentum 0 this is ``w -= lr_t * g``. The cats/dogs tutorial uses
    ``SGD(lr=0.01, momentum=0.9, decay=0.01 / epochs)``.
    """

    name = "sgd"

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, decay=0.0):
        super().__init__(learning_rate)
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
        if float(decay) < 0:
            raise ValueError(f"decay must be >= 0, got {decay!r}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.decay = float(decay)

    def current_learning_rate(self) -> float:
        return self.learning_rate / (1.0 + self.decay * self.iterations)

    def update(self, param, grad, lr, layer_name, key):
        if self.momentum == 0.0:
            param -= lr * grad
            return
        velocity = self._slot(layer_name, key, "velocity", param)
        kernels = _fused_kernels(param, velocity)
        if kernels:   # the same formulas in one pass, not four
            kernels.sgd_momentum_(param, velocity, grad, lr, self.momentum, self.nesterov)
            return
        velocity *= self.momentum
        velocity -= lr * grad
        if self.nesterov:
            param += self.momentum * velocity - lr * grad
        else:
            param += velocity

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov,
                "decay": self.decay}


class RMSprop(Optimizer):
    """Divide each gradient by a running root-mean-square of its recent values.

        a  = rho * a + (1 - rho) * g^2
        w -= lr * g / sqrt(a + epsilon)

    Keras 3 puts epsilon inside the square root (Keras 2 added it outside).
    """

    name = "rmsprop"

    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-7):
        super().__init__(learning_rate)
        if not 0.0 <= float(rho) < 1.0:
            raise ValueError(f"rho must be in [0, 1), got {rho!r}")
        self.rho = float(rho)
        self.epsilon = float(epsilon)

    def update(self, param, grad, lr, layer_name, key):
        xp = get_array_module(param)
        mean_square = self._slot(layer_name, key, "mean_square", param)
        kernels = _fused_kernels(param, mean_square)
        if kernels:   # the same formulas in one pass
            kernels.rmsprop_(param, mean_square, grad, lr, self.rho, self.epsilon)
            return
        mean_square *= self.rho
        mean_square += (1.0 - self.rho) * grad * grad
        param -= lr * grad / xp.sqrt(mean_square + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


OPTIMIZERS = {"sgd": SGD, "rmsprop": RMSprop}


def get(optimizer):
    """An optimizer from its name (with default settings) or the object itself."""
    if isinstance(optimizer, str):
        key = optimizer.lower()
        if key not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}: expected one of "
                             f"{sorted(OPTIMIZERS)}")
        return OPTIMIZERS[key]()
    if isinstance(optimizer, Optimizer):
        return optimizer
    raise TypeError(f"optimizer must be a name or an Optimizer, got {optimizer!r}")


def from_config(name: str, config: dict) -> Optimizer:
    return OPTIMIZERS[name](**config)
