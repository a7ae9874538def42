"""minicnn models in Keras's words: the configs of Keras's model files, both ways.

``Sequential.save`` writes Keras's legacy ``.h5`` layout (``saving.write_model``) and
this module supplies its Keras parts: ``model_config`` as a Keras ``Sequential`` config
(an ``InputLayer`` first, every layer with Keras's class name, its settings and the
Keras-only settings at the values minicnn computes with) and the ``training_config``
Keras compiles from. Reading a file Keras wrote (``.h5`` or ``.keras``) goes the other
way: each Keras layer config becomes a minicnn layer, and a Keras setting minicnn does
not compute (``dilation_rate=2``, ``data_format="channels_first"``, a constraint...) is a
ValueError naming the layer and the setting, never silently dropped.
"""
from __future__ import annotations

import inspect

import numpy as np

from . import layers as layers_module
from . import optimizers as optimizers_module
from .optimizers import schedules as schedules_module

KERAS_FORMAT_VERSION = "3.0.0"   # the Keras release whose legacy .h5 layout minicnn writes

_FLOAT32 = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
            "registered_name": None}
_ANY = object()   # a Keras setting any value of which reads the same (initializers: the
                  # file's weights replace what they would draw)


def _initializer(class_name, config=None):
    return {"module": "keras.initializers", "class_name": class_name, "config": config or {},
            "registered_name": None}


_DENSE_EXTRAS = {"kernel_initializer": _initializer("GlorotUniform", {"seed": None}),
                 "bias_initializer": _initializer("Zeros"), "activity_regularizer": None,
                 "kernel_constraint": None, "bias_constraint": None}
_CHANNELS_LAST = {"data_format": "channels_last"}
# Keras settings minicnn has no argument for: written with these values (the ones minicnn
# computes with); on reading, a file must have them (or leave them out).
WRITTEN = {
    "Conv2D": {**_CHANNELS_LAST, "dilation_rate": [1, 1], "groups": 1, **_DENSE_EXTRAS},
    "Dense": _DENSE_EXTRAS,
    "MaxPooling2D": _CHANNELS_LAST, "AveragePooling2D": _CHANNELS_LAST,
    "GlobalAveragePooling2D": _CHANNELS_LAST, "GlobalMaxPooling2D": _CHANNELS_LAST,
    "Flatten": _CHANNELS_LAST, "ZeroPadding2D": _CHANNELS_LAST,
    "Dropout": {"noise_shape": None},
    "Activation": {}, "LeakyReLU": {}, "ReLU": {},
    "BatchNormalization": {"beta_initializer": _initializer("Zeros"),
                           "gamma_initializer": _initializer("Ones"),
                           "moving_mean_initializer": _initializer("Zeros"),
                           "moving_variance_initializer": _initializer("Ones"),
                           "beta_regularizer": None, "gamma_regularizer": None,
                           "beta_constraint": None, "gamma_constraint": None},
}
# ...and those only some Keras versions write: accepted at these values, never written.
ACCEPTED = {"quantization_config": None, "lora_rank": None, "lora_alpha": _ANY,
            "synchronized": False, "renorm": False, "renorm_clipping": None,
            "renorm_momentum": _ANY}
for _extras in WRITTEN.values():
    for _key in _extras:
        if _key.endswith("_initializer"):
            ACCEPTED[_key] = _ANY


def keras_model_config(model):
    """``{"class_name": "Sequential", "config": ...}`` as Keras 3 writes it, or None (with
    the reason) when a layer has no Keras counterpart."""
    layers = []
    if model.built and model.layers:
        shape = [None, *model.layers[0].input_shape]
        names = {layer.name for layer in model.layers}
        input_name = next(n for n in ("input_layer", *(f"input_layer_{i}" for i in range(1, 99)))
                          if n not in names)
        layers.append({"module": "keras.layers", "class_name": "InputLayer",
                       "config": {"batch_shape": shape, "dtype": "float32", "sparse": False,
                                  "name": input_name}, "registered_name": None})
    for layer in model.layers:
        class_name = type(layer).__name__
        if class_name not in WRITTEN:
            return None, (f"layer {layer.name!r} is a {class_name}, which Keras does not have "
                          f"(it has {sorted(WRITTEN)})")
        config = {"name": layer.name, "trainable": layer.trainable, "dtype": _FLOAT32}
        for key, value in layer.get_config().items():
            if key in ("name", "trainable", "input_shape"):
                continue
            if key.endswith("_regularizer") and value is not None:
                value = {"module": "keras.regularizers", **value, "registered_name": None}
            config[key] = value
        config.update(WRITTEN[class_name])
        layers.append({"module": "keras.layers", "class_name": class_name, "config": config,
                       "registered_name": None})
    config = {"name": model.name, "trainable": True, "dtype": _FLOAT32, "layers": layers}
    if model.built and model.layers:
        config["build_input_shape"] = [None, *model.layers[0].input_shape]
    return {"class_name": "Sequential", "config": config}, None


def _keras_learning_rate(optimizer_config):
    """Keras 3 has no ``decay``: Keras 2's rule is its InverseTimeDecay(lr, 1, decay)."""
    config = dict(optimizer_config)
    decay = config.pop("decay", 0.0) or 0.0
    rate = config["learning_rate"]
    if isinstance(rate, dict):
        rate = {"module": "keras.optimizers.schedules", **rate, "registered_name": None}
    elif decay:
        rate = {"module": "keras.optimizers.schedules", "class_name": "InverseTimeDecay",
                "config": {"initial_learning_rate": float(rate), "decay_steps": 1,
                           "decay_rate": float(decay), "staircase": False},
                "registered_name": None}
    config["learning_rate"] = rate
    return config


def keras_training_config(model):
    """The keys Keras's legacy loader compiles from (``optimizer_config``, ``loss``...)."""
    optimizer = model.optimizer
    return {"loss": model.loss.name, "metrics": list(model.metrics), "loss_weights": None,
            "weighted_metrics": None,
            "optimizer_config": {"class_name": type(optimizer).__name__,
                                 "config": _keras_learning_rate(optimizer.get_config())}}


def keras_optimizer_weights(optimizer):
    """``{name: array}`` for Keras's ``optimizer_weights`` group. Keras 3 restores from it
    its first variables only, the step count and (when it is a number) the learning rate,
    and starts its slots afresh, as it does for its own .h5 files; minicnn's slots stay
    in ``optimizer_state``. The step count keeps a decaying rate where minicnn left it."""
    weights = {f"{optimizer.name}/iteration": np.array(optimizer.iterations, np.int64)}
    rate = _keras_learning_rate(optimizer.get_config())["learning_rate"]
    if not isinstance(rate, dict):
        weights[f"{optimizer.name}/learning_rate"] = np.array(rate, np.float32)
    return weights


# -- reading what Keras wrote ------------------------------------------------------------


class Unsupported(ValueError):
    """A Keras model file uses something minicnn does not have."""


def _same(a, b):
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        keys = (set(a) | set(b)) - {"registered_name", "module", "shared_object_id"}
        return all(_same(a.get(k), b.get(k)) for k in keys)
    return a == b


def _pairs_equal(value, default):
    """``dilation_rate=1`` and ``[1, 1]`` are the same setting."""
    if isinstance(default, list) and not isinstance(value, (list, tuple)):
        value = [value] * len(default)
    return _same(value, default)


def _is_float32(dtype):
    if dtype is None or dtype == "float32":
        return True
    return isinstance(dtype, dict) and (dtype.get("config") or {}).get("name") == "float32"


def _arguments(cls):
    """The keyword arguments a minicnn layer class takes, its base's included."""
    names = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names |= {p.name for p in inspect.signature(klass.__init__).parameters.values()
                      if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names - {"self"}


def layer_from_keras(spec, input_shape=None):
    """The minicnn layer for one Keras layer config (``{"class_name", "config"}``)."""
    class_name, config = spec.get("class_name"), dict(spec.get("config") or {})
    name = config.get("name", "?")
    if class_name not in WRITTEN:
        raise Unsupported(f"layer {name!r} is a Keras {class_name}, which minicnn does not "
                          f"have (it reads {sorted(WRITTEN)})")
    cls = layers_module.LAYERS[class_name]
    allowed = _arguments(cls) - {"input_shape"}
    extras = WRITTEN[class_name]
    if class_name == "LeakyReLU" and "alpha" in config:       # Keras 2's name
        config["negative_slope"] = config.pop("alpha")
    if class_name == "BatchNormalization" and isinstance(config.get("axis"), list) \
            and len(config["axis"]) == 1:                       # Keras 2 wrote [3]
        config["axis"] = config["axis"][0]
    kwargs = {"input_shape": input_shape} if input_shape is not None else {}
    for key, value in config.items():
        if key in ("batch_input_shape", "batch_size", "input_shape"):
            continue
        if key == "dtype":
            if not _is_float32(value):
                raise Unsupported(f"layer {name!r} ({class_name}) computes in {value!r}; "
                                  "minicnn computes in float32 only")
            continue
        if key in allowed and key not in extras:
            kwargs[key] = value
        elif key in extras or key in ACCEPTED:
            expected = ACCEPTED.get(key, extras.get(key))   # initializers: any
            if expected is not _ANY and not _pairs_equal(value, expected):
                raise Unsupported(f"layer {name!r} ({class_name}) has {key}={value!r}; "
                                  f"minicnn supports only {key}={expected!r}")
        else:
            raise Unsupported(f"layer {name!r} ({class_name}) has the Keras setting "
                              f"{key}={value!r}, which minicnn does not have")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise Unsupported(f"layer {name!r} ({class_name}) cannot be built in minicnn: "
                          f"{err}") from None


def _input_shape(spec, config):
    """The sample shape of a Keras Sequential config: its InputLayer's, its first layer's
    batch_input_shape (Keras 2) or its build_input_shape."""
    layer_config = spec.get("config") or {}
    for key in ("batch_shape", "batch_input_shape"):
        if layer_config.get(key):
            return tuple(layer_config[key][1:])
    if config.get("build_input_shape"):
        return tuple(config["build_input_shape"][1:])
    return None


def layers_from_keras(model_config):
    """``(name, [minicnn layers])`` for a Keras ``Sequential`` config (the object with
    ``class_name`` and ``config``)."""
    if not isinstance(model_config, dict) or model_config.get("class_name") != "Sequential":
        what = model_config.get("class_name") if isinstance(model_config, dict) else None
        raise Unsupported(f"the model is a Keras {what}; minicnn reads Sequential models "
                          "(rebuild a functional model as a Sequential one)")
    config = model_config.get("config")
    if isinstance(config, list):          # Keras 2.0-2.2: the layer list itself
        config = {"layers": config}
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise Unsupported("its Sequential config has no list of layers")
    specs = list(config["layers"])
    if not specs:
        raise Unsupported("its Sequential has no layers")
    shape = _input_shape(specs[0], config)
    if specs[0].get("class_name") == "InputLayer":
        specs = specs[1:]
    if any(spec.get("class_name") == "InputLayer" for spec in specs):
        raise Unsupported("it has an InputLayer after the first layer")
    if not specs:
        raise Unsupported("its Sequential has only an InputLayer")
    layers = [layer_from_keras(spec, shape if i == 0 else None)
              for i, spec in enumerate(specs)]
    return config.get("name", "sequential"), layers


# -- a Keras training config as minicnn's compile arguments -------------------------------

_LOSSES = {"CategoricalCrossentropy": "categorical_crossentropy",
           "BinaryCrossentropy": "binary_crossentropy", "MeanSquaredError": "mean_squared_error",
           "categorical_crossentropy": "categorical_crossentropy",
           "binary_crossentropy": "binary_crossentropy",
           "mean_squared_error": "mean_squared_error", "mse": "mean_squared_error"}
_LOSS_DEFAULTS = {"from_logits": False, "label_smoothing": 0.0, "axis": -1,
                  "reduction": ("auto", "sum_over_batch_size"), "name": _ANY, "dtype": _ANY,
                  "fn": _ANY}
_ACCURACIES = {"accuracy", "acc", "Accuracy", "CategoricalAccuracy", "BinaryAccuracy",
               "categorical_accuracy", "binary_accuracy"}
# Keras optimizer settings minicnn's optimizers do not take, at values that change nothing
_OPTIMIZER_DEFAULTS = {"name": _ANY, "use_ema": False, "ema_momentum": _ANY,
                       "ema_overwrite_frequency": None, "loss_scale_factor": None,
                       "gradient_accumulation_steps": None, "jit_compile": _ANY,
                       "is_legacy_optimizer": False, "centered": False}


def _loss(config):
    if isinstance(config, str):
        if config in _LOSSES:
            return _LOSSES[config]
        raise Unsupported(f"minicnn has no loss {config!r} (it has "
                          f"{sorted(set(_LOSSES.values()))})")
    if isinstance(config, dict) and config.get("class_name") in _LOSSES:
        for key, value in (config.get("config") or {}).items():
            default = _LOSS_DEFAULTS.get(key)
            if default is _ANY or (isinstance(default, tuple) and value in default) \
                    or value == default:
                continue
            raise Unsupported(f"minicnn's {config['class_name']} has no {key}={value!r}")
        return _LOSSES[config["class_name"]]
    raise Unsupported(f"minicnn has no loss {config!r}")


def _metrics(config):
    metrics = []
    for metric in config or []:
        name = metric.get("class_name") if isinstance(metric, dict) else metric
        if name not in _ACCURACIES:
            raise Unsupported(f"minicnn has no metric {name!r} (it has 'accuracy')")
        metrics.append("accuracy")
    return metrics


def _optimizer(spec):
    if isinstance(spec, str):
        spec = {"class_name": spec, "config": {}}
    if not isinstance(spec, dict):
        raise Unsupported(f"minicnn has no optimizer {spec!r}")
    by_class = {cls.__name__.lower(): cls for cls in optimizers_module.OPTIMIZERS.values()}
    cls = by_class.get(str(spec.get("class_name")).lower())
    if cls is None:
        raise Unsupported(f"minicnn has no optimizer {spec.get('class_name')!r} (it has "
                          f"{sorted(c.__name__ for c in by_class.values())})")
    config, arguments = {}, _arguments(cls) - {"name", "lr"}
    for key, value in (spec.get("config") or {}).items():
        default = _OPTIMIZER_DEFAULTS.get(key)
        if key in arguments:
            config[key] = value
        elif key in _OPTIMIZER_DEFAULTS and (default is _ANY or value == default):
            continue
        elif key == "momentum" and not value:      # RMSprop's, off
            continue
        else:
            raise Unsupported(f"minicnn's {cls.__name__} has no setting {key}={value!r}")
    rate = config.get("learning_rate")
    if isinstance(rate, dict):
        rate = {"class_name": rate.get("class_name"),
                "config": {k: v for k, v in (rate.get("config") or {}).items() if k != "name"}}
        if rate["class_name"] == "InverseTimeDecay" and cls.__name__ == "SGD" \
                and rate["config"].get("decay_steps") == 1 \
                and not rate["config"].get("staircase") and not config.get("decay"):
            config["decay"] = rate["config"]["decay_rate"]       # Keras 2's decay, back
            rate = rate["config"]["initial_learning_rate"]
        else:
            try:
                rate = schedules_module.deserialize(rate)
            except ValueError as err:
                raise Unsupported(str(err)) from None
        config["learning_rate"] = rate
    try:
        return cls(**config)
    except (TypeError, ValueError) as err:
        raise Unsupported(f"minicnn's {cls.__name__} cannot be made from {config!r}: {err}") \
            from None


def compile_arguments(training_config):
    """``(optimizer, loss, metrics)`` for a Keras training config; Unsupported says what
    minicnn lacks."""
    if not isinstance(training_config, dict):
        raise Unsupported("the training config is not a JSON object")
    weights = training_config.get("loss_weights")
    if weights not in (None, [1], [1.0], 1, 1.0):
        raise Unsupported(f"minicnn has no loss_weights (the file has {weights!r})")
    if training_config.get("weighted_metrics"):
        raise Unsupported("minicnn has no weighted_metrics (the file has "
                          f"{training_config['weighted_metrics']!r})")
    if "optimizer_config" in training_config:            # legacy .h5
        spec = training_config["optimizer_config"]
    else:                                                # .keras: compile_config
        spec = training_config.get("optimizer")
    if spec is None:
        raise Unsupported("the training config names no optimizer")
    optimizer = _optimizer(spec)
    loss = _loss(training_config.get("loss"))
    metrics = _metrics(training_config.get("metrics"))
    return optimizer, loss, metrics
