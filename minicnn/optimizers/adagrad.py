"""Adagrad: a per-parameter rate that shrinks with the sum of the squared gradients."""
from __future__ import annotations

from ..backend import get_array_module
from .base import DefaultRate, Optimizer, _check_shapes, _setting


class Adagrad(Optimizer):
    """Adaptive gradient (Duchi et al., 2011), as Keras 3 computes it:

        a  = initial_accumulator_value               (once, when the slot is made)
        a += g * g
        w -= lr * g / sqrt(a + epsilon)

    Slot: ``accumulator``. Plus the arguments of every optimizer (:class:`Optimizer`).
    Three array passes per step: no fused kernel (Adam's ten are what pays for one).
    """

    name = "adagrad"
    slot_names = ("accumulator",)

    def __init__(self, learning_rate=DefaultRate(0.001), initial_accumulator_value=0.1,
                 epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = _setting(initial_accumulator_value,
                                                  "initial_accumulator_value")
        self.epsilon = _setting(epsilon, "epsilon")

    def update(self, param, grad, lr, layer_name, key):
        xp = get_array_module(param)
        accumulator = self._slot(layer_name, key, "accumulator", param,
                                 initial=self.initial_accumulator_value)
        _check_shapes(param, accumulator, grad, layer_name, key)
        accumulator += grad * grad
        param -= lr * grad / xp.sqrt(accumulator + self.epsilon)

    def get_config(self):
        return {**super().get_config(),
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}
