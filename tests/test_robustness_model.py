"""Sequential, optimizers, weights and files under wrong input: clear errors, nothing
half-done, nothing of the user's changed or lost (issue 14)."""
import json
import os
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest
from PIL import Image

import minicnn
from minicnn import (SGD, Conv2D, Dense, Flatten, ModelCheckpoint, RMSprop, Sequential,
                     load_model, to_categorical)
from minicnn import io_utils
from minicnn.data import ImageDataGenerator
from minicnn.models import TrainingDivergedError
from minicnn.weights import load_weights, save_weights


def tiny_model(input_shape=(2, 2, 1), optimizer=None, name="head"):
    model = Sequential([Flatten(input_shape=input_shape),
                        Dense(2, activation="softmax", name=name)])
    model.compile(optimizer or SGD(0.01, momentum=0.9), "categorical_crossentropy",
                  ["accuracy"])
    return model


def tiny_data(n=4, shape=(2, 2, 1)):
    rng = np.random.default_rng(0)
    return rng.random((n, *shape), dtype=np.float32), to_categorical(np.arange(n) % 2, 2)


@pytest.fixture
def saved_model(tmp_path):
    """A trained model saved with its optimizer state (SGD momentum slots)."""
    model = tiny_model()
    model.fit(*tiny_data(), verbose=0)
    path = tmp_path / "model.h5"
    model.save(path)
    return path


# -- 4: optimizer slots that do not fit the parameters ----------------------------------

def test_an_optimizer_reused_by_a_model_of_other_shapes_says_so():
    optimizer = SGD(0.01, momentum=0.9)
    tiny_model(optimizer=optimizer).fit(*tiny_data(), verbose=0)
    other = tiny_model((64, 64, 4), optimizer=optimizer)   # same layer name "head"
    with pytest.raises(ValueError, match=r"slot 'velocity' of layer 'head', parameter "
                                         r"'kernel' has shape \(4, 2\).*\(16384, 2\).*"
                                         r"new optimizer object for each model"):
        other.fit(*tiny_data(8, (64, 64, 4)), verbose=0)


@pytest.mark.parametrize("optimizer", [SGD(0.1, momentum=0.9), RMSprop(0.01)])
def test_an_update_never_runs_on_a_gradient_of_another_shape(optimizer):
    """NumPy would broadcast a (2,) gradient over a (3, 2) parameter, the fused kernels would
    read past its end: both are refused."""
    layer = Dense(2, name="d")
    layer.build((3,))
    layer.grads = {"kernel": np.ones(2, np.float32), "bias": np.ones(2, np.float32)}
    before = layer.get_weights()
    with pytest.raises(ValueError, match=r"layer 'd', parameter 'kernel': shapes differ "
                                         r"\(parameter \(3, 2\).*gradient \(2,\)"):
        optimizer.apply([layer])
    np.testing.assert_array_equal(layer.get_weights()[0], before[0])


def test_load_model_refuses_an_optimizer_slot_of_the_wrong_shape(saved_model):
    with h5py.File(saved_model, "a") as f:
        del f["optimizer_state/head/kernel/velocity"]
        f["optimizer_state/head/kernel/velocity"] = np.zeros((16384, 2), np.float32)
    with pytest.raises(ValueError, match=rf"{saved_model}.*slot 'velocity' of layer 'head', "
                                         r"parameter 'kernel' has shape \(16384, 2\) but the "
                                         r"parameter has shape \(4, 2\)"):
        load_model(saved_model)


def test_set_state_checks_the_slots_against_the_layers():
    model = tiny_model()
    optimizer = SGD(0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"layer 'nope', parameter 'kernel'.*does not have"):
        optimizer.set_state({"iterations": 3, "slots": {
            "nope/kernel/velocity": np.zeros((4, 2))}}, layers=model.layers)
    with pytest.raises(ValueError, match=r"'head/kernel/velocity/x': expected a key"):
        optimizer.set_state({"iterations": 3, "slots": {
            "head/kernel/velocity/x": np.zeros((4, 2))}})
    assert optimizer.iterations == 0 and optimizer.slots == {}   # nothing half-restored


# -- 5: set_weights copies ---------------------------------------------------------------

def test_set_weights_copies_so_training_changes_neither_the_list_nor_another_model():
    x, y = tiny_data()
    first, second = tiny_model(), tiny_model()
    weights = [np.full(w.shape, 0.5, np.float32) for w in first.get_weights()]
    first.set_weights(weights)
    second.set_weights(weights)
    first.fit(x, y, epochs=3, verbose=0)
    for given, kept in zip(weights, second.get_weights()):
        np.testing.assert_array_equal(given, 0.5)   # exact: never written to
        np.testing.assert_array_equal(kept, 0.5)
    assert not np.array_equal(first.get_weights()[0], weights[0])   # it did train


# -- 9: a failed set_weights / load_weights changes nothing ------------------------------

def test_a_failed_set_weights_leaves_every_layer_as_it_was():
    model = Sequential([Dense(3, input_shape=(2,), name="a"), Dense(2, name="b")])
    before = model.get_weights()
    wrong = [np.ones_like(w) for w in before]
    wrong[-1] = np.ones(5, np.float32)      # the last layer's bias does not fit
    with pytest.raises(ValueError, match=r"layer 'b': weight 'bias' has shape \(2,\), got "
                                         r"\(5,\)"):
        model.set_weights(wrong)
    with pytest.raises(ValueError, match=r"layer 'a': weight 'bias'"):
        model.layers[0].set_weights([np.ones((2, 3)), np.ones(7)])
    for old, now in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, now)


def test_a_failed_load_weights_leaves_every_layer_as_it_was(tmp_path):
    source = Sequential([Dense(3, input_shape=(2,), name="a"), Dense(4, name="b")])
    save_weights(source, tmp_path / "w.h5")
    model = Sequential([Dense(3, input_shape=(2,), name="a"), Dense(2, name="b")])
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"layer 'b': weight 'kernel' has shape \(3, 2\)"):
        load_weights(model, tmp_path / "w.h5")
    for old, now in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, now)


# -- 10: batch_size, and empty inputs ------------------------------------------------------

@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, "8"])
@pytest.mark.parametrize("call", ["fit", "evaluate", "predict"])
def test_batch_size_must_be_a_positive_integer(call, batch_size):
    model, (x, y) = tiny_model(), tiny_data()
    run = {"fit": lambda: model.fit(x, y, batch_size=batch_size, verbose=0),
           "evaluate": lambda: model.evaluate(x, y, batch_size=batch_size),
           "predict": lambda: model.predict(x, batch_size=batch_size)}[call]
    with pytest.raises(ValueError, match=rf"{call}: batch_size must be a positive integer, "
                                         rf"got {batch_size!r}"):
        run()


def test_predict_checks_the_shape_of_an_empty_array():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"inputs of shape \(0, 5\) do not match the "
                                         r"model's input \(batch, 2, 2, 1\)"):
        model.predict(np.zeros((0, 5), np.float32))
    assert model.predict(np.zeros((0, 2, 2, 1), np.float32)).shape == (0, 2)


# -- 13: damaged and foreign model files -------------------------------------------------

def _drop_layer_group(f):
    del f["model_weights/head"]


def _drop_bias(f):
    del f["model_weights/head/bias"]


def _drop_optimizer_state(f):
    del f["optimizer_state"]


def _drop_iterations(f):
    del f["optimizer_state"].attrs["iterations"]


def _garble_model_config(f):
    f.attrs["model_config"] = "{not json"


def _unknown_optimizer(f):
    training = json.loads(f.attrs["training_config"])
    training["optimizer"]["name"] = "lamb"
    f.attrs["training_config"] = json.dumps(training)


def _config_without_layers(f):
    f.attrs["model_config"] = json.dumps({"name": "m"})


def _unknown_layer_class(f):
    config = json.loads(f.attrs["model_config"])
    config["layers"][0]["class_name"] = "Conv3D"
    f.attrs["model_config"] = json.dumps(config)


def _weight_of_another_shape(f):
    del f["model_weights/head/kernel"]
    f["model_weights/head/kernel"] = np.zeros((5, 2), np.float32)


@pytest.mark.parametrize("damage, expected", [
    (_drop_layer_group, r"group /model_weights/head is missing"),
    (_drop_bias, r"dataset /model_weights/head/bias is missing"),
    (_drop_optimizer_state, r"group /optimizer_state is missing"),
    (_drop_iterations, r"/optimizer_state lacks the attribute 'iterations'"),
    (_garble_model_config, r"attribute 'model_config' is not valid JSON"),
    (_unknown_optimizer, r"unknown optimizer 'lamb': expected one of \['adagrad', 'adam', "
                         r"'adamw', 'nadam', 'rmsprop', 'sgd'\]"),
    (_config_without_layers, r"attribute 'model_config' lacks 'layers'"),
    (_unknown_layer_class, r"layer 0 of 'model_config' cannot be rebuilt.*'Conv3D'"),
    (_weight_of_another_shape, r"weight 'kernel' has shape \(4, 2\), got \(5, 2\)"),
])
def test_load_model_names_the_file_and_what_is_wrong_in_it(saved_model, damage, expected):
    with h5py.File(saved_model, "a") as f:
        damage(f)
    with pytest.raises(ValueError, match=rf"model file '{saved_model}' is not a complete "
                                         rf"minicnn model: .*{expected}"):
        load_model(saved_model)


def test_load_model_on_a_keras_model_file_points_to_load_weights(tmp_path):
    """A whole-model .h5 as Keras 2 writes it: a Keras config and the weights under
    model_weights."""
    path = tmp_path / "keras_model.h5"
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.13.1"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential",
                                              "config": {"name": "sequential", "layers": []}})
        f.create_group("model_weights").attrs["layer_names"] = np.array([b"dense"])
    with pytest.raises(ValueError, match=rf"'{path}' is a model file written by Keras.*"
                                         r"minicnn\.weights\.load_weights"):
        load_model(path)


def test_load_model_on_a_missing_file_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model file .*nothere\.h5' does not exist"):
        load_model(tmp_path / "nothere.h5")


# -- 6: evaluate and predict over a folder with an unreadable file -----------------------

@pytest.fixture
def folder_with_a_broken_image(tmp_path):
    """Classes a (7 files, a/03 unreadable) and b (6 files): 4x4 grey images, each of one
    value, 10 * its index in filenames order."""
    value = 0
    for cls, count in (("a", 7), ("b", 6)):
        os.makedirs(tmp_path / cls)
        for i in range(count):
            path = tmp_path / cls / f"{i:02d}.png"
            Image.fromarray(np.full((4, 4), value, np.uint8)).save(path)
            value += 10
    (tmp_path / "a" / "03.png").write_bytes(b"not a png")
    return tmp_path


def _iterator(folder, class_mode="categorical"):
    return ImageDataGenerator().flow_from_directory(
        str(folder), target_size=(4, 4), color_mode="grayscale", class_mode=class_mode,
        batch_size=4, shuffle=False, workers=0)


def test_evaluate_over_a_folder_counts_each_readable_file_once(folder_with_a_broken_image):
    """A model that always says "a" is right on the 6 readable a's of 12 readable files."""
    model = Sequential([Flatten(input_shape=(4, 4, 1)), Dense(2, activation="softmax")])
    model.compile(SGD(0.1), "categorical_crossentropy", ["accuracy"])
    model.set_weights([np.zeros((16, 2)), np.array([5.0, 0.0])])
    with pytest.warns(RuntimeWarning, match="skipping unreadable image"):
        loss, accuracy = model.evaluate(_iterator(folder_with_a_broken_image))
    assert accuracy == 0.5


def test_predict_over_a_folder_gives_one_row_per_file_nan_for_the_unreadable(
        folder_with_a_broken_image):
    iterator = _iterator(folder_with_a_broken_image, class_mode=None)
    model = Sequential([Flatten(input_shape=(4, 4, 1)), Dense(1)])
    model.set_weights([np.full((16, 1), 1 / 16), np.zeros(1)])   # the image's mean value
    with pytest.warns(RuntimeWarning, match="skipping unreadable image"), \
            pytest.warns(RuntimeWarning, match=r"their rows are NaN: a/03\.png"):
        rows = model.predict(iterator)
    assert rows.shape == (13, 1) and len(iterator.filenames) == 13
    assert np.isnan(rows[3, 0])
    kept = np.delete(np.arange(13), 3)
    # Each row is the mean of 16 equal integers <= 120: exact in float32.
    np.testing.assert_array_equal(rows[kept, 0], 10.0 * kept)


# -- 14: temporary files of killed processes ----------------------------------------------

@pytest.mark.skipif(os.name == "nt", reason="on Windows no process is taken for dead")
def test_a_save_removes_temporary_files_of_dead_processes_only(tmp_path):
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()                                       # its pid: a process that is gone
    dead = tmp_path / f".model.h5.{io_utils._owner_tag(finished.pid)}.abcd1234.tmp"
    alive = tmp_path / f".model.h5.{io_utils._owner_tag(os.getppid())}.efgh5678.tmp"
    other_host = tmp_path / f".model.h5.00000000-{finished.pid}.ijkl9012.tmp"
    for path in (dead, alive, other_host):
        path.write_bytes(b"partial")
    tiny_model().save(tmp_path / "model.h5")
    assert not dead.exists()
    assert alive.exists() and other_host.exists()
    assert load_model(tmp_path / "model.h5").get_layer("head") is not None


# -- 15: layer names -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["a/b", "", ".", "..", 3])
def test_layer_names_that_cannot_key_a_file_are_refused(name):
    with pytest.raises(ValueError, match=r"Argument `name` must be a non-empty string.*"
                                         rf"Received: name={name!r}"):
        Dense(2, name=name)


# -- 12: settings that make the weights non-finite, and the divergence message ----------

@pytest.mark.parametrize("make, setting, shown", [
    (lambda: SGD(float("nan")), "learning_rate", "nan"),
    (lambda: SGD(float("inf")), "learning_rate", "inf"),
    (lambda: RMSprop(1e39), "learning_rate", "1e+39"),   # inf in float32
    (lambda: SGD(0.1, decay=float("nan")), "decay", "nan"),
    (lambda: RMSprop(0.1, epsilon=-1e-7), "epsilon", "-1e-07"),
    (lambda: RMSprop(0.1, epsilon=float("inf")), "epsilon", "inf"),
])
def test_optimizer_settings_must_be_finite_and_in_range(make, setting, shown):
    with pytest.raises(ValueError, match=rf"{setting} must be a finite number in .*, got "
                                         rf"{re.escape(shown)}$"):
        make()


def test_a_diverged_fit_says_truthfully_that_the_weights_are_not_finite():
    """A learning rate just below float32's largest makes the first update's weights inf;
    the second batch's loss is then not finite, and the message says what the model holds."""
    model = Sequential([Dense(1, input_shape=(2,), name="out")])
    model.compile(SGD(3e38), "mse")
    model.set_weights([np.ones((2, 1)), np.zeros(1)])
    x, y = np.full((4, 2), 10, np.float32), np.zeros((4, 1), np.float32)
    with np.errstate(all="ignore"), pytest.raises(
            TrainingDivergedError, match=r"batch 2: training stopped\. The weights are not "
                                         r"finite \(out/kernel, out/bias hold NaN or inf\)"):
        model.fit(x, y, batch_size=2, shuffle=False, verbose=0)


# -- 17: empty models, shapes and templates -------------------------------------------------

def test_fit_on_an_empty_model_says_so():
    model = Sequential()
    model.compile(SGD(0.1), "mse")
    with pytest.raises(RuntimeError, match="fit called on an empty model: add layers"):
        model.fit(np.zeros((2, 3)), np.zeros((2, 1)), verbose=0)


@pytest.mark.parametrize("make, shown", [
    (lambda: Dense(2, input_shape=(-3,)), r"'dense' \(Dense\).*input_shape=\(-3,\)"),
    (lambda: Flatten(input_shape=(0, 4)), r"input_shape=\(0, 4\)"),
    (lambda: Conv2D(4, 3, input_shape=(8, 8.5, 1)), r"input_shape=\(8, 8\.5, 1\)"),
    (lambda: Dense(0), r"units must be a positive integer\. Received: units=0"),
    (lambda: Dense(2.5), r"Received: units=2\.5"),
    (lambda: Conv2D(0, 3), r"Received: filters=0"),
    (lambda: Conv2D(4, 0), r"Received: kernel_size=0"),
    (lambda: Conv2D(4, (3, 2.5)), r"Received: kernel_size=\(3, 2\.5\)"),
    (lambda: Conv2D(4, 3, strides=-1), r"Received: strides=-1"),
])
def test_layer_sizes_must_be_positive_integers(make, shown):
    with pytest.raises(ValueError, match=shown):
        make()


def test_model_checkpoint_checks_its_path_template(tmp_path):
    with pytest.raises(ValueError, match=r"x_\{foo\}\.h5' \(KeyError: 'foo'\); it may use "
                                         r"\{epoch\}, \{loss\}, \{accuracy\}, \{val_loss\}"):
        ModelCheckpoint(str(tmp_path / "x_{foo}.h5"))
    checkpoint = ModelCheckpoint(str(tmp_path / "m_{val_loss:.2f}.h5"), monitor="loss")
    with pytest.raises(ValueError, match=r"uses 'val_loss', which is not in this epoch's logs "
                                         r"\['accuracy', 'loss'\] \(val_\* needs validation"):
        tiny_model().fit(*tiny_data(), verbose=0, callbacks=[checkpoint])


def test_progress_speed_leaves_out_the_first_batch(monkeypatch):
    """Issue 14, item 18: the first batch (numba compiling, ~15 s) made the bar show
    2 img/s and a 3-minute ETA; the speed is now timed from the end of the first batch."""
    from minicnn import callbacks

    clock = iter([0.0, 15.0, 16.0, 17.0])      # epoch start, then the end of each batch
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
    bar = callbacks.ProgressBar(steps=3, epochs=1, verbose=1)
    bar.on_epoch_begin(0)
    bar.on_batch_end(0, {"loss": 1.0, "size": 32})
    assert bar.images_per_second is None
    bar.on_batch_end(1, {"loss": 1.0, "size": 32})
    assert bar.images_per_second == 32.0        # not 64 images / 16 s = 4
    bar.on_batch_end(2, {"loss": 1.0, "size": 32})
    assert bar.images_per_second == 32.0
    assert bar._bar.n == 3
    bar._bar.close()
