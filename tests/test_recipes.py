"""Recipes chosen by name (issue 18): the registry, the models they build, a one-epoch run
on a tiny stand-in dataset, the example's refusal of a non-empty output, and
examples/output/accuracy.json made from the committed run folders."""
import dataclasses
import importlib.util
import json
import os

import numpy as np
import pytest

from minicnn import (BatchNormalization, Conv2D, Dense, Dropout, Flatten,
                     GlobalAveragePooling2D, LeakyReLU, MaxPooling2D, recipes)
from minicnn.runs import load_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = os.path.join(ROOT, "examples", "output")
RESULT_FIELDS = {"recipe", "task", "epochs", "best_val_accuracy", "best_epoch",
                 "final_val_accuracy", "val_log_loss", "test_accuracy", "seconds",
                 "seconds_per_epoch", "parameters", "command"}


def tiny_fashion(n_train=120, n_test=40, seed=0):
    """Stand-in for ``fashion_mnist.load_data()``: uint8 images, labels 0..9."""
    rng = np.random.default_rng(seed)
    def pair(n):
        return (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
                np.arange(n, dtype=np.uint8) % 10)
    return pair(n_train), pair(n_test)


def load_example():
    spec = importlib.util.spec_from_file_location(
        "recipes_example", os.path.join(ROOT, "examples", "recipes.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LADDER = ["cats_dogs_tutorial", "cats_dogs_bn128", "cats_dogs_adam128",
          "cats_dogs_strong_aug128", "cats_dogs_gap128", "cats_dogs_deep128"]


def changed_settings(before, after):
    """The keys of two recipes' configs (one epoch of 100 steps) that differ, layer
    names aside (numbered per process: conv2d, conv2d_3...)."""
    a, b = (recipes.get(name).config(100, 1) for name in (before, after))
    for config in (a, b):
        for layer in config["layers"]:
            del layer["config"]["name"]
    return {key for key in a if key not in ("recipe", "description") and a[key] != b[key]}


def test_each_middle_step_of_the_ladder_changes_one_thing():
    assert changed_settings("cats_dogs_tutorial", "cats_dogs_bn128") == {"layers",
                                                                         "input_shape"}
    assert changed_settings("cats_dogs_bn128", "cats_dogs_adam128") == {"optimizer"}
    assert changed_settings("cats_dogs_adam128", "cats_dogs_strong_aug128") == {"augmentation"}
    assert changed_settings("cats_dogs_strong_aug128", "cats_dogs_gap128") == {"layers"}
    assert changed_settings("cats_dogs_gap128", "cats_dogs_deep128") == {"layers"}
    assert list(recipes.REGISTRY).index("cats_dogs_gap128") < \
        list(recipes.REGISTRY).index("cats_dogs_deep128")
    gap = recipes.get("cats_dogs_gap128").model()
    assert [type(l).__name__ for l in gap.layers[-7:-5]] == ["MaxPooling2D",
                                                             "GlobalAveragePooling2D"]
    assert recipes.get("cats_dogs_adam128").epochs == recipes.LADDER_EPOCHS


def test_registry_names_and_lookup():
    fashion = recipes.names("fashion_mnist")
    assert {"fashion_tutorial", "fashion_bn", "fashion_bn_wide"} <= set(fashion)
    assert set(LADDER) == set(recipes.names("cats_dogs_scratch"))
    assert recipes.names() == sorted(recipes.REGISTRY)
    for name in recipes.names():
        recipe = recipes.get(name)
        assert recipe.name == name and recipe.description and recipe.epochs > 0
        assert recipes.get(recipe) is recipe
    with pytest.raises(KeyError, match="no recipe named 'nope'.*fashion_tutorial"):
        recipes.get("nope")
    with pytest.raises(ValueError, match="already registered"):
        recipes.register(recipes.get("fashion_tutorial"))


def test_fashion_tutorial_is_the_tutorials_net():
    recipe = recipes.get("fashion_tutorial")
    model = recipe.model()
    # Keras's count for the same net: convs 320 + 18,496 + 73,856, dense 2048*128+128 =
    # 262,272 (28 -> 14 -> 7 -> 4 with padding='same'), softmax 1,290.
    assert model.count_params() == 356_234
    kinds = [type(layer) for layer in model.layers]
    block = [Conv2D, LeakyReLU, MaxPooling2D, Dropout]
    assert kinds == [*block * 3, Flatten, Dense, LeakyReLU, Dropout, Dense]
    assert [l.rate for l in model.layers if isinstance(l, Dropout)] == [0.25, 0.25, 0.4, 0.3]
    assert all(l.get_config()["negative_slope"] == 0.1
               for l in model.layers if isinstance(l, LeakyReLU))
    assert [l.filters for l in model.layers if isinstance(l, Conv2D)] == [32, 64, 128]
    assert model.output_shape[-1] == 10
    assert (recipe.batch_size, recipe.epochs, recipe.validation_split) == (64, 20, 0.2)
    assert recipe.augmentation is None
    optimizer = recipe.optimizer(100)
    assert type(optimizer).__name__ == "Adam" and optimizer.get_config()["learning_rate"] == 1e-3


def test_improved_and_ladder_models_have_their_layers():
    bn = recipes.get("fashion_bn").model()
    assert sum(isinstance(l, BatchNormalization) for l in bn.layers) == 4
    assert bn.count_params() == 357_290
    wide = recipes.get("fashion_bn_wide").model()
    assert [l.filters for l in wide.layers if isinstance(l, Conv2D)] == [32, 32, 64, 64]
    schedule = recipes.get("fashion_bn").optimizer(100).get_config()["learning_rate"]
    assert schedule["class_name"] == "CosineDecay" and schedule["config"]["decay_steps"] == 100
    tutorial = recipes.get("cats_dogs_tutorial").model()
    assert tutorial.count_params() == 1_355_938     # the Keras blog's net at 150x150
    assert not any(isinstance(l, BatchNormalization) for l in tutorial.layers)
    bn = recipes.get("cats_dogs_bn128").model()
    assert sum(isinstance(l, BatchNormalization) for l in bn.layers) == 4   # 3 convs, Dense
    assert [type(l).__name__ for l in bn.layers[-6:]] == ["Flatten", "Dense",
                                                          "BatchNormalization", "ReLU",
                                                          "Dropout", "Dense"]
    assert bn.layers[0].input_shape == (128, 128, 3)
    assert recipes.get("cats_dogs_strong_aug128").augmentation["rotation_range"] == 20
    deep = recipes.get("cats_dogs_deep128")
    model = deep.model()
    assert [l.filters for l in model.layers if isinstance(l, Conv2D)] == [16, 32, 64, 128, 256]
    assert model.layers[0].input_shape == (128, 128, 3) == deep.input_shape
    assert model.output_shape == (None, 2)
    # Multiply-adds per layer: output positions * 3 * 3 * C * F for the convs (same
    # padding: 128, 64, 32, 16 and 8 pixels square), inputs * units for the two Dense.
    per_layer = [128**2 * 27 * 16, 64**2 * 9 * 16 * 32, 32**2 * 9 * 32 * 64,
                 16**2 * 9 * 64 * 128, 8**2 * 9 * 128 * 256, 256 * 128, 128 * 2]
    assert recipes.forward_gflops(model) == round(2 * sum(per_layer) / 1e9, 3)


def test_recipe_config_is_json():
    config = recipes.get("fashion_bn_wide").config()
    assert json.loads(json.dumps(config, default=str))["recipe"] == "fashion_bn_wide"
    assert config["optimizer"]["class_name"] == "Adam" and len(config["layers"]) > 10


def test_log_loss_clips_as_kaggle():
    y = np.eye(2)[[0, 1]]
    assert recipes.log_loss(y, [[1.0, 0.0], [0.0, 1.0]]) == pytest.approx(0, abs=1e-12)
    assert recipes.log_loss(y, [[0.0, 1.0], [1.0, 0.0]]) == pytest.approx(-np.log(1e-15))


@pytest.mark.parametrize("name", ["fashion_tutorial", "fashion_bn"])
def test_one_epoch_writes_the_run_folder(tmp_path, name):
    results = recipes.run_recipe(name, output=tmp_path / "run", data=tiny_fashion(),
                                 epochs=1, verbose=0, command="test")
    files = set(os.listdir(tmp_path / "run"))
    assert {"config.json", "history.json", "history.csv", "curves.png", "log.csv",
            "results.json", "logs"} <= files
    assert "model.h5" in files                     # the trained model (*.h5: not for git)
    from minicnn.models import load_model
    assert load_model(str(tmp_path / "run" / "model.h5")).count_params() == \
        recipes.get(name).model().count_params()
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert RESULT_FIELDS <= set(saved) and saved["epochs"] == 1
    assert (saved["train_samples"], saved["validation_samples"]) == (96, 24)
    assert saved["command"] == "test"
    assert 0 <= saved["test_accuracy"] <= 1 and saved["val_log_loss"] > 0
    assert saved["parameters"] == recipes.get(name).model().count_params()
    assert results["output"] == str(tmp_path / "run")
    history, config = load_run(tmp_path / "run")
    assert len(history.history["val_accuracy"]) == 1 and config["recipe"] == name
    assert os.listdir(tmp_path / "run" / "logs" / "validation")


def test_cats_dogs_recipe_runs_on_class_folders(tmp_path):
    from minicnn.data import write_shapes_directory
    data = write_shapes_directory(tmp_path / "photos", n_train=16, n_validation=8, size=32)
    recipe = dataclasses.replace(recipes.get("cats_dogs_deep128"), batch_size=8,
                                 input_shape=(32, 32, 3),
                                 model=lambda: recipes.cats_dogs_model(
                                     (8, 8), batchnorm=True, gap=True, dense=8, size=32))
    results = recipes.run_recipe(recipe, output=tmp_path / "run", data=str(data), epochs=1,
                                 verbose=0, tensorboard=False)
    assert results["test_accuracy"] is None and results["train_samples"] == 16
    # horizontal_flip in the recipe: the mirrored photos' mean is reported too
    assert 0 <= results["val_accuracy_flip_averaged"] <= 1
    assert results["val_log_loss_flip_averaged"] > 0
    assert results["validation_samples"] == 8
    assert 0 <= results["final_val_accuracy"] <= 1


def test_mirrored_predictions_flip_the_width_axis():
    model = recipes.cats_dogs_model((4,), dense=4, size=8)
    x = np.random.default_rng(0).random((5, 8, 8, 3), dtype=np.float32)
    y = np.eye(2, dtype=np.float32)[[0, 1, 0, 1, 1]]
    plain, truth = recipes._predict_all(model, (x, y), 2)
    mirrored, _ = recipes._predict_all(model, (x, y), 2, mirrored=True)
    np.testing.assert_array_equal(truth, y)
    np.testing.assert_array_equal(plain, model.predict(x, batch_size=2))
    np.testing.assert_array_equal(mirrored, model.predict(x[:, :, ::-1], batch_size=2))
    assert not np.array_equal(plain, mirrored)       # the net is not mirror-symmetric


def test_example_refuses_a_non_empty_output_without_force(tmp_path, monkeypatch):
    example = load_example()
    (tmp_path / "old.txt").write_text("earlier results")
    original = recipes.fashion_data          # the tiny stand-in instead of the real files
    monkeypatch.setattr(recipes, "fashion_data",
                        lambda recipe, data=None: original(recipe, tiny_fashion()))
    with pytest.raises(SystemExit, match="already holds files.*--force"):
        example.main(["fashion_tutorial", "--output", str(tmp_path), "--epochs", "1"])
    assert os.listdir(tmp_path) == ["old.txt"]
    example.main(["fashion_tutorial", "--output", str(tmp_path), "--epochs", "1", "--force",
                  "--verbose", "0"])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["command"].startswith("python examples/recipes.py fashion_tutorial --output")
    assert (tmp_path / "old.txt").exists()


def test_example_rejects_an_unknown_recipe():
    with pytest.raises(SystemExit, match="no recipe named 'nope'"):
        load_example().main(["nope"])


def test_accuracy_json_is_made_from_the_committed_runs():
    with open(os.path.join(OUTPUT, "accuracy.json"), encoding="utf-8") as f:
        committed = json.load(f)
    assert recipes.accuracy_table(OUTPUT) == committed
    fashion = {row["recipe"]: row for row in committed["fashion_mnist"]}
    assert "fashion_tutorial" in fashion and len(fashion) >= 2
    for row in fashion.values():
        assert row["test_accuracy"] > 0.85 and row["command"].startswith("python examples/")
    assert committed["cats_dogs_scratch"][0]["earlier_run"] is True
    assert committed["cats_dogs_scratch"][0]["best_val_accuracy"] == 0.834
    history, _ = load_run(os.path.join(OUTPUT, "cats_dogs_scratch"))
    assert committed["cats_dogs_scratch"][0]["val_log_loss"] == \
        round(history.history["val_loss"][-1], 4)
    assert committed["cats_dogs_vgg16"][0]["earlier_run"] is True


def test_accuracy_table_of_a_run_folder(tmp_path):
    # Folders "a" and "b": the rows come in the order the recipes were registered.
    for folder, name in (("a", "fashion_bn"), ("b", "fashion_tutorial")):
        recipes.run_recipe(name, output=tmp_path / "fashion_mnist_recipes" / folder,
                           data=tiny_fashion(), epochs=1, verbose=0, tensorboard=False)
    path = recipes.write_accuracy_json(str(tmp_path))
    table = json.loads(open(path).read())
    assert list(recipes.REGISTRY).index("fashion_tutorial") < \
        list(recipes.REGISTRY).index("fashion_bn")
    assert [row["recipe"] for row in table["fashion_mnist"]] == ["fashion_tutorial",
                                                                  "fashion_bn"]
    assert table["cats_dogs_scratch"] == [] and table["cats_dogs_vgg16"] == []


def test_readme_table_is_made_from_accuracy_json():
    with open(os.path.join(OUTPUT, "accuracy.json"), encoding="utf-8") as f:
        committed = json.load(f)
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    marker = "<!-- accuracy table: made by python examples/recipes.py --accuracy-json -->\n"
    begin = readme.index(marker) + len(marker)
    end = readme.index("<!-- end of the accuracy table -->")
    markdown = recipes.accuracy_markdown(committed)
    assert readme[begin:end] == markdown
    rows = sum(len(rows) for rows in committed.values())
    assert len(markdown.splitlines()) == 2 + rows


def test_vgg16_rows_count_only_the_features_computed_in_the_run(tmp_path):
    """A run that loaded its features from the cache reports no extraction time of its
    own (it was the run's that made them); one that computed some reports their sum."""
    def write(folder, cached):
        run = {"best_val_accuracy": 0.9, "final_val_accuracy": 0.8, "val_log_loss": 0.3,
               "train_seconds": 30.0}
        split = {"seconds": 100.0, "cached": False}
        results = {"image_size": [32, 32], "n": 100, "ratio": 0.2, "epochs": 3,
                   "command": "python examples/cats_dogs_vgg16.py",
                   "extraction": {"caffe": {"train": {"seconds": 0.5, "cached": cached},
                                            "validation": split}},
                   "runs": {"caffe_lr0.0001": run}}
        os.makedirs(tmp_path / folder)
        (tmp_path / folder / "results.json").write_text(json.dumps(results))
    write("vgg16_a", cached=True)
    write("vgg16_b", cached=False)
    rows = recipes.accuracy_table(str(tmp_path))["cats_dogs_vgg16"]
    assert [(r["extraction_seconds"], r["features_cached"]) for r in rows] == \
        [(100.0, True), (100.5, False)]
    lines = recipes.accuracy_markdown({"cats_dogs_vgg16": rows}).splitlines()
    assert "10.0 (features once: 100 s, part cached)" in lines[2]
    assert "10.0 (features once: 100 s)" in lines[3]
    path = tmp_path / "vgg16_a" / "results.json"
    all_cached = json.loads(path.read_text())
    all_cached["extraction"]["caffe"]["validation"]["cached"] = True
    path.write_text(json.dumps(all_cached))
    row = recipes.accuracy_table(str(tmp_path))["cats_dogs_vgg16"][0]
    assert row["extraction_seconds"] is None
    assert "10.0 (features cached)" in recipes.accuracy_markdown({"cats_dogs_vgg16": [row]})


def test_committed_runs_were_made_by_the_recipes_as_they_are():
    """Each committed recipe run's config.json has the layers, augmentation, input shape,
    batch size, epochs and optimizer class of the recipe of that name today (layer names
    aside)."""
    import glob

    def unnamed(layers):
        return [{k: v for k, v in layer["config"].items() if k != "name"} for layer in layers]

    folders = sorted(glob.glob(os.path.join(OUTPUT, "*_recipes", "*", "config.json")))
    assert len(folders) >= 8
    for path in folders:
        with open(path, encoding="utf-8") as f:
            committed = json.load(f)
        recipe = recipes.get(committed["recipe"])
        today = recipe.config(100, committed["epochs"])
        assert unnamed(committed["layers"]) == unnamed(today["layers"]), path
        for key in ("augmentation", "input_shape", "batch_size"):
            assert committed[key] == today[key], (path, key)
        assert committed["epochs"] == recipe.epochs, path
        assert committed["optimizer"]["class_name"] == today["optimizer"]["class_name"], path
