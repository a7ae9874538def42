"""Adam and its two relatives in Keras 3: AdamW (decoupled weight decay) and Nadam
(Nesterov momentum). The formulas are Keras 3's (``keras/src/optimizers/adam.py``,
``adamw.py``, ``nadam.py``)."""
from __future__ import annotations

import math

from ..backend import get_array_module
from ..engine import step_kernels
from .base import DefaultRate, Optimizer, _check_shapes, _setting


def _beta(value, what):
    # beta = 1 would divide by 1 - beta^t = 0 in the bias correction
    return _setting(value, what, high=1.0, high_included=False)


class Adam(Optimizer):
    """Adaptive moment estimation (Kingma & Ba, 2015), as Keras 3 computes it:

        t     = iterations + 1
        alpha = lr * sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
        m    += (g - m) * (1 - beta_1)
        v    += (g * g - v) * (1 - beta_2)
        if amsgrad:                                 (Reddi et al., 2018)
            v_hat = maximum(v_hat, v);  v = v_hat
        w    -= m * alpha / (sqrt(v) + epsilon)

    epsilon is added outside the square root (RMSprop and Adagrad put it inside).
    Slots: ``momentum`` (m), ``velocity`` (v), ``velocity_hat`` (AMSGrad). Plus the
    arguments of every optimizer (:class:`Optimizer`). On the CPU the step is one numba
    pass (``engine.cpu_kernels.optim.adam_``) with these float32 operations in this order.
    """

    name = "adam"
    slot_names = ("momentum", "velocity", "velocity_hat")

    def __init__(self, learning_rate=DefaultRate(0.001), beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = _beta(beta_1, "beta_1")
        self.beta_2 = _beta(beta_2, "beta_2")
        self.epsilon = _setting(epsilon, "epsilon")
        self.amsgrad = bool(amsgrad)

    def update(self, param, grad, lr, layer_name, key):
        t = self.iterations + 1
        alpha = lr * math.sqrt(1.0 - self.beta_2 ** t) / (1.0 - self.beta_1 ** t)
        m = self._slot(layer_name, key, "momentum", param)
        v = self._slot(layer_name, key, "velocity", param)
        v_hat = self._slot(layer_name, key, "velocity_hat", param) if self.amsgrad else None
        for slot in (m, v) if v_hat is None else (m, v, v_hat):
            _check_shapes(param, slot, grad, layer_name, key)
        kernels = step_kernels(param, m, v, *([] if v_hat is None else [v_hat]))
        fused = getattr(kernels, "adam_", None)
        if fused:   # the same formulas in one pass, not ten
            fused(param, m, v, v_hat, grad, alpha, self.beta_1, self.beta_2, self.epsilon)
            return
        xp = get_array_module(param)
        m += (grad - m) * (1.0 - self.beta_1)
        v += (grad * grad - v) * (1.0 - self.beta_2)
        if v_hat is not None:
            xp.maximum(v_hat, v, out=v_hat)
            v = v_hat
        param -= m * alpha / (xp.sqrt(v) + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as Keras 3 has it:
    :class:`Adam` plus, before each step, on every trainable parameter (biases too),

        w -= w * weight_decay * lr

    (the base optimizer's weight decay, here on by default and required).
    """

    name = "adamw"

    def __init__(self, learning_rate=DefaultRate(0.001), weight_decay=0.004, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-7, amsgrad=False, **kwargs):
        if weight_decay is None:
            raise ValueError("AdamW's weight_decay must be a number >= 0, got None (for no "
                             "weight decay use Adam)")
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         amsgrad=amsgrad, weight_decay=weight_decay, **kwargs)


class Nadam(Optimizer):
    """Adam with Nesterov momentum (Dozat, 2016), as Keras 3 computes it, with Keras's
    momentum schedule ``u_t = beta_1 * (1 - 0.5 * 0.96 ** t)``:

        t            = iterations + 1
        u_t          = beta_1 * (1 - 0.5 * 0.96 ** t)
        u_t1         = beta_1 * (1 - 0.5 * 0.96 ** (t + 1))
        u_product   *= u_t                       (once per step; starts at 1)
        m           += (g - m) * (1 - beta_1)
        v           += (g * g - v) * (1 - beta_2)
        m_hat        = u_t1 * m / (1 - u_product * u_t1) + (1 - u_t) * g / (1 - u_product)
        v_hat        = v / (1 - beta_2 ** t)
        w           -= m_hat * lr / (sqrt(v_hat) + epsilon)

    Slots: ``momentum``, ``velocity``; ``u_product`` is optimizer-wide state, saved with
    them. Plus the arguments of every optimizer (:class:`Optimizer`).
    """

    name = "nadam"
    slot_names = ("momentum", "velocity")
    scalar_names = ("u_product",)

    def __init__(self, learning_rate=DefaultRate(0.001), beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = _beta(beta_1, "beta_1")
        self.beta_2 = _beta(beta_2, "beta_2")
        self.epsilon = _setting(epsilon, "epsilon")
        self.scalars = {"u_product": 1.0}

    def _u(self, t):
        return self.beta_1 * (1.0 - 0.5 * 0.96 ** t)

    def _begin_step(self):
        self.scalars["u_product"] *= self._u(self.iterations + 1)

    def update(self, param, grad, lr, layer_name, key):
        xp = get_array_module(param)
        t = self.iterations + 1
        u_t, u_t1 = self._u(t), self._u(t + 1)
        u_product = self.scalars["u_product"]
        # The scalar factors once per parameter, in float64: two array passes fewer.
        m_scale = u_t1 / (1.0 - u_product * u_t1)
        g_scale = (1.0 - u_t) / (1.0 - u_product)
        v_scale = 1.0 / (1.0 - self.beta_2 ** t)
        m = self._slot(layer_name, key, "momentum", param)
        v = self._slot(layer_name, key, "velocity", param)
        for slot in (m, v):
            _check_shapes(param, slot, grad, layer_name, key)
        m += (grad - m) * (1.0 - self.beta_1)
        v += (grad * grad - v) * (1.0 - self.beta_2)
        m_hat = m * m_scale + grad * g_scale
        param -= m_hat * lr / (xp.sqrt(v * v_scale) + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}
