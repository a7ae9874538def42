"""Keras 2's model methods (fit_generator, predict_classes...) answer as Keras 3's, warning once."""
import warnings

import numpy as np
import pytest

import minicnn
from minicnn import Dense, Flatten, Sequential, keras2


def _model(units=2, activation="softmax"):
    model = Sequential([Flatten(input_shape=(3, 3, 1)), Dense(units, activation=activation,
                                                              seed=0)])
    loss = "categorical_crossentropy" if units > 1 else "binary_crossentropy"
    model.compile(minicnn.SGD(0.1), loss, ["accuracy"])
    return model


def _batches(n_batches=3, units=2):
    """The same ``n_batches`` (x, y) batches each time, as a one-shot generator."""
    rng = np.random.default_rng(0)
    for _ in range(n_batches):
        x = rng.random((4, 3, 3, 1), dtype=np.float32)
        labels = rng.integers(0, 2, 4)
        y = minicnn.to_categorical(labels, 2) if units > 1 else labels[:, None].astype("f")
        yield x, y


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(keras2, "_warned", set())


def test_generator_methods_give_what_the_keras3_names_give():
    trained, reference = _model(), _model()
    with pytest.warns(UserWarning, match="fit_generator is Keras 2's name"):
        trained.fit_generator(_batches(6), steps_per_epoch=3, epochs=2, verbose=0)
    reference.fit(_batches(6), steps_per_epoch=3, epochs=2, verbose=0)
    for a, b in zip(trained.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)          # the same steps: the same bits
    with pytest.warns(UserWarning, match="evaluate_generator"):
        assert trained.evaluate_generator(_batches(), steps=3) == \
            trained.evaluate(_batches(), steps=3)
    x = np.concatenate([b[0] for b in _batches()])
    with pytest.warns(UserWarning, match="predict_generator"):
        np.testing.assert_array_equal(trained.predict_generator(iter([x[:4], x[4:8], x[8:]]), 3),
                                      trained.predict(x, batch_size=4))


def test_predict_classes_softmax_argmax_and_sigmoid_threshold():
    x = np.concatenate([b[0] for b in _batches()])
    softmax = _model()
    with pytest.warns(UserWarning, match="predict_classes"):
        classes = softmax.predict_classes(x)
    np.testing.assert_array_equal(classes, softmax.predict(x).argmax(axis=-1))
    sigmoid = _model(1, "sigmoid")
    classes = sigmoid.predict_classes(x)
    assert classes.shape == (len(x), 1) and classes.dtype == np.int32
    np.testing.assert_array_equal(classes, (sigmoid.predict(x) > 0.5).astype(np.int32))
    with pytest.warns(UserWarning, match="predict_proba"):
        np.testing.assert_array_equal(sigmoid.predict_proba(x), sigmoid.predict(x))


def test_each_old_name_warns_once_per_process():
    model = _model()
    x = np.zeros((2, 3, 3, 1), np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.predict_proba(x)
        model.predict_proba(x)
    assert len([w for w in caught if "predict_proba" in str(w.message)]) == 1


def test_class_weight_is_refused_rather_than_ignored():
    with pytest.warns(UserWarning, match="fit_generator"), \
            pytest.raises(ValueError, match="class_weight=.* is not supported"):
        _model().fit_generator(_batches(), steps_per_epoch=3,
                               class_weight={0: 1.0, 1: 2.0})
