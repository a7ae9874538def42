"""The base of the callbacks: ``Callback``, ``History`` and Keras 2's names for logged
quantities (``acc`` for ``accuracy``), which ``minicnn.callbacks`` exports."""
from __future__ import annotations

import csv
import json
import math
import os
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
        from ..io_utils import atomic_write_text

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
