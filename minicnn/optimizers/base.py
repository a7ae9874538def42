"""The optimizer contract: what every optimizer does around its own update rule.

An optimizer keeps one slot array per parameter (a velocity, a running mean of squared
gradients...), keyed by ``(layer name, parameter name, slot name)``, and an
``iterations`` counter. ``apply(layers)`` updates every trainable layer's ``params`` in
place from its ``grads``, in Keras 3's order (``BaseOptimizer.apply``):

    lr    = learning_rate                       (a schedule: schedule(iterations))
    grads = clip(grads)                         (clipnorm | clipvalue | global_clipnorm)
    w    -= w * weight_decay * lr               (when weight_decay is set)
    w     = update(w, g, lr)                    (the subclass's rule)
    iterations += 1

The clipped gradients are new arrays: ``layer.grads`` stay as the backward pass left them.
"""
from __future__ import annotations

import math
import os
import sys
import warnings

import numpy as np

from ..backend import get_array_module, to_device, to_numpy
from . import schedules as schedules_module
from .schedules import LearningRateSchedule

# The largest float32: a setting beyond it becomes inf in the float32 arithmetic of a step.
FLOAT32_MAX = float(np.finfo(np.float32).max)

_warned_lr = False   # Keras 2's ``lr=`` warns once per process


def _setting(value, what, low=0.0, low_included=True, high=FLOAT32_MAX, high_included=True):
    """``value`` as a float, checked to be a finite number in [low, high] (or open ends)."""
    if isinstance(value, bool):   # float(True) is 1.0: a flag given for a number
        raise TypeError(f"{what} must be a number, got {value!r}")
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


def _optional(value, what, **limits):
    """None, or a checked number (a clipping bound, a weight decay)."""
    return None if value is None else _setting(value, what, **limits)


def _check_shapes(param, slot, grad, layer_name, key):
    """The fused kernels index the three arrays in step and check nothing themselves: a
    size that differs would read and write past an array's end."""
    if slot.shape != param.shape or grad.shape != param.shape:
        raise ValueError(f"layer {layer_name!r}, parameter {key!r}: shapes differ (parameter "
                         f"{tuple(param.shape)}, optimizer slot {tuple(slot.shape)}, gradient "
                         f"{tuple(grad.shape)})")


class DefaultRate(float):
    """A learning rate left at its default. Subclass signatures show it as a plain number
    (``learning_rate=0.001``); the type tells ``lr=`` given alone from both given."""


# -- gradient clipping, as Keras 3 computes it (base_optimizer._clip_gradients) ----------
def _squared_norm(grad):
    flat = grad.reshape(-1)
    return get_array_module(grad).vdot(flat, flat)   # one pass, no squared temporary


def clip_by_norm(grad, clipnorm):
    """Each gradient alone: ``g * clipnorm / max(||g||, clipnorm)`` (unchanged when its
    norm is at most ``clipnorm``). The scale stays on the device: no copy to the host."""
    xp = get_array_module(grad)
    return grad * (clipnorm / xp.maximum(xp.sqrt(_squared_norm(grad)), clipnorm))


def clip_by_global_norm(grads, clipnorm):
    """All gradients of the step together, by one scale from the norm of all of them:

        norm  = sqrt(sum over every gradient of sum(g^2))
        g     = g * clipnorm / max(norm, clipnorm)

    A non-finite norm makes every gradient NaN (``+ (norm - norm)``, as Keras), so a
    gradient that overflowed shows in the weights instead of being scaled to zero."""
    if not grads:
        return grads
    xp = get_array_module(grads[0])
    norm = xp.sqrt(sum(_squared_norm(g) for g in grads))
    with np.errstate(invalid="ignore"):   # inf - inf: the NaN is the point
        scale = clipnorm / xp.maximum(norm, clipnorm) + (norm - norm)
    return [g * scale for g in grads]


def clip_by_value(grad, clipvalue):
    """Each element into [-clipvalue, clipvalue]."""
    return get_array_module(grad).clip(grad, -clipvalue, clipvalue)


class Optimizer:
    """The base of every optimizer; subclasses give ``update`` (one parameter's step).

    Arguments every optimizer takes, as Keras 3's:

    * ``learning_rate``: a float > 0, or a schedule from ``minicnn.optimizers.schedules``
      evaluated at ``iterations`` (0 for the first step). ``lr=`` is Keras 2's name for it.
    * ``weight_decay``: ``w -= w * weight_decay * lr`` before each step (None: none).
    * ``clipnorm``: clip each gradient to this L2 norm; ``clipvalue``: each element to
      [-clipvalue, clipvalue]; ``global_clipnorm``: all gradients of a step together to
      this L2 norm. At most one of the three.
    """

    name = "optimizer"     # the key in OPTIMIZERS and in saved files
    slot_names: tuple = ()  # the per-parameter state arrays this optimizer keeps
    scalar_names: tuple = ()  # optimizer-wide state saved with the slots (Nadam's)

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, lr=None, **unknown):
        cls = type(self).__name__
        if unknown:
            raise TypeError(f"{cls} got unexpected argument(s) {sorted(unknown)}: minicnn's "
                            f"{cls} takes {self._argument_names()}")
        if lr is not None:
            if not isinstance(learning_rate, DefaultRate):
                raise ValueError(f"{cls}: give learning_rate= or Keras 2's lr=, not both "
                                 f"(got learning_rate={learning_rate!r}, lr={lr!r})")
            _warn_lr(cls)
            learning_rate = lr
        if isinstance(learning_rate, DefaultRate):
            learning_rate = float(learning_rate)
        self._learning_rate = None
        self.learning_rate = learning_rate
        self.weight_decay = _optional(weight_decay, "weight_decay")
        self.clipnorm = _optional(clipnorm, "clipnorm", low_included=False)
        self.clipvalue = _optional(clipvalue, "clipvalue", low_included=False)
        self.global_clipnorm = _optional(global_clipnorm, "global_clipnorm",
                                         low_included=False)
        given = [n for n in ("clipnorm", "clipvalue", "global_clipnorm")
                 if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"{cls}: only one of clipnorm, clipvalue and global_clipnorm can "
                             f"be set, got clipnorm={clipnorm!r}, clipvalue={clipvalue!r}, "
                             f"global_clipnorm={global_clipnorm!r}")
        self.iterations = 0
        self.slots: dict[tuple[str, str, str], object] = {}
        self.scalars: dict[str, float] = {}

    def _argument_names(self):
        import inspect
        names = [p for p in inspect.signature(type(self).__init__).parameters
                 if p not in ("self", "kwargs")]
        return names + [n for n in ("weight_decay", "clipnorm", "clipvalue",
                                    "global_clipnorm", "lr") if n not in names]

    # -- the learning rate ---------------------------------------------------
    @property
    def learning_rate(self) -> float:
        """The rate of the next step, as a float: the number set, or the schedule
        evaluated at ``iterations``. Settable to a float (callbacks such as
        ReduceLROnPlateau do ``optimizer.learning_rate = new_lr``) or to a schedule."""
        if isinstance(self._learning_rate, LearningRateSchedule):
            return float(self._learning_rate(self.iterations))
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, LearningRateSchedule):
            self._learning_rate = value
            return
        if isinstance(self._learning_rate, LearningRateSchedule):
            raise TypeError(
                f"this optimizer was created with a learning-rate schedule "
                f"({self._learning_rate!r}), so its learning rate cannot be set to "
                f"{value!r}: create it with a float learning_rate to set it, or assign "
                "another schedule")
        if callable(value):
            raise TypeError(f"learning_rate must be a number or a schedule from "
                            f"minicnn.optimizers.schedules, got {value!r}")
        self._learning_rate = _setting(value, "learning_rate", low_included=False)

    @property
    def learning_rate_schedule(self):
        """The schedule given as ``learning_rate``, or None."""
        lr = self._learning_rate
        return lr if isinstance(lr, LearningRateSchedule) else None

    def current_learning_rate(self) -> float:
        """The rate the next step uses (SGD divides it by its Keras 2 time decay)."""
        return self.learning_rate

    # -- one step ------------------------------------------------------------
    def _slot(self, layer_name, key, slot_name, like, initial=0.0):
        """The optimizer's state array for one parameter, created filled with ``initial``.

        A slot that exists already must have the parameter's shape and dtype: it may come
        from a file, or from another model that used this optimizer object, and a wrong
        one must never reach the update (the fused kernels would write past its end).
        """
        slot_key = (layer_name, key, slot_name)
        slot = self.slots.get(slot_key)
        if slot is None:
            slot = self.slots[slot_key] = get_array_module(like).full_like(like, initial)
        elif slot.shape != like.shape or slot.dtype != like.dtype:
            raise ValueError(
                f"optimizer slot {slot_name!r} of layer {layer_name!r}, parameter {key!r} has "
                f"shape {tuple(slot.shape)} ({slot.dtype}) but the parameter has shape "
                f"{tuple(like.shape)} ({like.dtype}): the optimizer holds the state of "
                "another model (use a new optimizer object for each model) or state that "
                "does not match this model")
        return slot

    def _clip_gradients(self, grads):
        if self.clipnorm is not None:
            return [clip_by_norm(g, self.clipnorm) for g in grads]
        if self.global_clipnorm is not None:   # needs every gradient of the step first
            return clip_by_global_norm(grads, self.global_clipnorm)
        if self.clipvalue is not None:
            return [clip_by_value(g, self.clipvalue) for g in grads]
        return grads

    def apply(self, layers):
        """One update of every trainable parameter that has a gradient (see the module
        docstring for the order: clip, weight decay, update)."""
        lr = self.current_learning_rate()
        targets = [(layer.name, key, param, layer.grads.get(key))
                   for layer in layers if layer.trainable
                   for key, param in layer.params.items()]
        targets = [t for t in targets if t[3] is not None]
        grads = self._clip_gradients([t[3] for t in targets])
        if self.weight_decay is not None:
            decay = self.weight_decay * lr      # one scalar: one pass per parameter
            for _, _, param, _ in targets:
                param -= param * decay
        self._begin_step()
        for (layer_name, key, param, _), grad in zip(targets, grads):
            self.update(param, grad, lr, layer_name, key)
        self.iterations += 1

    def _begin_step(self):
        """Optimizer-wide state updated once per step, before the parameters (Nadam)."""

    def update(self, param, grad, lr, layer_name, key):
        raise NotImplementedError

    # -- saving --------------------------------------------------------------
    def get_config(self) -> dict:
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            lr = schedules_module.serialize(lr)
        return {"learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm}

    @classmethod
    def from_config(cls, config: dict):
        """The optimizer ``get_config`` described (a schedule as {"class_name", "config"})."""
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules_module.deserialize(config["learning_rate"])
        return cls(**config)

    def get_state(self) -> dict:
        """Iterations, slot arrays as NumPy and optimizer-wide scalars, for ``Model.save``.

        Slots are keyed ``"layer/parameter/slot"``: layer names cannot contain "/"
        (``Layer`` refuses them), so the key splits back unambiguously.
        """
        return {"iterations": self.iterations,
                "slots": {"/".join(k): to_numpy(v) for k, v in self.slots.items()},
                "scalars": dict(self.scalars)}

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
            if parts[2] not in self.slot_names:
                raise ValueError(f"optimizer slot {name!r}: {type(self).__name__} keeps the "
                                 f"slots {list(self.slot_names)}, not {parts[2]!r}")
            slots[parts] = value
        scalars = self._checked_scalars(state.get("scalars", {}))
        if layers is not None:
            self._check_slots(slots, layers)
        self.iterations = int(iterations)
        self.slots = {k: to_device(v, dtype=np.float32) for k, v in slots.items()}
        self.scalars = scalars

    def _checked_scalars(self, scalars):
        scalars = dict(scalars)
        if set(scalars) != set(self.scalar_names):
            raise ValueError(f"{type(self).__name__}'s state has the scalars "
                             f"{sorted(self.scalar_names)}, got {sorted(scalars)}")
        return {k: _setting(v, f"optimizer state {k!r}", low=-FLOAT32_MAX)
                for k, v in scalars.items()}

    def _check_slots(self, slots, layers):
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


def _warn_lr(cls):
    """Say once per process that ``lr=`` is Keras 2's name, pointing at the user's line
    (the first frame outside this package: AdamW goes through two __init__ more)."""
    global _warned_lr
    if _warned_lr:
        return
    _warned_lr = True
    here = os.path.dirname(os.path.abspath(__file__))
    level, frame = 2, sys._getframe(1)
    while frame is not None and os.path.dirname(frame.f_code.co_filename) == here:
        level, frame = level + 1, frame.f_back
    warnings.warn(f"{cls}(lr=...): 'lr' is Keras 2's name; Keras 3 (and minicnn) call it "
                  "'learning_rate' (use learning_rate=)", UserWarning, stacklevel=level)
