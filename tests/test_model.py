"""Sequential: training on a toy problem, save/load, callbacks and clear errors."""
import os

import numpy as np
import pytest

import minicnn
from minicnn import (SGD, Conv2D, Dense, Dropout, EarlyStopping, Flatten, MaxPooling2D,
                     ModelCheckpoint, RMSprop, Sequential, load_model, to_categorical)
from minicnn.callbacks import History
from minicnn.data.synthetic import make_shapes



def small_cnn(size=24, dropout=0.0):
    return Sequential([
        Conv2D(8, 3, padding="same", activation="relu", input_shape=(size, size, 3)),
        MaxPooling2D(),
        Conv2D(16, 3, padding="same", activation="relu"),
        MaxPooling2D(),
        Flatten(),
        Dense(32, activation="relu"),
        Dropout(dropout),
        Dense(2, activation="softmax"),
    ])


@pytest.fixture(scope="module")
def shapes():
    x, y = make_shapes(400, 24, seed=0)
    xv, yv = make_shapes(200, 24, seed=5)
    return x, to_categorical(y), xv, to_categorical(yv)


@pytest.fixture(scope="module")
def trained(shapes, tmp_path_factory):
    """A small CNN trained on circles vs squares (shared by several tests)."""
    minicnn.set_seed(1)
    x, y, xv, yv = shapes
    model = small_cnn(dropout=0.1)
    model.compile(RMSprop(0.003), "categorical_crossentropy", ["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=10, validation_data=(xv, yv), verbose=0)
    return model, history


def test_fit_learns_a_toy_problem(trained, shapes):
    model, history = trained
    # RMSprop at 3e-3 swings validation accuracy by up to ~0.15 from one epoch to the next
    # on these 200 images (seen on the CPU and on the GPU, whose dropout masks come from
    # another random stream), so one epoch alone is a coin toss: judge the last three.
    assert max(history.history["val_accuracy"][-3:]) >= 0.85, history.history
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    loss, accuracy = model.evaluate(shapes[2], shapes[3])
    # the same predictions counted twice; only the float64 weighted mean rounds (1e-16)
    assert accuracy == pytest.approx(history.history["val_accuracy"][-1], abs=1e-6)


def test_save_load_gives_identical_predictions_and_resumes_training(trained, shapes, tmp_path):
    model, _ = trained
    x, y, xv, _ = shapes
    path = tmp_path / "model.h5"
    model.save(path)
    restored = load_model(path)
    np.testing.assert_array_equal(model.predict(xv), restored.predict(xv))
    assert restored.optimizer.iterations == model.optimizer.iterations
    assert [type(l) for l in restored.layers] == [type(l) for l in model.layers]
    # Two more epochs from the saved state give the same weights as from the original
    # (dropout off: its random masks are not part of a model file, as in Keras).
    for m in (model, restored):
        m.get_layer("dropout").rate = 0.0
        m.fit(x[:64], y[:64], batch_size=16, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), restored.get_weights()):
        # the same steps on the same machine in the same order: equal but for at most a
        # rounding of the restored float32 state per step (8 steps * eps32 = 1e-6)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_a_failed_save_leaves_the_previous_file_intact(trained, tmp_path, monkeypatch):
    model, _ = trained
    path = tmp_path / "model.h5"
    model.save(path)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(minicnn.layers.Dense, "get_weights", broken)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.h5"]     # no temporary file left behind


def test_fit_before_compile_says_so(shapes):
    with pytest.raises(RuntimeError, match="fit called before compile"):
        small_cnn().fit(shapes[0], shapes[1], verbose=0)


def test_labels_that_do_not_match_the_output_say_so(shapes):
    model = small_cnn()
    model.compile("sgd", "categorical_crossentropy")
    with pytest.raises(ValueError, match=r"labels of shape \(400,\).*\(batch, 2\)"):
        model.fit(shapes[0], np.zeros(400), verbose=0)
    with pytest.raises(ValueError, match="x has 400 samples but y has 3"):
        model.fit(shapes[0], shapes[1][:3], verbose=0)


def test_wrong_input_shape_names_the_layer(shapes):
    model = small_cnn()
    model.compile("sgd", "categorical_crossentropy")
    with pytest.raises(ValueError, match=r"conv2d.*expects input shape \(batch, 24, 24, 3\)"):
        model.predict(np.zeros((2, 20, 20, 3), np.float32))


def test_compile_rejects_unknown_names():
    model = small_cnn()
    with pytest.raises(ValueError, match="unknown loss 'crossentropy'"):
        model.compile("sgd", "crossentropy")
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        model.compile("sgd", "binary_crossentropy", ["auc"])


def test_fit_on_a_generator_with_steps_per_epoch(shapes):
    x, y, xv, yv = shapes

    def batches():
        while True:
            for i in range(0, 64, 16):
                yield x[i:i + 16], y[i:i + 16]

    model = small_cnn()
    model.compile(SGD(0.01, momentum=0.9), "binary_crossentropy", ["accuracy"])
    history = model.fit(batches(), steps_per_epoch=4, epochs=2, validation_data=batches(),
                        validation_steps=2, verbose=0)
    assert len(history.history["loss"]) == 2 and "val_accuracy" in history.history
    assert model.optimizer.iterations == 8


def test_nan_loss_stops_training_with_a_clear_message(shapes):
    x, y, _, _ = shapes
    bad = x[:32].copy()
    bad[5, 0, 0, 0] = np.nan
    model = small_cnn()
    model.compile("sgd", "categorical_crossentropy")
    with pytest.raises(minicnn.TrainingDivergedError, match="loss became nan at epoch 1, batch 1"):
        model.fit(bad, y[:32], batch_size=32, epochs=3, verbose=0)


def test_a_batch_with_a_nan_loss_leaves_the_weights_as_they_were(shapes):
    x, y, _, _ = shapes
    model = small_cnn()
    model.compile(SGD(0.1, momentum=0.9), "categorical_crossentropy")
    model.train_on_batch(x[:8], y[:8])
    before = model.get_weights()
    bad = x[:8].copy()
    bad[3, 2, 2, 1] = np.inf
    logs = model.train_on_batch(bad, y[:8])
    assert not np.isfinite(logs["loss"])
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert model.optimizer.iterations == 1


def test_early_stopping_restores_the_best_weights():
    class Scripted(minicnn.Callback):
        """Feeds EarlyStopping a scripted val_loss, and snapshots weights per epoch."""
        losses = [1.0, 0.5, 0.7, 0.8, 0.9, 0.4]

        def __init__(self):
            self.snapshots = []

        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = self.losses[epoch]
            self.snapshots.append(self.model.get_weights())

    x, y = np.random.default_rng(0).standard_normal((8, 3)), np.eye(2)[[0, 1] * 4]
    model = Sequential([Dense(2, activation="softmax", input_shape=(3,))])
    model.compile(SGD(0.1), "categorical_crossentropy")
    scripted = Scripted()
    stopper = EarlyStopping(patience=2, restore_best_weights=True)
    history = model.fit(x, y, epochs=6, callbacks=[scripted, stopper], verbose=0)
    assert len(history.history["loss"]) == 4          # stopped after 2 epochs without progress
    assert stopper.best_epoch == 1
    for a, b in zip(model.get_weights(), scripted.snapshots[1]):
        np.testing.assert_array_equal(a, b)


def test_model_checkpoint_saves_only_improvements(tmp_path):
    x, y = np.random.default_rng(0).standard_normal((8, 3)), np.eye(2)[[0, 1] * 4]
    model = Sequential([Dense(2, activation="softmax", input_shape=(3,))])
    model.compile(SGD(0.5), "categorical_crossentropy", ["accuracy"])
    path = tmp_path / "best.h5"
    checkpoint = ModelCheckpoint(path, monitor="loss", save_best_only=True)
    model.fit(x, y, epochs=3, callbacks=[checkpoint], verbose=0)
    assert path.exists()
    assert checkpoint.best == pytest.approx(min(model.history.history["loss"]))   # one value


def test_history_round_trips_through_json_and_csv(tmp_path):
    history = History()
    for epoch, (loss, acc) in enumerate([(0.9, 0.5), (0.6, 0.75)]):
        history.on_epoch_end(epoch, {"loss": loss, "accuracy": acc})
    for name in ("h.json", "h.csv"):
        history.save(tmp_path / name)
        loaded = History.load(tmp_path / name)
        assert loaded.history == history.history and loaded.epoch == [0, 1]


def test_summary_get_set_weights_and_param_count(capsys):
    model = small_cnn()
    model.summary()
    text = capsys.readouterr().out
    assert "conv2d (Conv2D)" in text and "(None, 12, 12, 8)" in text
    assert f"Total params: {model.count_params():,}" in text
    assert model.count_params() == (3 * 3 * 3 * 8 + 8) + (3 * 3 * 8 * 16 + 16) + \
        (6 * 6 * 16 * 32 + 32) + (32 * 2 + 2)
    weights = model.get_weights()
    assert [w.shape for w in weights[:2]] == [(3, 3, 3, 8), (8,)]   # Keras's order
    zeros = [np.zeros_like(w) for w in weights]
    model.set_weights(zeros)
    assert all((w == 0).all() for w in model.get_weights())
    with pytest.raises(ValueError, match="has 8 weight arrays, got 1"):
        model.set_weights(zeros[:1])


def test_load_model_rejects_files_that_are_not_models(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("not hdf5")
    with pytest.raises(OSError, match="not an HDF5 file"):
        load_model(path)


def test_layers_taken_from_another_model_keep_their_weights():
    """Splitting a trained model into parts (as the VGG16 example does) must not
    re-initialise the layers it reuses."""
    full = small_cnn()
    before = full.get_weights()
    bottom = Sequential(full.layers[:4])
    top = Sequential(full.layers[4:])
    for a, b in zip(before, bottom.get_weights() + top.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).random((2, 24, 24, 3), dtype=np.float32)
    # The split falls between whole conv + pool pairs: the same kernels on the same
    # batch, the same sums in the same order, so the same bits.
    np.testing.assert_array_equal(top.predict(bottom.predict(x)), full.predict(x))
    with pytest.raises(ValueError, match="was built for inputs"):
        Sequential([full.layers[0], full.layers[2]])
