"""Keras's functional API for chains of layers (``Input``, layer calls, ``Model``), Input as
the first entry of a Sequential, and the models' shapes in Keras's form (None, ...)."""
import numpy as np
import pytest

from minicnn.layers import (Conv2D, Dense, Flatten, Input, InputLayer, KerasTensor,
                            MaxPooling2D, clear_session)
from minicnn.models import Model, Sequential


def small_chain():
    inputs = Input((12, 12, 1))
    x = Conv2D(4, 3, activation="relu", seed=1)(inputs)
    x = MaxPooling2D()(x)
    outputs = Dense(3, activation="softmax", seed=2)(Flatten()(x))
    return inputs, x, outputs


def test_layer_calls_on_symbolic_tensors_give_shapes_with_none_batch():
    inputs, pooled, outputs = small_chain()
    assert isinstance(inputs, KerasTensor) and inputs.shape == (None, 12, 12, 1)
    assert pooled.shape == (None, 5, 5, 4) and outputs.shape == (None, 3)
    assert "KerasTensor shape=(None, 3)" in repr(outputs)
    with pytest.raises(TypeError, match="symbolic"):
        np.asarray(outputs)


def test_model_from_a_chain_equals_the_sequential_of_its_layers():
    inputs, _, outputs = small_chain()
    model = Model(inputs, outputs)
    assert isinstance(model, Sequential)
    assert [type(l).__name__ for l in model.layers] == ["Conv2D", "MaxPooling2D", "Flatten",
                                                        "Dense"]
    assert model.input_shape == (None, 12, 12, 1) and model.output_shape == (None, 3)
    x = np.random.default_rng(0).random((5, 12, 12, 1), dtype=np.float32)
    same = Sequential(list(model.layers))
    np.testing.assert_array_equal(model.predict(x), same.predict(x))
    assert model.predict(x).shape == (5, 3)
    model.compile("adam", "categorical_crossentropy", ["accuracy"])
    history = model.fit(x, np.eye(3)[[0, 1, 2, 0, 1]], epochs=1, verbose=0)
    assert set(history.history) == {"loss", "accuracy"}


def test_layer_call_on_arrays_still_runs_forward():
    layer = Dense(2, seed=0)
    y = layer(np.ones((3, 4), np.float32))
    assert y.shape == (3, 2) and layer.output_shape == (2,)   # a layer's: one sample


def test_input_first_in_a_sequential_keras_3_style_and_input_layer_keras_2_style():
    for first in (Input(shape=(6,)), InputLayer(input_shape=(6,)), InputLayer(shape=(6,))):
        model = Sequential([first, Dense(2)])
        assert len(model.layers) == 1          # as Keras: the input is not one of the layers
        assert model.input_shape == (None, 6) and model.output_shape == (None, 2)
        assert model.predict(np.zeros((4, 6))).shape == (4, 2)
    model = Sequential()
    model.add(Input((6,)))
    model.add(Dense(2))
    assert model.built and model.output_shape == (None, 2)
    with pytest.raises(ValueError, match="first entry"):
        model.add(Input((2,)))


def test_input_shape_conflicts_and_bad_inputs_are_errors():
    with pytest.raises(ValueError, match="was built for"):
        Sequential([Input((6,)), _built(Dense(2), (5,))])
    with pytest.raises(ValueError, match="was built for"):
        _built(Dense(2), (5,))(Input((6,)))
    with pytest.raises(ValueError, match="shape of one sample"):
        Input()
    with pytest.raises(ValueError, match="float32"):
        Input((3,), dtype="int32")


def _built(layer, shape):
    layer.build(shape)
    return layer


@pytest.mark.parametrize("make, message", [
    (lambda i, o: Model([i, Input((12, 12, 1))], o), "2 inputs"),
    (lambda i, o: Model(i, [o, o]), "2 outputs"),
    (lambda i, o: Model(Input((12, 12, 1)), o), "not computed from the inputs"),
    (lambda i, o: Model(i, i), "call a layer on it first"),
    (lambda i, o: Model(), "Model needs inputs and outputs"),
])
def test_unsupported_or_wrong_graphs_say_so(make, message):
    inputs, _, outputs = small_chain()
    with pytest.raises((NotImplementedError, ValueError, TypeError), match=message):
        make(inputs, outputs)


def test_a_tensor_used_twice_or_a_shared_layer_is_not_supported_yet():
    inputs = Input((4,))
    x = Dense(3, name="first")(inputs)
    Dense(2, name="branch")(x)
    outputs = Dense(2, name="main")(x)
    with pytest.raises(NotImplementedError, match="feeds 2 layers .*branching"):
        Model(inputs, outputs)
    inputs = Input((3,))
    shared = Dense(3)
    with pytest.raises(NotImplementedError, match="used twice"):
        Model(inputs, shared(shared(inputs)))


def test_merge_layers_are_not_supported_yet():
    a, b = Input((4,)), Input((4,))
    with pytest.raises(NotImplementedError, match="2 tensors: .*merge layers"):
        Dense(2)([a, b])


def test_single_element_lists_are_accepted_as_keras_does():
    clear_session()
    inputs, _, outputs = small_chain()
    model = Model(inputs=[inputs], outputs=[outputs], name="chain")
    assert model.name == "chain" and model.output_shape == (None, 3)


def test_models_summary_shows_none_batch(capsys):
    inputs, _, outputs = small_chain()
    Model(inputs, outputs).summary()
    assert "(None, 5, 5, 4)" in capsys.readouterr().out
