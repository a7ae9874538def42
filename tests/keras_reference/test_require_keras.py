"""The suite skips without Keras only when CI has not asked for it."""
import sys

import pytest

from . import harness
from .conftest import REQUIRE_VARIABLE, keras_or_skip, keras_required


@pytest.fixture
def keras_missing(monkeypatch):
    """Make ``import tensorflow`` and ``import keras`` fail as where they are not installed."""
    monkeypatch.setattr(harness, "_keras_cache", None)
    for module in ("tensorflow", "keras"):
        monkeypatch.setitem(sys.modules, module, None)    # None there: ImportError


def test_missing_keras_is_a_failure_when_required(keras_missing):
    with pytest.raises(pytest.fail.Exception, match=REQUIRE_VARIABLE):
        keras_or_skip(required=True)


def test_missing_keras_is_a_skip_otherwise(keras_missing):
    with pytest.raises(pytest.skip.Exception, match="dev extra"):
        keras_or_skip(required=False)


@pytest.mark.parametrize("value, required", [(None, False), ("", False), ("0", False),
                                             ("1", True)])
def test_the_variable_decides(monkeypatch, value, required):
    if value is None:
        monkeypatch.delenv(REQUIRE_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(REQUIRE_VARIABLE, value)
    assert keras_required() is required
