"""Optimizers: how gradients become weight updates, with Keras's formulas.

An optimizer keeps one slot array per parameter (a velocity, a running mean of
squared gradients...), keyed by ``(layer name, parameter name)``, and an
``iterations`` counter. ``apply(layers)`` updates every trainable layer's
``params`` in place from its ``grads``.
"""
from __future__ import annotations

import math

import numpy as np

from .backend import get_array_module, to_device, to_numpy
from .engine import step_kernels


# The largest float32: a setting beyond it becomes inf in the float32 arithmetic of a step.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _setting(value, what, low=0.0, low_included=True, high=FLOAT32_MAX, high_included=True):
    """``value`` as a float, checked to be a finite number in [low, high] (or open ends)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a number, got {value!r}") from None
    above_low = number >= low if low_included else number > low
    below_high = number <= high if high_included else number < high
    if not (math.isfinite(number) and above_low and below_high):
        interval = (f"{'[' if low_included else '('}{low:g}, "
                    f"{high:g}{']' if high_included else ')'}")
        raise ValueError(f"{what} must be a finite number in {interval}, got {value!r}")
    return number


def _check_shapes(param, slot, grad, layer_name, key):
    """The fused kernels index the three arrays in step and check nothing themselves: a
    size that differs would read and write past an array's end."""
    if slot.shape != param.shape or grad.shape != param.shape:
        raise ValueError(f"layer {layer_name!r}, parameter {key!r}: shapes differ (parameter "
                         f"{tuple(param.shape)}, optimizer slot {tuple(slot.shape)}, gradient "
                         f"{tuple(grad.shape)})")


class Optimizer:
    name = "optimizer"

    def __init__(self, learning_rate):
        self.learning_rate = _setting(learning_rate, "learning_rate", low_included=False)
        self.iterations = 0
        self.slots: dict[tuple[str, str, str], object] = {}

    def current_learning_rate(self) -> float:
        return self.learning_rate

    def _slot(self, layer_name, key, slot_name, like):
        """The optimizer's state array for one parameter, created as zeros.

        A slot that exists already must have the parameter's shape and dtype: it may come
        from a file, or from another model that used this optimizer object, and a wrong
        one must never reach the update (the fused kernels would write past its end).
        """
        slot_key = (layer_name, key, slot_name)
        slot = self.slots.get(slot_key)
        if slot is None:
            slot = self.slots[slot_key] = get_array_module(like).zeros_like(like)
        elif slot.shape != like.shape or slot.dtype != like.dtype:
            raise ValueError(
                f"optimizer slot {slot_name!r} of layer {layer_name!r}, parameter {key!r} has "
                f"shape {tuple(slot.shape)} ({slot.dtype}) but the parameter has shape "
                f"{tuple(like.shape)} ({like.dtype}): the optimizer holds the state of "
                "another model (use a new optimizer object for each model) or state that "
                "does not match this model")
        return slot

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
        """Iterations and slot arrays as NumPy, for ``Model.save``.

        Slots are keyed ``"layer/parameter/slot"``: layer names cannot contain "/"
        (``Layer`` refuses them), so the key splits back unambiguously.
        """
        return {"iterations": self.iterations,
                "slots": {"/".join(k): to_numpy(v) for k, v in self.slots.items()}}

    def set_state(self, state: dict, layers=None) -> None:
        """Restore what ``get_state`` returned. With ``layers`` (a model's), every slot must
        belong to one of their parameters and have its shape; nothing changes on an error."""
        iterations = state["iterations"]
        if isinstance(iterations, bool) or int(iterations) != iterations or iterations < 0:
            raise ValueError(f"optimizer iterations must be an integer >= 0, got {iterations!r}")
        slots = {}
        for name, value in state["slots"].items():
            parts = tuple(name.split("/"))
            if len(parts) != 3 or not all(parts):
                raise ValueError(f"optimizer slot {name!r}: expected a key "
                                 "'layer/parameter/slot'")
            slots[parts] = value
        if layers is not None:
            self._check_slots(slots, layers)
        self.iterations = int(iterations)
        self.slots = {k: to_device(v, dtype=np.float32) for k, v in slots.items()}

    @staticmethod
    def _check_slots(slots, layers):
        params = {(layer.name, key): param for layer in layers
                  for key, param in layer.params.items()}
        for (layer_name, key, slot_name), value in slots.items():
            param = params.get((layer_name, key))
            if param is None:
                raise ValueError(f"optimizer slot {slot_name!r} is for layer {layer_name!r}, "
                                 f"parameter {key!r}, which the model does not have; its "
                                 f"parameters: {sorted('/'.join(p) for p in params)}")
            if tuple(np.shape(value)) != tuple(param.shape):
                raise ValueError(f"optimizer slot {slot_name!r} of layer {layer_name!r}, "
                                 f"parameter {key!r} has shape {tuple(np.shape(value))} but "
                                 f"the parameter has shape {tuple(param.shape)}")


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
        self.momentum = _setting(momentum, "momentum", high=1.0)
        self.nesterov = bool(nesterov)
        self.decay = _setting(decay, "decay")

    def current_learning_rate(self) -> float:
        return self.learning_rate / (1.0 + self.decay * self.iterations)

    def update(self, param, grad, lr, layer_name, key):
        if self.momentum == 0.0:
            param -= lr * grad
            return
        velocity = self._slot(layer_name, key, "velocity", param)
        _check_shapes(param, velocity, grad, layer_name, key)
        kernels = step_kernels(param, velocity)
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
        self.rho = _setting(rho, "rho", high=1.0, high_included=False)
        self.epsilon = _setting(epsilon, "epsilon")

    def update(self, param, grad, lr, layer_name, key):
        xp = get_array_module(param)
        mean_square = self._slot(layer_name, key, "mean_square", param)
        _check_shapes(param, mean_square, grad, layer_name, key)
        kernels = step_kernels(param, mean_square)
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
    """The optimizer ``get_config`` described; ValueError for an unknown name or setting."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}: expected one of {sorted(OPTIMIZERS)}")
    try:
        return OPTIMIZERS[name](**config)
    except TypeError as err:      # a setting this optimizer does not have
        raise ValueError(f"optimizer {name!r}: cannot use the settings {config!r} ({err})") \
            from None
