"""Keras HDF5 weight files in and out: ``load_weights`` and ``save_weights``.

Keras has written layer weights to HDF5 in three layouts over the years, and
``load_weights`` reads all of them:

1. **Legacy** (Keras 1/2, and the VGG16 file Keras distributes). The root has
   an attribute ``layer_names``; each layer is a group whose attribute
   ``weight_names`` lists its datasets, kernel first::

       /                        attrs: layer_names = [input_1, block1_conv1, ...]
       /block1_conv1            attrs: weight_names = [block1_conv1_W_1:0, block1_conv1_b_1:0]
       /block1_conv1/block1_conv1_W_1:0     (3, 3, 3, 64)   kernel
       /block1_conv1/block1_conv1_b_1:0     (64,)           bias

   Keras 2 names the datasets ``block1_conv1/kernel:0``, which HDF5 stores as a
   subgroup ``block1_conv1`` holding ``kernel:0``; reading the names listed in
   ``weight_names`` handles both styles alike.
2. **Legacy inside ``model_weights``**: a whole-model ``.h5`` save (Keras 2, or
   Keras 3's ``model.save("x.h5")``) puts layout 1 under a group ``model_weights``.
3. **Keras 3 ``.weights.h5``**: one group per layer, named after its *class*
   (``conv2d``, ``conv2d_1``, ... in model order), the layer's own name as an
   attribute, the arrays numbered::

       /layers/conv2d_1/vars    attrs: name = "block1_conv2"
       /layers/conv2d_1/vars/0  kernel
       /layers/conv2d_1/vars/1  bias

Layers are matched to the model either by order (``by_name=False``, as Keras
does: the k-th layer with weights in the file goes to the k-th layer with
weights in the model; in layout 3, the k-th ``conv2d`` to the k-th Conv2D) or
by layer name (``by_name=True``). Any mismatch is an error naming the layer,
unless ``skip_mismatch=True`` turns it into a warning and skips that layer.

``save_weights`` writes layout 1 with Keras 2's dataset names, which Keras
itself loads with ``model.load_weights("file.h5")``.
"""
from __future__ import annotations

import os
import sys
import re
import warnings
from dataclasses import dataclass, field

import numpy as np

from .io_utils import atomic_path


@dataclass
class SavedLayer:
    """The weights of one layer as stored in a file.

    ``name`` is the layer's name, ``arrays`` its weights in Keras's order
    (kernel, bias), ``location`` the HDF5 path they came from (for messages),
    and ``key`` the Keras 3 class-based key (``conv2d_1``), else None.
    """

    name: str
    arrays: list = field(default_factory=list)
    location: str = ""
    key: str | None = None



def _package_version():
    """minicnn.__version__, read from the package already imported (an import of the package
    from this module would be a cycle: minicnn imports this module)."""
    return sys.modules[__package__].__version__


# -- reading files -----------------------------------------------------------------


def _decode(values):
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _string_list_attr(group, name):
    """An attribute holding a list of names; Keras splits long ones into name0, name1..."""
    if name in group.attrs:
        return _decode(np.atleast_1d(group.attrs[name]))
    values, chunk = [], 0
    while f"{name}{chunk}" in group.attrs:
        values += _decode(np.atleast_1d(group.attrs[f"{name}{chunk}"]))
        chunk += 1
    return values


def _read_legacy(root, path):
    """Layouts 1 and 2: ``root`` is the file or its ``model_weights`` group."""
    layers = []
    for name in _string_list_attr(root, "layer_names"):
        if name not in root:
            raise ValueError(f"weight file {path!r} lists layer {name!r} in 'layer_names' "
                             f"but has no group {root.name.rstrip('/')}/{name}")
        group = root[name]
        arrays = []
        for weight_name in _string_list_attr(group, "weight_names"):
            if weight_name not in group:
                raise ValueError(f"weight file {path!r}: layer {name!r} lists weight "
                                 f"{weight_name!r} but the dataset {group.name}/{weight_name} "
                                 "is missing")
            arrays.append(group[weight_name][()])
        layers.append(SavedLayer(name, arrays, group.name))
    return layers


def _keras3_sort_key(key):
    """``conv2d`` < ``conv2d_1`` < ``conv2d_2`` < ``conv2d_10`` (HDF5 lists them alphabetically)."""
    match = re.fullmatch(r"(.*?)(?:_(\d+))?", key)
    return match.group(1), int(match.group(2) or 0)


def _read_keras3(group, path, prefix=""):
    """Layout 3: every ``layers/<key>/vars`` group, nested models flattened."""
    layers = []
    for key in sorted(group, key=_keras3_sort_key):
        item = group[key]
        if "vars" in item:
            vars_group = item["vars"]
            arrays = [vars_group[str(i)][()] for i in range(len(vars_group))
                      if str(i) in vars_group]
            if len(arrays) != len(vars_group):
                raise ValueError(f"weight file {path!r}: {vars_group.name} should hold "
                                 f"datasets 0..{len(vars_group) - 1}, found {sorted(vars_group)}")
            name = vars_group.attrs.get("name", key)
            name = name.decode("utf8") if isinstance(name, bytes) else str(name)
            layers.append(SavedLayer(name, arrays, vars_group.name, prefix + key))
        if "layers" in item:    # a model nested in the model
            layers += _read_keras3(item["layers"], path, prefix + key + "/")
    return layers


def read_weight_group(f, path) -> list[SavedLayer]:
    """Every layer stored in the open HDF5 file ``f`` (read from ``path``), as
    :func:`read_weight_file` returns them."""
    import h5py

    if "layer_names" in f.attrs or "layer_names0" in f.attrs:
        return _read_legacy(f, path)
    if "model_weights" in f and ("layer_names" in f["model_weights"].attrs or
                                 "layer_names0" in f["model_weights"].attrs):
        return _read_legacy(f["model_weights"], path)
    if "layers" in f and isinstance(f["layers"], h5py.Group):
        return _read_keras3(f["layers"], path)
    raise ValueError(
        f"{path!r} is an HDF5 file but not a Keras weight file: expected a root "
        "attribute 'layer_names' (legacy .h5), a group 'model_weights' (a whole "
        "Keras model .h5) or a group 'layers' (Keras 3 .weights.h5); found groups "
        f"{sorted(f)} and attributes {sorted(f.attrs)}")


def read_weight_file(path) -> list[SavedLayer]:
    """Every layer stored in a Keras weight file, in order, with its arrays.

    Layers without weights (inputs, pooling, flatten) are included with no arrays.
    Raises OSError when the file is missing, not HDF5 or truncated, and
    ValueError when it is HDF5 but in none of the known layouts.
    """
    import h5py

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"weight file {path!r} does not exist")
    try:
        with h5py.File(path, "r") as f:
            return read_weight_group(f, path)
    except OSError as err:
        text = str(err)
        if "truncated" in text:
            what = "it is truncated (an interrupted download or copy?)"
        elif "signature" in text:
            what = "it is not an HDF5 file"
        else:
            what = "it could not be read as HDF5"
        raise OSError(f"cannot read weight file {path!r}: {what}; expected a Keras HDF5 "
                      f"weight file (.h5 or .weights.h5). h5py said: {text}") from err


# -- matching file layers to model layers -------------------------------------------


def _snake_case(class_name):
    """Keras 3's key for a layer class: Conv2D -> conv2d, MaxPooling2D -> max_pooling2d."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _keras3_keys(layers):
    """The key Keras 3 would give each layer: the k-th Conv2D is conv2d_k (conv2d for k=0)."""
    counts, keys = {}, []
    for layer in layers:
        base = _snake_case(type(layer).__name__)
        count = counts.get(base, -1) + 1
        counts[base] = count
        keys.append(base if count == 0 else f"{base}_{count}")
    return keys


def _pair_layers(model_layers, saved, by_name):
    """Pairs (model layer, saved layer or None) and the saved layers nothing took."""
    if by_name:
        by_saved_name = {s.name: s for s in saved}
        pairs = [(layer, by_saved_name.get(layer.name)) for layer in model_layers]
    elif saved and saved[0].key is not None:      # Keras 3: by class and position
        by_key = {s.key: s for s in saved}
        pairs = [(layer, by_key.get(key))
                 for layer, key in zip(model_layers, _keras3_keys(model_layers))]
    else:                                         # legacy: k-th to k-th
        pairs = [(layer, saved[k] if k < len(saved) else None)
                 for k, layer in enumerate(model_layers)]
    taken = {id(s) for _, s in pairs if s is not None}
    return pairs, [s for s in saved if id(s) not in taken]


def _fail(message, skip_mismatch):
    if not skip_mismatch:
        raise ValueError(message)
    warnings.warn(message + " (skipped: skip_mismatch=True)", stacklevel=3)


def load_weights(model, path, by_name=False, skip_mismatch=False):
    """Copy the weights stored in a Keras HDF5 file at ``path`` into ``model``.

    ``model`` is a built minicnn Sequential. Only layers that have weights take
    part: by order (the k-th such layer in the file goes to the k-th in the
    model) or, with ``by_name=True``, by layer name. A model layer the file
    lacks, a file layer the model lacks, or a shape that differs raises a
    ValueError naming the layer (and both shapes); ``skip_mismatch=True`` warns
    and leaves such layers as they are. Every layer is checked before any weight is
    assigned, so an error leaves the model as it was. Returns the model.
    """
    if not model.built:
        raise ValueError(f"model {model.name!r} is not built: give its first layer an "
                         "input_shape (or call model.build(shape)) before loading weights")
    path = os.fspath(path)
    return assign_saved_weights(model, read_weight_file(path), path, by_name, skip_mismatch)


def assign_saved_weights(model, saved, path, by_name=False, skip_mismatch=False):
    """The work of :func:`load_weights` on layers already read (``read_weight_group``)."""
    saved = [s for s in saved if s.arrays]
    model_layers = [layer for layer in model.layers if layer.params]
    pairs, extra = _pair_layers(model_layers, saved, by_name)
    how = "by name" if by_name else "by order"

    prepared = []    # (layer, arrays): assigned only once every layer has been checked
    for layer, stored in pairs:
        if stored is None:
            _fail(f"layer {layer.name!r} ({type(layer).__name__}, weights "
                  f"{[tuple(p.shape) for p in layer.params.values()]}) has no weights in "
                  f"{path!r} (matching {how}; the file has weights for "
                  f"{[s.name for s in saved]})", skip_mismatch)
            continue
        where = (f"layer {layer.name!r}" if stored.name == layer.name
                 else f"layer {layer.name!r} (stored as {stored.name!r})")
        if len(stored.arrays) != len(layer.params):
            _fail(f"{where}: the model has {len(layer.params)} weights "
                  f"({', '.join(layer.params)}) but {path!r} has {len(stored.arrays)} at "
                  f"{stored.location}", skip_mismatch)
            continue
        mismatched = [(key, tuple(param.shape), tuple(array.shape))
                      for (key, param), array in zip(layer.params.items(), stored.arrays)
                      if tuple(param.shape) != tuple(array.shape)]
        if mismatched:
            key, model_shape, file_shape = mismatched[0]
            _fail(f"{where}: weight {key!r} has shape {model_shape} in the model but "
                  f"{file_shape} in {path!r} ({stored.location})", skip_mismatch)
            continue
        prepared.append((layer, layer.prepare_weights(stored.arrays)))

    for stored in extra:
        if by_name:
            message = (f"{path!r} has weights for layer {stored.name!r} "
                       f"{[a.shape for a in stored.arrays]} but the model has no layer with "
                       "weights of that name")
        else:
            message = (f"{path!r} has weights for layer {stored.name!r} "
                       f"{[a.shape for a in stored.arrays]} beyond the model's "
                       f"{len(model_layers)} layers with weights")
        _fail(message, skip_mismatch)
    for layer, arrays in prepared:
        layer.assign_weights(arrays)
    return model


# -- writing ------------------------------------------------------------------------------


def save_weights(model, path):
    """Write ``model``'s weights to ``path`` in Keras's legacy HDF5 layout.

    Dataset names follow Keras 2 (``block1_conv1/kernel:0``), so Keras loads the
    file with ``model.load_weights(path)`` into a model of the same architecture.
    The file is written to a temporary name and renamed when complete.
    """
    import h5py


    if not model.built:
        raise ValueError(f"model {model.name!r} is not built: nothing to save yet")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["layer_names"] = np.array([l.name.encode("utf8") for l in model.layers])
            f.attrs["minicnn_version"] = _package_version()
            for layer in model.layers:
                group = f.create_group(layer.name)
                names = [f"{layer.name}/{key}:0" for key in layer.params]
                group.attrs["weight_names"] = np.array([n.encode("utf8") for n in names],
                                                       dtype=bytes)
                for name, value in zip(names, layer.get_weights()):
                    group.create_dataset(name, data=value)
    return path


__all__ = ["SavedLayer", "assign_saved_weights", "load_weights", "read_weight_file",
           "read_weight_group", "save_weights"]
