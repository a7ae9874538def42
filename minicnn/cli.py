"""The ``minicnn`` command: the tutorial's steps from a shell.

    minicnn demo                                  # train the cats/dogs net (synthetic data
                                                  # unless --data or MINICNN_DATA is given)
    minicnn organize ~/kaggle/train data/         # train/ and validation/ class folders
    minicnn train --data data/ --output runs/a    # the tutorial's network on real photos
    minicnn evaluate runs/a/model.h5 data/validation
    minicnn predict runs/a/model.h5 cat.jpg photos/
    minicnn submit runs/a/model.h5 ~/kaggle/test1 submission.csv
    minicnn features data/train --weights vgg16_notop.h5
    minicnn compare runs/a runs/b --plot compare.png
    minicnn bench --device cpu --quick            # the speed benchmark

Every subcommand has ``--help``. Errors are one line on stderr and exit code 1
(2 for a wrong command line); ``--debug`` shows the full traceback instead.

``demo`` and ``train`` write into a new run folder each time
(``runs/demo-<date>-<time>``, ``runs/cats_dogs-<date>-<time>``) unless
``--output`` names one; a named folder that already holds files is refused
unless ``--force`` is given, so no earlier result is ever replaced by accident.
Each subcommand imports what it needs only when it runs, so ``--help`` is quick.
"""
from __future__ import annotations

import argparse
import os
import sys

from . import locate

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


class CommandError(Exception):
    """A problem with what the user asked for; printed as one line, exit code 1."""


# The end of the message when --output names a folder that already holds results.
OUTPUT_HINT = "choose another --output or pass --force to replace them"


# -- argument types: a wrong value is refused before anything runs or is written --------
def _number(text, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {'a whole number' if kind is int else 'a number'}, got {text!r}") \
            from None


def positive_int(text):
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def non_negative_int(text):
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def image_size(text):
    """The network pools three times by 2, so an image needs at least 8 pixels a side."""
    value = _number(text, int)
    if value < 8:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 8 (pixels a side), "
                                         f"got {text!r}")
    return value


def positive_float(text):
    import math

    value = _number(text, float)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def share(text):
    """A validation share: 0 <= value < 1 (organize allows no validation at all)."""
    value = _number(text, float)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a share 0 <= ratio < 1, got {text!r}")
    return value


def training_share(text):
    """A validation share for training: 0 < value < 1 (training needs validation images)."""
    value = _number(text, float)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a share 0 < ratio < 1 (training needs "
                                         f"validation images), got {text!r}")
    return value


# -- organize ---------------------------------------------------------------------------
def cmd_organize(args):
    from .data import organize_kaggle_split

    # Refused here, in the command line's words, before the library's own check.
    if os.path.isdir(args.dest) and os.listdir(args.dest) and not args.force:
        raise CommandError(f"destination {args.dest!r} is not empty: choose another DEST "
                           "or pass --force to replace its train/ and validation/ folders")
    summary = organize_kaggle_split(args.source, args.dest, n=args.n, ratio=args.ratio,
                                    seed=args.seed, link="copy" if args.copy else True,
                                    force=args.force)
    for split in ("train", "validation"):
        counts = ", ".join(f"{name} {count}" for name, count in summary[split].items())
        print(f"{split}: {counts}")
    print(f"ignored {summary['ignored']} other entries; split written to {args.dest}")


# -- train and demo -----------------------------------------------------------------------
def _print_results(results):
    print(f"best validation accuracy {results['best_val_accuracy']:.4f} at epoch "
          f"{results['best_epoch']} of {results['epochs_run']} "
          f"({results['seconds_per_epoch']} s per epoch)")


def _check_split_size(n, ratio):
    """Every class needs a training and a validation image: refuse an --n too small."""
    from . import tutorial

    if n is None:
        return
    problem = tutorial.split_size_problem(n, ratio)
    if problem:
        raise CommandError(f"--n {n} with --ratio {ratio}: {problem}; use --n "
                           f"{tutorial.smallest_split_size(ratio)} or more")


def _run_folder(args, default_name):
    from .runs import prepare_run_folder

    return prepare_run_folder(args.output, default_name, force=args.force, hint=OUTPUT_HINT)


def cmd_train(args):
    from . import tutorial

    if args.model != "cats_dogs":     # argparse already limits the choices
        raise CommandError(f"unknown model {args.model!r}")
    if not os.path.isdir(args.data):
        raise CommandError(f"data folder {args.data!r} not found: expected Kaggle's train "
                           "folder or a folder with train/ and validation/ class folders")
    _check_split_size(args.n, args.ratio)
    output = _run_folder(args, "cats_dogs")
    # force=True: the folder was checked (or made) just above, in the command's words.
    results = tutorial.train_cats_dogs(
        data=args.data, output=output, force=True, n=args.n, ratio=args.ratio,
        epochs=args.epochs, batch_size=args.batch_size, image_size=args.image_size,
        device=args.device, seed=args.seed, patience=args.patience,
        augment=not args.no_augment, verbose=1)
    _print_results(results)
    print(f"model and history written to {output}")


def cmd_demo(args):
    from . import tutorial

    data = tutorial.find_data(args.data)      # a wrong --data fails before any folder is made
    settings = tutorial.demo_settings(data) if args.quick else {"epochs": args.epochs,
                                                                 "n": args.n}
    _check_split_size(settings["n"], 0.2)
    output = _run_folder(args, "demo")
    results = tutorial.train_cats_dogs(data=data, output=output, force=True,
                                       image_size=args.image_size, device=args.device,
                                       seed=args.seed, verbose=1, **settings)
    _print_results(results)
    if results.get("synthetic"):
        print(f"trained on synthetic data ({tutorial.SYNTHETIC_DESCRIPTION}), not on photos "
              f"of cats and dogs: pass --data for those")
    else:
        print(f"trained on {results['data']}")
    print(f"run folder: {output} (model.h5, curves.png, history.json, results.json)")


# -- evaluate and predict -------------------------------------------------------------------
def _load_model(path):
    from .models import load_model

    if not os.path.isfile(path):
        raise CommandError(f"model file {path!r} not found (train one with 'minicnn train' "
                           "or 'minicnn demo': it writes model.h5 in the run folder)")
    model = load_model(path)
    if model.input_shape is None or len(model.input_shape) != 4:   # (None, H, W, C)
        raise CommandError(f"{path!r} holds a model with input shape {model.input_shape}; "
                           "expected images (None, height, width, channels)")
    return model


def _color_mode(model):
    return "grayscale" if model.input_shape[-1] == 1 else "rgb"


def _with_progress(iterable, total, description):
    """Yield from ``iterable`` while a tqdm bar (on stderr) counts ``total`` steps."""
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=description, unit="batch", file=sys.stderr,
              disable=None) as bar:
        # range first: zip stops there without drawing one item too many from iterable.
        for _, item in zip(range(total), iterable):
            yield item
            bar.update(1)


def cmd_evaluate(args):
    from .data import ImageDataGenerator

    model = _load_model(args.model)
    if model.loss is None:
        raise CommandError(f"{args.model!r} was saved without a loss (never compiled); "
                           "evaluate needs one")
    if not os.path.isdir(args.directory):
        raise CommandError(f"folder {args.directory!r} not found: expected one sub-folder "
                           "of images per class")
    _refuse_a_flat_folder(args.directory)
    outputs = model.output_shape[-1]
    iterator = ImageDataGenerator(rescale=args.scale).flow_from_directory(
        args.directory, target_size=model.input_shape[1:3], color_mode=_color_mode(model),
        class_mode="categorical" if outputs > 1 else "binary", batch_size=args.batch_size,
        shuffle=False)
    if iterator.samples == 0:
        raise CommandError(f"no images found in the class folders of {args.directory!r}")
    if outputs > 1 and iterator.num_classes != outputs:
        raise CommandError(f"{args.directory!r} has {iterator.num_classes} class folders but "
                           f"the model predicts {outputs} classes")
    steps = len(iterator)
    with iterator:      # stops its worker threads when done
        logs = model.evaluate_logs(_with_progress(iterator, steps, "evaluate"), steps=steps)
    print(f"{iterator.samples} images in {iterator.num_classes} classes "
          f"{sorted(iterator.class_indices, key=iterator.class_indices.get)}")
    print("  ".join(f"{key}: {value:.4f}" for key, value in logs.items()))


def _refuse_a_flat_folder(directory):
    """Kaggle's train folder holds the images themselves, not class folders: say what to do."""
    has_class_folders = any(entry.is_dir() for entry in os.scandir(directory))
    images = [name for name in os.listdir(directory) if name.lower().endswith(IMAGE_EXTENSIONS)]
    if images and not has_class_folders:
        raise CommandError(f"{directory!r} holds {len(images)} images but no class folders: "
                           f"split it first with 'minicnn organize {directory} DEST' and "
                           "evaluate DEST/validation")


def _images_under(folder):
    """Image files in ``folder`` and its sub-folders (class folders), in a stable order."""
    found = []
    for root, folders, names in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        found += [os.path.join(root, name) for name in sorted(names)
                  if name.lower().endswith(IMAGE_EXTENSIONS)]
    return found


def _image_paths(inputs):
    paths = []
    for item in inputs:
        if os.path.isdir(item):
            found = _images_under(item)
            if not found:
                raise CommandError(f"folder {item!r} and its sub-folders have no image files "
                                   f"({', '.join(IMAGE_EXTENSIONS)})")
            paths += found
        elif os.path.isfile(item):
            paths.append(item)
        else:
            raise CommandError(f"{item!r} is neither an image file nor a folder")
    return paths


def _class_names(args, outputs):
    """Names from --classes, else from the run folder beside the model, else the tutorial's."""
    import json

    count = max(outputs, 2)
    if args.classes:
        names = [name.strip() for name in args.classes.split(",")]
        if len(names) != count:
            raise CommandError(f"--classes gives {len(names)} names but the model has "
                               f"{count} classes")
        return names
    results = os.path.join(os.path.dirname(os.path.abspath(args.model)), "results.json")
    if os.path.isfile(results):
        with open(results, encoding="utf-8") as f:
            indices = json.load(f).get("class_indices")
        if isinstance(indices, dict) and len(indices) == count:
            return sorted(indices, key=indices.get)
    return [f"class {k}" for k in range(count)]


def cmd_predict(args):
    """One tab-separated line per image under a header: the file, the predicted class,
    its probability, then the probability of every class."""
    import numpy as np

    from .data import load_images

    model = _load_model(args.model)
    paths = _image_paths(args.inputs)
    names = _class_names(args, model.output_shape[-1])
    print("\t".join(["path", "predicted", "P(predicted)", *(f"P({name})" for name in names)]))
    chunk = 256           # decode a chunk of files at a time: memory stays bounded
    chunks = range(0, len(paths), chunk)
    for start in _with_progress(chunks, len(chunks), "predict") if len(paths) > chunk \
            else chunks:
        part = paths[start:start + chunk]
        images, failed = load_images(part, tuple(model.input_shape[1:3]), _color_mode(model))
        probabilities = model.predict(images * np.float32(args.scale),
                                      batch_size=args.batch_size)
        if probabilities.shape[-1] == 1:       # a sigmoid: P(class 1)
            probabilities = np.concatenate([1 - probabilities, probabilities], axis=-1)
        for path, p in zip(part, probabilities):
            if path in failed:
                print("\t".join([path, "unreadable", *[""] * (1 + len(names))]))
                continue
            k = int(p.argmax())
            print("\t".join([path, names[k], f"{p[k]:.4f}", *(f"{q:.4f}" for q in p)]))


# -- submit, features, compare, bench -------------------------------------------------------
def cmd_submit(args):
    from . import tutorial

    _load_model(args.model)     # a clear error before any image is read
    count = tutorial.write_kaggle_submission(args.model, args.test_dir, args.output_csv,
                                             batch_size=args.batch_size, progress=True)
    print(f"wrote {count} predictions to {args.output_csv}")


def find_vgg16_weights(weights=None):
    """The VGG16 'notop' weight file (``locate.find_vgg16_weights``), None when there is
    none anywhere; a file named but missing is a one-line error."""
    try:
        found = locate.find_vgg16_weights(weights)
    except FileNotFoundError as error:
        raise CommandError(str(error)) from None
    return found[0] if found else None


def cmd_features(args):
    from .applications import VGG16, extract_features
    from .data import ImageDataGenerator

    if not os.path.isdir(args.directory):
        raise CommandError(f"folder {args.directory!r} not found: expected one sub-folder "
                           "of images per class")
    weights = find_vgg16_weights(args.weights)
    if weights is None:
        print("minicnn features: no VGG16 weights found: using a randomly initialised VGG16, "
              f"whose features mean nothing; {locate.VGG16_WEIGHTS_HELP}", file=sys.stderr)
    size = (args.image_size, args.image_size)
    base = VGG16(include_top=False, weights=weights, input_shape=(*size, 3))
    iterator = ImageDataGenerator().flow_from_directory(
        args.directory, target_size=size, class_mode="binary", batch_size=args.batch_size,
        shuffle=False)
    from .applications.features import cache_entry

    with iterator:      # stops its worker threads when done
        features, labels = extract_features(base, iterator, cache_dir=args.cache,
                                            batch_size=args.batch_size)
        folder, _ = cache_entry(base, iterator, args.cache)
    print(f"features {tuple(features.shape)} and labels {tuple(labels.shape)} in {folder} "
          "(features.npy, labels.npy: load them with numpy.load)")


def cmd_compare(args):
    from .runs import compare_runs

    for folder in args.runs:
        if not os.path.isdir(folder):
            raise CommandError(f"run folder {folder!r} not found")
    if args.plot and os.path.exists(args.plot) and not args.force:
        raise CommandError(f"{args.plot!r} already exists; choose another --plot or pass "
                           f"--force to replace it")
    compare_runs(args.runs, metric=args.metric, path=args.plot)
    if args.plot:
        print(f"plot written to {args.plot}")


def cmd_bench(args):
    from .bench import runner

    # The command as typed: what follows 'bench' (global options such as --debug precede it).
    typed = args.argv[args.argv.index("bench") + 1:] if "bench" in args.argv else []
    runner.run(args, runner.command_line("minicnn bench", typed))
    return 0


# -- the parser ---------------------------------------------------------------------------
def _add_training_options(parser, epochs, run_name):
    parser.add_argument("--output", default=None, help="run folder to write (model.h5, "
                        "history, curves.png, results.json; default: a new folder "
                        f"runs/{run_name}-<date>-<time>)")
    parser.add_argument("--force", action="store_true", help="write into --output even if "
                        "it holds files (this run's files replace those of the same name)")
    parser.add_argument("--epochs", type=positive_int, default=epochs,
                        help=f"at most this many epochs ({epochs}); early stopping on val_loss")
    parser.add_argument("--image-size", type=image_size, default=150,
                        help="images are resized to this square size (150; at least 8)")
    parser.add_argument("--device", choices=["cpu", "gpu"], default=None,
                        help="default: the GPU when CuPy sees one, else the CPU")
    parser.add_argument("--seed", type=non_negative_int, default=0)


def build_parser():
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="minicnn", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="minicnn: a CNN framework from scratch on NumPy/CuPy, and the Keras "
                    "cats vs dogs tutorial as commands.",
        epilog="Run 'minicnn <command> --help' for the options of each command.")
    parser.add_argument("--version", action="version", version=f"minicnn {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show full tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", metavar="<command>")

    def command(name, function, help_text, description=None):
        sub = commands.add_parser(name, help=help_text, description=description or help_text)
        sub.set_defaults(function=function)
        return sub

    p = command("demo", cmd_demo, "train the tutorial's cats/dogs network (the main job)",
                "Train the cats vs dogs network of the Keras tutorial. Real photos come from "
                "--data or $MINICNN_DATA (Kaggle's train folder); without them, a built-in "
                "synthetic dataset is used instead: horizontal vs vertical stripes (640 "
                "generated 64x64 images), which the network learns almost perfectly, and "
                "every output says that it was synthetic.")
    p.add_argument("--data", default=None, help="Kaggle train folder (default: $MINICNN_DATA, "
                   "else synthetic data)")
    p.add_argument("--n", type=positive_int, default=None,
                   help="use this many labelled photos")
    p.add_argument("--quick", action="store_true", help="a couple of minutes: 3 epochs on "
                   "1000 photos (real data) or on the synthetic set "
                   "(minicnn.tutorial.demo_settings)")
    _add_training_options(p, 50, "demo")

    p = command("organize", cmd_organize, "split Kaggle's train folder into train/ and "
                "validation/ class folders", "Make DEST/train/{cats,dogs} and "
                "DEST/validation/{cats,dogs} from Kaggle's cat.N.jpg and dog.N.jpg files "
                "(links by default; the source folder is never modified).")
    p.add_argument("source", help="folder of cat.N.jpg and dog.N.jpg files")
    p.add_argument("dest", help="folder to create train/ and validation/ in")
    p.add_argument("--n", type=positive_int, default=None, help="files in total, n/2 per "
                   "class (default: all)")
    p.add_argument("--ratio", type=share, default=0.2, help="validation share (0.2)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--copy", action="store_true", help="copy files instead of linking")
    p.add_argument("--force", action="store_true", help="replace DEST's train/ and "
                   "validation/ folders if present")

    p = command("train", cmd_train, "train a named model on a folder of images")
    p.add_argument("--model", choices=["cats_dogs"], default="cats_dogs",
                   help="cats_dogs: the tutorial's 3-conv network trained from scratch")
    p.add_argument("--data", required=True, help="Kaggle's train folder, or a folder with "
                   "train/ and validation/ class folders")
    p.add_argument("--n", type=positive_int, default=None,
                   help="use this many labelled photos (n/2 per class)")
    p.add_argument("--ratio", type=training_share, default=0.2,
                   help="validation share (0.2)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--patience", type=non_negative_int, default=2,
                   help="early-stopping patience (2)")
    p.add_argument("--no-augment", action="store_true", help="train without shear, zoom "
                   "and flips")
    _add_training_options(p, 50, "cats_dogs")

    p = command("evaluate", cmd_evaluate, "loss and accuracy of a saved model on a folder",
                "Evaluate a model saved by minicnn (model.h5) on DIRECTORY's class folders.")
    p.add_argument("model", help="model file (model.h5)")
    p.add_argument("directory", help="folder with one sub-folder of images per class")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--scale", type=positive_float, default=1 / 255,
                   help="multiply pixels by this, as in training (1/255)")

    p = command("predict", cmd_predict, "class and probability for images or folders",
                "Print one tab-separated line per image under a header: path, predicted "
                "class, P(predicted) = the probability of that class, then the probability "
                "of each class. Folders are searched with their sub-folders.")
    p.add_argument("model", help="model file (model.h5)")
    p.add_argument("inputs", nargs="+", help="image files and/or folders of images")
    p.add_argument("--classes", default=None, help="comma-separated class names (default: "
                   "results.json beside the model, else 'class 0', 'class 1', ...)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--scale", type=positive_float, default=1 / 255,
                   help="multiply pixels by this, as in training (1/255)")

    p = command("submit", cmd_submit, "write a Kaggle submission CSV (id,label = P(dog))")
    p.add_argument("model", help="model file (model.h5)")
    p.add_argument("test_dir", help="Kaggle's test folder of 1.jpg, 2.jpg, ...")
    p.add_argument("output_csv", help="CSV file to write")
    p.add_argument("--batch-size", type=positive_int, default=32)

    p = command("features", cmd_features, "VGG16 bottleneck features of a folder of images",
                "Run VGG16's convolutional base over DIRECTORY's class folders once and "
                "cache the outputs (features.npy, labels.npy) under --cache.")
    p.add_argument("directory", help="folder with one sub-folder of images per class")
    p.add_argument("--weights", default=None,
                   help=f"Keras VGG16 'notop' HDF5 weight file (default: "
                   f"${locate.VGG16_WEIGHTS_VARIABLE}, else {locate.VGG16_NOTOP_FILE} in "
                   "$KERAS_HOME/models or "
                   "~/.keras/models; without one, random weights)")
    p.add_argument("--cache", default=os.path.join(".minicnn_cache", "features"),
                   help="cache folder, reused by later runs (.minicnn_cache/features)")
    p.add_argument("--image-size", type=positive_int, default=150)
    p.add_argument("--batch-size", type=positive_int, default=32)

    p = command("compare", cmd_compare, "compare the curves of several run folders")
    p.add_argument("runs", nargs="+",
                   help="run folders (with history.json) or TensorBoard log folders")
    p.add_argument("--metric", default="val_accuracy", help="val_accuracy (default), "
                   "val_loss, accuracy or loss")
    p.add_argument("--plot", default=None, help="also save the curves as this PNG")
    p.add_argument("--force", action="store_true", help="replace an existing --plot file")

    p = command("bench", cmd_bench, "run the speed benchmark",
                "Time minicnn layer by layer and end to end, against Keras and PyTorch when "
                "they are installed (the report says which were skipped, and why); the same "
                "as 'python -m benchmarks.run' in a source checkout. --write (the committed "
                "benchmarks/results/) needs a source checkout; --smoke only checks that it "
                "runs.")
    from .bench.runner import add_arguments as add_bench_arguments

    add_bench_arguments(p)
    return parser


def main(argv=None):
    """Entry point of the ``minicnn`` command; returns the exit code."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    if args.command is None:
        parser.print_help()
        return 2
    try:
        status = args.function(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"minicnn {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:    # noqa: BLE001  (one clear line instead of a traceback)
        if args.debug:
            raise
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"minicnn {args.command}: error: {message}", file=sys.stderr)
        return 1
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
