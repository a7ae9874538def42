"""Kaggle's ``train/`` folder -> the class folders ``flow_from_directory`` reads.

    DEST/train/cats/      cat.*.jpg   (n/2 * (1 - ratio) files)
    DEST/train/dogs/      dog.*.jpg
    DEST/validation/cats/             (n/2 * ratio files)
    DEST/validation/dogs/
    DEST/split.json       the settings and counts, written last: the split is complete

The source is only read: the split is made of symbolic links (falling back to
hard links, then copies) or of copies, and nothing in ``source`` is ever moved,
changed or deleted. A destination that already holds files is refused unless
``force=True``, which replaces only ``DEST/train``, ``DEST/validation`` and
``DEST/split.json``.

A split is never half-written in place: it is built in a hidden folder beside
DEST and renamed into place once complete. Replacing an existing split
(``force=True``) marks ``split.json`` incomplete while the old folders make way
for the new ones, so an interruption there is detected too. Readers ask
:func:`split_status` (or :func:`split_is_complete`) before trusting a folder.

From the shell::

    python -m minicnn.data.split SOURCE DEST --n 10000 --ratio 0.2 --seed 0 [--copy] [--force]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import numbers
import os
import re
import shutil
import sys
import tempfile

import numpy as np

CLASS_FOLDERS = {"cat": "cats", "dog": "dogs"}
SPLITS = ("train", "validation")
MANIFEST = "split.json"
# Kaggle's names: cat.123.jpg, dog.7.jpg (any case, common image extensions).
KAGGLE_NAME = re.compile(r"^(cat|dog)\..+\.(jpe?g|png|bmp)$", re.IGNORECASE)


def split_status(folder):
    """``(state, why)``: is ``folder`` a split that can be trained on?

    state is "complete" (a split made by :func:`organize_kaggle_split` whose files
    are all there; why is ""), "incomplete" (one that was interrupted or has lost
    or gained files), "unmarked" (train/ and validation/ without ``split.json``:
    made by hand, or by an older minicnn) or "absent" (no split at all).
    """
    manifest_path = os.path.join(folder, MANIFEST)
    if not os.path.exists(manifest_path):
        if all(os.path.isdir(os.path.join(folder, split)) for split in SPLITS):
            return "unmarked", (f"{os.fspath(folder)!r} has train/ and validation/ but no "
                                f"{MANIFEST}: it was not made by organize_kaggle_split")
        return "absent", f"{os.fspath(folder)!r} holds no split (train/ and validation/)"
    rebuild = "rebuild it with organize_kaggle_split(..., force=True)"
    try:
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
        complete, counts = manifest["complete"], manifest["counts"]
        expected = {(split, name): int(counts[split][name])
                    for split in SPLITS for name in CLASS_FOLDERS.values()}
    except (OSError, ValueError, KeyError, TypeError) as error:
        return "incomplete", f"{manifest_path!r} is unreadable ({error!r}); {rebuild}"
    if complete is not True:
        return "incomplete", (f"writing the split in {os.fspath(folder)!r} was interrupted; "
                              f"{rebuild}")
    for (split, name), count in expected.items():
        class_folder = os.path.join(folder, split, name)
        found = len(os.listdir(class_folder)) if os.path.isdir(class_folder) else 0
        if found != count:
            return "incomplete", (f"{split}/{name} in {os.fspath(folder)!r} holds {found} "
                                  f"files but the split wrote {count}; {rebuild}")
    return "complete", ""


def split_is_complete(folder) -> bool:
    """True when ``folder`` holds a split made by :func:`organize_kaggle_split`, all there."""
    return split_status(folder)[0] == "complete"


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


def _write_manifest(folder, manifest):
    """``folder/split.json``, atomically (temporary file, then rename)."""
    fd, tmp = tempfile.mkstemp(prefix="." + MANIFEST + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)
        os.replace(tmp, os.path.join(folder, MANIFEST))
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _staging_prefix(dest):
    """Name prefix of the hidden folders a split of ``dest`` is built in."""
    return "." + os.path.basename(os.path.abspath(dest)) + ".partial-"


def _remove_stale_staging(dest):
    """Remove staging folders left beside ``dest`` by killed processes (POSIX only:
    their names hold the process id, and a process that no longer exists is done)."""
    if os.name != "posix":
        return
    parent, prefix = os.path.dirname(os.path.abspath(dest)), _staging_prefix(dest)
    for name in os.listdir(parent):
        pid = name[len(prefix):].split("-")[0]
        if not (name.startswith(prefix) and pid.isdigit()):
            continue
        try:
            os.kill(int(pid), 0)                  # signal 0: only asks whether it exists
        except ProcessLookupError:
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
        except (PermissionError, OverflowError):
            pass                                  # someone else's process: leave it


def organize_kaggle_split(source, dest, n=None, ratio=0.2, seed=0, link=True, force=False):
    """Build ``dest/{train,validation}/{cats,dogs}`` from Kaggle's ``cat.N.jpg``/``dog.N.jpg``.

    ``n``: files in total, n/2 per class (default: as many as the smaller class
    allows); ``ratio``: the validation share of each class; ``seed``: the shuffle
    (same arguments -> same split); ``link``: True for links, "copy" (or False) for
    copies. Every one of the four folders must get at least one file. Returns
    ``{"train": {"cats": .., "dogs": ..}, "validation": {..}, "ignored": files
    that are not cat/dog images, "method": {"symlink": .., ...}}``.
    """
    if link not in (True, False, "copy"):
        raise ValueError(f"link must be True (links) or 'copy', got {link!r}")
    if not isinstance(ratio, numbers.Real) or not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio is the validation share, expected 0 < ratio < 1, got {ratio!r}")
    if not os.path.isdir(source):
        raise FileNotFoundError(f"organize_kaggle_split: source folder {source!r} not found")
    if _inside(dest, source) or _inside(source, dest):
        raise ValueError(f"the destination {dest!r} and the source {source!r} must not contain "
                         "each other: the source folder is never written to")
    by_class, ignored = _list_by_class(source)
    available = {label: len(names) for label, names in by_class.items()}
    if min(available.values()) == 0:
        raise ValueError(f"{source!r} has {available['cat']} cat images and "
                         f"{available['dog']} dog images (named cat.N.jpg, dog.N.jpg): "
                         "both classes are needed")
    if n is None:
        n = 2 * min(available.values())
    if not isinstance(n, numbers.Integral) or n < 2 or n % 2:
        raise ValueError(f"n must be an even number >= 2 (n/2 files per class), got {n!r}")
    per_class = n // 2
    if min(available.values()) < per_class:
        raise ValueError(f"n={n} needs {per_class} files per class, but {source!r} has "
                         f"{available['cat']} cat and {available['dog']} dog images")
    n_validation = int(round(per_class * ratio))
    for split, count in (("validation", n_validation), ("train", per_class - n_validation)):
        if count == 0:
            raise ValueError(f"n={n} and ratio={ratio} would leave {split}/ empty "
                             f"({per_class} files per class, {n_validation} of them for "
                             "validation): raise n or move ratio away from 0 and 1")

    if os.path.exists(dest) and not os.path.isdir(dest):
        raise NotADirectoryError(f"destination {dest!r} is a file, not a folder")
    in_place = os.path.islink(dest) or (os.path.isdir(dest) and bool(os.listdir(dest)))
    if in_place:
        if not force:
            state, why = split_status(dest)
            if state == "incomplete":
                raise FileExistsError(f"destination {dest!r} holds an incomplete split "
                                      f"({why})")
            raise FileExistsError(f"destination {dest!r} is not empty; pass force=True "
                                  "to replace its train/ and validation/ folders")
        for split in SPLITS:
            if os.path.islink(os.path.join(dest, split)):
                raise ValueError(f"{os.path.join(dest, split)!r} is a symbolic link; "
                                 "refusing to remove it")

    parent = os.path.dirname(os.path.abspath(dest))
    os.makedirs(parent, exist_ok=True)
    _remove_stale_staging(dest)
    staging = tempfile.mkdtemp(prefix=f"{_staging_prefix(dest)}{os.getpid()}-", dir=parent)
    try:
        summary = _write_split(source, staging, by_class, per_class, n_validation, seed, link)
        summary["ignored"] = ignored
        manifest = {"complete": True, "counts": {split: summary[split] for split in SPLITS},
                    "source": os.path.abspath(source), "n": int(n), "ratio": float(ratio),
                    "seed": seed, "link": link}
        _write_manifest(staging, manifest)
        if not in_place:                         # one rename: the split appears whole
            if os.path.isdir(dest):
                os.rmdir(dest)                   # empty
            os.rename(staging, dest)
        else:                                    # several renames: marked while under way
            _write_manifest(dest, {**manifest, "complete": False})
            for split in SPLITS:
                if os.path.isdir(os.path.join(dest, split)):
                    shutil.rmtree(os.path.join(dest, split))   # removes links, not targets
                os.rename(os.path.join(staging, split), os.path.join(dest, split))
            os.replace(os.path.join(staging, MANIFEST), os.path.join(dest, MANIFEST))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary


def _write_split(source, dest, by_class, per_class, n_validation, seed, link):
    """Place the chosen files in ``dest/{train,validation}/{cats,dogs}``; the summary."""
    rng = np.random.default_rng(seed)
    summary = {split: {} for split in SPLITS}
    summary["method"] = {}
    for label, folder_name in CLASS_FOLDERS.items():
        chosen = [by_class[label][i] for i in rng.permutation(len(by_class[label]))[:per_class]]
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
