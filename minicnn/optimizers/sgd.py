"""Stochastic gradient descent, with momentum and Keras 2's time decay."""
from __future__ import annotations

from ..engine import step_kernels
from .base import DefaultRate, Optimizer, _check_shapes, _setting


class SGD(Optimizer):
    """Stochastic gradient descent with momentum and Keras 2's time decay.

        lr_t = learning_rate / (1 + decay * iterations)
        v    = momentum * v - lr_t * g
        w   += v                                 (plain momentum)
        w   += momentum * v - lr_t * g           (Nesterov)

    With momentum 0 this is ``w -= lr_t * g``. The cats/dogs tutorial uses
    ``SGD(lr=0.01, momentum=0.9, decay=0.01 / epochs)``. Keras 3 dropped ``decay``
    (its ``InverseTimeDecay(lr, 1, decay)`` schedule is the same rule); here it divides
    whatever ``learning_rate`` gives, so setting ``learning_rate`` (ReduceLROnPlateau)
    sets the undecayed rate, as Keras 2's ``lr`` was. Plus the arguments of every
    optimizer (:class:`Optimizer`): weight_decay, clipnorm, clipvalue, global_clipnorm.
    """

    name = "sgd"
    slot_names = ("velocity",)

    def __init__(self, learning_rate=DefaultRate(0.01), momentum=0.0, nesterov=False,
                 decay=0.0, **kwargs):
        super().__init__(learning_rate, **kwargs)
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
