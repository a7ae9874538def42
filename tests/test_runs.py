"""Run folders: what save_run writes, load_run reads back, and compare_runs reports."""
import json

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
