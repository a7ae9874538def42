"""Fashion-MNIST with minicnn: a small CNN, its overfitting, and dropout as the cure.

    python examples/fashion_mnist.py                         # the full walkthrough
    python examples/fashion_mnist.py --subset 2000 --epochs 2  # a one-minute rehearsal

The steps, each printed as it happens:

1. load the 70,000 images (``minicnn.data.load_fashion_mnist``) and look at them;
2. rescale to [0, 1], one-hot encode, split 80/20 into training and validation;
3. train a small CNN (3x3 convs of 32, 64 and 128 filters, each followed by 2x2
   max pooling, a dense layer of 128 and a softmax over 10 classes, categorical
   cross-entropy) and plot its curves: training accuracy keeps climbing while the
   validation loss turns back up, the signature of overfitting;
4. add dropout, retrain, and compare the two models on one plot;
5. evaluate on the 10,000 test images; show correctly and incorrectly classified
   images, print a classification report and draw a confusion matrix.

Everything lands in the run folder --output (default: a new
``runs/fashion_mnist-<date>-<time>``; an existing non-empty one is refused unless
--force): PNGs, ``classification_report.txt``, ``results.json`` and one run folder
per model (``runs/``: config, history and model.h5) that ``minicnn compare`` reads.

The four IDX files are looked for in --data, else $MINICNN_FASHION_MNIST, else
/usr/share/datasets/fashion-mnist/ (``apt-get install dataset-fashion-mnist``), else
Keras's download folder: $KERAS_HOME/datasets/fashion-mnist/, ~/.keras/datasets/fashion-mnist/.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

import minicnn
from minicnn import (Callback, Conv2D, Dense, Dropout, Flatten, MaxPooling2D, RMSprop,
                     Sequential, viz)
from minicnn.data import (FASHION_MNIST_CLASS_NAMES, load_fashion_mnist, to_categorical,
                          train_validation_split)
from minicnn.data.fashion_mnist import DEFAULT_PATH
from minicnn.io_utils import atomic_write_text
from minicnn.metrics import classification_report, confusion_matrix
from minicnn import locate
from minicnn.runs import portable_command, prepare_run_folder, save_run

CLASS_NAMES = FASHION_MNIST_CLASS_NAMES
DATA_VARIABLE = locate.FASHION_MNIST_VARIABLE
DATA_HELP = locate.FASHION_MNIST_HELP

OUTPUT_HINT = "choose another --output or pass --force to replace them"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20,
                        help="epochs for the model with dropout (20)")
    parser.add_argument("--baseline-epochs", type=int, default=None,
                        help="epochs for the model without dropout (default: 12, at most "
                        "--epochs): enough to see it overfit")
    parser.add_argument("--subset", type=int, default=None,
                        help="use only this many training images (and at most this many test "
                        "images): for a quick rehearsal or to time one epoch")
    parser.add_argument("--output", help="folder for the plots, the report and the run "
                        "folders (default: a new runs/fashion_mnist-<date>-<time>)")
    parser.add_argument("--force", action="store_true",
                        help="write into an existing non-empty --output")
    parser.add_argument("--data", help=f"folder of the IDX files (default: ${DATA_VARIABLE}, "
                        f"else {DEFAULT_PATH}, else ~/.keras/datasets/fashion-mnist)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3,
                        help="RMSprop's starting learning rate (1e-3)")
    parser.add_argument("--decay", type=float, default=0.9,
                        help="multiply the learning rate by this after every epoch (0.9)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2],
                        help="1: a progress bar per epoch, 2: one line per epoch")
    return parser.parse_args(argv)


# -- 1 and 2: the data ------------------------------------------------------------------
def find_data(data):
    """``(folder, how to name it in results.json)``: the first place that has the files
    (``minicnn.locate.find_fashion_mnist``). An explicit --data or
    $MINICNN_FASHION_MNIST is taken as given (a wrong one is reported by the loader)."""
    found = locate.find_fashion_mnist(data)
    if found is None:
        raise FileNotFoundError(f"no Fashion-MNIST found; {DATA_HELP}")
    return found


def load_data(folder):
    """The four arrays, or a one-line exit naming the ways to provide them."""
    try:
        return load_fashion_mnist(folder)
    except FileNotFoundError:
        sys.exit(f"fashion_mnist.py: no Fashion-MNIST IDX files (train-images-idx3-ubyte[.gz] "
                 f"and three more) in {folder!r}; {DATA_HELP}")
    except ValueError as error:         # a corrupt or truncated IDX file
        sys.exit(f"fashion_mnist.py: {error}")


def prepare_data(arrays, subset, seed):
    """Training, validation and test sets: float32 (N, 28, 28, 1) in [0, 1], one-hot labels."""
    (x_train, y_train), (x_test, y_test) = arrays
    print(f"training images {x_train.shape} {x_train.dtype}, test images {x_test.shape}")
    if subset:
        x_train, y_train = x_train[:subset], y_train[:subset]
        x_test, y_test = x_test[:subset], y_test[:subset]

    # Pixels 0..255 -> 0..1, and (N, 28, 28) -> (N, 28, 28, 1): one grayscale channel.
    rescale = lambda images: (images.astype(np.float32) / 255.0)[..., None]  # noqa: E731
    # Class 9 -> [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]: what categorical cross-entropy compares with.
    train, validation = train_validation_split(rescale(x_train), to_categorical(y_train, 10),
                                               validation_split=0.2, seed=seed)
    print(f"split 80/20: {len(train[0])} training, {len(validation[0])} validation, "
          f"{len(x_test)} test images")
    return train, validation, (rescale(x_test), to_categorical(y_test, 10)), (x_train, y_train)


def show_samples(images, labels, path):
    """Two examples of every class, titled with its name."""
    picks = [i for k in range(10) for i in np.flatnonzero(labels == k)[:2]]
    viz.plot_image_grid(images[picks], [CLASS_NAMES[labels[i]] for i in picks], path, ncols=10,
                        title="Fashion-MNIST: two images of each class")


# -- 3 and 4: the models ----------------------------------------------------------------
def build_model(dropout=False):
    """Three blocks of 3x3 conv (32, 64, 128 filters, 'same' padding) + 2x2 max pooling,
    then dense 128 and a softmax over the 10 classes. 28x28 -> 14 -> 7 -> 3.

    With ``dropout``, each block ends with Dropout(0.2) and the dense layer is
    followed by Dropout(0.3): during training a random fifth of the features
    is zeroed, so no unit can rely on a few others (co-adaptation).
    """
    def maybe_dropout(rate):
        return [Dropout(rate)] if dropout else []

    return Sequential([
        Conv2D(32, 3, padding="same", activation="relu", input_shape=(28, 28, 1)),
        MaxPooling2D(2), *maybe_dropout(0.2),                  # (28, 28, 32) -> (14, 14, 32)
        Conv2D(64, 3, padding="same", activation="relu"),
        MaxPooling2D(2), *maybe_dropout(0.2),                  # (14, 14, 64) -> (7, 7, 64)
        Conv2D(128, 3, padding="same", activation="relu"),
        MaxPooling2D(2), *maybe_dropout(0.2),                  # (7, 7, 128) -> (3, 3, 128)
        Flatten(),                                             # -> (1152,)
        Dense(128, activation="relu"), *maybe_dropout(0.3),
        Dense(10, activation="softmax"),
    ], name="fashion_cnn_dropout" if dropout else "fashion_cnn")


class ExponentialDecay(Callback):
    """After each epoch: learning_rate *= factor. Big steps first, fine ones at the end."""

    def __init__(self, factor):
        self.factor = factor

    def on_epoch_end(self, epoch, logs=None):
        self.model.optimizer.learning_rate *= self.factor


def train(name, dropout, data, args, epochs):
    (x_train, y_train), validation = data
    model = build_model(dropout)
    model.compile(RMSprop(args.learning_rate), "categorical_crossentropy", ["accuracy"])
    model.summary()
    start = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=epochs,
                        validation_data=validation, verbose=args.verbose,
                        callbacks=[ExponentialDecay(args.decay)])
    seconds = time.perf_counter() - start
    print(f"{name}: {len(history.epoch)} epochs in {seconds:.0f} s "
          f"({seconds / max(len(history.epoch), 1):.1f} s per epoch)")
    config = {"model": model.name, "dropout": dropout, "epochs": epochs,
              "batch_size": args.batch_size, "optimizer": "RMSprop",
              "learning_rate": args.learning_rate, "decay_per_epoch": args.decay,
              "seed": args.seed, "subset": args.subset, "train_seconds": round(seconds, 1),
              "layers": model.get_config()["layers"]}
    # model.h5 beside the history (git ignores *.h5): minicnn.load_model reads it back.
    save_run(os.path.join(args.output, "runs", name), history, config, model)
    return model, history, seconds


# -- 5: the test set --------------------------------------------------------------------
def evaluate(model, test, output):
    x_test, y_test = test
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=500)
    probabilities = model.predict(x_test, batch_size=500)
    predicted, true = probabilities.argmax(axis=1), y_test.argmax(axis=1)
    correct, wrong = np.flatnonzero(predicted == true), np.flatnonzero(predicted != true)
    print(f"found {len(correct)} correct and {len(wrong)} incorrect labels")

    def titled(indices):
        return [f"pred {CLASS_NAMES[predicted[i]]}\ntrue {CLASS_NAMES[true[i]]}"
                for i in indices]

    for name, indices in (("correct", correct[:15]), ("incorrect", wrong[:15])):
        if len(indices):
            viz.plot_image_grid(x_test[indices], titled(indices),
                                os.path.join(output, f"{name}.png"), ncols=5,
                                title=f"{name}ly classified test images")
    report = classification_report(true, predicted, CLASS_NAMES, digits=4)
    matrix = confusion_matrix(true, predicted, 10)
    viz.plot_confusion_matrix(matrix, CLASS_NAMES, os.path.join(output, "confusion_matrix.png"))
    return loss, accuracy, report, matrix


def main(argv=None):
    args = parse_args(argv)
    if args.baseline_epochs is None:
        args.baseline_epochs = min(12, args.epochs)
    # Data and output folder first: a mistake in either stops the script before any work.
    try:
        folder, data_name = find_data(args.data)
        arrays = load_data(folder)
        args.output = prepare_run_folder(args.output, default_name="fashion_mnist",
                                         force=args.force, hint=OUTPUT_HINT)
    except (FileNotFoundError, FileExistsError, NotADirectoryError) as error:
        sys.exit(f"fashion_mnist.py: {error}")
    minicnn.set_seed(args.seed)
    out = lambda name: os.path.join(args.output, name)  # noqa: E731

    print(f"== 1. the data ({data_name})")
    train_set, validation, test, (raw_images, raw_labels) = prepare_data(arrays, args.subset,
                                                                         args.seed)
    show_samples(raw_images, raw_labels, out("samples.png"))

    print("== 3. a small CNN, no dropout")
    baseline, baseline_history, baseline_seconds = train("baseline", False,
                                                         (train_set, validation), args,
                                                         args.baseline_epochs)
    viz.plot_history(baseline_history, path=out("baseline_curves.png"))

    print("== 4. the same CNN with dropout")
    model, history, dropout_seconds = train("dropout", True, (train_set, validation), args,
                                             args.epochs)
    viz.plot_history(history, path=out("dropout_curves.png"))
    viz.plot_histories({"no dropout": baseline_history, "dropout": history},
                       path=out("compare_dropout.png"))

    print("== 5. the test set")
    baseline_loss, baseline_accuracy = baseline.evaluate(*test, batch_size=500)
    loss, accuracy, report, matrix = evaluate(model, test, args.output)
    print(f"test accuracy without dropout: {baseline_accuracy:.4f} (loss {baseline_loss:.4f})")
    print(f"test accuracy with dropout:    {accuracy:.4f} (loss {loss:.4f})")
    print(report)
    atomic_write_text(out("classification_report.txt"),
                      f"Fashion-MNIST test set, CNN with dropout: accuracy {accuracy:.4f}\n\n"
                      + report)

    # What the trained network looks at: its first filters and every conv layer's maps.
    viz.plot_filters(model, path=out("filters.png"))
    viz.plot_feature_maps(model, test[0][0], path=out("feature_maps.png"))

    results = {
        "test_accuracy_dropout": round(accuracy, 4), "test_loss_dropout": round(loss, 4),
        "test_accuracy_baseline": round(baseline_accuracy, 4),
        "test_loss_baseline": round(baseline_loss, 4),
        "best_val_accuracy_baseline": round(max(baseline_history.history["val_accuracy"]), 4),
        "best_val_accuracy_dropout": round(max(history.history["val_accuracy"]), 4),
        "train_seconds_baseline": round(baseline_seconds, 1),
        "train_seconds_dropout": round(dropout_seconds, 1),
        "epochs_baseline": args.baseline_epochs, "epochs_dropout": args.epochs,
        "batch_size": args.batch_size, "subset": args.subset,
        "learning_rate": args.learning_rate, "decay_per_epoch": args.decay,
        "confusion_matrix": matrix.tolist(),
        "threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"), "data": data_name,
        "command": portable_command("python examples/fashion_mnist.py",
                                    sys.argv[1:] if argv is None else argv),
    }
    atomic_write_text(out("results.json"), json.dumps(results, indent=2) + "\n")
    print(f"plots, report and runs written to {args.output}")
    return results


if __name__ == "__main__":
    main()
