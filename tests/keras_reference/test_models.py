"""Whole models against Keras: the tutorial's cats/dogs net and a VGG-style stack.

Forward outputs, the loss, every weight's gradient, then three epochs of ``fit`` on the
same data in the same order: the loss and accuracy of each epoch, the trained weights
and ``evaluate`` afterwards.
"""
import numpy as np
import pytest

import minicnn

from .cases import (MODEL_CASES, assert_agrees, build_keras, build_minicnn,
                    copy_weights_to_keras, model_data)
from .test_losses import bce_formula

pytestmark = [pytest.mark.keras, pytest.mark.usefixtures("tf_keras")]


@pytest.mark.parametrize("case", MODEL_CASES, ids=lambda case: case.name)
def test_model_matches_keras(case):
    result = assert_agrees(case)
    labels = {c.label for c in result.comparisons}
    assert {"output", "loss", "loss epoch 3", "evaluate accuracy"} <= labels


def bce_float32_error(y_true, probabilities, logit_error):
    """A bound on how far two float32 computations of the binary cross-entropy of the same
    model can drift apart, relative to the loss.

    Each probability p is a float32 softmax output: a few roundings (exp, sum, divide),
    so p carries a relative error of about 4 eps; a term log(q), q = p or 1 - p, then
    moves by 4 eps * p / q (for q = 1 - p near 0 this is what makes confident outputs
    ill-conditioned: 1.5e-6 = 1 - 0.9999985 has only ~25 ulps). Besides, the two
    frameworks sum each logit in their own order: a logit differs by at most
    ``logit_error``, and a 2-way softmax's log-probabilities move by at most twice that.
    """
    eps = float(np.finfo(np.float32).eps)
    p = np.clip(probabilities.astype(np.float64), 1e-7, 1 - 1e-7)
    q = np.where(y_true == 1, p, 1 - p)
    per_term = 4 * eps * p / q + 2 * logit_error
    return float(np.mean(per_term)) / bce_formula(y_true, probabilities)


def test_probabilities_layer_makes_keras_fit_use_the_probabilities(tf_keras):
    """In a compiled Keras model, softmax + binary cross-entropy reports the logits-based
    loss; after ``keras_probabilities_layer`` it reports the clipped-probability formula,
    which minicnn's ``evaluate`` also gives. This is what the cats/dogs case relies on."""
    _, keras = tf_keras
    spec, sample_shape = [("flatten",), ("dense", 2, "softmax")], (4, 4, 1)
    x, y = model_data(sample_shape, 2, 16, seed=0)
    mini = build_minicnn(spec, sample_shape)
    # Weights x3: outputs from 0.007 to 0.993, confident enough that the logits-based loss
    # is 15% away from the formula, not so confident that float32 rounding of p near 1
    # dominates the loss (x8 gave p = 0.9999985, whose loss moves by 1% between machines).
    mini.layers[-1].set_weights([w * 3 for w in mini.layers[-1].get_weights()])
    mini.compile(minicnn.SGD(0.01), "binary_crossentropy")
    probabilities = mini.predict(x)
    formula = bce_formula(y, probabilities)
    # A dot product of K terms in float32, in any order, is off by at most K eps sum|w x|.
    kernel, bias = mini.layers[-1].get_weights()
    flat = x.reshape(len(x), -1)
    terms = flat.shape[1] + 1
    logit_error = terms * float(np.finfo(np.float32).eps) * float(
        np.max(np.abs(flat) @ np.abs(kernel) + np.abs(bias)))
    tolerance = bce_float32_error(y, probabilities, logit_error)
    losses = {}
    for probabilities_output in (False, True):
        keras_model = build_keras(keras, spec, sample_shape, probabilities_output)
        copy_weights_to_keras(mini, keras_model)
        keras_model.compile(optimizer="sgd", loss="binary_crossentropy")
        losses[probabilities_output] = keras_model.evaluate(x, y, batch_size=16, verbose=0)
    assert tolerance < 1e-3    # the check below can tell the two formulas apart
    assert abs(losses[False] - formula) > 100 * tolerance * formula
    assert losses[True] == pytest.approx(formula, rel=tolerance)
    assert mini.evaluate(x, y, batch_size=16) == pytest.approx(formula, rel=tolerance)
    assert np.all((probabilities > 0) & (probabilities < 1))
