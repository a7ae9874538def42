"""Adam, AdamW, Nadam, Adagrad, clipping, weight decay, learning-rate schedules, Keras 2's
``lr=`` and the optimizer state in model files (issues 16 and 17).

Each update rule is checked against an independent float64 transcription of Keras 3's
formulas: on float64 parameters (the optimizers' array code in float64, equal to a few
float64 roundings) and on float32 ones (the fused CPU kernels, within float32 bounds).
"""
import json
import math
import warnings

import numpy as np
import pytest

from minicnn import Dense, Sequential, load_model
from minicnn.backend import to_device, to_numpy
from minicnn.optimizers import (SGD, Adagrad, Adam, AdamW, Nadam, RMSprop, base, from_config,
                                get, schedules)

from float32_error import EPS32


class FakeLayer:
    """What an optimizer reads of a layer: name, trainable, params, grads."""

    def __init__(self, params, name="dense"):
        self.name, self.trainable = name, True
        self.params, self.grads = params, {}


def _run(optimizer, w0, grads, dtype):
    layer = FakeLayer({"kernel": to_device(np.array(w0), dtype=dtype)})   # w0 stays
    for g in grads:
        layer.grads = {"kernel": to_device(g, dtype=dtype)}
        optimizer.apply([layer])
    return to_numpy(layer.params["kernel"]).astype(np.float64)


# -- independent float64 transcriptions of Keras 3's update_step ----------------------
def adam_reference(w, grads, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                   weight_decay=None):
    m, v, v_hat = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for step, g in enumerate(grads):
        if weight_decay is not None:
            w = w - w * weight_decay * lr
        t = step + 1
        alpha = lr * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
        m = m + (g - m) * (1 - beta_1)
        v = v + (g * g - v) * (1 - beta_2)
        if amsgrad:
            v_hat = np.maximum(v_hat, v)
        w = w - m * alpha / (np.sqrt(v_hat if amsgrad else v) + epsilon)
    return w


def nadam_reference(w, grads, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    m, v, u_product = np.zeros_like(w), np.zeros_like(w), 1.0
    for step, g in enumerate(grads):
        t = step + 1
        u_t = beta_1 * (1 - 0.5 * 0.96 ** t)
        u_t1 = beta_1 * (1 - 0.5 * 0.96 ** (t + 1))
        u_product = u_product * u_t
        m = m + (g - m) * (1 - beta_1)
        v = v + (g * g - v) * (1 - beta_2)
        m_hat = u_t1 * m / (1 - u_product * u_t1) + (1 - u_t) * g / (1 - u_product)
        v_hat = v / (1 - beta_2 ** t)
        w = w - m_hat * lr / (np.sqrt(v_hat) + epsilon)
    return w


def adagrad_reference(w, grads, lr, initial_accumulator_value=0.1, epsilon=1e-7):
    a = np.full_like(w, initial_accumulator_value)
    for g in grads:
        a = a + g * g
        w = w - lr * g / np.sqrt(a + epsilon)
    return w


RULES = [
    ("Adam", lambda: Adam(0.05), lambda w, gs: adam_reference(w, gs, 0.05)),
    ("Adam amsgrad", lambda: Adam(0.05, amsgrad=True),
     lambda w, gs: adam_reference(w, gs, 0.05, amsgrad=True)),
    ("Adam epsilon 0.3", lambda: Adam(0.05, beta_1=0.5, beta_2=0.8, epsilon=0.3),
     lambda w, gs: adam_reference(w, gs, 0.05, 0.5, 0.8, 0.3)),
    ("AdamW", lambda: AdamW(0.05, weight_decay=0.2),
     lambda w, gs: adam_reference(w, gs, 0.05, weight_decay=0.2)),
    ("Nadam", lambda: Nadam(0.05), lambda w, gs: nadam_reference(w, gs, 0.05)),
    ("Nadam betas", lambda: Nadam(0.05, beta_1=0.5, beta_2=0.8, epsilon=0.3),
     lambda w, gs: nadam_reference(w, gs, 0.05, 0.5, 0.8, 0.3)),
    ("Adagrad", lambda: Adagrad(0.05), lambda w, gs: adagrad_reference(w, gs, 0.05)),
    ("Adagrad settings", lambda: Adagrad(0.05, initial_accumulator_value=1.0, epsilon=0.3),
     lambda w, gs: adagrad_reference(w, gs, 0.05, 1.0, 0.3)),
]


def _problem(shape=(30, 20), steps=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape), [rng.standard_normal(shape) for _ in range(steps)]


@pytest.mark.parametrize("name,make,reference", RULES, ids=[r[0] for r in RULES])
def test_update_rules_in_float64(name, make, reference):
    w0, grads = _problem()
    got = _run(make(), w0, grads, np.float64)
    expected = reference(w0, grads)
    assert np.max(np.abs(got - w0)) > 0.05          # it moved, by several steps
    # float64: the same formulas with the scalars grouped differently, ~10 roundings a
    # step of eps64 (2.2e-16) relative to |w| + |step|: 1e-12 leaves a wide margin
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name,make,reference", RULES, ids=[r[0] for r in RULES])
@pytest.mark.parametrize("shape", [(30, 20), (300, 700)])   # large: fused, threaded kernel
def test_update_rules_in_float32(name, make, reference, shape, device):
    w0, grads = _problem(shape, steps=4)
    got = _run(make(), w0, grads, np.float32)
    expected = reference(w0.astype(np.float32).astype(np.float64),
                         [g.astype(np.float32).astype(np.float64) for g in grads])
    # Each step rounds ~12 times in float32 (the operations of the rule, each within
    # eps32/2 relative); the step's own value is at most lr / (1 - beta_1) * sqrt(1 -
    # beta_2) ... < 0.3 in these settings and enters |w| + |step|. 4 steps * 12 roundings
    # * eps32 * (|w0| + 4 * 0.3) bounds the drift, elementwise.
    bound = 4 * 12 * EPS32 * (np.abs(w0) + 4 * 0.3)
    assert np.all(np.abs(got - expected) <= bound), np.max(np.abs(got - expected) - bound)


# -- clipping and weight decay, in Keras's order ------------------------------------------
def _two_params(rng):
    params = {"kernel": rng.standard_normal((4, 3)), "bias": rng.standard_normal(3)}
    grads = {"kernel": 3 * rng.standard_normal((4, 3)), "bias": 3 * rng.standard_normal(3)}
    return params, grads


@pytest.mark.parametrize("clip", ["clipnorm", "clipvalue", "global_clipnorm"])
def test_clipping_then_weight_decay_then_the_update(clip):
    rng = np.random.default_rng(3)
    params, grads = _two_params(rng)
    layer = FakeLayer({k: v.copy() for k, v in params.items()})
    layer.grads = {k: v.copy() for k, v in grads.items()}
    lr, wd, bound = 0.1, 0.3, 1.5
    SGD(lr, weight_decay=wd, **{clip: bound}).apply([layer])
    if clip == "clipnorm":
        clipped = {k: g * bound / max(np.linalg.norm(g), bound) for k, g in grads.items()}
    elif clip == "clipvalue":
        clipped = {k: np.clip(g, -bound, bound) for k, g in grads.items()}
    else:
        norm = math.sqrt(sum(np.sum(g * g) for g in grads.values()))
        clipped = {k: g * bound / max(norm, bound) for k, g in grads.items()}
    for key, w in params.items():
        expected = (w - w * wd * lr) - lr * clipped[key]
        # float64, a handful of roundings
        np.testing.assert_allclose(layer.params[key], expected, rtol=1e-13, atol=1e-14)
        # the gradients a callback or a test may read next are left as they were
        np.testing.assert_array_equal(layer.grads[key], grads[key])
    assert not np.allclose(clipped["kernel"], grads["kernel"])   # the bound did bind


def test_clipping_leaves_small_gradients_alone_and_makes_a_non_finite_norm_nan():
    g = np.array([0.3, -0.4])                    # norm 0.5
    np.testing.assert_array_equal(base.clip_by_norm(g, 1.0), g)
    np.testing.assert_array_equal(base.clip_by_norm(np.zeros(3), 1.0), 0.0)
    np.testing.assert_array_equal(base.clip_by_global_norm([g, g], 1.0)[0], g)
    inf = [np.array([np.inf, 1.0]), np.array([2.0])]
    # as Keras: an overflowed gradient shows as NaN rather than being scaled to zero
    assert all(np.isnan(c).all() for c in base.clip_by_global_norm(inf, 1.0))


def test_only_one_clipping_and_settings_in_range():
    with pytest.raises(ValueError, match=r"only one of clipnorm, clipvalue and global_clipnorm"
                                         r".*clipnorm=1.0, clipvalue=0.5"):
        Adam(clipnorm=1.0, clipvalue=0.5)
    with pytest.raises(ValueError, match=r"clipnorm must be a finite number in \(0, .*got -1"):
        Adam(clipnorm=-1)
    with pytest.raises(ValueError, match=r"beta_1 must be a finite number in \[0, 1\), got 1"):
        Nadam(beta_1=1)
    with pytest.raises(ValueError, match=r"weight_decay must be.*got -0.1"):
        Adagrad(weight_decay=-0.1)
    with pytest.raises(ValueError, match="AdamW's weight_decay must be a number.*None"):
        AdamW(weight_decay=None)
    with pytest.raises(TypeError, match=r"Adam got unexpected argument\(s\) \['use_ema'\]: "
                                        r"minicnn's Adam takes \['learning_rate', 'beta_1'"):
        Adam(use_ema=True)


# -- the learning rate: a float, a schedule, Keras 2's lr= --------------------------------
def test_learning_rate_reads_and_sets_as_a_float():
    optimizer = Adam(0.01)
    assert optimizer.learning_rate == 0.01 and isinstance(optimizer.learning_rate, float)
    optimizer.learning_rate = np.float32(0.5)       # what a callback computes
    assert optimizer.learning_rate == 0.5
    optimizer.learning_rate *= 0.1
    assert float(optimizer.learning_rate) == pytest.approx(0.05, rel=1e-15)
    with pytest.raises(ValueError, match=r"learning_rate must be a finite number.*got -1"):
        optimizer.learning_rate = -1
    with pytest.raises(TypeError, match="learning_rate must be a number, got 'fast'"):
        optimizer.learning_rate = "fast"


def test_sgd_decay_divides_the_settable_rate_as_keras_2_did():
    optimizer = SGD(0.1, decay=0.5)
    optimizer.iterations = 2
    assert optimizer.learning_rate == 0.1
    assert optimizer.current_learning_rate() == pytest.approx(0.1 / 2)
    optimizer.learning_rate = 0.2                   # ReduceLROnPlateau sets the base rate
    assert optimizer.current_learning_rate() == pytest.approx(0.2 / 2)


def test_a_schedule_is_evaluated_at_iterations_and_cannot_be_set():
    schedule = schedules.PiecewiseConstantDecay([1, 2], [0.3, 0.2, 0.1])
    optimizer = SGD(schedule)
    rates = []
    layer = FakeLayer({"kernel": np.zeros(2)})
    for _ in range(4):
        rates.append(optimizer.learning_rate)
        layer.grads = {"kernel": -np.ones(2)}
        optimizer.apply([layer])
    assert rates == [0.3, 0.3, 0.2, 0.1]            # steps 0, 1 <= 1; 2 <= 2; then last
    np.testing.assert_allclose(layer.params["kernel"], sum(rates))   # each step used it
    with pytest.raises(TypeError, match=r"created with a learning-rate schedule "
                                        r"\(PiecewiseConstantDecay\(.*cannot be set to 0.5"):
        optimizer.learning_rate = 0.5
    optimizer.learning_rate = schedules.ExponentialDecay(1.0, 1, 0.5)   # as Keras allows
    assert optimizer.learning_rate == 0.5 ** 4


@pytest.mark.parametrize("cls", [SGD, RMSprop, Adam, AdamW, Nadam, Adagrad])
def test_keras_2_lr_is_accepted_warning_once(cls, monkeypatch):
    monkeypatch.setattr(base, "_warned_lr", False)
    with pytest.warns(UserWarning, match=rf"{cls.__name__}\(lr=...\): 'lr' is Keras 2's "
                                         r"name.*use learning_rate=") as record:
        optimizer = cls(lr=0.02)
    assert record[0].filename == __file__            # it points at the caller's line
    assert optimizer.learning_rate == 0.02
    with warnings.catch_warnings():
        warnings.simplefilter("error")               # once per process
        assert cls(lr=0.03).learning_rate == 0.03
    with pytest.raises(ValueError, match=r"give learning_rate= or Keras 2's lr=, not both "
                                         r"\(got learning_rate=0.1, lr=0.2\)"):
        cls(0.1, lr=0.2)


# -- configs, names, state in files -------------------------------------------------------
CONFIGURED = [SGD(0.05, momentum=0.9, nesterov=True, decay=0.01, clipnorm=2.0),
              RMSprop(schedules.ExponentialDecay(0.1, 10, 0.9, staircase=True), rho=0.8),
              Adam(0.002, beta_1=0.8, amsgrad=True, global_clipnorm=1.0, weight_decay=0.1),
              AdamW(schedules.CosineDecay(0.0, 100, alpha=0.1, warmup_target=0.01,
                                          warmup_steps=10), clipvalue=0.5),
              Nadam(schedules.PiecewiseConstantDecay([10, 20], [0.1, 0.01, 0.001]),
                    epsilon=1e-5),
              Adagrad(0.1, initial_accumulator_value=0.5, weight_decay=0.01)]


@pytest.mark.parametrize("optimizer", CONFIGURED, ids=lambda o: type(o).__name__)
def test_get_config_round_trips_through_json(optimizer):
    config = json.loads(json.dumps(optimizer.get_config()))
    again = from_config(optimizer.name, config)
    assert type(again) is type(optimizer)
    assert again.get_config() == optimizer.get_config()
    for step in (0, 15, 200):
        optimizer.iterations = again.iterations = step
        assert again.learning_rate == optimizer.learning_rate


def test_names_give_keras_defaults():
    assert get("adam").get_config() == {
        "learning_rate": 0.001, "weight_decay": None, "clipnorm": None, "clipvalue": None,
        "global_clipnorm": None, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7,
        "amsgrad": False}
    assert get("AdamW").weight_decay == 0.004
    assert get("adagrad").initial_accumulator_value == 0.1
    assert isinstance(get("nadam"), Nadam)
    with pytest.raises(ValueError, match=r"cannot use the settings.*'rho'"):
        from_config("adam", {"rho": 0.9})
    with pytest.raises(ValueError, match=r"unknown learning-rate schedule.*'StepDecay'"):
        from_config("adam", {"learning_rate": {"class_name": "StepDecay", "config": {}}})


def _data():
    rng = np.random.default_rng(7)
    return rng.standard_normal((8, 5)).astype(np.float32), \
        np.eye(3, dtype=np.float32)[rng.integers(0, 3, 8)]


def _model(optimizer):
    model = Sequential([Dense(6, activation="relu", input_shape=(5,), name="hidden", seed=1),
                        Dense(3, activation="softmax", name="out", seed=2)])
    model.compile(optimizer, "categorical_crossentropy", ["accuracy"])
    return model


def test_compile_takes_the_new_names():
    x, y = _data()
    for name in ("adam", "adamw", "nadam", "adagrad"):
        model = _model(name)
        before = model.get_weights()
        model.train_on_batch(x, y)
        assert model.optimizer.iterations == 1
        assert not np.array_equal(model.get_weights()[0], before[0])


@pytest.mark.parametrize("make", [
    lambda: Adam(0.01, amsgrad=True, clipnorm=1.0),
    lambda: AdamW(schedules.CosineDecay(0.0, 6, warmup_target=0.02, warmup_steps=2)),
    lambda: Nadam(0.01, global_clipnorm=0.5),
    lambda: Adagrad(0.05, weight_decay=0.01),
], ids=["Adam", "AdamW", "Nadam", "Adagrad"])
def test_saved_and_loaded_continues_exactly_as_the_original(make, tmp_path):
    """Two steps, save, load, three more: the same weights as five steps without the file
    (slots, Nadam's u_product and the iterations that schedules and bias corrections use)."""
    x, y = _data()
    model = _model(make())
    for _ in range(2):
        model.train_on_batch(x, y)
    model.save(tmp_path / "m.h5")
    restored = load_model(tmp_path / "m.h5")
    assert type(restored.optimizer) is type(model.optimizer)
    assert restored.optimizer.get_config() == model.optimizer.get_config()
    assert restored.optimizer.iterations == 2
    assert restored.optimizer.scalars == model.optimizer.scalars
    for _ in range(3):
        model.train_on_batch(x, y)
        restored.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), restored.get_weights()):
        # float32 slots and weights are stored and read back exactly; the same steps on
        # the same machine give the same numbers
        np.testing.assert_array_equal(a, b)


def test_nadam_state_without_u_product_and_unknown_slots_are_refused(tmp_path):
    import h5py
    x, y = _data()
    model = _model(Nadam(0.01))
    model.train_on_batch(x, y)
    path = tmp_path / "m.h5"
    model.save(path)
    with h5py.File(path, "a") as f:
        assert f["optimizer_state"].attrs["u_product"] == model.optimizer.scalars["u_product"]
        del f["optimizer_state"].attrs["u_product"]
    with pytest.raises(ValueError, match=r"Nadam's state has the scalars \['u_product'\], "
                                         r"got \[\]"):
        load_model(path)
    optimizer = Adam()
    with pytest.raises(ValueError, match=r"slot 'velocity_hat' of layer 'out', .*shape "
                                         r"\(2, 3\) but the parameter has shape \(6, 3\)"):
        optimizer.set_state({"iterations": 1, "slots": {
            "out/kernel/velocity_hat": np.zeros((2, 3))}}, layers=model.layers)
    with pytest.raises(ValueError, match=r"'out/kernel/accumulator': Adam keeps the slots "
                                         r"\['momentum', 'velocity', 'velocity_hat'\]"):
        optimizer.set_state({"iterations": 1, "slots": {
            "out/kernel/accumulator": np.zeros((6, 3))}}, layers=model.layers)
