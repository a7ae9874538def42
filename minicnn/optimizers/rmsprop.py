"""RMSprop: each gradient divided by a running root-mean-square of its recent values."""
from __future__ import annotations

from ..backend import get_array_module
from ..engine import step_kernels
from .base import DefaultRate, Optimizer, _check_shapes, _setting


class RMSprop(Optimizer):
    """Divide each gradient by a running root-mean-square of its recent values.

        a  = rho * a + (1 - rho) * g^2
        w -= lr * g / sqrt(a + epsilon)

    Keras 3 puts epsilon inside the square root (Keras 2 added it outside). Plus the
    arguments of every optimizer (:class:`Optimizer`).
    """

    name = "rmsprop"
    slot_names = ("mean_square",)

    def __init__(self, learning_rate=DefaultRate(0.001), rho=0.9, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
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
