"""Model files: ``Sequential.save`` writes them, ``models.load_model`` reads them.

One file that both minicnn and Keras 3 open (``keras.models.load_model("x.h5")``): Keras's
legacy HDF5 layout, with minicnn's own parts beside Keras's where Keras does not look::

    /  attrs  keras_version, backend            (Keras's; backend "minicnn")
              minicnn_format_version, minicnn_version
              model_config     JSON: Keras's {"class_name": "Sequential", "config": ...}
                               and minicnn's own {"name", "layers"} in the same object
              training_config  JSON: Keras's loss, metrics, optimizer_config and
                               minicnn's "optimizer" {"name", "config"}   (when compiled)
    /model_weights             attrs layer_names (as Keras writes them)
    /model_weights/<layer>     attrs weight_names = ["kernel", "bias"]; datasets of those
                               names (Keras reads the names listed, in order)
    /optimizer_state           minicnn's optimizer: attrs iterations and scalars,
                               datasets <layer>/<parameter>/<slot>  (when compiled)
    /optimizer_weights         Keras's: the step count and learning rate, all Keras 3
                               restores from a legacy file  (when compiled)

minicnn rebuilds its own files from its own parts (exactly, files of format 1, from
before the Keras parts, included). A file Keras wrote (``.h5``, or a ``.keras`` zip) is
rebuilt from Keras's parts (``keras_format``), or refused with an error naming the layer
or setting minicnn lacks. Every missing or damaged part is named, with the file, in the
error.
"""
from __future__ import annotations

import io
import json
import os
import sys
import warnings
import zipfile

import numpy as np

from . import keras_format
from . import layers as layers_module
from . import optimizers as optimizers_module
from . import weights as weights_module
from .io_utils import atomic_path

FORMAT_VERSION = 2   # 1: minicnn's parts only; 2: with Keras's parts beside them


def _damaged(path, what):
    return ValueError(f"model file {path!r} is not a complete minicnn model: {what}")


def _member(group, name, path, what):
    """``group[name]``, or an error naming the file and what was expected there."""
    if name not in group:
        raise _damaged(path, f"{what} {group.name.rstrip('/')}/{name} is missing")
    return group[name]


def _json_attribute(f, name, path, keys):
    """The JSON object in attribute ``name``, which must have ``keys``."""
    try:
        value = json.loads(f.attrs[name])
    except (TypeError, ValueError) as err:
        raise _damaged(path, f"attribute {name!r} is not valid JSON ({err})") from None
    missing = [key for key in keys if not isinstance(value, dict) or key not in value]
    if missing:
        raise _damaged(path, f"attribute {name!r} lacks {', '.join(map(repr, missing))}")
    return value


def read_model(f, path, model_class):
    """The model in the open HDF5 file ``f`` (written by ``Sequential.save``), built as a
    ``model_class`` (``Sequential``), with its weights and optimizer state."""
    import h5py

    if "model_config" not in f.attrs:
        raise ValueError(f"{path!r} is an HDF5 file but not a minicnn model "
                         "(no 'model_config' attribute); for Keras weight files use "
                         "minicnn.weights.load_weights")
    if "keras_version" in f.attrs and "minicnn_format_version" not in f.attrs:
        return _read_keras_h5(f, path, model_class)
    config = _json_attribute(f, "model_config", path, ("name", "layers"))
    if not isinstance(config["layers"], list):
        raise _damaged(path, "'layers' of attribute 'model_config' is not a list")
    layers = []
    for i, spec in enumerate(config["layers"]):
        try:
            layers.append(layers_module.from_config(spec["class_name"], spec["config"]))
        except (KeyError, TypeError, ValueError) as err:
            raise _damaged(path, f"layer {i} of 'model_config' cannot be rebuilt "
                                 f"({type(err).__name__}: {err})") from None
    try:
        model = model_class(layers, name=config["name"])
    except ValueError as err:
        raise _damaged(path, str(err)) from None

    weights = _member(f, "model_weights", path, "group")
    for layer in model.layers:
        if not layer.params:
            continue
        group = _member(weights, layer.name, path, "group")
        arrays = [_member(group, key, path, "dataset")[()] for key in layer.params]
        try:
            layer.set_weights(arrays)
        except ValueError as err:
            raise _damaged(path, str(err)) from None

    if "training_config" in f.attrs:
        training = _json_attribute(f, "training_config", path, ("optimizer", "loss", "metrics"))
        try:
            optimizer = optimizers_module.from_config(training["optimizer"]["name"],
                                                      training["optimizer"]["config"])
            model.compile(optimizer, training["loss"], training["metrics"])
        except (KeyError, TypeError, ValueError) as err:
            raise _damaged(path, f"its 'training_config' cannot be used "
                                 f"({type(err).__name__}: {err})") from None
        state = _member(f, "optimizer_state", path, "group")
        if "iterations" not in state.attrs:
            raise _damaged(path, "group /optimizer_state lacks the attribute 'iterations'")
        slots = {}
        state.visititems(lambda name, obj: slots.__setitem__(name, obj[()])
                         if isinstance(obj, h5py.Dataset) else None)
        try:
            scalars = {k: v for k, v in state.attrs.items() if k != "iterations"}
            optimizer.set_state({"iterations": state.attrs["iterations"], "slots": slots,
                                 "scalars": scalars}, layers=model.layers)
        except (TypeError, ValueError) as err:
            raise _damaged(path, f"/optimizer_state: {err}") from None
    return model



def _package_version():
    """minicnn.__version__, read from the package already imported (an import of the package
    from this module would be a cycle: minicnn imports this module)."""
    return sys.modules[__package__].__version__


# -- writing ----------------------------------------------------------------------------


def _names(values):
    return np.array([v.encode("utf8") for v in values], dtype=bytes)


def write_model(model, path):
    """``model``'s architecture, weights and optimizer state in one HDF5 file that minicnn
    and Keras both read (the layout in this module's docstring), written atomically."""
    import h5py


    keras_config, why_not = keras_format.keras_model_config(model)
    if keras_config is None:
        warnings.warn(f"{os.fspath(path)!r} is saved for minicnn only, Keras will not open "
                      f"it: {why_not}", stacklevel=3)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["minicnn_format_version"] = FORMAT_VERSION
            f.attrs["minicnn_version"] = _package_version()
            f.attrs["keras_version"] = keras_format.KERAS_FORMAT_VERSION
            f.attrs["backend"] = "minicnn"
            f.attrs["model_config"] = json.dumps({**(keras_config or {}),
                                                  **model.get_config()})
            if model.loss is not None:
                f.attrs["training_config"] = json.dumps({
                    **keras_format.keras_training_config(model),
                    "loss": model.loss.name, "metrics": model.metrics,
                    "optimizer": {"name": model.optimizer.name,
                                  "config": model.optimizer.get_config()}})
                state = model.optimizer.get_state()
                group = f.create_group("optimizer_state")
                group.attrs.update({"iterations": state["iterations"], **state["scalars"]})
                for key, value in state["slots"].items():
                    group.create_dataset(key, data=value)
                keras_state = keras_format.keras_optimizer_weights(model.optimizer)
                group = f.create_group("optimizer_weights")
                group.attrs["weight_names"] = _names(keras_state)
                for key, value in keras_state.items():
                    group.create_dataset(key, data=value)
            weights = f.create_group("model_weights")
            weights.attrs["layer_names"] = _names(layer.name for layer in model.layers)
            weights.attrs["backend"] = "minicnn"
            weights.attrs["keras_version"] = keras_format.KERAS_FORMAT_VERSION
            for layer in model.layers:
                layer_group = weights.create_group(layer.name)
                layer_group.attrs["weight_names"] = _names(layer.params)
                for key, value in zip(layer.params, layer.get_weights()):
                    layer_group.create_dataset(key, data=value)


# -- files Keras wrote ----------------------------------------------------------------------


def _text(value):
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _cannot_rebuild(path, version, err):
    return ValueError(f"{path!r} is a model file written by Keras {version}, which minicnn "
                      f"cannot rebuild: {err}. Build the same architecture in minicnn and read "
                      "its weights with minicnn.weights.load_weights(model, path)")


def _keras_model(path, version, model_config, saved, training_config, model_class,
                 stacklevel):
    """The model a Keras file describes, with its weights, compiled when minicnn can."""
    try:
        name, layers = keras_format.layers_from_keras(model_config)
        model = model_class(layers, name=name)
    except ValueError as err:
        raise _cannot_rebuild(path, version, err) from None
    try:
        weights_module.assign_saved_weights(model, saved, path)
    except ValueError as err:
        raise _damaged(path, str(err)) from None
    if training_config is None:
        warnings.warn(f"{path!r} has no training configuration, so the model is not "
                      "compiled: compile it before training", stacklevel=stacklevel)
        return model
    try:
        model.compile(*keras_format.compile_arguments(training_config))
    except ValueError as err:
        warnings.warn(f"{path!r}: the model is loaded but not compiled, because {err}; "
                      "compile it before training", stacklevel=stacklevel)
    return model


def _read_keras_h5(f, path, model_class):
    """A whole-model ``.h5`` Keras wrote (``model.save("x.h5")``)."""
    version = _text(f.attrs["keras_version"])
    try:
        model_config = json.loads(_text(f.attrs["model_config"]))
        training = (json.loads(_text(f.attrs["training_config"]))
                    if "training_config" in f.attrs else None)
    except ValueError as err:
        raise _damaged(path, f"its model or training config is not valid JSON ({err})") \
            from None
    try:
        saved = weights_module.read_weight_group(f, path)
    except ValueError as err:
        raise _cannot_rebuild(path, version, err) from None
    # warnings point at the caller of models.load_model: 6 frames up from _keras_model
    return _keras_model(path, version, model_config, saved, training, model_class, 6)


def _read_keras_zip(path, model_class):
    """A ``.keras`` file: a zip of config.json, metadata.json and model.weights.h5."""
    import h5py

    with zipfile.ZipFile(path) as archive:
        members = set(archive.namelist())
        missing = [n for n in ("config.json", "model.weights.h5") if n not in members]
        if missing:
            raise ValueError(f"{path!r} is a zip file but not a Keras model (.keras): it "
                             f"lacks {', '.join(missing)}")
        try:
            config = json.loads(archive.read("config.json"))
            metadata = (json.loads(archive.read("metadata.json"))
                        if "metadata.json" in members else {})
        except ValueError as err:
            raise _damaged(path, f"config.json or metadata.json is not valid JSON ({err})") \
                from None
        weights = archive.read("model.weights.h5")
    version = metadata.get("keras_version", "3") if isinstance(metadata, dict) else "3"
    with h5py.File(io.BytesIO(weights), "r") as f:
        try:
            saved = weights_module.read_weight_group(f, path)
        except ValueError as err:
            raise _damaged(path, f"model.weights.h5: {err}") from None
    training = config.get("compile_config") if isinstance(config, dict) else None
    return _keras_model(path, version, config, saved, training or None, model_class, 5)


def load_model_file(path, model_class):
    """What ``models.load_model`` returns for ``path`` (see there)."""
    import h5py

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file {path!r} does not exist")
    if zipfile.is_zipfile(path):
        return _read_keras_zip(path, model_class)
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise OSError(f"cannot read model file {path!r}: not an HDF5 file written by "
                      f"Sequential.save (nor a Keras .h5 or .keras file), or it is truncated "
                      f"({err})") from err
    with f:
        try:
            return read_model(f, path, model_class)
        except OSError as err:   # a dataset HDF5 cannot read back (damaged in the file)
            raise OSError(f"cannot read model file {path!r}: {err}") from err
