"""Every layer alone, forward and backward, against Keras.

For each case (see ``cases.LAYER_CASES``) the layer gets the same random weights in both
frameworks and the same input; the outputs must agree within 1e-5 and the gradients of
L = sum(y * R) with respect to the input, the kernel and the bias within 1e-4 (relative
to the largest Keras value).
"""
import pytest

from .cases import LAYER_CASES, assert_agrees

pytestmark = [pytest.mark.keras, pytest.mark.usefixtures("tf_keras")]


@pytest.mark.parametrize("case", LAYER_CASES, ids=lambda case: case.name)
def test_layer_matches_keras(case):
    result = assert_agrees(case)
    kinds = {c.kind for c in result.comparisons}
    assert kinds == {"output", "gradient"}
