"""Learning-rate schedules: the learning rate as a function of the optimizer's step.

An optimizer given a schedule as its ``learning_rate`` asks it for the rate of each
step, ``schedule(optimizer.iterations)`` (0 for the first update), as Keras 3 does.
The formulas are Keras 3's (``keras.optimizers.schedules``), written out below.
"""
from __future__ import annotations

import math
import numbers


class LearningRateSchedule:
    """A callable ``step -> learning rate``, with ``get_config`` for saving."""

    def __call__(self, step):
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError

    def __repr__(self):
        settings = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({settings})"


def _positive(value, what):
    if not (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0):
        raise ValueError(f"{what} must be a positive number, got {value!r}")
    return value


class ExponentialDecay(LearningRateSchedule):
    """lr(step) = initial_learning_rate * decay_rate ** (step / decay_steps)

    with ``step / decay_steps`` rounded down when ``staircase`` (a step function that
    drops every ``decay_steps`` steps).
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        self.initial_learning_rate = float(_positive(initial_learning_rate,
                                                     "initial_learning_rate"))
        self.decay_steps = _positive(decay_steps, "decay_steps")
        self.decay_rate = float(_positive(decay_rate, "decay_rate"))
        self.staircase = bool(staircase)

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate ** p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase}


class PiecewiseConstantDecay(LearningRateSchedule):
    """lr(step) = values[0] for step <= boundaries[0], values[i] for
    boundaries[i-1] < step <= boundaries[i], values[-1] after the last boundary."""

    def __init__(self, boundaries, values):
        boundaries, values = list(boundaries), [float(v) for v in values]
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"PiecewiseConstantDecay needs one value more than boundaries: "
                             f"got {len(boundaries)} boundaries and {len(values)} values")
        if any(b >= a for a, b in zip(boundaries[1:], boundaries)) or not boundaries:
            raise ValueError(f"boundaries must be increasing and not empty, got {boundaries}")
        self.boundaries, self.values = boundaries, values

    def __call__(self, step):
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return value
        return self.values[-1]

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values}


class CosineDecay(LearningRateSchedule):
    """Half a cosine from a rate down to ``alpha`` times it, after an optional linear
    warmup (Loshchilov & Hutter, SGDR):

        warmup (warmup_target set, step < warmup_steps):
            lr = initial + (warmup_target - initial) * step / warmup_steps
        decay (t = min(step - warmup_steps, decay_steps) / decay_steps):
            lr = peak * ((1 - alpha) * (1 + cos(pi t)) / 2 + alpha)

    where ``peak`` is ``warmup_target`` with a warmup, else ``initial_learning_rate``.
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None,
                 warmup_steps=0):
        self.initial_learning_rate = float(initial_learning_rate)
        if not (math.isfinite(self.initial_learning_rate) and self.initial_learning_rate >= 0):
            raise ValueError("initial_learning_rate must be a number >= 0, got "
                             f"{initial_learning_rate!r}")
        self.decay_steps = _positive(decay_steps, "decay_steps")
        if not 0 <= float(alpha) <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        self.alpha = float(alpha)
        self.warmup_target = None if warmup_target is None else float(
            _positive(warmup_target, "warmup_target"))
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps!r}")
        self.warmup_steps = warmup_steps

    def _decay(self, step, peak):
        t = min(step, self.decay_steps) / self.decay_steps
        return peak * ((1 - self.alpha) * 0.5 * (1 + math.cos(math.pi * t)) + self.alpha)

    def __call__(self, step):
        if self.warmup_target is None:
            return self._decay(step, self.initial_learning_rate)
        if step < self.warmup_steps:
            return self.initial_learning_rate + (
                self.warmup_target - self.initial_learning_rate) * step / self.warmup_steps
        return self._decay(step - self.warmup_steps, self.warmup_target)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


SCHEDULES = {cls.__name__: cls for cls in (ExponentialDecay, PiecewiseConstantDecay,
                                            CosineDecay)}


def serialize(schedule) -> dict:
    """``{"class_name": ..., "config": ...}``, as Keras serializes a schedule."""
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(spec) -> LearningRateSchedule:
    """The schedule :func:`serialize` described."""
    if not isinstance(spec, dict) or spec.get("class_name") not in SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {spec!r}: expected one of "
                         f"{sorted(SCHEDULES)}")
    try:
        return SCHEDULES[spec["class_name"]](**spec.get("config", {}))
    except TypeError as err:   # a setting this schedule does not have, or one missing
        raise ValueError(f"learning-rate schedule {spec!r} cannot be rebuilt ({err})") \
            from None
