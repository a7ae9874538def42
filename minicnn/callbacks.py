"""Callbacks: code that ``fit`` calls at the start and end of epochs and batches.

The hooks and their ``logs`` dicts follow Keras: ``on_epoch_end(epoch, logs)``
receives ``{"loss": ..., "accuracy": ..., "val_loss": ..., "val_accuracy": ...}``.
A callback stops training by setting ``self.model.stop_training = True``.

Keras 2 called accuracy ``acc`` (``val_acc``); the tutorials written for it read
``history.history["acc"]`` and pass ``monitor="val_acc"``. Those names still work here
(:data:`KERAS2_NAMES`), each warning once per process that it is Keras 2's.
"""
from __future__ import annotations

import csv
import json
import math
import os
import string
import sys
import time
import warnings

# Keras 2's name -> Keras 3's (and minicnn's) for the logged quantities that were renamed.
KERAS2_NAMES = {"acc": "accuracy", "val_acc": "val_accuracy"}
# Either name -> the other: a model compiled with metrics=["acc"] in Keras 3 logs "acc",
# and "accuracy" should find that too.
_OTHER_NAME = {**KERAS2_NAMES, **{new: old for old, new in KERAS2_NAMES.items()}}
_warned_keras2_names: set[str] = set()


def _warn_keras2_name(name, where, stacklevel):
    """Say once per process that ``name`` is Keras 2's, and what Keras 3 calls it.
    ``stacklevel`` as in ``warnings.warn``, counted from this function: 2 is its caller."""
    if name in KERAS2_NAMES and name not in _warned_keras2_names:
        _warned_keras2_names.add(name)
        warnings.warn(f"{where}: {name!r} is Keras 2's name; Keras 3 (and minicnn) call it "
                      f"{KERAS2_NAMES[name]!r}", UserWarning, stacklevel=stacklevel)


def logged_name(name, logs, where, stacklevel=2):
    """The key under which ``logs`` holds ``name``: ``name`` itself, else its other Keras's
    name (``acc`` <-> ``accuracy``, ``val_acc`` <-> ``val_accuracy``), warning once when
    ``name`` is Keras 2's; None when neither is there. ``stacklevel``: the frame the
    warning names, counted from this function as ``warnings.warn`` counts."""
    if name in logs:
        return name
    other = _OTHER_NAME.get(name)
    if other is not None and other in logs:
        _warn_keras2_name(name, where, stacklevel + 1)
        return other
    return None


class Callback:
    model = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_batch_end(self, batch, logs=None): ...


class MetricHistory(dict):
    """``History.history``: a dict of per-epoch lists that also answers Keras 2's names.

    ``history["acc"]`` gives the ``"accuracy"`` list (warning once that "acc" is Keras 2's
    name), ``history["val_acc"]`` the ``"val_accuracy"`` one, and the other way round when
    the stored name is the Keras 2 one. The keys, iteration and saved files hold only the
    names stored.
    """

    def __missing__(self, key):
        name = logged_name(key, self, f"history[{key!r}]", stacklevel=3)
        if name is None:
            raise KeyError(key)
        return self[name]

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default


class History(Callback):
    """Records the logs of every epoch: ``history.history["val_loss"][epoch]``.

    ``fit`` returns one. ``save(path)`` writes it as JSON (``.json``) or CSV
    (``.csv``); ``History.load(path)`` reads the JSON back. ``history.history`` also
    answers Keras 2's names (``["acc"]``, ``["val_acc"]``): :class:`MetricHistory`.
    """

    def __init__(self):
        self.history = {}
        self.epoch: list[int] = []

    @property
    def history(self) -> MetricHistory:
        return self._history

    @history.setter
    def history(self, values):
        # Whatever dict is assigned, it answers Keras 2's names too.
        self._history = MetricHistory(values)

    def on_train_begin(self, logs=None):
        # Keep earlier epochs when fit is called again on the same model.
        pass

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))

    def save(self, path):
        from .io_utils import atomic_write_text

        path = os.fspath(path)
        if path.endswith(".csv"):
            keys = list(self.history)
            rows = [",".join(["epoch", *keys])]
            for i, epoch in enumerate(self.epoch):
                rows.append(",".join([str(epoch + 1), *(repr(self.history[k][i]) for k in keys)]))
            atomic_write_text(path, "\n".join(rows) + "\n")
        else:
            atomic_write_text(path, json.dumps(
                {"epoch": [e + 1 for e in self.epoch], "history": self.history}, indent=2))

    @classmethod
    def load(cls, path):
        path = os.fspath(path)
        history = cls()
        if path.endswith(".csv"):
            with open(path, newline="") as f:
                for row in csv.DictReader(f):
                    history.epoch.append(int(row.pop("epoch")) - 1)
                    for key, value in row.items():
                        history.history.setdefault(key, []).append(float(value))
            return history
        with open(path) as f:
            data = json.load(f)
        history.history = {k: [float(v) for v in vs] for k, vs in data["history"].items()}
        history.epoch = [e - 1 for e in data.get("epoch", range(1, 1 + len(
            next(iter(history.history.values()), []))))]
        return history


def _improvement_test(mode, monitor, min_delta):
    """(is_better(current, best), initial best) for a monitored quantity."""
    if mode == "auto":
        mode = "max" if "acc" in monitor else "min"
    if mode == "min":
        return (lambda current, best: current < best - min_delta), math.inf
    if mode == "max":
        return (lambda current, best: current > best + min_delta), -math.inf
    raise ValueError(f"unknown mode {mode!r}: expected 'auto', 'min' or 'max'")


def _monitored(logs, monitor, who):
    logs = logs or {}
    name = logged_name(monitor, logs, f"{who}(monitor={monitor!r})", stacklevel=3)
    if name is None:
        raise KeyError(f"{who}: monitored quantity {monitor!r} is not in the logs; available: "
                       f"{sorted(logs)} (val_* needs validation_data)")
    return float(logs[name])


def _with_other_names(logs):
    """``logs`` plus each renamed quantity under its other Keras's name too (for path
    templates such as ``{val_acc}``); the names logged win."""
    others = {_OTHER_NAME[key]: value for key, value in logs.items() if key in _OTHER_NAME}
    return {**others, **logs}


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
        from tqdm.auto import tqdm

        self._start = time.perf_counter()
        self._images = 0
        self._timed_from = None   # perf_counter at the end of the first batch
        self._bar = None
        if self.verbose == 1:
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
        summary = " - ".join(f"{k}: {v:.4f}" for k, v in (logs or {}).items())
        if self._bar is not None:
            self._bar.set_postfix_str(summary, refresh=True)
            self._bar.close()
        elif self.verbose == 2:
            print(f"Epoch {epoch + 1}/{self.epochs} - {seconds:.1f}s - {summary}",
                  file=sys.stderr)
