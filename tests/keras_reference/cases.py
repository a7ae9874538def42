"""The same computation in minicnn and in Keras 3, side by side: the case catalogue.

Each case builds a layer, a loss, an optimizer or a whole model in both frameworks,
gives Keras minicnn's initial weights (same layouts, channels-last:
``keras_layer.set_weights(minicnn_layer.get_weights())``), feeds both the same float32
inputs and compares what comes out (see ``harness.py`` for how differences are measured
and the tolerances). The tests (``test_*.py`` here) assert on the results;
``python -m benchmarks.keras_parity`` prints them as a table. Both take the cases from
this one file.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

import minicnn
from minicnn import losses as minicnn_losses
from minicnn.backend import to_device, to_numpy

from .harness import (TOLERANCES, Case, Comparison, Stopwatch,  # noqa: F401  (re-exported)
                      assert_agrees, keras_modules)

BATCH = 3          # samples per batch in the single-layer cases


def _rng(name):
    """A generator seeded from the case name: every case draws its own fixed numbers."""
    return np.random.default_rng(sum(map(ord, name)) * 7919)


# ---------------------------------------------------------------------------------------
# Every layer alone
# ---------------------------------------------------------------------------------------
def _layer_case(name, make_minicnn, make_keras, sample_shape, ties=False):
    """Forward, and the gradients of L = sum(y * R) for a fixed random R, in both.

    minicnn: ``y = layer.forward(x, training=True)``, ``dx = layer.backward(R)``,
    ``layer.grads[...]``. Keras: the same under ``tf.GradientTape``. Weights (biases
    included) are random, not their zero initial values, so the bias path is exercised.
    ``ties=True`` rounds the inputs to multiples of 0.5: many equal values in a pooling
    window (which one gets the gradient?) and exact zeros (ReLU's gradient at 0).
    """
    def compute():
        tf, keras = keras_modules()
        rng = _rng(name)
        x = rng.standard_normal((BATCH, *sample_shape)).astype(np.float32)
        if ties:
            x = np.round(x * 2) / 2
        layer = make_minicnn()
        layer.build(sample_shape)
        layer.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5
                           for w in layer.get_weights()])
        y_shape = (BATCH, *layer.output_shape)
        upstream = rng.standard_normal(y_shape).astype(np.float32)      # R

        mini_watch, keras_watch = Stopwatch(), Stopwatch()
        with mini_watch:
            y = to_numpy(layer.forward(to_device(x), training=True))
            dx = to_numpy(layer.backward(to_device(upstream)))
            grads = {key: to_numpy(layer.grads[key]) for key in layer.params}

        keras_layer = make_keras(keras)
        keras_layer.build((None, *sample_shape))
        keras_layer.set_weights(layer.get_weights())
        with keras_watch:
            x_tensor = tf.constant(x)
            with tf.GradientTape() as tape:
                tape.watch(x_tensor)
                y_keras = keras_layer(x_tensor, training=True)
                loss = tf.reduce_sum(y_keras * upstream)
            keras_grads = tape.gradient(loss, [x_tensor, *keras_layer.trainable_weights])

        comparisons = [Comparison("output", "output", y, y_keras.numpy()),
                       Comparison("grad input", "gradient", dx, keras_grads[0].numpy())]
        for key, keras_grad in zip(layer.params, keras_grads[1:]):
            comparisons.append(Comparison(f"grad {key}", "gradient", grads[key],
                                          keras_grad.numpy()))
        return comparisons, mini_watch.seconds, keras_watch.seconds
    return Case(name, compute)


def conv2d_case(kernel, strides, padding, use_bias=True, sample_shape=(7, 9, 3), filters=4,
                activation=None):
    name = (f"Conv2D k{kernel} s{strides} {padding}{'' if use_bias else ' no-bias'}"
            f"{' ' + activation if activation else ''} in {'x'.join(map(str, sample_shape))}")
    return _layer_case(
        name,
        lambda: minicnn.Conv2D(filters, kernel, strides=strides, padding=padding,
                               use_bias=use_bias, activation=activation, seed=1),
        lambda keras: keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding,
                                          use_bias=use_bias, activation=activation),
        sample_shape)


def maxpool_case(pool, strides, padding, sample_shape=(7, 9, 2), ties=False):
    name = (f"MaxPooling2D p{pool} s{strides} {padding}{' ties' if ties else ''} in "
            f"{'x'.join(map(str, sample_shape))}")
    return _layer_case(
        name,
        lambda: minicnn.MaxPooling2D(pool, strides=strides, padding=padding),
        lambda keras: keras.layers.MaxPooling2D(pool, strides=strides, padding=padding),
        sample_shape, ties)


def dense_case(units, use_bias=True, activation=None, features=10):
    name = (f"Dense {features}->{units}{'' if use_bias else ' no-bias'}"
            f"{' ' + activation if activation else ''}")
    return _layer_case(
        name,
        lambda: minicnn.Dense(units, use_bias=use_bias, activation=activation, seed=1),
        lambda keras: keras.layers.Dense(units, use_bias=use_bias, activation=activation),
        (features,))


def flatten_case(sample_shape=(3, 4, 5)):
    return _layer_case(f"Flatten {'x'.join(map(str, sample_shape))}",
                       minicnn.Flatten, lambda keras: keras.layers.Flatten(), sample_shape)


def activation_case(activation, sample_shape, ties=False):
    return _layer_case(
        f"Activation {activation}{' zeros' if ties else ''} {'x'.join(map(str, sample_shape))}",
        lambda: minicnn.Activation(activation),
        lambda keras: keras.layers.Activation(activation), sample_shape, ties)


def keras_layer_case(label, sample_shape, make_minicnn, make_keras, ties=False):
    """A layer without weights, or with Keras's, built the same way in both (issue 16)."""
    return _layer_case(f"{label}{' ties' if ties else ''} in {'x'.join(map(str, sample_shape))}",
                       make_minicnn, make_keras, sample_shape, ties)


def issue16_layer_cases():
    """LeakyReLU, ReLU, average and global pooling, ZeroPadding2D: each alone. ``ties``
    rounds inputs to multiples of 0.5, so that values sit exactly on ReLU's kinks (0, the
    threshold 0.5, max_value 1.5) and tie in the global maximum."""
    cases = []
    for label, kwargs, ties in [("LeakyReLU 0.1", {"negative_slope": 0.1}, True),
                                ("LeakyReLU default", {}, False)]:
        cases.append(keras_layer_case(label, (4, 5, 3), lambda kw=kwargs: minicnn.LeakyReLU(**kw),
                                      lambda keras, kw=kwargs: keras.layers.LeakyReLU(**kw), ties))
    for kwargs in [{}, {"max_value": 1.5, "negative_slope": 0.1, "threshold": 0.5},
                   {"max_value": 1.0}]:
        label = "ReLU " + " ".join(f"{k} {v}" for k, v in kwargs.items())
        cases.append(keras_layer_case(label.strip(), (4, 5, 3),
                                      lambda kw=kwargs: minicnn.ReLU(**kw),
                                      lambda keras, kw=kwargs: keras.layers.ReLU(**kw), True))
    for pool, strides, padding, shape in [(2, None, "valid", (7, 9, 2)), (2, None, "same", (7, 9, 2)),
                                          (3, 2, "same", (7, 9, 2)), (3, 1, "same", (5, 6, 2)),
                                          ((2, 3), (1, 2), "valid", (6, 7, 2))]:
        label = f"AveragePooling2D p{pool} s{strides} {padding}"
        cases.append(keras_layer_case(
            label, shape,
            lambda a=(pool, strides, padding): minicnn.AveragePooling2D(*a),
            lambda keras, a=(pool, strides, padding): keras.layers.AveragePooling2D(*a)))
    for name in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        for keepdims, ties in [(False, False), (True, True)]:
            cases.append(keras_layer_case(
                f"{name}{' keepdims' if keepdims else ''}", (4, 3, 5),
                lambda n=name, k=keepdims: getattr(minicnn, n)(keepdims=k),
                lambda keras, n=name, k=keepdims: getattr(keras.layers, n)(keepdims=k), ties))
    for padding in (1, (2, 1), ((0, 2), (3, 1))):
        cases.append(keras_layer_case(
            f"ZeroPadding2D {padding}", (4, 3, 2),
            lambda p=padding: minicnn.ZeroPadding2D(p),
            lambda keras, p=padding: keras.layers.ZeroPadding2D(p)))
    return cases


def batchnorm_case(training, sample_shape=(5, 4, 6), batch=4, **kwargs):
    """BatchNormalization alone, in training (batch statistics) or inference (moving ones):
    output, the gradients of sum(y * R) with respect to x, gamma and beta, and the moving
    statistics after the pass (moved by the batch's in training, unchanged in inference).
    gamma, beta and the moving statistics start away from their initial values, and the
    input's mean and spread away from 0 and 1."""
    settings = " ".join(f"{k} {v}" for k, v in kwargs.items())
    name = (f"BatchNormalization {'training' if training else 'inference'}"
            f"{' ' + settings if settings else ''} in {'x'.join(map(str, sample_shape))}")

    def compute():
        tf, keras = keras_modules()
        rng = _rng(name)
        x = (rng.standard_normal((batch, *sample_shape)) * 1.5 + 0.7).astype(np.float32)
        layer = minicnn.BatchNormalization(**kwargs)
        layer.build(sample_shape)
        channels = layer.params["moving_mean"].shape[0]
        start = {"gamma": rng.uniform(0.5, 1.5, channels), "beta": rng.standard_normal(channels),
                 "moving_mean": rng.standard_normal(channels) * 0.3,
                 "moving_variance": rng.uniform(0.5, 1.5, channels)}
        layer.set_weights([start[key].astype(np.float32) for key in layer.params])
        keras_layer = keras.layers.BatchNormalization(**kwargs)
        keras_layer.build((None, *sample_shape))
        keras_layer.set_weights(layer.get_weights())
        upstream = rng.standard_normal(x.shape).astype(np.float32)
        mini_watch, keras_watch = Stopwatch(), Stopwatch()
        with mini_watch:
            y = to_numpy(layer.forward(to_device(x), training=training))
            dx = to_numpy(layer.backward(to_device(upstream)))
        with keras_watch:
            x_tensor = tf.constant(x)
            with tf.GradientTape() as tape:
                tape.watch(x_tensor)
                y_keras = keras_layer(x_tensor, training=training)
                loss = tf.reduce_sum(y_keras * upstream)
            keras_grads = tape.gradient(loss, [x_tensor, *keras_layer.trainable_weights])
        comparisons = [Comparison("output", "output", y, y_keras.numpy()),
                       Comparison("grad input", "gradient", dx, keras_grads[0].numpy())]
        trainable = [key for key in layer.params if key not in layer.non_trainable_keys]
        comparisons += [Comparison(f"grad {key}", "gradient", layer.grads[key], g.numpy())
                        for key, g in zip(trainable, keras_grads[1:])]
        weights = dict(zip(layer.params, layer.get_weights()))
        comparisons += [Comparison(f"{key} after the pass", "output", weights[key], v.numpy())
                        for key, v in zip(("moving_mean", "moving_variance"),
                                          keras_layer.non_trainable_weights)]
        return comparisons, mini_watch.seconds, keras_watch.seconds
    return Case(name, compute)


LAYER_CASES = [
    conv2d_case(3, 1, "valid"),
    conv2d_case(3, 1, "same"),
    conv2d_case(3, 2, "valid"),
    conv2d_case(3, 2, "same"),            # odd sizes: TF puts the extra pad pixel after
    conv2d_case(1, 1, "valid", use_bias=False),
    conv2d_case(1, 2, "same"),
    conv2d_case(5, 1, "same", use_bias=False, sample_shape=(9, 7, 2)),
    conv2d_case(5, 2, "same", sample_shape=(11, 8, 3)),
    conv2d_case(5, 2, "valid", use_bias=False, sample_shape=(11, 8, 3)),
    conv2d_case(5, 2, "same", sample_shape=(3, 4, 2)),    # input smaller than the kernel
    conv2d_case(3, 1, "same", activation="relu"),
    # 64 input channels: minicnn's CPU forward pass takes Winograd's F(2x2, 3x3) here
    conv2d_case(3, 1, "same", sample_shape=(7, 9, 64), activation="relu"),
    conv2d_case(3, 1, "valid", use_bias=False, sample_shape=(6, 5, 64)),
    maxpool_case(2, 2, "valid"),
    maxpool_case(2, 2, "same"),
    maxpool_case(2, 1, "same"),
    maxpool_case(3, 3, "valid"),
    maxpool_case(3, 2, "same"),           # overlapping windows
    maxpool_case(3, 1, "valid"),
    maxpool_case(2, 2, "valid", ties=True),   # the first maximum in the window wins, as in TF
    maxpool_case(3, 2, "same", ties=True),
    maxpool_case(3, 2, "same", sample_shape=(2, 3, 2)),
    dense_case(6),
    dense_case(6, use_bias=False),
    dense_case(4, activation="softmax"),
    flatten_case(),
    activation_case("relu", (5, 5, 2)),
    activation_case("relu", (5, 5, 2), ties=True),
    activation_case("sigmoid", (6,)),
    activation_case("softmax", (5,)),
    *(activation_case(name, (4, 3, 2)) for name in ("tanh", "elu", "selu", "gelu", "softplus",
                                                   "swish", "leaky_relu")),
    *issue16_layer_cases(),
    batchnorm_case(training=True),
    batchnorm_case(training=False),
    batchnorm_case(training=True, momentum=0.9, epsilon=0.01, center=False),
    batchnorm_case(training=True, sample_shape=(7,), batch=5, scale=False),
    batchnorm_case(training=True, sample_shape=(3, 4, 5), axis=1),
]


# ---------------------------------------------------------------------------------------
# Losses and metrics
# ---------------------------------------------------------------------------------------
# Predictions include exact 0 and 1 (clipped to [1e-7, 1 - 1e-7], gradient zero there).
BCE_SIGMOID = (np.array([[1], [0], [1], [0], [1], [0], [1], [0]], np.float32),
               np.array([[0.0], [1.0], [1.0], [0.0], [0.3], [0.7], [0.5], [1e-9]], np.float32))
# Soft labels: Keras's binary accuracy compares the label itself with (p > 0.5), so a
# label of 0.7 never counts as right.
BCE_SOFT_LABELS = (np.array([[0.9, 0.1], [0.7, 0.0], [0.2, 1.0], [0.5, 0.3]], np.float32),
                   np.array([[0.8, 0.3], [0.6, 0.1], [0.1, 0.9], [0.4, 0.6]], np.float32))
# Two softmax outputs per sample (the tutorial's head) with binary cross-entropy.
BCE_SOFTMAX = (np.array([[1, 0], [0, 1], [1, 0], [0, 1], [1, 0]], np.float32),
               np.array([[0.8, 0.2], [0.4, 0.6], [0.3, 0.7], [1.0, 0.0], [0.5, 0.5]],
                        np.float32))
# The third row does not sum to 1: Keras divides by the sum first, and so does minicnn.
CCE = (np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32),
       np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.4, 0.4, 0.4], [0.2, 0.3, 0.5],
                 [0.1, 0.6, 0.3]], np.float32))


def loss_case(name, loss_name, y_true, y_pred):
    """Loss value, its gradient w.r.t. the predictions, and the accuracy Keras reports.

    Keras gets the predictions as a plain tensor: no ``_keras_logits`` attribute, so it
    computes on the probabilities (see :func:`keras_probabilities_layer`).
    """
    def compute():
        tf, keras = keras_modules()
        mini_loss = minicnn_losses.get(loss_name)
        mini_watch, keras_watch = Stopwatch(), Stopwatch()
        with mini_watch:
            p = to_device(y_pred)
            value = to_numpy(mini_loss(to_device(y_true), p))
            grad = to_numpy(mini_loss.gradient(to_device(y_true), p))
            accuracy = to_numpy(mini_loss.accuracy(to_device(y_true), p))
        keras_loss = keras.losses.get(loss_name)
        keras_accuracy = {"binary_crossentropy": keras.metrics.binary_accuracy,
                          "categorical_crossentropy": keras.metrics.categorical_accuracy
                          }[loss_name]
        with keras_watch:
            p_tensor = tf.constant(y_pred)
            with tf.GradientTape() as tape:
                tape.watch(p_tensor)
                keras_value = tf.reduce_mean(keras_loss(y_true, p_tensor))
            keras_grad = tape.gradient(keras_value, p_tensor)
            keras_acc = tf.reduce_mean(keras_accuracy(y_true, p_tensor))
        return ([Comparison("loss", "output", value, keras_value.numpy()),
                 Comparison("accuracy", "output", accuracy, keras_acc.numpy()),
                 Comparison("grad predictions", "gradient", grad, keras_grad.numpy())],
                mini_watch.seconds, keras_watch.seconds)
    return Case(name, compute)


LOSS_CASES = [
    loss_case("BCE sigmoid outputs (0 and 1 included)", "binary_crossentropy", *BCE_SIGMOID),
    loss_case("BCE softmax outputs (0 and 1 included)", "binary_crossentropy", *BCE_SOFTMAX),
    loss_case("BCE soft labels", "binary_crossentropy", *BCE_SOFT_LABELS),
    loss_case("CCE (0, 1 and an unnormalised row)", "categorical_crossentropy", *CCE),
]


# ---------------------------------------------------------------------------------------
# Optimizers
# ---------------------------------------------------------------------------------------
KERAS_OPTIMIZERS = {"sgd": "SGD", "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW",
                    "nadam": "Nadam", "adagrad": "Adagrad"}


def keras_optimizer(keras, name, learning_rate, **kwargs):
    """The Keras 3 optimizer with minicnn's (Keras 2's) semantics.

    Keras 3's SGD has no ``decay`` argument. Keras 2 computed
    ``lr_t = lr / (1 + decay * iterations)`` with ``iterations`` counted from 0 before the
    update; ``InverseTimeDecay(lr, decay_steps=1, decay_rate=decay)`` evaluated at the
    optimizer's iteration count (also 0 before the first update) is the same schedule.
    A minicnn schedule becomes Keras's schedule of the same name and settings.
    """
    if isinstance(learning_rate, minicnn.optimizers.schedules.LearningRateSchedule):
        learning_rate = getattr(keras.optimizers.schedules, type(learning_rate).__name__)(
            **learning_rate.get_config())
    if name == "sgd":
        decay = kwargs.pop("decay", 0.0)
        if decay:
            learning_rate = keras.optimizers.schedules.InverseTimeDecay(
                learning_rate, decay_steps=1, decay_rate=decay)
    return getattr(keras.optimizers, KERAS_OPTIMIZERS[name])(learning_rate, **kwargs)


def optimizer_case(name, optimizer_name, learning_rate, steps=10, **kwargs):
    """The weights of a (4, 3) kernel and a (3,) bias after ``steps`` updates from the
    same fixed gradient arrays: minicnn sets ``layer.grads`` and calls
    ``optimizer.apply([layer])``; Keras calls ``apply_gradients``."""
    def compute():
        tf, keras = keras_modules()
        rng = _rng(name)
        layer = minicnn.Dense(3, seed=1)
        layer.build((4,))
        start = [rng.standard_normal(w.shape).astype(np.float32) for w in layer.get_weights()]
        layer.set_weights(start)
        gradients = [[rng.standard_normal(w.shape).astype(np.float32) for w in start]
                     for _ in range(steps)]
        mini_optimizer = minicnn.optimizers.OPTIMIZERS[optimizer_name](learning_rate, **kwargs)
        keras_opt = keras_optimizer(keras, optimizer_name, learning_rate, **kwargs)
        variables = [keras.Variable(w) for w in start]
        mini_watch, keras_watch = Stopwatch(), Stopwatch()
        with mini_watch:
            for step_grads in gradients:
                layer.grads = {key: to_device(g) for key, g in zip(layer.params, step_grads)}
                mini_optimizer.apply([layer])
        with keras_watch:
            for step_grads in gradients:
                keras_opt.apply_gradients(zip([tf.constant(g) for g in step_grads], variables))
        return ([Comparison(f"{key} after {steps} steps", "weights", w, v.numpy())
                 for key, w, v in zip(layer.params, layer.get_weights(), variables)],
                mini_watch.seconds, keras_watch.seconds)
    return Case(name, compute)


TUTORIAL_EPOCHS = 2     # decay = lr / epochs, as the tutorial sets it (large, to be visible)
OPTIMIZER_CASES = [
    optimizer_case("SGD lr 0.1", "sgd", 0.1),
    optimizer_case("SGD lr 0.1 momentum 0.9", "sgd", 0.1, momentum=0.9),
    optimizer_case("SGD lr 0.1 momentum 0.9 nesterov", "sgd", 0.1, momentum=0.9,
                   nesterov=True),
    optimizer_case("SGD lr 0.1 decay lr/2", "sgd", 0.1, decay=0.1 / TUTORIAL_EPOCHS),
    optimizer_case("SGD lr 0.1 momentum 0.9 decay lr/2", "sgd", 0.1, momentum=0.9,
                   decay=0.1 / TUTORIAL_EPOCHS),
    optimizer_case("SGD lr 0.1 momentum 0.9 nesterov decay lr/2", "sgd", 0.1, momentum=0.9,
                   nesterov=True, decay=0.1 / TUTORIAL_EPOCHS),
    optimizer_case("RMSprop defaults", "rmsprop", 0.001),
    # A large epsilon tells sqrt(a + eps) (Keras 3) from sqrt(a) + eps (Keras 2).
    optimizer_case("RMSprop rho 0.8 epsilon 0.5", "rmsprop", 0.01, rho=0.8, epsilon=0.5),
]

# Issue 16: Adam, AdamW, Adagrad, Nadam, clipping, weight decay and schedules, against
# the 1e-4 weights tolerance. Each of the 10 steps rounds ~10 times in float32 relative
# to |w| + |step| (10 * 10 * 6e-8 = 6e-6 of |w|). Adam and Nadam add one known
# difference: Keras raises float32 betas to the power t (0.999 is 0.99900001 in float32,
# and 1 - beta_2 ** t cancels to ~t / 1000), so its bias correction is off by up to
# 1.3e-5, its step by 7e-6 of itself; minicnn computes these scalars in float64. Over 10
# steps of at most lr = 0.1 that is 7e-6 absolute, 3e-5 of the smallest compared
# max|w| (~0.25, a bias); computing the powers as Keras does makes the numbers equal.
# Clip bounds are below the gradients' norms (~3.5 for the (4, 3) kernel, ~1.7 for the
# bias) and values (N(0, 1)), so every one binds.
ISSUE16_OPTIMIZERS = [("SGD momentum 0.9", "sgd", {"momentum": 0.9}),
                      ("Adam", "adam", {}),
                      # beta_2 0.5: v follows g^2 down as well as up, so AMSGrad's running
                      # maximum differs from v (with 0.999, v hardly ever falls in 10 steps)
                      ("Adam amsgrad beta_2 0.5", "adam", {"amsgrad": True, "beta_2": 0.5}),
                      ("AdamW", "adamw", {}), ("Adagrad", "adagrad", {}),
                      ("Nadam", "nadam", {})]
CLIPPING = [("", {}), (" clipnorm 1", {"clipnorm": 1.0}), (" clipvalue 0.5", {"clipvalue": 0.5}),
            (" global_clipnorm 1", {"global_clipnorm": 1.0})]


def schedule_cases():
    """Each schedule of ``minicnn.optimizers.schedules`` as the learning rate, over the
    10 steps (each one changes the rate within them)."""
    schedules = minicnn.optimizers.schedules
    return [("ExponentialDecay", schedules.ExponentialDecay(0.1, 3, 0.5)),
            ("ExponentialDecay staircase", schedules.ExponentialDecay(0.1, 3, 0.5, True)),
            ("PiecewiseConstantDecay", schedules.PiecewiseConstantDecay([2, 5],
                                                                        [0.1, 0.05, 0.01])),
            ("CosineDecay alpha 0.1", schedules.CosineDecay(0.1, 8, alpha=0.1)),
            ("CosineDecay warmup", schedules.CosineDecay(0.0, 6, warmup_target=0.1,
                                                         warmup_steps=4))]


OPTIMIZER_CASES += [
    optimizer_case("Adam defaults", "adam", 0.001),
    # A large epsilon tells sqrt(v) + eps (Adam) from sqrt(v + eps) (RMSprop, Adagrad).
    optimizer_case("Adam lr 0.01 epsilon 0.5", "adam", 0.01, epsilon=0.5),
    optimizer_case("AdamW defaults", "adamw", 0.001),
    optimizer_case("AdamW lr 0.1 weight_decay 0.1", "adamw", 0.1, weight_decay=0.1),
    optimizer_case("Adagrad defaults", "adagrad", 0.001),
    optimizer_case("Adagrad initial_accumulator_value 1 epsilon 0.5", "adagrad", 0.1,
                   initial_accumulator_value=1.0, epsilon=0.5),
    optimizer_case("Nadam defaults", "nadam", 0.001),
    optimizer_case("Nadam beta_1 0.5 beta_2 0.9", "nadam", 0.1, beta_1=0.5, beta_2=0.9),
]
OPTIMIZER_CASES += [optimizer_case(f"{label} lr 0.1{clip_label}", name, 0.1, **settings, **clip)
                    for label, name, settings in ISSUE16_OPTIMIZERS
                    for clip_label, clip in CLIPPING]
OPTIMIZER_CASES += [optimizer_case(f"{label} lr 0.1 weight_decay 0.05", name, 0.1,
                                   weight_decay=0.05, **settings)
                    for label, name, settings in ISSUE16_OPTIMIZERS + [("RMSprop", "rmsprop", {})]
                    if name != "adamw"]
OPTIMIZER_CASES += [optimizer_case(f"{label} {schedule_label}", name, schedule, **settings)
                    for schedule_label, schedule in schedule_cases()
                    for label, name, settings in ISSUE16_OPTIMIZERS[:2] + ISSUE16_OPTIMIZERS[-1:]]
OPTIMIZER_CASES += [optimizer_case("SGD momentum 0.9 decay lr/2 global_clipnorm 1 "
                                   "weight_decay 0.05", "sgd", 0.1, momentum=0.9,
                                   decay=0.1 / TUTORIAL_EPOCHS, global_clipnorm=1.0,
                                   weight_decay=0.05),
                    optimizer_case("Adagrad CosineDecay warmup clipvalue 0.5",
                                   "adagrad", schedule_cases()[-1][1], clipvalue=0.5)]


# ---------------------------------------------------------------------------------------
# Whole models, described once and built in both frameworks
# ---------------------------------------------------------------------------------------
# A model is a list of layer specs: ("conv", filters, activation), ("pool",),
# ("relu",) for a separate Activation layer, ("flatten",), ("dense", units, activation).
CATS_DOGS = [("conv", 32, "relu"), ("pool",), ("conv", 32, "relu"), ("pool",),
             ("conv", 64, "relu"), ("pool",), ("flatten",), ("dense", 64, "relu"),
             ("dense", 2, "softmax")]
VGG_STYLE = [("conv", 8, None), ("relu",), ("conv", 8, None), ("relu",), ("pool",),
             ("conv", 16, None), ("relu",), ("conv", 16, None), ("relu",), ("pool",),
             ("flatten",), ("dense", 3, "softmax")]

_KERAS_PREFIX = {"conv": "conv2d", "pool": "max_pooling2d", "relu": "activation",
                 "flatten": "flatten", "dense": "dense", "bn": "batch_normalization",
                 "leaky": "leaky_re_lu", "gap": "global_average_pooling2d"}
# Issue 16's kinds: ("bn",) BatchNormalization, ("leaky", slope) LeakyReLU, ("gap",)
# GlobalAveragePooling2D; a "conv" or "dense" spec may end with a dict of further
# arguments given to both frameworks (kernel_regularizer={"class_name": "L2", ...}).


def _extra(args):
    """The trailing dict of arguments of a "conv" or "dense" spec ({} if none)."""
    return args[-1] if args and isinstance(args[-1], dict) else {}


def _issue16_layer(module, kind, args, name, **extra):
    """The layers of issue 16's kinds, from ``minicnn`` or ``keras.layers``."""
    if kind == "bn":
        return module.BatchNormalization(name=name, **extra)
    if kind == "leaky":
        return module.LeakyReLU(negative_slope=args[0], name=name, **extra)
    return module.GlobalAveragePooling2D(name=name, **extra)


def layer_names(spec):
    """Keras's default names (conv2d, conv2d_1, ...), given to both models explicitly."""
    counts, names = {}, []
    for kind, *_ in spec:
        prefix = _KERAS_PREFIX[kind]
        count = counts.get(prefix, 0)
        counts[prefix] = count + 1
        names.append(prefix if count == 0 else f"{prefix}_{count}")
    return names


def build_minicnn(spec, sample_shape, seed=0):
    layers = []
    for i, ((kind, *args), name) in enumerate(zip(spec, layer_names(spec))):
        extra = {"input_shape": sample_shape} if i == 0 else {}
        if kind in ("bn", "leaky", "gap"):
            layers.append(_issue16_layer(minicnn, kind, args, name, **extra))
        elif kind == "conv":
            layers.append(minicnn.Conv2D(args[0], 3, padding="same", activation=args[1],
                                         seed=seed + i, name=name, **extra, **_extra(args)))
        elif kind == "pool":
            layers.append(minicnn.MaxPooling2D(2, name=name, **extra))
        elif kind == "relu":
            layers.append(minicnn.Activation("relu", name=name, **extra))
        elif kind == "flatten":
            layers.append(minicnn.Flatten(name=name, **extra))
        else:
            layers.append(minicnn.Dense(args[0], activation=args[1], seed=seed + i, name=name,
                                        **extra, **_extra(args)))
    return minicnn.Sequential(layers)


_probabilities_layer_class = None


def keras_probabilities_layer(keras):
    """A Keras layer that passes its input through unchanged, minus ``_keras_logits``.

    Why: Keras 3's TensorFlow softmax tags its output with the logits
    (``_keras_logits``), and ``binary_crossentropy`` then computes
    ``sigmoid_cross_entropy(logits)`` as if the logits had come from a *sigmoid*, not
    from the probabilities the softmax produced (on the tutorial's 2-way softmax:
    0.7367 instead of 0.7290). Keras 2 and Keras 3 on JAX use the probabilities, as
    minicnn does. ``tf.identity`` returns a new tensor without the attribute, so the
    loss after this layer is the clipped-probability formula (tested in
    test_models.py). Categorical cross-entropy needs no such layer: from the logits it
    is the same function (only unclipped).
    """
    global _probabilities_layer_class
    if _probabilities_layer_class is None:
        tf, _ = keras_modules()

        class ProbabilitiesOnly(keras.layers.Layer):
            def call(self, inputs):
                return tf.identity(inputs)

        _probabilities_layer_class = ProbabilitiesOnly
    return _probabilities_layer_class(name="probabilities_only")


def build_keras(keras, spec, sample_shape, probabilities_output=False):
    """The Keras twin of :func:`build_minicnn` (Keras's own initial weights)."""
    layers = [keras.Input(sample_shape)]
    for (kind, *args), name in zip(spec, layer_names(spec)):
        if kind in ("bn", "leaky", "gap"):
            layers.append(_issue16_layer(keras.layers, kind, args, name))
        elif kind == "conv":
            layers.append(keras.layers.Conv2D(args[0], 3, padding="same", activation=args[1],
                                              name=name, **_extra(args)))
        elif kind == "pool":
            layers.append(keras.layers.MaxPooling2D(2, name=name))
        elif kind == "relu":
            layers.append(keras.layers.Activation("relu", name=name))
        elif kind == "flatten":
            layers.append(keras.layers.Flatten(name=name))
        else:
            layers.append(keras.layers.Dense(args[0], activation=args[1], name=name,
                                             **_extra(args)))
    if probabilities_output:
        layers.append(keras_probabilities_layer(keras))
    return keras.Sequential(layers)


def copy_weights_to_keras(mini_model, keras_model):
    for layer in mini_model.layers:
        keras_model.get_layer(layer.name).set_weights(layer.get_weights())


def model_data(sample_shape, classes, n, seed):
    """Random images in [0, 1] and one-hot labels."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, (n, *sample_shape)).astype(np.float32)
    return x, minicnn.to_categorical(rng.integers(0, classes, n), classes)


def model_case(name, spec, sample_shape, loss, optimizer, n=24, batch_size=8, epochs=3,
               optimizer_name="sgd", tolerances=None, why_looser=""):
    """Forward, loss, every gradient, then ``fit`` in both: per-epoch losses and
    accuracies, the final weights, and ``evaluate`` after training."""
    classes = spec[-1][1]       # units of the final dense layer

    def compute():
        tf, keras = keras_modules()
        x, y = model_data(sample_shape, classes, n, seed=len(name))
        xb, yb = x[:batch_size], y[:batch_size]
        mini = build_minicnn(spec, sample_shape)
        keras_model = build_keras(keras, spec, sample_shape,
                                  probabilities_output=loss == "binary_crossentropy")
        copy_weights_to_keras(mini, keras_model)
        mini_watch, keras_watch = Stopwatch(), Stopwatch()
        comparisons = []

        mini.compile(minicnn.optimizers.OPTIMIZERS[optimizer_name](**optimizer), loss,
                     ["accuracy"])
        with mini_watch:
            y_pred = mini.forward(to_device(xb), training=True)
            loss_value = to_numpy(mini.loss(to_device(yb), y_pred))
            mini.backward(mini.loss.gradient(to_device(yb), y_pred))
        with keras_watch:
            keras_loss = keras.losses.get(loss)
            with tf.GradientTape() as tape:
                keras_pred = keras_model(xb, training=True)
                keras_value = tf.reduce_mean(keras_loss(yb, keras_pred))
            keras_grads = tape.gradient(keras_value, keras_model.trainable_weights)
        comparisons += [Comparison("output", "output", to_numpy(y_pred), keras_pred.numpy()),
                        Comparison("loss", "output", loss_value, keras_value.numpy())]
        keras_grads = iter(keras_grads)
        for layer in mini.layers:   # Keras's trainable weights: no moving statistics
            for key in (k for k in layer.params if k not in layer.non_trainable_keys):
                comparisons.append(Comparison(f"grad {layer.name}/{key}", "gradient",
                                              layer.grads[key], next(keras_grads).numpy()))

        # "accuracy" means binary accuracy after binary cross-entropy in Keras 2 (the
        # tutorial's) and in minicnn. Keras 3 picks by the output's width instead and would
        # report categorical accuracy for a 2-way softmax (the two differ only at p = 0.5),
        # so the metric is named explicitly.
        metric = (keras.metrics.BinaryAccuracy(name="accuracy")
                  if loss == "binary_crossentropy" else "accuracy")
        keras_model.compile(optimizer=keras_optimizer(keras, optimizer_name, **optimizer),
                            loss=loss, metrics=[metric])
        with mini_watch:
            mini_history = mini.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False,
                                    verbose=0)
            mini_eval = mini.evaluate(x, y, batch_size=batch_size)
        with keras_watch:
            keras_history = keras_model.fit(x, y, batch_size=batch_size, epochs=epochs,
                                            shuffle=False, verbose=0)
            keras_eval = keras_model.evaluate(x, y, batch_size=batch_size, verbose=0)
        for epoch in range(epochs):
            for key in ("loss", "accuracy"):
                comparisons.append(Comparison(
                    f"{key} epoch {epoch + 1}", "weights", mini_history.history[key][epoch],
                    keras_history.history[key][epoch]))
        for layer in mini.layers:
            keras_layer = keras_model.get_layer(layer.name)
            for key, w, v in zip(layer.params, layer.get_weights(), keras_layer.get_weights()):
                comparisons.append(Comparison(f"trained {layer.name}/{key}", "weights", w, v))
        comparisons += [Comparison("evaluate loss", "weights", mini_eval[0], keras_eval[0]),
                        Comparison("evaluate accuracy", "weights", mini_eval[1], keras_eval[1])]
        return comparisons, mini_watch.seconds, keras_watch.seconds
    return Case(name, compute, tolerances or {}, why_looser)


MODEL_CASES = [
    model_case("cats/dogs net 32x32x3, BCE, SGD momentum 0.9 decay", CATS_DOGS, (32, 32, 3),
               "binary_crossentropy",
               {"learning_rate": 0.01, "momentum": 0.9, "decay": 0.01 / 3}),
    # 20 samples in batches of 8: the last batch of each epoch holds 4, and both weight
    # each batch's loss by its size in the epoch's mean.
    model_case("VGG-style 16x16x3, CCE, SGD nesterov", VGG_STYLE, (16, 16, 3),
               "categorical_crossentropy",
               {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}, n=20),
]

# Issue 16: a small conv net with BatchNormalization, LeakyReLU and global average pooling
# (BatchNormalization's moving statistics are among the trained weights compared), and
# one whose Conv2D and Dense carry weight penalties (in fit's and evaluate's losses).
# Its convolutions have no bias, as usual before BatchNormalization: the normalization
# subtracts any bias again, so its true gradient is 0, and both frameworks would compare
# rounding noise (~1e-7), which Adam's normalised steps would then turn into lr-sized moves.
BN_NET = [("conv", 8, None, {"use_bias": False}), ("bn",), ("leaky", 0.1), ("pool",),
          ("conv", 16, None, {"use_bias": False}), ("bn",), ("leaky", 0.1), ("gap",),
          ("dense", 3, "softmax")]
REGULARIZED_NET = [
    ("conv", 8, "relu", {"kernel_regularizer": {"class_name": "L2", "config": {"l2": 0.01}},
                         "bias_regularizer": {"class_name": "L1", "config": {"l1": 0.01}}}),
    ("pool",), ("flatten",),
    ("dense", 3, "softmax", {"kernel_regularizer": {"class_name": "L1L2",
                                                    "config": {"l1": 0.001, "l2": 0.01}}})]
MODEL_CASES += [
    model_case("BN + LeakyReLU + GAP net 16x16x3, CCE, SGD momentum 0.9", BN_NET, (16, 16, 3),
               "categorical_crossentropy", {"learning_rate": 0.05, "momentum": 0.9}, n=20),
    model_case("regularized conv net 12x12x3 (L2, L1, L1L2), CCE, SGD", REGULARIZED_NET,
               (12, 12, 3), "categorical_crossentropy", {"learning_rate": 0.05}, n=20),
]
# Adam's step lr * m / (sqrt(v) + epsilon) is at most (lr / epsilon)-Lipschitz in the
# gradient: with Keras's epsilon 1e-7, a component whose gradient is float32 rounding noise
# (~1e-7 of the sums it comes from) moves by up to lr either way, and two frameworks that
# add in other orders (or one machine's kernels against another's) end 3% apart after
# 9 steps. epsilon = 0.01 caps that gain at lr / epsilon = 1: the rounding differences of
# the gradients (<= 1e-6 here) stay <= 1e-6 per step, far inside the 1e-4 tolerance.
if "adam" in minicnn.optimizers.OPTIMIZERS:
    MODEL_CASES.append(model_case(
        "BN + LeakyReLU + GAP net 16x16x3, CCE, Adam", BN_NET, (16, 16, 3),
        "categorical_crossentropy", {"learning_rate": 0.01, "epsilon": 0.01}, n=20,
        optimizer_name="adam"))


def evaluate_case(name, loss, units, activation, n=10, batch_size=4):
    """``Sequential.evaluate`` against Keras's ``evaluate``: [loss, accuracy] over batches
    of 4, 4 and 2. Keras chooses what "accuracy" means itself here: binary accuracy for
    one sigmoid output, categorical accuracy for a softmax."""
    spec, sample_shape = [("dense", units, activation)], (5,)

    def compute():
        _, keras = keras_modules()
        rng = _rng(name)
        x = rng.standard_normal((n, *sample_shape)).astype(np.float32)
        labels = rng.integers(0, max(units, 2), n)
        y = (labels.reshape(-1, 1).astype(np.float32) if units == 1
             else minicnn.to_categorical(labels, units))
        mini = build_minicnn(spec, sample_shape)
        mini.compile("sgd", loss, ["accuracy"])
        keras_model = build_keras(keras, spec, sample_shape)
        copy_weights_to_keras(mini, keras_model)
        keras_model.compile(optimizer="sgd", loss=loss, metrics=["accuracy"])
        mini_watch, keras_watch = Stopwatch(), Stopwatch()
        with mini_watch:
            mini_eval = mini.evaluate(x, y, batch_size=batch_size)
        with keras_watch:
            keras_eval = keras_model.evaluate(x, y, batch_size=batch_size, verbose=0)
        return ([Comparison("evaluate loss", "output", mini_eval[0], keras_eval[0]),
                 Comparison("evaluate accuracy", "output", mini_eval[1], keras_eval[1])],
                mini_watch.seconds, keras_watch.seconds)
    return Case(name, compute)


EVALUATE_CASES = [
    evaluate_case("evaluate sigmoid + BCE, batches 4/4/2", "binary_crossentropy", 1, "sigmoid"),
    evaluate_case("evaluate softmax + CCE, batches 4/4/2", "categorical_crossentropy", 3,
                  "softmax"),
]


# ---------------------------------------------------------------------------------------
# Weights saved by Keras, loaded into minicnn
# ---------------------------------------------------------------------------------------
def _save_keras_weights(keras_model, path, layout):
    """``layout``: "weights.h5" (Keras 3's ``save_weights``) or "legacy" (Keras 2's
    HDF5 layout, with ``layer_names`` / ``weight_names`` attributes)."""
    if layout == "weights.h5":
        keras_model.save_weights(path)
        return
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, keras_model)


def weights_file_case(layout, by_name=False, spec=CATS_DOGS, sample_shape=(32, 32, 3)):
    """Keras initialises and saves; minicnn loads and predicts the same outputs."""
    name = f"load Keras {layout} file{' by name' if by_name else ''}"

    def compute():
        from minicnn.weights import load_weights

        _, keras = keras_modules()
        x, _ = model_data(sample_shape, 2, 8, seed=3)
        keras_model = build_keras(keras, spec, sample_shape)
        mini = build_minicnn(spec, sample_shape, seed=99)
        mini_watch, keras_watch = Stopwatch(), Stopwatch()
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.weights.h5" if layout == "weights.h5"
                                else "model.h5")
            with keras_watch:
                _save_keras_weights(keras_model, path, layout)
            with mini_watch:
                load_weights(mini, path, by_name=by_name)
        with mini_watch:
            mini_out = mini.predict(x)
        with keras_watch:
            keras_out = keras_model.predict(x, verbose=0)
        comparisons = [Comparison("predict", "output", mini_out, keras_out)]
        comparisons += [Comparison(f"loaded weight {i}", "weights", w, v) for i, (w, v)
                        in enumerate(zip(mini.get_weights(), keras_model.get_weights()))]
        return comparisons, mini_watch.seconds, keras_watch.seconds
    return Case(name, compute)


WEIGHTS_CASES = [weights_file_case("weights.h5"), weights_file_case("legacy"),
                 weights_file_case("legacy", by_name=True)]

CASE_GROUPS = {"Every layer alone": LAYER_CASES,
               "Losses and accuracy": LOSS_CASES + EVALUATE_CASES,
               "Optimizers, 10 steps": OPTIMIZER_CASES,
               "Whole models: forward, gradients, 3 epochs of fit": MODEL_CASES,
               "Weights saved by Keras, loaded into minicnn": WEIGHTS_CASES}
ALL_CASES = [case for group in CASE_GROUPS.values() for case in group]
