"""A BatchNormalization net's training step with ReLU in one pass each way (the engine's
``relu_forward`` / ``relu_backward``) against the ReLU layer's own formula,
``where(x > 0, x, 0)`` forward and ``dout * (x > 0)`` backward, in the same run.

    python -m benchmarks.relu_layer [--repeats 7] [--write | --out DIR]

The nets: the cats/dogs tutorial's (150x150x3, batch 32) and the deep128 recipe's
(128x128x3), both with Conv2D + BatchNormalization + ReLU blocks
(``minicnn.recipes.cats_dogs_model``). The two ways alternate, step by step, so that a
busy machine slows both alike; the median of each is reported. Writes
relu_layer_<machine>.json and .md into a new runs/relu_layer-<date>-<time> folder, into
--out DIR, or with --write into benchmarks/results/.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

from minicnn import layers as L
from minicnn import recipes
from minicnn.bench.output import (add_output_options, command_line, cpu_model,
                                  machine_name, output_folder)
from minicnn.io_utils import atomic_write_text
from minicnn.optimizers import Adam

NETS = {"cats_dogs_tutorial_bn (150x150)": (lambda: recipes.cats_dogs_model(batchnorm=True), 150),
        "cats_dogs_deep128 (128x128)": (lambda: recipes.get("cats_dogs_deep128").model(), 128)}


class FormulaReLU(L.ReLU):
    """The ReLU layer as it was: its general formula even for the default settings."""

    def plain(self):
        return False


def with_formula_relu(model):
    """The same net (same weights) with every ReLU layer computed by its formula."""
    for i, layer in enumerate(model.layers):
        if type(layer) is L.ReLU:
            formula = FormulaReLU(name=layer.name)
            model.layers[i] = formula
    return model


def step_seconds(models, size, repeats, batch=32, seed=0):
    """{way: [seconds of each training step]}, the ways taking turns."""
    rng = np.random.default_rng(seed)
    x = rng.random((batch, size, size, 3), dtype=np.float32)
    y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, batch)]
    for model in models.values():
        model.compile(Adam(1e-3), "categorical_crossentropy")
        model.train_on_batch(x, y)            # build, compile the kernels, fill the caches
        model.train_on_batch(x, y)
    times = {way: [] for way in models}
    for _ in range(repeats):
        for way, model in models.items():
            start = time.perf_counter()
            model.train_on_batch(x, y)
            times[way].append(time.perf_counter() - start)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    add_output_options(parser, "relu_layer")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    rows = []
    for net, (build, size) in NETS.items():
        models = {"one pass (engine)": build(), "formula": with_formula_relu(build())}
        times = step_seconds(models, size, args.repeats)
        median = {way: statistics.median(t) for way, t in times.items()}
        rows.append({"net": net, "batch": 32,
                     "images_per_s": {w: round(32 / s, 1) for w, s in median.items()},
                     "speedup": round(median["formula"] / median["one pass (engine)"], 2)})
        print(rows[-1], flush=True)
    results = {"command": command_line("benchmarks.relu_layer", argv), "cpu": cpu_model(),
               "cores": os.cpu_count(), "repeats": args.repeats, "rows": rows}
    folder = output_folder(args, "relu_layer")
    base = os.path.join(folder, f"relu_layer_{machine_name()}")
    atomic_write_text(base + ".json", json.dumps(results, indent=1) + "\n")
    lines = [f"# ReLU in one pass vs the layer's formula: a training step ({results['cpu']}, "
             f"{results['cores']} cores)", "", f"`{results['command']}`; median of "
             f"{args.repeats} steps each, the two ways taking turns.", "",
             "| net | one pass (engine), images/s | formula, images/s | speed-up |",
             "| --- | ---: | ---: | ---: |"]
    lines += [f"| {r['net']} | {r['images_per_s']['one pass (engine)']} | "
              f"{r['images_per_s']['formula']} | {r['speedup']}x |" for r in rows]
    atomic_write_text(base + ".md", "\n".join(lines) + "\n")
    print(f"written: {base}.json, {base}.md")


if __name__ == "__main__":
    main()
