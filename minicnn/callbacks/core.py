"""EarlyStopping, ModelCheckpoint and the progress bar."""
from __future__ import annotations

import os
import string
import sys
import time

from .base import (KERAS2_NAMES, Callback, _improvement_test, _monitored, _with_other_names,
               logged_name)


def _format_value(value):
    """A logged number as Keras's progress bar shows it: 4 decimals, or 4 significant
    digits for small values (a learning rate of 1e-5 is not 0.0000)."""
    return f"{value:.4f}" if abs(value) > 1e-3 or value == 0 else f"{value:.4e}"


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights`` the model gets back the weights of its best
    epoch when training stops.
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, mode="auto",
                 restore_best_weights=False, verbose=0):
        self.monitor = monitor
        self.min_delta = abs(float(min_delta))
        self.patience = int(patience)
        self.restore_best_weights = restore_best_weights
        self.verbose = verbose
        self._is_better, self._initial_best = _improvement_test(mode, monitor, self.min_delta)

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.best = self._initial_best
        self.best_epoch = None
        self.best_weights = None
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        current = _monitored(logs, self.monitor, "EarlyStopping")
        if self._is_better(current, self.best):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch is None:
            return
        if self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping ({self.monitor} best "
                  f"{self.best:.4f} at epoch {self.best_epoch + 1})", file=sys.stderr)
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model after each epoch (or only when ``monitor`` improved).

    ``path`` may contain ``{epoch}`` and the names of the epoch's logs (``loss``,
    ``accuracy``, ``val_loss``, ``val_accuracy``, or Keras 2's ``acc`` and ``val_acc``),
    e.g. ``"model.{epoch:02d}-{val_loss:.3f}.h5"``. ``filepath=`` is Keras's name for it.
    """

    TEMPLATE_KEYS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", *KERAS2_NAMES)

    def __init__(self, path=None, monitor="val_loss", save_best_only=False, mode="auto",
                 verbose=0, *, filepath=None):
        if (path is None) == (filepath is None):
            raise TypeError("ModelCheckpoint needs the file to save to, as path (minicnn's "
                            "name) or filepath= (Keras's), not both")
        self.path = os.fspath(path if filepath is None else filepath)
        # Check the template now, not after the first epoch's training.
        try:
            self.path.format(epoch=1, **{key: 0.5 for key in self.TEMPLATE_KEYS[1:]})
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"ModelCheckpoint: cannot fill in the path template {self.path!r} "
                             f"({type(err).__name__}: {err}); it may use "
                             f"{', '.join('{' + key + '}' for key in self.TEMPLATE_KEYS)} "
                             "(double braces {{ }} for literal ones)") from None
        # The quantities the template names, to say which of them are Keras 2's names.
        self._fields = {field for _, field, _, _ in string.Formatter().parse(self.path)
                        if field}
        self.monitor = monitor
        self.save_best_only = save_best_only
        self.verbose = verbose
        self._is_better, self.best = _improvement_test(mode, monitor, 0.0)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        for field in self._fields:                  # warns once for a Keras 2 name
            logged_name(field, logs, f"ModelCheckpoint path {{{field}}}")
        try:
            path = self.path.format(epoch=epoch + 1, **_with_other_names(logs))
        except KeyError as err:    # e.g. {val_loss} without validation_data
            raise ValueError(f"ModelCheckpoint: the path template {self.path!r} uses {err}, "
                             f"which is not in this epoch's logs {sorted(logs)} (val_* needs "
                             "validation_data)") from None
        if self.save_best_only:
            current = _monitored(logs, self.monitor, "ModelCheckpoint")
            if not self._is_better(current, self.best):
                return
            self.best = current
        self.model.save(path)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved model to {path}", file=sys.stderr)


class ProgressBar(Callback):
    """A tqdm bar per epoch with running loss, accuracy and images per second.

    The speed and the time left are measured from the end of each epoch's first batch:
    that batch also compiles the CPU kernels on first use (about 15 s) and warms the
    caches, and counted in, it makes a fast epoch look minutes long.
    """

    def __init__(self, steps, epochs, verbose=1):
        self.steps, self.epochs, self.verbose = steps, epochs, verbose

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._images = 0
        self._timed_from = None   # perf_counter at the end of the first batch
        self._bar = None
        if self.verbose == 1:
            # imported only for a bar: in Jupyter, tqdm.auto looks for its widgets
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.steps, desc=f"Epoch {epoch + 1}/{self.epochs}",
                             unit="batch", leave=True, dynamic_ncols=True, file=sys.stderr)

    def on_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self._timed_from is None:   # the first batch: start the clock after it
            self._timed_from, self.images_per_second, speed = now, None, "warming up"
        else:
            self._images += logs.get("size", 0)
            self.images_per_second = self._images / max(now - self._timed_from, 1e-9)
            speed = f"{self.images_per_second:.0f}"
        if self._bar is not None:
            self._bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()
                                   if k in ("loss", "accuracy")} | {"img/s": speed},
                                  refresh=False)
            if self._images == 0:   # tqdm's rate and ETA also start after the first batch
                self._bar.reset(total=self.steps)
                self._bar.initial = self._bar.n = 1
                self._bar.refresh()
            else:
                self._bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        summary = " - ".join(f"{k}: {_format_value(v)}"
                             for k, v in (logs or {}).items())
        if self._bar is not None:
            self._bar.set_postfix_str(summary, refresh=True)
            self._bar.close()
        elif self.verbose == 2:
            print(f"Epoch {epoch + 1}/{self.epochs} - {seconds:.1f}s - {summary}",
                  file=sys.stderr)
