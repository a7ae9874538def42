"""Cats vs dogs from scratch: the Keras tutorial's 3-conv network, in minicnn.

    python examples/cats_dogs_scratch.py --data ~/kaggle/train          # the tutorial
    python examples/cats_dogs_scratch.py --quick                        # a 2-minute demo
    python examples/cats_dogs_scratch.py --data ~/kaggle/train --submit ~/kaggle/test1

--data (or MINICNN_DATA) is Kaggle's train folder of cat.N.jpg / dog.N.jpg files,
or a folder with train/ and validation/ class folders. Without it the script trains
on a built-in synthetic dataset and says so. The run folder (--output, default a new
runs/cats_dogs_scratch-<date>-<time>) receives model.h5, history.json, history.csv,
curves.png, config.json and results.json; an existing non-empty --output is refused
unless --force is given, so no earlier run is overwritten by accident.
"""
import argparse
import json
import os
import sys

from minicnn import tutorial
from minicnn.runs import prepare_run_folder

OUTPUT_HINT = "choose another --output or pass --force to replace them"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="Kaggle train folder (default: $MINICNN_DATA, "
                        "else a built-in synthetic dataset)")
    parser.add_argument("--n", type=int, default=None,
                        help="how many labelled photos to use (default: all)")
    parser.add_argument("--ratio", type=float, default=0.2, help="validation share (0.2)")
    parser.add_argument("--epochs", type=int, default=50, help="at most this many epochs (50); "
                        "early stopping on val_loss with --patience")
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=150)
    parser.add_argument("--device", choices=["cpu", "gpu"], default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="run folder (default: a new "
                        "runs/cats_dogs_scratch-<date>-<time>)")
    parser.add_argument("--force", action="store_true",
                        help="write into an existing non-empty --output")
    parser.add_argument("--quick", action="store_true",
                        help="a demo that finishes in minutes: n=1000 and 3 epochs on real "
                        "data, 3 epochs on the synthetic set")
    parser.add_argument("--submit", metavar="TEST_DIR",
                        help="after training, write OUTPUT/submission.csv for this folder")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        tutorial.find_data(args.data)        # a missing folder: one line, before any work
        if args.submit and not os.path.isdir(args.submit):
            raise FileNotFoundError(f"--submit folder {args.submit!r} does not exist "
                                    "(Kaggle's test1/ folder of 1.jpg, 2.jpg, ...)")
        output = prepare_run_folder(args.output, default_name="cats_dogs_scratch",
                                    force=args.force, hint=OUTPUT_HINT)
    except (FileNotFoundError, FileExistsError, NotADirectoryError) as error:
        sys.exit(f"cats_dogs_scratch.py: {error}")
    settings = {"n": args.n, "epochs": args.epochs}
    if args.quick:
        settings = tutorial.demo_settings(args.data)
    # The folder is checked above, in the command line's words; the tutorial uses it as is.
    results = tutorial.train_cats_dogs(
        data=args.data, output=output, force=True, ratio=args.ratio,
        batch_size=args.batch_size, image_size=args.image_size, device=args.device,
        seed=args.seed, patience=args.patience, **settings)
    print(json.dumps(results, indent=2))
    if args.submit:
        csv_path = os.path.join(output, "submission.csv")
        count = tutorial.write_kaggle_submission(os.path.join(output, "model.h5"),
                                                 args.submit, csv_path)
        print(f"wrote {count} predictions to {csv_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
