"""CSVLogger and TerminateOnNaN: Keras 3's."""
from __future__ import annotations

import collections.abc
import csv
import io
import math
import os
import sys

import numpy as np

from .base import Callback


class CSVLogger(Callback):
    """Write each epoch's logs to a CSV file, in Keras's format.

    The first row is ``epoch`` and the sorted names of the first epoch's logs (with
    ``val_<name>`` columns added, holding ``NA``, when there is no validation); then one
    row per epoch, the epoch counted from 0, as Keras writes them (``\\r\\n`` line ends).
    ``append=True`` continues an existing file (without a second header).

    Unlike Keras, which streams rows into an open file, the whole file is rewritten
    atomically at each epoch's end (``io_utils.atomic_write_text``): an interrupted run
    leaves the rows of its finished epochs and never a half-written one.
    """

    def __init__(self, filename, separator=",", append=False):
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"CSVLogger separator must be one character, got {separator!r}")
        try:
            self.filename = os.fspath(filename)
        except TypeError:
            raise TypeError(f"CSVLogger filename must be a path, got {filename!r}") from None
        if os.path.isdir(self.filename):
            raise IsADirectoryError(f"CSVLogger filename {self.filename!r} is a folder")
        self.sep = separator
        self.append = bool(append)
        self.keys = None

    def on_train_begin(self, logs=None):
        from ..io_utils import atomic_write_text

        self._text = ""
        self.append_header = True
        if self.append and os.path.isfile(self.filename):
            with open(self.filename, encoding="utf-8", newline="") as f:
                self._text = f.read()
            self.append_header = not self._text     # Keras: not len(f.readline())
        else:
            atomic_write_text(self.filename, "")   # as Keras's open(filename, "w")
        self.keys = None

    @staticmethod
    def _value(value):
        if isinstance(value, str):
            return value
        if isinstance(value, collections.abc.Iterable) and \
                not (isinstance(value, np.ndarray) and value.ndim == 0):
            return f'"[{", ".join(map(str, value))}]"'
        return value

    def on_epoch_end(self, epoch, logs=None):
        from ..io_utils import atomic_write_text

        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(key.startswith("val_") for key in self.keys):
                self.keys += [f"val_{key}" for key in self.keys]

        class Dialect(csv.excel):
            delimiter = self.sep

        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=["epoch", *self.keys], dialect=Dialect)
        if self.append_header:
            writer.writeheader()
            self.append_header = False
        writer.writerow({"epoch": epoch,
                         **{key: self._value(logs.get(key, "NA")) for key in self.keys}})
        self._text += out.getvalue()
        atomic_write_text(self.filename, self._text)


class TerminateOnNaN(Callback):
    """Stop training when a batch's loss is NaN or infinite (Keras 3's).

    Without it, ``fit`` raises ``TrainingDivergedError`` at a non-finite loss. With it,
    training stops cleanly as in Keras: the epoch ends at that batch, its logs (the loss
    NaN or inf) reach the callbacks and ``History``, and ``fit`` returns. minicnn never
    applies the update of a batch whose loss is not finite, so the weights are those of
    the batch before. ``raise_error=True`` raises ``RuntimeError`` instead.
    """

    def __init__(self, raise_error=False):
        self.raise_error = bool(raise_error)

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        if self.raise_error:
            raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: "
                               f"{loss}. Terminating training immediately.")
        print(f"Batch {batch}: Invalid loss, terminating training", file=sys.stderr)
        self.model.stop_training = True


__all__ = ["CSVLogger", "TerminateOnNaN"]
