"""Tests of keras_reg.layers.drop_path: DropPath, drop_path and drop_path_rates."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_reg.layers import DropPath, drop_path, drop_path_rates
from tests.layers import _checks


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _binomial_tol(p, n, sigmas=5.0):
    return sigmas * math.sqrt(max(p * (1 - p), 1e-12) / n)


def _per_sample(y):
    """(batch, features) view of y."""
    return y.reshape(y.shape[0], -1)


# ----------------------------------------------------------------------------- generic checks


def test_config_round_trip():
    layer = DropPath(0.2, seed=5, scale_by_keep=False, name="dp")
    rebuilt = _checks.check_config_round_trip(layer)
    assert (rebuilt.rate, rebuilt.seed, rebuilt.scale_by_keep) == (pytest.approx(0.2), 5, False)


def test_symbolic_and_eager_shapes():
    _checks.check_symbolic_call(DropPath(0.5, seed=1), (3, 4, 4, 2))


def _model():
    inputs = keras.Input((4, 4, 3))
    branch = keras.layers.Conv2D(3, 3, padding="same")(inputs)
    branch = DropPath(0.3, seed=2)(branch)
    outputs = keras.layers.Dense(1)(keras.layers.Flatten()(keras.layers.Add()([inputs, branch])))
    return keras.Model(inputs, outputs)


def _data(n=8):
    x = np.random.default_rng(0).standard_normal((n, 4, 4, 3)).astype("float32")
    return x, x.mean(axis=(1, 2, 3))[:, None]


def test_keras_file_round_trip_sequential(tmp_path):
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4), DropPath(0.5, seed=1)])
    model.layers[-1].rate = 0.25
    loaded = _checks.check_keras_file_round_trip(model, np.ones((3, 5), "float32"), tmp_path)
    assert loaded.layers[-1].rate == pytest.approx(0.25)


def test_export_has_no_random_op(tmp_path):
    x, _ = _data(4)
    _checks.check_export(_model(), x, tmp_path)


def test_jit_compiled_fit():
    _checks.check_jit_fit(_model, *_data())


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    x = np.random.default_rng(1).uniform(1, 2, (64, 8)).astype("float32")
    train, infer = _checks.check_mixed_precision(lambda: DropPath(0.5, seed=3), x, policy)
    half = _np(keras.ops.cast(keras.ops.cast(x, policy.split("_")[1]), "float32"))
    np.testing.assert_array_equal(infer, half)
    kept = train[:, 0] != 0
    assert 0 < kept.sum() < 64
    np.testing.assert_array_equal(train[~kept], 0.0)
    expected = _np(keras.ops.cast(keras.ops.cast(2.0 * half, policy.split("_")[1]), "float32"))
    np.testing.assert_array_equal(train[kept], expected[kept])


def test_mirrored_strategy_fit():
    _checks.check_mirrored_fit(_model, *_data())


# ----------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_whole_samples_dropped_at_rate_and_survivors_scaled(rate):
    x = np.random.default_rng(2).uniform(1, 2, (20_000, 3, 2)).astype("float32")
    y = _per_sample(_np(DropPath(rate, seed=4)(x, training=True)))
    xs = _per_sample(x)
    dropped = np.all(y == 0, axis=1)
    # Every sample is either all zero or all scaled by exactly 1/(1-rate).
    scale = np.float32(1.0) / (np.float32(1.0) - np.float32(rate))
    np.testing.assert_allclose(y[~dropped], xs[~dropped] * scale, rtol=1e-6)
    assert abs(dropped.mean() - rate) < _binomial_tol(rate, len(y))


def test_mean_preserved_against_timm_formula():
    """Same distribution as timm's `x / keep * floor(keep + U)`: E[y] = x."""
    x = np.full((40_000, 4), 2.0, "float32")
    y = _np(drop_path(x, 0.3, seed=7, training=True))
    rng = np.random.default_rng(0)
    reference = x / 0.7 * np.floor(0.7 + rng.uniform(size=(40_000, 1)))
    tol = 2.0 / 0.7 * _binomial_tol(0.3, len(x))
    assert abs(y.mean() - 2.0) < tol
    assert abs(y.mean() - reference.mean()) < 2 * tol


def test_without_scale_by_keep_survivors_unchanged():
    x = np.random.default_rng(3).standard_normal((500, 6)).astype("float32")
    y = _np(DropPath(0.4, seed=1, scale_by_keep=False)(x, training=True))
    kept = np.any(y != 0, axis=1)
    np.testing.assert_array_equal(y[kept], x[kept])
    np.testing.assert_array_equal(y[~kept], 0.0)
    assert abs((~kept).mean() - 0.4) < _binomial_tol(0.4, 500)


def test_inference_is_exact_identity():
    x = np.random.default_rng(4).standard_normal((6, 3, 3)).astype("float32")
    layer = DropPath(0.9)
    for training in (None, False):
        np.testing.assert_array_equal(_np(layer(x, training=training)), x)
    np.testing.assert_array_equal(_np(drop_path(x, 0.9)), x)


def test_rate_zero_is_identity_in_training():
    x = np.random.default_rng(5).standard_normal((64, 7)).astype("float32")
    np.testing.assert_array_equal(_np(DropPath(0.0)(x, training=True)), x)


def test_rate_one_gives_zeros_and_finite_gradients():
    x = tf.constant(np.random.default_rng(6).standard_normal((1000, 5)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = DropPath(1.0, seed=2)(x, training=True)
        loss = tf.reduce_sum(y)
    np.testing.assert_array_equal(y.numpy(), 0.0)
    np.testing.assert_array_equal(tape.gradient(loss, x).numpy(), 0.0)


def test_seeded_reproducibility():
    x = np.ones((64, 3), "float32")
    first = _np(DropPath(0.5, seed=9)(x, training=True))
    np.testing.assert_array_equal(first, _np(DropPath(0.5, seed=9)(x, training=True)))
    layer = DropPath(0.5, seed=9)
    assert not np.array_equal(_np(layer(x, training=True)), _np(layer(x, training=True)))


def test_mixed_bfloat16_keep_rate_is_exact():
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    x = np.ones((400_000, 1), "float32")
    y = _np(keras.ops.cast(DropPath(0.05, seed=3)(x, training=True), "float32"))
    assert abs((y != 0).mean() - 0.95) < _binomial_tol(0.05, len(x))  # 1.7e-3 < 0.005


def test_rate_change_takes_effect_without_retracing():
    layer = DropPath(0.0, seed=1)
    traces = []

    @tf.function
    def step(x):
        traces.append(1)
        return layer(x, training=True)

    x = tf.ones((2000, 3))
    np.testing.assert_array_equal(step(x).numpy(), 1.0)
    layer.rate = 1.0
    np.testing.assert_array_equal(step(x).numpy(), 0.0)
    layer.rate = 0.5
    assert abs((step(x).numpy()[:, 0] == 0).mean() - 0.5) < _binomial_tol(0.5, 2000)
    assert len(traces) == 1


# ----------------------------------------------------------------------------- drop_path_rates


def test_drop_path_rates_linear():
    np.testing.assert_allclose(drop_path_rates(12, 0.3), np.linspace(0, 0.3, 12), atol=1e-12)
    np.testing.assert_allclose(drop_path_rates(4, 0.5, 0.1), np.linspace(0.1, 0.5, 4), atol=1e-12)
    rates = drop_path_rates(7, 0.2, min_rate=0.05)
    assert rates[0] == 0.05 and rates[-1] == 0.2 and len(rates) == 7
    assert all(isinstance(r, float) for r in rates)


def test_drop_path_rates_single_block_gets_max_rate():
    assert drop_path_rates(1, 0.3) == [0.3]


def test_drop_path_rates_invalid_depth():
    with pytest.raises(ValueError, match="depth"):
        drop_path_rates(0, 0.1)


def test_drop_path_rates_non_integer_depth():
    with pytest.raises(TypeError, match="depth"):
        drop_path_rates(2.5, 0.1)


def test_drop_path_rates_invalid_max_rate():
    with pytest.raises(ValueError, match="max_rate"):
        drop_path_rates(3, 1.5)


def test_drop_path_rates_invalid_min_rate():
    with pytest.raises(ValueError, match="min_rate"):
        drop_path_rates(3, 0.5, min_rate=-0.1)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("rate", [-0.5, 1.01, float("nan")])
def test_invalid_rate(rate):
    with pytest.raises(ValueError, match="rate"):
        DropPath(rate)


def test_invalid_rate_setter():
    layer = DropPath(0.1)
    with pytest.raises(ValueError, match="rate"):
        layer.rate = float("nan")


def test_invalid_scale_by_keep():
    with pytest.raises(TypeError, match="scale_by_keep"):
        DropPath(0.1, scale_by_keep="yes")


def test_invalid_seed():
    with pytest.raises(TypeError, match="seed"):
        DropPath(0.1, seed="abc")
