"""Optimizers: the weights after 10 steps from the same gradients, against Keras."""
import numpy as np
import pytest

import minicnn

from .cases import OPTIMIZER_CASES, TOLERANCES, assert_agrees

pytestmark = [pytest.mark.keras, pytest.mark.usefixtures("tf_keras")]


@pytest.mark.parametrize("case", OPTIMIZER_CASES, ids=lambda case: case.name)
def test_optimizer_matches_keras(case):
    assert_agrees(case)


def _ten_steps(optimizer):
    """A (4, 3) kernel after 10 fixed gradients, through minicnn's optimizer."""
    rng = np.random.default_rng(5)
    layer = minicnn.Dense(3, use_bias=False, seed=1)
    layer.build((4,))
    for _ in range(10):
        layer.grads = {"kernel": rng.standard_normal((4, 3)).astype(np.float32)}
        optimizer.apply([layer])
    return layer.get_weights()[0]


def _relative(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def test_the_decay_cases_can_tell_decay_from_none():
    """The decay in the SGD cases moves the weights far more than the tolerance, so a
    wrong schedule on either side would fail them."""
    with_decay = _ten_steps(minicnn.SGD(0.1, momentum=0.9, decay=0.05))
    without = _ten_steps(minicnn.SGD(0.1, momentum=0.9))
    assert _relative(with_decay, without) > 100 * TOLERANCES["weights"]


def test_the_rmsprop_case_can_tell_where_epsilon_goes(tf_keras):
    """With epsilon 0.5, Keras 2's sqrt(a) + eps and Keras 3's sqrt(a + eps) end far apart."""
    tf, keras = tf_keras
    rng = np.random.default_rng(5)
    grads = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(10)]
    start = np.zeros((4, 3), np.float32)
    variable = keras.Variable(start)
    optimizer = keras.optimizers.RMSprop(0.01, rho=0.8, epsilon=0.5)
    keras2, mean_square = start.astype(np.float64), np.zeros((4, 3))
    for g in grads:
        optimizer.apply_gradients([(tf.constant(g), variable)])
        mean_square = 0.8 * mean_square + 0.2 * g * g
        keras2 -= 0.01 * g / (np.sqrt(mean_square) + 0.5)
    assert _relative(keras2, variable.numpy()) > 100 * TOLERANCES["weights"]


S = minicnn.optimizers.schedules
O = minicnn.optimizers


@pytest.mark.parametrize("feature, make, without", [
    ("clipnorm", lambda: O.Adam(0.1, clipnorm=1.0), lambda: O.Adam(0.1)),
    ("clipvalue", lambda: O.Adam(0.1, clipvalue=0.5), lambda: O.Adam(0.1)),
    ("global_clipnorm", lambda: O.Nadam(0.1, global_clipnorm=1.0), lambda: O.Nadam(0.1)),
    ("weight_decay", lambda: O.Adagrad(0.1, weight_decay=0.05), lambda: O.Adagrad(0.1)),
    ("AdamW's decay", lambda: O.AdamW(0.1, weight_decay=0.1), lambda: O.Adam(0.1)),
    ("amsgrad", lambda: O.Adam(0.1, beta_2=0.5, amsgrad=True), lambda: O.Adam(0.1, beta_2=0.5)),
    ("Nesterov momentum", lambda: O.Nadam(0.1), lambda: O.Adam(0.1)),
    ("ExponentialDecay", lambda: O.Adam(S.ExponentialDecay(0.1, 3, 0.5)),
     lambda: O.Adam(0.1)),
    ("staircase", lambda: O.Adam(S.ExponentialDecay(0.1, 3, 0.5, staircase=True)),
     lambda: O.Adam(S.ExponentialDecay(0.1, 3, 0.5))),
    ("PiecewiseConstantDecay", lambda: O.Adam(S.PiecewiseConstantDecay([2, 5],
                                                                       [0.1, 0.05, 0.01])),
     lambda: O.Adam(0.1)),
    ("CosineDecay", lambda: O.Adam(S.CosineDecay(0.1, 8, alpha=0.1)), lambda: O.Adam(0.1)),
    ("warmup", lambda: O.Adam(S.CosineDecay(0.0, 6, warmup_target=0.1, warmup_steps=4)),
     lambda: O.Adam(S.CosineDecay(0.1, 6))),
])
def test_the_issue16_cases_can_tell_each_feature_from_its_absence(feature, make, without):
    """Each setting the parity cases exercise moves the weights far more than the
    tolerance, so getting it wrong (or ignoring it) on either side would fail them."""
    assert _relative(_ten_steps(make()), _ten_steps(without())) > 100 * TOLERANCES["weights"]
