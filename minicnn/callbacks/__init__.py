"""Callbacks: code that ``fit`` calls at the start and end of epochs and batches.

The hooks and their ``logs`` dicts follow Keras: ``on_epoch_end(epoch, logs)``
receives ``{"loss": ..., "accuracy": ..., "val_loss": ..., "val_accuracy": ...}``.
A callback stops training by setting ``self.model.stop_training = True``. ``fit``
calls the callbacks passed to it first, then ``History`` and the progress bar, as
Keras does, so that what a callback adds to the logs (``learning_rate``) is recorded.

Keras 2 called accuracy ``acc`` (``val_acc``); the tutorials written for it read
``history.history["acc"]`` and pass ``monitor="val_acc"``. Those names still work here
(:data:`KERAS2_NAMES`), each warning once per process that it is Keras 2's.

Its submodules, all exported from here:

    base            Callback, History, the Keras 2 names
    core            EarlyStopping, ModelCheckpoint, ProgressBar
    learning_rate   ReduceLROnPlateau, LearningRateScheduler
    logs            CSVLogger, TerminateOnNaN
    tensorboard     TensorBoard (event files through tensorboardX)
"""
from __future__ import annotations

import sys
import time  # noqa: F401  (tests patch callbacks.time.perf_counter)
import types

from . import base
from .base import _warned_keras2_names  # noqa: F401  (see _CallbacksPackage)
from .base import KERAS2_NAMES, Callback, History, MetricHistory, logged_name
from .core import EarlyStopping, ModelCheckpoint, ProgressBar
from .learning_rate import LearningRateScheduler, ReduceLROnPlateau
from .logs import CSVLogger, TerminateOnNaN
from .tensorboard import TensorBoard


class _CallbacksPackage(types.ModuleType):
    """``minicnn.callbacks._warned_keras2_names = set()`` (what a test does to see the
    once-per-process warnings again) replaces the set that ``base`` consults."""

    def __setattr__(self, name, value):
        if name == "_warned_keras2_names":
            base._warned_keras2_names = value
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _CallbacksPackage

__all__ = ["CSVLogger", "Callback", "EarlyStopping", "History", "KERAS2_NAMES",
           "LearningRateScheduler", "MetricHistory", "ModelCheckpoint", "ProgressBar",
           "ReduceLROnPlateau", "TensorBoard", "TerminateOnNaN", "logged_name"]
