"""The FLOP counts behind the benchmark's GFLOP/s columns, checked by hand; where the
benchmarks write their results and how they record paths."""
import os

import pytest

import minicnn
from minicnn import locate
from minicnn.bench import output, runner as run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _net():
    model = minicnn.Sequential([
        minicnn.Conv2D(4, 3, activation="relu", input_shape=(10, 10, 3)),   # -> 8x8x4
        minicnn.MaxPooling2D(),                                             # -> 4x4x4
        minicnn.Conv2D(6, 3, padding="same"),                               # -> 4x4x6
        minicnn.Flatten(),
        minicnn.Dense(5),
    ])
    model.build((10, 10, 3))
    return model


def test_layer_flops_count_two_per_multiply_add():
    model = _net()
    assert run.layer_flops(model.layers[0], 2) == (2 * 2 * 8 * 8 * 27 * 4, 2 * 2 * 2 * 8 * 8 * 27 * 4)
    assert run.layer_flops(model.layers[2], 1) == (2 * 4 * 4 * 36 * 6, 4 * 4 * 4 * 36 * 6)
    assert run.layer_flops(model.layers[4], 1) == (2 * 96 * 5, 4 * 96 * 5)
    assert run.layer_flops(model.layers[1], 1) == (0, 0)


def test_workload_flops_skip_the_first_layers_input_gradient_in_training():
    model = _net()
    forward = 2 * (8 * 8 * 27 * 4 + 4 * 4 * 36 * 6 + 96 * 5)
    backward = 2 * 8 * 8 * 27 * 4 + 4 * (4 * 4 * 36 * 6 + 96 * 5)
    assert run.workload_flops("tutorial", model) == {"tutorial_train": forward + backward,
                                                     "tutorial_infer": forward}
    assert run.workload_flops("vgg16", model) == {"vgg16_extract": forward}


# -- where the benchmarks write, and how they name paths --------------------------------


def _output_args(argv):
    import argparse

    parser = argparse.ArgumentParser()
    output.add_output_options(parser, "bench")
    return parser.parse_args(argv)


def test_results_go_to_a_new_run_folder_unless_write_or_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = output.output_folder(_output_args([]), "bench")
    second = output.output_folder(_output_args([]), "bench")
    assert first != second                                 # never the same folder twice
    for folder in (first, second):
        assert os.path.dirname(folder) == "runs" and os.path.basename(folder).startswith("bench-")
        assert os.listdir(folder) == []
    assert output.output_folder(_output_args(["--out", "mine"]), "bench") == "mine"
    assert (tmp_path / "mine").is_dir()
    written = output.output_folder(_output_args(["--write"]), "bench")
    assert os.path.samefile(written, os.path.join(REPO, "benchmarks", "results"))
    with pytest.raises(SystemExit):
        _output_args(["--write", "--out", "x"])


def test_recorded_command_names_paths_without_this_machines_folders(tmp_path, monkeypatch):
    repo = tmp_path / "work" / "clone"
    repo.mkdir(parents=True)
    monkeypatch.chdir(repo)
    monkeypatch.setenv("HOME", str(tmp_path / "home" / "me"))
    photos = str(tmp_path / "work" / "shared" / "data" / "train")     # beside the clone
    weights = str(tmp_path / "home" / "me" / "w.h5")
    command = output.command_line("benchmarks.epoch", ["--data", photos, "--n", "10",
                                                         "--out", str(repo / "out")])
    assert command == "python -m benchmarks.epoch --data ../shared/data/train --n 10 --out out"
    assert locate.portable_path(weights) == os.path.join("~", "w.h5")
    assert locate.portable_path("/usr/share/x") == "/usr/share/x"     # a system folder stays


def test_photos_come_from_the_argument_or_the_environment(tmp_path, monkeypatch):
    pipeline = pytest.importorskip("benchmarks.data_pipeline",
                                   reason="needs a source checkout (benchmarks/)")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train").mkdir()
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    assert pipeline.find_photos(None) == (None, None)
    assert pipeline.find_photos("train") == ("train", "train")
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "train"))
    assert pipeline.find_photos(None) == (str(tmp_path / "train"), "$MINICNN_DATA")
    with pytest.raises(FileNotFoundError, match="--data"):
        pipeline.find_photos(str(tmp_path / "missing"))
