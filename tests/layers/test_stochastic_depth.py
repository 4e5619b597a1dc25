"""Tests of keras_reg.layers.stochastic_depth.StochasticDepth."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_reg.layers import StochasticDepth, drop_path_rates
from tests.layers import _checks


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _binomial_tol(p, n, sigmas=5.0):
    return sigmas * math.sqrt(max(p * (1 - p), 1e-12) / n)


def _pair(shape=(6, 4), seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype("float32"), rng.uniform(1, 2, shape).astype("float32")


# ----------------------------------------------------------------------------- generic checks


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_config_round_trip(mode):
    layer = StochasticDepth(0.4, seed=3, scale_by_keep=False, mode=mode, name="sd")
    rebuilt = _checks.check_config_round_trip(layer)
    assert (rebuilt.rate, rebuilt.mode, rebuilt.scale_by_keep) == (pytest.approx(0.4), mode, False)


def test_symbolic_and_eager_shapes():
    _checks.check_symbolic_call(StochasticDepth(0.5, seed=1), [(3, 4, 4, 2), (3, 4, 4, 2)])


def _model(mode="row", depth=3):
    inputs = keras.Input((8,))
    x = keras.layers.Dense(8)(inputs)
    for rate in drop_path_rates(depth, 0.3):
        residual = keras.layers.Dense(8, activation="relu")(x)
        x = StochasticDepth(rate, seed=1, mode=mode)([x, residual])
    return keras.Model(inputs, keras.layers.Dense(1)(x))


def _data(n=8):
    x = np.random.default_rng(1).standard_normal((n, 8)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_keras_file_round_trip(tmp_path, mode):
    model = _model(mode)
    loaded = _checks.check_keras_file_round_trip(model, _data(4)[0], tmp_path)
    rates = [l.rate for l in loaded.layers if isinstance(l, StochasticDepth)]
    np.testing.assert_allclose(rates, drop_path_rates(3, 0.3), atol=1e-7)


def test_export_has_no_random_op(tmp_path):
    _checks.check_export(_model("batch"), _data(4)[0], tmp_path)


def test_jit_compiled_fit():
    _checks.check_jit_fit(_model, *_data())


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    shortcut, residual = _pair((32, 8))
    keras.mixed_precision.set_dtype_policy(policy)
    dtype = policy.split("_")[1]
    layer = StochasticDepth(0.5, seed=2)
    out = layer([keras.ops.cast(shortcut, dtype), keras.ops.cast(residual, dtype)], training=True)
    assert keras.backend.standardize_dtype(out.dtype) == dtype
    assert layer.rate_variable.dtype == "float32"
    s = _np(keras.ops.cast(keras.ops.cast(shortcut, dtype), "float32"))
    r = _np(keras.ops.cast(keras.ops.cast(residual, dtype), "float32"))
    out = _np(keras.ops.cast(out, "float32"))
    dropped = np.all(out == s, axis=1)
    assert 0 < dropped.sum() < 32
    expected = _np(keras.ops.cast(keras.ops.cast(s + 2 * r, dtype), "float32"))
    np.testing.assert_allclose(out[~dropped], expected[~dropped], rtol=1e-2)


def test_mirrored_strategy_fit():
    _checks.check_mirrored_fit(_model, *_data())


# ----------------------------------------------------------------------------- row mode


def test_row_mode_drops_whole_samples_with_train_time_scaling():
    shortcut, residual = _pair((20_000, 3))
    out = _np(StochasticDepth(0.2, seed=5)([shortcut, residual], training=True))
    branch = out - shortcut
    dropped = np.all(np.abs(branch) < 1e-6, axis=1)
    assert abs(dropped.mean() - 0.2) < _binomial_tol(0.2, len(out))
    # Survivors: shortcut + residual / (1 - rate), exactly as a per-sample drop_path.
    expected = shortcut + residual / np.float32(0.8)
    np.testing.assert_allclose(out[~dropped], expected[~dropped], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(out[dropped], shortcut[dropped])


def test_row_mode_inference_is_plain_sum():
    shortcut, residual = _pair()
    layer = StochasticDepth(0.7)
    for training in (None, False):
        out = _np(layer([shortcut, residual], training=training))
        np.testing.assert_array_equal(out, shortcut + residual)


def test_row_mode_without_scale_by_keep():
    shortcut, residual = _pair((2000, 2))
    layer = StochasticDepth(0.5, seed=1, scale_by_keep=False)
    out = _np(layer([shortcut, residual], training=True))
    kept = np.any(np.abs(out - shortcut) > 1e-6, axis=1)
    np.testing.assert_array_equal(out[kept], (shortcut + residual)[kept])
    assert abs((~kept).mean() - 0.5) < _binomial_tol(0.5, 2000)


# ----------------------------------------------------------------------------- batch mode


def test_batch_mode_matches_tensorflow_addons_semantics():
    """tfa / keras-cv: train `s + b r`, b ~ Bernoulli(1 - rate) per call; test `s + (1-rate) r`."""
    shortcut, residual = _pair((5, 3))
    layer = StochasticDepth(0.3, seed=7, mode="batch")
    step = tf.function(lambda s, r: layer([s, r], training=True))
    kept = []
    for _ in range(400):
        out = step(shortcut, residual).numpy()
        whole_kept = np.array_equal(out, shortcut + residual)
        # The branch is kept or dropped for the whole batch.
        assert whole_kept or np.array_equal(out, shortcut)
        kept.append(whole_kept)
    assert abs(1 - np.mean(kept) - 0.3) < _binomial_tol(0.3, 400)
    expected = shortcut + np.float32(0.7) * residual
    np.testing.assert_allclose(_np(layer([shortcut, residual])), expected, rtol=1e-6)


def test_batch_mode_without_scale_by_keep_is_plain_sum_at_inference():
    shortcut, residual = _pair()
    layer = StochasticDepth(0.3, mode="batch", scale_by_keep=False)
    np.testing.assert_array_equal(_np(layer([shortcut, residual])), shortcut + residual)


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_rate_one_gives_shortcut_and_finite_gradients(mode):
    shortcut, residual = (tf.constant(a) for a in _pair((100, 4)))
    with tf.GradientTape() as tape:
        tape.watch(residual)
        out = StochasticDepth(1.0, seed=3, mode=mode)([shortcut, residual], training=True)
        loss = tf.reduce_sum(out)
    np.testing.assert_array_equal(out.numpy(), shortcut.numpy())
    np.testing.assert_array_equal(tape.gradient(loss, residual).numpy(), 0.0)


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_rate_zero_is_plain_sum_in_training(mode):
    shortcut, residual = _pair()
    out = _np(StochasticDepth(0.0, mode=mode)([shortcut, residual], training=True))
    np.testing.assert_array_equal(out, shortcut + residual)


def test_seeded_reproducibility():
    shortcut, residual = _pair((64, 2))
    a = _np(StochasticDepth(0.5, seed=4)([shortcut, residual], training=True))
    b = _np(StochasticDepth(0.5, seed=4)([shortcut, residual], training=True))
    np.testing.assert_array_equal(a, b)


def test_rate_change_takes_effect_without_retracing():
    layer = StochasticDepth(0.0, seed=1)
    traces = []

    @tf.function
    def step(s, r):
        traces.append(1)
        return layer([s, r], training=True)

    shortcut, residual = tf.zeros((500, 2)), tf.ones((500, 2))
    np.testing.assert_array_equal(step(shortcut, residual).numpy(), 1.0)
    layer.rate = 1.0
    np.testing.assert_array_equal(step(shortcut, residual).numpy(), 0.0)
    layer.rate = 0.5
    out = step(shortcut, residual).numpy()
    assert set(np.unique(out).tolist()) == {0.0, 2.0}
    assert len(traces) == 1


# ----------------------------------------------------------------------------- validation


def test_single_tensor_input_is_rejected():
    with pytest.raises(ValueError, match="inputs"):
        StochasticDepth(0.1)(keras.Input((3,)))


def test_three_inputs_are_rejected():
    with pytest.raises(ValueError, match="inputs"):
        StochasticDepth(0.1)([keras.Input((3,))] * 3)


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="inputs"):
        StochasticDepth(0.1)([keras.Input((3,)), keras.Input((4,))])


@pytest.mark.parametrize("rate", [-1.0, 2.0, float("nan")])
def test_invalid_rate(rate):
    with pytest.raises(ValueError, match="rate"):
        StochasticDepth(rate)


def test_invalid_mode():
    with pytest.raises(ValueError, match="mode"):
        StochasticDepth(0.1, mode="sample")


def test_invalid_scale_by_keep():
    with pytest.raises(TypeError, match="scale_by_keep"):
        StochasticDepth(0.1, scale_by_keep=1)
