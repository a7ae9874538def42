"""The data pipeline under misuse and mishaps: interrupted splits, symlink loops,
seeds, a full disk, and arguments out of range (issue 14)."""
import errno
import json
import os
import re
import types

import numpy as np
import pytest
from PIL import Image

import minicnn
from minicnn import Conv2D, Sequential
from minicnn.applications import extract_features
from minicnn.applications import features as features_module
from minicnn.data import DirectoryIterator, ImageDataGenerator, load_images
from minicnn.data import split as split_module
from minicnn.data.split import organize_kaggle_split

SIZE = 8


def _write_png(path, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def _class_tree(root, counts=(("cats", 3), ("dogs", 3))):
    """root/<class>/<i>.png, random pixels (so that shuffles and augmentations show)."""
    for c, (name, n) in enumerate(counts):
        (root / name).mkdir(parents=True)
        for i in range(n):
            _write_png(root / name / f"{i}.png", seed=10 * c + i)
    return root


def _kaggle_folder(root, cats=10, dogs=10):
    source = root / "kaggle_train"
    source.mkdir()
    for label, count in (("cat", cats), ("dog", dogs)):
        for i in range(count):
            (source / f"{label}.{i}.jpg").write_bytes(f"{label} {i}".encode())
    return source


def _files_under(folder):
    return sorted(os.path.relpath(os.path.join(root, name), folder)
                  for root, _, names in os.walk(folder) for name in names)


# -- 8: an interrupted split is never reused ----------------------------------------------
class Interrupt(BaseException):
    """Stands for Ctrl-C or a kill in the middle of the split."""


def _interrupt_after(monkeypatch, files):
    """Make organize_kaggle_split stop (as a KeyboardInterrupt would) after ``files`` files."""
    place, placed = split_module._place, []

    def interrupted_place(*args):
        if len(placed) == files:
            raise Interrupt
        placed.append(args)
        return place(*args)

    monkeypatch.setattr(split_module, "_place", interrupted_place)


def test_interrupted_split_leaves_no_split_behind(tmp_path, monkeypatch):
    source, dest = _kaggle_folder(tmp_path), tmp_path / "split"
    _interrupt_after(monkeypatch, 13)             # all the cats, three dogs
    with pytest.raises(Interrupt):
        organize_kaggle_split(source, dest, n=20, ratio=0.2)
    # Nothing at dest looks like a split: a reader finds no train/ with 10 cats and 3 dogs.
    assert not (dest / "train").exists() and not (dest / "validation").exists()
    assert not split_module.split_is_complete(dest)
    monkeypatch.undo()
    # What a killed run (no chance to clean up) leaves: its staging folder.
    stale = tmp_path / ".split.partial-999999999-x"
    (stale / "train").mkdir(parents=True)
    summary = organize_kaggle_split(source, dest, n=20, ratio=0.2)
    assert summary["train"] == {"cats": 8, "dogs": 8}
    assert split_module.split_is_complete(dest)
    assert sorted(os.listdir(tmp_path)) == ["kaggle_train", "split"]   # no leftovers


def test_interrupted_forced_rebuild_is_marked_incomplete(tmp_path, monkeypatch):
    source, dest = _kaggle_folder(tmp_path), tmp_path / "split"
    organize_kaggle_split(source, dest, n=20, ratio=0.2)
    # Interrupted while the new folders replace the old ones.
    rename = os.rename

    def interrupted_rename(old, new):
        if os.path.basename(new) == "validation":
            raise Interrupt
        return rename(old, new)

    monkeypatch.setattr(split_module.os, "rename", interrupted_rename)
    with pytest.raises(Interrupt):
        organize_kaggle_split(source, dest, n=16, ratio=0.5, force=True)
    monkeypatch.undo()
    state, why = split_module.split_status(dest)
    assert state == "incomplete" and "interrupted" in why
    with pytest.raises(FileExistsError, match="incomplete"):
        organize_kaggle_split(source, dest, n=16, ratio=0.5)
    organize_kaggle_split(source, dest, n=16, ratio=0.5, force=True)
    assert split_module.split_is_complete(dest)


def test_split_with_files_missing_or_added_is_incomplete(tmp_path):
    source, dest = _kaggle_folder(tmp_path), tmp_path / "split"
    organize_kaggle_split(source, dest, n=20, ratio=0.2)
    assert split_module.split_status(dest) == ("complete", "")
    (dest / "validation" / "dogs" / "dog.extra.jpg").write_bytes(b"x")
    state, why = split_module.split_status(dest)
    assert state == "incomplete" and "validation/dogs" in why and "3" in why and "2" in why
    # A split made by hand (no manifest) is told apart from one minicnn made.
    hand = tmp_path / "hand"
    for part in ("train/cats", "train/dogs", "validation/cats", "validation/dogs"):
        (hand / part).mkdir(parents=True)
    assert split_module.split_status(hand)[0] == "unmarked"
    assert split_module.split_status(tmp_path / "nothing")[0] == "absent"


@pytest.mark.parametrize("n, ratio, empty", [(2, 0.2, "validation"), (20, 0.0, "validation"),
                                             (2, 0.9, "train"), (20, 0.99, "train")])
def test_split_that_would_leave_a_folder_empty_is_refused(tmp_path, n, ratio, empty):
    source = _kaggle_folder(tmp_path)
    with pytest.raises(ValueError, match=f"{empty}/ empty"):
        organize_kaggle_split(source, tmp_path / "split", n=n, ratio=ratio)
    assert not (tmp_path / "split").exists()


def test_source_without_one_of_the_classes_is_refused(tmp_path):
    source = _kaggle_folder(tmp_path, dogs=0)
    with pytest.raises(ValueError, match="0 dog images"):
        organize_kaggle_split(source, tmp_path / "split")


# -- 16: a symlink loop lists each file once ---------------------------------------------
@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_symlink_loop_lists_each_file_once(tmp_path):
    root = _class_tree(tmp_path / "data")
    os.symlink(root / "cats", root / "cats" / "loop")        # cats/loop -> cats
    os.symlink(root, root / "dogs" / "up")                   # dogs/up -> the parent
    (root / "dogs" / "inner").mkdir()
    _write_png(root / "dogs" / "inner" / "9.png", seed=99)
    it = DirectoryIterator(str(root), target_size=(SIZE, SIZE), shuffle=False,
                           follow_links=True, workers=0)
    assert it.samples == 7
    assert it.filenames == [os.path.join("cats", f"{i}.png") for i in range(3)] + [
        os.path.join("dogs", f"{i}.png") for i in range(3)] + [
        os.path.join("dogs", "inner", "9.png")]


# -- 11: set_seed makes unseeded iterators repeat ----------------------------------------
def test_set_seed_makes_flow_from_directory_repeat(tmp_path):
    root = _class_tree(tmp_path / "data", (("cats", 5), ("dogs", 5)))

    def run():
        minicnn.set_seed(0)
        generator = ImageDataGenerator(rotation_range=30, zoom_range=0.3, horizontal_flip=True)
        it = generator.flow_from_directory(str(root), target_size=(SIZE, SIZE), batch_size=4,
                                           workers=0)
        batches = [next(it) for _ in range(5)]
        return batches, generator.get_random_transform((SIZE, SIZE, 3))

    first_batches, first_params = run()
    np.random.seed(99)               # other NumPy use in between must not matter
    second_batches, second_params = run()
    for (x1, y1), (x2, y2) in zip(first_batches, second_batches):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert first_params == second_params
    # and a different seed gives a different order or augmentation
    minicnn.set_seed(1)
    it = ImageDataGenerator(rotation_range=30).flow_from_directory(
        str(root), target_size=(SIZE, SIZE), batch_size=4, workers=0)
    assert not np.array_equal(next(it)[0], first_batches[0][0])


# -- 7: a full disk during extract_features ---------------------------------------------
def _small_base():
    return Sequential([Conv2D(4, 3, padding="same", input_shape=(SIZE, SIZE, 3), seed=1)])


def _feature_iterator(root):
    return ImageDataGenerator().flow_from_directory(
        str(root), target_size=(SIZE, SIZE), class_mode="binary", batch_size=2,
        shuffle=False, workers=0)


def test_disk_full_while_writing_features_is_a_clear_error(tmp_path, monkeypatch):
    root, cache = _class_tree(tmp_path / "data"), tmp_path / "cache"

    def full_disk(f, rows):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(features_module, "_write_rows", full_disk)
    # 6 images x (8, 8, 4) float32 outputs + the 128-byte .npy header = 6,272 bytes
    with pytest.raises(OSError, match=r"no space left .*features\.npy.*needs 6,272 bytes") \
            as caught:
        extract_features(_small_base(), _feature_iterator(root), cache_dir=cache, verbose=0)
    assert caught.value.errno == errno.ENOSPC
    assert _files_under(cache) == []             # no temporary file left behind


def test_too_little_free_space_is_refused_before_computing(tmp_path, monkeypatch):
    root, cache = _class_tree(tmp_path / "data"), tmp_path / "cache"
    usage = features_module.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(features_module.shutil, "disk_usage",
                        lambda path: usage._replace(free=1000))
    base = _small_base()
    calls = []
    forward = base.forward
    base.forward = lambda x, training=False: calls.append(len(x)) or forward(x, training)
    with pytest.raises(OSError, match=r"features\.npy.*needs 6,272 bytes.* only 1,000 .*free"):
        extract_features(base, _feature_iterator(root), cache_dir=cache, verbose=0)
    assert calls == [] and _files_under(cache) == []


# -- 17: arguments out of range -------------------------------------------------------------
@pytest.mark.parametrize("workers", [-1, 1.5, "2", True])
def test_bad_workers_are_refused_by_name(tmp_path, workers):
    root = _class_tree(tmp_path / "data")
    with pytest.raises(ValueError, match=f"workers must be .*got {workers!r}"):
        DirectoryIterator(str(root), target_size=(SIZE, SIZE), workers=workers)
    with pytest.raises(ValueError, match=f"workers must be .*got {workers!r}"):
        ImageDataGenerator().flow(np.zeros((2, SIZE, SIZE, 3)), workers=workers)
    with pytest.raises(ValueError, match=f"workers must be .*got {workers!r}"):
        load_images([root / "cats" / "0.png"], (SIZE, SIZE), workers=workers)


@pytest.mark.parametrize("argument, value", [
    ("width_shift_range", -0.1), ("height_shift_range", -3), ("width_shift_range", "0.1"),
    ("height_shift_range", [[1, 2]]), ("width_shift_range", []), ("rotation_range", "10"),
    ("shear_range", "0.2"), ("zoom_range", "0.2"), ("zoom_range", (1.2, 0.8)),
    ("zoom_range", (-0.5, 1.0))])
def test_bad_augmentation_ranges_are_refused_by_name(argument, value):
    with pytest.raises(ValueError, match=f"{argument} .*got {re.escape(repr(value))}"):
        ImageDataGenerator(**{argument: value})


def test_keras_range_forms_are_accepted_and_shown():
    generator = ImageDataGenerator(width_shift_range=[-2, 0, 2], height_shift_range=3,
                                   zoom_range=[0.5, 1.5], rotation_range=10,
                                   horizontal_flip=True)
    params = generator.get_random_transform((SIZE, SIZE, 3), seed=0)
    assert params["ty"] in (-2.0, 0.0, 2.0) and params["tx"] in (-2.0, -1.0, 0.0, 1.0, 2.0)
    assert ImageDataGenerator(zoom_range=0.25).zoom_range == (0.75, 1.25)
    assert repr(generator) == ("ImageDataGenerator(rotation_range=10, width_shift_range="
                               "[-2, 0, 2], height_shift_range=3, zoom_range=(0.5, 1.5), "
                               "horizontal_flip=True)")


def test_a_named_class_folder_that_does_not_exist_is_an_error(tmp_path):
    root = _class_tree(tmp_path / "data")
    with pytest.raises(FileNotFoundError, match=r"'zebras'.*found.*\['cats', 'dogs'\]"):
        DirectoryIterator(str(root), classes=["cats", "zebras"], target_size=(SIZE, SIZE))
    with pytest.raises(ValueError, match="more than once"):
        DirectoryIterator(str(root), classes=["cats", "cats"], target_size=(SIZE, SIZE))
    with pytest.raises(TypeError, match="list of folder names"):
        DirectoryIterator(str(root), classes="cats", target_size=(SIZE, SIZE))


def test_repr_lists_the_settings_that_differ_from_the_defaults():
    assert repr(ImageDataGenerator(horizontal_flip=True)) == \
        "ImageDataGenerator(horizontal_flip=True)"
    assert repr(ImageDataGenerator(rotation_range=1, interpolation_order=0, zoom_range=0.2)) == \
        "ImageDataGenerator(rotation_range=1, zoom_range=(0.8, 1.2), interpolation_order=0)"
    assert repr(ImageDataGenerator()) == "ImageDataGenerator()"


def scale_down(x):
    """A module-level preprocessing function: its features can be cached."""
    return x / 2


def test_feature_cache_hits_with_a_preprocessing_function(tmp_path):
    root, cache = _class_tree(tmp_path / "data"), tmp_path / "cache"
    base = _small_base()

    def features_of(function):
        it = ImageDataGenerator(preprocessing_function=function).flow_from_directory(
            str(root), target_size=(SIZE, SIZE), class_mode="binary", shuffle=False,
            workers=0)
        return extract_features(base, it, cache_dir=cache, preprocessing=None, verbose=0)

    features_of(scale_down)
    calls = []
    forward = base.forward
    base.forward = lambda x, training=False: calls.append(len(x)) or forward(x, training)
    # The same function in a later run is another object at another address: still a hit.
    features_of(types.FunctionType(scale_down.__code__, scale_down.__globals__, "scale_down"))
    assert calls == [] and len(os.listdir(cache)) == 1
    # A lambda has no stable name: computed, not cached, and said so.
    with pytest.warns(UserWarning, match="lambda.*not cached"):
        features, _ = features_of(lambda x: x / 2)
    assert len(features) == 6 and len(os.listdir(cache)) == 1


@pytest.mark.parametrize("content", ["[1, 2]", '"text"', "3", "null"])
def test_manifest_of_the_wrong_type_is_a_cache_miss(tmp_path, content):
    root, cache = _class_tree(tmp_path / "data"), tmp_path / "cache"
    base = _small_base()
    first, _ = extract_features(base, _feature_iterator(root), cache_dir=cache, verbose=0)
    (entry,) = os.listdir(cache)
    (cache / entry / "manifest.json").write_text(content)
    features, labels = extract_features(base, _feature_iterator(root), cache_dir=cache,
                                        verbose=0)
    np.testing.assert_array_equal(features, first)
    assert json.loads((cache / entry / "manifest.json").read_text())["samples"] == 6
