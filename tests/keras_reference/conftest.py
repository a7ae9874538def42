"""Keras for the reference suite: a skip where it is not installed, a failure where CI
says it must be.

``MINICNN_REQUIRE_KERAS=1`` (set by CI) turns a missing Keras/TensorFlow into a test
failure: a suite that silently skips itself would prove nothing. Unset (or empty, or
``0``), the tests skip, so that the library's own suite runs without the dev extra.
"""
import os

import pytest

from .harness import keras_modules

REQUIRE_VARIABLE = "MINICNN_REQUIRE_KERAS"


def keras_required() -> bool:
    return os.environ.get(REQUIRE_VARIABLE, "") not in ("", "0")


def keras_or_skip(required: bool):
    """``(tensorflow, keras)``; without them, fail when ``required``, else skip."""
    try:
        return keras_modules()
    except ImportError as err:
        message = (f"Keras 3 with TensorFlow is needed for the Keras reference tests "
                   f"({err}); install the dev extra: pip install -e '.[dev]'")
        if required:
            pytest.fail(f"{message}. {REQUIRE_VARIABLE} is set, so this is a failure.",
                        pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="session")
def tf_keras():
    """``(tensorflow, keras)`` with Keras's own random draws seeded (one TF session)."""
    tf, keras = keras_or_skip(keras_required())
    keras.utils.set_random_seed(0)
    return tf, keras
