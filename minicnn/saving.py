"""Reading a model file written by ``Sequential.save`` (``models.load_model`` opens it):
every missing or damaged part is named, with the file, in the error."""
from __future__ import annotations

import json

from . import layers as layers_module
from . import optimizers as optimizers_module


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
    if "keras_version" in f.attrs:
        raise ValueError(f"{path!r} is a model file written by Keras, which load_model cannot "
                         "rebuild: build the same architecture in minicnn and read its "
                         "weights with minicnn.weights.load_weights(model, path)")
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
