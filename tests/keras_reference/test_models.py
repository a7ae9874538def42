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


def test_probabilities_layer_makes_keras_fit_use_the_probabilities(tf_keras):
    """In a compiled Keras model, softmax + binary cross-entropy reports the logits-based
    loss; after ``keras_probabilities_layer`` it reports the clipped-probability formula,
    which minicnn's ``evaluate`` also gives. This is what the cats/dogs case relies on."""
    _, keras = tf_keras
    spec, sample_shape = [("flatten",), ("dense", 2, "softmax")], (4, 4, 1)
    x, y = model_data(sample_shape, 2, 16, seed=0)
    mini = build_minicnn(spec, sample_shape)
    mini.layers[-1].set_weights([w * 8 for w in mini.layers[-1].get_weights()])  # confident
    mini.compile(minicnn.SGD(0.01), "binary_crossentropy")
    probabilities = mini.predict(x)
    formula = bce_formula(y, probabilities)
    losses = {}
    for probabilities_output in (False, True):
        keras_model = build_keras(keras, spec, sample_shape, probabilities_output)
        copy_weights_to_keras(mini, keras_model)
        keras_model.compile(optimizer="sgd", loss="binary_crossentropy")
        losses[probabilities_output] = keras_model.evaluate(x, y, batch_size=16, verbose=0)
    assert abs(losses[False] - formula) > 1e-2 * formula
    assert losses[True] == pytest.approx(formula, rel=1e-5)
    assert mini.evaluate(x, y, batch_size=16) == pytest.approx(formula, rel=1e-5)
    assert np.all((probabilities > 0) & (probabilities < 1))
