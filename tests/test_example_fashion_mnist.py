"""examples/fashion_mnist.py runs end to end on a tiny fake Fashion-MNIST."""
import importlib.util
import json
import os
import struct

import numpy as np
import pytest

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "examples", "fashion_mnist.py")


def write_idx(path, array):
    """An uncompressed IDX file: 0x00 0x00, type 0x08 (uint8), ndim, big-endian sizes, data."""
    array = np.asarray(array, dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, array.ndim]))
        f.write(struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.tobytes())


@pytest.fixture
def fake_fashion_mnist(tmp_path):
    """Ten images per class in training, three in test: bright stripes at a class-given row."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "idx"
    folder.mkdir()
    for split, per_class in (("train", 10), ("t10k", 3)):
        labels = np.repeat(np.arange(10), per_class)
        images = rng.integers(0, 60, (len(labels), 28, 28))
        images[np.arange(len(labels)), 2 + 2 * labels] = 255
        write_idx(folder / f"{split}-images-idx3-ubyte", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte", labels)
    return folder


def load_example():
    spec = importlib.util.spec_from_file_location("fashion_mnist_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_walkthrough_writes_every_output(fake_fashion_mnist, tmp_path, capsys):
    example = load_example()
    output = tmp_path / "out"
    results = example.main(["--data", str(fake_fashion_mnist), "--epochs", "2",
                            "--baseline-epochs", "1", "--output", str(output),
                            "--batch-size", "16", "--verbose", "0"])
    for name in ("samples.png", "baseline_curves.png", "dropout_curves.png",
                 "compare_dropout.png", "correct.png", "confusion_matrix.png",
                 "filters.png", "feature_maps.png", "classification_report.txt",
                 "results.json"):
        assert (output / name).is_file(), name
    saved = json.loads((output / "results.json").read_text())
    assert saved["test_accuracy_dropout"] == results["test_accuracy_dropout"]
    assert sum(map(sum, saved["confusion_matrix"])) == 30          # every test image
    assert saved["epochs_baseline"] == 1 and saved["epochs_dropout"] == 2
    report = (output / "classification_report.txt").read_text()
    assert "Ankle boot" in report and "T-shirt/top" in report
    out = capsys.readouterr().out
    assert "split 80/20: 80 training, 20 validation, 30 test images" in out
    for run in ("baseline", "dropout"):
        assert (output / "runs" / run / "history.json").is_file()


def test_results_name_the_data_without_this_machines_folders(fake_fashion_mnist, tmp_path,
                                                              monkeypatch):
    """A data folder beside the current one is recorded as ../<name>, as typed."""
    here = tmp_path / "clone"
    here.mkdir()
    monkeypatch.chdir(here)
    example = load_example()
    results = example.main(["--data", str(fake_fashion_mnist), "--epochs", "1",
                            "--baseline-epochs", "1", "--output", "out", "--verbose", "0"])
    assert results["data"] == "../idx"
    assert results["command"].startswith("python examples/fashion_mnist.py --data ../idx ")


def test_missing_data_names_every_way_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICNN_FASHION_MNIST", str(tmp_path / "nowhere"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        load_example().main([])
    message = str(stop.value.code)
    assert "\n" not in message
    for hint in ("--data", "MINICNN_FASHION_MNIST", "apt-get install dataset-fashion-mnist",
                 "~/.keras/datasets/fashion-mnist"):
        assert hint in message, hint
    assert not (tmp_path / "runs").exists()          # no run folder for a run that never began
