"""DirectoryIterator (flow_from_directory), load_image, and the Kaggle test-set helpers."""
import os
import threading
import warnings

import numpy as np
import pytest
from PIL import Image

from minicnn.data import (DirectoryIterator, ImageDataGenerator, list_test_images, load_image,
                          load_images, write_submission)

# File names chosen so that lexicographic order (Keras's) differs from numeric order.
NAMES = ("img1.png", "img10.png", "img2.png")


def _write_png(path, value, size=(6, 8)):
    """An RGB PNG of one colour (value, 2 * value % 256, 7): lossless, so identifiable."""
    array = np.zeros(size + (3,), np.uint8)
    array[...] = (value, (2 * value) % 256, 7)
    Image.fromarray(array).save(path)


@pytest.fixture
def class_tree(tmp_path):
    """tmp/data/{cats,dogs,zebras}/img*.png; pixel value = 10 * (class * 3 + file) + 10."""
    root = tmp_path / "data"
    for c, cls in enumerate(("cats", "dogs", "zebras")):
        (root / cls).mkdir(parents=True)
        for f, name in enumerate(NAMES):
            _write_png(root / cls / name, 10 * (c * 3 + f) + 10)
    (root / "cats" / "readme.txt").write_text("not an image")
    return root


def _value_of(path):
    return int(np.asarray(Image.open(path))[0, 0, 0])


def test_order_labels_and_filenames_without_shuffle(class_tree):
    it = DirectoryIterator(str(class_tree), target_size=(6, 8), batch_size=4, shuffle=False,
                           class_mode="sparse", workers=2)
    assert it.samples == 9 and len(it) == 3 and it.num_classes == 3
    assert it.class_indices == {"cats": 0, "dogs": 1, "zebras": 2}
    assert it.filenames[:3] == [os.path.join("cats", n) for n in sorted(NAMES)]
    assert list(it.classes) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    batches = list(it.epoch())
    assert [len(x) for x, _ in batches] == [4, 4, 1]
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    expected = [_value_of(class_tree / name) for name in it.filenames]
    assert list(x[:, 0, 0, 0].astype(int)) == expected       # batches follow `filenames`
    assert np.array_equal(y, it.classes.astype(np.float32))
    it.close()


def test_explicit_classes_choose_and_order_the_folders(class_tree):
    it = DirectoryIterator(str(class_tree), classes=["zebras", "cats"], target_size=(6, 8),
                           shuffle=False, class_mode="binary", workers=0)
    assert it.class_indices == {"zebras": 0, "cats": 1}
    assert it.filenames[0].startswith("zebras") and it.samples == 6
    x, y = next(it)
    assert list(y) == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize("class_mode, y_shape", [("categorical", (9, 3)), ("sparse", (9,)),
                                                 (None, None)])
def test_class_modes(class_tree, class_mode, y_shape):
    it = DirectoryIterator(str(class_tree), target_size=(5, 7), batch_size=16,
                           class_mode=class_mode, seed=0, workers=1)
    batch = next(it)
    if class_mode is None:
        assert isinstance(batch, np.ndarray) and batch.shape == (9, 5, 7, 3)
        assert batch.dtype == np.float32
        return
    x, y = batch
    assert x.shape == (9, 5, 7, 3) and x.dtype == np.float32 and y.dtype == np.float32
    assert y.shape == y_shape
    if class_mode == "categorical":
        assert np.array_equal(y.sum(axis=1), np.ones(9)) and set(np.unique(y)) == {0.0, 1.0}


def test_binary_mode_needs_two_classes(class_tree):
    with pytest.raises(ValueError, match="exactly 2 classes"):
        DirectoryIterator(str(class_tree), class_mode="binary")
    it = DirectoryIterator(str(class_tree), classes=["cats", "dogs"], class_mode="binary",
                           target_size=(6, 8), batch_size=6, shuffle=False, workers=0)
    x, y = next(it)
    assert y.shape == (6,) and list(y) == [0, 0, 0, 1, 1, 1]


def test_bad_arguments_are_named(tmp_path, class_tree):
    with pytest.raises(FileNotFoundError, match="no folder"):
        DirectoryIterator(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="color_mode"):
        DirectoryIterator(str(class_tree), color_mode="cmyk")
    with pytest.raises(ValueError, match="interpolation"):
        DirectoryIterator(str(class_tree), interpolation="cubic-ish")
    with pytest.raises(ValueError, match="class_mode"):
        DirectoryIterator(str(class_tree), class_mode="input")


def test_resize_is_pillows_nearest_by_default_and_other_filters_differ(tmp_path):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(array).save(tmp_path / "a.png")
    nearest = load_image(tmp_path / "a.png", (7, 11))
    expected = np.asarray(Image.fromarray(array).resize((11, 7), Image.Resampling.NEAREST))
    assert nearest.shape == (7, 11, 3) and np.array_equal(nearest, expected)
    bilinear = load_image(tmp_path / "a.png", (7, 11), interpolation="bilinear")
    assert not np.array_equal(bilinear, nearest)


def _odd_format_files(folder):
    """Files in modes other than RGB; returns {name: expected RGB of pixel (0, 0)}."""
    expected = {}
    gray = Image.fromarray(np.full((8, 8), 90, np.uint8))                  # L
    gray.save(folder / "gray.png")
    expected["gray.png"] = (90, 90, 90)
    palette = Image.new("P", (8, 8))
    palette.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    palette.paste(1, (0, 0, 8, 8))
    palette.save(folder / "palette.png")
    expected["palette.png"] = (200, 100, 50)
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[...] = (10, 20, 30, 0)                                            # fully transparent
    Image.fromarray(rgba).save(folder / "rgba.png")
    expected["rgba.png"] = (10, 20, 30)                                    # alpha dropped
    la = Image.merge("LA", [Image.new("L", (8, 8), 60), Image.new("L", (8, 8), 255)])
    la.save(folder / "la.png")
    expected["la.png"] = (60, 60, 60)
    Image.new("CMYK", (8, 8), (0, 0, 0, 0)).save(folder / "cmyk.jpg", quality=100)
    expected["cmyk.jpg"] = (255, 255, 255)
    sixteen = Image.fromarray(np.full((8, 8), 257 * 100, np.uint16))       # I;16
    assert sixteen.mode.startswith("I;16")
    sixteen.save(folder / "sixteen.png")
    expected["sixteen.png"] = (100, 100, 100)                              # scaled, not clipped
    return expected


def test_odd_formats_are_converted_to_rgb_and_grayscale(tmp_path):
    folder = tmp_path / "data" / "things"
    folder.mkdir(parents=True)
    expected = _odd_format_files(folder)
    it = DirectoryIterator(str(tmp_path / "data"), target_size=(4, 4), batch_size=32,
                           shuffle=False, class_mode=None, workers=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                  # every file must load cleanly
        x = next(it)
    assert x.shape == (len(expected), 4, 4, 3)
    for name, pixel in zip(it.filenames, x[:, 0, 0]):
        want = expected[os.path.basename(name)]
        assert np.allclose(pixel, want, atol=2), (name, pixel, want)   # JPEG: +-2
    gray = DirectoryIterator(str(tmp_path / "data"), target_size=(4, 4), color_mode="grayscale",
                             shuffle=False, class_mode=None, workers=0)
    xg = next(gray)
    assert xg.shape == (len(expected), 4, 4, 1)
    by_name = dict(zip((os.path.basename(n) for n in gray.filenames), xg[:, 0, 0, 0]))
    assert by_name["gray.png"] == 90 and by_name["sixteen.png"] == 100


def _truncated_jpeg(path):
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path, quality=90)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_corrupt_and_truncated_files_are_skipped_with_one_warning_each(class_tree):
    (class_tree / "dogs" / "x.jpg").write_bytes(np.random.default_rng(0).bytes(500))
    _truncated_jpeg(class_tree / "cats" / "img15.jpg")
    it = DirectoryIterator(str(class_tree), target_size=(6, 8), batch_size=4, shuffle=False,
                           class_mode="sparse", workers=2)
    assert it.samples == 11 and len(it) == 3
    with pytest.warns(RuntimeWarning) as record:
        first = list(it.epoch())
        second = list(it.epoch())
    messages = [str(w.message) for w in record if "unreadable" in str(w.message)]
    assert len(messages) == 2                            # once per file, not once per epoch
    assert any("x.jpg" in m for m in messages) and any("img15.jpg" in m for m in messages)
    # Batches are filled from the next files: only the last one of the epoch is short.
    assert [len(b[0]) for b in first] == [4, 4, 1] == [len(b[0]) for b in second]
    good = [i for i, name in enumerate(it.filenames) if not name.endswith(".jpg")]
    y = np.concatenate([b[1] for b in first])
    assert np.array_equal(y, it.classes[good].astype(np.float32))
    assert {it.filenames[i] for i in it.skipped_files} == {os.path.join("cats", "img15.jpg"),
                                                           os.path.join("dogs", "x.jpg")}


def _all_batches(root, seed, workers, epochs=2):
    gen = ImageDataGenerator(rescale=1 / 255, shear_range=20, zoom_range=0.3,
                             horizontal_flip=True)
    with gen.flow_from_directory(str(root), target_size=(9, 9), batch_size=4, seed=seed,
                                 workers=workers, class_mode="categorical") as it:
        return [batch for _ in range(epochs) for batch in it.epoch()]


@pytest.fixture
def textured_tree(tmp_path):
    """Two classes of 5 random-texture PNGs, so augmentation visibly changes pixels."""
    rng = np.random.default_rng(5)
    for cls in ("cats", "dogs"):
        (tmp_path / cls).mkdir()
        for i in range(5):
            Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(
                tmp_path / cls / f"{cls}{i}.png")
    return tmp_path


def test_same_output_for_any_number_of_workers(textured_tree):
    reference = _all_batches(textured_tree, seed=7, workers=0)
    for workers in (1, 2, 3):
        batches = _all_batches(textured_tree, seed=7, workers=workers)
        assert len(batches) == len(reference) == 6
        for (x, y), (x_ref, y_ref) in zip(batches, reference):
            assert np.array_equal(x, x_ref) and np.array_equal(y, y_ref)


def test_seeded_shuffles_repeat_and_change_every_epoch(textured_tree):
    def orders(seed):
        it = DirectoryIterator(str(textured_tree), target_size=(4, 4), batch_size=10, seed=seed,
                               class_mode="sparse", workers=1)
        return [tuple(next(it)[0][:, 0, 0, 0]) for _ in range(3)]
    first, again, other = orders(3), orders(3), orders(4)
    assert first == again
    assert first != other
    assert first[0] != first[1] or first[1] != first[2]          # reshuffled per epoch
    assert sorted(first[0]) == sorted(first[1])                  # same images, new order


def test_iteration_is_endless_and_reset_starts_a_new_epoch(class_tree):
    it = DirectoryIterator(str(class_tree), target_size=(6, 8), batch_size=4, shuffle=False,
                           class_mode="sparse", workers=2)
    sizes = [len(next(it)[0]) for _ in range(7)]
    assert sizes == [4, 4, 1, 4, 4, 1, 4]                        # loops over epochs
    assert it.current_epoch == 2
    it.reset()                                                   # mid-epoch: start afresh
    assert [len(x) for x, _ in it.epoch()] == [4, 4, 1]
    it.reset()                                                   # between epochs: a no-op
    assert it.current_epoch == 4


def test_skip_epoch_passes_over_the_next_epoch(textured_tree):
    """skip_epoch() leaves the iterator where epoch() would: the epoch after holds the
    same (seeded) batches either way, whether skipped from a boundary or mid-epoch."""
    def make():
        return DirectoryIterator(str(textured_tree), target_size=(4, 4), batch_size=10,
                                 seed=5, class_mode="sparse", workers=1)
    walked, skipped = make(), make()
    assert walked.next_epoch == skipped.next_epoch == 0
    list(walked.epoch())
    skipped.skip_epoch()
    assert walked.next_epoch == skipped.next_epoch == 1
    next(walked), next(skipped)                                  # mid-epoch 1
    assert walked.next_epoch == skipped.next_epoch == 2
    list(walked.epoch())
    skipped.skip_epoch()
    assert walked.current_epoch == skipped.current_epoch == 3
    assert np.array_equal(next(walked)[0], next(skipped)[0])     # epoch 3's first batch


def test_close_stops_the_worker_threads(class_tree):
    before = {t for t in threading.enumerate() if t.name.startswith("minicnn-data")}
    with DirectoryIterator(str(class_tree), target_size=(6, 8), workers=2) as it:
        next(it)
        running = {t for t in threading.enumerate() if t.name.startswith("minicnn-data")}
        assert running - before
    after = {t for t in threading.enumerate() if t.name.startswith("minicnn-data")}
    assert not (after - before)
    x, _ = next(it)                                              # still usable after close
    assert len(x) == 9
    it.close()


def test_an_empty_tree_reports_no_samples(tmp_path):
    (tmp_path / "cats").mkdir()
    it = DirectoryIterator(str(tmp_path), workers=0)
    assert it.samples == 0 and len(it) == 0
    with pytest.raises(ValueError, match="no samples"):
        next(it)


# -- Kaggle's test folder and submission -------------------------------------------------------
def test_list_test_images_sorts_ids_numerically(tmp_path):
    for i in (10, 2, 1, 33):
        _write_png(tmp_path / f"{i}.png", i)
    (tmp_path / "notes.txt").write_text("x")
    ids, paths = list_test_images(tmp_path)
    assert ids == [1, 2, 10, 33]
    assert [os.path.basename(p) for p in paths] == ["1.png", "2.png", "10.png", "33.png"]


def test_load_images_reports_corrupt_files(tmp_path):
    for i in (1, 2):
        _write_png(tmp_path / f"{i}.png", 40 * i)
    (tmp_path / "3.jpg").write_bytes(b"\x00" * 100)
    ids, paths = list_test_images(tmp_path)
    with pytest.warns(RuntimeWarning, match="3.jpg"):
        x, failed = load_images(paths, (3, 4), workers=2)
    assert x.shape == (3, 3, 4, 3) and x.dtype == np.float32
    assert list(x[:, 0, 0, 0]) == [40, 80, 0] and failed == [paths[2]]


def test_write_submission_sorts_by_id_and_validates(tmp_path):
    path = tmp_path / "submission.csv"
    write_submission([10, 2, 1], np.array([[0.25], [1.0], [0.0]]), path)
    assert path.read_text().splitlines() == ["id,label", "1,0.000000", "2,1.000000",
                                             "10,0.250000"]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        write_submission([1, 2], [0.5, 1.5], path)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        write_submission([1, 2], [0.5, float("nan")], path)
    with pytest.raises(ValueError, match="2 ids but 3"):
        write_submission([1, 2], [0.5, 0.5, 0.5], path)
    with pytest.raises(ValueError, match="unique"):
        write_submission([1, 1], [0.5, 0.5], path)
    # The failed calls left the earlier file intact and no temporary files behind.
    assert path.read_text().startswith("id,label\n1,0.000000")
    assert os.listdir(tmp_path) == ["submission.csv"]
