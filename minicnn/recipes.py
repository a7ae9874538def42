"""Training recipes chosen by name (issue 18): data, model, augmentation, optimizer,
schedule and epochs, in one place, run from the API or the command line.

    from minicnn import recipes
    recipes.names("fashion_mnist")          # ['fashion_bn_wide', 'fashion_tutorial', ...]
    results = recipes.run_recipe("fashion_tutorial", output="runs/tutorial")

    python examples/recipes.py fashion_tutorial --output runs/tutorial

A run writes a run folder (``minicnn.runs``): config.json (the recipe), history.json/csv,
curves.png, log.csv (CSVLogger), logs/ (TensorBoard) and results.json (best and final
validation accuracy, validation log loss, test accuracy where a test set exists, epochs,
seconds per epoch, parameters, the command). :func:`accuracy_table` builds
``examples/output/accuracy.json`` from committed run folders.
"""
from __future__ import annotations

import glob
import json
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from . import layers as L
from .flops import forward_gflops
from .io_utils import atomic_write_text
from .models import Sequential

FASHION = "fashion_mnist"
CATS_DOGS = "cats_dogs_scratch"
KAGGLE_EPSILON = 1e-15          # Kaggle's clipping of probabilities in its log loss


@dataclass(frozen=True)
class Recipe:
    """What to train and how. ``model`` builds the (uncompiled) network; ``optimizer``
    gets the number of training steps of the whole run (for schedules); ``augmentation``
    holds ``ImageDataGenerator`` arguments (None: the images as they are); ``callbacks``
    makes extra callbacks (ReduceLROnPlateau...)."""
    name: str
    task: str
    description: str
    model: Callable[[], Sequential]
    optimizer: Callable[[int], object]
    epochs: int
    batch_size: int = 64
    augmentation: Optional[dict] = None
    callbacks: Callable[[], list] = field(default=lambda: [])
    input_shape: tuple = (28, 28, 1)
    validation_split: float = 0.2
    seed: int = 0

    def config(self, steps_per_epoch=100, epochs=None) -> dict:
        """The recipe as JSON: its settings, optimizer (its schedule over ``epochs`` of
        ``steps_per_epoch``) and layers."""
        epochs = self.epochs if epochs is None else epochs
        optimizer = self.optimizer(steps_per_epoch * epochs)
        return {"recipe": self.name, "task": self.task, "description": self.description,
                "epochs": epochs, "batch_size": self.batch_size,
                "augmentation": self.augmentation, "input_shape": list(self.input_shape),
                "validation_split": self.validation_split, "seed": self.seed,
                "optimizer": {"class_name": type(optimizer).__name__,
                              "config": optimizer.get_config()},
                "callbacks": [type(c).__name__ for c in self.callbacks()],
                "layers": self.model().get_config()["layers"]}


REGISTRY: dict = {}


def register(recipe: Recipe) -> Recipe:
    if recipe.name in REGISTRY:
        raise ValueError(f"a recipe named {recipe.name!r} is already registered")
    REGISTRY[recipe.name] = recipe
    return recipe


def get(name) -> Recipe:
    if isinstance(name, Recipe):
        return name
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no recipe named {name!r}; known: {', '.join(sorted(REGISTRY))}") \
            from None


def names(task=None) -> list:
    return sorted(n for n, r in REGISTRY.items() if task is None or r.task == task)


# -- models -----------------------------------------------------------------------------
def fashion_tutorial_model():
    """The DataCamp Fashion-MNIST tutorial's network, layer for layer (356,234 parameters)."""
    def block(filters, rate, **first):
        return [L.Conv2D(filters, (3, 3), activation="linear", padding="same", **first),
                L.LeakyReLU(negative_slope=0.1), L.MaxPooling2D((2, 2), padding="same"),
                L.Dropout(rate)]
    return Sequential([*block(32, 0.25, input_shape=(28, 28, 1)), *block(64, 0.25),
                       *block(128, 0.4), L.Flatten(), L.Dense(128, activation="linear"),
                       L.LeakyReLU(negative_slope=0.1), L.Dropout(0.3),
                       L.Dense(10, activation="softmax")], name="fashion_tutorial")


def conv_bn(filters, **first):
    """Conv2D (no bias: BatchNormalization's beta replaces it) + BatchNormalization + ReLU."""
    return [L.Conv2D(filters, 3, padding="same", use_bias=False, **first),
            L.BatchNormalization(), L.ReLU()]


def fashion_bn_model(rates=(0.25, 0.25, 0.4), dense=128, dense_rate=0.3, name="fashion_bn"):
    """The tutorial's net with BatchNormalization after every conv and the dense layer;
    ``rates``: the dropout after each of the three blocks."""
    def block(filters, rate, **first):
        return [*conv_bn(filters, **first), L.MaxPooling2D(2, padding="same"), L.Dropout(rate)]
    return Sequential([*block(32, rates[0], input_shape=(28, 28, 1)), *block(64, rates[1]),
                       *block(128, rates[2]), L.Flatten(), L.Dense(dense, use_bias=False),
                       L.BatchNormalization(), L.ReLU(), L.Dropout(dense_rate),
                       L.Dense(10, activation="softmax")], name=name)


def fashion_bn_light_model():
    """fashion_bn with lighter dropout (0.1, 0.1, 0.2 after the blocks) and dense 256 + 0.4."""
    return fashion_bn_model((0.1, 0.1, 0.2), dense=256, dense_rate=0.4, name="fashion_bn_light")


def fashion_bn_wide_model():
    """Two conv+BN layers per block (32, 32 | 64, 64), dropout 0.2 after each block,
    dense 256 + BN + dropout 0.4: a VGG-style net."""
    return Sequential([*conv_bn(32, input_shape=(28, 28, 1)), *conv_bn(32),
                       L.MaxPooling2D(2), L.Dropout(0.2),
                       *conv_bn(64), *conv_bn(64), L.MaxPooling2D(2), L.Dropout(0.2),
                       L.Flatten(), L.Dense(256, use_bias=False), L.BatchNormalization(),
                       L.ReLU(), L.Dropout(0.4), L.Dense(10, activation="softmax")],
                      name="fashion_bn_wide")


def cats_dogs_model(widths=(32, 32, 64), batchnorm=False, gap=False, dense=64, size=150,
                    dense_batchnorm=False):
    """The Keras blog's cats/dogs net (three conv + pool blocks, dense 64, dropout 0.5),
    optionally with BatchNormalization (after the convs; ``dense_batchnorm``: after the
    hidden Dense too), other widths and global average pooling."""
    stack = []
    for i, filters in enumerate(widths):
        first = {"input_shape": (size, size, 3)} if i == 0 else {}
        stack += conv_bn(filters, **first) if batchnorm else \
            [L.Conv2D(filters, 3, padding="same", activation="relu", **first)]
        stack.append(L.MaxPooling2D(2))
    head = [L.GlobalAveragePooling2D()] if gap else [L.Dropout(0.25), L.Flatten()]
    hidden = [L.Dense(dense, use_bias=False), L.BatchNormalization(), L.ReLU()] \
        if dense_batchnorm else [L.Dense(dense, activation="relu")]
    return Sequential([*stack, *head, *hidden, L.Dropout(0.5),
                       L.Dense(2, activation="softmax")], name="cats_dogs")


# -- optimizers -------------------------------------------------------------------------
def adam(learning_rate=1e-3):
    from .optimizers import Adam
    return lambda steps: Adam(learning_rate)


def adam_cosine(learning_rate=1e-3, alpha=0.01):
    from .optimizers import Adam
    from .optimizers.schedules import CosineDecay
    return lambda steps: Adam(CosineDecay(learning_rate, decay_steps=steps, alpha=alpha))


def sgd_tutorial(learning_rate=0.01, epochs=50):
    from .optimizers import SGD
    return lambda steps: SGD(learning_rate, momentum=0.9, decay=learning_rate / epochs)


# -- the recipes ------------------------------------------------------------------------
CATS_DOGS_AUGMENTATION = {"shear_range": 0.2, "zoom_range": 0.2, "horizontal_flip": True}
STRONG_AUGMENTATION = {"rotation_range": 20, "width_shift_range": 0.15,
                       "height_shift_range": 0.15, "shear_range": 0.2, "zoom_range": 0.2,
                       "horizontal_flip": True}

register(Recipe("fashion_tutorial", FASHION, "the DataCamp tutorial's net: conv 32-64-128 "
                "with LeakyReLU(0.1), max pooling and dropout, dense 128, Adam(), batch 64",
                fashion_tutorial_model, adam(), epochs=20))
register(Recipe("fashion_bn", FASHION, "the tutorial's net with BatchNormalization after each "
                "conv and the dense layer, ReLU, horizontal flips, Adam with cosine decay",
                fashion_bn_model, adam_cosine(), epochs=15,
                augmentation={"horizontal_flip": True}))
register(Recipe("fashion_bn_light", FASHION, "fashion_bn with lighter dropout (it underfits: "
                "training accuracy below validation), dense 256, 12 epochs",
                fashion_bn_light_model, adam_cosine(), epochs=12,
                augmentation={"horizontal_flip": True}))
register(Recipe("fashion_bn_wide", FASHION, "two conv+BatchNormalization layers per block "
                "(32,32 | 64,64), dropout 0.2 after each block, dense 256 + dropout 0.4, "
                "horizontal flips, Adam with cosine decay, 20 epochs (with shifts of 10% and "
                "dropout 0.25/0.25/0.5 it was at 90.2% validation after 7 of 15 epochs, 2 "
                "points behind fashion_bn_light: stopped)", fashion_bn_wide_model,
                adam_cosine(), epochs=20, augmentation={"horizontal_flip": True}))

# The from-scratch ladder of issue 18 on the 8,000/2,000 split of the cats/dogs photos:
# each recipe one step from the one before it. After the baseline the photos are 128x128
# and the middle steps train 25 epochs, so that each fits in about half an hour here.
LADDER_EPOCHS = 25
register(Recipe("cats_dogs_tutorial", CATS_DOGS, "baseline: the Keras blog's net (conv "
                "32-32-64, dense 64), SGD 0.01 momentum 0.9 with time decay, shear/zoom/flip",
                cats_dogs_model, sgd_tutorial(), 50, batch_size=32,
                augmentation=CATS_DOGS_AUGMENTATION, input_shape=(150, 150, 3)))


def ladder128_model(gap=False):
    """The ladder's middle steps: the tutorial's net with BatchNormalization after each
    conv and the hidden Dense, on 128x128 photos (``gap``: global average pooling
    instead of Dropout and Flatten)."""
    return cats_dogs_model(batchnorm=True, size=128, dense_batchnorm=True, gap=gap)


for _name, _description, _model, _optimizer, _augmentation in (
        ("cats_dogs_bn128", "+ BatchNormalization after each conv and the hidden Dense, "
         f"128x128 photos, {LADDER_EPOCHS} epochs (after the convs alone, SGD 0.01 left 94% "
         "of the Dense's ReLUs dead within 25 steps: 50.00% validation for two epochs, "
         "stopped)", ladder128_model, sgd_tutorial(), CATS_DOGS_AUGMENTATION),
        ("cats_dogs_adam128", "+ Adam with cosine decay (1e-3 to 1e-5)", ladder128_model,
         adam_cosine(), CATS_DOGS_AUGMENTATION),
        ("cats_dogs_strong_aug128", "+ stronger augmentation (rotation 20, shifts 15%, "
         "shear, zoom, flips)", ladder128_model, adam_cosine(), STRONG_AUGMENTATION),
        ("cats_dogs_gap128", "+ global average pooling instead of Dropout and Flatten",
         lambda: ladder128_model(gap=True), adam_cosine(), STRONG_AUGMENTATION)):
    register(Recipe(_name, CATS_DOGS, _description, _model, _optimizer, LADDER_EPOCHS,
                    batch_size=32, augmentation=_augmentation, input_shape=(128, 128, 3)))
# The last step trades early width for depth: five blocks starting at half the width
# (16-32-64-128-256), 0.165 GFLOP per image, trained 60 epochs. One more pooling, so that
# the last convolution sees twice as much of the photo.
register(Recipe("cats_dogs_deep128", CATS_DOGS, "+ five narrower blocks (conv 16-32-64-128-256 "
                "with BatchNormalization), dense 128 without BatchNormalization, 60 epochs",
                lambda: cats_dogs_model((16, 32, 64, 128, 256), batchnorm=True, gap=True,
                                        dense=128, size=128),
                adam_cosine(), 60, batch_size=32, augmentation=STRONG_AUGMENTATION,
                input_shape=(128, 128, 3)))


# -- running ----------------------------------------------------------------------------
def log_loss(y_true, probabilities, eps=KAGGLE_EPSILON):
    """Kaggle's multi-class log loss: probabilities clipped to [eps, 1 - eps], rows
    renormalised, the mean of -log(p of the true class)."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), eps, 1 - eps)
    p /= p.sum(axis=1, keepdims=True)
    true = np.asarray(y_true).argmax(axis=1)
    return float(-np.mean(np.log(p[np.arange(len(true)), true])))


def fashion_data(recipe, arrays=None):
    """``(train, validation, test)`` pairs: /255, (N, 28, 28, 1), one-hot, seeded split."""
    from .data import train_validation_split
    from .utils import to_categorical
    if arrays is None:
        from .datasets import fashion_mnist
        arrays = fashion_mnist.load_data()
    (x_train, y_train), (x_test, y_test) = arrays
    scale = lambda x: (np.asarray(x, np.float32) / 255.0)[..., None]   # noqa: E731
    train, validation = train_validation_split(
        scale(x_train), to_categorical(y_train, 10),
        validation_split=recipe.validation_split, seed=recipe.seed)
    return train, validation, (scale(x_test), to_categorical(y_test, 10))


def cats_dogs_data(recipe, data=None, workdir="runs"):
    """Iterators over a train/validation split of the photos (``tutorial.prepare_split``):
    Kaggle's train folder is organised (links) into a seeded split under ``workdir``
    first, the split ``minicnn organize --n 10000 --ratio 0.2`` makes, reused by every
    recipe and kept out of the run folders. No test set."""
    from . import tutorial
    from .data import ImageDataGenerator
    folder = tutorial.find_data(data)
    if folder is None:
        raise FileNotFoundError(f"no cats/dogs photos; {tutorial.DATA_HELP}")
    split = tutorial.prepare_split(folder, workdir, n=10000, ratio=recipe.validation_split,
                                   seed=recipe.seed)
    size = tuple(recipe.input_shape[:2])
    flow = dict(target_size=size, batch_size=recipe.batch_size, class_mode="categorical")
    train = ImageDataGenerator(rescale=1 / 255, **(recipe.augmentation or {})) \
        .flow_from_directory(os.path.join(split, "train"), shuffle=True, seed=recipe.seed, **flow)
    validation = ImageDataGenerator(rescale=1 / 255).flow_from_directory(
        os.path.join(split, "validation"), shuffle=False, **flow)
    return train, validation, None


def _predict_all(model, data, batch_size, mirrored=False):
    """Probabilities and one-hot labels of an array pair or a (non-shuffled) iterator;
    ``mirrored``: of the images flipped left to right."""
    flip = (lambda x: x[:, :, ::-1]) if mirrored else (lambda x: x)     # noqa: E731
    if isinstance(data, tuple):
        return model.predict(flip(data[0]), batch_size=batch_size), data[1]
    batches = [next(data) for _ in range(len(data))]
    return (np.concatenate([model.predict(flip(x), batch_size=batch_size)
                            for x, _ in batches]),
            np.concatenate([y for _, y in batches]))


def run_recipe(name, output=None, force=False, data=None, epochs=None, verbose=2,
               command=None, tensorboard=True,
               hint="choose another folder or pass force=True to replace them") -> dict:
    """Train recipe ``name`` and write its run folder (``output``; None: a new
    ``runs/<name>-<date>-<time>``; a non-empty folder is refused unless ``force``).
    ``data``: Fashion-MNIST's ``load_data()`` arrays (default: the installed files) or
    the cats/dogs folder. ``epochs`` overrides the recipe's. Returns results.json's dict."""
    from .callbacks import CSVLogger, TensorBoard
    from .data import ImageDataGenerator
    from .random import set_seed
    from .runs import prepare_run_folder, save_run
    from .viz import plot_history

    recipe = get(name)
    output = prepare_run_folder(output, recipe.name, force=force, hint=hint)
    epochs = recipe.epochs if epochs is None else int(epochs)
    set_seed(recipe.seed)
    if recipe.task == FASHION:
        train, validation, test = fashion_data(recipe, data)
        steps = -(-len(train[0]) // recipe.batch_size)
        if recipe.augmentation:
            source = ImageDataGenerator(**recipe.augmentation).flow(
                *train, batch_size=recipe.batch_size, seed=recipe.seed)
            fit_data = dict(x=source, steps_per_epoch=steps)
        else:
            fit_data = dict(x=train[0], y=train[1], batch_size=recipe.batch_size)
    else:
        train, validation, test = cats_dogs_data(recipe, data)
        steps = len(train)
        fit_data = dict(x=train)
    model = recipe.model()
    model.compile(recipe.optimizer(steps * epochs), "categorical_crossentropy", ["accuracy"])
    callbacks = [*recipe.callbacks(), CSVLogger(os.path.join(output, "log.csv"))]
    if tensorboard:
        callbacks.append(TensorBoard(os.path.join(output, "logs")))
    start = time.perf_counter()
    history = model.fit(**fit_data, epochs=epochs, validation_data=validation,
                        callbacks=callbacks, verbose=verbose)
    seconds = time.perf_counter() - start
    logs = history.history
    probabilities, truth = _predict_all(model, validation, 500)
    results = {
        "recipe": recipe.name, "task": recipe.task, "description": recipe.description,
        "epochs": len(logs["loss"]),
        "best_val_accuracy": round(max(logs["val_accuracy"]), 4),
        "best_epoch": int(np.argmax(logs["val_accuracy"])) + 1,
        "final_val_accuracy": round(logs["val_accuracy"][-1], 4),
        "val_log_loss": round(log_loss(truth, probabilities), 4),
        "test_accuracy": None,
        "seconds": round(seconds, 1),
        "seconds_per_epoch": round(seconds / max(len(logs["loss"]), 1), 1),
        "parameters": model.count_params(),
        "train_samples": len(train[0]) if isinstance(train, tuple) else train.samples,
        "validation_samples": len(truth),
        "command": command or f"python examples/recipes.py {recipe.name}",
    }
    if recipe.augmentation and recipe.augmentation.get("horizontal_flip"):
        # Test-time augmentation, reported beside (never instead of) the plain accuracy:
        # the mean of the probabilities of each photo and of its mirror image.
        mirrored, _ = _predict_all(model, validation, 500, mirrored=True)
        averaged = (probabilities + mirrored) / 2
        results["val_accuracy_flip_averaged"] = round(
            float(np.mean(averaged.argmax(1) == truth.argmax(1))), 4)
        results["val_log_loss_flip_averaged"] = round(log_loss(truth, averaged), 4)
    if test is not None:
        p_test, y_test = _predict_all(model, test, 500)
        results["test_accuracy"] = round(float(np.mean(p_test.argmax(1) == y_test.argmax(1))), 4)
        results["test_log_loss"] = round(log_loss(y_test, p_test), 4)
    save_run(output, history, recipe.config(steps, epochs), model=model)    # model.h5: not for git
    plot_history(history, path=os.path.join(output, "curves.png"), title=recipe.name)
    atomic_write_text(os.path.join(output, "results.json"), json.dumps(results, indent=2) + "\n")
    results["output"] = output
    return results


# -- examples/output/accuracy.json ------------------------------------------------------
ROW_KEYS = ("recipe", "best_val_accuracy", "final_val_accuracy", "val_log_loss",
            "val_accuracy_flip_averaged", "test_accuracy", "epochs", "seconds_per_epoch",
            "parameters", "gflops_per_image", "validation_samples", "command")


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _recipe_row(results):
    row = {k: results.get(k) for k in ROW_KEYS}
    if results["recipe"] in REGISTRY:                 # the model's size, from its recipe
        model = get(results["recipe"]).model()
        row["parameters"] = model.count_params()
        row["gflops_per_image"] = forward_gflops(model)
    return row


def _vgg16_rows(folder, results):
    """One row per run of ``examples/cats_dogs_vgg16.py`` (the head, the fine-tuning),
    with the size of VGG16's base plus the tutorial's head (Dense 512, 256, 1)."""
    from .applications import VGG16
    size = results["image_size"]
    base = VGG16(weights=None, input_shape=(*size, 3))
    head = Sequential([L.Flatten(input_shape=base.output_shape[1:]), L.Dense(512),
                       L.Dense(256), L.Dense(1)])
    splits = [split for mode in results["extraction"].values() for split in mode.values()]
    # Features loaded from the cache took no time here: their time is the run's that made them.
    computed = [split["seconds"] for split in splits if not split.get("cached")]
    rows = []
    for name, run in results["runs"].items():
        history = os.path.join(folder, f"history_{name}.json")
        rows.append(dict(
            recipe=f"vgg16_{size[0]}px_{name}", best_val_accuracy=run["best_val_accuracy"],
            final_val_accuracy=run["final_val_accuracy"], val_log_loss=run.get("val_log_loss"),
            val_accuracy_flip_averaged=None, test_accuracy=None,
            epochs=len(_read_json(history)["loss"]) if os.path.isfile(history)
            else results["epochs"],
            seconds_per_epoch=None, parameters=base.count_params() + head.count_params(),
            gflops_per_image=round(forward_gflops(base) + forward_gflops(head), 3),
            train_seconds=run["train_seconds"],
            extraction_seconds=round(sum(computed), 1) if computed else None,
            features_cached=any(split.get("cached") for split in splits),
            validation_samples=round(results["n"] * results["ratio"]),
            command=results.get("command") or
            f"python examples/cats_dogs_vgg16.py --data {results['data']} --n {results['n']} "
            f"--ratio {results['ratio']} --epochs {results['epochs']}",
            **({"earlier_run": True} if results["n"] < 10000 else {})))
    return rows


def accuracy_table(root="examples/output") -> dict:
    """Per task, one row per committed run: the recipe runs (``*_recipes/*/results.json``,
    in the order the recipes are registered),
    the VGG16 runs (``vgg16*/results.json``) and the earlier from-scratch run, made before
    recipes existed (``cats_dogs_scratch/``, marked ``earlier_run``). Parameters and
    GFLOP per image are counted from the recipe's model."""
    table = {FASHION: [], CATS_DOGS: [], "cats_dogs_vgg16": []}
    if os.path.isfile(os.path.join(root, "cats_dogs_scratch", "results.json")):
        r = _read_json(os.path.join(root, "cats_dogs_scratch", "results.json"))
        history = _read_json(os.path.join(root, "cats_dogs_scratch", "history.json"))
        model = cats_dogs_model()
        # No model was kept to predict with: its last epoch's validation loss is the same
        # cross-entropy of the same final model, clipped as Keras clips it (1e-7, not 1e-15).
        table[CATS_DOGS].append(dict(
            recipe="cats_dogs_tutorial", best_val_accuracy=r["best_val_accuracy"],
            final_val_accuracy=r["final_val_accuracy"],
            val_log_loss=round(history["history"]["val_loss"][-1], 4),
            val_log_loss_of="the last epoch's val_loss (probabilities clipped to 1e-7)",
            val_accuracy_flip_averaged=None, test_accuracy=None, epochs=r["epochs_run"],
            seconds_per_epoch=r["seconds_per_epoch"], parameters=model.count_params(),
            gflops_per_image=forward_gflops(model), validation_samples=r["validation_samples"],
            command="python examples/cats_dogs_scratch.py --data ../shared/data/cats_dogs/train "
                    "--n 10000 --ratio 0.2 --epochs 50 --patience 10", earlier_run=True))
    runs = [_read_json(path) for path in
            sorted(glob.glob(os.path.join(root, "*_recipes", "*", "results.json")))]
    order = list(REGISTRY)       # as registered: the ladder's steps in turn
    for results in sorted(runs, key=lambda r: (order.index(r["recipe"]) if r["recipe"] in
                                               REGISTRY else len(order), r["recipe"])):
        table[results["task"]].append(_recipe_row(results))
    for path in sorted(glob.glob(os.path.join(root, "vgg16*", "results.json"))):
        table["cats_dogs_vgg16"] += _vgg16_rows(os.path.dirname(path), _read_json(path))
    return table


TASK_TITLES = {FASHION: "Fashion-MNIST (48,000 / 12,000, test 10,000)",
               CATS_DOGS: "cats/dogs from scratch (8,000 / 2,000 photos)",
               "cats_dogs_vgg16": "cats/dogs, VGG16 ImageNet features"}


def accuracy_markdown(table) -> str:
    """The README's table of ``accuracy_table``'s rows (percentages, one line per run)."""
    def percent(value):
        return "" if value is None else f"{100 * value:.2f}%"

    def number(value, digits=0):
        return "" if value is None else f"{value:,.{digits}f}"

    lines = ["| task | run | epochs | best / final validation | validation, flip-averaged | "
             "validation log loss | test | s/epoch | parameters | GFLOP/image |",
             "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for task, rows in table.items():
        for row in rows:
            earlier = " (earlier run)" if row.get("earlier_run") else ""
            seconds = number(row["seconds_per_epoch"], 1)
            if row.get("train_seconds") is not None:       # VGG16: the features dominate
                extraction = "features cached" if row["extraction_seconds"] is None else (
                    f"features once: {row['extraction_seconds']:,.0f} s"
                    + (", part cached" if row.get("features_cached") else ""))
                seconds = f"{row['train_seconds'] / max(row['epochs'], 1):.1f} ({extraction})"
            lines.append(
                f"| {TASK_TITLES[task]} | `{row['recipe']}`{earlier} | {row['epochs']} | "
                f"{percent(row['best_val_accuracy'])} / {percent(row['final_val_accuracy'])} "
                f"of {row['validation_samples']:,} | {percent(row['val_accuracy_flip_averaged'])} | "
                f"{number(row['val_log_loss'], 3)} | {percent(row['test_accuracy'])} | "
                f"{seconds} | {number(row['parameters'])} | "
                f"{number(row['gflops_per_image'], 3)} |")
    return "\n".join(lines) + "\n"


def write_accuracy_json(root="examples/output", path=None) -> str:
    if not os.path.isdir(root):
        raise NotADirectoryError(f"no folder {root!r} of committed runs (expected "
                                 f"examples/output or a folder like it)")
    path = path or os.path.join(root, "accuracy.json")
    atomic_write_text(path, json.dumps(accuracy_table(root), indent=2) + "\n")
    return path


__all__ = ["Recipe", "REGISTRY", "accuracy_markdown", "accuracy_table", "get", "log_loss", "names", "register",
           "run_recipe", "write_accuracy_json"]
