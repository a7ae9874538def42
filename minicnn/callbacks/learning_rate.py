"""ReduceLROnPlateau and LearningRateScheduler: Keras 3's, argument for argument.

Both read the optimizer's learning rate as ``float(model.optimizer.learning_rate)``
and set it with ``model.optimizer.learning_rate = value``, and both add
``logs["learning_rate"]`` at each epoch's end (``History`` records it, as in Keras).
"""
from __future__ import annotations

import math
import numbers
import sys
import warnings

import numpy as np

from .base import Callback, logged_name


def _optimizer(model, who):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        raise ValueError(f"{who} needs a compiled model whose optimizer has a learning_rate "
                         f"(got optimizer {optimizer!r}); call model.compile first")
    return optimizer


def get_learning_rate(model, who="callback") -> float:
    """The optimizer's learning rate now, as a float."""
    return float(_optimizer(model, who).learning_rate)


def set_learning_rate(model, value, who="callback"):
    _optimizer(model, who).learning_rate = float(value)


def _number(value, what, low=None, integer=False):
    """``value`` checked to be a finite number (an integer when ``integer``), >= ``low``."""
    kinds = (numbers.Integral,) if integer else (numbers.Real,)
    if isinstance(value, bool) or not isinstance(value, kinds) or \
            not math.isfinite(float(value)) or (low is not None and value < low):
        kind = "an integer" if integer else "a finite number"
        bound = "" if low is None else f" >= {low}"
        raise ValueError(f"{what} must be {kind}{bound}, got {value!r}")
    return int(value) if integer else float(value)


class ReduceLROnPlateau(Callback):
    """Reduce the learning rate when a metric has stopped improving (Keras 3's).

    At each epoch's end: ``logs["learning_rate"]`` is set to the optimizer's learning
    rate; if ``monitor`` improved on the best value by more than ``min_delta`` it becomes
    the best and ``wait`` restarts, otherwise (outside a cooldown) ``wait`` counts up and
    at ``patience`` the rate becomes ``max(lr * factor, min_lr)`` (only while
    ``lr > min_lr``), ``wait`` restarts and ``cooldown`` epochs follow in which ``wait``
    stays 0. ``mode="auto"``: maximise accuracies, minimise anything else. A monitored
    quantity missing from the logs gives a warning, as in Keras.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, **kwargs):
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau got unexpected arguments {sorted(kwargs)}")
        factor = _number(factor, "ReduceLROnPlateau factor", low=0.0)
        if factor >= 1.0:
            raise ValueError("ReduceLROnPlateau does not support a factor >= 1.0. "
                             f"Received factor={factor!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"ReduceLROnPlateau: unknown mode {mode!r}: expected 'auto', "
                             "'min' or 'max'")
        if not isinstance(monitor, str):
            raise TypeError(f"ReduceLROnPlateau monitor must be a name such as 'val_loss', "
                            f"got {monitor!r}")
        self.monitor = monitor
        self.factor = factor
        self.patience = _number(patience, "ReduceLROnPlateau patience", low=0, integer=True)
        self.verbose = verbose
        self.mode = mode
        self.min_delta = abs(_number(min_delta, "ReduceLROnPlateau min_delta"))
        self.cooldown = _number(cooldown, "ReduceLROnPlateau cooldown", low=0, integer=True)
        self.min_lr = _number(min_lr, "ReduceLROnPlateau min_lr", low=0.0)
        self._reset()

    def _reset(self):
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def _is_improvement(self, current, best):
        if best is None:                    # the first value is always the best so far
            return True
        maximise = self.mode == "max" or (self.mode == "auto" and "acc" in self.monitor)
        if maximise:
            return current - self.min_delta > best
        return current + self.min_delta < best

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = {} if logs is None else logs
        logs["learning_rate"] = get_learning_rate(self.model, "ReduceLROnPlateau")
        name = logged_name(self.monitor, logs, f"ReduceLROnPlateau(monitor={self.monitor!r})")
        if name is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric "
                          f"`{self.monitor}` which is not available. Available metrics are: "
                          f"{','.join(logs)} (val_* needs validation_data).", stacklevel=2)
            return
        current = float(logs[name])
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and self._reduce(epoch):
                self.cooldown_counter = self.cooldown
                self.wait = 0

    def _reduce(self, epoch):
        old_lr = get_learning_rate(self.model, "ReduceLROnPlateau")
        if not old_lr > np.float32(self.min_lr):    # Keras compares with float32(min_lr)
            return False
        new_lr = max(old_lr * self.factor, self.min_lr)
        set_learning_rate(self.model, new_lr, "ReduceLROnPlateau")
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                  f"{new_lr}.", file=sys.stderr)
        return True


class LearningRateScheduler(Callback):
    """Set the learning rate at each epoch's beginning to ``schedule(epoch, lr)`` (Keras 3's).

    ``epoch`` counts from 0 and ``lr`` is the current learning rate; a ``schedule`` that
    takes only the epoch (Keras 2's form) is called as ``schedule(epoch)``. It must return
    a finite number >= 0. ``logs["learning_rate"]`` holds the rate of each epoch.
    """

    def __init__(self, schedule, verbose=0):
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler needs a function schedule(epoch, lr) "
                            f"returning the learning rate, got {schedule!r}")
        self.schedule = schedule
        self.verbose = verbose

    def _new_learning_rate(self, epoch):
        lr = get_learning_rate(self.model, "LearningRateScheduler")
        try:                    # Keras 3's form, then Keras 2's, as Keras tries them
            value = self.schedule(epoch, lr)
        except TypeError as two_arguments:
            try:
                value = self.schedule(epoch)
            except TypeError:
                raise two_arguments from None
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
                not math.isfinite(float(value)) or value < 0:
            raise ValueError("The output of the `schedule` function should be a float (a "
                             f"finite learning rate >= 0). Got: {value!r} at epoch {epoch}")
        return float(value)

    def on_epoch_begin(self, epoch, logs=None):
        lr = self._new_learning_rate(epoch)
        set_learning_rate(self.model, lr, "LearningRateScheduler")
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                  f"{lr}.", file=sys.stderr)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = get_learning_rate(self.model, "LearningRateScheduler")


__all__ = ["LearningRateScheduler", "ReduceLROnPlateau", "get_learning_rate",
           "set_learning_rate"]
