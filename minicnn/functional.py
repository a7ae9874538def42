"""Keras's functional API for chains of layers, and the model conventions around it.

    inputs = Input((28, 28, 1))
    x = Conv2D(32, 3, activation="relu")(inputs)    # a symbolic tensor, (None, 26, 26, 32)
    x = MaxPooling2D()(x)
    outputs = Dense(10, activation="softmax")(Flatten()(x))
    model = Model(inputs, outputs)                  # a Sequential of those four layers

Calling a layer on a symbolic tensor (``layers.input_layer.KerasTensor``) builds the
layer and records the call; :func:`chain` follows the calls back from ``outputs`` to
``inputs`` and gives the layers in order. Graphs that are not one chain (several
inputs or outputs, a tensor fed to two layers, a layer used twice, merge layers) raise
NotImplementedError saying so: minicnn's models run their layers one after the other.

:class:`ModelConventions` gives models Keras's conventions: ``model.input_shape`` and
``model.output_shape`` carry the batch axis as None (``(None, 4, 4, 512)``), while a
layer's ``input_shape``/``output_shape`` are those of one sample (see ``layers.base``);
``summary``; ``save_weights``/``load_weights``.
"""
from __future__ import annotations

import importlib

from .backend import device
from .layers import InputLayer, KerasTensor


def batch_shape(sample_shape):
    """Keras's form of a model's shape: ``(None, *sample_shape)`` (None if unknown)."""
    return None if sample_shape is None else (None, *sample_shape)


def input_layer_of(entry):
    """The InputLayer behind ``Input(...)`` or an ``InputLayer``; None for other layers."""
    if isinstance(entry, KerasTensor):
        if not isinstance(entry.layer, InputLayer):
            raise TypeError(f"Sequential takes Input(...) as its first entry, not the output "
                            f"of layer {entry.layer.name!r}: use Model(inputs, outputs)")
        return entry.layer
    return entry if isinstance(entry, InputLayer) else None


def _single(tensors, what):
    if isinstance(tensors, dict):
        tensors = list(tensors.values())
    if isinstance(tensors, (list, tuple)):
        if len(tensors) != 1:
            raise NotImplementedError(
                f"Model got {len(tensors)} {what}: minicnn's functional API builds chains of "
                f"layers with one input and one output; several {what} are not supported yet")
        tensors = tensors[0]
    if not isinstance(tensors, KerasTensor):
        raise TypeError(f"Model({what}=...) expects symbolic tensors (Input(...) and layer "
                        f"calls on it), got {type(tensors).__name__}")
    return tensors


def chain(inputs, outputs):
    """``[InputLayer, layer_1, ..., layer_n]``: the chain of layer calls from ``inputs`` to
    ``outputs``, checked to be a chain (see the module's docstring)."""
    if inputs is None or outputs is None:
        raise TypeError("Model needs inputs and outputs: Model(inputs, outputs), e.g. "
                        "inputs = Input((28, 28, 1)); outputs = Dense(10)(Flatten()(inputs)); "
                        "(subclassing Model is not supported: use Sequential)")
    inputs, outputs = _single(inputs, "inputs"), _single(outputs, "outputs")
    tensors = [outputs]
    while tensors[-1] is not inputs and tensors[-1].parent is not None:
        tensors.append(tensors[-1].parent)
    if tensors[-1] is not inputs:
        raise ValueError(f"the outputs {outputs!r} were not computed from the inputs "
                         f"{inputs!r}: pass the Input(...) the layer calls started from")
    if not isinstance(inputs.layer, InputLayer):
        raise NotImplementedError("Model(inputs, ...) needs inputs made by Input(...); "
                                  "models built on another layer's output are not supported yet")
    tensors.reverse()                                        # inputs ... outputs
    layers = [t.layer for t in tensors[1:]]
    for tensor, following in zip(tensors, layers):
        if len(tensor.consumers) > 1:
            names = ", ".join(repr(layer.name) for layer in tensor.consumers)
            raise NotImplementedError(
                f"tensor {tensor.name!r} feeds {len(tensor.consumers)} layers ({names}): "
                "branching graphs are not supported yet by minicnn's Model (chains only)")
    seen = set()
    for layer in layers:
        if id(layer) in seen:
            raise NotImplementedError(f"layer {layer.name!r} is used twice in the chain: shared "
                                      "layers are not supported yet by minicnn's Model")
        seen.add(id(layer))
    if not layers:
        raise ValueError("Model(inputs, outputs): outputs is inputs; call a layer on it first")
    return [inputs.layer, *layers]


class ModelConventions:
    """What ``Sequential`` (and so ``Model``) shows as Keras does: the shapes with the
    batch axis, the summary, the weight files (``self`` is the model)."""

    @property
    def input_shape(self):
        """Keras's form, with the batch axis: (None, 150, 150, 3)."""
        first = self.layers[0] if self.layers else self._input
        return batch_shape(first.input_shape if first is not None else None)

    @property
    def output_shape(self):
        """Keras's form, with the batch axis: (None, 4, 4, 512)."""
        return batch_shape(self._output_sample)

    @property
    def _output_sample(self):
        """The output shape of one sample (4, 4, 512), as the layers have theirs."""
        return self.layers[-1].output_shape if self.built else None

    def summary(self, print_fn=print):
        """A Keras-like table: each layer, its output shape and parameter count."""
        if not self.built:
            raise ValueError("summary needs a built model: give the first layer an "
                             "input_shape or call the model on data first")
        rows = [(f"{layer.name} ({type(layer).__name__})",
                 str(batch_shape(layer.output_shape)), f"{layer.count_params():,}")
                for layer in self.layers]
        widths = [max(len(h), *(len(r[i]) for r in rows))
                  for i, h in enumerate(("Layer (type)", "Output Shape", "Param #"))]
        line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
        total = self.count_params()
        trainable = sum(layer.count_trainable_params() for layer in self.layers)
        rule = "=" * len(line(("", "", "")))
        text = [f'Model: "{self.name}"', rule, line(("Layer (type)", "Output Shape", "Param #")),
                rule, *(line(r) for r in rows), rule,
                f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                f"Non-trainable params: {total - trainable:,}", f"Device: {device()}"]
        print_fn("\n".join(text))

    # minicnn.weights is loaded by name when first used: it reads minicnn.__version__
    # (``from . import __version__``), and minicnn imports this module through models, so
    # a plain import would be a cycle. (Both are lazy, so none at run time; once weights
    # takes its version elsewhere, these can become ``from .weights import ...``.)
    def save_weights(self, path):
        """The weights alone, in Keras's HDF5 layout (``minicnn.weights.save_weights``)."""
        importlib.import_module("minicnn.weights").save_weights(self, path)

    def load_weights(self, path, by_name=False, skip_mismatch=False):
        """Weights from a Keras or minicnn HDF5 file (``minicnn.weights.load_weights``)."""
        importlib.import_module("minicnn.weights").load_weights(
            self, path, by_name=by_name, skip_mismatch=skip_mismatch)


__all__ = ["ModelConventions", "batch_shape", "chain", "input_layer_of"]
