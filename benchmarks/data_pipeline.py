"""Images per second of the flow_from_directory pipeline, with and without augmentation.

    flock /tmp/minicnn-heavy.lock python -m benchmarks.data_pipeline [--data DIR] [--n 2000]

The tutorial's setting: 150 x 150 targets, batch 32, class_mode "binary", and
for the augmented runs ImageDataGenerator(rescale=1/255, shear_range=0.2,
zoom_range=0.2, horizontal_flip=True). Reads the real photos from ``--data``
(a Kaggle-style folder of cat.N.jpg / dog.N.jpg; default $MINICNN_DATA) through
a temporary split made by ``organize_kaggle_split`` (symlinks in /tmp), or
generated 200 x 200 JPEGs when neither is given. Files are read once before timing
so that the disk cache does not count. Also times each stage of one image on one
thread (decode, resize, transform, copy), to show where the time goes.

Writes data_pipeline_<machine>.json and .md into a new runs/data_pipeline-<date>-<time>
folder, into --out DIR, or with --write into benchmarks/results/ (the committed results).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import tempfile
import time

import numpy as np
import PIL
from PIL import Image

from minicnn.bench.output import (add_output_options, command_line,  # noqa: F401
                                  cpu_model, machine_name, output_folder)
from minicnn.data import ImageDataGenerator, organize_kaggle_split, write_shapes_directory
from minicnn.data.iterator import INTERPOLATIONS, default_workers
from minicnn.io_utils import atomic_write_text
from minicnn import locate

DATA_VARIABLE = locate.DATA_VARIABLE
TARGET = (150, 150)
BATCH = 32
TARGET_IMAGES_PER_S = 400


def find_photos(data):
    """``(folder, how results name it)`` from --data, else $MINICNN_DATA; (None, None)
    when neither is given. A folder given but missing is an error."""
    return locate.find_kaggle_photos(data) or (None, None)


# -- the data pipeline ------------------------------------------------------------------
def tutorial_generator():
    return ImageDataGenerator(rescale=1 / 255, shear_range=0.2, zoom_range=0.2,
                              horizontal_flip=True)


def prepare_data(data, name, n, workdir):
    """A ``train/{cats,dogs}`` tree of ``n`` images in ``workdir`` from the photos in
    ``data`` (named ``name`` in the results) or, when None, generated; describes it."""
    if data:
        summary = organize_kaggle_split(data, workdir, n=n, ratio=0.0, seed=0)
        return os.path.join(workdir, "train"), f"{name} (first split of {n}: {summary['train']})"
    write_shapes_directory(workdir, n_train=n, n_validation=2, size=200)
    return os.path.join(workdir, "train"), f"generated 200x200 JPEGs ({n})"


def warm_file_cache(folder):
    for root, _, files in os.walk(folder, followlinks=True):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                f.read()


def images_per_second(folder, augment, workers, epochs=2):
    """Throughput of whole epochs (after two warm-up batches), as a consumer sees it."""
    gen = tutorial_generator() if augment else ImageDataGenerator(rescale=1 / 255)
    with gen.flow_from_directory(folder, target_size=TARGET, batch_size=BATCH,
                                 class_mode="binary", seed=0, workers=workers) as it:
        next(it)
        next(it)
        it.reset()
        count, start, cpu_start = 0, time.perf_counter(), time.process_time()
        for _ in range(epochs):
            for x, _ in it.epoch():
                count += len(x)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start          # all threads of this process
    return count / elapsed, count, elapsed, 1000 * cpu / count


def stage_profile(paths, augment=True):
    """CPU milliseconds per image of each stage on one thread (``time.thread_time``, so
    other processes on the machine do not inflate it); the sum is the serial cost."""
    gen = tutorial_generator()
    totals = dict.fromkeys(("open+decode", "convert+resize", "random params",
                            "affine transform", "copy into float32 batch"), 0.0)
    batch = np.empty((1,) + TARGET + (3,), np.float32)
    for path in paths:
        t0 = time.thread_time()
        with Image.open(path) as img:
            img.load()
            t1 = time.thread_time()
            img = img.convert("RGB").resize((TARGET[1], TARGET[0]), INTERPOLATIONS["nearest"])
            image = np.asarray(img)
        t2 = time.thread_time()
        params = gen.get_random_transform(image.shape, np.random.default_rng((0, 1, 0, 0)))
        t3 = time.thread_time()
        if augment:
            image = gen.apply_transform(image, params)
        t4 = time.thread_time()
        batch[0] = image
        batch *= np.float32(1 / 255)
        t5 = time.thread_time()
        for key, seconds in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            totals[key] += seconds
    return {key: 1000 * value / len(paths) for key, value in totals.items()}


def write_results(results, out_dir):
    stem = os.path.join(out_dir, f"data_pipeline_{results['machine']}")
    atomic_write_text(stem + ".json", json.dumps(results, indent=2))
    lines = [f"# Data pipeline throughput on {results['machine']}", "",
             f"- CPU: {results['cpu_model']} ({results['cpu_count']} cores visible)",
             f"- Python {results['python']}, NumPy {results['numpy']}, Pillow {results['pillow']}",
             f"- Data: {results['data']}",
             f"- Setting: target {TARGET[0]}x{TARGET[1]}, batch {BATCH}, class_mode binary, "
             f"shuffle, nearest resize; augmentation = rescale 1/255, shear 0.2, zoom 0.2, "
             f"horizontal flip",
             f"- Date: {results['date']}; command: `{results['command']}`",
             f"- 1-minute load average before/after: {results['load_average_before_after']} "
             "(the machine is shared: other jobs lower images/s; CPU ms/image is less "
             "sensitive)", "",
             "| augmentation | workers | images/s | CPU ms/image | images | seconds |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for run in results["runs"]:
        lines.append(f"| {'yes' if run['augment'] else 'no'} | {run['workers']}"
                     f"{' (default)' if run['default_workers'] else ''} | "
                     f"{run['images_per_s']:.0f} | {run['cpu_ms_per_image']:.2f} | "
                     f"{run['images']} | {run['seconds']:.2f} |")
    lines += ["", f"Target: at least {TARGET_IMAGES_PER_S} augmented images/s. "
              f"Best augmented: {results['best_augmented_images_per_s']:.0f} images/s.", "",
              "CPU cost per image of each stage, one thread (ms; `time.thread_time`):", "",
              "| stage | ms |", "| --- | ---: |"]
    lines += [f"| {stage} | {ms:.3f} |" for stage, ms in results["stage_ms"].items()]
    lines.append(f"| total | {sum(results['stage_ms'].values()):.3f} |")
    atomic_write_text(stem + ".md", "\n".join(lines) + "\n")
    return stem


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help=f"Kaggle-style folder of cat.N.jpg/dog.N.jpg (default: "
                        f"${DATA_VARIABLE}, else generated JPEGs)")
    parser.add_argument("--n", type=int, default=2000, help="images in the timed set")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per setting")
    add_output_options(parser, "data_pipeline")
    args = parser.parse_args(argv)
    try:
        data, data_name = find_photos(args.data)
    except FileNotFoundError as error:
        parser.exit(1, f"benchmarks.data_pipeline: {error}\n")

    load_before = os.getloadavg()
    workdir = tempfile.mkdtemp(prefix="minicnn-bench-data-")
    try:
        folder, described = prepare_data(data, data_name, args.n, workdir)
        warm_file_cache(folder)
        runs = []
        for augment in (False, True):
            for workers in sorted({1, 2, default_workers()}):
                rate, count, seconds, cpu_ms = images_per_second(folder, augment, workers,
                                                                 args.epochs)
                runs.append({"augment": augment, "workers": workers,
                             "default_workers": workers == default_workers(),
                             "images_per_s": rate, "images": count, "seconds": seconds,
                             "cpu_ms_per_image": cpu_ms})
                print(f"augment={augment!s:5} workers={workers}: {rate:7.0f} images/s, "
                      f"{cpu_ms:.2f} CPU ms/image")
        paths = sorted(os.path.join(root, name) for root, _, files in
                       os.walk(folder, followlinks=True) for name in files)[:300]
        stage_ms = stage_profile(paths)
        for stage, ms in stage_ms.items():
            print(f"  {stage:26s} {ms:.3f} ms/image")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)     # links only: the photos stay
    results = {
        "machine": machine_name(), "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
        "python": platform.python_version(), "numpy": np.__version__,
        "pillow": PIL.__version__, "data": described,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command_line("benchmarks.data_pipeline", argv),
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "target": list(TARGET), "batch_size": BATCH, "runs": runs, "stage_ms": stage_ms,
        "best_augmented_images_per_s": max(r["images_per_s"] for r in runs if r["augment"]),
    }
    stem = write_results(results, output_folder(args, "data_pipeline"))
    print(f"wrote {stem}.json and .md")
    return results


if __name__ == "__main__":
    main()
