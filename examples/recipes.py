"""Train a recipe by name (minicnn.recipes): data, model, augmentation, optimizer,
schedule and epochs, chosen on the command line.

    python examples/recipes.py --list
    python examples/recipes.py fashion_tutorial --output examples/output/fashion_mnist_recipes/fashion_tutorial
    python examples/recipes.py fashion_bn_wide --epochs 1        # a rehearsal
    python examples/recipes.py --accuracy-json                   # examples/output/accuracy.json

The run folder (--output, default a new runs/<recipe>-<date>-<time>; a non-empty one is
refused unless --force) receives config.json, history.json/csv, curves.png, log.csv
(CSVLogger), logs/ (TensorBoard) and results.json. Cats/dogs recipes read the photos
from --data or $MINICNN_DATA.
"""
import argparse
import json
import sys

from minicnn import recipes
from minicnn.runs import portable_command


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", nargs="?", help="the recipe's name (--list shows them)")
    parser.add_argument("--output", help="run folder (default: runs/<recipe>-<date>-<time>)")
    parser.add_argument("--force", action="store_true",
                        help="write into an existing non-empty --output")
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs")
    parser.add_argument("--data", help="cats/dogs photos folder (default: $MINICNN_DATA)")
    parser.add_argument("--verbose", type=int, default=2, choices=[0, 1, 2])
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    parser.add_argument("--accuracy-json", nargs="?", const="examples/output", metavar="ROOT",
                        help="write ROOT/accuracy.json from the committed runs, print "
                        "the README's table and exit")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.list:
        for name in recipes.names():
            recipe = recipes.get(name)
            print(f"{name:22} {recipe.task:18} {recipe.epochs:3} epochs  {recipe.description}")
        return
    if args.accuracy_json:
        try:
            path = recipes.write_accuracy_json(args.accuracy_json)
        except NotADirectoryError as error:
            sys.exit(f"recipes.py: {error}")
        print(f"{path}; the README's table:\n")
        print(recipes.accuracy_markdown(recipes.accuracy_table(args.accuracy_json)))
        return
    if not args.recipe:
        sys.exit("recipes.py: name a recipe (--list shows them)")
    command = portable_command("python examples/recipes.py", sys.argv[1:] if argv is None
                               else list(argv))
    try:
        results = recipes.run_recipe(args.recipe, output=args.output, force=args.force,
                                     data=args.data, epochs=args.epochs,
                                     verbose=args.verbose, command=command,
                                     hint="choose another --output or pass --force to "
                                     "replace them")
    except (KeyError, FileNotFoundError, FileExistsError, NotADirectoryError) as error:
        sys.exit(f"recipes.py: {error.args[0] if isinstance(error, KeyError) else error}")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
