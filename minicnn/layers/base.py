"""The layer contract: what every layer has and does.

* ``forward(x, training=False) -> y``: computes the output and keeps what the
  backward pass will need (``keep``: named attributes on the layer);
* ``backward(dout) -> dx``: given dout = dLoss/dy, stores dLoss/dparam in
  ``self.grads`` (same keys as ``self.params``) and returns dx = dLoss/dx; it never
  changes the weights (the optimizer does, after);
* ``params`` / ``grads``: ordered dicts of arrays, in Keras's weight order
  (kernel, then bias), so that ``get_weights`` lines up with Keras one-to-one.

Shapes are channels-last as in Keras: images (N, H, W, C), conv kernels
(KH, KW, C_in, C_out), dense kernels (in, out). A layer's ``input_shape`` and
``output_shape`` are those of ONE sample, without the batch axis ((26, 26, 32)): the
engine sizes its arrays from them. A model's ``input_shape`` / ``output_shape`` follow
Keras and carry the batch axis as None ((None, 26, 26, 32)), as do the symbolic tensors
of the functional API (``layer(Input(...)).shape``). (Keras 3 layers have no
``output_shape``; Keras 2's reported the batch axis too.)
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..backend import get_array_module, to_device, to_numpy
from ..backend import xp as device_array_module

_name_counts: dict[str, int] = defaultdict(int)


def unique_name(prefix: str) -> str:
    """Keras-style default names: conv2d, conv2d_1, conv2d_2, ..."""
    count = _name_counts[prefix]
    _name_counts[prefix] += 1
    return prefix if count == 0 else f"{prefix}_{count}"


def clear_session() -> None:
    """Restart default layer names from ``conv2d``, ``dense``... (as Keras's does)."""
    _name_counts.clear()


def is_positive_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def positive_int(value, what):
    """``value`` as an int, which must be >= 1 (Keras's wording for the error)."""
    if not is_positive_int(value):
        raise ValueError(f"{what} must be a positive integer. Received: {what}={value!r}")
    return int(value)


def pair(value, what):
    pair = (value, value) if is_positive_int(value) else value
    try:
        pair = tuple(pair)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(is_positive_int(v) for v in pair):
        raise ValueError(f"{what} must be a positive integer or a pair of them. "
                         f"Received: {what}={value!r}")
    return tuple(int(v) for v in pair)


def check_layer_name(name):
    """Layer names key groups in HDF5 files (weights, optimizer slots), so, as Keras 3
    does, a name must be a non-empty string without "/" (and not "." or "..")."""
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise ValueError("Argument `name` must be a non-empty string, not '.' or '..', and "
                         f"cannot contain character `/`. Received: name={name!r}")
    return name


class Layer:
    """Base class: naming, building on the first input, shape checks, weights."""

    default_name = "layer"
    kind = "layer"       # what the layer computes, for the engine's plans ("conv2d"...)
    expected_rank: int | None = None   # rank of one sample, e.g. 3 for (H, W, C)
    skips_input_grad = False   # True: backward(dout, need_input_grad=False) can skip dx
    # Weights the optimizer never updates, which get no gradient (BatchNormalization's
    # moving statistics): Keras's non-trainable weights, saved and loaded like the others.
    non_trainable_keys: tuple = ()

    def __init__(self, name=None, input_shape=None, trainable=True):
        self.name = check_layer_name(unique_name(self.default_name) if name is None else name)
        self.trainable = trainable
        self.params: dict = {}
        self.grads: dict = {}
        self.input_shape = self._sample_shape(input_shape) if input_shape is not None else None
        self.output_shape = None
        self.built = False

    # -- building ---------------------------------------------------------
    def _sample_shape(self, shape):
        """``shape`` (one sample, no batch axis) as a tuple of positive ints."""
        try:
            dims = tuple(shape)
        except TypeError:
            dims = None
        if not dims or not all(is_positive_int(d) for d in dims):
            raise ValueError(f"layer {self.name!r} ({type(self).__name__}): the input shape of "
                             "one sample (no batch axis) must be a tuple of positive "
                             f"integers, e.g. (28, 28, 1). Received: input_shape={shape!r}")
        return tuple(int(d) for d in dims)

    def build(self, input_shape):
        """Create parameters for one sample of shape ``input_shape`` (no batch axis)."""
        input_shape = self._sample_shape(input_shape)
        if self.expected_rank is not None and len(input_shape) != self.expected_rank:
            raise ValueError(
                f"layer {self.name!r} ({type(self).__name__}) expects inputs of rank "
                f"{self.expected_rank + 1} (batch, {self._shape_words()}), got a sample "
                f"shape {input_shape} (rank {len(input_shape) + 1} with the batch)")
        self.input_shape = input_shape
        self.output_shape = self.compute_output_shape(input_shape)
        self._create_params(input_shape)
        self.built = True

    def _shape_words(self):
        return {3: "height, width, channels", 1: "features"}.get(self.expected_rank, "...")

    def _create_params(self, input_shape):
        pass

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def accept(self, x):
        """Build on first use, check that ``x`` has the shape this layer was built for, and
        bring ``x`` to the device of the layer's weights (a NumPy batch into a GPU layer)."""
        if not self.built:
            self.build(x.shape[1:] if self.input_shape is None else self.input_shape)
        if self.params:
            weights_xp = get_array_module(next(iter(self.params.values())))
            if get_array_module(x) is not weights_xp:
                x = to_numpy(x) if weights_xp is np else weights_xp.asarray(x)
        if x.ndim != len(self.input_shape) + 1 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"layer {self.name!r} ({type(self).__name__}) expects input shape "
                f"(batch, {', '.join(map(str, self.input_shape))}), got {tuple(x.shape)}")
        if x.shape[0] == 0:
            raise ValueError(f"layer {self.name!r} ({type(self).__name__}) got an empty batch "
                             f"{tuple(x.shape)}: expected at least one sample")
        return x

    # What a forward pass keeps for the backward pass (see keep).
    _forward_state = ("x", "y", "cols", "mask", "argmax", "pooled")

    def keep(self, **state):
        """Remember what the backward pass needs, as attributes ``_name`` (``keep(x=x)``
        sets ``self._x``). The engine's fused passes call it too."""
        for name, value in state.items():
            setattr(self, "_" + name, value)

    def kept(self, name):
        """What the last forward pass kept under ``name`` (None if nothing)."""
        return getattr(self, "_" + name, None)

    def forget_forward_state(self):
        """Drop what the last forward pass kept for the backward pass (input, output...).

        ``Sequential.forward`` calls this on every layer before a new pass. Otherwise a
        layer would still hold its last input, the previous layer's last output, just when
        the engine wants to reuse that array (``engine.scratch``), and every output of a
        chain of convolutions would be a new array, page faults and all.
        """
        self.keep(**dict.fromkeys(self._forward_state))

    def store_grads(self, grads):
        """Take ``grads`` (``{"kernel": ..., "bias": ...}``) as this step's gradients, if
        the layer is trainable (a frozen layer keeps none: the optimizer skips it)."""
        if self.trainable:
            self.grads.update(grads)

    def _add_param(self, key, value):
        self.params[key] = to_device(value, dtype=np.float32)

    # -- weights ----------------------------------------------------------
    def count_params(self) -> int:
        return sum(int(np.prod(p.shape)) for p in self.params.values())

    def count_trainable_params(self) -> int:
        """The parameters the optimizer updates (none in a frozen layer), as Keras's
        summary counts "Trainable params"; the rest are non-trainable."""
        if not self.trainable:
            return 0
        return sum(int(np.prod(p.shape)) for key, p in self.params.items()
                   if key not in self.non_trainable_keys)

    def get_weights(self):
        return [to_numpy(p).copy() for p in self.params.values()]

    def set_weights(self, weights):
        """Copy ``weights`` (Keras's order) into the layer; on an error nothing changes."""
        self.assign_weights(self.prepare_weights(weights))

    def prepare_weights(self, weights):
        """Checked float32 copies of ``weights`` on the device, for ``assign_weights``.

        Copies, as Keras makes: training updates the parameters in place, and must not
        change the caller's arrays nor a parameter of another model given the same ones.
        All are checked and copied before any is assigned, so that a failure leaves the
        layer (and a model doing the same for all its layers first) as it was.
        """
        weights = list(weights)
        if len(weights) != len(self.params):
            raise ValueError(f"layer {self.name!r} has {len(self.params)} weights "
                             f"({', '.join(self.params)}), got {len(weights)}")
        for (key, current), new in zip(self.params.items(), weights):
            if tuple(np.shape(new)) != tuple(current.shape):
                raise ValueError(f"layer {self.name!r}: weight {key!r} has shape "
                                 f"{tuple(current.shape)}, got {tuple(np.shape(new))}")
        module = device_array_module()
        return [module.array(to_numpy(new) if module is np else new, dtype=np.float32)
                for new in weights]

    def assign_weights(self, arrays):
        """Take the arrays ``prepare_weights`` returned as the parameters."""
        for key, array in zip(list(self.params), arrays):
            self.params[key] = array

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable,
                "input_shape": list(self.input_shape) if self.input_shape else None}

    def __call__(self, x, training=False):
        """``forward`` on an array; on a symbolic tensor (``Input(...)`` or a layer's output
        from one), Keras's functional API: the layer is built for the tensor's shape and
        the symbolic output is returned (see ``minicnn.functional``)."""
        if getattr(x, "is_keras_tensor", False) or (
                isinstance(x, (list, tuple)) and any(getattr(t, "is_keras_tensor", False)
                                                     for t in x)):
            return self._call_symbolic(x)
        return self.forward(x, training=training)

    def _call_symbolic(self, x):
        if isinstance(x, (list, tuple)):
            raise NotImplementedError(
                f"layer {self.name!r} ({type(self).__name__}) called on {len(x)} tensors: "
                "minicnn's functional API builds chains of layers, one input each; merge "
                "layers and several inputs are not supported yet")
        shape = tuple(x.shape[1:])
        if not self.built:
            self.build(shape)
        elif shape != tuple(self.input_shape):
            raise ValueError(f"layer {self.name!r} ({type(self).__name__}) was built for "
                             f"inputs (None, {', '.join(map(str, self.input_shape))}), "
                             f"called on a tensor of shape {x.shape}")
        return x.followed_by(self)

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"




LAYERS: dict = {}   # class name -> class, for from_config (load_model)


def register(cls):
    """Class decorator: ``from_config`` (and so ``load_model``) can rebuild ``cls``."""
    LAYERS[cls.__name__] = cls
    return cls


def from_config(class_name: str, config: dict) -> Layer:
    """Rebuild a layer from ``get_config()`` (used by ``load_model``)."""
    if class_name not in LAYERS:
        raise ValueError(f"unknown layer class {class_name!r}: expected one of {sorted(LAYERS)}")
    return LAYERS[class_name](**config)
