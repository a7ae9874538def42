"""Loss functions with Keras's semantics, each with its gradient beside it.

A loss object is called as ``loss(y_true, y_pred)`` and returns a 0-d array
(the mean over the batch); ``loss.gradient(y_true, y_pred)`` returns dLoss/dy_pred
with the shape of ``y_pred``, which then flows back into the softmax or sigmoid
that produced ``y_pred``. Keras's functions of the same names
(``categorical_crossentropy(y_true, y_pred)``) return the loss of each sample, shape
(N,), as Keras's do; ``compile(loss=losses.categorical_crossentropy)`` takes them too.

Probabilities are clipped to [1e-7, 1 - 1e-7] before the log, as Keras does
(``keras.backend.epsilon()``); where clipping is active the gradient is zero,
as it is through ``clip``.

Binary cross-entropy is computed on the probabilities even after a softmax.
Keras 3 on TensorFlow instead reuses the softmax's *logits* as if they had come
from a sigmoid, which gives a different number (0.7367 instead of 0.7290 on the
same outputs); Keras 2, which the cats/dogs tutorial used, and Keras 3 on JAX
use the probabilities, as minicnn does.
"""
from __future__ import annotations

from .backend import get_array_module

EPSILON = 1e-7


def _check_shapes(loss_name, y_true, y_pred):
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{loss_name}: labels of shape {tuple(y_true.shape)} do not match the model's "
            f"output of shape {tuple(y_pred.shape)}; expected labels of shape "
            f"{tuple(y_pred.shape)}"
            + (" (one-hot encode integer labels, e.g. with minicnn.utils.to_categorical)"
               if y_pred.ndim == 2 and y_pred.shape[-1] > 1 and y_true.ndim == 1 else ""))


def _match_labels(loss_name, y_true, y_pred):
    """Cast labels to the predictions' dtype and allow (N,) labels for an (N, 1) output."""
    xp = get_array_module(y_pred)
    y_true = xp.asarray(y_true, dtype=y_pred.dtype)
    if y_true.ndim == 1 and y_pred.ndim == 2 and y_pred.shape[1] == 1:
        y_true = y_true.reshape(-1, 1)
    _check_shapes(loss_name, y_true, y_pred)
    return y_true


def _clip_with_mask(xp, p):
    """clip(p, eps, 1 - eps) and the mask where the clip let the gradient through."""
    low = p.dtype.type(EPSILON)
    high = p.dtype.type(1.0) - low
    return xp.clip(p, low, high), (p >= low) & (p <= high)


class BinaryCrossentropy:
    """mean over the last axis of -[y log p + (1 - y) log(1 - p)], then over the batch."""

    name = "binary_crossentropy"

    def __call__(self, y_true, y_pred):
        xp = get_array_module(y_pred)
        y_true = _match_labels(self.name, y_true, y_pred)
        p, _ = _clip_with_mask(xp, y_pred)
        per_value = -(y_true * xp.log(p) + (1 - y_true) * xp.log(1 - p))
        return per_value.mean(axis=-1).mean()

    def gradient(self, y_true, y_pred):
        xp = get_array_module(y_pred)
        y_true = _match_labels(self.name, y_true, y_pred)
        p, passes = _clip_with_mask(xp, y_pred)
        count = y_pred.size            # mean over the last axis, then over the batch
        grad = (p - y_true) / (p * (1 - p)) / count
        return (grad * passes).astype(y_pred.dtype, copy=False)

    def accuracy(self, y_true, y_pred):
        """Keras's binary accuracy: predictions thresholded at 0.5, per value, compared
        with the label itself (so a soft label such as 0.7 never counts as right)."""
        y_true = _match_labels(self.name, y_true, y_pred)
        return ((y_pred > 0.5).astype(y_pred.dtype) == y_true).mean()


class CategoricalCrossentropy:
    """-sum over classes of y log p, then the mean over the batch.

    Like Keras, the predictions are first divided by their sum over the
    classes (a no-op after a softmax, but it is part of the function and
    therefore of its gradient).
    """

    name = "categorical_crossentropy"

    def __call__(self, y_true, y_pred):
        xp = get_array_module(y_pred)
        y_true = _match_labels(self.name, y_true, y_pred)
        q, _ = _clip_with_mask(xp, y_pred / y_pred.sum(axis=-1, keepdims=True))
        return -(y_true * xp.log(q)).sum(axis=-1).mean()

    def gradient(self, y_true, y_pred):
        xp = get_array_module(y_pred)
        y_true = _match_labels(self.name, y_true, y_pred)
        total = y_pred.sum(axis=-1, keepdims=True)
        q_raw = y_pred / total
        q, passes = _clip_with_mask(xp, q_raw)
        batch = y_pred.shape[0] if y_pred.ndim > 1 else 1
        grad_q = -(y_true / q) * passes / batch
        # Through q = p / sum(p): dL/dp_i = (dL/dq_i - sum_j dL/dq_j q_j) / sum(p)
        grad = (grad_q - (grad_q * q_raw).sum(axis=-1, keepdims=True)) / total
        return grad.astype(y_pred.dtype, copy=False)

    def accuracy(self, y_true, y_pred):
        """Keras's categorical accuracy: the arg-max class matches."""
        y_true = _match_labels(self.name, y_true, y_pred)
        return (y_true.argmax(axis=-1) == y_pred.argmax(axis=-1)).mean()


class MeanSquaredError:
    """mean over the last axis of (y - p)^2, then over the batch."""

    name = "mean_squared_error"

    def __call__(self, y_true, y_pred):
        y_true = _match_labels(self.name, y_true, y_pred)
        return ((y_pred - y_true) ** 2).mean(axis=-1).mean()

    def gradient(self, y_true, y_pred):
        y_true = _match_labels(self.name, y_true, y_pred)
        return (2 * (y_pred - y_true) / y_pred.size).astype(y_pred.dtype, copy=False)

    def accuracy(self, y_true, y_pred):
        y_true = _match_labels(self.name, y_true, y_pred)
        return (y_true == y_pred).mean()


def binary_crossentropy(y_true, y_pred):
    """Keras's function: the loss of each sample (mean over the last axis), shape (N,)."""
    xp = get_array_module(y_pred)
    y_true = _match_labels("binary_crossentropy", y_true, y_pred)
    p, _ = _clip_with_mask(xp, y_pred)
    return (-(y_true * xp.log(p) + (1 - y_true) * xp.log(1 - p))).mean(axis=-1)


def categorical_crossentropy(y_true, y_pred):
    """Keras's function: the loss of each sample, shape (N,)."""
    xp = get_array_module(y_pred)
    y_true = _match_labels("categorical_crossentropy", y_true, y_pred)
    q, _ = _clip_with_mask(xp, y_pred / y_pred.sum(axis=-1, keepdims=True))
    return -(y_true * xp.log(q)).sum(axis=-1)


def mean_squared_error(y_true, y_pred):
    """Keras's function: the loss of each sample, shape (N,)."""
    y_true = _match_labels("mean_squared_error", y_true, y_pred)
    return ((y_pred - y_true) ** 2).mean(axis=-1)


mse = mean_squared_error

LOSSES = {"binary_crossentropy": BinaryCrossentropy,
          "categorical_crossentropy": CategoricalCrossentropy,
          "mean_squared_error": MeanSquaredError,
          "mse": MeanSquaredError}
# Keras's loss functions, given to compile as objects (loss=keras.losses.categorical_crossentropy)
_FUNCTIONS = {binary_crossentropy: BinaryCrossentropy,
              categorical_crossentropy: CategoricalCrossentropy,
              mean_squared_error: MeanSquaredError}


def get(loss):
    """A loss object from its name, Keras's loss function of that name, a loss class or
    the object itself."""
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}: expected one of {sorted(LOSSES)}")
        return LOSSES[loss]()
    if loss in _FUNCTIONS:
        return _FUNCTIONS[loss]()
    if isinstance(loss, type) and loss in LOSSES.values():
        return loss()
    if callable(loss) and hasattr(loss, "gradient"):
        return loss
    raise TypeError(f"loss must be a name or a loss object with .gradient, got {loss!r}")


__all__ = ["BinaryCrossentropy", "CategoricalCrossentropy", "MeanSquaredError",
           "binary_crossentropy", "categorical_crossentropy", "get", "mean_squared_error",
           "mse"]
