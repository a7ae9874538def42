"""Kaggle's ``train/`` folder -> the class folders ``flow_from_directory`` reads.

    DEST/train/cats/      cat.*.jpg   (n/2 * (1 - ratio) files)
    DEST/train/dogs/      dog.*.jpg
    DEST/validation/cats/             (n/2 * ratio files)
    DEST/validation/dogs/

The source is only read: the split is made of symbolic links (falling back to
hard links, then copies) or of copies, and nothing in ``source`` is ever moved,
changed or deleted. A destination that already holds files is refused unless
``force=True``, which removes only ``DEST/train`` and ``DEST/validation``.

From the shell::

    python -m minicnn.data.split SOURCE DEST --n 10000 --ratio 0.2 --seed 0 [--copy] [--force]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys

import numpy as np

CLASS_FOLDERS = {"cat": "cats", "dog": "dogs"}
SPLITS = ("train", "validation")
# Kaggle's names: cat.123.jpg, dog.7.jpg (any case, common image extensions).
KAGGLE_NAME = re.compile(r"^(cat|dog)\..+\.(jpe?g|png|bmp)$", re.IGNORECASE)


def _inside(path, folder):
    """True when ``path`` is ``folder`` or lies under it (after resolving links)."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _place(source_file, target, link):
    """Make ``target`` a symlink / hard link / copy of ``source_file``; return which."""
    if link is True:
        try:
            os.symlink(os.path.abspath(source_file), target)
            return "symlink"
        except OSError:
            pass
        try:
            os.link(source_file, target)
            return "hardlink"
        except OSError:
            pass
    shutil.copy2(source_file, target)
    return "copy"


def _list_by_class(source):
    """{"cat": [names], "dog": [names]} sorted, and how many other entries were ignored."""
    by_class = {label: [] for label in CLASS_FOLDERS}
    ignored = 0
    for name in sorted(os.listdir(source)):            # sorted: the OS order must not matter
        match = KAGGLE_NAME.match(name)
        if match and os.path.isfile(os.path.join(source, name)):
            by_class[match.group(1).lower()].append(name)
        else:
            ignored += 1
    return by_class, ignored


def organize_kaggle_split(source, dest, n=None, ratio=0.2, seed=0, link=True, force=False):
    """Build ``dest/{train,validation}/{cats,dogs}`` from Kaggle's ``cat.N.jpg``/``dog.N.jpg``.

    ``n``: files in total, n/2 per class (default: as many as the smaller class
    allows); ``ratio``: the validation share of each class; ``seed``: the shuffle
    (same arguments -> same split); ``link``: True for links, "copy" (or False) for
    copies. Returns ``{"train": {"cats": .., "dogs": ..}, "validation": {..},
    "ignored": files that are not cat/dog images, "method": {"symlink": .., ...}}``.
    """
    if link not in (True, False, "copy"):
        raise ValueError(f"link must be True (links) or 'copy', got {link!r}")
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"ratio is the validation share, expected 0 <= ratio < 1, got {ratio!r}")
    if not os.path.isdir(source):
        raise FileNotFoundError(f"organize_kaggle_split: source folder {source!r} not found")
    if _inside(dest, source) or _inside(source, dest):
        raise ValueError(f"the destination {dest!r} and the source {source!r} must not contain "
                         "each other: the source folder is never written to")
    by_class, ignored = _list_by_class(source)
    available = {label: len(names) for label, names in by_class.items()}
    if n is None:
        n = 2 * min(available.values())
    if int(n) != n or n < 2 or n % 2:
        raise ValueError(f"n must be an even number >= 2 (n/2 files per class), got {n!r}")
    per_class = n // 2
    if min(available.values()) < per_class:
        raise ValueError(f"n={n} needs {per_class} files per class, but {source!r} has "
                         f"{available['cat']} cat and {available['dog']} dog images")

    if os.path.isdir(dest) and os.listdir(dest):
        if not force:
            raise FileExistsError(f"destination {dest!r} is not empty; pass force=True "
                                  "(--force) to replace its train/ and validation/ folders")
        for split in SPLITS:
            folder = os.path.join(dest, split)
            if os.path.islink(folder):
                raise ValueError(f"{folder!r} is a symbolic link; refusing to remove it")
            if os.path.isdir(folder):
                shutil.rmtree(folder)                   # removes links, never their targets

    rng = np.random.default_rng(seed)
    n_validation = int(round(per_class * ratio))
    summary = {split: {} for split in SPLITS}
    summary["ignored"] = ignored
    summary["method"] = {}
    for label, folder_name in CLASS_FOLDERS.items():
        chosen = [by_class[label][i] for i in rng.permutation(available[label])[:per_class]]
        parts = {"validation": chosen[:n_validation], "train": chosen[n_validation:]}
        for split in SPLITS:
            target_dir = os.path.join(dest, split, folder_name)
            os.makedirs(target_dir, exist_ok=True)
            for name in sorted(parts[split]):
                method = _place(os.path.join(source, name), os.path.join(target_dir, name),
                                link)
                summary["method"][method] = summary["method"].get(method, 0) + 1
            summary[split][folder_name] = len(parts[split])
    return summary


def main(argv=None):
    """Command line: ``python -m minicnn.data.split SOURCE DEST [options]``."""
    parser = argparse.ArgumentParser(
        prog="python -m minicnn.data.split",
        description="Split Kaggle's cats/dogs train folder into train/ and validation/ "
                    "class folders (links by default; the source is never modified).")
    parser.add_argument("source", help="folder of cat.N.jpg and dog.N.jpg files")
    parser.add_argument("dest", help="folder to create train/ and validation/ in")
    parser.add_argument("--n", type=int, default=None, help="files in total (n/2 per class)")
    parser.add_argument("--ratio", type=float, default=0.2, help="validation share")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--copy", action="store_true", help="copy files instead of linking")
    parser.add_argument("--force", action="store_true",
                        help="replace DEST/train and DEST/validation if present")
    args = parser.parse_args(argv)
    try:
        summary = organize_kaggle_split(args.source, args.dest, args.n, args.ratio, args.seed,
                                        "copy" if args.copy else True, args.force)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for split in SPLITS:
        counts = ", ".join(f"{name} {count}" for name, count in summary[split].items())
        print(f"{split}: {counts}")
    names = {"symlink": "symbolic links", "hardlink": "hard links", "copy": "copies"}
    methods = ", ".join(f"{count} {names[how]}" for how, count in summary["method"].items())
    print(f"made {methods}; ignored {summary['ignored']} other entries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
