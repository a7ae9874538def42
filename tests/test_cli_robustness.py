"""The ``minicnn`` command refuses what cannot work before writing anything, never
replaces an earlier result by accident, and says what it did in plain words."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from minicnn import cli, tutorial
from minicnn.data import write_shapes_directory

from checkout import git_status

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_jpeg(path, seed, size=24):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)


def kaggle_folder(folder, per_class=5):
    """A flat folder of cat.N.jpg and dog.N.jpg, as Kaggle's train.zip unpacks."""
    folder.mkdir()
    for i in range(per_class):
        write_jpeg(folder / f"cat.{i}.jpg", i)
        write_jpeg(folder / f"dog.{i}.jpg", 100 + i)
    return folder


def fake_training(calls):
    """A stand-in for tutorial.train_cats_dogs that writes a model.h5 where it is told."""
    def train(**kwargs):
        calls.append(kwargs)
        with open(os.path.join(kwargs["output"], "model.h5"), "w") as f:
            f.write(f"model of call {len(calls)}")
        return {"best_val_accuracy": 0.52, "best_epoch": 1, "epochs_run": 2,
                "seconds_per_epoch": 1.0, "data": "synthetic: stripes", "synthetic": True}
    return train


def one_error_line(err, command):
    assert err.startswith(f"minicnn {command}: error: ") and err.count("\n") == 1, err
    return err


# -- 2: every run gets its own folder -----------------------------------------------------
def test_demo_does_not_replace_the_model_train_wrote(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    monkeypatch.setattr(tutorial, "train_cats_dogs", fake_training(calls))
    data = write_shapes_directory(str(tmp_path / "data"), n_train=4, n_validation=2, size=16)
    assert cli.main(["train", "--data", data]) == 0
    assert cli.main(["demo", "--quick"]) == 0
    train_run, demo_run = (call["output"] for call in calls)
    assert os.path.dirname(train_run) == os.path.dirname(demo_run) == "runs"
    assert os.path.basename(train_run).startswith("cats_dogs-")
    assert os.path.basename(demo_run).startswith("demo-")
    with open(os.path.join(train_run, "model.h5")) as f:
        assert f.read() == "model of call 1"                 # train's model is still there
    out = capsys.readouterr().out
    assert f"written to {train_run}" in out and f"run folder: {demo_run}" in out
    assert "best validation accuracy 0.5200 at epoch 1 of 2" in out


@pytest.mark.parametrize("command", [["demo"], ["train", "--data", "."]])
def test_an_output_folder_with_files_needs_force(command, tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    monkeypatch.setattr(tutorial, "train_cats_dogs", fake_training(calls))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "model.h5").write_text("precious")
    assert cli.main([*command, "--output", "mine"]) == 1
    err = one_error_line(capsys.readouterr().err, command[0])
    assert "'mine'" in err and "model.h5" in err and "--force" in err
    assert "force=True" not in err                           # command-line words only
    assert calls == [] and (tmp_path / "mine" / "model.h5").read_text() == "precious"
    assert cli.main([*command, "--output", "mine", "--force"]) == 0
    assert calls[0]["output"] == "mine"


def test_compare_does_not_replace_a_plot_without_force(tmp_path, capsys):
    from minicnn.callbacks import History
    from minicnn.runs import save_run
    history = History()
    history.history = {"val_accuracy": [0.5, 0.75], "loss": [0.7, 0.5]}
    run = str(save_run(tmp_path / "run", history))
    plot = tmp_path / "compare.png"
    plot.write_bytes(b"an earlier plot")
    assert cli.main(["compare", run, "--plot", str(plot)]) == 1
    err = one_error_line(capsys.readouterr().err, "compare")
    assert "compare.png" in err and "--force" in err
    assert plot.read_bytes() == b"an earlier plot"
    assert cli.main(["compare", run, "--plot", str(plot), "--force"]) == 0
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_the_api_refuses_a_run_folder_with_files(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.h5").write_text("precious")
    with pytest.raises(FileExistsError, match="force=True"):
        tutorial.train_cats_dogs(output=str(tmp_path / "run"), epochs=1)
    assert (tmp_path / "run" / "model.h5").read_text() == "precious"


# -- 17: wrong arguments are refused up front ---------------------------------------------
@pytest.mark.parametrize("arguments, expected", [
    (["train", "--data", "kaggle", "--epochs", "0"], "whole number >= 1, got '0'"),
    (["train", "--data", "kaggle", "--epochs", "-1"], "whole number >= 1, got '-1'"),
    (["train", "--data", "kaggle", "--epochs", "two"], "expected a whole number, got 'two'"),
    (["train", "--data", "kaggle", "--batch-size", "0"], "got '0'"),
    (["train", "--data", "kaggle", "--image-size", "4"], ">= 8"),
    (["train", "--data", "kaggle", "--ratio", "1"], "0 < ratio < 1"),
    (["train", "--data", "kaggle", "--ratio", "0"], "0 < ratio < 1"),
    (["demo", "--epochs", "0"], "got '0'"),
    (["organize", "kaggle", "split", "--ratio", "1.5"], "0 <= ratio < 1"),
    (["evaluate", "m.h5", "kaggle", "--scale", "nan"], "finite number > 0, got 'nan'"),
    (["evaluate", "m.h5", "kaggle", "--scale", "inf"], "finite number > 0, got 'inf'"),
    (["predict", "m.h5", "kaggle", "--scale", "0"], "finite number > 0, got '0'"),
])
def test_wrong_numbers_are_refused_before_anything_is_written(arguments, expected, tmp_path,
                                                              monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    kaggle_folder(tmp_path / "kaggle")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(arguments)
    assert exit_info.value.code == 2
    assert expected in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["kaggle"]        # no runs/, no split


def test_too_few_photos_for_a_split_are_refused_up_front(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    kaggle_folder(tmp_path / "kaggle")
    # 4 photos at ratio 0.2: 2 per class, round(0.4) = 0 for validation.
    assert cli.main(["train", "--data", "kaggle", "--n", "4"]) == 1
    err = one_error_line(capsys.readouterr().err, "train")
    assert "--n 4 with --ratio 0.2" in err and "0 validation" in err
    assert "use --n 6 or more" in err
    assert cli.main(["train", "--data", "kaggle", "--n", "7"]) == 1
    assert "must be even" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["kaggle"]


def test_the_api_checks_its_arguments_before_writing(tmp_path):
    for kwargs, message in (({"epochs": 0}, "epochs must be a whole number >= 1, got 0"),
                            ({"epochs": -1}, "epochs must be"),
                            ({"n": 4}, "n=4 with ratio=0.2"),
                            ({"ratio": 0.0}, "0 < ratio < 1")):
        with pytest.raises(ValueError, match=message):
            tutorial.train_cats_dogs(output=str(tmp_path / "run"), **kwargs)
    assert not (tmp_path / "run").exists()


def test_smallest_split_size_gives_every_class_both_splits():
    for ratio in (0.05, 0.2, 0.5, 0.9):
        n = tutorial.smallest_split_size(ratio)
        train, validation = tutorial.split_counts(n, ratio)
        assert train >= 1 and validation >= 1
        assert tutorial.split_size_problem(n - 2, ratio) is not None


# -- 21: predict, submit, bench, evaluate, organize say what they mean ---------------------
def test_evaluate_on_a_flat_kaggle_folder_points_at_organize(tmp_path, capsys):
    from minicnn.tutorial import build_cats_dogs_model, compile_cats_dogs

    model = compile_cats_dogs(build_cats_dogs_model((16, 16, 3)), epochs=1)
    model.save(tmp_path / "model.h5")
    kaggle_folder(tmp_path / "kaggle")
    assert cli.main(["evaluate", str(tmp_path / "model.h5"), str(tmp_path / "kaggle")]) == 1
    err = one_error_line(capsys.readouterr().err, "evaluate")
    assert "no class folders" in err and "minicnn organize" in err


def test_organize_refusal_speaks_command_line_words(tmp_path, capsys):
    kaggle_folder(tmp_path / "kaggle")
    (tmp_path / "split").mkdir()
    (tmp_path / "split" / "notes.txt").write_text("mine")
    assert cli.main(["organize", str(tmp_path / "kaggle"), str(tmp_path / "split")]) == 1
    err = one_error_line(capsys.readouterr().err, "organize")
    assert "--force" in err and "force=True" not in err
    assert cli.main(["organize", str(tmp_path / "kaggle"), str(tmp_path / "split"),
                     "--force"]) == 0
    assert (tmp_path / "split" / "notes.txt").read_text() == "mine"


def test_submit_shows_progress(tmp_path, monkeypatch):
    from minicnn.tutorial import build_cats_dogs_model, compile_cats_dogs

    class Bar:
        def __init__(self, total, description):
            self.total, self.count = total, 0
            bars.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *error):
            return False

        def update(self, count):
            self.count += count

    bars = []
    monkeypatch.setattr(tutorial, "_progress_bar", Bar)
    compile_cats_dogs(build_cats_dogs_model((16, 16, 3)), epochs=1).save(tmp_path / "m.h5")
    (tmp_path / "test1").mkdir()
    for i in (1, 2, 3):
        write_jpeg(tmp_path / "test1" / f"{i}.jpg", i)
    assert cli.main(["submit", str(tmp_path / "m.h5"), str(tmp_path / "test1"),
                     str(tmp_path / "s.csv")]) == 0
    assert [(bar.total, bar.count) for bar in bars] == [(3, 3)]


def test_bench_write_goes_to_the_checkout_it_is_started_in(tmp_path, monkeypatch, capsys):
    from minicnn.bench import output

    # minicnn installed elsewhere (not beside a benchmarks/ folder)...
    monkeypatch.setattr(output, "__file__",
                        str(tmp_path / "site-packages" / "minicnn" / "bench" / "output.py"))
    # ... and started inside a source checkout: --write goes to its benchmarks/results/.
    checkout = tmp_path / "clone"
    (checkout / "minicnn").mkdir(parents=True)
    (checkout / "minicnn" / "__init__.py").write_text("")
    (checkout / "benchmarks").mkdir()
    (checkout / "benchmarks" / "run.py").write_text("")
    monkeypatch.chdir(checkout / "minicnn")
    assert output.results_folder() == str(checkout / "benchmarks" / "results")
    monkeypatch.chdir(tmp_path)                               # not a checkout
    assert cli.main(["bench", "--write"]) == 1
    err = one_error_line(capsys.readouterr().err, "bench")
    assert "source checkout" in err


# -- 19: synthetic data is called synthetic ------------------------------------------------
def test_demo_help_describes_the_data_it_really_uses(capsys):
    with pytest.raises(SystemExit):
        cli.main(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "horizontal vs vertical stripes" in text and "circles" not in text


# -- 18: the slow first batch is explained -------------------------------------------------
def test_cold_numba_cache_is_detected(tmp_path):
    code = ("from minicnn import tutorial; "
            "print(tutorial.cpu_kernels_need_compiling())")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), MINICNN_DISABLE_NUMBA="0")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


# -- every command with its default outputs leaves the repository as it was ----------------
def entries(folder):
    return set(os.listdir(folder)) if os.path.isdir(folder) else set()


def test_commands_with_default_outputs_leave_the_checkout_clean(tmp_path, monkeypatch):
    import shutil

    before = git_status()
    if before is None:
        pytest.skip(f"{REPO} is not a git checkout (or git is missing)")
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    monkeypatch.delenv("MINICNN_VGG16_WEIGHTS", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))   # random weights: fast
    runs = os.path.join(REPO, "runs")
    features_cache = os.path.join(REPO, ".minicnn_cache", "features")
    existing, existing_features = entries(runs), entries(features_cache)
    kaggle = kaggle_folder(tmp_path / "kaggle", per_class=6)
    split = str(tmp_path / "split")
    try:
        assert cli.main(["demo", "--epochs", "1", "--image-size", "16"]) == 0
        assert cli.main(["organize", str(kaggle), split, "--n", "12", "--ratio", "0.5"]) == 0
        assert cli.main(["train", "--data", split, "--epochs", "1", "--image-size", "16",
                         "--batch-size", "4"]) == 0
        created = sorted(set(os.listdir(runs)) - existing)
        assert [name.split("-")[0] for name in created] == ["cats_dogs", "demo"]
        train_run = os.path.join(runs, created[0])
        model = os.path.join(train_run, "model.h5")
        assert cli.main(["evaluate", model, os.path.join(split, "validation")]) == 0
        assert cli.main(["predict", model, os.path.join(split, "validation")]) == 0
        (tmp_path / "test1").mkdir()
        write_jpeg(tmp_path / "test1" / "1.jpg", 1)
        assert cli.main(["submit", model, str(tmp_path / "test1"),
                         str(tmp_path / "submission.csv")]) == 0
        assert cli.main(["compare", train_run, os.path.join(runs, created[1])]) == 0
        assert cli.main(["features", os.path.join(split, "validation"),
                         "--image-size", "32"]) == 0
        with open(os.path.join(runs, created[1], "results.json")) as f:
            demo_results = json.load(f)
        assert demo_results["synthetic"] is True and "synthetic" in demo_results["data"]
        assert git_status() == before
    finally:        # remove what this test made, and only that
        for folder, kept in ((runs, existing), (features_cache, existing_features)):
            for name in entries(folder) - kept:
                shutil.rmtree(os.path.join(folder, name))
            if not kept and os.path.isdir(folder) and not os.listdir(folder):
                os.rmdir(folder)
        cache_root = os.path.dirname(features_cache)
        if os.path.isdir(cache_root) and not os.listdir(cache_root):
            os.rmdir(cache_root)
