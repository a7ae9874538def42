"""Run folders: what save_run writes, load_run reads back, and compare_runs reports."""
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from minicnn import Dense, History, Sequential, load_model
from minicnn.runs import best_epoch, compare_runs, load_run, save_run


def make_history(val_accuracy, val_loss=None):
    history = History()
    val_loss = val_loss or [1 - a for a in val_accuracy]
    for epoch, (acc, loss) in enumerate(zip(val_accuracy, val_loss)):
        history.on_epoch_end(epoch, {"loss": loss, "accuracy": acc, "val_loss": loss,
                                     "val_accuracy": acc})
    return history


def test_save_and_load_run_round_trip(tmp_path):
    model = Sequential([Dense(2, activation="softmax", input_shape=(3,))])
    model.compile("sgd", "categorical_crossentropy", ["accuracy"])
    history = make_history([0.5, 0.7, 0.6])
    folder = save_run(tmp_path / "run1", history,
                      {"lr": np.float32(0.5), "shape": (1, 2), "optimizer": model.optimizer},
                      model)
    names = sorted(p.name for p in (tmp_path / "run1").iterdir())
    assert names == ["config.json", "history.csv", "history.json", "model.h5"]
    loaded, config = load_run(folder)
    assert loaded.history == history.history
    assert config["lr"] == 0.5 and config["shape"] == [1, 2]
    assert config["optimizer"].startswith("<")           # not JSON: stored as its str
    np.testing.assert_array_equal(load_model(tmp_path / "run1" / "model.h5").get_weights()[0],
                                  model.get_weights()[0])
    assert "val_accuracy" in (tmp_path / "run1" / "history.csv").read_text().splitlines()[0]


def test_save_run_errors(tmp_path):
    with pytest.raises(TypeError, match="History"):
        save_run(tmp_path / "r", {"loss": [1.0]})
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        save_run(tmp_path / "file", make_history([0.5]))
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        load_run(tmp_path)


def test_best_epoch_maximises_accuracy_and_minimises_loss():
    assert best_epoch([0.2, 0.9, 0.5], "val_accuracy") == (2, 0.9)
    assert best_epoch([0.9, 0.2, 0.5], "val_loss") == (2, 0.2)
    with pytest.raises(ValueError):
        best_epoch([], "val_loss")


def test_compare_runs_table_and_plot(tmp_path, capsys):
    save_run(tmp_path / "baseline", make_history([0.6, 0.8, 0.75, 0.7]), {"dropout": False})
    save_run(tmp_path / "dropout", make_history([0.55, 0.7, 0.82]), {"dropout": True})
    rows = compare_runs([tmp_path / "baseline", tmp_path / "dropout"],
                        path=tmp_path / "compare.png")
    assert rows == [
        {"run": "baseline", "epochs": 4, "best_epoch": 2, "best": 0.8, "last": 0.7},
        {"run": "dropout", "epochs": 3, "best_epoch": 3, "best": 0.82, "last": 0.82},
    ]
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["run", "epochs", "best", "epoch"]
    assert table[1].split() == ["baseline", "4", "2", "0.8000", "0.7000"]
    with Image.open(tmp_path / "compare.png") as png:
        assert png.size == (630, 405)                  # 7 x 4.5 inches at 90 dpi
    losses = compare_runs([tmp_path / "dropout"], metric="val_loss", print_table=False)
    assert losses[0]["best_epoch"] == 3 and losses[0]["best"] == pytest.approx(0.18)


def test_compare_runs_errors(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        compare_runs([])
    save_run(tmp_path / "r", make_history([0.5]))
    with pytest.raises(KeyError, match="val_auc"):
        compare_runs([tmp_path / "r"], metric="val_auc")


def test_config_is_plain_json(tmp_path):
    save_run(tmp_path / "r", make_history([0.5]), {"nested": {"a": [1, 2.5, None, True]}})
    assert json.loads((tmp_path / "r" / "config.json").read_text()) == {
        "nested": {"a": [1, 2.5, None, True]}}


# ---- prepare_run_folder: where a command writes its results -----------------------------

def test_prepare_run_folder_default_makes_a_new_timestamped_folder_each_time(tmp_path):
    from minicnn.runs import prepare_run_folder
    first = prepare_run_folder(default_name="demo", root=tmp_path / "runs")
    second = prepare_run_folder(default_name="demo", root=tmp_path / "runs")
    assert first != second
    for folder in (first, second):
        assert os.path.isdir(folder)
        assert re.fullmatch(r"demo-\d{8}-\d{6}(-\d+)?", os.path.basename(folder))
        assert os.path.dirname(folder) == str(tmp_path / "runs")


def test_prepare_run_folder_refuses_a_folder_with_files_unless_forced(tmp_path):
    from minicnn.runs import prepare_run_folder
    folder = tmp_path / "mine"
    assert prepare_run_folder(folder) == str(folder)          # created when missing
    assert prepare_run_folder(folder) == str(folder)          # empty: fine
    (folder / ".model.h5.abcd.tmp").write_text("")            # a leftover temp file: fine
    assert prepare_run_folder(folder) == str(folder)
    (folder / "model.h5").write_text("precious")
    with pytest.raises(FileExistsError) as error:
        prepare_run_folder(folder)
    message = str(error.value)
    assert "mine" in message and "model.h5" in message and "force=True" in message
    assert "--force" not in message                           # the API speaks API words
    with pytest.raises(FileExistsError, match="--force"):
        prepare_run_folder(folder, hint="choose another --output or pass --force to replace them")
    assert prepare_run_folder(folder, force=True) == str(folder)
    assert (folder / "model.h5").read_text() == "precious"    # force uses it; nothing deleted


def test_prepare_run_folder_refuses_a_file(tmp_path):
    from minicnn.runs import prepare_run_folder
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError):
        prepare_run_folder(tmp_path / "f", force=True)


def test_compare_plot_keeps_accuracy_on_a_fixed_range_with_whole_epochs(tmp_path):
    from minicnn.runs import plot_runs

    fig = plot_runs({"a": [0.515], "b": [0.522, 0.518]}, "val_accuracy")
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    assert low <= 0.5 and high >= 1.0                        # noise does not look like a trend
    fig.canvas.draw()
    left, right = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if left <= t <= right]
    assert ticks and all(float(t).is_integer() for t in ticks)
