"""TensorBoard: event files in Keras 3's layout, read back with TensorBoard's own reader,
their scalars equal to History's; ``minicnn compare`` reads the same logs."""
import io
import os

import numpy as np
import pytest
from PIL import Image

import minicnn
from minicnn import Conv2D, Dense, Flatten, Sequential
from minicnn.callbacks import ReduceLROnPlateau, TensorBoard
from minicnn.callbacks.tensorboard import image_grid, read_history, weight_image
from minicnn.runs import compare_runs, load_run, save_run

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="reading the logs back needs tensorboard (the dev extra)")


def import_keras():
    """Keras, or a skip (a failure when MINICNN_REQUIRE_KERAS=1, as in CI)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get("MINICNN_REQUIRE_KERAS", "") not in ("", "0"):
        import keras
        return keras
    return pytest.importorskip("keras")


def accumulator(folder):
    acc = event_accumulator.EventAccumulator(
        os.fspath(folder), size_guidance={"scalars": 0, "histograms": 0, "images": 0,
                                          "tensors": 0})
    acc.Reload()
    return acc


def model_and_data(n=48, seed=0, input_channels=1):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 6, 6, input_channels), dtype=np.float32)
    y = minicnn.to_categorical(rng.integers(0, 3, n), 3)
    model = Sequential([Conv2D(4, 3, activation="relu", input_shape=(6, 6, input_channels)),
                        Flatten(), Dense(3, activation="softmax")])
    model.compile(minicnn.SGD(0.1), "categorical_crossentropy", ["accuracy"])
    return model, x, y


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A 3-epoch run logged with histograms, images, batch scalars and a reduced rate."""
    minicnn.set_seed(7)
    folder = tmp_path_factory.mktemp("run")
    model, x, y = model_and_data()
    weights = []

    class KeepWeights(minicnn.Callback):
        def on_epoch_end(self, epoch, logs=None):
            weights.append({(layer.name, key): minicnn.to_numpy(param).copy()
                            for layer in self.model.layers
                            for key, param in layer.params.items()})

    history = model.fit(x, y, epochs=3, batch_size=16, validation_data=(x[:32], y[:32]),
                        verbose=0, shuffle=False,
                        callbacks=[ReduceLROnPlateau(monitor="loss", patience=1, factor=0.5,
                                                     min_delta=10.0),
                                   TensorBoard(folder / "logs", histogram_freq=1,
                                               write_images=True, update_freq=2),
                                   KeepWeights()])
    return folder, model, history, weights, (x, y)


def test_layout_is_keras(trained_run):
    folder = trained_run[0]
    assert sorted(os.listdir(folder / "logs")) == ["train", "validation"]
    for sub in ("train", "validation"):
        names = os.listdir(folder / "logs" / sub)
        assert len(names) == 1 and names[0].startswith("events.out.tfevents.")


def test_epoch_scalars_equal_history(trained_run):
    folder, model, history, _, _ = trained_run
    train = accumulator(folder / "logs" / "train")
    validation = accumulator(folder / "logs" / "validation")
    for reader, prefix in ((train, ""), (validation, "val_")):
        for name in ("loss", "accuracy"):
            events = reader.Scalars(f"epoch_{name}")
            assert [e.step for e in events] == [0, 1, 2]
            # Event files hold float32 (as Keras's do).
            assert [e.value for e in events] == \
                [float(np.float32(v)) for v in history.history[prefix + name]]
    rates = [e.value for e in train.Scalars("epoch_learning_rate")]
    assert rates == [float(np.float32(v)) for v in history.history["learning_rate"]]
    assert history.history["learning_rate"] == [0.1, 0.1, 0.05]
    assert "epoch_learning_rate" not in validation.Tags()["scalars"]


def test_evaluation_vs_iterations_and_batch_scalars(trained_run):
    folder, model, history, _, (x, y) = trained_run
    validation = accumulator(folder / "logs" / "validation")
    events = validation.Scalars("evaluation_loss_vs_iterations")
    assert [e.step for e in events] == [3, 6, 9]            # 3 batches of 16 per epoch
    assert [e.value for e in events] == [float(np.float32(v))
                                         for v in history.history["val_loss"]]
    train = accumulator(folder / "logs" / "train")
    # update_freq=2: every second batch of the run (steps from 1), as in Keras.
    assert [e.step for e in train.Scalars("batch_loss")] == [2, 4, 6, 8]
    assert sorted(train.Tags()["scalars"]) == ["batch_accuracy", "batch_loss", "epoch_accuracy",
                                               "epoch_learning_rate", "epoch_loss"]


def test_batch_scalars_are_running_means(tmp_path):
    model, x, y = model_and_data(n=32)
    losses = []

    class Losses(minicnn.Callback):
        def on_batch_end(self, batch, logs=None):
            losses.append(logs["loss"])

    model.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False,
              callbacks=[TensorBoard(tmp_path, update_freq="batch"), Losses()])
    events = accumulator(tmp_path / "train").Scalars("batch_loss")
    assert [e.step for e in events] == [1, 2, 3, 4]
    expected = np.cumsum(losses) / np.arange(1, 5)
    # event files store float32: one rounding of a running mean of <= 4 losses (< 8 eps)
    np.testing.assert_allclose([e.value for e in events], expected, rtol=1e-6)


def test_weight_histograms_are_keras_named_and_hold_the_weights(trained_run):
    folder, model, _, weights, _ = trained_run
    train = accumulator(folder / "logs" / "train")
    expected = [f"sequential/{layer}/{key}/histogram"
                for layer in ("conv2d", "dense") for key in ("kernel", "bias")]
    assert sorted(train.Tags()["histograms"]) == sorted(expected)
    for epoch in range(3):
        for (layer, key), values in weights[epoch].items():
            event = train.Histograms(f"sequential/{layer}/{key}/histogram")[epoch]
            assert event.step == epoch
            h = event.histogram_value
            assert h.num == values.size
            assert h.min == pytest.approx(values.min()) and h.max == pytest.approx(values.max())
            # the same float32 values summed in two orders: <= size * eps * sum|values|
            assert h.sum == pytest.approx(values.sum(), abs=1e-6 + values.size * 1.2e-7
                                          * float(np.abs(values).sum()))


def test_first_conv_filters_as_images(trained_run):
    folder, model, _, weights, _ = trained_run
    train = accumulator(folder / "logs" / "train")
    assert "sequential/conv2d/kernel/image" in train.Tags()["images"]
    event = train.Images("sequential/conv2d/kernel/image")[-1]
    picture = np.asarray(Image.open(io.BytesIO(event.encoded_image_string)))
    kernel = weights[-1][("conv2d", "kernel")]             # (3, 3, 1, 4): 4 grey filters
    expected = image_grid(weight_image(kernel))
    assert picture.shape[:2] == expected.shape[:2] == (30, 4 * 30 + 3)
    np.testing.assert_array_equal(picture[..., 0], expected[..., 0])


@pytest.mark.parametrize("shape, expected", [
    ((4,), (1, 4, 1, 1)),                   # bias
    ((144, 3), (1, 3, 144, 1)),             # Dense kernel, its longer side across
    ((3, 144), (1, 3, 144, 1)),
    ((3, 3, 1, 8), (8, 3, 3, 1)),           # first conv of a grey network: filters
    ((5, 5, 3, 16), (16, 5, 5, 3)),         # first conv of a colour network: RGB filters
    ((3, 3, 8, 16), None),                  # deeper conv: Keras writes no image
    ((3, 3, 8, 4), (3, 3, 8, 4)),           # ...unless the last axis is 1, 3 or 4
])
def test_weight_image_follows_keras(shape, expected):
    weight = np.random.default_rng(0).standard_normal(shape)
    images = weight_image(weight)
    if expected is None:
        assert images is None
        return
    assert images.shape == expected
    assert images.min() >= 0 and images.max() <= 1
    np.testing.assert_allclose(images.max(axis=(1, 2, 3)), 1)


def test_rgb_filters_are_colour_images(tmp_path):
    model, x, y = model_and_data(n=16, input_channels=3)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0,
              callbacks=[TensorBoard(tmp_path, histogram_freq=1, write_images=True)])
    event = accumulator(tmp_path / "train").Images("sequential/conv2d/kernel/image")[0]
    picture = np.asarray(Image.open(io.BytesIO(event.encoded_image_string)).convert("RGB"))
    assert picture.shape == (30, 4 * 30 + 3, 3)
    assert not np.array_equal(picture[..., 0], picture[..., 1])     # colour, not grey


def test_histogram_freq_counts_epochs_from_0(tmp_path):
    model, x, y = model_and_data(n=16)
    model.fit(x, y, epochs=5, batch_size=8, verbose=0,
              callbacks=[TensorBoard(tmp_path, histogram_freq=2)])
    events = accumulator(tmp_path / "train").Histograms("sequential/dense/kernel/histogram")
    assert [e.step for e in events] == [0, 2, 4]
    assert accumulator(tmp_path / "train").Tags()["images"] == []


@pytest.mark.parametrize("arguments, message", [
    (dict(histogram_freq=-1), "histogram_freq.*-1"),
    (dict(histogram_freq=0.5), "histogram_freq.*0.5"),
    (dict(update_freq="never"), "update_freq.*'never'"),
    (dict(update_freq=0), "update_freq.*0"),
    (dict(profile_batch=5), "profile_batch.*5"),
    (dict(embeddings_freq=1), "embeddings_freq.*1"),
])
def test_bad_arguments(tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        TensorBoard(tmp_path, **arguments)


def test_log_dir_that_is_a_file(tmp_path):
    (tmp_path / "logs").write_text("")
    with pytest.raises(NotADirectoryError, match="logs"):
        TensorBoard(tmp_path / "logs")


# -- reading the logs back: minicnn compare --------------------------------------------
def test_read_history_equals_history_in_float32(trained_run):
    folder, _, history, _, _ = trained_run
    read = read_history(folder / "logs")
    assert read.epoch == [0, 1, 2]
    assert sorted(read.history) == sorted(history.history)
    for key, values in history.history.items():
        assert read.history[key] == [float(np.float32(v)) for v in values]


def test_compare_reads_log_dirs_and_run_folders(trained_run, tmp_path, capsys):
    folder, _, history, _, _ = trained_run
    rows = compare_runs([folder / "logs", folder], metric="val_loss", print_table=False)
    best = int(np.argmin(history.history["val_loss"])) + 1
    for row in rows:                                   # the log dir, and a folder holding it
        assert row["epochs"] == 3 and row["best_epoch"] == best
        assert row["last"] == float(np.float32(history.history["val_loss"][-1]))
    # A run folder with both history.json and TensorBoard logs reads history.json.
    both = tmp_path / "both"
    save_run(both, history)
    os.symlink(folder / "logs", both / "logs")
    loaded, _ = load_run(both)
    assert loaded.history == history.history


def test_compare_cli_on_a_log_dir(trained_run, capsys):
    from minicnn.cli import main

    folder = trained_run[0]
    assert main(["compare", str(folder / "logs"), "--metric", "val_accuracy"]) in (0, None)
    assert "logs" in capsys.readouterr().out


def test_a_folder_without_history_or_logs_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no history.json.*no TensorBoard logs"):
        load_run(tmp_path)


@pytest.mark.keras
def test_same_tags_as_keras_and_keras_logs_read_back(tmp_path):
    keras = import_keras()
    rng = np.random.default_rng(0)
    x = rng.random((32, 6, 6, 1), dtype=np.float32)
    y = minicnn.to_categorical(rng.integers(0, 3, 32), 3)
    # Named as a fresh session would name them (earlier tests made other Keras layers).
    reference = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(4, 3, name="conv2d"),
                                  keras.layers.Flatten(name="flatten"),
                                  keras.layers.Dense(3, activation="softmax", name="dense")],
                                 name="sequential")
    reference.compile("sgd", "categorical_crossentropy", metrics=["accuracy"])
    keras_history = reference.fit(
        x, y, batch_size=16, epochs=2, validation_data=(x, y), verbose=0,
        callbacks=[keras.callbacks.TensorBoard(tmp_path / "keras", histogram_freq=1,
                                               write_images=True)])
    model, _, _ = model_and_data()
    model.fit(x, y, batch_size=16, epochs=2, validation_data=(x, y), verbose=0,
              callbacks=[TensorBoard(tmp_path / "ours", histogram_freq=1, write_images=True)])
    for sub in ("train", "validation"):
        theirs = accumulator(tmp_path / "keras" / sub).Tags()
        ours = accumulator(tmp_path / "ours" / sub).Tags()
        # Keras writes TF2 tensor summaries; tensorboardX scalars, histograms and images.
        keras_tags = set(theirs["tensors"]) - {"keras"}    # the model's JSON (write_graph)
        our_tags = set(ours["scalars"]) | set(ours["histograms"]) | set(ours["images"])
        assert our_tags == keras_tags, sub
    # minicnn compare reads Keras's logs as Keras's History holds them.
    read = read_history(tmp_path / "keras")
    for key, values in keras_history.history.items():
        assert read.history[key] == [float(np.float32(v)) for v in values], key
