"""Tests for keras_reg.regularizers L1 / L2 / L1L2: penalties against NumPy and Keras, the strength
variable, serialization, validation."""

import copy
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_reg import regularizers


def _weights(seed=0, shape=(5, 3)):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


# ------------------------------------------------------------------ penalties against references


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda: regularizers.l2(0.03), lambda: keras.regularizers.L2(0.03)),
        (lambda: regularizers.l1(0.03), lambda: keras.regularizers.L1(0.03)),
        (
            lambda: regularizers.l1_l2(l1=0.02, l2=0.07),
            lambda: keras.regularizers.L1L2(l1=0.02, l2=0.07),
        ),
    ],
)
def test_penalty_equals_keras_peer(ours, theirs):
    w = _weights()
    assert float(ours()(w)) == float(theirs()(w))


def test_l2_is_lambda_sum_of_squares_without_half():
    w = _weights(1)
    expected = 0.25 * np.sum(w.astype("float64") ** 2)
    np.testing.assert_allclose(float(regularizers.l2(0.25)(w)), expected, rtol=1e-6)


def test_l1_l2_against_numpy():
    w = _weights(2)
    w64 = w.astype("float64")
    expected = 0.1 * np.abs(w64).sum() + 0.2 * (w64**2).sum()
    np.testing.assert_allclose(
        float(regularizers.l1_l2(l1=0.1, l2=0.2)(w)), expected, rtol=1e-6
    )


def test_defaults_match_keras():
    assert regularizers.l2().l2 == pytest.approx(0.01)
    assert regularizers.l1().l1 == pytest.approx(0.01)
    reg = regularizers.l1_l2()
    assert (reg.l1, reg.l2) == (0.0, 0.0)


# ------------------------------------------------------------------ the strength variable


def test_strength_setter_changes_penalty_and_config():
    reg = regularizers.l2(0.01)
    w = np.ones((2, 2), "float32")
    reg.l2 = 0.5
    assert float(reg(w)) == 2.0
    assert reg.get_config() == {"l2": 0.5}


def test_l1_l2_components_set_independently():
    reg = regularizers.l1_l2(l1=0.0, l2=0.0)
    w = np.array([[-1.0, 2.0]], "float32")
    reg.l1 = 1.0
    assert float(reg(w)) == 3.0
    reg.l2 = 1.0
    assert float(reg(w)) == 8.0
    assert set(reg.strengths) == {"l1", "l2"}


def test_shared_object_shares_the_variable_and_deepcopy_does_not():
    reg = regularizers.l2(0.1)
    clone = copy.deepcopy(reg)
    reg.l2 = 0.2
    assert clone.l2 == pytest.approx(0.1)
    assert clone.l2_variable is not reg.l2_variable


class _TraceCounter(keras.layers.Layer):
    """Identity layer counting how many times its call is traced (Python side effect)."""

    traces = 0

    def call(self, x):
        type(self).traces += 1
        return x


def _lr0_model(reg, jit_compile=False):
    model = keras.Sequential(
        [
            keras.Input((4,)),
            _TraceCounter(),
            keras.layers.Dense(1, kernel_initializer="ones", kernel_regularizer=reg),
        ]
    )
    model.compile(keras.optimizers.SGD(0.0), "mse", jit_compile=jit_compile)
    return model


@pytest.mark.parametrize("jit_compile", [False, True])
def test_strength_change_takes_effect_in_compiled_fit_without_retrace(jit_compile):
    # lr = 0: the data loss is constant, so the loss moves by exactly Δλ·Σw² = Δλ·4.
    reg = regularizers.l2(0.0)
    model = _lr0_model(reg, jit_compile)
    x, y = np.ones((16, 4), "float32"), np.zeros((16, 1), "float32")
    traces = []

    def on_epoch_begin(epoch, logs):
        reg.l2 = [0.0, 0.5, 2.0][epoch]

    def on_epoch_end(epoch, logs):
        traces.append(_TraceCounter.traces)

    callback = keras.callbacks.LambdaCallback(
        on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end
    )
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[callback])
    loss = history.history["loss"]
    assert loss[0] == pytest.approx(16.0)  # (1·4 ones − 0)² = 16
    assert loss[1] - loss[0] == pytest.approx(0.5 * 4)
    assert loss[2] - loss[0] == pytest.approx(2.0 * 4)
    assert traces[0] == traces[-1]  # no retrace after the first epoch


def test_keras_regularizer_bakes_the_float_in(capsys):
    # The reason this module exists: changing Keras's L2.l2 during fit has no effect.
    reg = keras.regularizers.L2(0.0)
    model = _lr0_model(reg)
    x, y = np.ones((16, 4), "float32"), np.zeros((16, 1), "float32")
    callback = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: setattr(reg, "l2", 0.5 * epoch)
    )
    loss = model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[callback])
    assert loss.history["loss"][1] == loss.history["loss"][0]


@pytest.mark.parametrize("create_in_scope", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_mirrored_strategy(create_in_scope, mirrored_strategy):
    strategy = mirrored_strategy
    if create_in_scope:
        with strategy.scope():
            reg = regularizers.l2(0.0)
        assert isinstance(reg.l2_variable.value, tf.distribute.DistributedValues)
    else:
        reg = regularizers.l2(0.0)
    with strategy.scope():
        model = keras.Sequential(
            [
                keras.Input((4,)),
                keras.layers.Dense(1, kernel_initializer="ones", kernel_regularizer=reg),
            ]
        )
        model.compile(keras.optimizers.SGD(0.0), "mse")
    x, y = np.ones((16, 4), "float32"), np.zeros((16, 1), "float32")
    callback = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: setattr(reg, "l2", 0.5 * epoch)
    )
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[callback])
    assert history.history["loss"] == pytest.approx([16.0, 18.0])


# ------------------------------------------------------------------ serialization


@pytest.mark.parametrize(
    "reg", [regularizers.L2(0.3), regularizers.L1(0.2), regularizers.L1L2(0.1, 0.4)]
)
def test_config_round_trip(reg):
    config = keras.regularizers.serialize(reg)
    assert config["registered_name"].startswith("keras_reg>")
    restored = keras.regularizers.deserialize(config)
    assert type(restored) is type(reg)
    assert restored.get_config() == reg.get_config()
    assert restored.strengths.keys() == reg.strengths.keys()
    assert type(reg).from_config(reg.get_config()).get_config() == reg.get_config()


def test_keras_file_round_trip_safe_mode(tmp_path):
    reg = regularizers.l2(0.01)
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4, kernel_regularizer=reg),
            keras.layers.Dense(2, kernel_regularizer=regularizers.l1_l2(0.1, 0.2)),
        ]
    )
    reg.l2 = 0.02  # the current (scheduled) strength is what is saved
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert isinstance(loaded.layers[0].kernel_regularizer, regularizers.L2)
    assert loaded.layers[0].kernel_regularizer.l2 == pytest.approx(0.02)
    assert loaded.layers[1].kernel_regularizer.get_config() == pytest.approx(
        {"l1": 0.1, "l2": 0.2}
    )
    np.testing.assert_allclose(
        float(regularizers.penalty(loaded)), float(regularizers.penalty(model)), rtol=1e-6
    )


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("factory, name", [(regularizers.l2, "l2"), (regularizers.l1, "l1")])
def test_negative_strength_raises(factory, name):
    with pytest.raises(ValueError, match=f"`{name}`.*-0.1"):
        factory(-0.1)


def test_nan_strength_raises():
    with pytest.raises(ValueError, match="`l2`"):
        regularizers.l2(float("nan"))


def test_infinite_strength_raises():
    with pytest.raises(ValueError, match="`l2`"):
        regularizers.l2(math.inf)


def test_non_numeric_strength_raises():
    with pytest.raises(TypeError, match="`l2`"):
        regularizers.l2("0.1")


def test_l1_l2_negative_component_raises():
    with pytest.raises(ValueError, match="`l1`"):
        regularizers.l1_l2(l1=-1.0, l2=0.1)


def test_setter_validates():
    reg = regularizers.l2(0.1)
    with pytest.raises(ValueError, match="`l2`"):
        reg.l2 = -1.0
    assert reg.l2 == pytest.approx(0.1)
