"""Bottleneck features: right values, labels from the iterator, a cache that knows its inputs."""
import json
import os
import warnings

import numpy as np
import pytest
from PIL import Image

from minicnn import Conv2D, MaxPooling2D, Sequential
from minicnn.applications import extract_features, preprocess_input
from minicnn.applications import features as features_module
from minicnn.applications.features import cache_entry
from minicnn.data import ImageDataGenerator, load_image

from float32_error import assert_within, sequential_bound

SIZE = 12


def write_images(folder, counts, seed=0):
    """folder/<class>/<class>.<i>.png with random colours; counts = {class: n}."""
    rng = np.random.default_rng(seed)
    for name, n in counts.items():
        os.makedirs(folder / name, exist_ok=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{name}.{i}.png")
    return folder


def small_base():
    return Sequential([Conv2D(4, 3, padding="same", activation="relu",
                              input_shape=(SIZE, SIZE, 3), name="c", seed=1),
                       MaxPooling2D(name="p")])


def iterator(folder, shuffle=False, generator=None, batch_size=3, **kwargs):
    generator = generator or ImageDataGenerator()
    return generator.flow_from_directory(folder, target_size=(SIZE, SIZE), class_mode="binary",
                                         batch_size=batch_size, shuffle=shuffle, workers=0,
                                         **kwargs)


@pytest.fixture
def folder(tmp_path):
    return write_images(tmp_path / "images", {"cats": 3, "dogs": 5})


class CountingBase:
    """Wraps a model to count the images that go through it (and optionally fail)."""

    def __init__(self, model, fail_after=None):
        self.model, self.images, self.fail_after = model, 0, fail_after
        self.forward_original = model.forward
        model.forward = self.forward

    def forward(self, x, training=False):
        if self.fail_after is not None and self.images >= self.fail_after:
            raise KeyboardInterrupt("interrupted")
        self.images += len(x)
        return self.forward_original(x, training)


def test_features_and_labels_follow_filenames(folder):
    it = iterator(folder)
    base = small_base()
    features, labels = extract_features(base, it, verbose=0)
    images = np.stack([load_image(p) for p in it.filepaths]).astype(np.float32)
    expected = base.predict(preprocess_input(images))
    assert features.shape == (8, 6, 6, 4) and features.dtype == np.float32
    # one conv of 3*3*3 + 1 terms, in pieces of other sizes than base.predict's
    assert_within(features, expected, sequential_bound(base, preprocess_input(images), 28))
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(labels, it.classes)


def test_labels_come_from_the_iterator_not_from_class_counts(folder):
    """With the classes listed dogs first, the five dogs come first and are class 0."""
    it = iterator(folder, classes=["dogs", "cats"])
    _, labels = extract_features(small_base(), it, verbose=0)
    assert it.filenames[0].startswith("dogs")
    np.testing.assert_array_equal(labels, [0, 0, 0, 0, 0, 1, 1, 1])


def test_rescale_mode_and_smaller_forward_batches(folder):
    it = iterator(folder, batch_size=4)
    base = small_base()
    whole, _ = extract_features(base, it, preprocessing="rescale", verbose=0)
    pieces, _ = extract_features(base, it, preprocessing="rescale", batch_size=1, verbose=0)
    images = np.stack([load_image(p) for p in it.filepaths]).astype(np.float32)
    bound = sequential_bound(base, images / 255.0, 28)   # one conv: 3*3*3 + 1 terms
    assert_within(whole, base.predict(images / 255.0), bound)
    assert_within(pieces, whole, bound)


def test_a_copy_of_the_folder_keeps_its_features(folder, tmp_path):
    """New modification times (a copy, a fresh download) with the same bytes: a hit."""
    import shutil
    cache = tmp_path / "cache"
    base = small_base()
    first, _ = extract_features(base, iterator(folder), cache_dir=cache, verbose=0)
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy, copy_function=shutil.copyfile)     # new mtimes
    assert os.stat(copy / "cats" / "cats.0.png").st_mtime_ns != \
        os.stat(folder / "cats" / "cats.0.png").st_mtime_ns
    counter = CountingBase(base)
    again, _ = extract_features(base, iterator(copy), cache_dir=cache, verbose=0)
    assert counter.images == 0
    np.testing.assert_array_equal(again, first)


def test_augmented_copies_are_one_epoch_of_random_variants_each(folder, tmp_path):
    """An augmenting iterator gives the features of its next epoch's variants, cached
    under (seed, epoch): the same pair is a cache hit, another epoch or seed a new copy."""
    cache = tmp_path / "cache"
    base = small_base()
    flips = ImageDataGenerator(horizontal_flip=True, zoom_range=0.3)
    it = iterator(folder, generator=flips, seed=7)
    reference = iterator(folder, generator=flips, seed=7)
    images = np.concatenate([x for x, _ in reference.epoch()])     # epoch 0's variants
    plain = np.stack([load_image(p) for p in it.filepaths]).astype(np.float32)
    assert not np.array_equal(images, plain)
    copy0, labels = extract_features(base, it, cache_dir=cache, verbose=0)
    bound = sequential_bound(base, preprocess_input(images), 28)   # one conv: 3*3*3 + 1 terms
    assert_within(copy0, base.predict(preprocess_input(images)), bound)
    np.testing.assert_array_equal(labels, it.classes)
    assert it.next_epoch == 1
    copy1, _ = extract_features(base, it, cache_dir=cache, verbose=0)     # epoch 1
    assert not np.allclose(copy1, copy0)
    manifests = [json.loads((cache / e / "manifest.json").read_text())
                 for e in sorted(os.listdir(cache))]
    assert sorted(m["preprocessing"]["random_variants"]["epoch"] for m in manifests) == [0, 1]

    counter = CountingBase(base)
    rerun = iterator(folder, generator=flips, seed=7)
    again, _ = extract_features(base, rerun, cache_dir=cache, verbose=0)
    again1, _ = extract_features(base, rerun, cache_dir=cache, verbose=0)
    assert counter.images == 0                          # epochs 0 and 1 of seed 7: hits
    np.testing.assert_array_equal(again, copy0)
    np.testing.assert_array_equal(again1, copy1)        # a hit moves on to the next epoch
    assert rerun.next_epoch == 2
    assert cache_entry(base, iterator(folder, generator=flips, seed=8), cache)[1] is False
    # Without augmentation nothing of the iterator's seed enters the key.
    assert cache_entry(base, iterator(folder, seed=1), cache)[0] == \
        cache_entry(base, iterator(folder, seed=2), cache)[0]


def test_cache_is_reused_for_the_same_inputs(folder, tmp_path):
    cache = tmp_path / "cache"
    base = small_base()
    first, labels = extract_features(base, iterator(folder), cache_dir=cache, verbose=0)
    first = np.array(first)
    entries = os.listdir(cache)
    assert len(entries) == 1
    assert sorted(os.listdir(cache / entries[0])) == ["features.npy", "labels.npy",
                                                       "manifest.json"]
    manifest = json.loads((cache / entries[0] / "manifest.json").read_text())
    assert manifest["sources"][0][:2] == ["cats/cats.0.png",
                                          os.path.getsize(folder / "cats" / "cats.0.png")]
    assert manifest["preprocessing"]["mode"] == "caffe"
    assert [l["config"]["name"] for l in manifest["model"]["layers"]] == ["c", "p"]

    assert cache_entry(base, iterator(folder), cache) == (str(cache / entries[0]), True)
    assert cache_entry(base, iterator(folder), cache, "rescale")[1] is False
    counter = CountingBase(base)
    again, labels_again = extract_features(base, iterator(folder), cache_dir=cache, verbose=0)
    assert counter.images == 0          # loaded, not recomputed
    np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(labels_again, labels)


@pytest.mark.parametrize("change", ["edit a file", "add a file", "remove a file",
                                    "other preprocessing", "other weights", "other code"])
def test_cache_recomputes_when_an_input_changes(folder, tmp_path, change, monkeypatch):
    cache = tmp_path / "cache"
    base = small_base()
    target = folder / "dogs" / "dogs.2.png"
    if change == "edit a file":     # stored uncompressed: any pixels give the same size
        Image.fromarray(np.zeros((SIZE, SIZE, 3), np.uint8)).save(target, compress_level=0)
    extract_features(base, iterator(folder), cache_dir=cache, verbose=0)
    mode = "caffe"
    if change == "edit a file":
        before = os.stat(target)
        Image.fromarray(np.full((SIZE, SIZE, 3), 200, np.uint8)).save(target, compress_level=0)
        # Same size and mtime as before (a coarse clock, a restored backup): the bytes tell.
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert os.path.getsize(target) == before.st_size
    elif change == "add a file":
        write_images(folder, {"cats": 4}, seed=3)
    elif change == "remove a file":
        os.remove(folder / "cats" / "cats.1.png")
    elif change == "other preprocessing":
        mode = "rescale"
    elif change == "other code":      # e.g. a kernel was fixed since the features were made
        monkeypatch.setattr(features_module, "code_identity", lambda: "edited")
    else:
        kernel, bias = base.get_layer("c").get_weights()
        base.get_layer("c").set_weights([kernel * 2, bias])
    counter = CountingBase(base)
    it = iterator(folder)
    features, labels = extract_features(base, it, cache_dir=cache, preprocessing=mode,
                                        verbose=0)
    assert counter.images == it.samples == len(features) == len(labels)
    assert len(os.listdir(cache)) == 2       # the earlier entry is still there


def test_interrupted_run_leaves_no_entry(folder, tmp_path):
    cache = tmp_path / "cache"
    base = small_base()
    CountingBase(base, fail_after=3)
    with pytest.raises(KeyboardInterrupt):
        extract_features(base, iterator(folder), cache_dir=cache, verbose=0)
    (entry,) = os.listdir(cache)
    assert os.listdir(cache / entry) == []   # no manifest, no half-written features


def test_unreadable_file_is_skipped_and_labels_stay_aligned(folder):
    (folder / "cats" / "cats.1b.png").write_bytes(b"not an image")
    it = iterator(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        features, labels = extract_features(small_base(), it, verbose=0)
    assert it.samples == 9 and len(features) == len(labels) == 8
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 1, 1, 1])


def test_no_cache_dir_leaves_nothing_behind(folder, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    os.makedirs(tmp_path / "tmp")
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    features, _ = extract_features(small_base(), iterator(folder), verbose=0)
    assert features.shape[0] == 8 and np.isfinite(features).all()
    assert os.listdir(tmp_path / "tmp") == []


def test_bad_iterators_are_refused(folder):
    base = small_base()
    with pytest.raises(ValueError, match="shuffle=False"):
        extract_features(base, iterator(folder, shuffle=True), verbose=0)
    with pytest.raises(ValueError, match="already rescales"):
        extract_features(base, iterator(folder, generator=ImageDataGenerator(
            rescale=1 / 255)), verbose=0)
    wrong_size = ImageDataGenerator().flow_from_directory(folder, target_size=(10, 10),
                                                          shuffle=False, workers=0)
    with pytest.raises(ValueError, match=r"shape \(10, 10, 3\) but the base model expects "
                                         r"\(12, 12, 3\)"):
        extract_features(base, wrong_size, verbose=0)
    with pytest.raises(TypeError, match="needs a DirectoryIterator"):
        extract_features(base, [np.zeros((1, SIZE, SIZE, 3))], verbose=0)
    with pytest.raises(ValueError, match="unknown preprocessing 'torch'"):
        extract_features(base, iterator(folder), preprocessing="torch", verbose=0)
