"""Losses and the accuracy Keras reports, against Keras; and Keras 3's softmax quirk."""
import numpy as np
import pytest

from minicnn import losses

from .cases import (BCE_SOFTMAX, EVALUATE_CASES, LOSS_CASES, assert_agrees,
                    keras_probabilities_layer)

pytestmark = [pytest.mark.keras, pytest.mark.usefixtures("tf_keras")]


@pytest.mark.parametrize("case", LOSS_CASES + EVALUATE_CASES, ids=lambda case: case.name)
def test_loss_matches_keras(case):
    assert_agrees(case)


def bce_formula(y_true, p):
    """Binary cross-entropy on clipped probabilities (Keras 2; Keras 3 on JAX), float64."""
    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    return float(np.mean(-(y_true * np.log(p) + (1 - y_true) * np.log(1 - p))))


def test_keras3_tf_bce_after_softmax_uses_the_logits(tf_keras):
    """The quirk the reference cases work around, shown on Keras itself.

    Keras 3's TensorFlow softmax tags its output with ``_keras_logits`` and binary
    cross-entropy then treats those as sigmoid logits. The same probabilities as a plain
    tensor, or after ``keras_probabilities_layer``, give the clipped-probability formula,
    which minicnn computes. If Keras ever changes this, this test says so.
    """
    tf, keras = tf_keras
    y_true, _ = BCE_SOFTMAX
    logits = tf.constant(np.random.default_rng(0).normal(0, 2, y_true.shape), tf.float32)
    p = keras.activations.softmax(logits)
    assert hasattr(p, "_keras_logits")
    formula = bce_formula(y_true, p.numpy())
    bce = keras.losses.BinaryCrossentropy()
    from_logits = float(bce(y_true, p))
    plain = float(bce(y_true, tf.constant(p.numpy())))
    through_layer = float(bce(y_true, keras_probabilities_layer(keras)(p)))
    assert abs(from_logits - formula) > 1e-3 * formula      # the quirk: a different loss
    assert plain == pytest.approx(formula, rel=1e-6)
    assert through_layer == pytest.approx(formula, rel=1e-6)
    assert float(losses.BinaryCrossentropy()(y_true, p.numpy())) == \
        pytest.approx(formula, rel=1e-6)
