"""Keras 2's names that the tutorials use still work, each warning once that it is Keras 2's:
``history.history["acc"]`` / ``["val_acc"]``, ``monitor="val_acc"`` and ``{val_acc}`` in the
callbacks; and ``VGG16(weights="imagenet")`` finds Keras's downloaded weight file (or says
in one line which file to put where).

The real ImageNet weights are used where they are: $MINICNN_VGG16_WEIGHTS, else
../shared/data/vgg16/vgg16_imagenet_notop.h5 beside the clone; elsewhere that test skips.
"""
import contextlib
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from minicnn import (SGD, Dense, EarlyStopping, History, ModelCheckpoint, Sequential, callbacks,
                     locate, to_categorical)
from minicnn.applications import VGG16
from minicnn.applications.vgg16 import WeightsNotFoundError
from minicnn.weights import save_weights

SHARED_WEIGHTS = (Path(__file__).resolve().parents[2] / "shared" / "data" / "vgg16"
                  / "vgg16_imagenet_notop.h5")
REAL_WEIGHTS = Path(os.environ.get(locate.VGG16_WEIGHTS_VARIABLE) or SHARED_WEIGHTS)
EPOCH_LOGS = [{"loss": 0.9, "accuracy": 0.50, "val_loss": 0.8, "val_accuracy": 0.55},
              {"loss": 0.7, "accuracy": 0.75, "val_loss": 0.6, "val_accuracy": 0.70},
              {"loss": 0.6, "accuracy": 0.80, "val_loss": 0.7, "val_accuracy": 0.65},
              {"loss": 0.5, "accuracy": 0.85, "val_loss": 0.8, "val_accuracy": 0.60}]


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    """Each test sees the once-per-process warnings as a new process would."""
    monkeypatch.setattr(callbacks, "_warned_keras2_names", set())


@contextlib.contextmanager
def no_warning():
    """A block in which any warning is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def recorded_history(epoch_logs=EPOCH_LOGS):
    history = History()
    history.on_train_begin()
    for epoch, logs in enumerate(epoch_logs):
        history.on_epoch_end(epoch, logs)
    return history


class RecordingModel:
    """What the callbacks need of a model: stop_training, weights, save."""

    def __init__(self):
        self.stop_training = False
        self.saved = []

    def get_weights(self):
        return []

    def save(self, path):
        self.saved.append(os.path.basename(path))


def run_callback(callback, epoch_logs=EPOCH_LOGS):
    model = RecordingModel()
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, logs in enumerate(epoch_logs):
        callback.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback.on_train_end()
    return model


# -- history.history["acc"] ------------------------------------------------------------


def test_history_answers_acc_and_val_acc_warning_once_each():
    history = recorded_history().history
    with pytest.warns(UserWarning, match=r"history\['acc'\]: 'acc' is Keras 2's name; "
                                         r"Keras 3 \(and minicnn\) call it 'accuracy'"):
        assert history["acc"] == [0.50, 0.75, 0.80, 0.85]
    with pytest.warns(UserWarning, match=r"'val_acc' is Keras 2's name.*'val_accuracy'"):
        assert history["val_acc"] == [0.55, 0.70, 0.65, 0.60]
    with no_warning():                               # once per process
        assert history["acc"] is history["accuracy"]
        assert history.get("val_acc") is history["val_accuracy"]


def test_history_keys_and_files_keep_the_names_logged(tmp_path):
    history = recorded_history()
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert "acc" not in history.history
    for name in ("h.json", "h.csv"):
        history.save(tmp_path / name)
        loaded = History.load(tmp_path / name)
        assert sorted(loaded.history) == sorted(history.history)
        assert loaded.epoch == [0, 1, 2, 3]
        np.testing.assert_array_equal(loaded.history["val_accuracy"],
                                      history.history["val_accuracy"])
    with pytest.warns(UserWarning, match="Keras 2's name"):
        assert loaded.history["val_acc"] == loaded.history["val_accuracy"]
    assert '"acc"' not in (tmp_path / "h.json").read_text()


def test_history_logged_as_acc_answers_accuracy_without_warning():
    # A model compiled with metrics=["acc"] logs "acc" in Keras 3; "accuracy" is no
    # Keras 2 name, so finding it under "acc" warns nothing.
    renamed = [{"loss": logs["loss"], "acc": logs["accuracy"]} for logs in EPOCH_LOGS]
    history = recorded_history(renamed).history
    with no_warning():
        assert history["accuracy"] == [0.50, 0.75, 0.80, 0.85]


def test_history_unknown_names_are_still_key_errors():
    history = recorded_history().history
    with pytest.raises(KeyError, match="precision"):
        history["precision"]
    assert history.get("val_precision", "none") == "none"
    history_without_validation = recorded_history([{"loss": 1.0, "accuracy": 0.5}]).history
    with pytest.raises(KeyError, match="val_acc"):
        history_without_validation["val_acc"]


def test_history_assigned_a_plain_dict_still_answers_keras_2_names():
    history = History()
    history.history = {"accuracy": [0.5]}
    with pytest.warns(UserWarning, match="Keras 2's name"):
        assert history.history["acc"] == [0.5]


def test_fit_history_of_a_model_compiled_with_accuracy_answers_acc():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    y = to_categorical((x[:, 0] > 0).astype(int), 2)
    model = Sequential([Dense(2, activation="softmax", input_shape=(3,))])
    model.compile(SGD(0.1), "categorical_crossentropy", ["accuracy"])
    history = model.fit(x, y, batch_size=8, epochs=2, validation_data=(x, y), verbose=0)
    with pytest.warns(UserWarning, match="Keras 2's name"):
        assert history.history["acc"] == history.history["accuracy"]
        assert history.history["val_acc"] == history.history["val_accuracy"]
    assert len(history.history["acc"]) == 2


# -- monitor="val_acc" -----------------------------------------------------------------


def test_early_stopping_monitors_val_acc_as_val_accuracy_maximised():
    stopper = EarlyStopping(monitor="val_acc", patience=2)
    with pytest.warns(UserWarning, match=r"EarlyStopping\(monitor='val_acc'\): 'val_acc' is "
                                         r"Keras 2's name.*'val_accuracy'"):
        model = run_callback(stopper)
    # val_accuracy 0.55, 0.70 (best), 0.65, 0.60: two epochs without improvement -> stop
    assert model.stop_training
    assert (stopper.best, stopper.best_epoch, stopper.stopped_epoch) == (0.70, 1, 3)


def test_early_stopping_monitor_missing_under_both_names_says_so():
    with pytest.raises(KeyError, match=r"'val_acc' is not in the logs; available: "
                                       r"\['accuracy', 'loss'\] \(val_\* needs validation_data"):
        run_callback(EarlyStopping(monitor="val_acc"), [{"loss": 1.0, "accuracy": 0.5}])


def test_model_checkpoint_monitor_and_path_template_take_keras_2_names(tmp_path):
    checkpoint = ModelCheckpoint(str(tmp_path / "m-{epoch:02d}-{val_acc:.2f}-{acc:.2f}.h5"),
                                 monitor="val_acc", save_best_only=True)
    with pytest.warns(UserWarning) as warned:
        model = run_callback(checkpoint)
    assert model.saved == ["m-01-0.55-0.50.h5", "m-02-0.70-0.75.h5"]     # val_acc improved
    messages = [str(w.message) for w in warned]
    assert len(messages) == 2                       # once for "val_acc", once for "acc"
    for name in ("acc", "val_acc"):
        assert any(f"'{name}' is Keras 2's name" in message for message in messages)


def test_model_checkpoint_takes_keras_filepath_keyword(tmp_path):
    checkpoint = ModelCheckpoint(filepath=str(tmp_path / "e{epoch}.h5"))
    assert run_callback(checkpoint).saved == ["e1.h5", "e2.h5", "e3.h5", "e4.h5"]
    with pytest.raises(TypeError, match="as path .* or filepath= .*, not both"):
        ModelCheckpoint("a.h5", filepath="b.h5")
    with pytest.raises(TypeError, match="needs the file to save to"):
        ModelCheckpoint()


def test_model_checkpoint_template_with_val_acc_but_no_validation_says_so(tmp_path):
    checkpoint = ModelCheckpoint(str(tmp_path / "m-{val_acc:.2f}.h5"))
    with pytest.raises(ValueError, match=r"uses 'val_acc', which is not in this epoch's logs"):
        run_callback(checkpoint, [{"loss": 1.0, "accuracy": 0.5}])


# -- VGG16(weights="imagenet") ---------------------------------------------------------


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty home folder and no weight variables: no weight file anywhere."""
    monkeypatch.delenv(locate.VGG16_WEIGHTS_VARIABLE, raising=False)
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_imagenet_without_a_weight_file_says_which_file_to_put_where(home):
    with pytest.raises(WeightsNotFoundError) as error:
        VGG16(weights="imagenet", input_shape=(32, 32, 3))
    message = str(error.value)
    assert isinstance(error.value, FileNotFoundError)
    assert locate.VGG16_WEIGHTS_HELP in message and "\n" not in message
    assert locate.VGG16_NOTOP_FILE in message and "~/.keras/models/" in message


def test_imagenet_loads_keras_cached_file(home):
    # Keras's file name in ~/.keras/models; the weights of VGG16 do not depend on the input
    # size, so a random 32x32 base saved there stands in for the ImageNet file.
    source = VGG16(input_shape=(32, 32, 3))
    cached = home / ".keras" / "models" / locate.VGG16_NOTOP_FILE
    cached.parent.mkdir(parents=True)
    save_weights(source, cached)
    loaded = VGG16(weights="imagenet", input_shape=(32, 32, 3))
    for a, b in zip(source.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_imagenet_looks_in_variable_then_keras_home_then_home(home, tmp_path, monkeypatch):
    # Which file find_vgg16_weights picks, with empty stand-ins (it only checks they exist);
    # VGG16(weights="imagenet") loads the file it picks (previous test).
    in_home = home / ".keras" / "models" / locate.VGG16_NOTOP_FILE
    in_keras_home = tmp_path / "keras-home" / "models" / locate.VGG16_NOTOP_FILE
    named = tmp_path / "named.h5"
    for path in (in_home, in_keras_home, named):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    assert locate.find_vgg16_weights()[0] == str(in_home)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    assert locate.find_vgg16_weights()[0] == str(in_keras_home)
    monkeypatch.setenv(locate.VGG16_WEIGHTS_VARIABLE, str(named))
    assert locate.find_vgg16_weights() == (str(named), "$MINICNN_VGG16_WEIGHTS")


def test_imagenet_with_variable_naming_a_missing_file_says_where_it_came_from(home, tmp_path,
                                                                              monkeypatch):
    monkeypatch.setenv(locate.VGG16_WEIGHTS_VARIABLE, str(tmp_path / "nowhere.h5"))
    with pytest.raises(FileNotFoundError, match=r"nowhere.h5' \(from \$MINICNN_VGG16_WEIGHTS\)"):
        VGG16(weights="imagenet", input_shape=(32, 32, 3))


def test_weights_path_missing_is_a_file_not_found_error(home, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no VGG16 weight file '.*missing.h5'"):
        VGG16(weights=str(tmp_path / "missing.h5"), input_shape=(32, 32, 3))


def test_include_top_is_refused_notop_only(home):
    with pytest.raises(ValueError, match=r"only the convolutional base .* notop weights"):
        VGG16(include_top=True, weights="imagenet")


def test_input_shape_none_is_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"needs input_shape=\(height, width, 3\)"):
        VGG16(input_shape=None)


@pytest.mark.skipif(not REAL_WEIGHTS.is_file(),
                    reason="no VGG16 ImageNet weights: set MINICNN_VGG16_WEIGHTS (Keras's notop "
                    ".h5) or provide ../shared/data/vgg16/vgg16_imagenet_notop.h5 beside the clone")
def test_imagenet_loads_the_real_weights_named_by_the_variable(home, monkeypatch):
    monkeypatch.setenv(locate.VGG16_WEIGHTS_VARIABLE, str(REAL_WEIGHTS))
    model = VGG16(weights="imagenet", input_shape=(32, 32, 3))
    kernel, bias = model.get_layer("block1_conv1").get_weights()
    reference_kernel, reference_bias = VGG16(weights=REAL_WEIGHTS, input_shape=(32, 32, 3)) \
        .get_layer("block1_conv1").get_weights()
    assert kernel.shape == (3, 3, 3, 64) and kernel.dtype == np.float32
    np.testing.assert_array_equal(kernel, reference_kernel)
    np.testing.assert_array_equal(bias, reference_bias)
