"""Weights saved by Keras (Keras 3's ``.weights.h5`` and Keras 2's legacy HDF5 layout)
load into the same minicnn architecture with ``minicnn.weights.load_weights`` and predict
the same outputs."""
import pytest

from .cases import WEIGHTS_CASES, assert_agrees

pytestmark = [pytest.mark.keras, pytest.mark.usefixtures("tf_keras"),
              # Keras's own variable-to-NumPy conversion, not ours, under NumPy 2
              pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")]


@pytest.mark.parametrize("case", WEIGHTS_CASES, ids=lambda case: case.name)
def test_keras_weights_load_into_minicnn(case):
    result = assert_agrees(case)
    loaded = [c for c in result.comparisons if c.label.startswith("loaded weight")]
    assert len(loaded) == 10                   # 4 conv/dense kernels and biases + 2 dense
    assert all(c.abs_diff == 0.0 for c in loaded)    # copied bit for bit
