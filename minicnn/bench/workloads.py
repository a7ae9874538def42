"""The end-to-end workloads of the speed benchmark, one per fresh process.

Each workload builds the same network in one framework, runs a few warm-up
steps (compilation, caches, first-touch of memory), then times ``repeats``
steps and reports the median, with the process's peak memory:

    tutorial_train   one SGD step (forward, backward, update) of the cats vs dogs net
    tutorial_infer   its forward pass in inference mode
    vgg16_extract    VGG16's convolutional base, forward, inference mode (feature extraction)

The cats vs dogs net (Keras "cats vs dogs" tutorial, without its dropout):
Conv2D(32, 3x3, same, ReLU) MaxPool(2) Conv2D(32) MaxPool Conv2D(64) MaxPool
Flatten Dense(64, ReLU) Dense(2, softmax); 150x150x3 inputs; SGD(0.01, momentum 0.9).

Run by :mod:`minicnn.bench.runner` as ``python -m minicnn.bench.workloads FRAMEWORK
DEVICE WORKLOAD BATCH REPEATS`` (``python -m benchmarks.workloads`` in a checkout is the
same); prints one JSON line. Frameworks: minicnn, keras, torch (true float32),
torch-tf32 (PyTorch's GPU default: TF32 convolutions).
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time

import numpy as np

IMAGE_SHAPE = (150, 150, 3)
WORKLOADS = ("tutorial_train", "tutorial_infer", "vgg16_extract")
VGG16_BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


def _median_seconds(step, repeats, warmup, sync=lambda: None):
    """Median wall time of ``step()`` over ``repeats`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def _batch(batch, channels_first=False):
    rng = np.random.default_rng(0)
    x = rng.random((batch, *IMAGE_SHAPE), dtype=np.float32)
    y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, batch)]
    return (np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if channels_first else x), y


# -- minicnn ------------------------------------------------------------------------

def minicnn_tutorial_net():
    """The tutorial's network without its dropout layers (minicnn.tutorial's definition)."""
    import minicnn
    from minicnn.tutorial import build_cats_dogs_model

    minicnn.clear_session()
    return build_cats_dogs_model(IMAGE_SHAPE, dropout=False)


def minicnn_vgg16():
    """minicnn.applications.VGG16 with random weights (the speed does not depend on them)."""
    from minicnn.applications import VGG16

    return VGG16(weights=None, input_shape=IMAGE_SHAPE)


def run_minicnn(device, workload, batch, repeats, warmup):
    import minicnn
    from minicnn import SGD, backend

    backend.set_device(device)
    x, y = _batch(batch)
    xd, yd = backend.to_device(x), backend.to_device(y)
    sync = backend.synchronize
    if workload == "vgg16_extract":
        model = minicnn_vgg16()
        step = lambda: model.forward(xd, training=False)   # noqa: E731
    else:
        model = minicnn_tutorial_net()
        model.compile(SGD(0.01, momentum=0.9), "categorical_crossentropy", ["accuracy"])
        if workload == "tutorial_train":
            step = lambda: model.train_on_batch(xd, yd)   # noqa: E731
        else:
            step = lambda: model.forward(xd, training=False)   # noqa: E731
    seconds, times = _median_seconds(step, repeats, warmup, sync)
    extra = {"numba": minicnn.engine.cpu_kernels.usable(x)} if device == "cpu" else {}
    if device == "gpu":
        pool = backend.xp().get_default_memory_pool()
        extra["gpu_pool_bytes"] = int(pool.total_bytes())
    return seconds, times, extra


# -- Keras 3 on TensorFlow ------------------------------------------------------------

def run_keras(device, workload, batch, repeats, warmup):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    from keras import layers

    if device != "cpu":
        raise RuntimeError("the benchmark runs Keras on the CPU only (tensorflow-cpu)")
    x, y = _batch(batch)
    if workload == "vgg16_extract":
        model = keras.applications.VGG16(weights=None, include_top=False,
                                         input_shape=IMAGE_SHAPE)
        step = lambda: model.predict_on_batch(x)   # noqa: E731
    else:
        model = keras.Sequential([
            keras.Input(IMAGE_SHAPE),
            layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
            layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
            layers.Flatten(), layers.Dense(64, activation="relu"),
            layers.Dense(2, activation="softmax")])
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                      loss="categorical_crossentropy", metrics=["accuracy"])
        if workload == "tutorial_train":
            step = lambda: model.train_on_batch(x, y)   # noqa: E731
        else:
            step = lambda: model.predict_on_batch(x)   # noqa: E731
    seconds, times = _median_seconds(step, repeats, warmup)
    import tensorflow as tf

    return seconds, times, {"tensorflow": tf.__version__, "keras": keras.__version__}


# -- PyTorch --------------------------------------------------------------------------

def run_torch(device, workload, batch, repeats, warmup, tf32=False):
    """PyTorch with cuDNN's autotuner on. ``tf32=False`` keeps every product in true float32,
    as minicnn's are; PyTorch's default lets cuDNN convolutions use TF32 tensor cores
    (10-bit mantissas), which the "torch-tf32" rows measure."""
    import torch
    from torch import nn

    torch.set_num_threads(2 if device == "cpu" else torch.get_num_threads())
    dev = torch.device("cuda" if device == "gpu" else "cpu")
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    x_np, y_np = _batch(batch, channels_first=True)
    x = torch.from_numpy(x_np).to(dev)
    labels = torch.from_numpy(y_np.argmax(axis=1)).to(dev)
    sync = (lambda: torch.cuda.synchronize()) if device == "gpu" else (lambda: None)
    if workload == "vgg16_extract":
        layers, channels = [], 3
        for convs, filters in VGG16_BLOCKS:
            for _ in range(convs):
                layers += [nn.Conv2d(channels, filters, 3, padding=1), nn.ReLU(inplace=True)]
                channels = filters
            layers.append(nn.MaxPool2d(2))
        model = nn.Sequential(*layers).to(dev).eval()

        def step():
            with torch.inference_mode():
                return model(x)
    else:
        model = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 18 * 18, 64), nn.ReLU(), nn.Linear(64, 2)).to(dev)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()   # softmax + cross-entropy, on logits

        if workload == "tutorial_train":
            def step():
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(x), labels)
                loss.backward()
                optimizer.step()
                return loss.item()
        else:
            model.eval()

            def step():
                with torch.inference_mode():
                    return model(x)
    seconds, times = _median_seconds(step, repeats, warmup, sync)
    extra = {"torch": torch.__version__, "threads": torch.get_num_threads(), "tf32": tf32}
    if device == "gpu":
        extra["gpu_pool_bytes"] = int(torch.cuda.max_memory_reserved())
    return seconds, times, extra


def peak_rss_bytes():
    """This process's peak resident memory.

    VmHWM from /proc/self/status: unlike getrusage's ru_maxrss, which a child
    inherits from its parent at fork (and keeps across exec), it counts only
    this program.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024   # KiB on Linux


def run_torch_tf32(device, workload, batch, repeats, warmup):
    return run_torch(device, workload, batch, repeats, warmup, tf32=True)


RUNNERS = {"minicnn": run_minicnn, "keras": run_keras, "torch": run_torch,
           "torch-tf32": run_torch_tf32}


def main(argv=None):
    framework, device, workload, batch, repeats = (sys.argv[1:] if argv is None else argv)[:5]
    batch, repeats = int(batch), int(repeats)
    warmup = 1 if workload == "vgg16_extract" else 3
    seconds, times, extra = RUNNERS[framework](device, workload, batch, repeats, warmup)
    peak = peak_rss_bytes()
    print(json.dumps({"framework": framework, "device": device, "workload": workload,
                      "batch": batch, "seconds": seconds, "times": times,
                      "images_per_s": batch / seconds, "peak_rss_bytes": peak,
                      **extra}))


if __name__ == "__main__":
    main()
