"""minicnn.viz draws what it should, at the size it promises, and minicnn.metrics counts right."""
import io
import os

import numpy as np
import pytest
from PIL import Image

from minicnn import Conv2D, Dense, Flatten, History, MaxPooling2D, Sequential, viz
from minicnn.metrics import classification_report, classification_scores, confusion_matrix

from float32_error import assert_within, linear_bound

# The tutorial's cat photo: in $MINICNN_DATA (Kaggle's train folder) when set, else in
# the shared data folder beside the repository (how CI provides ../shared).
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAT_CANDIDATES = [os.path.join(folder, "cat.46.jpg") for folder in (
    os.environ.get("MINICNN_DATA", ""),
    os.path.join(REPO, os.pardir, "shared", "data", "cats_dogs", "originals")) if folder]
CAT = next((path for path in CAT_CANDIDATES if os.path.isfile(path)), None)


def png_size(fig):
    """Pixel (width, height) of the figure rendered as a PNG."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi)
    buffer.seek(0)
    return Image.open(buffer).size


def expected_size(fig):
    width, height = fig.get_size_inches() * fig.dpi
    return round(width), round(height)


def assert_png(fig, figsize, path=None):
    assert tuple(fig.get_size_inches()) == pytest.approx(figsize)
    assert png_size(fig) == expected_size(fig)
    if path is not None:
        with Image.open(path) as saved:
            assert saved.format == "PNG" and saved.size == expected_size(fig)


@pytest.fixture
def photo():
    """A real photo when the tutorial's cat is on this machine, else a synthetic one."""
    if CAT is not None:
        return viz.load_grayscale(CAT, max_size=64)
    yy, xx = np.mgrid[0:48, 0:64]
    return ((np.sin(xx / 5.0) + (yy > 20)) / 2.0 + 0.25).astype(np.float32)


def tiny_model():
    model = Sequential([Conv2D(4, 3, activation="relu", input_shape=(12, 12, 3)),
                        MaxPooling2D(), Conv2D(6, 3, activation="relu"), Flatten(),
                        Dense(2, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy", ["accuracy"])
    return model


def test_sobel_matches_scipy_correlate2d(photo):
    from scipy.signal import correlate2d

    outputs = viz.convolution_outputs(photo)
    gray = outputs["original"]
    for key, kernel in (("sobel_vertical", viz.SOBEL_VERTICAL),
                        ("sobel_horizontal", viz.SOBEL_HORIZONTAL),
                        ("blur_8x8", viz.BOX_BLUR_8)):
        expected = correlate2d(gray.astype(np.float64), kernel, mode="valid")
        # float32 against float64: a sum of at most 64 terms (the 8x8 blur)
        bound = linear_bound(lambda g: correlate2d(g, np.abs(kernel), mode="valid"),
                             kernel.size, gray)
        assert_within(outputs[key], expected, bound, key)
    magnitude = np.hypot(outputs["sobel_vertical"], outputs["sobel_horizontal"])
    # the same float32 inputs, hypot rounded once on each side
    np.testing.assert_allclose(outputs["sobel_magnitude"], magnitude, rtol=1e-6)


def test_sobel_vertical_finds_a_vertical_edge_only():
    step = np.zeros((10, 10), dtype=np.float32)
    step[:, 5:] = 1.0                                  # dark left half, light right half
    outputs = viz.convolution_outputs(step)
    assert outputs["sobel_vertical"].max() == pytest.approx(4.0)
    assert np.all(outputs["sobel_horizontal"] == 0)


def test_convolution_demo_from_array_and_path(tmp_path, photo):
    path = tmp_path / "conv.png"
    fig = viz.convolution_demo(photo, path=path, dpi=50)
    assert_png(fig, (9, 6), path)
    source = tmp_path / "photo.png"
    Image.fromarray((photo * 255).astype(np.uint8)).save(source)
    fig = viz.convolution_demo(str(source), dpi=40)
    assert png_size(fig) == (360, 240)


def test_convolution_demo_rejects_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="no image file"):
        viz.convolution_demo(tmp_path / "missing.jpg")
    with pytest.raises(ValueError, match="at least 8x8"):
        viz.convolution_demo(np.zeros((5, 20)))


def test_im2col_picture(tmp_path):
    path = tmp_path / "im2col.png"
    fig = viz.plot_im2col(path=path, dpi=60)
    assert_png(fig, (10, 5), path)
    # The 4x4 input with 2x2 windows gives 9 rows of 4 numbers, one per window.
    table = fig.axes[1]
    assert len(table.get_yticks()) == 9 and len(table.get_xticks()) == 4
    assert [t.get_text() for t in table.texts[:4]] == ["0", "1", "4", "5"]
    with pytest.raises(ValueError, match="small 2-D input"):
        viz.plot_im2col(np.zeros((3, 3, 2)))


def test_filters_and_feature_maps(tmp_path):
    model = tiny_model()
    fig = viz.plot_filters(model, path=tmp_path / "filters.png", ncols=2, dpi=50)
    assert_png(fig, (2, 2.4), tmp_path / "filters.png")      # 4 filters in 2 rows of 2
    maps = viz.feature_maps(model, np.random.rand(12, 12, 3))
    assert [m.shape for _, m in maps] == [(10, 10, 4), (3, 3, 6)]
    fig = viz.plot_feature_maps(model, np.random.rand(12, 12, 3), max_maps=5, dpi=50)
    assert_png(fig, (6, 2.4))
    with pytest.raises(ValueError, match="no Conv2D"):
        viz.plot_filters(Sequential([Dense(2, input_shape=(3,))]))


def test_filters_title_names_the_model_and_the_layers_place():
    tiny_model()                                  # another model first: layer names count on
    model = tiny_model()
    first = model.layers[0].name
    assert first != "conv2d"                      # so the name alone would mislead
    title = viz.plot_filters(model, dpi=30)._suptitle.get_text()
    assert title.startswith(f"first conv layer ({first}) of {model.name}")
    title = viz.plot_filters(model, dpi=30, name="run dropout")._suptitle.get_text()
    assert f"first conv layer ({first}) of run dropout" in title
    fig = viz.plot_feature_maps(model, np.random.rand(12, 12, 3), max_maps=2, dpi=30,
                                name="run dropout")
    assert "run dropout" in fig._suptitle.get_text()
    assert fig.axes[0].texts[0].get_text().startswith(f"conv 1 ({first})")


def noisy_history(epochs=3):
    """Validation accuracy that wanders between 0.515 and 0.522: noise, not a trend."""
    history = History()
    for epoch, value in enumerate([0.515, 0.522, 0.518][:epochs]):
        history.on_epoch_end(epoch, {"loss": 0.69, "accuracy": value, "val_loss": 0.69,
                                     "val_accuracy": value})
    return history


def test_history_plot_has_a_title_fixed_accuracy_range_and_whole_epochs():
    fig = viz.plot_history(noisy_history(), dpi=30, title="cats/dogs on SYNTHETIC data, run a")
    assert fig._suptitle.get_text() == "cats/dogs on SYNTHETIC data, run a"
    accuracy, loss = fig.axes
    assert (accuracy.get_title(), loss.get_title()) == ("accuracy", "loss")   # one order
    low, high = accuracy.get_ylim()
    assert low <= 0.5 and high >= 1.0             # not autoscaled to 0.515..0.522
    for ax in fig.axes:
        fig.canvas.draw()
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert ticks and all(float(t).is_integer() for t in ticks)
    # A single epoch still gets whole-number ticks only.
    fig = viz.plot_history(noisy_history(epochs=1), dpi=30)
    fig.canvas.draw()
    ax = fig.axes[0]
    low, high = ax.get_xlim()
    assert all(float(t).is_integer() for t in ax.get_xticks() if low <= t <= high)


def test_accuracy_limits_reach_below_for_many_classes():
    assert viz.accuracy_limits([0.515, 0.522]) == (0.5, 1.01)
    assert viz.accuracy_limits([0.12, 0.3]) == (0.1, 1.01)     # ten classes: chance is 0.1
    assert viz.accuracy_limits([]) == (0.5, 1.01)


def test_history_plots_from_object_and_files(tmp_path):
    history = History()
    for epoch, (acc, val) in enumerate([(0.6, 0.55), (0.8, 0.62), (0.9, 0.6)]):
        history.on_epoch_end(epoch, {"loss": 1 - acc, "accuracy": acc, "val_loss": 1 - val,
                                     "val_accuracy": val})
    for name in ("h.json", "h.csv"):
        history.save(tmp_path / name)
        fig = viz.plot_history(str(tmp_path / name), path=tmp_path / f"{name}.png", dpi=50)
        assert_png(fig, (10, 4), tmp_path / f"{name}.png")
        accuracy_axes = fig.axes[0]
        np.testing.assert_allclose([line.get_ydata() for line in accuracy_axes.lines],
                                   [[0.6, 0.8, 0.9], [0.55, 0.62, 0.6]])
    fig = viz.plot_histories({"a": history, "b": history.history}, metrics=("loss",), dpi=50)
    assert_png(fig, (5, 4))
    assert len(fig.axes[0].lines) == 4
    with pytest.raises(FileNotFoundError):
        viz.plot_history(tmp_path / "nope.json")


def test_image_grid_and_confusion_matrix(tmp_path):
    images = np.random.rand(7, 8, 8)
    fig = viz.plot_image_grid(images, [str(i) for i in range(7)], tmp_path / "g.png",
                              ncols=4, dpi=50)
    assert_png(fig, (6.4, 3.8), tmp_path / "g.png")
    with pytest.raises(ValueError, match="titles"):
        viz.plot_image_grid(images, ["a"])
    fig = viz.plot_confusion_matrix(np.eye(3, dtype=int) * 5, ["a", "b", "c"],
                                    tmp_path / "cm.png", dpi=50)
    assert_png(fig, (8, 7), tmp_path / "cm.png")
    with pytest.raises(ValueError, match="3x3"):
        viz.plot_confusion_matrix(np.eye(2), ["a", "b", "c"])


def test_save_is_atomic_and_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "keep.png"
    path.write_bytes(b"old")
    fig = viz.plot_im2col(dpi=30)
    monkeypatch.setattr(fig, "savefig", lambda *a, **k: (_ for _ in ()).throw(OSError("disk")))
    with pytest.raises(OSError):
        viz.save_figure(fig, path)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["keep.png"]


# -- metrics ----------------------------------------------------------------------------
def test_confusion_matrix_and_scores_by_hand():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    matrix = confusion_matrix(y_true, y_pred)
    np.testing.assert_array_equal(matrix, [[2, 1, 0], [0, 1, 1], [0, 0, 1]])
    scores = classification_scores(y_true, y_pred)
    np.testing.assert_allclose(scores["precision"], [1.0, 0.5, 0.5])
    np.testing.assert_allclose(scores["recall"], [2 / 3, 0.5, 1.0])
    np.testing.assert_allclose(scores["f1"], [0.8, 0.5, 2 / 3])
    np.testing.assert_array_equal(scores["support"], [3, 2, 1])
    assert scores["accuracy"] == pytest.approx(4 / 6)


def test_scores_accept_one_hot_and_handle_empty_classes():
    one_hot = np.eye(3)[[0, 1, 1]]
    scores = classification_scores(one_hot, [0, 1, 0], num_classes=3)
    assert scores["precision"][2] == 0 and scores["recall"][2] == 0   # class 2 never occurs
    assert scores["f1"][0] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="labels"):
        confusion_matrix([0, 1], [0])
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        confusion_matrix([0, 2], [0, 1], num_classes=2)


def test_classification_report_text():
    report = classification_report([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2],
                                   ["cat", "dog", "bird"])
    lines = report.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    assert lines[2].split() == ["cat", "1.00", "0.67", "0.80", "3"]
    assert lines[-3].split() == ["accuracy", "0.67", "6"]
    assert lines[-2].split() == ["macro", "avg", "0.67", "0.72", "0.66", "6"]
