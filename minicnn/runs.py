"""Run folders: keep every training run's history and settings, then compare runs.

A run folder holds

    config.json    what was trained and how (any JSON-able dict you pass)
    history.json   the per-epoch logs (``History.save``), readable by ``History.load``
    history.csv    the same as a table, for spreadsheets
    model.h5       the trained model, when one is given (``load_model`` reads it)

A TensorBoard log folder (``callbacks.TensorBoard(log_dir)``'s, or Keras's: ``train/`` and
``validation/`` with event files), or a folder holding one, reads as a run too: its
``epoch_*`` scalars are the history. A folder with a history.json is read from that.

    save_run("runs/dropout", history, {"model": "cnn", "dropout": True}, model)
    table = compare_runs(["runs/baseline", "runs/dropout"], path="compare.png")

``compare_runs`` overlays the validation curves of several runs on one plot and
prints a table of each run's best epoch and score.
"""
from __future__ import annotations

import json
import os
import time

from .callbacks import History
from .io_utils import atomic_write_text
from .locate import portable_path

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
HISTORY_CSV = "history.csv"
MODEL_FILE = "model.h5"


def _is_hidden_temp_file(name):
    """The temporary files ``atomic_path`` writes (``.name.xxxx.tmp``) while saving."""
    return name.startswith(".") and name.endswith(".tmp")


def prepare_run_folder(folder=None, default_name="run", force=False, root="runs",
                       hint="choose another folder or pass force=True to replace them"):
    """The folder a command writes its results into; returns its path.

    ``folder=None``: a new folder ``root/<default_name>-<YYYYmmdd-HHMMSS>``
    (with a suffix ``-2``, ``-3``... when that name is taken), created.

    ``folder`` given: created if missing. A folder that already holds files is
    refused with ``FileExistsError`` unless ``force=True``, so that results of
    an earlier run are never replaced by accident; with ``force=True`` it is
    used as it is, and files of this run replace the earlier ones of the same
    name. ``hint`` ends the refusal: the command line passes
    ``"choose another --output or pass --force to replace them"``.
    """
    if folder is None:
        stem = os.path.join(os.fspath(root), f"{default_name}-{time.strftime('%Y%m%d-%H%M%S')}")
        os.makedirs(os.fspath(root), exist_ok=True)
        candidate, suffix = stem, 1
        while True:
            try:
                os.mkdir(candidate)     # fails if taken, so two runs never share a folder
                return candidate
            except FileExistsError:
                suffix += 1
                candidate = f"{stem}-{suffix}"
    folder = os.fspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise NotADirectoryError(f"output folder {folder!r} exists and is a file, not a folder")
    if os.path.isdir(folder) and not force:
        names = sorted(name for name in os.listdir(folder) if not _is_hidden_temp_file(name))
        if names:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            raise FileExistsError(f"output folder {folder!r} already holds files ({shown}): "
                                  f"{hint}")
    os.makedirs(folder, exist_ok=True)
    return folder


def _jsonable(value):
    """Numbers, strings, lists and dicts pass; anything else becomes its ``str``."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:   # NumPy scalars
        return value.item()
    return str(value)


def portable_command(program, arguments) -> str:
    """``program arguments...`` as a result file records the command that made it, with
    absolute paths made portable (:func:`portable_path`)."""
    return " ".join([program, *(portable_path(a) if os.path.isabs(a) else a
                                for a in arguments)])


def save_run(folder, history, config=None, model=None):
    """Write ``history`` (a History, or the ``fit`` return value), ``config`` and
    optionally ``model`` into ``folder`` (created if needed). Returns the folder.

    Every file is written atomically, so an interrupted save never leaves a
    half-written file; files of an earlier run in the same folder are replaced.
    """
    if not isinstance(history, History):
        raise TypeError(f"save_run expects the History that fit returned, got "
                        f"{type(history).__name__}")
    folder = os.fspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise NotADirectoryError(f"run folder {folder!r} exists and is not a folder")
    os.makedirs(folder, exist_ok=True)
    atomic_write_text(os.path.join(folder, CONFIG_FILE),
                      json.dumps(_jsonable(dict(config or {})), indent=2) + "\n")
    history.save(os.path.join(folder, HISTORY_FILE))
    history.save(os.path.join(folder, HISTORY_CSV))
    if model is not None:
        model.save(os.path.join(folder, MODEL_FILE))
    return folder


def load_run(folder):
    """``(history, config)`` of a run folder written by :func:`save_run`, or of a
    TensorBoard log folder (or a folder holding one, e.g. ``run/logs``) when there is no
    history.json: its per-epoch scalars, ``val_*`` from ``validation/``."""
    from .callbacks.tensorboard import find_log_dir, read_history

    folder = os.fspath(folder)
    history_path = os.path.join(folder, HISTORY_FILE)
    if not os.path.isfile(history_path):
        log_dir = find_log_dir(folder)
        if log_dir is None:
            raise FileNotFoundError(f"{folder!r} is not a run folder: it has no {HISTORY_FILE} "
                                    "(write one with minicnn.runs.save_run) and no TensorBoard "
                                    "logs (train/ or validation/ with event files)")
        history = read_history(log_dir)
        if not history.history:
            raise ValueError(f"the TensorBoard logs in {log_dir!r} hold no epoch_* scalars")
        return history, {}
    config_path = os.path.join(folder, CONFIG_FILE)
    config = {}
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    return History.load(history_path), config


def best_epoch(values, metric):
    """``(epoch, value)`` of the best entry, 1-based; the highest for accuracies,
    the lowest for losses (the same rule as ``EarlyStopping(mode="auto")``)."""
    if not values:
        raise ValueError(f"no values recorded for {metric!r}")
    pick = max if "acc" in metric else min
    index = pick(range(len(values)), key=values.__getitem__)
    return index + 1, values[index]


def _label(folder):
    return os.path.basename(os.path.normpath(os.fspath(folder))) or os.fspath(folder)


def compare_runs(folders, metric="val_accuracy", path=None, print_table=True):
    """Overlay ``metric`` of several runs on one plot and summarise each run.

    Returns a list of rows ``{"run", "epochs", "best_epoch", "best", "last"}``,
    one per folder, in the order given; prints them as a table unless
    ``print_table=False``; saves the plot as a PNG when ``path`` is given.
    """
    folders = list(folders)
    if not folders:
        raise ValueError("compare_runs needs at least one run folder")
    rows, curves = [], {}
    for folder in folders:
        history, _ = load_run(folder)
        logs = history.history
        if metric not in logs:
            raise KeyError(f"run {os.fspath(folder)!r} has no {metric!r}; it recorded "
                           f"{sorted(logs)}")
        label = _label(folder)
        if label in curves:             # two runs with the same folder name
            label = os.fspath(folder)
        curves[label] = logs[metric]
        epoch, value = best_epoch(logs[metric], metric)
        rows.append({"run": label, "epochs": len(logs[metric]), "best_epoch": epoch,
                     "best": value, "last": logs[metric][-1]})
    if print_table:
        print(format_table(rows, metric))
    if path is not None:
        plot_runs(curves, metric, path)
    return rows


def format_table(rows, metric):
    """The rows of :func:`compare_runs` as aligned text."""
    width = max(len("run"), *(len(r["run"]) for r in rows))
    lines = [f"{'run':<{width}}  epochs  best epoch  best {metric}  last {metric}"]
    for r in rows:
        lines.append(f"{r['run']:<{width}}  {r['epochs']:>6}  {r['best_epoch']:>10}  "
                     f"{r['best']:>{len(metric) + 5}.4f}  {r['last']:>{len(metric) + 5}.4f}")
    return "\n".join(lines)


def plot_runs(curves, metric, path=None, dpi=90):
    """One line per run: ``curves`` is ``{label: [value per epoch]}``. Returns the Figure."""
    from matplotlib.ticker import MaxNLocator

    from .viz import _figure, _finish, accuracy_limits

    fig = _figure((7, 4.5), dpi)
    ax = fig.subplots()
    for label, values in curves.items():
        epochs = range(1, len(values) + 1)
        line, = ax.plot(epochs, values, label=label)
        epoch, value = best_epoch(values, metric)
        ax.plot([epoch], [value], "o", color=line.get_color())   # mark the best epoch
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlim(0.5, max(len(values) for values in curves.values()) + 0.5)   # whole epochs
    ax.set_ylabel(metric)
    if "acc" in metric:     # a fixed range: noise must not look like a trend
        ax.set_ylim(*accuracy_limits([v for values in curves.values() for v in values]))
    ax.set_title(f"{metric} by run (dots: best epoch)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _finish(fig, path)


__all__ = ["best_epoch", "compare_runs", "format_table", "load_run", "plot_runs",
           "prepare_run_folder", "save_run"]
