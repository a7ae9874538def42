"""The FLOP counts behind the benchmark's GFLOP/s columns, checked by hand."""
import pytest

import minicnn

run = pytest.importorskip("benchmarks.run", reason="needs a source checkout (benchmarks/)")


def _net():
    model = minicnn.Sequential([
        minicnn.Conv2D(4, 3, activation="relu", input_shape=(10, 10, 3)),   # -> 8x8x4
        minicnn.MaxPooling2D(),                                             # -> 4x4x4
        minicnn.Conv2D(6, 3, padding="same"),                               # -> 4x4x6
        minicnn.Flatten(),
        minicnn.Dense(5),
    ])
    model.build((10, 10, 3))
    return model


def test_layer_flops_count_two_per_multiply_add():
    model = _net()
    assert run.layer_flops(model.layers[0], 2) == (2 * 2 * 8 * 8 * 27 * 4, 2 * 2 * 2 * 8 * 8 * 27 * 4)
    assert run.layer_flops(model.layers[2], 1) == (2 * 4 * 4 * 36 * 6, 4 * 4 * 4 * 36 * 6)
    assert run.layer_flops(model.layers[4], 1) == (2 * 96 * 5, 4 * 96 * 5)
    assert run.layer_flops(model.layers[1], 1) == (0, 0)


def test_workload_flops_skip_the_first_layers_input_gradient_in_training():
    model = _net()
    forward = 2 * (8 * 8 * 27 * 4 + 4 * 4 * 36 * 6 + 96 * 5)
    backward = 2 * 8 * 8 * 27 * 4 + 4 * (4 * 4 * 36 * 6 + 96 * 5)
    assert run.workload_flops("tutorial", model) == {"tutorial_train": forward + backward,
                                                     "tutorial_infer": forward}
    assert run.workload_flops("vgg16", model) == {"vgg16_extract": forward}
