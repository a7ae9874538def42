"""ReduceLROnPlateau, LearningRateScheduler, CSVLogger and TerminateOnNaN: Keras 3's
arguments and behaviour, checked against Keras's own callbacks where that is cheap (they
run on a stand-in model that only has an optimizer) and inside minicnn's fit."""
import math
import os
import re
import warnings

import numpy as np
import pytest

import minicnn
from minicnn import Dense, Flatten, Sequential, TrainingDivergedError, io_utils
from minicnn.callbacks import (Callback, CSVLogger, LearningRateScheduler, ReduceLROnPlateau,
                               TerminateOnNaN)


def import_keras():
    """Keras, or a skip (a failure when MINICNN_REQUIRE_KERAS=1, as in CI)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get("MINICNN_REQUIRE_KERAS", "") not in ("", "0"):
        import keras
        return keras
    return pytest.importorskip("keras")


class FakeOptimizer:
    def __init__(self, learning_rate):
        self.learning_rate = learning_rate
        self.iterations = 0


class FakeModel:
    """What these callbacks use of a model: its optimizer and stop_training."""

    def __init__(self, learning_rate=0.1):
        self.optimizer = FakeOptimizer(learning_rate)
        self.stop_training = False


def small_model(learning_rate=0.1):
    model = Sequential([Flatten(input_shape=(4, 4, 1)), Dense(3, activation="softmax")])
    model.compile(minicnn.SGD(learning_rate), "categorical_crossentropy", ["accuracy"])
    return model


def small_data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 4, 4, 1), dtype=np.float32)
    y = minicnn.to_categorical(rng.integers(0, 3, n), 3)
    return x, y


def run_epochs(callback, model, monitor_values, monitor="val_loss"):
    """Feed ``callback`` the epochs' logs; the learning rates after each epoch, the logs."""
    callback.set_model(model)
    callback.on_train_begin({})
    rates, all_logs = [], []
    for epoch, value in enumerate(monitor_values):
        logs = {"loss": 1.0, monitor: value}
        callback.on_epoch_begin(epoch, {})
        callback.on_epoch_end(epoch, logs)
        rates.append(float(model.optimizer.learning_rate))
        all_logs.append(logs)
    return rates, all_logs


# -- ReduceLROnPlateau --------------------------------------------------------------------
PLATEAU_CASES = [
    # (arguments, monitored values)
    (dict(patience=2), [1.0, 0.9, 0.95, 0.91, 0.92, 0.5, 0.6, 0.6, 0.6, 0.6]),
    (dict(patience=1, factor=0.5, cooldown=2),
     [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.6, 0.7, 0.8, 0.9]),
    (dict(patience=0, factor=0.5, min_lr=0.02), [1.0] * 8),
    (dict(patience=1, min_delta=0.1), [1.0, 0.95, 0.85, 0.84, 0.8, 0.7, 0.69, 0.68]),
    (dict(patience=2, mode="max", monitor="val_accuracy", factor=0.2),
     [0.5, 0.6, 0.6, 0.59, 0.7, 0.7, 0.7, 0.71, 0.71, 0.71]),
    (dict(patience=1, factor=0.0), [1.0, 2.0, 3.0, 4.0]),
]


@pytest.mark.keras
@pytest.mark.parametrize("arguments, values", PLATEAU_CASES)
def test_reduce_lr_on_plateau_matches_keras(arguments, values):
    keras = import_keras()
    monitor = arguments.get("monitor", "val_loss")
    ours_model, keras_model = FakeModel(0.1), FakeModel(0.1)
    ours = ReduceLROnPlateau(**arguments)
    theirs = keras.callbacks.ReduceLROnPlateau(**arguments)
    ours_rates, ours_logs = run_epochs(ours, ours_model, values, monitor)
    keras_rates, keras_logs = run_epochs(theirs, keras_model, values, monitor)
    assert ours_rates == keras_rates
    assert [logs["learning_rate"] for logs in ours_logs] == \
        [logs["learning_rate"] for logs in keras_logs]
    assert (ours.wait, ours.cooldown_counter, ours.best) == \
        (theirs.wait, theirs.cooldown_counter, theirs.best)


def test_reduce_lr_on_plateau_sequence_by_hand():
    # Keras's rule: wait counts epochs without an improvement of more than min_delta;
    # at patience the rate is multiplied by factor and the cooldown counter set to
    # `cooldown`; each epoch first counts it down (wait stays 0), so cooldown=2 leaves
    # one epoch uncounted: reductions after epochs 3 and 6 (1-based).
    model = FakeModel(1.0)
    rates, logs = run_epochs(ReduceLROnPlateau(patience=2, factor=0.5, cooldown=2), model,
                             [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5])
    assert rates == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]
    # logs["learning_rate"]: the rate the epoch trained with, before any reduction.
    assert [entry["learning_rate"] for entry in logs] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5,
                                                          0.25, 0.25]


def test_reduce_lr_on_plateau_stops_at_min_lr():
    model = FakeModel(0.1)
    rates, _ = run_epochs(ReduceLROnPlateau(patience=0, factor=0.1, min_lr=0.005), model,
                          [1.0] * 5)
    assert rates[0] == 0.1 and rates[1] == pytest.approx(0.01)
    assert rates[2:] == [0.005, 0.005, 0.005]


def test_reduce_lr_on_plateau_in_fit_records_the_rate():
    model = small_model(0.1)
    x, y = small_data()
    history = model.fit(x, y, epochs=4, batch_size=8, validation_data=(x, y), verbose=0,
                        callbacks=[ReduceLROnPlateau(monitor="loss", patience=1, factor=0.5,
                                                     min_delta=10.0)])
    # min_delta=10: no epoch improves after the first, so the rate halves every epoch
    # from the second on; History (after the callback, as in Keras) records the rates.
    assert history.history["learning_rate"] == [0.1, 0.1, 0.05, 0.025]
    assert float(model.optimizer.learning_rate) == 0.0125


def test_reduce_lr_on_plateau_keras2_monitor_name():
    model = FakeModel(1.0)
    callback = ReduceLROnPlateau(monitor="val_acc", patience=0, factor=0.5)
    callback.set_model(model)
    callback.on_train_begin()
    with warnings.catch_warnings():     # "val_acc is Keras 2's name", once per process
        warnings.simplefilter("ignore")
        callback.on_epoch_end(0, {"val_accuracy": 0.5})
    callback.on_epoch_end(1, {"val_accuracy": 0.4})     # lower accuracy: worse
    assert model.optimizer.learning_rate == 0.5


def test_reduce_lr_on_plateau_missing_monitor_warns_as_keras():
    model = FakeModel(1.0)
    callback = ReduceLROnPlateau()
    callback.set_model(model)
    callback.on_train_begin()
    with pytest.warns(UserWarning, match="val_loss.*not available.*loss"):
        callback.on_epoch_end(0, {"loss": 1.0})
    assert model.optimizer.learning_rate == 1.0


@pytest.mark.parametrize("arguments, message", [
    (dict(factor=1.0), "factor >= 1.0.*factor=1.0"),
    (dict(factor=-0.5), "factor.*-0.5"),
    (dict(factor="half"), "factor.*'half'"),
    (dict(mode="minimum"), "mode 'minimum'"),
    (dict(patience=-1), "patience.*-1"),
    (dict(patience=1.5), "patience.*1.5"),
    (dict(cooldown=-2), "cooldown.*-2"),
    (dict(min_lr=-1e-3), "min_lr.*-0.001"),
    (dict(min_delta=float("nan")), "min_delta.*nan"),
])
def test_reduce_lr_on_plateau_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        ReduceLROnPlateau(**arguments)


# -- LearningRateScheduler ----------------------------------------------------------------
def keras_docstring_schedule(epoch, lr):
    return lr if epoch < 10 else lr * math.exp(-0.1)


def test_learning_rate_scheduler_keras_docstring_example():
    # Keras's docstring: SGD(0.01), 15 epochs -> round(lr, 5) == 0.00607.
    model = Sequential([Dense(1, input_shape=(20,))])
    model.compile(minicnn.SGD(0.01), "mse")
    history = model.fit(np.arange(100, dtype=np.float32).reshape(5, 20) / 100, np.zeros((5, 1)),
                        epochs=15, verbose=0,
                        callbacks=[LearningRateScheduler(keras_docstring_schedule)])
    assert round(float(model.optimizer.learning_rate), 5) == 0.00607
    assert history.history["learning_rate"][:10] == [0.01] * 10
    assert history.history["learning_rate"][10] == pytest.approx(0.01 * math.exp(-0.1))


@pytest.mark.keras
@pytest.mark.parametrize("schedule", [
    keras_docstring_schedule,
    lambda epoch: 0.1 / (1 + epoch),                      # Keras 2's one-argument form
    lambda epoch, lr: float(np.float32(lr * 0.9)),
])
def test_learning_rate_scheduler_matches_keras(schedule):
    keras = import_keras()
    results = []
    for callback in (LearningRateScheduler(schedule),
                     keras.callbacks.LearningRateScheduler(schedule)):
        model = FakeModel(0.05)
        callback.set_model(model)
        rates, logged = [], []
        for epoch in range(12):
            callback.on_epoch_begin(epoch, {})
            rates.append(float(model.optimizer.learning_rate))
            logs = {"loss": 1.0}
            callback.on_epoch_end(epoch, logs)
            logged.append(logs["learning_rate"])
        results.append((rates, logged))
    assert results[0] == results[1]


def test_learning_rate_scheduler_one_argument_schedule_in_fit():
    model = small_model(0.5)
    x, y = small_data()
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0,
                        callbacks=[LearningRateScheduler(lambda epoch: 0.1 * 2 ** -epoch)])
    assert history.history["learning_rate"] == [0.1, 0.05, 0.025]


@pytest.mark.parametrize("value", [None, "0.1", float("nan"), float("inf"), -0.1, [0.1]])
def test_learning_rate_scheduler_rejects_a_bad_rate(value):
    callback = LearningRateScheduler(lambda epoch, lr: value)
    callback.set_model(FakeModel(0.1))
    with pytest.raises(ValueError, match=r"should be a float.*Got: " + re.escape(repr(value))):
        callback.on_epoch_begin(0)


def test_learning_rate_scheduler_needs_a_function():
    with pytest.raises(TypeError, match="schedule.*0.1"):
        LearningRateScheduler(0.1)


def test_learning_rate_scheduler_keeps_errors_of_the_schedule():
    def schedule(epoch, lr):
        return lr + "x"             # a TypeError inside the schedule itself

    callback = LearningRateScheduler(schedule)
    callback.set_model(FakeModel(0.1))
    with pytest.raises(TypeError, match="str"):
        callback.on_epoch_begin(0)


def test_learning_rate_scheduler_needs_a_compiled_model():
    callback = LearningRateScheduler(lambda epoch, lr: lr)
    callback.set_model(Sequential([Dense(1, input_shape=(2,))]))
    with pytest.raises(ValueError, match="compile"):
        callback.on_epoch_begin(0)


# -- CSVLogger -----------------------------------------------------------------------------
EPOCH_LOGS = [
    {"loss": 0.9, "accuracy": 0.5, "val_loss": 1.0, "val_accuracy": 0.25},
    {"loss": 0.7000000000000001, "accuracy": 0.625, "val_loss": 0.8, "val_accuracy": 0.5},
    {"loss": 0.123456789012345, "accuracy": 1.0, "val_loss": float("nan"),
     "val_accuracy": 0.75},
]


def write_csv(callback, epochs):
    callback.set_model(FakeModel())
    callback.on_train_begin({})
    for epoch, logs in epochs:
        callback.on_epoch_end(epoch, dict(logs))
    callback.on_train_end({})


@pytest.mark.keras
@pytest.mark.parametrize("separator", [",", ";"])
@pytest.mark.parametrize("validation", [True, False])
def test_csv_logger_writes_keras_bytes(tmp_path, separator, validation):
    keras = import_keras()
    epochs = [(i, logs if validation else {k: v for k, v in logs.items()
                                           if not k.startswith("val_")})
              for i, logs in enumerate(EPOCH_LOGS)]
    write_csv(CSVLogger(tmp_path / "ours.csv", separator), epochs)
    write_csv(keras.callbacks.CSVLogger(str(tmp_path / "keras.csv"), separator), epochs)
    assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "keras.csv").read_bytes()
    # ...and continuing both files with append=True, as a resumed run does.
    more = [(3, epochs[0][1]), (4, epochs[1][1])]
    write_csv(CSVLogger(tmp_path / "ours.csv", separator, append=True), more)
    write_csv(keras.callbacks.CSVLogger(str(tmp_path / "keras.csv"), separator, append=True),
              more)
    assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "keras.csv").read_bytes()


def test_csv_logger_format_by_hand(tmp_path):
    write_csv(CSVLogger(tmp_path / "log.csv"), [(0, {"loss": 0.5, "accuracy": 0.25})])
    assert (tmp_path / "log.csv").read_bytes() == \
        b"epoch,accuracy,loss,val_accuracy,val_loss\r\n0,0.25,0.5,NA,NA\r\n"


def test_csv_logger_in_fit_matches_history(tmp_path):
    import csv

    model = small_model()
    x, y = small_data()
    history = model.fit(x, y, epochs=3, batch_size=8, validation_data=(x, y), verbose=0,
                        callbacks=[CSVLogger(tmp_path / "log.csv")])
    with open(tmp_path / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2]
    for key, values in history.history.items():
        assert [float(row[key]) for row in rows] == values


def test_csv_logger_interrupted_write_leaves_the_finished_rows(tmp_path, monkeypatch):
    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    logger.set_model(FakeModel())
    logger.on_train_begin()
    logger.on_epoch_end(0, dict(EPOCH_LOGS[0]))
    logger.on_epoch_end(1, dict(EPOCH_LOGS[1]))
    complete = path.read_bytes()
    real_open = open

    def open_then_fail(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if "w" in mode:             # the temporary file: half a row, then the crash
            handle.write("2,0.1")
            handle.close()
            raise KeyboardInterrupt
        return handle

    monkeypatch.setattr("builtins.open", open_then_fail)
    with pytest.raises(KeyboardInterrupt):
        logger.on_epoch_end(2, dict(EPOCH_LOGS[2]))
    monkeypatch.undo()
    assert path.read_bytes() == complete
    assert complete.count(b"\r\n") == 3                 # the header and two rows
    assert [p.name for p in tmp_path.iterdir()] == ["log.csv"]   # no temporary file left


def test_csv_logger_truncates_at_train_begin_unless_append(tmp_path):
    path = tmp_path / "log.csv"
    path.write_bytes(b"old\r\n")
    CSVLogger(path).on_train_begin()
    assert path.read_bytes() == b""
    path.write_bytes(b"old\r\n")
    CSVLogger(path, append=True).on_train_begin()
    assert path.read_bytes() == b"old\r\n"


@pytest.mark.parametrize("arguments, error, message", [
    (dict(filename=3), TypeError, "filename.*3"),
    (dict(filename="log.csv", separator=",,"), ValueError, "separator.*',,'"),
    (dict(filename="log.csv", separator=None), ValueError, "separator.*None"),
])
def test_csv_logger_rejects_bad_arguments(arguments, error, message):
    with pytest.raises(error, match=message):
        CSVLogger(**arguments)


def test_csv_logger_refuses_a_folder(tmp_path):
    with pytest.raises(IsADirectoryError, match="folder"):
        CSVLogger(tmp_path)


# -- TerminateOnNaN ------------------------------------------------------------------------
def data_with_nan_in_batch(batch, n=32, batch_size=8):
    x, y = small_data(n)
    x[batch * batch_size] = np.nan          # the batch's loss becomes NaN
    return x, y


def test_without_terminate_on_nan_fit_raises():
    model = small_model()
    x, y = data_with_nan_in_batch(2)
    with pytest.raises(TrainingDivergedError, match="epoch 1, batch 3"):
        model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)


def test_terminate_on_nan_stops_cleanly_as_keras():
    model = small_model()
    x, y = data_with_nan_in_batch(2)
    seen = []

    class Recorder(Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append((batch, logs["loss"]))

        def on_train_end(self, logs=None):
            seen.append("train_end")

    history = model.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0,
                        validation_data=(x[:8], y[:8]),
                        callbacks=[TerminateOnNaN(), Recorder()])
    # As in Keras: the epoch ends at the NaN batch, which the callbacks see, its logs
    # (the loss NaN) reach History, validation still runs, and training stops.
    assert [batch for batch, _ in seen[:-1]] == [0, 1, 2] and seen[-1] == "train_end"
    assert math.isnan(seen[2][1])
    assert history.epoch == [0]
    assert math.isnan(history.history["loss"][0])
    assert math.isfinite(history.history["val_loss"][0])
    # minicnn never applies the update of a non-finite loss: the weights stay finite.
    assert model.optimizer.iterations == 2
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_terminate_on_nan_raise_error():
    model = small_model()
    x, y = data_with_nan_in_batch(1)
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 1"):
        model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0,
                  callbacks=[TerminateOnNaN(raise_error=True)])


def test_terminate_on_nan_that_does_not_stop_still_raises():
    class Lenient(TerminateOnNaN):
        def on_batch_end(self, batch, logs=None):
            pass                            # sees the NaN, stops nothing

    model = small_model()
    x, y = data_with_nan_in_batch(1)
    with pytest.raises(TrainingDivergedError):
        model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0,
                  callbacks=[Lenient()])


@pytest.mark.keras
def test_terminate_on_nan_matches_keras_callback():
    keras = import_keras()
    for callback in (TerminateOnNaN(), keras.callbacks.TerminateOnNaN()):
        model = FakeModel()
        callback.set_model(model)
        callback.on_batch_end(0, {"loss": 1.0})
        assert not model.stop_training
        callback.on_batch_end(1, {"loss": float("inf")})
        assert model.stop_training


def test_a_callback_stopping_in_a_batch_ends_the_epoch():
    class StopAtBatch(Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    model = small_model()
    x, y = small_data()
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[StopAtBatch()])
    assert history.epoch == [0] and model.optimizer.iterations == 2


def test_callbacks_run_before_history_as_in_keras():
    class AddsToLogs(Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["extra"] = epoch * 2.0

    model = small_model()
    x, y = small_data()
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[AddsToLogs()])
    assert history.history["extra"] == [0.0, 2.0]


def test_new_callbacks_are_exported():
    from minicnn import callbacks

    for name in ("ReduceLROnPlateau", "LearningRateScheduler", "CSVLogger", "TerminateOnNaN",
                 "TensorBoard", "Callback", "History", "EarlyStopping", "ModelCheckpoint",
                 "ProgressBar", "KERAS2_NAMES", "logged_name", "MetricHistory"):
        assert hasattr(callbacks, name), name
    assert io_utils.atomic_write_text          # CSVLogger writes through it
