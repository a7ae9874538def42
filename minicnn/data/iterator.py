"""Batches of images from class folders (Keras's ``flow_from_directory``) or arrays.

    it = DirectoryIterator("data/train", target_size=(150, 150), class_mode="binary")
    x, y = next(it)              # x (32, 150, 150, 3) float32 in 0..255, y (32,) float32
    for x, y in it.epoch(): ...  # exactly one pass

Layout read: ``directory/<class>/**/<image>``; classes are the sorted sub-folder
names (or ``classes=``), files are listed as Keras does (``os.walk`` sorted by
folder, ``sorted`` names within), so ``filenames`` and ``classes`` are in the
order batches come out when ``shuffle=False``.

How the work is spread: a window of ``prefetch * batch_size`` images is always
being decoded, resized and augmented ahead by ``workers`` threads (Pillow
releases the GIL in decode/resize/transform); batches are assembled from the
results in order, so the output never depends on thread timing. Each image's
random transform comes from its own generator seeded by (seed, epoch, file
index), each epoch's shuffle from (seed, epoch). Iteration is endless, epoch
after epoch, like Keras's; a batch never spans two epochs.

Unreadable files (corrupt, truncated, not an image): skipped with one warning
naming the file. The batch is FILLED from the following files of the same epoch,
so only the epoch's last batch comes out smaller (and when the skipped files
outnumber it, the epoch has one batch fewer than ``len(it)``).
"""
from __future__ import annotations

import collections
import concurrent.futures
import numbers
import os
import threading
import warnings

import numpy as np
from PIL import Image

from ..random import new_seed

WHITE_LIST_FORMATS = ("png", "jpg", "jpeg", "bmp", "ppm", "tif", "tiff")
INTERPOLATIONS = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
                  "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS,
                  "box": Image.Resampling.BOX, "hamming": Image.Resampling.HAMMING}
COLOR_MODES = {"rgb": ("RGB", 3), "grayscale": ("L", 1)}
CLASS_MODES = ("categorical", "binary", "sparse", None)
# What Pillow raises for files it cannot read: unknown format, bad or truncated data.
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError, EOFError)


def default_workers():
    """Threads per iterator: one per core, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def check_workers(workers):
    """``workers`` as an int: None -> :func:`default_workers`; 0 is the calling thread."""
    if workers is None:
        return default_workers()
    if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 0:
        raise ValueError(f"workers must be a whole number of threads >= 0 (0: load in the "
                         f"calling thread) or None (one per core, at most 4), got {workers!r}")
    return int(workers)


def _to_mode(img, mode):
    """``img`` converted to "RGB" or "L". 16/32-bit integer images are scaled to
    0..255 first (Pillow's own conversion would clip them at 255); alpha is dropped."""
    if img.mode == mode:
        return img
    if img.mode.startswith("I") or img.mode == "F":
        values = np.asarray(img, dtype=np.float64)
        if img.mode.startswith("I"):             # 16-bit range, as PNG and TIFF store it
            values = values / 257.0
        img = Image.fromarray(np.clip(values, 0, 255).round().astype(np.uint8))
    elif img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")                # Pillow wants this step for such palettes
    return img.convert(mode)


def load_image(path, target_size=None, color_mode="rgb", interpolation="nearest",
               draft=False):
    """One image file -> uint8 array (H, W, C), C = 3 (rgb) or 1 (grayscale).

    ``target_size=(h, w)`` resizes with ``interpolation`` (Keras's default "nearest").
    ``draft=True`` lets the JPEG decoder downscale by 1/2, 1/4 or 1/8 while decoding
    when the image is at least twice the target: much faster on large photos, but
    not bit-identical to Keras. Raises ``OSError``/``ValueError`` for unreadable files.
    """
    mode, channels = COLOR_MODES[color_mode]
    with Image.open(path) as img:
        if draft and target_size is not None and img.format == "JPEG":
            img.draft(mode, (target_size[1], target_size[0]))
        img.load()                               # decode now: errors surface here
        img = _to_mode(img, mode)
        if target_size is not None and img.size != (target_size[1], target_size[0]):
            img = img.resize((target_size[1], target_size[0]), INTERPOLATIONS[interpolation])
        array = np.asarray(img)
    return array.reshape(array.shape[0], array.shape[1], channels)


class BatchIterator:
    """Endless batches of ``n`` samples, loaded and augmented by worker threads.

    Subclasses give ``_load(index) -> (H, W, C) array`` and ``_labels(indices)``.
    ``workers=0`` loads in the calling thread (for debugging).
    """

    def __init__(self, n, image_shape, batch_size=32, shuffle=True, seed=None,
                 image_data_generator=None, workers=None, prefetch=4):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if int(prefetch) < 1:
            raise ValueError(f"prefetch must be >= 1 (batches decoded ahead), got {prefetch!r}")
        self.n = n
        self.image_shape = tuple(image_shape)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.image_data_generator = image_data_generator
        self.workers = check_workers(workers)
        # No seed: draw one from minicnn's seed (set_seed), so that every epoch and worker
        # count agree with each other. Drawn only when used, so that an iterator that
        # neither shuffles nor augments leaves the following draws (weights) unchanged.
        random = self.shuffle or (image_data_generator is not None
                                  and image_data_generator.augments)
        self.seed = int(seed) if seed is not None else new_seed() if random else 0
        self.prefetch = int(prefetch)
        self.skipped_files = set()               # indices that could not be loaded
        self.current_epoch = 0                   # the epoch the next batch comes from
        self._at_boundary = True                 # no sample of current_epoch taken yet
        self._warned = set()
        self._pool = None
        self._pending = collections.deque()      # (epoch, index, future), in output order
        self._tasks = None
        self._lock = threading.Lock()

    # -- what subclasses give --------------------------------------------------
    def _load(self, index):
        raise NotImplementedError

    def _labels(self, indices):
        raise NotImplementedError

    def _describe(self, index):
        return f"sample {index}"

    # -- Keras's interface -------------------------------------------------------
    def __len__(self):
        """Batches per epoch: ceil(samples / batch_size)."""
        return (self.n + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        return self

    def __next__(self):
        """The next batch: ``(x, y)``, or ``x`` alone when there are no labels."""
        with self._lock:
            return self._next_batch()

    def reset(self):
        """The next batch starts a new epoch (with a new shuffle), as Keras's reset.

        A no-op between epochs; mid-epoch it drops the work in flight.
        """
        with self._lock:
            if not self._at_boundary:
                self._drop_pending()
                self.current_epoch += 1
                self._at_boundary = True

    @property
    def next_epoch(self):
        """The epoch that ``epoch()`` yields next: ``current_epoch`` when none of its
        samples was taken yet, else the one after it."""
        return self.current_epoch if self._at_boundary else self.current_epoch + 1

    def skip_epoch(self):
        """Pass over the epoch ``epoch()`` would yield next, loading nothing (for a
        caller that has its results already, e.g. cached features of one augmented copy)."""
        with self._lock:
            self._drop_pending()
            self.current_epoch = self.next_epoch + 1
            self._at_boundary = True

    def epoch(self):
        """Yield the batches of exactly one epoch (after a ``reset()`` if one is under way)."""
        self.reset()
        while True:
            with self._lock:
                batch, last = self._next_batch(report_last=True)
            yield batch
            if last:
                return

    def close(self):
        """Stop the worker threads (also done by ``with`` and when collected).

        The iterator stays usable: a later batch starts a new epoch with new threads.
        """
        self.reset()
        with self._lock:
            self._drop_pending()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    # -- the pipeline ----------------------------------------------------------------
    def order(self, epoch):
        """Sample indices of ``epoch`` in output order."""
        if not self.shuffle:
            return np.arange(self.n)
        return np.random.default_rng((self.seed, 0, epoch)).permutation(self.n)

    def _task_stream(self, first_epoch):
        epoch = first_epoch
        while True:
            for index in self.order(epoch):
                yield epoch, int(index)
            epoch += 1

    def _process(self, epoch, index):
        """Load, augment, standardize one sample: (array, None) or (None, error)."""
        try:
            image = self._load(index)
        except DECODE_ERRORS as error:
            return None, error
        gen = self.image_data_generator
        if gen is not None:
            if gen.augments:
                rng = np.random.default_rng((self.seed, 1, epoch, index))
                image = gen.apply_transform(image, gen.get_random_transform(image.shape, rng))
            if gen.preprocessing_function is not None:
                image = gen.preprocessing_function(image.astype(np.float32))
        return image, None

    def _submit(self):
        epoch, index = next(self._tasks)
        if self.workers == 0:
            future = concurrent.futures.Future()
            future.set_result(self._process(epoch, index))
        else:
            future = self._pool.submit(self._process, epoch, index)
        self._pending.append((epoch, index, future))

    def _fill(self):
        if self._tasks is None:
            self._tasks = self._task_stream(self.current_epoch)
        if self._pool is None and self.workers > 0:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                self.workers, thread_name_prefix="minicnn-data")
        window = self.prefetch * self.batch_size if self.workers > 0 else 1
        while len(self._pending) < window:
            self._submit()

    def _drop_pending(self):
        """Cancel the tasks ahead; the task stream restarts at ``current_epoch``."""
        for _, _, future in self._pending:
            future.cancel()
        self._pending.clear()
        self._tasks = None

    def _next_batch(self, report_last=False):
        if self.n == 0:
            raise ValueError(f"{type(self).__name__} has no samples to iterate over")
        images, indices = [], []
        epoch = None
        while len(images) < self.batch_size:
            self._fill()
            head_epoch, index, future = self._pending[0]
            if epoch is None:
                epoch = head_epoch
            elif head_epoch != epoch:
                break                            # a batch never spans two epochs
            self._pending.popleft()
            self._at_boundary = False
            image, error = future.result()
            if error is not None:
                self._skip(index, error)
                continue
            images.append(image)
            indices.append(index)
        self._fill()
        last = self._pending[0][0] != epoch
        if last:
            self._at_boundary = True
            self.current_epoch = epoch + 1
        if not images:
            raise RuntimeError(f"no readable sample in epoch {epoch} of {self!r}")
        batch = self._assemble(images, indices)
        return (batch, last) if report_last else batch

    def _skip(self, index, error):
        self.skipped_files.add(index)
        if index not in self._warned:
            self._warned.add(index)
            warnings.warn(f"skipping unreadable image {self._describe(index)}: {error}",
                          RuntimeWarning, stacklevel=4)

    def _assemble(self, images, indices):
        """Copy the images into one float32 batch, rescale, attach the labels."""
        first = np.shape(images[0])
        x = np.empty((len(images),) + first, dtype=np.float32)
        for i, image in enumerate(images):
            x[i] = image                          # uint8 -> float32 in the copy
        gen = self.image_data_generator
        if gen is not None and gen.rescale:
            x *= np.float32(gen.rescale)
        y = self._labels(np.asarray(indices))
        return x if y is None else (x, y)


def _walk_once(root_dir, follow_links):
    """``os.walk(root_dir)``, but with ``follow_links`` each real folder is entered once:
    a link back to a folder already walked, or to one above ``root_dir``, would loop."""
    if not follow_links:
        yield from os.walk(root_dir)
        return
    seen = set()
    up = os.path.realpath(root_dir)
    while up not in seen:                         # root_dir and every folder above it
        seen.add(up)
        up = os.path.dirname(up)
    seen.discard(os.path.realpath(root_dir))
    for root, dirs, files in os.walk(root_dir, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []                          # do not descend: met before
            continue
        seen.add(real)
        dirs.sort()                               # which alias is kept must not depend on the OS
        yield root, dirs, files


def _list_class_files(directory, class_name, follow_links):
    """Relative paths ``class/...`` of the images under ``directory/class``, Keras's order."""
    root_dir = os.path.join(directory, class_name)
    found = []
    for root, _, files in sorted(_walk_once(root_dir, follow_links),
                                 key=lambda entry: entry[0]):
        for name in sorted(files):
            if name.lower().endswith(WHITE_LIST_FORMATS):
                found.append(os.path.join(class_name,
                                          os.path.relpath(os.path.join(root, name), root_dir)))
    return found


def _check_classes(classes, folders, directory):
    """Explicit ``classes`` must name existing sub-folders of ``directory``, once each."""
    if isinstance(classes, (str, bytes)) or not all(isinstance(c, str) for c in classes):
        raise TypeError(f"classes must be a list of folder names, got {classes!r}")
    repeated = sorted({name for name in classes if list(classes).count(name) > 1})
    if repeated:
        raise ValueError(f"classes names {repeated} more than once: {list(classes)}")
    missing = [name for name in classes if name not in folders]
    if missing:
        raise FileNotFoundError(f"flow_from_directory: no class folder {missing[0]!r} in "
                                f"{directory!r} (classes={list(classes)}); found {folders}")


class DirectoryIterator(BatchIterator):
    """Keras's ``DirectoryIterator``: batches from ``directory/<class>/`` image files.

    Attributes: ``samples``, ``class_indices`` {name: index}, ``classes`` (int32
    label per file, file order), ``filenames`` (paths relative to ``directory``),
    ``filepaths``, ``num_classes``, ``image_shape`` (h, w, C).
    Batches: x (B, h, w, C) float32 (0..255 before ``rescale``) and y float32:
    one-hot (B, num_classes) for "categorical", (B,) for "binary" and "sparse",
    none for ``class_mode=None``.
    """

    def __init__(self, directory, image_data_generator=None, target_size=(256, 256),
                 color_mode="rgb", classes=None, class_mode="categorical", batch_size=32,
                 shuffle=True, seed=None, interpolation="nearest", workers=None,
                 prefetch=4, follow_links=False, draft=False):
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"flow_from_directory: no folder {directory!r}")
        if color_mode not in COLOR_MODES:
            raise ValueError(f"color_mode must be one of {sorted(COLOR_MODES)}, "
                             f"got {color_mode!r}")
        if class_mode not in CLASS_MODES:
            raise ValueError(f"class_mode must be one of {CLASS_MODES}, got {class_mode!r}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {sorted(INTERPOLATIONS)}, "
                             f"got {interpolation!r}")
        if len(target_size) != 2 or min(target_size) < 1:
            raise ValueError(f"target_size must be (height, width), got {target_size!r}")
        self.directory = directory
        self.target_size = (int(target_size[0]), int(target_size[1]))
        self.color_mode, self.class_mode = color_mode, class_mode
        self.interpolation, self.draft = interpolation, draft
        folders = sorted(name for name in os.listdir(directory)
                         if os.path.isdir(os.path.join(directory, name)))
        if not classes:
            classes = folders
        _check_classes(classes, folders, directory)
        self.class_indices = {name: i for i, name in enumerate(classes)}
        self.num_classes = len(classes)
        self.filenames, labels = [], []
        for name in classes:
            files = _list_class_files(directory, name, follow_links)
            self.filenames += files
            labels += [self.class_indices[name]] * len(files)
        self.classes = np.asarray(labels, dtype=np.int32)
        self.samples = len(self.filenames)
        self.filepaths = [os.path.join(directory, name) for name in self.filenames]
        if class_mode == "binary" and self.num_classes != 2:
            raise ValueError(f"class_mode='binary' needs exactly 2 classes, found "
                             f"{self.num_classes} in {directory!r}: {list(classes)}")
        print(f"Found {self.samples} images belonging to {self.num_classes} classes.")
        channels = COLOR_MODES[color_mode][1]
        super().__init__(self.samples, self.target_size + (channels,), batch_size, shuffle,
                         seed, image_data_generator, workers, prefetch)

    def __repr__(self):
        return (f"DirectoryIterator({self.directory!r}, samples={self.samples}, "
                f"classes={list(self.class_indices)}, target_size={self.target_size}, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle})")

    def _describe(self, index):
        return repr(self.filepaths[index])

    def _load(self, index):
        return load_image(self.filepaths[index], self.target_size, self.color_mode,
                          self.interpolation, self.draft)

    def _labels(self, indices):
        labels = self.classes[indices]
        if self.class_mode is None:
            return None
        if self.class_mode == "categorical":
            one_hot = np.zeros((len(indices), self.num_classes), dtype=np.float32)
            one_hot[np.arange(len(indices)), labels] = 1.0
            return one_hot
        return labels.astype(np.float32)


class ArrayIterator(BatchIterator):
    """Keras's ``NumpyArrayIterator``: batches of in-memory images ``x`` (N, H, W, C)
    with labels ``y`` (N, ...) (or x alone when ``y`` is None), augmented per image."""

    def __init__(self, x, y=None, image_data_generator=None, batch_size=32, shuffle=True,
                 seed=None, workers=None, prefetch=4):
        x = np.asarray(x)
        if x.ndim != 4:
            raise ValueError(f"flow: x must be images (N, H, W, C), got shape {x.shape}")
        if y is not None and len(y) != len(x):
            raise ValueError(f"flow: x has {len(x)} samples but y has {len(y)}")
        self.x, self.y = x, None if y is None else np.asarray(y)
        super().__init__(len(x), x.shape[1:], batch_size, shuffle, seed, image_data_generator,
                         workers, prefetch)

    def __repr__(self):
        return f"ArrayIterator(samples={self.n}, batch_size={self.batch_size})"

    def _load(self, index):
        return self.x[index]

    def _labels(self, indices):
        return None if self.y is None else self.y[indices]
