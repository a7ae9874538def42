"""TensorBoard: real TensorBoard event files, in Keras 3's layout, through tensorboardX.

``TensorBoard(log_dir)`` writes ``log_dir/train`` and ``log_dir/validation`` as Keras's
callback does, with Keras's tags: ``epoch_loss``, ``epoch_accuracy`` and
``epoch_learning_rate`` (train) and ``epoch_loss``, ``epoch_accuracy`` (validation) at
step = epoch (from 0); ``evaluation_<name>_vs_iterations`` (validation) at step = the
optimizer's iterations; ``batch_<name>`` every ``update_freq`` batches; the weight
histograms ``<model>/<layer>/<param>/histogram`` (``sequential/conv2d/kernel/histogram``)
every ``histogram_freq`` epochs, and with ``write_images`` the images
``<model>/<layer>/<param>/image``. ``tensorboard --logdir log_dir`` shows them, and
:func:`read_history` (``minicnn compare``) reads them back, Keras's own logs too.

tensorboardX (a dependency of minicnn) writes the files; it needs no TensorFlow.
"""
from __future__ import annotations

import glob
import math
import numbers
import os
import struct
import time

import numpy as np

from .base import Callback, History
from .learning_rate import get_learning_rate

TRAIN_DIR, VALIDATION_DIR = "train", "validation"
_EVENT_FILES = "events.out.tfevents.*"


def _summary_writer(folder):
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ImportError("TensorBoard needs the tensorboardX package, which writes the "
                          "event files without TensorFlow: pip install tensorboardX") from None
    return SummaryWriter(logdir=folder)


def weight_image(weight):
    """The image Keras 3's TensorBoard callback makes of a weight, as an ``(N, H, W, C)``
    array, or None where Keras writes none; each of the N images scaled to [0, 1].

    Keras's rule: a bias ``(n,)`` is one ``n x 1`` image, a Dense kernel one image (its
    longer side across), a Conv2D kernel with one input channel (the first layer of a
    grey-image network) one image per filter, any other weight nothing unless its last
    axis has 1, 3 or 4 entries. minicnn adds one case: a Conv2D kernel with 3 input
    channels (the first layer of a colour-image network) gives one RGB image per filter.
    Keras leaves the values as they are (TensorBoard clips them to [0, 1]); here each
    image is scaled from its own minimum to its maximum, which shows the filters.
    """
    weight = np.asarray(weight, dtype=np.float64)
    w = np.squeeze(weight)
    if weight.ndim == 4 and weight.shape[2] == 3:               # RGB filters
        images = np.transpose(weight, (3, 0, 1, 2))
    elif w.ndim == 1:
        images = w.reshape(1, w.shape[0], 1, 1)
    elif w.ndim == 2:
        if w.shape[0] > w.shape[1]:
            w = w.T
        images = w.reshape(1, w.shape[0], w.shape[1], 1)
    elif w.ndim == 3:                                            # (kh, kw, filters)
        w = np.transpose(w, (2, 0, 1))
        images = w.reshape(*w.shape, 1)
    elif w.ndim == 4 and w.shape[-1] in (1, 3, 4):
        images = w
    else:
        return None
    low = images.min(axis=(1, 2, 3), keepdims=True)
    span = images.max(axis=(1, 2, 3), keepdims=True) - low
    return np.where(span > 0, (images - low) / np.where(span > 0, span, 1), 0.5)


def image_grid(images, columns=8, cell=32):
    """``(N, H, W, C)`` images in [0, 1] as one ``uint8`` picture: up to ``columns``
    per row, each enlarged (nearest neighbour) towards ``cell`` pixels, 1-pixel gaps."""
    n, h, w, c = images.shape
    scale = max(1, cell // max(h, w))
    images = images.repeat(scale, axis=1).repeat(scale, axis=2)
    h, w = h * scale, w * scale
    columns = min(n, columns)
    rows = math.ceil(n / columns)
    gap = 1 if n > 1 else 0
    grid = np.ones(((h + gap) * rows - gap, (w + gap) * columns - gap, c))
    for i in range(n):
        r, k = divmod(i, columns)
        grid[r * (h + gap):r * (h + gap) + h, k * (w + gap):k * (w + gap) + w] = images[i]
    return np.round(grid * 255).astype(np.uint8)


class TensorBoard(Callback):
    """Write TensorBoard logs of training (Keras 3's callback; see the module docstring).

    ``log_dir``: the folder of the run (``tensorboard --logdir`` on it, or on the folder
    of several runs, compares them). ``histogram_freq``: write weight histograms every
    that many epochs (0: never). ``write_images``: with the histograms, the weights as
    images (:func:`weight_image`: the first conv layer's filters). ``update_freq``:
    ``"epoch"``, or ``"batch"`` / an integer ``N`` to also write ``batch_loss``... every
    N batches (the running mean over the epoch so far, as Keras's batch logs).
    ``write_steps_per_second`` adds ``epoch_steps_per_second`` (and
    ``batch_steps_per_second``). Keras's ``write_graph`` is accepted and writes nothing;
    profiling and embeddings are not available (``profile_batch``, ``embeddings_freq``
    must stay 0).
    """

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0,
                 embeddings_freq=0, embeddings_metadata=None):
        try:
            self.log_dir = os.fspath(log_dir)
        except TypeError:
            raise TypeError(f"TensorBoard log_dir must be a folder path, got {log_dir!r}") \
                from None
        if os.path.exists(self.log_dir) and not os.path.isdir(self.log_dir):
            raise NotADirectoryError(f"TensorBoard log_dir {self.log_dir!r} is a file")
        if isinstance(histogram_freq, bool) or not isinstance(histogram_freq, numbers.Integral) \
                or histogram_freq < 0:
            raise ValueError(f"TensorBoard histogram_freq must be an integer >= 0 (epochs "
                             f"between histograms, 0: none), got {histogram_freq!r}")
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (isinstance(update_freq, bool) or not isinstance(
                update_freq, numbers.Integral) or update_freq < 1):
            raise ValueError(f"TensorBoard update_freq must be 'epoch', 'batch' or a positive "
                             f"integer (batches), got {update_freq!r}")
        if profile_batch:
            raise ValueError(f"TensorBoard: profiling is not available in minicnn; "
                             f"profile_batch must be 0, got {profile_batch!r}")
        if embeddings_freq:
            raise ValueError(f"TensorBoard: minicnn has no Embedding layers to visualise; "
                             f"embeddings_freq must be 0, got {embeddings_freq!r}")
        self.histogram_freq = int(histogram_freq)
        self.write_graph = write_graph
        self.write_images = bool(write_images)
        self.write_steps_per_second = bool(write_steps_per_second)
        self.update_freq = update_freq if update_freq == "epoch" else int(update_freq)
        self._writers = {}

    # -- writers ----------------------------------------------------------------------
    def _writer(self, which):
        if which not in self._writers:
            self._writers[which] = _summary_writer(os.path.join(self.log_dir, which))
        return self._writers[which]

    def _close_writers(self):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    def set_model(self, model):
        self.model = model
        self._close_writers()

    # -- hooks --------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._global_train_batch = 0
        self._writer(TRAIN_DIR)

    def on_train_end(self, logs=None):
        self._close_writers()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_totals, self._epoch_seen = {}, 0
        self._epoch_start = self._batch_start = time.perf_counter()
        self._epoch_iterations = self._iterations()

    def _iterations(self):
        return int(getattr(getattr(self.model, "optimizer", None), "iterations", 0) or 0)

    def on_batch_end(self, batch, logs=None):
        self._global_train_batch += 1
        now = time.perf_counter()
        batch_seconds, self._batch_start = now - self._batch_start, now
        if self.update_freq == "epoch":
            return
        logs = dict(logs or {})
        size = logs.pop("size", 1)
        # Keras's batch logs are the epoch's running means; minicnn's are the batch's.
        self._epoch_seen += size
        for key, value in logs.items():
            self._epoch_totals[key] = self._epoch_totals.get(key, 0.0) + float(value) * size
        step = self._global_train_batch
        if step % self.update_freq:
            return
        writer = self._writer(TRAIN_DIR)
        if self.write_steps_per_second and batch_seconds > 0:
            writer.add_scalar("batch_steps_per_second", 1.0 / batch_seconds, step)
        for key, total in self._epoch_totals.items():
            writer.add_scalar(f"batch_{key}", total / self._epoch_seen, step)

    def on_epoch_end(self, epoch, logs=None):
        self._log_epoch_metrics(epoch, logs or {})
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._log_weights(epoch)
        for writer in self._writers.values():
            writer.flush()

    def _log_epoch_metrics(self, epoch, logs):
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        # The rate this epoch trained with: what ReduceLROnPlateau or LearningRateScheduler
        # put in the logs, else the optimizer's. (Keras reads the optimizer's even when a
        # ReduceLROnPlateau before it has just lowered it for the next epoch.)
        if "learning_rate" not in train and getattr(self.model, "optimizer", None) is not None:
            train["learning_rate"] = get_learning_rate(self.model, "TensorBoard")
        if self.write_steps_per_second:
            seconds = time.perf_counter() - self._epoch_start
            train["steps_per_second"] = (self._iterations() - self._epoch_iterations) / \
                max(seconds, 1e-9)
        writer = self._writer(TRAIN_DIR)
        for name, value in train.items():
            writer.add_scalar(f"epoch_{name}", float(value), epoch)
        if val:
            writer = self._writer(VALIDATION_DIR)
            iterations = self._iterations()
            for name, value in val.items():   # Keras writes these in on_test_end
                writer.add_scalar(f"evaluation_{name}_vs_iterations", float(value), iterations)
            for name, value in val.items():
                writer.add_scalar(f"epoch_{name}", float(value), epoch)

    def _log_weights(self, epoch):
        from ..backend import to_numpy

        writer = self._writer(TRAIN_DIR)
        model_name = getattr(self.model, "name", "sequential")
        for layer in self.model.layers:
            for key, param in layer.params.items():
                tag = f"{model_name}/{layer.name}/{key}".replace(":", "_")
                values = to_numpy(param)
                writer.add_histogram(f"{tag}/histogram", values.astype(np.float64), epoch)
                if self.write_images:
                    images = weight_image(values)
                    if images is not None:
                        writer.add_image(f"{tag}/image", image_grid(images), epoch,
                                         dataformats="HWC")


# -- reading event files back -----------------------------------------------------------
def _records(path):
    """The records of a TFRecord file (an event file), stopping at a truncated one (a
    run still writing)."""
    with open(path, "rb") as f:
        while True:
            header = f.read(12)               # uint64 length, uint32 CRC of the length
            if len(header) < 12:
                return
            (length,) = struct.unpack("<Q", header[:8])
            data = f.read(length)
            if len(data) < length or len(f.read(4)) < 4:
                return
            yield data


_NUMPY_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64, 19: np.float16}


def _scalar(value):
    """A summary value's number when it is a scalar (tensorboardX's simple_value, or a
    0-d numeric tensor as TensorFlow writes them), else None."""
    if value.HasField("simple_value"):
        return float(value.simple_value)
    if not value.HasField("tensor"):
        return None
    tensor = value.tensor
    if len(tensor.tensor_shape.dim) or tensor.dtype not in _NUMPY_DTYPES:
        return None
    if tensor.tensor_content:
        return float(np.frombuffer(tensor.tensor_content, _NUMPY_DTYPES[tensor.dtype])[0])
    for field in ("float_val", "double_val", "int_val", "int64_val", "half_val"):
        values = getattr(tensor, field)
        if len(values):
            return float(values[0])
    return None


def read_scalars(folder):
    """``{tag: {step: value}}`` of the scalars in the event files of ``folder`` (files in
    name order, i.e. by time; a later value for a step replaces an earlier one)."""
    try:
        from tensorboardX.proto import event_pb2
    except ImportError:
        raise ImportError("reading TensorBoard logs needs the tensorboardX package: "
                          "pip install tensorboardX") from None
    scalars = {}
    for path in sorted(glob.glob(os.path.join(os.fspath(folder), _EVENT_FILES))):
        for record in _records(path):
            event = event_pb2.Event.FromString(record)
            if not event.HasField("summary"):
                continue
            for value in event.summary.value:
                number = _scalar(value)
                if number is not None:
                    scalars.setdefault(value.tag, {})[int(event.step)] = number
    return scalars


def is_log_dir(folder):
    """Whether ``folder`` holds TensorBoard logs in Keras's layout (``train/`` or
    ``validation/`` with event files)."""
    return any(glob.glob(os.path.join(os.fspath(folder), sub, _EVENT_FILES))
               for sub in (TRAIN_DIR, VALIDATION_DIR))


def find_log_dir(folder):
    """``folder`` if it is a TensorBoard log folder (:func:`is_log_dir`), else the one
    folder directly inside it that is (a run folder holding ``logs/``); None if none.
    Several candidates raise ``ValueError``."""
    folder = os.fspath(folder)
    if is_log_dir(folder):
        return folder
    found = sorted(entry.path for entry in os.scandir(folder)
                   if entry.is_dir() and is_log_dir(entry.path)) if os.path.isdir(folder) else []
    if len(found) > 1:
        raise ValueError(f"{folder!r} holds several TensorBoard log folders "
                         f"({', '.join(found)}); name the one to read")
    return found[0] if found else None


def read_history(log_dir):
    """A :class:`History` of the per-epoch scalars of a TensorBoard log folder (as this
    callback or Keras's writes it): ``epoch_<name>`` of ``train/`` as ``<name>``, of
    ``validation/`` as ``val_<name>``."""
    history = History()
    epochs = set()
    for sub, prefix in ((TRAIN_DIR, ""), (VALIDATION_DIR, "val_")):
        for tag, values in read_scalars(os.path.join(os.fspath(log_dir), sub)).items():
            if tag.startswith("epoch_"):
                steps = sorted(values)
                history.history[prefix + tag[len("epoch_"):]] = [values[s] for s in steps]
                epochs.update(steps)
    history.epoch = sorted(epochs)
    return history


__all__ = ["TensorBoard", "find_log_dir", "image_grid", "is_log_dir", "read_history",
           "read_scalars", "weight_image"]
