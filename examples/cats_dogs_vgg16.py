"""Cats vs dogs with VGG16's ImageNet features: the Keras tutorial's transfer learning.

    python examples/cats_dogs_vgg16.py --n 2000 --preprocess both
    python examples/cats_dogs_vgg16.py --n 2000 --fine-tune 2

1. Split Kaggle's ``train/`` folder (--data, else $MINICNN_DATA) into train/ and
   validation/ class folders of links under --work (minicnn.data.organize_kaggle_split);
   --n photos, --ratio for validation.
2. Run VGG16's convolutional base (ImageNet weights, --weights) over every photo
   once: the "bottleneck features". This is nearly all of the work (about 15 GFLOP
   per 150x150 photo), so the block4_pool outputs are cached on disk (--cache,
   default .minicnn_cache/features as for ``minicnn features``; an entry is reused
   only for the same photos, weights, preprocessing and code) and a re-run loads
   them; block5 (4% of the work) is run from them each time, which also lets
   --fine-tune train block5 without touching blocks 1-4 again.
3. Train the tutorial's classifier on the block5_pool features, for each
   preprocessing (--preprocess): "caffe", what the weights were trained with
   (BGR, ImageNet means subtracted) and "rescale", the tutorial's x/255.
   With --augmented-copies K the head trains on the training photos and K
   augmented copies of them (the Keras blog's fine-tuning augmentation: shear 0.2,
   zoom 0.2, horizontal flips), each copy one epoch of a seeded augmenting
   iterator, its features cached like the photos' (under the seed and epoch).
   Validation is always on the photos as they are.
4. --fine-tune EPOCHS: unfreeze block5 (block5_conv1..3) on top of the trained
   head, everything before it frozen, SGD(1e-4, momentum 0.9), as the Keras blog's
   fine-tuning step, on the same training features (with any augmented copies).

The weights are Keras's ``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`` (the
caffe-mode, BGR ImageNet weights), found at --weights, else $MINICNN_VGG16_WEIGHTS,
else in Keras's download folder: $KERAS_HOME/models/ or ~/.keras/models/, where
``keras.applications.VGG16(include_top=False)`` saves them.

The run folder (--output, default a new runs/cats_dogs_vgg16-<date>-<time>; an
existing non-empty one is refused unless --force) receives history_<run>.json/.csv,
curves_<run>.png, results.json (accuracies, extraction time, images/s, peak memory,
the command) and the trained models (*.h5, not for git).
"""
import argparse
import csv
import json
import os
import resource
import sys
import time

import numpy as np

import minicnn
from minicnn import viz
from minicnn import Dense, Dropout, Flatten, RMSprop, SGD, Sequential
from minicnn.applications import VGG16, extract_features
from minicnn.applications.features import cache_entry
from minicnn.data import ImageDataGenerator, organize_kaggle_split
from minicnn.io_utils import atomic_write_text
from minicnn.recipes import CATS_DOGS_AUGMENTATION, log_loss
from minicnn import locate
from minicnn.runs import portable_command, prepare_run_folder

OUTPUT_HINT = "choose another --output or pass --force to replace them"
IMAGE_SIZE = 150          # the tutorial's; the photos are 200x200
BLOCK5_START = "block5_conv1"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help=f"Kaggle train folder (default: "
                        f"${locate.DATA_VARIABLE}), or a folder with train/ and validation/ "
                        "class folders")
    parser.add_argument("--weights", help=f"Keras VGG16 notop weight file (.h5; default: "
                        f"${locate.VGG16_WEIGHTS_VARIABLE}, else {locate.VGG16_NOTOP_FILE} "
                        "in $KERAS_HOME/models or ~/.keras/models)")
    parser.add_argument("--n", type=int, default=4000, help="photos in all (4000)")
    parser.add_argument("--ratio", type=float, default=0.2, help="validation share (0.2)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=IMAGE_SIZE, metavar="PIXELS",
                        help=f"photos resized to PIXELS x PIXELS ({IMAGE_SIZE}, the "
                        "tutorial's; at least 32, VGG16's five poolings)")
    parser.add_argument("--lr", type=float, nargs="+", default=[1e-4],
                        help="RMSprop learning rate(s) for the head; several: one run each")
    parser.add_argument("--preprocess", choices=["caffe", "rescale", "both"], default="caffe")
    parser.add_argument("--augmented-copies", type=int, default=0, metavar="K",
                        help="also train on K augmented copies of the training photos "
                        "(shear 0.2, zoom 0.2, flips; each costs one more VGG16 pass over "
                        "them; 0: no)")
    parser.add_argument("--fine-tune", type=int, default=0, metavar="EPOCHS",
                        help="then fine-tune block5 for this many epochs (0: no)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="run folder (default: a new "
                        "runs/cats_dogs_vgg16-<date>-<time>)")
    parser.add_argument("--force", action="store_true",
                        help="write into an existing non-empty --output")
    parser.add_argument("--work", default="runs/cats_dogs_vgg16",
                        help="where the split of --data (links) goes (runs/cats_dogs_vgg16)")
    parser.add_argument("--cache", default=os.path.join(".minicnn_cache", "features"),
                        help="feature cache, reused by later runs (.minicnn_cache/features)")
    return parser.parse_args(argv)


def peak_rss_mb():
    """The process's peak resident memory so far (VmHWM), in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss():
    """Start VmHWM afresh (Linux >= 4.0), so the next reading is one step's peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False




def find_data(data):
    """``(folder, how results.json names it)`` from --data or $MINICNN_DATA."""
    found = locate.find_kaggle_photos(data)
    if found is None:
        raise FileNotFoundError(f"no cats/dogs photos given; {locate.DATA_HELP}")
    return found


def find_weights(weights):
    """``(file, how results.json names it)``: --weights, $MINICNN_VGG16_WEIGHTS, or
    Keras's own download of the file in $KERAS_HOME/models or ~/.keras/models."""
    found = locate.find_vgg16_weights(weights)
    if found is None:
        raise FileNotFoundError(f"no VGG16 weights found; {locate.VGG16_WEIGHTS_HELP}")
    return found


def split_folders(data, args):
    """{"train": folder, "validation": folder} with cats/ and dogs/ inside."""
    if all(os.path.isdir(os.path.join(data, s)) for s in ("train", "validation")):
        return {s: os.path.join(data, s) for s in ("train", "validation")}
    dest = os.path.join(args.work, f"split_n{args.n}_r{args.ratio}_s{args.seed}")
    counts = organize_kaggle_split(data, dest, n=args.n, ratio=args.ratio, seed=args.seed,
                                   force=True)
    print(f"split of {data}: {counts['train']} train, {counts['validation']} validation")
    return {s: os.path.join(dest, s) for s in ("train", "validation")}


def photo_iterator(folder, args, generator=None):
    """The photos of ``folder`` in a fixed order (``generator``: an augmenting one
    makes each epoch a new copy, drawn from --seed)."""
    return (generator or ImageDataGenerator()).flow_from_directory(
        folder, target_size=(args.image_size, args.image_size), class_mode="binary",
        batch_size=args.batch_size, shuffle=False, seed=args.seed)


def bottleneck(bottom, top, iterator, mode, args):
    """block4_pool features (cached), block5_pool features, labels and timings of one
    pass of ``iterator`` (one epoch: a copy of the photos when it augments)."""
    _, cached = cache_entry(bottom, iterator, args.cache, mode)
    peak_is_this_step = reset_peak_rss()
    start = time.perf_counter()
    block4, labels = extract_features(bottom, iterator, args.cache,
                                      batch_size=args.batch_size, preprocessing=mode)
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    block5 = top.predict(block4, batch_size=args.batch_size)    # (N, 4, 4, 512), 4% of the work
    info = {"images": int(len(labels)), "cached": cached, "seconds": round(seconds, 1),
            "images_per_second": None if cached else round(len(labels) / seconds, 2),
            "peak_rss_mb": round(peak, 1),
            "peak_rss_of": "this extraction" if peak_is_this_step else "the process so far"}
    print(f"{iterator.directory} ({mode}): {info}")
    return block4, block5, np.asarray(labels, dtype=np.float32), info


def training_set(features, copies, block4=False):
    """The training photos' features followed by those of their ``copies`` augmented
    copies, as one ``bottleneck`` tuple: block5 and labels concatenated in memory, block4
    too only when asked (``block4``: fine-tuning trains block5 from it; 24,000 150x150
    photos' block4 maps are 4 GB), else None; the photos' own extraction info."""
    parts = [features["train"]] + [features[f"train_augmented_{k}"]
                                   for k in range(1, copies + 1)]
    joined = [np.concatenate([part[i] for part in parts]) if i or block4 else None
              for i in range(3)]
    return (*joined, features["train"][3])


def make_head(input_shape, seed):
    """The tutorial's classifier, as the task specifies it."""
    return [Flatten(input_shape=input_shape, name="flatten"),
            Dense(512, activation="relu", name="fc1", seed=seed),
            Dropout(0.5, name="dropout1", seed=seed),
            Dense(256, activation="relu", name="fc2", seed=seed + 1),
            Dropout(0.2, name="dropout2", seed=seed + 1),
            Dense(1, activation="sigmoid", name="predictions", seed=seed + 2)]


def save_history(history, name, output):
    rows = [dict(epoch=i + 1, **{k: v[i] for k, v in history.items()})
            for i in range(len(next(iter(history.values()))))]
    atomic_write_text(os.path.join(output, f"history_{name}.json"), json.dumps(history,
                                                                                indent=1))
    path = os.path.join(output, f"history_{name}.csv")
    with open(path + ".tmp", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(path + ".tmp", path)


def plot(histories, name, output, data_name):
    """Accuracy and loss curves (training dashed, validation solid) of several runs,
    titled with the run folder and the data (``minicnn.viz.plot_histories``)."""
    viz.plot_histories(histories, path=os.path.join(output, f"curves_{name}.png"),
                       title=f"VGG16 {name} on {data_name}, run "
                             f"{os.path.basename(os.path.normpath(output))}")


def summarize(history, model, x_val, y_val, batch_size):
    """Best and final validation accuracy, and the final model's validation log loss as
    Kaggle computes it (``recipes.log_loss``: probabilities clipped to [1e-15, 1 - 1e-15])."""
    best = int(np.argmax(history["val_accuracy"]))
    p_dog = model.predict(x_val, batch_size=batch_size).reshape(-1).astype(np.float64)
    labels = np.asarray(y_val).reshape(-1).astype(int)
    return {"best_val_accuracy": round(history["val_accuracy"][best], 4),
            "best_epoch": best + 1, "final_val_accuracy": round(history["val_accuracy"][-1], 4),
            "final_val_loss": round(history["val_loss"][-1], 4),
            "val_log_loss": round(log_loss(np.eye(2)[labels],
                                           np.stack([1 - p_dog, p_dog], axis=1)), 4)}


def main(argv=None):
    args = parse_args(argv)
    if args.image_size < 32:
        sys.exit(f"cats_dogs_vgg16.py: --image-size must be at least 32 (VGG16 halves it five "
                 f"times), got {args.image_size}")
    if args.augmented_copies < 0:
        sys.exit(f"cats_dogs_vgg16.py: --augmented-copies must be 0 or more, got "
                 f"{args.augmented_copies}")
    # Photos, weights and output folder first: a mistake in any stops before any work.
    try:
        data, data_name = find_data(args.data)
        weights, weights_name = find_weights(args.weights)
        args.output = prepare_run_folder(args.output, default_name="cats_dogs_vgg16",
                                         force=args.force, hint=OUTPUT_HINT)
    except (FileNotFoundError, FileExistsError, NotADirectoryError) as error:
        sys.exit(f"cats_dogs_vgg16.py: {error}")
    try:
        base = VGG16(weights=weights, input_shape=(args.image_size, args.image_size, 3))
    except (OSError, ValueError) as error:     # not HDF5, or not VGG16's layers
        sys.exit(f"cats_dogs_vgg16.py: cannot load VGG16 weights from {weights!r}: {error}")
    folders = split_folders(data, args)
    split_at = [layer.name for layer in base.layers].index(BLOCK5_START)
    bottom = Sequential(base.layers[:split_at], name="vgg16_blocks1to4")   # shares the layers
    top = Sequential(base.layers[split_at:], name="vgg16_block5")
    modes = ["caffe", "rescale"] if args.preprocess == "both" else [args.preprocess]
    command = portable_command("python examples/cats_dogs_vgg16.py",
                               sys.argv[1:] if argv is None else argv)
    results = {"data": data_name, "weights": weights_name, "command": command,
               "n": args.n, "ratio": args.ratio, "epochs": args.epochs,
               "batch_size": args.batch_size, "image_size": [args.image_size] * 2,
               "cpu_count": os.cpu_count(), "device": minicnn.device(),
               "augmented_copies": args.augmented_copies,
               **({"augmentation": CATS_DOGS_AUGMENTATION} if args.augmented_copies else {}),
               "extraction": {}, "runs": {}}
    features = {}
    for mode in modes:
        features[mode] = {}
        for split, folder in folders.items():
            with photo_iterator(folder, args) as iterator:
                features[mode][split] = bottleneck(bottom, top, iterator, mode, args)
        if args.augmented_copies:
            generator = ImageDataGenerator(**CATS_DOGS_AUGMENTATION)
            with photo_iterator(folders["train"], args, generator) as iterator:
                for copy in range(1, args.augmented_copies + 1):   # its epoch copy - 1
                    features[mode][f"train_augmented_{copy}"] = bottleneck(
                        bottom, top, iterator, mode, args)
            features[mode]["train"] = training_set(features[mode], args.augmented_copies,
                                                   block4=bool(args.fine_tune))
        results["extraction"][mode] = {s: f[3] for s, f in features[mode].items()}
    suffix = f"_aug{args.augmented_copies}" if args.augmented_copies else ""

    histories, heads = {}, {}
    for mode in modes:
        (_, x_train, y_train, _), (_, x_val, y_val, _) = (features[mode]["train"],
                                                          features[mode]["validation"])
        for lr in args.lr:
            name = f"{mode}_lr{lr:g}{suffix}"
            minicnn.set_seed(args.seed)
            head = Sequential(make_head(top.output_shape[1:], args.seed), name=f"head_{name}")
            head.compile(RMSprop(learning_rate=lr), "binary_crossentropy", ["accuracy"])
            start = time.perf_counter()
            history = head.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs,
                               validation_data=(x_val, y_val), verbose=1).history
            histories[name], heads[name] = history, head
            results["runs"][name] = {"preprocessing": mode, "optimizer": "rmsprop",
                                     "learning_rate": lr,
                                     "train_samples": int(len(y_train)),
                                     **summarize(history, head, x_val, y_val, args.batch_size),
                                     "train_seconds": round(time.perf_counter() - start, 1)}
            save_history(history, name, args.output)
            head.save(os.path.join(args.output, f"head_{name}.h5"))
            print(name, results["runs"][name])
    plot(histories, "heads", args.output, data_name)
    best = max(results["runs"], key=lambda k: results["runs"][k]["best_val_accuracy"])
    results["best_run"] = best
    if len(modes) == 2:
        by_mode = {m: max(r["best_val_accuracy"] for r in results["runs"].values()
                          if r["preprocessing"] == m) for m in modes}
        results["caffe_minus_rescale_best_val_accuracy"] = round(by_mode["caffe"] -
                                                                 by_mode["rescale"], 4)

    if args.fine_tune:
        mode = results["runs"][best]["preprocessing"]
        (x_train, _, y_train, _), (x_val, _, y_val, _) = (features[mode]["train"],
                                                          features[mode]["validation"])
        for layer in bottom.layers:          # blocks 1-4 stay frozen (and are not even run)
            layer.trainable = False
        model = Sequential(top.layers + heads[best].layers, name="vgg16_block5_finetune")
        model.compile(SGD(learning_rate=1e-4, momentum=0.9), "binary_crossentropy",
                      ["accuracy"])
        before = model.evaluate(x_val, y_val, batch_size=args.batch_size)
        start = time.perf_counter()
        history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.fine_tune,
                            validation_data=(x_val, y_val), verbose=1).history
        name = f"finetune_block5_{best}"
        results["runs"][name] = {"preprocessing": mode, "optimizer": "sgd",
                                 "learning_rate": 1e-4, "momentum": 0.9,
                                 "trainable": [l.name for l in model.layers if l.params],
                                 "val_accuracy_before": round(before[1], 4),
                                 "train_samples": int(len(y_train)),
                                 **summarize(history, model, x_val, y_val, args.batch_size),
                                 "train_seconds": round(time.perf_counter() - start, 1)}
        save_history(history, name, args.output)
        plot({name: history}, "finetune", args.output, data_name)
        model.save(os.path.join(args.output, f"{name}.h5"))
        print(name, results["runs"][name])

    # The whole run's peak includes the cached features' pages mapped while reading them.
    results["peak_rss_mb_since_last_extraction"] = round(peak_rss_mb(), 1)
    atomic_write_text(os.path.join(args.output, "results.json"), json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
