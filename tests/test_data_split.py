"""organize_kaggle_split: counts, balance, determinism, and a source left untouched."""
import os

import pytest

from minicnn.data.split import main, organize_kaggle_split


def _kaggle_folder(root, cats=12, dogs=10, extra=("notes.txt", "cat.jpg.bak", "bird.1.jpg")):
    """A fake Kaggle train folder: small fake JPEG files plus some unrelated entries."""
    source = root / "kaggle_train"
    source.mkdir()
    for label, count in (("cat", cats), ("dog", dogs)):
        for i in range(count):
            (source / f"{label}.{i}.jpg").write_bytes(f"{label} {i}".encode())
    for name in extra:
        (source / name).write_text("not a training image")
    (source / "subfolder").mkdir()
    return source


def _snapshot(folder):
    """Everything observable about a folder's entries: names, contents, mtimes."""
    state = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        info = os.lstat(path)
        content = open(path, "rb").read() if os.path.isfile(path) else None
        state[name] = (info.st_mtime_ns, info.st_size, content)
    return state


def _listing(dest):
    return {split: {cls: sorted(os.listdir(dest / split / cls)) for cls in ("cats", "dogs")}
            for split in ("train", "validation")}


def test_counts_balance_and_ignored_entries(tmp_path):
    source = _kaggle_folder(tmp_path)
    summary = organize_kaggle_split(source, tmp_path / "out", n=20, ratio=0.2, seed=0)
    assert summary["train"] == {"cats": 8, "dogs": 8}
    assert summary["validation"] == {"cats": 2, "dogs": 2}
    assert summary["ignored"] == 4           # notes.txt, cat.jpg.bak, bird.1.jpg, subfolder/
    listing = _listing(tmp_path / "out")
    assert all(name.startswith("cat.") for name in listing["train"]["cats"]
               + listing["validation"]["cats"])
    assert all(name.startswith("dog.") for name in listing["train"]["dogs"]
               + listing["validation"]["dogs"])
    # Train and validation are disjoint.
    for cls in ("cats", "dogs"):
        assert not set(listing["train"][cls]) & set(listing["validation"][cls])
    # Links resolve to the source content.
    one = listing["train"]["dogs"][0]
    assert (tmp_path / "out" / "train" / "dogs" / one).read_bytes() == (source / one).read_bytes()


def test_default_n_uses_the_smaller_class(tmp_path):
    summary = organize_kaggle_split(_kaggle_folder(tmp_path), tmp_path / "out", ratio=0.5)
    assert summary["train"] == {"cats": 5, "dogs": 5}
    assert summary["validation"] == {"cats": 5, "dogs": 5}


def test_same_arguments_same_split_and_seed_matters(tmp_path):
    source = _kaggle_folder(tmp_path)
    organize_kaggle_split(source, tmp_path / "a", n=16, seed=1)
    organize_kaggle_split(source, tmp_path / "b", n=16, seed=1, link="copy")
    organize_kaggle_split(source, tmp_path / "c", n=16, seed=2)
    assert _listing(tmp_path / "a") == _listing(tmp_path / "b")
    assert _listing(tmp_path / "a") != _listing(tmp_path / "c")


def test_source_is_never_touched(tmp_path):
    source = _kaggle_folder(tmp_path)
    before = _snapshot(source)
    organize_kaggle_split(source, tmp_path / "out", n=20, seed=0)
    organize_kaggle_split(source, tmp_path / "out", n=16, seed=3, force=True)
    organize_kaggle_split(source, tmp_path / "copy", n=8, link="copy")
    assert _snapshot(source) == before


def test_copy_makes_real_files(tmp_path):
    source = _kaggle_folder(tmp_path)
    organize_kaggle_split(source, tmp_path / "out", n=10, link="copy")
    for split in ("train", "validation"):
        for path in (tmp_path / "out" / split / "cats").iterdir():
            assert path.is_file() and not path.is_symlink()


def test_non_empty_destination_refused_unless_forced(tmp_path):
    source = _kaggle_folder(tmp_path)
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_text("the user's own file")
    with pytest.raises(FileExistsError, match="not empty"):
        organize_kaggle_split(source, dest, n=8)
    assert sorted(os.listdir(dest)) == ["keep.txt"]          # nothing written on refusal
    organize_kaggle_split(source, dest, n=20, force=True)
    summary = organize_kaggle_split(source, dest, n=8, ratio=0.5, force=True)
    assert summary["train"] == {"cats": 2, "dogs": 2}
    assert sum(len(v) for v in _listing(dest)["train"].values()) == 4   # old files gone
    assert (dest / "keep.txt").read_text() == "the user's own file"


def test_too_few_files_names_the_counts(tmp_path):
    source = _kaggle_folder(tmp_path, cats=3, dogs=7)
    with pytest.raises(ValueError, match="3 cat and 7 dog"):
        organize_kaggle_split(source, tmp_path / "out", n=10)
    with pytest.raises(ValueError, match="even"):
        organize_kaggle_split(source, tmp_path / "out", n=5)


def test_destination_inside_source_is_refused(tmp_path):
    source = _kaggle_folder(tmp_path)
    with pytest.raises(ValueError, match="must not contain"):
        organize_kaggle_split(source, source / "split", n=4)
    assert not (source / "split").exists()


def test_command_line(tmp_path, capsys):
    source = _kaggle_folder(tmp_path)
    assert main([str(source), str(tmp_path / "out"), "--n", "10", "--ratio", "0.2",
                 "--seed", "0", "--copy"]) == 0
    assert "train: cats 4, dogs 4" in capsys.readouterr().out
    assert main([str(source), str(tmp_path / "out"), "--n", "10"]) == 1
    assert "not empty" in capsys.readouterr().err
    assert main([str(source), str(tmp_path / "out"), "--n", "10", "--force"]) == 0
