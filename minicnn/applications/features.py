"""Bottleneck features: a frozen base network run once over a folder of images.

The cats vs dogs tutorial's second step: push every image through VGG16's
convolutional base once, keep the outputs (the "bottleneck features", (4, 4, 512)
per 150x150 image), and train a small classifier on them. Running the base is
by far the slowest part (about 15 GFLOP per image), so the features are cached
on disk and a re-run with the same inputs loads them::

    it = ImageDataGenerator().flow_from_directory("data/train", target_size=(150, 150),
                                                  class_mode="binary", shuffle=False)
    features, labels = extract_features(VGG16(weights=path), it, cache_dir="cache")

The cache. One entry per distinct set of inputs, in a folder named by a hash
of them, ``cache_dir/<key>/``:

    features.npy   (samples, *base.output_shape[1:]) float32, written batch by batch
    labels.npy     (samples,) int32, the iterator's ``classes`` in ``filenames`` order
    manifest.json  what the key was computed from, written last

The key covers everything the features depend on: each source file (relative
path, size, SHA-256 of its bytes, class), the model (layer configs and a SHA-256
of its weights), the preprocessing (mode, target size, colour mode, interpolation,
the generator's settings and, when it augments, the iterator's seed and epoch)
and the source code of the layers and kernels that compute them. Change any of them and the features are computed afresh; an entry without
its manifest (an interrupted run) never counts. Every file is written under a
temporary name and renamed when complete.

A generator's ``preprocessing_function`` enters the key by its module, qualified
name and a hash of its source, the same in every run. A lambda, a nested function
or a callable object has no such name: its features are computed but not cached
(with a warning).

Memory stays bounded whatever the number of images: batches are appended to the
file with ordinary writes as they are computed (so a full disk is an ``OSError``
naming the file and the space needed, never a crash), and the arrays returned
are read-only memory maps of the cache (or of a temporary folder without
``cache_dir``).
"""
from __future__ import annotations

import errno
import hashlib
import inspect
import io
import json
import os
import shutil
import tempfile
import warnings

import numpy as np

from ..backend import to_device, to_numpy
from ..io_utils import atomic_path, atomic_write_text
from .vgg16 import PREPROCESSING_MODES, preprocess_input

CACHE_FORMAT = 1


def model_identity(model) -> dict:
    """Layer names and configurations, and a SHA-256 over all weights, in order."""
    digest = hashlib.sha256()
    for layer in model.layers:
        for key, value in zip(layer.params, layer.get_weights()):
            digest.update(f"{layer.name}/{key}{value.shape}".encode())
            digest.update(np.ascontiguousarray(value, dtype=np.float32).tobytes())
    return {"layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                       for layer in model.layers],
            "weights_sha256": digest.hexdigest()}


def source_manifest(iterator) -> list:
    """[relative path, size, SHA-256, class] for each file, in ``filenames`` order.

    The bytes, not the modification time: a copied or re-downloaded folder of the same
    photos keeps its features (hashing 10,000 photos reads them once, seconds against
    the hours of computing they save), and an edit that keeps the size and time does not.
    Links are followed: a split made of links is its originals."""
    rows = []
    for name, path, label in zip(iterator.filenames, iterator.filepaths, iterator.classes):
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        rows.append([name.replace(os.sep, "/"), os.path.getsize(path), digest.hexdigest(),
                     int(label)])
    return rows


def _check_iterator(iterator, base_model, preprocessing):
    for attribute in ("filenames", "filepaths", "classes", "samples", "shuffle", "epoch"):
        if not hasattr(iterator, attribute):
            raise TypeError(f"extract_features needs a DirectoryIterator (from "
                            f"flow_from_directory); {iterator!r} has no {attribute!r}")
    if iterator.shuffle:
        raise ValueError("extract_features needs an iterator made with shuffle=False: the "
                         "features must come out in the order of iterator.filenames, which "
                         "is where their labels (iterator.classes) come from")
    generator = iterator.image_data_generator
    if preprocessing is not None and generator is not None and (
            generator.rescale or generator.preprocessing_function is not None):
        raise ValueError(f"extract_features applies preprocess_input(mode={preprocessing!r}) "
                         f"itself, but the iterator's generator already rescales or "
                         f"preprocesses ({generator!r}): give it neither, or pass "
                         "preprocessing=None to use its batches as they are")
    if not base_model.built:
        raise ValueError("extract_features: build the base model first (give input_shape)")
    if tuple(iterator.image_shape) != tuple(base_model.input_shape[1:]):
        raise ValueError(f"the iterator yields images of shape {tuple(iterator.image_shape)} "
                         f"but the base model expects {tuple(base_model.input_shape[1:])}: set "
                         "target_size (and color_mode) of flow_from_directory to match")


def code_identity() -> str:
    """SHA-256 of the source of the code that computes a forward pass (layers, engine,
    ops, activations), so that features computed by an earlier or a buggy version are
    never reused."""
    from .. import activations, engine, layers, ops

    digest = hashlib.sha256()
    folders = [os.path.dirname(module.__file__) for module in (layers, engine, ops)]
    files = [activations.__file__] + sorted(
        os.path.join(root, name) for folder in folders for root, _, names in os.walk(folder)
        for name in names if name.endswith(".py"))
    for path in files:
        with open(path, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def _function_identity(function):
    """``{"function": "module.qualname", "source_sha256": ..}``, the same in every run,
    or None for a function without a stable name (lambda, nested function, method,
    callable object)."""
    module = getattr(function, "__module__", None)
    name = getattr(function, "__qualname__", None)
    if not module or not name or "<" in name or inspect.ismethod(function):
        return None                                # "<lambda>", "f.<locals>.g"
    try:
        source = inspect.getsource(function)       # an edit to the function counts
    except (OSError, TypeError):
        source = ""                                # built-in or compiled: the name says it
    return {"function": f"{module}.{name}",
            "source_sha256": hashlib.sha256(source.encode()).hexdigest()}


def _generator_identity(generator):
    """The generator's non-default settings as JSON values, or None when its
    preprocessing_function cannot be named stably. Its seed is left out: the
    iterator's seed is what draws the transforms (see :func:`_identity`)."""
    settings = {}
    for name, value in generator.get_config().items():
        if name == "seed":
            continue
        if callable(value):
            value = _function_identity(value)
            if value is None:
                return None
        else:
            value = np.asarray(value).tolist()     # numpy scalars, tuples -> JSON
        settings[name] = value
    return settings


def _identity(base_model, iterator, preprocessing):
    """What the features depend on, or None when it cannot be named stably (see
    :func:`_function_identity`)."""
    generator = iterator.image_data_generator
    settings = None if generator is None else _generator_identity(generator)
    if generator is not None and settings is None:
        return None
    identity = {
        "format": CACHE_FORMAT,
        "code_sha256": code_identity(),
        "model": model_identity(base_model),
        "preprocessing": {
            "mode": preprocessing,
            "generator": settings,
            "target_size": list(iterator.target_size), "color_mode": iterator.color_mode,
            "interpolation": iterator.interpolation, "draft": bool(getattr(iterator, "draft",
                                                                          False))},
        "class_indices": dict(iterator.class_indices),
        "sources": source_manifest(iterator),
    }
    if generator is not None and generator.augments:
        # Its images are the iterator's random variants of one epoch, each drawn from
        # (iterator seed, epoch, file index): those two name them.
        identity["preprocessing"]["random_variants"] = {"seed": int(iterator.seed),
                                                        "epoch": int(iterator.next_epoch)}
    return identity


def _key(identity) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]


def _load_entry(folder, key):
    """(features, labels) memory maps from a complete cache entry, or None."""
    try:
        with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as f:
            manifest = json.load(f)
        if not isinstance(manifest, dict) or manifest.get("key") != key:
            return None                            # any other JSON: not ours, a miss
        features = np.load(os.path.join(folder, "features.npy"), mmap_mode="r")
        labels = np.load(os.path.join(folder, "labels.npy"), mmap_mode="r")
    except (OSError, ValueError):
        return None
    if not len(features) == len(labels) == manifest.get("samples"):
        return None
    return features, labels


def _npy_header(shape):
    """The .npy header of a float32 C-order array of ``shape``. NumPy pads it so that
    a smaller first dimension fits in the same number of bytes."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False,
                                                  "shape": tuple(shape)})
    return buffer.getvalue()


def _write_rows(f, rows):
    """Append float32 ``rows`` to the open .npy file ``f``."""
    f.write(np.ascontiguousarray(rows, dtype="<f4").data)


def _features_size(iterator, base_model):
    """Bytes of features.npy when every image is readable."""
    shape = (iterator.samples, *base_model.output_shape[1:])
    return len(_npy_header(shape)) + 4 * int(np.prod(shape))


def _no_space(path, needed, free=None):
    """The error for a disk too full for ``path``."""
    where = ("the disk filled up while it was written" if free is None
             else f"only {free:,} bytes are free there")
    return OSError(errno.ENOSPC, f"extract_features: no space left for {path!r}: it needs "
                                 f"{needed:,} bytes ({needed / 2**30:.2f} GiB) and {where}; "
                                 "free some space or choose another cache_dir")


def _run_base(base_model, iterator, preprocessing, batch_size, features_path, verbose):
    """Write the base's outputs for every image into ``features_path`` (.npy).

    Returns the indices (into ``iterator.filenames``) of the images written, in
    order: all of them unless the iterator skipped unreadable files. The labels
    of the batches are checked against ``iterator.classes`` on the way.
    """
    from tqdm.auto import tqdm

    row_shape = tuple(base_model.output_shape[1:])   # (None, ...): one sample's
    header = _npy_header((iterator.samples, *row_shape))
    written, batch_labels = 0, []
    with open(features_path, "wb") as f, \
            tqdm(total=iterator.samples, unit="img", desc="features", disable=not verbose) as bar:
        f.write(header)
        for batch in iterator.epoch():
            x, y = batch if isinstance(batch, tuple) else (batch, None)
            if y is not None and np.ndim(y) == 1:      # "binary" / "sparse" class_mode
                batch_labels.append(np.asarray(y))
            for start in range(0, len(x), batch_size):
                chunk = x[start:start + batch_size]
                if preprocessing is not None:
                    chunk = preprocess_input(chunk, preprocessing)
                result = to_numpy(base_model.forward(to_device(chunk, dtype=np.float32)))
                _write_rows(f, result)
                written += len(chunk)
                bar.update(len(chunk))
        if written != iterator.samples:                # skipped files: fewer rows
            smaller = _npy_header((written, *row_shape))
            if len(smaller) != len(header):            # NumPy >= 1.24 pads them alike
                raise RuntimeError("extract_features: this NumPy's .npy header cannot be "
                                   "rewritten in place")
            f.seek(0)
            f.write(smaller)
    skipped = sorted(getattr(iterator, "skipped_files", ()))
    kept = np.setdiff1d(np.arange(iterator.samples), skipped)
    if written != len(kept):
        raise RuntimeError(f"extract_features: the iterator gave {written} images for "
                           f"{iterator.samples} files with {len(skipped)} skipped")
    expected = np.asarray(iterator.classes)[kept]
    if batch_labels and not np.array_equal(np.concatenate(batch_labels), expected):
        raise RuntimeError("extract_features: the iterator's batch labels disagree with "
                           "iterator.classes in filenames order; was it shuffled?")
    return kept


def cache_entry(base_model, iterator, cache_dir, preprocessing="caffe"):
    """``(folder, complete)``: where ``extract_features`` keeps these inputs' features
    under ``cache_dir``, and whether a complete entry is already there; ``(None, False)``
    when they are not cached (a preprocessing_function without a stable name)."""
    identity = _identity(base_model, iterator, preprocessing)
    if identity is None:
        return None, False
    key = _key(identity)
    folder = os.path.join(os.fspath(cache_dir), key)
    return folder, _load_entry(folder, key) is not None


def extract_features(base_model, iterator, cache_dir=None, batch_size=32, preprocessing="caffe",
                     verbose=1):
    """Outputs of ``base_model`` for every image of ``iterator``, with their labels.

    base_model: a built minicnn Sequential, e.g. ``VGG16(weights=path)``.
    iterator: a DirectoryIterator made with ``shuffle=False``; its ``target_size``
        must match the model's input. With an augmenting generator the features are
        those of the iterator's next epoch of random variants (a call per epoch gives
        a new copy), cached under the iterator's seed and that epoch.
    cache_dir: where to keep the results (see the module docstring); None
        computes them into a temporary folder, removed once they are mapped.
    batch_size: images per forward pass (smaller: less memory, a bit slower).
    preprocessing: ``preprocess_input`` mode applied to each batch ("caffe", the
        one VGG16's weights expect; "rescale") or None for the batches as they come.

    Returns ``(features, labels)``: float32 (N, *base_model.output_shape[1:]) and
    int32 (N,), read-only memory maps, N = ``iterator.samples`` less any unreadable
    file the iterator skipped. ``labels[i]`` is ``iterator.classes`` of the i-th
    file of ``iterator.filenames`` (never assumed from class counts).
    """
    if preprocessing is not None and preprocessing not in PREPROCESSING_MODES:
        raise ValueError(f"unknown preprocessing {preprocessing!r}: expected one of "
                         f"{PREPROCESSING_MODES} or None")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    _check_iterator(iterator, base_model, preprocessing)

    identity = _identity(base_model, iterator, preprocessing)
    if identity is None:
        if cache_dir is not None:
            function = iterator.image_data_generator.preprocessing_function
            warnings.warn(f"extract_features: preprocessing_function {function!r} has no "
                          "name that stays the same from run to run (a lambda, a nested "
                          "function or a callable object), so its features are not cached; "
                          "define it at module level to cache them", UserWarning, stacklevel=2)
        cache_dir, identity = None, {}
    key = _key(identity)
    if cache_dir is None:
        folder = tempfile.mkdtemp(prefix="minicnn-features-")
    else:
        folder = os.path.join(os.fspath(cache_dir), key)
        cached = _load_entry(folder, key)
        if cached is not None:
            if verbose:
                print(f"Loaded {len(cached[0])} cached feature rows from {folder}")
            iterator.skip_epoch()    # as if computed: the next call gives the next copy
            return cached
        os.makedirs(folder, exist_ok=True)

    features_path = os.path.join(folder, "features.npy")
    needed = _features_size(iterator, base_model)
    free = shutil.disk_usage(folder).free
    if needed > free:                  # hours of computing would end in a full disk
        if cache_dir is None:
            shutil.rmtree(folder, ignore_errors=True)
        raise _no_space(features_path, needed, free)
    try:
        try:
            with atomic_path(features_path) as tmp:
                kept = _run_base(base_model, iterator, preprocessing, int(batch_size), tmp,
                                 verbose)
        except OSError as error:
            if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
                raise _no_space(features_path, needed) from error
            raise
        labels = np.asarray(iterator.classes, dtype=np.int32)[kept]
        with atomic_path(os.path.join(folder, "labels.npy")) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, labels)
        manifest = {"key": key, "samples": int(len(kept)),
                    "directory": os.path.abspath(iterator.directory),
                    "skipped": [iterator.filenames[i] for i in
                                sorted(set(range(iterator.samples)) - set(kept.tolist()))],
                    **identity}
        atomic_write_text(os.path.join(folder, "manifest.json"), json.dumps(manifest, indent=1))
    except BaseException:
        if cache_dir is None:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    result = (np.load(features_path, mmap_mode="r"),
              np.load(os.path.join(folder, "labels.npy"), mmap_mode="r"))
    if cache_dir is None:       # the maps stay valid once their files are unlinked (POSIX)
        shutil.rmtree(folder, ignore_errors=True)
    return result


__all__ = ["cache_entry", "extract_features", "model_identity", "source_manifest"]
