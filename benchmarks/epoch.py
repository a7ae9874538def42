"""One whole epoch of the tutorial, as a user runs it: minicnn against Keras.

    flock /tmp/minicnn-heavy.lock python -m benchmarks.epoch --data DIR [--n 10000] [--write]

The step benchmark (``benchmarks.run``) times the network alone on one batch in
memory. An epoch also decodes, augments and batches the photos: the tutorial's
8,000 training photos (n=10000 at ratio 0.2) through ImageDataGenerator(rescale=1/255,
shear_range=0.2, zoom_range=0.2, horizontal_flip=True), 150x150, batch 32, then the
2,000 validation photos. Each framework runs its own generator with its defaults
(Keras 3: ``keras.src.legacy.preprocessing.image``, one loading thread; minicnn:
``minicnn.data``, its default worker threads) on the same split of the same files,
in a fresh process, one epoch after one warm-up epoch of 10 batches.

Keras trains the same network (with the tutorial's dropout) with SGD(0.01, momentum
0.9) and categorical cross-entropy; minicnn runs ``tutorial.train_cats_dogs``'s
model and optimizer. The photos: --data, else $MINICNN_DATA (Kaggle's train folder).
Writes epoch_<machine>.{json,md} into a new runs/epoch-<date>-<time> folder, into
--out DIR, or with --write into benchmarks/results/ (the committed results).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks.data_pipeline import (add_output_options, command_line, cpu_model, find_photos,
                                      machine_name, output_folder)

SIZE, BATCH, WARMUP_BATCHES = (150, 150), 32, 10
AUGMENT = {"rescale": 1 / 255, "shear_range": 0.2, "zoom_range": 0.2, "horizontal_flip": True}


def _timed_epoch(model, train, validation):
    """Seconds of one epoch of ``model.fit`` with validation (either framework: minicnn's
    fit follows Keras's), after a warm-up of ``WARMUP_BATCHES``; and the image counts."""
    model.fit(train, epochs=1, steps_per_epoch=WARMUP_BATCHES, verbose=0)
    start = time.perf_counter()
    model.fit(train, epochs=1, validation_data=validation, verbose=0)
    return {"seconds": time.perf_counter() - start, "train_images": train.samples,
            "validation_images": validation.samples}


def _flows(generator_class, split):
    """(train, validation) iterators over ``split`` from either framework's
    ImageDataGenerator (minicnn's follows Keras's API)."""
    train = generator_class(**AUGMENT).flow_from_directory(
        os.path.join(split, "train"), target_size=SIZE, batch_size=BATCH,
        class_mode="categorical", shuffle=True, seed=0)
    validation = generator_class(rescale=1 / 255).flow_from_directory(
        os.path.join(split, "validation"), target_size=SIZE, batch_size=BATCH,
        class_mode="categorical", shuffle=False)
    return train, validation


def run_minicnn(split):
    from minicnn.data import ImageDataGenerator
    from minicnn.tutorial import build_cats_dogs_model, compile_cats_dogs

    train, validation = _flows(ImageDataGenerator, split)
    model = compile_cats_dogs(build_cats_dogs_model((*SIZE, 3)), epochs=1)
    return _timed_epoch(model, train, validation)


def run_keras(split):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    from keras import layers
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    train, validation = _flows(ImageDataGenerator, split)
    model = keras.Sequential([
        keras.Input((*SIZE, 3)),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Dropout(0.25), layers.Flatten(), layers.Dense(64, activation="relu"),
        layers.Dropout(0.5), layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return {**_timed_epoch(model, train, validation), "keras": keras.__version__}


RUNNERS = {"minicnn": run_minicnn, "keras": run_keras}


def measure(framework, split):
    """Run one framework's epoch in a fresh process; its JSON result (or the error)."""
    command = [sys.executable, "-m", "benchmarks.epoch", "--run", framework, "--split", split]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"framework": framework, "error": (done.stderr or done.stdout)[-300:]}
    return {"framework": framework, **json.loads(lines[-1])}


def markdown(results):
    lines = [f"# One tutorial epoch on {results['machine']}", "",
             f"- CPU: {results['cpu_model']} ({results['cpu_count']} cores); "
             f"date {results['date']}",
             f"- Command: `{results['command']}`",
             f"- Data: {results['data']} (n={results['n']}, ratio 0.2), augmented as the "
             "tutorial, 150x150, batch 32; one epoch of training plus the validation pass, "
             "after a warm-up of 10 batches; each framework with its own generator", "",
             "| framework | epoch seconds | images/s (training + validation) |",
             "| --- | ---: | ---: |"]
    for r in results["runs"]:
        if "error" in r:
            lines.append(f"| {r['framework']} | failed: {r['error'][-80:]} | |")
            continue
        total = r["train_images"] + r["validation_images"]
        lines.append(f"| {r['framework']} | {r['seconds']:.1f} | {total / r['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a Kaggle train folder of cat.N.jpg / dog.N.jpg "
                        "(default: $MINICNN_DATA)")
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--frameworks", default="minicnn,keras")
    add_output_options(parser, "epoch")
    parser.add_argument("--run", choices=sorted(RUNNERS), help=argparse.SUPPRESS)
    parser.add_argument("--split", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:   # the child process: one framework, one JSON line
        print(json.dumps(RUNNERS[args.run](args.split)))
        return 0
    try:
        data, data_name = find_photos(args.data)
    except FileNotFoundError as error:
        print(f"benchmarks.epoch: {error}", file=sys.stderr)
        return 1
    if data is None:
        print("benchmarks.epoch: no photos given: pass --data (or set MINICNN_DATA), a Kaggle "
              "train folder of cat.N.jpg / dog.N.jpg", file=sys.stderr)
        return 1
    from minicnn.data import organize_kaggle_split

    with tempfile.TemporaryDirectory(prefix="minicnn-epoch-") as workdir:
        split = os.path.join(workdir, "split")
        organize_kaggle_split(data, split, n=args.n, ratio=0.2, seed=0)   # links
        runs = []
        for framework in args.frameworks.split(","):
            runs.append(measure(framework, split))
            print(f"{framework}: {runs[-1].get('seconds', runs[-1].get('error'))}", flush=True)
    results = {"machine": machine_name(), "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
               "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "command": command_line("benchmarks.epoch", argv),
               "data": data_name, "n": args.n, "runs": runs}
    stem = os.path.join(output_folder(args, "epoch"), f"epoch_{results['machine']}")
    from minicnn.io_utils import atomic_write_text

    atomic_write_text(stem + ".json", json.dumps(results, indent=2))
    atomic_write_text(stem + ".md", markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
