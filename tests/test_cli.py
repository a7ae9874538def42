"""The ``minicnn`` command: every subcommand on tiny generated data, and its error handling."""
import csv
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from minicnn import History, cli, locate
from minicnn.data import write_shapes_directory
from minicnn.runs import save_run

SUBCOMMANDS = ["demo", "organize", "train", "evaluate", "predict", "submit", "features",
               "compare", "bench"]


def write_jpeg(path, seed, size=24):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny training run through ``minicnn train``: (split folder, run folder)."""
    root = tmp_path_factory.mktemp("cli")
    split = write_shapes_directory(str(root / "shapes"), n_train=16, n_validation=8, size=32)
    run = str(root / "run")
    assert cli.main(["train", "--data", split, "--output", run, "--epochs", "1",
                     "--image-size", "32", "--batch-size", "8"]) == 0
    return split, run


def test_help_in_a_fresh_process():
    result = subprocess.run([sys.executable, "-m", "minicnn", "--help"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0
    for name in SUBCOMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([name, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: minicnn {name}" in capsys.readouterr().out


def test_no_command_prints_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "usage: minicnn" in capsys.readouterr().out


def test_organize_splits_a_kaggle_folder(tmp_path, capsys):
    source = tmp_path / "kaggle"
    source.mkdir()
    for i in range(5):
        write_jpeg(source / f"cat.{i}.jpg", i)
        write_jpeg(source / f"dog.{i}.jpg", 10 + i)
    assert cli.main(["organize", str(source), str(tmp_path / "split"), "--n", "10",
                     "--ratio", "0.4", "--copy"]) == 0
    assert len(os.listdir(tmp_path / "split" / "validation" / "cats")) == 2
    assert len(os.listdir(tmp_path / "split" / "train" / "dogs")) == 3
    assert "train: cats 3, dogs 3" in capsys.readouterr().out
    assert len(os.listdir(source)) == 10                        # the source is untouched


def test_train_writes_a_run_folder(trained):
    _, run = trained
    for name in ("model.h5", "history.json", "curves.png", "results.json"):
        assert os.path.isfile(os.path.join(run, name))


def test_evaluate_prints_loss_and_accuracy(trained, capsys):
    split, run = trained
    assert cli.main(["evaluate", os.path.join(run, "model.h5"),
                     os.path.join(split, "validation")]) == 0
    out = capsys.readouterr().out
    assert "8 images in 2 classes ['cats', 'dogs']" in out
    accuracy = float(out.split("accuracy: ")[1].split()[0])
    assert 0.0 <= accuracy <= 1.0


def predictions(out):
    """The header and the rows of ``minicnn predict``'s tab-separated output."""
    header, *rows = [line.split("\t") for line in out.splitlines()]
    return header, rows


def test_predict_files_and_folders(trained, capsys):
    split, run = trained
    folder = os.path.join(split, "validation", "cats")
    one = os.path.join(split, "validation", "dogs", sorted(os.listdir(
        os.path.join(split, "validation", "dogs")))[0])
    assert cli.main(["predict", os.path.join(run, "model.h5"), one, folder]) == 0
    header, rows = predictions(capsys.readouterr().out)
    # The header says what each number is: the predicted class's probability, then each
    # class's (names from results.json beside the model).
    assert header == ["path", "predicted", "P(predicted)", "P(cats)", "P(dogs)"]
    assert len(rows) == 1 + len(os.listdir(folder))
    path, name, probability, p_cats, p_dogs = rows[0]
    assert path == one and name in ("cats", "dogs")
    assert float(probability) == max(float(p_cats), float(p_dogs)) >= 0.5
    # printed with 4 decimals: each probability is off by up to 5e-5 from its float32 value
    assert float(p_cats) + float(p_dogs) == pytest.approx(1.0, abs=2e-4)


def test_predict_looks_into_class_folders(trained, capsys):
    split, run = trained
    assert cli.main(["predict", os.path.join(run, "model.h5"),
                     os.path.join(split, "validation")]) == 0
    _, rows = predictions(capsys.readouterr().out)
    assert len(rows) == 8                                    # 4 cats and 4 dogs below it
    assert {os.path.basename(os.path.dirname(row[0])) for row in rows} == {"cats", "dogs"}


def test_predict_with_class_names_option(trained, capsys):
    split, run = trained
    folder = os.path.join(split, "validation", "dogs")
    assert cli.main(["predict", os.path.join(run, "model.h5"), folder,
                     "--classes", "kitty,puppy"]) == 0
    header, rows = predictions(capsys.readouterr().out)
    assert header[3:] == ["P(kitty)", "P(puppy)"]
    assert {row[1] for row in rows} <= {"kitty", "puppy"}
    assert cli.main(["predict", os.path.join(run, "model.h5"), folder,
                     "--classes", "a,b,c"]) == 1


def test_submit_writes_the_kaggle_csv(trained, tmp_path):
    _, run = trained
    test_dir = tmp_path / "test1"
    test_dir.mkdir()
    for i in (1, 2, 10):
        write_jpeg(test_dir / f"{i}.jpg", i, size=40)
    out = tmp_path / "submission.csv"
    assert cli.main(["submit", os.path.join(run, "model.h5"), str(test_dir), str(out)]) == 0
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", "label"] and [r[0] for r in rows[1:]] == ["1", "2", "10"]
    assert all(0.0 <= float(r[1]) <= 1.0 for r in rows[1:])


def test_features_caches_vgg16_outputs(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MINICNN_VGG16_WEIGHTS", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))      # no weights there
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for label in ("cats", "dogs"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(2):
            write_jpeg(tmp_path / "imgs" / label / f"{i}.jpg", i, size=32)
    args = ["features", str(tmp_path / "imgs"), "--cache", str(tmp_path / "cache"),
            "--image-size", "32", "--batch-size", "4"]
    assert cli.main(args) == 0
    captured = capsys.readouterr()
    assert "randomly initialised VGG16" in captured.err and locate.VGG16_URL in captured.err
    assert "features (4, 1, 1, 512) and labels (4,)" in captured.out
    (entry,) = os.listdir(tmp_path / "cache")
    labels = np.load(tmp_path / "cache" / entry / "labels.npy")
    np.testing.assert_array_equal(labels, [0, 0, 1, 1])


def test_compare_runs_table_and_plot(tmp_path, capsys):
    for name, curve in (("a", [0.5, 0.7]), ("b", [0.6, 0.65, 0.9])):
        history = History()
        for epoch, value in enumerate(curve):
            history.on_epoch_end(epoch, {"val_accuracy": value, "val_loss": 1 - value})
        save_run(tmp_path / name, history, {"name": name})
    plot = tmp_path / "compare.png"
    assert cli.main(["compare", str(tmp_path / "a"), str(tmp_path / "b"),
                     "--plot", str(plot)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["a", "2", "2", "0.7000", "0.7000"]
    assert lines[2].split() == ["b", "3", "3", "0.9000", "0.9000"]
    assert plot.is_file()
    assert cli.main(["compare", str(tmp_path / "missing")]) == 1


def test_demo_trains_on_synthetic_data(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    assert cli.main(["demo", "--output", str(tmp_path / "demo"), "--epochs", "1",
                     "--image-size", "24"]) == 0
    captured = capsys.readouterr()
    assert "synthetic" in captured.err.lower()
    assert "trained on synthetic data" in captured.out
    assert os.path.isfile(tmp_path / "demo" / "model.h5")


def test_demo_quick_uses_the_tutorials_settings(tmp_path, monkeypatch, capsys):
    from minicnn import tutorial

    calls = []
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    monkeypatch.setattr(tutorial, "train_cats_dogs", lambda **kw: calls.append(kw) or {
        "best_val_accuracy": 0.5, "best_epoch": 1, "epochs_run": 3, "seconds_per_epoch": 1.0,
        "data": "synthetic: stripes", "synthetic": True})
    assert cli.main(["demo", "--quick", "--output", str(tmp_path)]) == 0
    assert calls[0]["epochs"] == tutorial.demo_settings()["epochs"]
    assert calls[0]["n"] == tutorial.demo_settings()["n"]
    # The best epoch is named, not the number of epochs run.
    assert "best validation accuracy 0.5000 at epoch 1 of 3" in capsys.readouterr().out


def test_bench_runs_the_packaged_benchmark_with_its_options(monkeypatch):
    from minicnn.bench import runner

    calls = []
    monkeypatch.setattr(runner, "run", lambda args, command: calls.append((args, command)))
    assert cli.main(["bench", "--quick", "--out", "x", "--no-references", "--device", "cpu"]) == 0
    (args, command), = calls
    assert (args.quick, args.out, args.no_references, args.device, args.write) == \
        (True, "x", True, "cpu", False)
    assert command == "minicnn bench --quick --out x --no-references --device cpu"
    assert cli.main(["--debug", "bench", "--smoke"]) == 0
    assert calls[-1][1] == "minicnn bench --smoke" and calls[-1][0].smoke
    for wrong in (["bench", "--write", "--out", "x"], ["bench", "--no-such-option"],
                  ["bench", "--device", "tpu"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(wrong)
        assert exit_info.value.code == 2


def test_bench_write_outside_a_checkout_is_one_clear_line(tmp_path, monkeypatch, capsys):
    from minicnn.bench import output

    # minicnn installed elsewhere (not beside a benchmarks/ folder), started outside a clone
    monkeypatch.setattr(output, "__file__",
                        str(tmp_path / "site-packages" / "minicnn" / "bench" / "output.py"))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["bench", "--write", "--device", "cpu", "--smoke"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "source checkout" in err and "--out" in err
    assert os.listdir(tmp_path) == []          # refused before measuring or writing


def test_errors_are_one_line_unless_debug(tmp_path, capsys):
    missing = str(tmp_path / "nope.h5")
    assert cli.main(["evaluate", missing, str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("minicnn evaluate: error: model file") and err.count("\n") == 1
    assert "Traceback" not in err
    with pytest.raises(cli.CommandError):
        cli.main(["--debug", "evaluate", missing, str(tmp_path)])
    assert cli.main(["train", "--data", str(tmp_path / "no_photos")]) == 1
    assert "data folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:             # a wrong command line: code 2
        cli.main(["train"])
    assert exit_info.value.code == 2


def test_library_errors_become_one_line(tmp_path, capsys):
    bad = tmp_path / "model.h5"
    bad.write_text("not hdf5")
    assert cli.main(["predict", str(bad), str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("minicnn predict: error: cannot read model file")
    assert err.count("\n") == 1


def test_vgg16_weights_from_option_variable_or_keras_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MINICNN_VGG16_WEIGHTS", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cli.find_vgg16_weights() is None
    cached = tmp_path / "keras" / "models" / locate.VGG16_NOTOP_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")
    assert cli.find_vgg16_weights() == str(cached)
    monkeypatch.setenv("MINICNN_VGG16_WEIGHTS", str(tmp_path / "missing.h5"))
    with pytest.raises(cli.CommandError, match=r"from \$MINICNN_VGG16_WEIGHTS"):
        cli.find_vgg16_weights()
    assert cli.find_vgg16_weights(str(cached)) == str(cached)
