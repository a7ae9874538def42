"""``Sequential``: a stack of layers, and the training loop around it.

One training step, the heart of the library (``Sequential.train_on_batch``):

    y_pred = forward through every layer          (layers/, run by engine/)
    loss   = loss(y_true, y_pred)                 (losses.py)
    dout   = loss.gradient(y_true, y_pred)
    for layer in reversed(layers):                (each layer's backward)
        dout = layer.backward(dout)               (stores layer.grads)
    optimizer.apply(layers)                       (optimizers/)

``fit`` repeats it over batches and epochs and calls the callbacks.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from . import engine, functional
from . import layers as layers_module
from . import losses as losses_module
from . import optimizers as optimizers_module
from .backend import get_array_module, prefetch_to_device, to_device, to_numpy
from .callbacks import Callback, History, ProgressBar, TerminateOnNaN
from .keras2 import Keras2Methods
from .random import new_generator
from .saving import load_model_file, write_model


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite; ``.history`` holds the epochs before it."""

    def __init__(self, message, history=None):
        super().__init__(message)
        self.history = history


def _batch_size(batch_size, who):
    """``batch_size`` checked: a positive integer (None: Keras's default, 32)."""
    if batch_size is None:
        return 32
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"{who}: batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def _has_epochs(x):
    """Whether ``x`` can give exactly one epoch of batches (a BatchIterator's ``epoch()``)."""
    return callable(getattr(x, "epoch", None))


class Sequential(functional.ModelConventions, Keras2Methods):
    """Layers applied one after the other.

    >>> model = Sequential([Conv2D(8, 3, activation="relu", input_shape=(28, 28, 1)),
    ...                     MaxPooling2D(), Flatten(), Dense(10, activation="softmax")])
    >>> model.compile(SGD(0.01, momentum=0.9), "categorical_crossentropy", ["accuracy"])
    >>> history = model.fit(x, y, batch_size=32, epochs=5, validation_data=(xv, yv))
    """

    def __init__(self, layers=None, name="sequential"):
        self.name = name
        self.layers: list = []
        self.optimizer = None
        self.loss = None
        self.metrics: list[str] = []
        self.stop_training = False
        self.history = History()
        self._shuffle_rng = None
        self._steps: list = []   # how the last forward pass ran the layers (see forward)
        self._input = None       # the InputLayer of an Input(...) first entry, if any
        for layer in layers or []:
            self.add(layer)

    # -- building -----------------------------------------------------------
    def add(self, layer):
        """Append ``layer``; ``Input(shape=...)`` or ``InputLayer`` may come first (Keras 3),
        giving the input shape (it is not one of ``model.layers``, as in Keras)."""
        if (input_layer := functional.input_layer_of(layer)) is not None:
            if self.layers or self._input is not None:
                raise ValueError("Input(...) / InputLayer must be the first entry of a model")
            self._input = input_layer
            return
        if not isinstance(layer, layers_module.Layer):
            raise TypeError(f"Sequential.add expects a Layer, got {layer!r}")
        if any(existing.name == layer.name for existing in self.layers):
            raise ValueError(f"a layer named {layer.name!r} is already in the model; "
                             "layer names must be unique")
        previous = self.layers[-1] if self.layers else self._input
        if layer.built and previous is not None and previous.built and \
                tuple(layer.input_shape) != tuple(previous.output_shape):
            raise ValueError(f"layer {layer.name!r} was built for inputs {layer.input_shape} "
                             f"but follows {previous.name!r}, whose output is "
                             f"{previous.output_shape}")
        self.layers.append(layer)
        # Build what is not built yet; a layer that already has weights (taken from
        # another model, e.g. VGG16's blocks) keeps them.
        if previous is None and layer.input_shape is not None:
            self.build(layer.input_shape)
        elif previous is not None and previous.built and not layer.built:
            layer.build(previous.output_shape)

    @property
    def built(self) -> bool:
        return bool(self.layers) and all(layer.built for layer in self.layers)

    def build(self, input_shape):
        """Build every layer for samples of shape ``input_shape`` (no batch axis)."""
        shape = tuple(input_shape)
        for layer in self.layers:
            if not layer.built:
                layer.build(shape)
            shape = layer.output_shape

    def _ensure_built(self, x):
        if not self.built:
            self.build(x.shape[1:] if self.layers[0].input_shape is None
                       else self.layers[0].input_shape)

    # -- forward and backward ---------------------------------------------------
    # True: the engine may run a Conv2D + ReLU and the MaxPooling2D after it as one pass
    # (``engine.fusion``), so that the conv's activation, its largest array, is never
    # written out. False: each layer on its own, as the textbook has it.
    fuse_conv_pool = True

    def forward(self, x, training=False):
        """Output of the whole stack for a batch already on the device."""
        self._ensure_built(x)
        for layer in self.layers:   # last pass's arrays, free to be reused by this one
            layer.forget_forward_state()
        # The steps of this pass, for the backward pass: (i,) for layer i alone, (i, i + 1)
        # for a pair the engine ran as one pass.
        x, self._steps = engine.forward(self.layers, x, training, fuse=self.fuse_conv_pool)
        return x

    def backward(self, dout, need_input_grad=True):
        """Backpropagate dout = dLoss/d(output) through every layer; returns dLoss/d(input).

        Training passes ``need_input_grad=False``: nothing uses the gradient with
        respect to the images, and a first Conv2D then skips computing it (its
        col2im is a good part of the step); None is returned in that case.
        """
        steps = self._steps or [(i,) for i in range(len(self.layers))]
        return engine.backward(self.layers, steps, dout, need_input_grad)

    __call__ = forward

    # -- training -------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='binary_crossentropy'; "
                             f"expected one of {sorted(losses_module.LOSSES)}")
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = losses_module.get(loss)
        metrics = list(metrics or [])
        for metric in metrics:
            if metric not in ("accuracy", "acc"):
                raise ValueError(f"unknown metric {metric!r}: expected 'accuracy'")
        self.metrics = ["accuracy" for _ in metrics[:1]]

    def _require_layers(self, what):
        if not self.layers:
            raise RuntimeError(f"{what} called on an empty model: add layers first, e.g. "
                               "Sequential([Dense(10, input_shape=(4,))]) or model.add(...)")

    def _require_compiled(self, what):
        self._require_layers(what)
        if self.loss is None or self.optimizer is None:
            raise RuntimeError(f"{what} called before compile: call "
                               "model.compile(optimizer, loss, metrics=['accuracy']) first")

    def _check_labels(self, y_shape, n_inputs):
        """Labels must be (N, *output_shape); (N,) is accepted for a 1-unit output."""
        y_shape = tuple(y_shape)
        if len(y_shape) == 1 and self._output_sample == (1,):
            y_shape = (*y_shape, 1)
        if y_shape[1:] != tuple(self._output_sample) or y_shape[0] != n_inputs:
            one_hot_hint = (" (one-hot encode class indices, e.g. with minicnn.to_categorical)"
                            if len(y_shape) == 1 and self._output_sample[-1] > 1 else "")
            raise ValueError(
                f"labels of shape {tuple(y_shape)} do not match the model's output "
                f"(batch, {', '.join(map(str, self._output_sample))}) for {n_inputs} "
                f"inputs{one_hot_hint}")

    def _to_batch(self, x, y=None):
        x = to_device(x, dtype=np.float32)
        self._ensure_built(x)
        if y is not None:
            self._check_labels(y.shape, x.shape[0])
            y = to_device(y, dtype=np.float32).reshape(x.shape[0], *self._output_sample)
        return x, y

    def _batch_values(self, y, y_pred):
        """Loss (and accuracy) of a batch, still on the device: one array of 1 or 2 values."""
        xp = get_array_module(y_pred)
        penalty = sum(regularizer(l.params[k]) for l, k, regularizer in self._penalised())
        values = [self.loss(y, y_pred) + penalty]
        if self.metrics:
            values.append(self.loss.accuracy(y, y_pred))
        return xp.stack([xp.asarray(v, dtype=np.float64) for v in values])

    def _penalised(self):
        """(layer, key, regularizer) for each weight with a ``<key>_regularizer`` in a
        trainable layer: Keras adds their penalties to the loss (fit's and evaluate's)."""
        return [(l, k, r) for l in self.layers if l.trainable for k in l.params
                if (r := getattr(l, f"{k}_regularizer", None)) is not None]

    @staticmethod
    def _logs(values):
        """The batch's values as Python floats, in ONE device-to-host copy: on the GPU
        each copy waits for all the work queued so far, so a step makes exactly one."""
        return dict(zip(("loss", "accuracy"), (float(v) for v in to_numpy(values))))

    def _batch_logs(self, y, y_pred):
        return self._logs(self._batch_values(y, y_pred))

    def train_on_batch(self, x, y):
        """One step of gradient descent; returns ``{"loss": ..., "accuracy": ...}``."""
        self._require_compiled("train_on_batch")
        x, y = self._to_batch(x, y)
        y_pred = self.forward(x, training=True)
        values = self._batch_values(y, y_pred)
        self.backward(self.loss.gradient(y, y_pred), need_input_grad=False)
        for layer, key, regularizer in self._penalised():   # the penalties' gradients
            layer.grads[key] = layer.grads[key] + regularizer.gradient(layer.params[key])
        # Read the loss only now: on the GPU the backward pass has been queued while the
        # forward pass ran, and the copy waits for both; then the weights are updated.
        logs = self._logs(values)
        if not math.isfinite(logs["loss"]):
            return logs   # fit reports it; a non-finite loss never reaches the weights
        self.optimizer.apply(self.layers)
        return logs

    def test_on_batch(self, x, y):
        self._require_compiled("test_on_batch")
        x, y = self._to_batch(x, y)
        return self._batch_logs(y, self.forward(x, training=False))

    def fit(self, x, y=None, batch_size=32, epochs=1, validation_data=None, shuffle=True,
            callbacks=None, verbose=1, steps_per_epoch=None, validation_steps=None,
            initial_epoch=0):
        """Train for ``epochs`` epochs. Returns the :class:`History`.

        ``x`` is either an array of inputs with labels ``y``, or an iterable of
        ``(x_batch, y_batch)`` pairs (a generator, a DirectoryIterator...), of
        which ``steps_per_epoch`` batches make an epoch (default: ``len(x)``).
        ``validation_data`` is ``(x_val, y_val)`` or such an iterable. An iterator
        with an ``epoch()`` method (``flow_from_directory``...) gives exactly one pass
        over its files per epoch when ``steps_per_epoch`` is None, even if it skips
        unreadable ones. ``batch_size`` (a positive integer) applies to arrays.
        """
        self._require_compiled("fit")
        batch_size = _batch_size(batch_size, "fit")
        batches, steps = self._batch_source(x, y, batch_size, shuffle, steps_per_epoch, "fit")
        history = self.history
        progress = ProgressBar(steps, epochs, verbose)
        # Keras's order: the caller's callbacks, then History and the progress bar, which
        # so see what the others add to the logs (ReduceLROnPlateau's learning_rate).
        all_callbacks = [*(callbacks or []), history, progress]
        for callback in all_callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f"callbacks must be Callback objects, got {callback!r}")
            callback.set_model(self)
        self.stop_training = False
        for callback in all_callbacks:
            callback.on_train_begin()
        try:
            for epoch in range(initial_epoch, epochs):
                for callback in all_callbacks:
                    callback.on_epoch_begin(epoch)
                logs = self._train_epoch(batches, steps, epoch, all_callbacks)
                if validation_data is not None:
                    val = self.evaluate_logs(validation_data, batch_size, validation_steps)
                    logs.update({f"val_{k}": v for k, v in val.items()})
                for callback in all_callbacks:
                    callback.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
        finally:
            for callback in all_callbacks:
                callback.on_train_end()
        return history

    def _train_epoch(self, batches, steps, epoch, callbacks):
        totals, seen = {}, 0
        # With TerminateOnNaN, a non-finite loss goes to the callbacks (its update is not
        # applied) and training stops cleanly, as in Keras; without it, fit raises.
        stops_on_nan = any(isinstance(callback, TerminateOnNaN) for callback in callbacks)
        for step, (xb, yb) in enumerate(prefetch_to_device(batches(steps))):
            logs = self.train_on_batch(xb, yb)
            finite = math.isfinite(logs["loss"])
            if not finite and not stops_on_nan:
                raise TrainingDivergedError(self._divergence_message(logs["loss"], epoch, step),
                                            self.history)
            size = len(xb)
            seen += size
            for key, value in logs.items():
                totals[key] = totals.get(key, 0.0) + value * size
            for callback in callbacks:
                callback.on_batch_end(step, {**logs, "size": size})
            if not finite and not self.stop_training:   # TerminateOnNaN did not stop it
                raise TrainingDivergedError(self._divergence_message(logs["loss"], epoch, step),
                                            self.history)
            if self.stop_training:      # a callback stopped training: end the epoch here
                break
        if seen == 0:
            raise ValueError("fit: the training data produced no batches")
        # Like Keras, the epoch's loss is the mean over its batches as they trained.
        return {key: total / seen for key, total in totals.items()}

    def _divergence_message(self, loss, epoch, step):
        """What the model holds once a batch's loss is not finite. That batch's update was
        not applied, but the update before it may be what broke the weights (a learning
        rate too large): they are checked now, once, rather than after every step."""
        where = f"the loss became {loss} at epoch {epoch + 1}, batch {step + 1}"
        broken = [f"{layer.name}/{key}" for layer in self.layers
                  for key, param in layer.params.items()
                  if not bool(get_array_module(param).isfinite(param).all())]
        if broken:
            return (f"{where}: training stopped. The weights are not finite ({', '.join(broken)}"
                    " hold NaN or inf): the previous batch's update made them so. Try a "
                    "smaller learning rate")
        return (f"{where}: training stopped, this batch's update was not applied and the "
                "weights are finite (those the previous update left). Check the inputs and "
                "labels for NaN/inf values, or try a smaller learning rate")

    def _batch_source(self, x, y, batch_size, shuffle, steps, who):
        """A function ``batches(steps)`` yielding (x, y) pairs, and the steps per epoch."""
        if isinstance(x, (np.ndarray, list)) or hasattr(x, "__array_interface__") or \
                hasattr(x, "__cuda_array_interface__"):
            if y is None:
                raise ValueError(f"{who}: labels y are required when x is an array")
            if len(x) != len(y):
                raise ValueError(f"{who}: x has {len(x)} samples but y has {len(y)}")
            n = len(x)
            x_host, y_host = to_numpy(x), to_numpy(y)
            self._ensure_built(x_host[:1])
            self._check_labels(y_host.shape, n)     # fail before the first epoch, not in it
            if self._shuffle_rng is None:
                self._shuffle_rng = new_generator()

            def batches(_steps):
                order = self._shuffle_rng.permutation(n) if shuffle else np.arange(n)
                for start in range(0, n, batch_size):
                    index = order[start:start + batch_size]
                    # Gather on the host; train_on_batch copies the batch to the device once.
                    yield x_host[index], y_host[index]

            return batches, math.ceil(n / batch_size)
        if y is not None:
            raise ValueError(f"{who}: y must be None when x yields (x, y) batches")

        def labelled(batch):
            if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
                raise ValueError(f"{who} needs (x, y) batches, got a {type(batch).__name__}; "
                                 "an iterator made with class_mode=None gives no labels")
            return batch[0], batch[1]

        if steps is None and _has_epochs(x):
            # One pass over the files, however many it skips: len(x) batches would run
            # into the next epoch and count its first images twice.
            return (lambda _steps: (labelled(batch) for batch in x.epoch())), len(x)
        if steps is None:
            if not hasattr(x, "__len__"):
                raise ValueError(f"{who}: steps_per_epoch is required for a generator "
                                 "without len()")
            steps = len(x)
        iterator = iter(x)

        def batches(epoch_steps):
            nonlocal iterator
            for _ in range(epoch_steps):
                try:
                    batch = next(iterator)
                except StopIteration:
                    if iter(x) is x:        # a one-shot generator is exhausted
                        return
                    iterator = iter(x)      # a re-iterable: start a new pass
                    batch = next(iterator, None)
                    if batch is None:
                        return
                yield labelled(batch)

        return batches, steps

    # -- evaluation and prediction ----------------------------------------------
    def evaluate_logs(self, x, batch_size=32, steps=None, y=None):
        """{"loss": ..., "accuracy": ...} averaged over all samples of ``x``."""
        self._require_compiled("evaluate")
        batch_size = _batch_size(batch_size, "evaluate")
        if isinstance(x, tuple) and len(x) == 2 and y is None:
            x, y = x
        batches, steps = self._batch_source(x, y, batch_size, False, steps, "evaluate")
        totals, seen = {}, 0
        for xb, yb in prefetch_to_device(batches(steps)):
            logs = self.test_on_batch(xb, yb)
            for key, value in logs.items():
                totals[key] = totals.get(key, 0.0) + value * len(xb)
            seen += len(xb)
        if seen == 0:
            raise ValueError("evaluate: the data produced no batches")
        return {key: total / seen for key, total in totals.items()}

    def evaluate(self, x, y=None, batch_size=32, steps=None, verbose=0):
        """``[loss, accuracy]`` (or the loss alone without metrics), as Keras returns.

        Means over all samples: of arrays ``x, y``, of ``steps`` batches of an iterable,
        or of exactly one epoch of an iterator with ``epoch()`` (``flow_from_directory``)
        when ``steps`` is None, leaving out files it could not read.
        """
        logs = self.evaluate_logs(x, batch_size, steps, y=y)
        return [logs["loss"], logs["accuracy"]] if self.metrics else logs["loss"]

    def predict(self, x, batch_size=32, steps=None, verbose=0):
        """Outputs for an array (in batches of ``batch_size``) or an iterable of batches,
        as NumPy.

        An iterable runs for ``steps`` batches; without ``steps``, an iterator with
        ``epoch()`` (``flow_from_directory``...) runs for exactly one epoch and any other
        for ``len(x)`` batches. Such an iterator made with ``shuffle=False`` gives one row
        per file, in ``x.filenames`` order, even when it skips unreadable files: their
        rows are NaN, and a warning names them. (Shuffled, the rows are those of the
        images read, in the order read.)
        """
        self._require_layers("predict")
        batch_size = _batch_size(batch_size, "predict")
        if hasattr(x, "shape") and hasattr(x, "dtype"):
            if len(x) == 0:
                self._check_empty_inputs(x, "predict")
            chunks = (x[i:i + batch_size] for i in range(0, len(x), batch_size))
        elif steps is None and _has_epochs(x):
            return self._predict_epoch(x)
        else:
            if steps is None and not hasattr(x, "__len__"):
                raise ValueError("predict: steps is required for a generator without len()")
            count = steps if steps is not None else len(x)
            chunks = (b[0] if isinstance(b, tuple) else b for b, _ in zip(x, range(count)))
        return self._predict_chunks(chunks)

    def _check_empty_inputs(self, x, who):
        """No layer sees an empty array (its first layer checks the others' shape)."""
        self._ensure_built(x)
        sample = tuple(self.layers[0].input_shape)
        if tuple(x.shape[1:]) != sample:
            raise ValueError(f"{who}: inputs of shape {tuple(x.shape)} do not match the "
                             f"model's input (batch, {', '.join(map(str, sample))})")

    def _predict_chunks(self, chunks):
        outputs = [to_numpy(self.forward(to_device(chunk, dtype=np.float32)))
                   for chunk in chunks]
        if not outputs:
            return np.zeros((0, *(self._output_sample or ())), dtype=np.float32)
        return np.concatenate(outputs)

    def _predict_epoch(self, iterator):
        """One epoch of ``iterator``; rows of skipped files put back as NaN (see predict)."""
        rows = self._predict_chunks(b[0] if isinstance(b, tuple) else b
                                    for b in iterator.epoch())
        skipped = sorted(getattr(iterator, "skipped_files", ()))
        samples = getattr(iterator, "n", None)
        if not skipped or samples is None or getattr(iterator, "shuffle", True):
            return rows
        if len(rows) + len(skipped) != samples:
            raise RuntimeError(f"predict: the iterator gave {len(rows)} images for {samples} "
                               f"files with {len(skipped)} skipped; the rows cannot be "
                               "matched to its files")
        full = np.full((samples, *rows.shape[1:]), np.nan, dtype=rows.dtype)
        full[np.setdiff1d(np.arange(samples), skipped)] = rows
        names = getattr(iterator, "filenames", None)
        named = [names[i] if names is not None else f"sample {i}" for i in skipped]
        warnings.warn(f"predict: {len(skipped)} unreadable file(s) skipped, their rows are "
                      f"NaN: {', '.join(named)}", RuntimeWarning, stacklevel=3)
        return full

    # -- weights --------------------------------------------------------------
    def get_weights(self):
        """All weights as NumPy arrays, layer by layer, kernel before bias (Keras's order)."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        """Copies of ``weights`` (``get_weights``'s order) become the model's weights.
        All are checked before any is assigned: on an error the model is unchanged."""
        weights = list(weights)
        expected = sum(len(layer.params) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"model {self.name!r} has {expected} weight arrays, got "
                             f"{len(weights)}")
        prepared = []
        for layer in self.layers:
            count = len(layer.params)
            prepared.append(layer.prepare_weights(weights[:count]))
            weights = weights[count:]
        for layer, arrays in zip(self.layers, prepared):
            layer.assign_weights(arrays)

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    def get_layer(self, name):
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r}; layers: {[l.name for l in self.layers]}")

    # -- saving -----------------------------------------------------------------
    def get_config(self):
        return {"name": self.name,
                "layers": [{"class_name": type(l).__name__, "config": l.get_config()}
                           for l in self.layers]}

    def save(self, path):
        """Architecture, weights and optimizer state in one HDF5 file, written atomically,
        that Keras 3 also opens (``keras.models.load_model``); see ``minicnn.saving``."""
        write_model(self, path)


class Model(Sequential):
    """Keras's functional model for a chain of layers: ``inputs = Input((28, 28, 1))``,
    ``x = Conv2D(32, 3)(inputs)``, ..., ``Model(inputs, x)`` (see ``minicnn.functional``)."""

    def __init__(self, inputs=None, outputs=None, name="model"):
        super().__init__(functional.chain(inputs, outputs), name=name)


Input = layers_module.Input


def load_model(path) -> Sequential:
    """Rebuild a model saved by :meth:`Sequential.save`, with its optimizer state, or one
    Keras saved (``.h5`` or ``.keras``, a Sequential of the layers minicnn has), compiled
    when minicnn has its loss, metrics and optimizer (else a warning says why not).

    A file that is missing or not HDF5 raises OSError; an HDF5 file that is not a
    complete minicnn model (a damaged or edited one), or a Keras model with a layer or
    setting minicnn lacks, raises ValueError naming the file and what is wrong in it.
    """
    return load_model_file(path, Sequential)


__all__ = ["Input", "Model", "Sequential", "TrainingDivergedError", "load_model"]
