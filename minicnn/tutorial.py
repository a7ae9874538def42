"""The cats-vs-dogs tutorial from scratch, as functions (the project's main job).

This is the Keras tutorial's first model, step for step:

    data      Kaggle's train/ folder -> train/ and validation/ class folders
              (minicnn.data.organize_kaggle_split), streamed as augmented
              150x150 batches (ImageDataGenerator.flow_from_directory)
    model     3 x [Conv2D 3x3 same + ReLU + MaxPool 2x2] (32, 32, 64 filters),
              Dropout 0.25, Flatten, Dense 64 ReLU, Dropout 0.5, Dense 2 softmax
    training  binary cross-entropy, SGD(lr=0.01, momentum=0.9, decay=lr/epochs),
              batch 32, early stopping on val_loss (patience 2), up to 50 epochs
    outputs   model.h5, history.json/.csv, curves.png, config.json in one run folder

Without real photos it trains on a built-in synthetic set (horizontal vs
vertical stripes written as JPEGs, 64x64, in class folders named after the
stripes), so the whole path from files to a trained model runs anywhere in a
couple of minutes; its messages, results.json and curves say it was synthetic.

Every run writes into its own folder: a new ``runs/<name>-<date>-<time>`` by
default, or the ``output`` given, which must not hold files unless
``force=True`` (see :func:`minicnn.runs.prepare_run_folder`).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time

import numpy as np

from . import backend, locate
from .callbacks import EarlyStopping
from .io_utils import atomic_write_text
from .layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from .models import Sequential, load_model
from .optimizers import SGD
from .random import set_seed
from .runs import best_epoch, portable_path, prepare_run_folder, save_run
from .viz import plot_history

# How to get the photos; follows "for the real photos, ..." in messages.
DATA_HELP = ("download train.zip from https://www.kaggle.com/c/dogs-vs-cats/data, unzip it "
             "and pass its folder as data (--data on the command line) or set MINICNN_DATA")
CLASS_NAMES = ("cats", "dogs")
SYNTHETIC_SIZE = 64
SYNTHETIC_DESCRIPTION = f"horizontal vs vertical stripes, {SYNTHETIC_SIZE}x{SYNTHETIC_SIZE}"
# The synthetic images are not cats and dogs, so their class folders do not say so.
SYNTHETIC_CLASS_NAMES = ("horizontal_stripes", "vertical_stripes")


def build_cats_dogs_model(input_shape=(150, 150, 3), dropout=True) -> Sequential:
    """The tutorial's network (uncompiled). ``dropout=False`` leaves the two Dropout
    layers out (useful for exact comparisons with Keras)."""
    layers = [
        Conv2D(32, 3, padding="same", activation="relu", input_shape=tuple(input_shape)),
        MaxPooling2D(2),
        Conv2D(32, 3, padding="same", activation="relu"),
        MaxPooling2D(2),
        Conv2D(64, 3, padding="same", activation="relu"),
        MaxPooling2D(2),
        Dropout(0.25),
        Flatten(),
        Dense(64, activation="relu"),
        Dropout(0.5),
        Dense(2, activation="softmax"),
    ]
    if not dropout:
        layers = [layer for layer in layers if not isinstance(layer, Dropout)]
    return Sequential(layers, name="cats_dogs")


def compile_cats_dogs(model, epochs, learning_rate=0.01):
    """SGD with momentum 0.9 and the tutorial's time decay ``lr / epochs``."""
    model.compile(SGD(learning_rate, momentum=0.9, decay=learning_rate / epochs),
                  "binary_crossentropy", ["accuracy"])
    return model


def split_counts(n, ratio):
    """``(training, validation)`` images per class when ``n`` photos are split at
    ``ratio``: the rule of :func:`minicnn.data.organize_kaggle_split`."""
    per_class = n // 2
    validation = int(round(per_class * ratio))
    return per_class - validation, validation


def split_size_problem(n, ratio):
    """Why ``n`` photos split at ``ratio`` cannot train the model, or None when they can:
    ``n`` must be even and give every class a training and a validation image."""
    if n < 2 or n % 2:
        return "the photos are split evenly between the two classes, so n must be even"
    train, validation = split_counts(n, ratio)
    if train < 1 or validation < 1:
        return (f"each class would get {train} training and {validation} validation "
                "images, and it needs at least one of each")
    return None


def smallest_split_size(ratio):
    """The smallest ``n`` that gives every class a training and a validation image."""
    n = 2
    while split_size_problem(n, ratio):
        n += 2
    return n


def check_training_arguments(n=None, ratio=0.2, epochs=50, batch_size=32, image_size=150,
                             patience=2):
    """Raise ValueError, naming the argument and its value, for settings that cannot
    train; called before anything is written."""
    def whole(name, value, least):
        if isinstance(value, bool) or int(value) != value or value < least:
            raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}")

    whole("epochs", epochs, 1)
    whole("batch_size", batch_size, 1)
    # Three 2x2 poolings halve the image three times: 8 pixels leave one.
    whole("image_size", image_size, 8)
    whole("patience", patience, 0)
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio is the validation share, expected 0 < ratio < 1, got {ratio!r}")
    if n is not None:
        whole("n", n, 2)
        problem = split_size_problem(n, ratio)
        if problem:
            raise ValueError(f"n={n} with ratio={ratio}: {problem}; use n="
                             f"{smallest_split_size(ratio)} or more")


def cpu_kernels_need_compiling():
    """True when this process will compile minicnn's CPU kernels (numba finds no
    usable compiled copy on disk), which makes the first batch take about 15 s."""
    from .engine import cpu_kernels

    if not cpu_kernels.enabled or cpu_kernels._checked:
        return False
    try:
        kernels = cpu_kernels.dispatchers()
        # An index that is missing, or stale after a source change, loads as empty.
        return any(not kernel._cache._cache_file._load_index() for kernel in kernels)
    except Exception:    # numba's cache layout is internal: if it changed, stay quiet
        return False


def demo_settings(data=None) -> dict:
    """Sizes for a demo that finishes in a couple of minutes: 1,000 real photos
    (800 train / 200 validation) for 3 epochs, or 3 epochs of the synthetic set."""
    if find_data(data) is not None:
        return {"n": 1000, "epochs": 3}
    return {"n": None, "epochs": 3}


def find_data(data=None):
    """The data folder from the argument or ``MINICNN_DATA``; None when neither is set
    (``locate.find_kaggle_photos``)."""
    found = locate.find_kaggle_photos(data)
    return found[0] if found else None


def prepare_split(data, workdir, n=None, ratio=0.2, seed=0):
    """A folder with ``train/`` and ``validation/`` class folders.

    ``data`` may already be such a folder (made by ``organize_kaggle_split`` or by
    hand), or a Kaggle ``train/`` folder of ``cat.N.jpg`` / ``dog.N.jpg`` files, which
    is organised (by links) into ``workdir``. The split is a pure function of (files,
    n, ratio, seed), so a complete split made with the same arguments is reused; an
    interrupted one is never trained on (``split_status``).
    """
    from .data import organize_kaggle_split
    from .data.split import split_is_complete, split_status

    state, why = split_status(data)
    if state in ("complete", "unmarked"):
        return data
    if state == "incomplete":
        raise ValueError(why)
    dest = os.path.join(workdir, f"split_n{n or 'all'}_r{ratio}_s{seed}")
    if not split_is_complete(dest):   # our own work folder: (re)build it
        organize_kaggle_split(data, dest, n=n, ratio=ratio, seed=seed, force=True)
    return dest


def _synthetic_split(workdir, seed):
    """The synthetic stripes, written beside their place and renamed into it once
    complete, so an interrupted run never leaves a partial set to be reused."""
    from .data import write_shapes_directory

    dest = os.path.join(workdir, "synthetic_stripes")
    if not os.path.isdir(dest):
        partial = f"{dest}.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        write_shapes_directory(partial, n_train=480, n_validation=160, size=SYNTHETIC_SIZE,
                               seed=seed, kind="stripes", class_names=SYNTHETIC_CLASS_NAMES)
        os.replace(partial, dest)
    return dest


def train_cats_dogs(data=None, output=None, n=None, ratio=0.2, epochs=50,
                    batch_size=32, image_size=150, device=None, seed=0, patience=2,
                    augment=True, workers=None, verbose=1, force=False,
                    run_name="cats_dogs") -> dict:
    """Train the tutorial's model and write a run folder.

    ``data``: a Kaggle train folder (cat.N.jpg, dog.N.jpg), or a folder that already
    holds train/ and validation/ class folders; None uses ``MINICNN_DATA``, and
    without either a built-in synthetic dataset. ``output``: the run folder; None
    makes a new ``runs/<run_name>-<date>-<time>``; a folder that holds files is
    refused unless ``force=True``. Returns a summary dict (also saved as
    ``results.json`` in the run folder, whose path is ``results["output"]``).
    """
    from .data import ImageDataGenerator

    check_training_arguments(n, ratio, epochs, batch_size, image_size, patience)
    data = find_data(data)
    output = prepare_run_folder(output, run_name, force=force)
    if device is not None:
        backend.set_device(device)
    set_seed(seed)
    synthetic = data is None
    if synthetic:
        print("minicnn: no cats/dogs data given: training on the built-in SYNTHETIC dataset "
              f"({SYNTHETIC_DESCRIPTION}) instead; for the real photos, {DATA_HELP}.",
              file=sys.stderr)
        split = _synthetic_split(output, seed)
        image_size = min(image_size, SYNTHETIC_SIZE)   # its images are this small
    else:
        split = prepare_split(data, output, n=n, ratio=ratio, seed=seed)

    train_gen = ImageDataGenerator(rescale=1 / 255, shear_range=0.2 if augment else 0.0,
                                   zoom_range=0.2 if augment else 0.0,
                                   horizontal_flip=augment)
    test_gen = ImageDataGenerator(rescale=1 / 255)
    size = (image_size, image_size)
    extra = {} if workers is None else {"workers": workers}
    train = train_gen.flow_from_directory(os.path.join(split, "train"), target_size=size,
                                          batch_size=batch_size, class_mode="categorical",
                                          shuffle=True, seed=seed, **extra)
    validation = test_gen.flow_from_directory(os.path.join(split, "validation"),
                                              target_size=size, batch_size=batch_size,
                                              class_mode="categorical", shuffle=False, **extra)
    for name, iterator in (("train", train), ("validation", validation)):
        if iterator.samples == 0:
            raise ValueError(f"no {name} images in the class folders of "
                             f"{os.path.join(split, name)!r}")
    model = compile_cats_dogs(build_cats_dogs_model((image_size, image_size, 3)), epochs)
    if verbose:
        model.summary()
        if backend.device() == "cpu" and cpu_kernels_need_compiling():
            print("minicnn: compiling the CPU kernels on first use: the first batch takes "
                  "about 15 s longer and its speed and ETA read low (compiled once, cached "
                  "on disk for later runs)", file=sys.stderr)
    stopper = EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=False)
    start = time.perf_counter()
    history = model.fit(train, epochs=epochs, validation_data=validation, callbacks=[stopper],
                        verbose=verbose)
    seconds = time.perf_counter() - start

    epochs_run = len(history.history["loss"])
    best, best_accuracy = best_epoch(history.history["val_accuracy"], "val_accuracy")
    data_description = (f"synthetic: {SYNTHETIC_DESCRIPTION}" if synthetic
                        else portable_path(data))
    results = {
        "data": data_description, "synthetic": synthetic, "output": output,
        "train_samples": train.samples, "validation_samples": validation.samples,
        "class_indices": train.class_indices,
        "epochs_run": epochs_run, "seconds": round(seconds, 1),
        "seconds_per_epoch": round(seconds / max(epochs_run, 1), 1),
        "best_val_accuracy": best_accuracy, "best_epoch": best,
        "final_val_accuracy": history.history["val_accuracy"][-1],
        "device": backend.device(),
    }
    config = {"model": "cats_dogs_scratch", "data": data_description, "n": n,
              "ratio": ratio, "epochs": epochs,
              "batch_size": batch_size, "image_size": image_size, "seed": seed,
              "patience": patience, "augment": augment, "optimizer": model.optimizer.get_config()}
    # model.h5, history.json/.csv, config.json: a run folder that `minicnn compare` reads.
    save_run(output, history, config, model)
    data_title = (f"SYNTHETIC data ({SYNTHETIC_DESCRIPTION})" if synthetic
                  else os.path.basename(os.path.normpath(os.path.abspath(data))))
    plot_history(history, path=os.path.join(output, "curves.png"),
                 title=f"cats/dogs network on {data_title}, run "
                       f"{os.path.basename(os.path.normpath(output))}")
    atomic_write_text(os.path.join(output, "results.json"), json.dumps(results, indent=2))
    if verbose:
        print(f"validation accuracy per epoch: "
              f"{[round(a, 4) for a in history.history['val_accuracy']]}; "
              f"{results['seconds_per_epoch']} s/epoch; run folder: {output}", file=sys.stderr)
    return results


def _progress_bar(total, description):
    """A tqdm bar on stderr counting images (hidden when stderr is not a terminal)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="image", file=sys.stderr, disable=None)


def predict_folder(model, folder, image_size=150, batch_size=32, progress=False):
    """Probabilities of "dog" for Kaggle's unlabelled test images ``1.jpg, 2.jpg, ...``.

    Returns ``(ids, probabilities)`` sorted by id. The model's output is the
    tutorial's 2-unit softmax (cats=0, dogs=1) or a 1-unit sigmoid.
    ``progress=True`` shows a progress bar on stderr.
    """
    import contextlib

    from .data import list_test_images, load_images

    ids, paths = list_test_images(folder)
    if not paths:
        raise FileNotFoundError(f"no test images named <id>.jpg in {folder!r}")
    probabilities = np.empty(len(paths), dtype=np.float32)
    chunk = 256         # decode a chunk at a time: memory stays bounded
    with (_progress_bar(len(paths), "predict") if progress
          else contextlib.nullcontext()) as bar:
        for start in range(0, len(paths), chunk):
            part = paths[start:start + chunk]
            images, failed = load_images(part, (image_size, image_size))
            output = model.predict(images / np.float32(255), batch_size=batch_size)
            probabilities[start:start + len(part)] = output[:, -1]
            for path in failed:     # already warned about; an unreadable photo gets "unsure"
                probabilities[start + part.index(path)] = 0.5
            if bar is not None:
                bar.update(len(part))
    return ids, probabilities


def write_kaggle_submission(model_path, test_dir, output_csv, image_size=None, batch_size=32,
                            progress=False):
    """Predict Kaggle's test folder with a saved model and write ``id,label`` (P(dog)).
    ``progress=True`` shows a progress bar on stderr."""
    from .data import write_submission

    model = load_model(model_path)
    image_size = image_size or model.input_shape[1]   # (None, H, W, C)
    ids, probabilities = predict_folder(model, test_dir, image_size, batch_size, progress)
    write_submission(ids, probabilities, output_csv)
    return len(ids)
