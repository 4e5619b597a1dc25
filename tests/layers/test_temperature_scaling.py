"""keras_reg.layers.TemperatureScaling: generic Keras layer checks, then `softmax(log p / T)`
against NumPy."""

import keras
import numpy as np
import pytest

from keras_reg.layers import TemperatureScaling, temperature_scaling
from tests.layers import _checks


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _probabilities(shape=(6, 5), seed=0):
    return _softmax(np.random.default_rng(seed).normal(size=shape) * 2).astype("float32")


def _model(temperature=0.5):
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax"),
                             TemperatureScaling(temperature)])


# ------------------------------------------------------------------ generic layer checks


def test_config_round_trip_keeps_the_registered_name():
    layer = TemperatureScaling(2.5, epsilon=1e-9, name="ts")
    rebuilt = _checks.check_config_round_trip(layer)
    assert (rebuilt.temperature, rebuilt.epsilon) == (2.5, 1e-9)
    # the registered name is a file format: never renamed
    assert keras.saving.get_registered_name(TemperatureScaling) == "keras_reg>TemperatureScaling"


@pytest.mark.parametrize("shape", [(3, 4), (2, 5, 4)])
def test_symbolic_and_eager_shapes(shape):
    _checks.check_symbolic_call(TemperatureScaling(2.0), shape)


def test_keras_file_round_trip(tmp_path):
    x = np.random.default_rng(1).normal(size=(5, 4)).astype("float32")
    _checks.check_keras_file_round_trip(_model(), x, tmp_path)


def test_export_serves_the_same_outputs_without_random_ops(tmp_path):
    x = np.random.default_rng(1).normal(size=(5, 4)).astype("float32")
    _checks.check_export(_model(), x, tmp_path)


def test_jit_compiled_fit_matches_the_graph_fit():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = np.eye(3)[rng.integers(0, 3, 16)].astype("float32")
    _checks.check_jit_fit(_model, x, y, loss="categorical_crossentropy")


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    p = _probabilities()
    train, infer = _checks.check_mixed_precision(lambda: TemperatureScaling(0.5), p, policy)
    np.testing.assert_array_equal(train, infer)
    expected = _softmax(np.log(p.astype(np.float64)) / 0.5)
    np.testing.assert_allclose(infer, expected, atol=1e-2)  # float16 / bfloat16 rounding


# ------------------------------------------------------------------ behaviour


@pytest.mark.parametrize("temperature", [0.4, 1.0, 3.0])
def test_rescales_probabilities_as_softmax_of_log_p_over_t(temperature):
    p = _probabilities()
    got = keras.ops.convert_to_numpy(TemperatureScaling(temperature)(p))
    expected = _softmax(np.log(p.astype(np.float64)) / temperature)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(got.argmax(axis=1), p.argmax(axis=1))  # accuracy unchanged
    # the same in training and inference, and the same as the pure function
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(TemperatureScaling(temperature)(p, training=True)), got)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(temperature_scaling(p, temperature)), got)


def test_after_a_softmax_it_is_the_softmax_of_the_logits_over_t():
    logits = np.random.default_rng(3).normal(size=(4, 6)).astype("float32") * 3
    inputs = keras.Input((6,))
    model = keras.Model(inputs, TemperatureScaling(2.0)(keras.layers.Softmax()(inputs)))
    np.testing.assert_allclose(model.predict(logits, verbose=0),
                               _softmax(logits.astype(np.float64) / 2.0), rtol=1e-5, atol=1e-7)


def test_a_zero_probability_is_clipped_at_epsilon_not_nan():
    p = np.array([[1.0, 0.0, 0.0]], "float32")
    got = keras.ops.convert_to_numpy(TemperatureScaling(2.0, epsilon=1e-6)(p))
    np.testing.assert_allclose(got, _softmax(np.log([[1.0, 1e-6, 1e-6]]) / 2.0), rtol=1e-5)


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_rejects_a_temperature_that_is_not_positive_and_finite(bad):
    with pytest.raises(ValueError, match="`temperature`"):
        TemperatureScaling(bad)


@pytest.mark.parametrize("bad", [0.0, -1e-3])
def test_rejects_an_epsilon_that_is_not_positive(bad):
    with pytest.raises(ValueError, match="`epsilon`"):
        TemperatureScaling(1.0, epsilon=bad)
