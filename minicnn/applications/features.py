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

    features.npy   (samples, *base.output_shape) float32, written batch by batch
    labels.npy     (samples,) int32, the iterator's ``classes`` in ``filenames`` order
    manifest.json  what the key was computed from, written last

The key covers everything the features depend on: each source file (relative
path, size, mtime_ns, class), the model (layer configs and a SHA-256 of its
weights), the preprocessing (mode, target size, colour mode, interpolation) and
the source code of the layers and kernels that compute them.
Change any of them and the features are computed afresh; an entry without its
manifest (an interrupted run) never counts. Every file is written under a
temporary name and renamed when complete.

Memory stays bounded whatever the number of images: batches are written to a
memory-mapped file as they are computed, and the arrays returned are read-only
memory maps of the cache (or of a temporary folder without ``cache_dir``).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile

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
    """[relative path, size, mtime_ns, class] for each file, in ``filenames`` order."""
    rows = []
    for name, path, label in zip(iterator.filenames, iterator.filepaths, iterator.classes):
        info = os.stat(path)      # follows links: a split made of links tracks the originals
        rows.append([name.replace(os.sep, "/"), info.st_size, info.st_mtime_ns, int(label)])
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
    if generator is not None and generator.augments:
        raise ValueError(f"extract_features: the iterator's generator augments images "
                         f"({generator!r}); features of random variants cannot be cached. "
                         "Use ImageDataGenerator() with no augmentation")
    if preprocessing is not None and generator is not None and (
            generator.rescale or generator.preprocessing_function is not None):
        raise ValueError(f"extract_features applies preprocess_input(mode={preprocessing!r}) "
                         f"itself, but the iterator's generator already rescales or "
                         f"preprocesses ({generator!r}): give it neither, or pass "
                         "preprocessing=None to use its batches as they are")
    if not base_model.built:
        raise ValueError("extract_features: build the base model first (give input_shape)")
    if tuple(iterator.image_shape) != tuple(base_model.input_shape):
        raise ValueError(f"the iterator yields images of shape {tuple(iterator.image_shape)} "
                         f"but the base model expects {tuple(base_model.input_shape)}: set "
                         "target_size (and color_mode) of flow_from_directory to match")


def code_identity() -> str:
    """SHA-256 of the source of the code that computes a forward pass (layers, activations,
    ops), so that features computed by an earlier or a buggy version are never reused."""
    from .. import activations, layers, ops

    digest = hashlib.sha256()
    folders = [os.path.dirname(ops.__file__)]
    files = [layers.__file__, activations.__file__] + sorted(
        os.path.join(folder, name) for folder in folders for name in os.listdir(folder)
        if name.endswith(".py"))
    for path in files:
        with open(path, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def _identity(base_model, iterator, preprocessing):
    generator = iterator.image_data_generator
    return {
        "format": CACHE_FORMAT,
        "code_sha256": code_identity(),
        "model": model_identity(base_model),
        "preprocessing": {
            "mode": preprocessing,
            "generator": None if generator is None else repr(generator),
            "target_size": list(iterator.target_size), "color_mode": iterator.color_mode,
            "interpolation": iterator.interpolation, "draft": bool(getattr(iterator, "draft",
                                                                          False))},
        "class_indices": dict(iterator.class_indices),
        "sources": source_manifest(iterator),
    }


def _key(identity) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]


def _load_entry(folder, key):
    """(features, labels) memory maps from a complete cache entry, or None."""
    try:
        with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as f:
            manifest = json.load(f)
        if manifest.get("key") != key:
            return None
        features = np.load(os.path.join(folder, "features.npy"), mmap_mode="r")
        labels = np.load(os.path.join(folder, "labels.npy"), mmap_mode="r")
    except (OSError, ValueError):
        return None
    if len(features) != manifest["samples"] or len(labels) != manifest["samples"]:
        return None
    return features, labels


def _run_base(base_model, iterator, preprocessing, batch_size, features_path, verbose):
    """Write the base's outputs for every image into ``features_path`` (.npy).

    Returns the indices (into ``iterator.filenames``) of the images written, in
    order: all of them unless the iterator skipped unreadable files. The labels
    of the batches are checked against ``iterator.classes`` on the way.
    """
    from tqdm.auto import tqdm

    # Create the file at full size, then map it afresh for each batch: pages written
    # through a map count in the process's memory until it is unmapped.
    created = np.lib.format.open_memmap(features_path, mode="w+", dtype=np.float32,
                                        shape=(iterator.samples, *base_model.output_shape))
    del created
    written, batch_labels = 0, []
    with tqdm(total=iterator.samples, unit="img", desc="features", disable=not verbose) as bar:
        for batch in iterator.epoch():
            x, y = batch if isinstance(batch, tuple) else (batch, None)
            if y is not None and np.ndim(y) == 1:      # "binary" / "sparse" class_mode
                batch_labels.append(np.asarray(y))
            for start in range(0, len(x), batch_size):
                chunk = x[start:start + batch_size]
                if preprocessing is not None:
                    chunk = preprocess_input(chunk, preprocessing)
                result = to_numpy(base_model.forward(to_device(chunk, dtype=np.float32)))
                out = np.lib.format.open_memmap(features_path, mode="r+")
                out[written:written + len(chunk)] = result
                out.flush()
                del out
                written += len(chunk)
                bar.update(len(chunk))
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


def _shrink(features_path, rows):
    """Keep only the first ``rows`` rows of a .npy file (after skipped images)."""
    full = np.load(features_path, mmap_mode="r")
    with atomic_path(features_path) as tmp:
        small = np.lib.format.open_memmap(tmp, mode="w+", dtype=full.dtype,
                                          shape=(rows, *full.shape[1:]))
        for start in range(0, rows, 1024):
            small[start:start + 1024] = full[start:min(start + 1024, rows)]
        small.flush()
        del small, full


def cache_entry(base_model, iterator, cache_dir, preprocessing="caffe"):
    """``(folder, complete)``: where ``extract_features`` keeps these inputs' features
    under ``cache_dir``, and whether a complete entry is already there."""
    key = _key(_identity(base_model, iterator, preprocessing))
    folder = os.path.join(os.fspath(cache_dir), key)
    return folder, _load_entry(folder, key) is not None


def extract_features(base_model, iterator, cache_dir=None, batch_size=32, preprocessing="caffe",
                     verbose=1):
    """Outputs of ``base_model`` for every image of ``iterator``, with their labels.

    base_model: a built minicnn Sequential, e.g. ``VGG16(weights=path)``.
    iterator: a DirectoryIterator made with ``shuffle=False`` and no augmentation;
        its ``target_size`` must match the model's input.
    cache_dir: where to keep the results (see the module docstring); None
        computes them into a temporary folder, removed once they are mapped.
    batch_size: images per forward pass (smaller: less memory, a bit slower).
    preprocessing: ``preprocess_input`` mode applied to each batch ("caffe", the
        one VGG16's weights expect; "rescale") or None for the batches as they come.

    Returns ``(features, labels)``: float32 (N, *base_model.output_shape) and
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
    key = _key(identity)
    if cache_dir is None:
        folder = tempfile.mkdtemp(prefix="minicnn-features-")
    else:
        folder = os.path.join(os.fspath(cache_dir), key)
        cached = _load_entry(folder, key)
        if cached is not None:
            if verbose:
                print(f"Loaded {len(cached[0])} cached feature rows from {folder}")
            return cached
        os.makedirs(folder, exist_ok=True)

    features_path = os.path.join(folder, "features.npy")
    try:
        with atomic_path(features_path) as tmp:
            kept = _run_base(base_model, iterator, preprocessing, int(batch_size), tmp, verbose)
        if len(kept) != iterator.samples:
            _shrink(features_path, len(kept))
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
