"""Tests of keras_reg.layers.dropout: InvertedDropout and inverted_dropout."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_reg.layers import InvertedDropout, inverted_dropout
from tests.layers import _checks, _philox


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _binomial_tol(p, n, sigmas=5.0):
    return sigmas * math.sqrt(max(p * (1 - p), 1e-12) / n)


# ----------------------------------------------------------------------------- generic checks


def test_config_round_trip():
    layer = InvertedDropout(0.3, noise_shape=(None, 1, 4), seed=7, scaling="test", name="d")
    rebuilt = _checks.check_config_round_trip(layer)
    assert rebuilt.rate == pytest.approx(0.3)
    assert rebuilt.noise_shape == (None, 1, 4)
    assert rebuilt.scaling == "test"
    assert rebuilt.seed == 7


def test_symbolic_and_eager_shapes():
    _checks.check_symbolic_call(InvertedDropout(0.5, seed=1), (3, 5, 2))


def _model(scaling="train", rate=0.25):
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8)(inputs)
    hidden = InvertedDropout(rate, seed=3, scaling=scaling)(hidden)
    return keras.Model(inputs, keras.layers.Dense(1)(hidden))


@pytest.mark.parametrize("scaling", ["train", "test"])
def test_keras_file_round_trip(tmp_path, scaling):
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8),
            InvertedDropout(0.4, noise_shape=(None, 8), seed=1, scaling=scaling),
        ]
    )
    x = np.random.default_rng(0).standard_normal((5, 6)).astype("float32")
    model.layers[-1].rate = 0.3  # a changed rate is saved with the model
    loaded = _checks.check_keras_file_round_trip(model, x, tmp_path)
    assert loaded.layers[-1].rate == pytest.approx(0.3)
    assert loaded.layers[-1].scaling == scaling
    assert loaded.layers[-1].noise_shape == (None, 8)


def test_export_has_no_random_op_and_scaled_inference(tmp_path):
    model = _model(scaling="test", rate=0.5)
    x = np.random.default_rng(1).standard_normal((4, 6)).astype("float32")
    _checks.check_export(model, x, tmp_path)


def test_jit_compiled_fit():
    x = np.random.default_rng(2).standard_normal((16, 6)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    _checks.check_jit_fit(_model, x, y)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    x = np.random.default_rng(3).standard_normal((64, 32)).astype("float32")
    train, infer = _checks.check_mixed_precision(lambda: InvertedDropout(0.5, seed=4), x, policy)
    # Inference is the identity (up to the cast of x); survivors are 2 * x, rounded once.
    half = np.asarray(keras.ops.cast(keras.ops.cast(x, policy.split("_")[1]), "float32"))
    np.testing.assert_array_equal(infer, half)
    kept = train != 0
    expected = _np(keras.ops.cast(keras.ops.cast(2.0 * half, policy.split("_")[1]), "float32"))
    np.testing.assert_array_equal(train[kept], expected[kept])


def test_mirrored_strategy_fit_and_rate_change():
    """After a mirrored `fit` (equal to a single-device fit), a new rate takes effect in every
    replica's training forward pass: the drop fraction and the survivors' scale follow the
    formula of the new rate (binomial tolerance), not the one the model was fitted with."""
    x = np.random.default_rng(4).standard_normal((8, 6)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model = _checks.check_mirrored_fit(_model, x, y)
    layer = next(l for l in model.layers if isinstance(l, InvertedDropout))
    layer.rate = 0.5  # a mirrored variable, assignable after fit
    strategy = model.distribute_strategy
    ones = tf.ones((128, 64))

    @tf.function
    def forward():
        return strategy.run(lambda: layer(ones, training=True))

    outputs = [np.asarray(t) for t in strategy.experimental_local_results(forward())]
    assert len(outputs) == 2
    n = ones.shape[0] * ones.shape[1]
    for out in outputs:
        dropped = out == 0.0
        assert abs(dropped.mean() - 0.5) < _binomial_tol(0.5, n)
        np.testing.assert_allclose(out[~dropped], 2.0, rtol=1e-6)  # 1 / (1 - 0.5)


# ----------------------------------------------------------------------------- statistics


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_fraction_dropped_and_exact_scale(rate):
    n = 200_000
    x = np.full((n // 100, 100), 3.0, "float32")
    y = _np(InvertedDropout(rate, seed=11)(x, training=True))
    dropped = y == 0
    assert abs(dropped.mean() - rate) < _binomial_tol(rate, n)
    # Survivors are scaled exactly by 1/(1-rate) (float32 arithmetic).
    scale = np.float32(1.0) / (np.float32(1.0) - np.float32(rate))
    np.testing.assert_allclose(y[~dropped], np.float32(3.0) * scale, rtol=1e-6)
    # E[y] = x.
    assert abs(y.mean() - 3.0) < 3.0 * scale * _binomial_tol(rate, n)


@pytest.mark.parametrize("rate", [0.1, 0.0016, 0.37, 0.9999, 1e-5])
def test_threshold_is_exact_to_16_bits(rate):
    """The mask against an independent NumPy Philox: unit i is kept iff its 16 random bits are
    >= round(rate * 2**16), so P(drop) is within 2**-17 of `rate`; eager and graph agree."""
    shape = (3, 7, 10)
    x = np.ones(shape, "float32")
    eager = _np(inverted_dropout(x, rate, seed=5, training=True))
    graph = _np(tf.function(lambda t: inverted_dropout(t, rate, seed=5, training=True))(x))
    bits = _philox.stateless_uint32([5, 0], 105).view(np.uint16).reshape(shape)  # 16-bit halves
    threshold = min(round(rate * 2**16), 2**16 - 1)
    expected_kept = bits >= threshold
    np.testing.assert_array_equal(eager != 0, expected_kept)
    np.testing.assert_array_equal(graph, eager)
    assert int((eager == 0).sum()) == int((bits < threshold).sum())
    assert abs(threshold / 2**16 - rate) <= 2**-17 + 1e-12


def test_mean_preserved_against_keras_dropout():
    """Same distribution as keras.layers.Dropout: means and survivor values agree."""
    x = np.random.default_rng(5).uniform(1, 2, (400, 500)).astype("float32")
    ours = _np(InvertedDropout(0.3, seed=1)(x, training=True))
    theirs = _np(keras.layers.Dropout(0.3, seed=1)(x, training=True))
    tol = 5 * x.std() / math.sqrt(x.size) + 2 * _binomial_tol(0.3, x.size)
    assert abs(ours.mean() - x.mean()) < tol
    assert abs(ours.mean() - theirs.mean()) < 2 * tol
    np.testing.assert_allclose(ours[ours != 0], x[ours != 0] / 0.7, rtol=1e-6)


def test_standard_dropout_scaling():
    x = np.random.default_rng(6).uniform(1, 2, (200, 500)).astype("float32")
    layer = InvertedDropout(0.25, seed=2, scaling="test")
    y = _np(layer(x, training=True))
    kept = y != 0
    np.testing.assert_array_equal(y[kept], x[kept])  # no train-time scaling
    assert abs((~kept).mean() - 0.25) < _binomial_tol(0.25, x.size)
    np.testing.assert_array_equal(_np(layer(x, training=False)), x * np.float32(0.75))
    # Expectation in training equals the inference output.
    tol = 5 * x.std() / math.sqrt(x.size) + 2 * _binomial_tol(0.25, x.size)
    assert abs(y.mean() - (x * 0.75).mean()) < tol


def test_inference_is_exact_identity():
    x = np.random.default_rng(7).standard_normal((4, 9)).astype("float32")
    layer = InvertedDropout(0.5)
    for training in (None, False):
        assert _np(layer(x, training=training)) is not None
        np.testing.assert_array_equal(_np(layer(x, training=training)), x)
    np.testing.assert_array_equal(_np(inverted_dropout(x, 0.5)), x)


def test_noise_shape_drops_whole_channels():
    x = np.ones((16, 6, 6, 32), "float32")
    y = _np(InvertedDropout(0.5, noise_shape=(None, 1, 1, None), seed=3)(x, training=True))
    per_channel = y.reshape(16, 36, 32)
    # Each (sample, channel) map is all zero or all 2.
    assert np.all(per_channel.min(axis=1) == per_channel.max(axis=1))
    assert set(np.unique(per_channel).tolist()) == {0.0, 2.0}
    assert abs((per_channel[:, 0] == 0).mean() - 0.5) < _binomial_tol(0.5, 16 * 32)


def test_noise_shape_rank_mismatch_is_rejected():
    with pytest.raises(ValueError, match="noise_shape"):
        InvertedDropout(0.5, noise_shape=(None, 1))(np.ones((2, 3, 4), "float32"))


def test_noise_shape_that_cannot_broadcast_is_rejected():
    with pytest.raises(ValueError, match="noise_shape"):
        InvertedDropout(0.5, noise_shape=(None, 5))(keras.Input((8,)))


def test_rate_zero_is_identity_in_training():
    x = np.random.default_rng(8).standard_normal((50, 40)).astype("float32")
    np.testing.assert_array_equal(_np(InvertedDropout(0.0)(x, training=True)), x)


@pytest.mark.parametrize("scaling", ["train", "test"])
def test_rate_one_gives_zeros_and_finite_gradients(scaling):
    x = tf.constant(np.random.default_rng(9).standard_normal((70, 1000)).astype("float32"))
    layer = InvertedDropout(1.0, seed=1, scaling=scaling)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(y)
    grad = tape.gradient(loss, x)
    np.testing.assert_array_equal(y.numpy(), 0.0)
    np.testing.assert_array_equal(grad.numpy(), 0.0)
    np.testing.assert_array_equal(_np(layer(x, training=False)), 0.0 if scaling == "test" else x)


def test_gradient_is_the_scaled_mask():
    x = tf.constant(np.random.default_rng(10).uniform(1, 2, (30, 40)).astype("float32"))
    weights = tf.constant(np.random.default_rng(11).standard_normal((30, 40)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = InvertedDropout(0.4, seed=5)(x, training=True)
        loss = tf.reduce_sum(y * weights)
    grad = tape.gradient(loss, x).numpy()
    mask = y.numpy() / x.numpy()  # 0 or 1/(1-rate)
    np.testing.assert_allclose(grad, weights.numpy() * mask, rtol=1e-6, atol=0)


def test_seeded_reproducibility():
    x = np.ones((20, 30), "float32")
    a, b = InvertedDropout(0.5, seed=42), InvertedDropout(0.5, seed=42)
    first = _np(a(x, training=True))
    np.testing.assert_array_equal(first, _np(b(x, training=True)))
    # A fresh mask on each call.
    assert not np.array_equal(first, _np(a(x, training=True)))
    np.testing.assert_array_equal(_np(inverted_dropout(x, 0.5, seed=3, training=True)),
                                  _np(inverted_dropout(x, 0.5, seed=3, training=True)))


def test_mixed_bfloat16_keep_rate_is_exact():
    """The mask is decided in float32/integers: 0.95 kept, not bfloat16's 0.945."""
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    x = tf.ones((1000, 1000))
    layer = InvertedDropout(0.05, seed=6)
    eager = layer(x, training=True)
    graph = tf.function(lambda a: layer(a, training=True))(x)  # the fused XLA kernel
    for y in (eager, graph):
        assert y.dtype == tf.bfloat16
        y = _np(keras.ops.cast(y, "float32"))
        assert abs((y != 0).mean() - 0.95) < _binomial_tol(0.05, x.shape.num_elements())  # 1.1e-3
        # Survivors are 1/0.95 rounded once to bfloat16.
        scale = _np(tf.cast(tf.cast(1 / 0.95, tf.bfloat16), tf.float32))
        np.testing.assert_array_equal(np.unique(y[y != 0]), scale)


def test_fit_with_a_smaller_last_batch_and_noise_shape():
    """Graph mode with an unknown batch size: the mask shape is taken from each batch."""
    layer = InvertedDropout(0.5, noise_shape=(None, 1, None), seed=2)
    model = keras.Sequential(
        [keras.Input((3, 4)), layer, keras.layers.Flatten(), keras.layers.Dense(1)]
    )
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((12, 3, 4), "float32")
    history = model.fit(x, np.zeros((12, 1), "float32"), batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    step = tf.function(
        lambda a: layer(a, training=True), input_signature=[tf.TensorSpec([None, 3, 4])]
    )
    for batch in (5, 2):
        y = step(tf.ones((batch, 3, 4))).numpy()
        assert y.shape == (batch, 3, 4)
        assert np.all(y.min(axis=1) == y.max(axis=1))  # one draw per (sample, channel)


def test_rate_change_takes_effect_without_retracing():
    layer = InvertedDropout(0.0, seed=1)
    x = tf.ones((100, 100))
    traces = []

    @tf.function
    def step(x):
        traces.append(1)
        return layer(x, training=True)

    np.testing.assert_array_equal(step(x).numpy(), 1.0)
    layer.rate = 1.0
    np.testing.assert_array_equal(step(x).numpy(), 0.0)
    layer.rate = 0.5
    assert abs((step(x).numpy() == 0).mean() - 0.5) < _binomial_tol(0.5, 10_000)
    assert len(traces) == 1
    assert layer.rate_variable.trainable is False and layer.rate_variable.dtype == "float32"


class _CountingDropout(InvertedDropout):
    """InvertedDropout counting its Python calls: one per trace of the train step."""

    traces = 0

    def call(self, inputs, training=None):
        if training:
            type(self).traces += 1
        return super().call(inputs, training=training)


def test_rate_change_in_compiled_fit():
    """Rate 1 zeroes the Dense input: the kernel stops moving, with no new trace."""
    layer = _CountingDropout(0.0, seed=1)
    model = keras.Sequential([keras.Input((4,)), layer, keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x, y = np.ones((8, 4), "float32"), np.full((8, 1), 5.0, "float32")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    traces = _CountingDropout.traces
    assert traces >= 1
    kernel = model.layers[1].kernel.numpy().copy()
    layer.rate = 1.0
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    np.testing.assert_array_equal(model.layers[1].kernel.numpy(), kernel)
    layer.rate = 0.0
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert not np.array_equal(model.layers[1].kernel.numpy(), kernel)
    assert _CountingDropout.traces == traces


def test_in_sequential_jit_matches_statistics():
    layer = InvertedDropout(0.2, seed=8)
    fn = tf.function(lambda x: layer(x, training=True), jit_compile=True)
    y = fn(tf.ones((500, 200))).numpy()
    assert abs((y == 0).mean() - 0.2) < _binomial_tol(0.2, y.size)
    np.testing.assert_allclose(y[y != 0], 1.25, rtol=1e-6)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan")])
def test_invalid_rate(rate):
    with pytest.raises(ValueError, match="rate"):
        InvertedDropout(rate)


def test_invalid_rate_setter():
    layer = InvertedDropout(0.1)
    with pytest.raises(ValueError, match="rate"):
        layer.rate = 2.0
    assert layer.rate == pytest.approx(0.1)


def test_invalid_rate_in_function():
    with pytest.raises(ValueError, match="rate"):
        inverted_dropout(np.ones((2, 2), "float32"), 1.5, training=True)


def test_invalid_scaling():
    with pytest.raises(ValueError, match="scaling"):
        InvertedDropout(0.1, scaling="inverted")


def test_invalid_noise_shape():
    with pytest.raises(ValueError, match="noise_shape"):
        InvertedDropout(0.1, noise_shape=(None, 0))


def test_invalid_seed():
    with pytest.raises(ValueError, match="seed"):
        InvertedDropout(0.1, seed=-3)


def test_random_op_detector_sees_the_training_graph():
    """The export check's detector finds the (nested, XLA-compiled) random op in training only."""
    layer = InvertedDropout(0.5, seed=1)
    spec = tf.TensorSpec([4, 8])
    train = tf.function(lambda a: layer(a, training=True)).get_concrete_function(spec)
    infer = tf.function(lambda a: layer(a, training=False)).get_concrete_function(spec)
    assert any("Random" in t for t in _checks.random_op_types(train))
    assert _checks.random_op_types(infer) == []


def test_function_takes_a_tf_variable_rate_inside_tf_function():
    # A raw tf.Variable used to reach the custom gradient ("grad_fn must accept `variables`").
    rate = tf.Variable(0.5)
    x = tf.ones((64, 16))
    step = tf.function(lambda x: inverted_dropout(x, rate, seed=1, training=True))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = step(x)
    grad = tape.gradient(y, x)
    np.testing.assert_array_equal(grad.numpy(), y.numpy())  # d(x·mask)/dx = mask (x = 1)
    assert set(np.unique(y.numpy())) == {0.0, 2.0}
    rate.assign(0.0)
    np.testing.assert_array_equal(step(x).numpy(), x.numpy())  # the new rate, no retrace


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("rate", [0.3, 1 - 1e-7])
def test_test_scaling_inference_rounds_once_in_16_bits(dtype, rate):
    """`x · (1 − rate)` at inference is computed in float32 and rounded once to 16 bits: a
    16-bit `1 − rate` (0.69995 for 0.7 in float16) would round twice."""
    x = tf.cast(np.random.default_rng(0).uniform(-6e4, 6e4, (64, 32)), dtype)
    y = InvertedDropout(rate, scaling="test", dtype=dtype)(x, training=False)
    assert y.dtype == x.dtype
    factor = np.float32(1) - np.float32(rate)  # the layer holds its rate in float32
    want = tf.cast(tf.cast(x, tf.float32) * factor, dtype)
    np.testing.assert_array_equal(_np(y), _np(want))
