"""The machinery of the Keras reference cases: comparing arrays, timing, importing Keras.

A :class:`Case` is a named computation done in both minicnn and Keras 3; ``run()``
returns a :class:`CaseResult`: one :class:`Comparison` per compared array and the
seconds each framework spent. The catalogue of cases is ``cases.py``.

Differences are measured as

    abs = max |minicnn - keras|        rel = abs / max |keras|

(one number per array, not an elementwise ratio, so values near zero do not blow up),
and checked against :data:`TOLERANCES` by kind:

* ``output``: forward outputs, loss values, metrics. float32 rounds each result to
  ~6e-8 relative; the sums inside a small conv or dense layer (at most a few hundred
  terms here) keep the difference of two summation orders near 1e-6, so 1e-5 holds.
* ``gradient``: backpropagated gradients. Weight gradients sum over batch and
  positions (thousands of terms), so they get 1e-4.
* ``weights``: weights after optimizer steps or training, per-epoch training losses,
  weights loaded from a file. 1e-4.

A case that needs a looser bound carries it in ``Case.tolerances`` with the reason in
``Case.why_looser``. TensorFlow and Keras are imported on first use (:func:`keras_modules`),
so that importing this file costs nothing when Keras is absent.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from minicnn.backend import to_numpy
TOLERANCES = {"output": 1e-5, "gradient": 1e-4, "weights": 1e-4}


# ---------------------------------------------------------------------------------------
# Keras, imported once
# ---------------------------------------------------------------------------------------
_keras_cache: tuple | None = None


def keras_modules():
    """``(tensorflow, keras)``, imported once, on the TensorFlow backend, using two threads.

    Raises ImportError when they are not installed (the tests turn that into a skip or,
    under ``MINICNN_REQUIRE_KERAS=1``, a failure).
    """
    global _keras_cache
    if _keras_cache is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")   # no banner per import
        os.environ["KERAS_BACKEND"] = "tensorflow"           # the quirks below are TF's
        import tensorflow as tf
        import keras

        try:   # the machine is shared: two threads per op, one op at a time
            tf.config.threading.set_intra_op_parallelism_threads(2)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:   # TensorFlow was already initialised by someone else
            pass
        _keras_cache = (tf, keras)
    return _keras_cache


# ---------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------
@dataclass
class Comparison:
    """One array computed by both frameworks."""

    label: str            # e.g. "grad kernel", "loss epoch 2"
    kind: str             # "output" | "gradient" | "weights"
    minicnn: np.ndarray
    keras: np.ndarray

    def __post_init__(self):
        self.minicnn = np.asarray(to_numpy(self.minicnn), dtype=np.float64)
        self.keras = np.asarray(self.keras, dtype=np.float64)
        if self.minicnn.shape != self.keras.shape:
            raise ValueError(f"{self.label}: minicnn gives shape {self.minicnn.shape}, "
                             f"Keras {self.keras.shape}")

    @property
    def abs_diff(self) -> float:
        return float(np.max(np.abs(self.minicnn - self.keras), initial=0.0))

    @property
    def rel_diff(self) -> float:
        scale = float(np.max(np.abs(self.keras), initial=0.0))
        return self.abs_diff / scale if scale > 0 else self.abs_diff


@dataclass
class CaseResult:
    name: str
    comparisons: list
    seconds_minicnn: float
    seconds_keras: float
    tolerances: dict

    def worst(self, kind):
        """(abs, rel) of the worst comparison of one kind, or None when there is none."""
        of_kind = [c for c in self.comparisons if c.kind == kind]
        if not of_kind:
            return None
        return max(c.abs_diff for c in of_kind), max(c.rel_diff for c in of_kind)

    def failures(self) -> list:
        """A line for every comparison outside its tolerance (empty when all agree)."""
        return [f"{self.name}: {c.label} differs by {c.rel_diff:.3g} relative "
                f"({c.abs_diff:.3g} absolute), tolerance {self.tolerances[c.kind]:g}"
                for c in self.comparisons if not c.rel_diff <= self.tolerances[c.kind]]


@dataclass
class Case:
    """A named computation run in both frameworks; ``run()`` returns a CaseResult."""

    name: str
    compute: Callable        # () -> (comparisons, seconds_minicnn, seconds_keras)
    tolerances: dict = field(default_factory=dict)
    why_looser: str = ""

    def __post_init__(self):
        if self.tolerances and not self.why_looser:
            raise ValueError(f"case {self.name!r} loosens a tolerance without saying why")

    def run(self) -> CaseResult:
        comparisons, seconds_minicnn, seconds_keras = self.compute()
        return CaseResult(self.name, comparisons, seconds_minicnn, seconds_keras,
                          {**TOLERANCES, **self.tolerances})

    def __repr__(self):
        return f"Case({self.name!r})"


def assert_agrees(case: Case) -> CaseResult:
    """Run ``case`` and fail with every comparison that is out of tolerance."""
    result = case.run()
    assert result.comparisons, f"{case.name} compared nothing"
    failures = result.failures()
    assert not failures, "\n".join(failures)
    return result


class Stopwatch:
    """Adds up the seconds spent inside ``with watch:`` blocks."""

    def __init__(self):
        self.seconds = 0.0

    def __enter__(self):
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds += time.perf_counter() - self._start
