"""The cats/dogs recipe end to end on tiny generated photos: run folder and submission."""
import csv
import json

import numpy as np
import pytest
from PIL import Image

from minicnn import load_model, tutorial
from minicnn.data import write_shapes_directory


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cats_dogs")
    data = write_shapes_directory(root / "data", n_train=24, n_validation=12, size=32,
                                  kind="stripes")
    results = tutorial.train_cats_dogs(data=str(data), output=str(root / "run"), epochs=2,
                                       batch_size=8, image_size=32, verbose=0, workers=1)
    return root, results


def test_the_run_folder_has_model_history_plots_and_config(run):
    root, results = run
    folder = root / "run"
    for name in ("model.h5", "history.json", "history.csv", "curves.png", "config.json",
                 "results.json"):
        assert (folder / name).is_file(), name
    history = json.loads((folder / "history.json").read_text())["history"]
    assert len(history["val_accuracy"]) == results["epochs_run"] <= 2
    assert results["train_samples"] == 24 and results["validation_samples"] == 12
    assert results["class_indices"] == {"cats": 0, "dogs": 1}
    assert Image.open(folder / "curves.png").size == (900, 360)   # viz: 10 x 4 inches, 90 dpi
    model = load_model(folder / "model.h5")
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 2)


def test_tutorial_model_matches_the_keras_tutorial():
    model = tutorial.build_cats_dogs_model()
    assert [type(l).__name__ for l in model.layers] == [
        "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D",
        "Dropout", "Flatten", "Dense", "Dropout", "Dense"]
    assert model.layers[7].output_shape == (18 * 18 * 64,)
    assert model.count_params() == 1_355_938
    tutorial.compile_cats_dogs(model, epochs=50)
    assert model.optimizer.decay == pytest.approx(0.01 / 50)
    assert model.optimizer.momentum == 0.9


def test_submission_is_sorted_by_numeric_id(run, tmp_path):
    root, _ = run
    rng = np.random.default_rng(0)
    for image_id in (10, 2, 1):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(
            tmp_path / f"{image_id}.jpg")
    out = tmp_path / "submission.csv"
    count = tutorial.write_kaggle_submission(root / "run" / "model.h5", tmp_path, out)
    rows = list(csv.reader(out.open()))
    assert count == 3 and rows[0] == ["id", "label"]
    assert [r[0] for r in rows[1:]] == ["1", "2", "10"]
    assert all(0.0 <= float(r[1]) <= 1.0 for r in rows[1:])


def test_a_missing_data_folder_says_how_to_get_the_data(tmp_path):
    with pytest.raises(FileNotFoundError, match="kaggle.com/c/dogs-vs-cats"):
        tutorial.train_cats_dogs(data=str(tmp_path / "nope"), output=str(tmp_path / "run"))


def test_results_name_the_best_epoch(run):
    root, results = run
    history = json.loads((root / "run" / "history.json").read_text())["history"]
    accuracies = history["val_accuracy"]
    assert results["best_epoch"] == accuracies.index(max(accuracies)) + 1
    assert results["best_val_accuracy"] == max(accuracies)
    assert results["synthetic"] is False and results["output"] == str(root / "run")


def test_synthetic_data_is_called_synthetic_everywhere(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    titles = []
    real_plot = tutorial.plot_history
    monkeypatch.setattr(tutorial, "plot_history",
                        lambda *a, **kw: titles.append(kw.get("title")) or real_plot(*a, **kw))
    # A cold numba cache: the slow first batch is announced once, before training.
    monkeypatch.setattr(tutorial, "cpu_kernels_need_compiling", lambda: True)
    monkeypatch.setattr(tutorial.backend, "device", lambda: "cpu")
    results = tutorial.train_cats_dogs(output=str(tmp_path / "run"), epochs=1, image_size=16,
                                       verbose=1, workers=1)
    err = capsys.readouterr().err
    assert "SYNTHETIC" in err and "horizontal vs vertical stripes" in err
    assert err.count("real photos") == 1                     # said once, not "get the real photos"
    assert err.count("compiling the CPU kernels") == 1
    assert results["synthetic"] is True and results["data"].startswith("synthetic")
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["synthetic"] is True and saved["data"] == results["data"]
    # Its classes are stripes, not cats and dogs.
    assert saved["class_indices"] == {"horizontal_stripes": 0, "vertical_stripes": 1}
    assert len(titles) == 1 and "SYNTHETIC" in titles[0] and "run" in titles[0]


def test_wrong_arguments_make_no_run_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="epochs"):
        tutorial.train_cats_dogs(epochs=0)
    assert not (tmp_path / "runs").exists()                  # refused before any folder


def test_an_interrupted_split_is_never_trained_on(tmp_path):
    """Issue 14, item 8: a split whose writing was interrupted (split.json not marked
    complete) is refused with the reason; the tutorial's own work split is rebuilt."""
    from minicnn.data import organize_kaggle_split

    source = tmp_path / "kaggle"
    source.mkdir()
    for label in ("cat", "dog"):
        for i in range(10):
            (source / f"{label}.{i}.jpg").write_bytes(b"x")
    split = tmp_path / "split"
    organize_kaggle_split(str(source), str(split), n=20, ratio=0.2, seed=0)
    manifest = json.loads((split / "split.json").read_text())
    (split / "split.json").write_text(json.dumps({**manifest, "complete": False}))
    with pytest.raises(ValueError, match="interrupted"):
        tutorial.prepare_split(str(split), str(tmp_path / "run"))
    # the tutorial's own split folder, left incomplete by a killed run, is made again
    work = tutorial.prepare_split(str(source), str(tmp_path / "run"), n=20)
    manifest_path = tmp_path / "run" / "split_n20_r0.2_s0" / "split.json"
    manifest_path.write_text(json.dumps({**json.loads(manifest_path.read_text()),
                                         "complete": False}))
    assert tutorial.prepare_split(str(source), str(tmp_path / "run"), n=20) == work
    assert json.loads(manifest_path.read_text())["complete"] is True
