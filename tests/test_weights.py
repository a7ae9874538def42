"""Keras HDF5 weight files: every layout loads, every bad file says what is wrong.

The files are written here with h5py in each of Keras's layouts (see
minicnn/weights.py), so these tests run without Keras; the tests marked
``keras`` also check against files Keras writes and reads itself.
"""
import os
import warnings

import h5py
import numpy as np
import pytest

from minicnn import Conv2D, Dense, Flatten, MaxPooling2D, Sequential
from minicnn.weights import load_weights, read_weight_file, save_weights

from float32_error import assert_within, sequential_bound


# The longest chain of float32 additions in tiny_model: 3*3*3 + 1 in c1, 8 + 1 in d.
TINY_MODEL_TERMS = 28 + 9


def tiny_model(seed=0):
    """conv c1 (3,3,3,2) -> pool p -> flatten f -> dense d (8, 3): 4 weight arrays."""
    return Sequential([Conv2D(2, 3, input_shape=(6, 6, 3), name="c1", seed=seed),
                       MaxPooling2D(name="p"), Flatten(name="f"),
                       Dense(3, name="d", seed=seed + 1)])


def stored_arrays():
    """Distinct known values for the tiny model's weights, by layer name."""
    rng = np.random.default_rng(7)
    return {"c1": [rng.normal(size=(3, 3, 3, 2)).astype(np.float32),
                   rng.normal(size=(2,)).astype(np.float32)],
            "d": [rng.normal(size=(8, 3)).astype(np.float32),
                  rng.normal(size=(3,)).astype(np.float32)]}


def write_legacy(path, layers, style="caffe", root_group=None, order=None):
    """Keras's legacy layout. style "caffe": block1_conv1_W_1:0 names (the VGG16
    file Keras distributes); style "keras2": c1/kernel:0 (nested subgroups)."""
    names = order or ["input_1", "c1", "p", "f", "d"]
    with h5py.File(path, "w") as f:
        root = f.create_group(root_group) if root_group else f
        root.attrs["layer_names"] = np.array([n.encode() for n in names])
        for name in names:
            group = root.create_group(name)
            arrays = layers.get(name, [])
            if style == "caffe":
                weight_names = [f"{name}_{k}_1:0" for k in "Wb"[:len(arrays)]]
            else:
                weight_names = [f"{name}/{k}:0" for k in ("kernel", "bias")[:len(arrays)]]
            group.attrs["weight_names"] = np.array([n.encode() for n in weight_names],
                                                   dtype=bytes)
            for weight_name, array in zip(weight_names, arrays):
                group.create_dataset(weight_name, data=array)


def write_keras3(path, layers, classes=None):
    """Keras 3's .weights.h5 layout: layers/<class key>/vars/<i>, name as an attribute."""
    classes = classes or {"c1": "conv2d", "p": "max_pooling2d", "f": "flatten", "d": "dense"}
    with h5py.File(path, "w") as f:
        f.create_group("vars").attrs["name"] = "sequential"
        for name, key in classes.items():
            vars_group = f.create_group(f"layers/{key}/vars")
            vars_group.attrs["name"] = name
            for i, array in enumerate(layers.get(name, [])):
                vars_group.create_dataset(str(i), data=array)


def assert_loaded(model, arrays):
    for name, expected in arrays.items():
        for got, want in zip(model.get_layer(name).get_weights(), expected):
            np.testing.assert_array_equal(got, want)


LAYOUTS = {
    "legacy caffe names": lambda p, a: write_legacy(p, a, "caffe"),
    "legacy keras2 names": lambda p, a: write_legacy(p, a, "keras2"),
    "legacy in model_weights": lambda p, a: write_legacy(p, a, "keras2", "model_weights"),
    "keras3 weights.h5": write_keras3,
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("by_name", [False, True])
def test_every_layout_loads(tmp_path, layout, by_name):
    path = tmp_path / "w.h5"
    arrays = stored_arrays()
    LAYOUTS[layout](path, arrays)
    model = tiny_model()
    before = model.get_layer("c1").get_weights()[0]
    assert not np.array_equal(before, arrays["c1"][0])
    assert load_weights(model, path, by_name=by_name) is model
    assert_loaded(model, arrays)


def test_read_weight_file_lists_weightless_layers_too(tmp_path):
    write_legacy(tmp_path / "w.h5", stored_arrays())
    saved = read_weight_file(tmp_path / "w.h5")
    assert [s.name for s in saved] == ["input_1", "c1", "p", "f", "d"]
    assert [len(s.arrays) for s in saved] == [0, 2, 0, 0, 2]
    assert saved[1].location == "/c1"


def test_by_name_ignores_file_order_while_by_order_does_not(tmp_path):
    path = tmp_path / "w.h5"
    arrays = {"c1": stored_arrays()["c1"], "d": stored_arrays()["d"]}
    write_legacy(path, arrays, order=["d", "c1"])      # dense stored first
    model = tiny_model()
    load_weights(model, path, by_name=True)
    assert_loaded(model, arrays)
    with pytest.raises(ValueError, match=r"layer 'c1' \(stored as 'd'\).*\(3, 3, 3, 2\).*"
                                         r"\(8, 3\)"):
        load_weights(tiny_model(), path)


def test_keras3_order_follows_class_counter_not_alphabet(tmp_path):
    """HDF5 lists dense, dense_1, dense_10, dense_2...; Keras numbers layers in model order."""
    model = Sequential([Dense(2, input_shape=(2,), name=f"fc{i}") for i in range(12)])
    arrays = {f"fc{i}": [np.full((2, 2), i, np.float32), np.full((2,), -i, np.float32)]
              for i in range(12)}
    classes = {f"fc{i}": "dense" if i == 0 else f"dense_{i}" for i in range(12)}
    write_keras3(tmp_path / "w.weights.h5", arrays, classes)
    assert [s.name for s in read_weight_file(tmp_path / "w.weights.h5")] == list(arrays)
    load_weights(model, tmp_path / "w.weights.h5")
    assert_loaded(model, arrays)


# -- bad files --------------------------------------------------------------------------


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_missing_layer_is_named(tmp_path, layout):
    path = tmp_path / "w.h5"
    LAYOUTS[layout](path, {"c1": stored_arrays()["c1"]})
    for by_name in (False, True):
        with pytest.raises(ValueError, match=r"layer 'd' \(Dense.*has no weights in"):
            load_weights(tiny_model(), path, by_name=by_name)


def test_extra_layer_is_named(tmp_path):
    path = tmp_path / "w.h5"
    arrays = {**stored_arrays(), "e": [np.zeros((3, 1), np.float32)]}
    write_legacy(path, arrays, order=["c1", "p", "f", "d", "e"])
    for by_name in (False, True):
        with pytest.raises(ValueError, match=r"has weights for layer 'e' \[\(3, 1\)\]"):
            load_weights(tiny_model(), path, by_name=by_name)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_shape_mismatch_names_layer_and_both_shapes(tmp_path, layout):
    path = tmp_path / "w.h5"
    arrays = stored_arrays()
    arrays["d"][0] = np.zeros((8, 4), np.float32)
    LAYOUTS[layout](path, arrays)
    with pytest.raises(ValueError, match=r"layer 'd': weight 'kernel' has shape \(8, 3\) in "
                                         r"the model but \(8, 4\) in"):
        load_weights(tiny_model(), path)


def test_weight_count_mismatch_is_named(tmp_path):
    path = tmp_path / "w.h5"
    arrays = stored_arrays()
    arrays["d"] = arrays["d"][:1]
    write_legacy(path, arrays)
    with pytest.raises(ValueError, match=r"layer 'd': the model has 2 weights \(kernel, bias\)"
                                         r" but .* has 1"):
        load_weights(tiny_model(), path)


def test_skip_mismatch_warns_and_keeps_the_layer(tmp_path):
    path = tmp_path / "w.h5"
    arrays = stored_arrays()
    good_dense = arrays["d"]
    arrays["c1"] = [np.zeros((5, 5, 3, 2), np.float32), np.zeros(2, np.float32)]
    write_legacy(path, arrays)
    model = tiny_model()
    c1_before = model.get_layer("c1").get_weights()
    with pytest.warns(UserWarning, match=r"layer 'c1'.*\(3, 3, 3, 2\).*\(5, 5, 3, 2\).*skipped"):
        load_weights(model, path, skip_mismatch=True)
    np.testing.assert_array_equal(model.get_layer("c1").get_weights()[0], c1_before[0])
    assert_loaded(model, {"d": good_dense})


def test_not_hdf5(tmp_path):
    path = tmp_path / "weights.h5"
    path.write_bytes(b"<html>404 Not Found</html>" * 40)
    with pytest.raises(OSError, match=r"weights.h5'.*it is not an HDF5 file; expected a Keras"):
        load_weights(tiny_model(), path)


def test_truncated(tmp_path):
    path = tmp_path / "w.h5"
    write_legacy(path, stored_arrays())
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(OSError, match=r"w.h5'.*it is truncated"):
        load_weights(tiny_model(), path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope.h5' does not exist"):
        load_weights(tiny_model(), tmp_path / "nope.h5")


def test_hdf5_of_another_kind(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("images", data=np.zeros(3))
    with pytest.raises(ValueError, match=r"not a Keras weight file.*found groups \['images'\]"):
        load_weights(tiny_model(), tmp_path / "other.h5")


def test_unbuilt_model_is_refused(tmp_path):
    write_legacy(tmp_path / "w.h5", stored_arrays())
    with pytest.raises(ValueError, match="not built"):
        load_weights(Sequential([Dense(3)]), tmp_path / "w.h5")


# -- saving -------------------------------------------------------------------------------


def test_save_then_load_round_trip(tmp_path):
    source = tiny_model(seed=3)
    path = save_weights(source, tmp_path / "w.h5")
    with h5py.File(path, "r") as f:      # the legacy layout with Keras 2 dataset names
        assert list(f.attrs["layer_names"]) == [b"c1", b"p", b"f", b"d"]
        assert list(f["c1"].attrs["weight_names"]) == [b"c1/kernel:0", b"c1/bias:0"]
        assert f["c1"]["c1"]["kernel:0"].shape == (3, 3, 3, 2)
    target = tiny_model(seed=10)
    load_weights(target, path)
    for a, b in zip(source.get_weights(), target.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_failed_save_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "w.h5"
    write_legacy(path, stored_arrays())
    before = path.read_bytes()
    model = tiny_model()

    def broken():
        raise RuntimeError("disk full")

    monkeypatch.setattr(model.layers[-1], "get_weights", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        save_weights(model, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["w.h5"]     # no temporary file left behind


# -- against Keras itself ----------------------------------------------------------------------


def import_keras():
    """Keras, or a skip (a failure when MINICNN_REQUIRE_KERAS=1, as in CI)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get("MINICNN_REQUIRE_KERAS") == "1":
        import keras
        return keras
    return pytest.importorskip("keras")


def keras_tiny_model(keras):
    return keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Conv2D(2, 3, name="c1"),
                             keras.layers.MaxPooling2D(name="p"), keras.layers.Flatten(name="f"),
                             keras.layers.Dense(3, name="d")])


def batch():
    return np.random.default_rng(0).normal(size=(4, 6, 6, 3)).astype(np.float32)


@pytest.mark.keras
@pytest.mark.parametrize("how", ["save_weights .weights.h5", "model.save .h5"])
def test_files_keras_writes_load_into_minicnn(tmp_path, how):
    keras = import_keras()
    k_model = keras_tiny_model(keras)
    if how.startswith("save_weights"):
        path = tmp_path / "k.weights.h5"
        k_model.save_weights(path)
    else:
        path = tmp_path / "k.h5"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # Keras 3 calls the .h5 format legacy
            k_model.save(path)
    model = load_weights(tiny_model(), path)
    assert_within(model.predict(batch()), k_model.predict(batch(), verbose=0),
                  sequential_bound(model, batch(), TINY_MODEL_TERMS))


@pytest.mark.keras
def test_keras_loads_what_minicnn_saves(tmp_path):
    keras = import_keras()
    model = tiny_model(seed=5)
    save_weights(model, tmp_path / "m.h5")
    k_model = keras_tiny_model(keras)
    k_model.load_weights(tmp_path / "m.h5")
    assert_within(k_model.predict(batch(), verbose=0), model.predict(batch()),
                  sequential_bound(model, batch(), TINY_MODEL_TERMS))
