"""Tests of keras_reg.layers.drop_block: DropBlock and drop_block."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_reg.callbacks import RateScheduler
from keras_reg.layers import DropBlock, drop_block
from keras_reg.layers._rate import rate_tensor, scaled_mask
from keras_reg.layers.drop_block import _seed_rate
from tests.layers import _checks


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _inputs(shape, seed=0):
    """Values in [1, 2): an output unit is 0 exactly when it was dropped."""
    return np.random.default_rng(seed).uniform(1, 2, shape).astype("float32")


def _gamma(rate, height, width, block):
    return rate / block**2 * height * width / ((height - block + 1) * (width - block + 1))


def _dilate(corners, block, height, width):
    """NumPy reference: units covered by a `block x block` square from any True corner.

    `corners` is (batch, height - block + 1, width - block + 1, channels), a square's top-left
    corner; the loop runs over the block's offsets, not over pixels.
    """
    rows, cols = corners.shape[1:3]
    out = np.zeros((corners.shape[0], height, width, corners.shape[3]), bool)
    for di in range(block):
        for dj in range(block):
            out[:, di : di + rows, dj : dj + cols, :] |= corners
    return out


def _reference_mask(shape, rate, block_size, seed):
    """The float32 mask drop_block must produce (NHWC), from the same Philox draw."""
    batch, height, width, channels = shape
    block = min(block_size, height, width)
    gamma = _seed_rate(rate_tensor(rate), height, width, block)
    corner_shape = (batch, height - block + 1, width - block + 1, channels)
    corners = _np(scaled_mask(corner_shape, gamma, seed, 1.0)) == 0
    kept = ~_dilate(corners, block, height, width)
    scale = np.float32(kept.size) / np.float32(kept.sum()) if kept.any() else np.float32(0)
    return kept.astype("float32") * scale


def _analytic_drop_fraction(rate, height, width, block):
    """E[dropped fraction] = mean over units of 1 - (1 - gamma)**n, n = positions covering it."""
    gamma = _gamma(rate, height, width, block)

    def cover(size):
        r = np.arange(size)
        return np.minimum(r, size - block) - np.maximum(r - block + 1, 0) + 1

    n = cover(height)[:, None] * cover(width)[None, :]
    # First order the formula is exact: sum of gamma * n over the map is rate * H * W.
    assert math.isclose(gamma * n.sum(), rate * height * width, rel_tol=1e-12)
    return float(np.mean(1.0 - (1.0 - gamma) ** n))


# ----------------------------------------------------------------------------- generic checks


def test_config_round_trip():
    layer = DropBlock(
        0.2, block_size=5, seed=5, data_format="channels_first", scale_by_keep=False, name="db"
    )
    rebuilt = _checks.check_config_round_trip(layer)
    assert (rebuilt.rate, rebuilt.block_size, rebuilt.seed) == (pytest.approx(0.2), 5, 5)
    assert (rebuilt.data_format, rebuilt.scale_by_keep) == ("channels_first", False)


def test_data_format_default_is_resolved_in_config():
    assert DropBlock(0.1).get_config()["data_format"] == keras.config.image_data_format()


def test_symbolic_and_eager_shapes():
    _checks.check_symbolic_call(DropBlock(0.5, block_size=3, seed=1), (3, 6, 5, 2))
    _checks.check_symbolic_call(
        DropBlock(0.5, block_size=3, seed=1, data_format="channels_first"), (3, 2, 6, 5)
    )


def _model():
    inputs = keras.Input((8, 8, 3))
    hidden = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    hidden = DropBlock(0.2, block_size=3, seed=2)(hidden)
    outputs = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(hidden))
    return keras.Model(inputs, outputs)


def _data(n=8):
    x = np.random.default_rng(0).standard_normal((n, 8, 8, 3)).astype("float32")
    return x, x.mean(axis=(1, 2, 3))[:, None]


def test_keras_file_round_trip(tmp_path):
    model = _model()
    model.layers[2].rate = 0.35
    loaded = _checks.check_keras_file_round_trip(model, _data(3)[0], tmp_path)
    layer = loaded.layers[2]
    assert isinstance(layer, DropBlock)
    assert (layer.rate, layer.block_size) == (pytest.approx(0.35), 3)


def test_export_has_no_random_op(tmp_path):
    _checks.check_export(_model(), _data(4)[0], tmp_path)


def test_jit_compiled_fit():
    _checks.check_jit_fit(_model, *_data())


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    x = _inputs((4, 12, 12, 3), seed=1)
    train, infer = _checks.check_mixed_precision(lambda: DropBlock(0.3, 3, seed=3), x, policy)
    half_dtype = policy.split("_")[1]
    half = _np(keras.ops.cast(keras.ops.cast(x, half_dtype), "float32"))
    np.testing.assert_array_equal(infer, half)
    kept = train != 0
    assert 0 < kept.sum() < kept.size
    # The mask is float32: survivors are rounded to the half type once, after the scaling.
    scale = np.float32(kept.size) / np.float32(kept.sum())
    expected = _np(keras.ops.cast(keras.ops.cast(half * scale, half_dtype), "float32"))
    np.testing.assert_array_equal(train[kept], expected[kept])


def test_mirrored_strategy_fit():
    model = _checks.check_mirrored_fit(_model, *_data())
    model.layers[2].rate = 0.5  # a mirrored variable, assignable after fit
    assert model.layers[2].rate == pytest.approx(0.5)


def test_rate_scheduler_finds_the_layer():
    model = _model()
    model.compile(optimizer="sgd", loss="mse")
    scheduler = RateScheduler(lambda epoch: 0.1 * (epoch + 1))
    history = model.fit(*_data(), epochs=2, batch_size=8, verbose=0, callbacks=[scheduler])
    assert history.history["rate"] == pytest.approx([0.1, 0.2])
    assert model.layers[2].rate == pytest.approx(0.2)


# ----------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize(
    "shape, block_size", [((4, 16, 16, 3), 5), ((3, 11, 9, 2), 4), ((8, 4, 2, 3), 3)]
)
def test_dropped_units_are_union_of_squares_inside_the_map(shape, block_size):
    """Each zero lies in an all-zero b x b window inside the map, and those windows are all."""
    x = _inputs(shape)
    y = _np(drop_block(x, 0.3, block_size, seed=11, training=True))
    block = min(block_size, *shape[1:3])
    zero = y == 0
    assert zero.any() and not zero.all()
    windows = np.lib.stride_tricks.sliding_window_view(zero, (block, block), axis=(1, 2))
    full = windows.all(axis=(-2, -1))  # (batch, H - b + 1, W - b + 1, channels)
    np.testing.assert_array_equal(_dilate(full, block, *shape[1:3]), zero)


@pytest.mark.parametrize("shape, block_size", [((4, 16, 16, 3), 5), ((8, 4, 2, 3), 3)])
def test_mask_equals_reference_from_the_same_draw(shape, block_size):
    x = _inputs(shape, seed=2)
    y = _np(drop_block(x, 0.3, block_size, seed=12, training=True))
    np.testing.assert_array_equal(y, x * _reference_mask(shape, 0.3, block_size, 12))


@pytest.mark.parametrize("rate, block_size", [(0.1, 3), (0.1, 5), (0.3, 3), (0.3, 5)])
def test_dropped_fraction_matches_the_gamma_formula(rate, block_size):
    """Over 2048 independent 32 x 32 maps, the dropped fraction is the analytic expectation
    within 5 standard errors (measured across maps: blocks make units of a map correlated).
    Overlaps put it below `rate` (0.261 for b=3, 0.255 for b=5 at rate 0.3): checked too."""
    x = np.ones((64, 32, 32, 32), "float32")
    y = _np(drop_block(x, rate, block_size, seed=13, training=True))
    per_map = (y == 0).mean(axis=(1, 2)).ravel()
    tol = 5 * per_map.std() / math.sqrt(per_map.size)
    expected = _analytic_drop_fraction(rate, 32, 32, block_size)
    assert tol < 0.01
    assert abs(per_map.mean() - expected) < tol
    assert expected < rate


def test_map_smaller_than_block_drops_whole_maps_at_rate():
    """b = min(block_size, H, W) = 3: one position per 3 x 3 map, drawn with gamma = rate."""
    y = _np(drop_block(np.ones((500, 3, 3, 8), "float32"), 0.25, 7, seed=14, training=True))
    zero_maps = (y == 0).all(axis=(1, 2))
    assert np.all(zero_maps | (y != 0).all(axis=(1, 2)))
    assert abs(zero_maps.mean() - 0.25) < 5 * math.sqrt(0.25 * 0.75 / zero_maps.size)


def test_survivors_scaled_by_count_over_kept():
    x = _inputs((6, 10, 10, 4), seed=3)
    y = _np(DropBlock(0.2, block_size=3, seed=4)(x, training=True))
    kept = y != 0
    scale = np.float32(y.size) / np.float32(kept.sum())
    np.testing.assert_array_equal(y[kept], x[kept] * scale)
    # Without scale_by_keep survivors are untouched.
    y = _np(DropBlock(0.2, block_size=3, seed=4, scale_by_keep=False)(x, training=True))
    np.testing.assert_array_equal(y[y != 0], x[y != 0])


def test_inference_is_exact_identity():
    x = np.random.default_rng(4).standard_normal((2, 9, 9, 3)).astype("float32")
    layer = DropBlock(0.9, block_size=3)
    for training in (None, False):
        np.testing.assert_array_equal(_np(layer(x, training=training)), x)
    np.testing.assert_array_equal(_np(drop_block(x, 0.9, 3)), x)


def test_rate_zero_is_identity_in_training():
    x = np.random.default_rng(5).standard_normal((4, 16, 16, 8)).astype("float32")
    np.testing.assert_array_equal(_np(DropBlock(0.0, block_size=5)(x, training=True)), x)


def test_rate_one_gives_zeros_and_finite_gradients():
    # At rate 1 gamma is 1/9 * 144/100 here: the draw alone would keep units, but rate 1 means
    # drop everything, so the mask is zeroed outright.
    x = tf.constant(_inputs((4, 12, 12, 3), seed=6))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = DropBlock(1.0, block_size=3, seed=2)(x, training=True)
        loss = tf.reduce_sum(y)
    np.testing.assert_array_equal(y.numpy(), 0.0)
    np.testing.assert_array_equal(tape.gradient(loss, x).numpy(), 0.0)


def test_gradient_is_the_scaled_mask():
    shape = (4, 12, 12, 3)
    x = tf.constant(_inputs(shape, seed=7))
    weights = tf.constant(np.random.default_rng(8).standard_normal(shape).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = drop_block(x, 0.3, 3, seed=15, training=True)
        loss = tf.reduce_sum(y * weights)
    mask = _reference_mask(shape, 0.3, 3, 15)
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), weights.numpy() * mask, rtol=1e-6)


def test_seeded_reproducibility():
    x = np.ones((4, 12, 12, 3), "float32")
    first = _np(DropBlock(0.3, block_size=3, seed=9)(x, training=True))
    again = _np(DropBlock(0.3, block_size=3, seed=9)(x, training=True))
    np.testing.assert_array_equal(first, again)
    other = _np(DropBlock(0.3, block_size=3, seed=10)(x, training=True))
    assert not np.array_equal(first, other)
    layer = DropBlock(0.3, block_size=3, seed=9)
    assert not np.array_equal(_np(layer(x, training=True)), _np(layer(x, training=True)))


def test_channels_first_equals_transposed_channels_last():
    x = _inputs((3, 10, 7, 4), seed=9)
    last = _np(drop_block(x, 0.3, 3, seed=16, training=True, data_format="channels_last"))
    x_first = x.transpose(0, 3, 1, 2)
    first = _np(drop_block(x_first, 0.3, 3, seed=16, training=True, data_format="channels_first"))
    np.testing.assert_array_equal(first.transpose(0, 2, 3, 1), last)


def test_unknown_spatial_size_and_jit_give_the_same_mask():
    x = _inputs((2, 9, 7, 3), seed=10)
    eager = _np(drop_block(x, 0.3, 5, seed=17, training=True))
    spec = tf.TensorSpec((None, None, None, 3), tf.float32)

    def call(t):
        return drop_block(t, 0.3, 5, seed=17, training=True)

    dynamic = tf.function(call, input_signature=[spec], autograph=False)
    compiled = tf.function(call, jit_compile=True, autograph=False)
    np.testing.assert_array_equal(dynamic(x).numpy(), eager)
    np.testing.assert_array_equal(compiled(x).numpy(), eager)
    small = _inputs((2, 3, 2, 3), seed=11)  # smaller than the block, known only at run time
    np.testing.assert_array_equal(
        dynamic(small).numpy(), _np(drop_block(small, 0.3, 5, seed=17, training=True))
    )


def test_rate_change_takes_effect_without_retracing():
    layer = DropBlock(0.0, block_size=3, seed=1)
    traces = []

    @tf.function
    def step(x):
        traces.append(1)
        return layer(x, training=True)

    x = tf.ones((64, 32, 32, 4))
    np.testing.assert_array_equal(step(x).numpy(), 1.0)
    layer.rate = 1.0
    np.testing.assert_array_equal(step(x).numpy(), 0.0)
    layer.rate = 0.3
    per_map = (step(x).numpy() == 0).mean(axis=(1, 2)).ravel()
    tol = 5 * per_map.std() / math.sqrt(per_map.size)
    assert abs(per_map.mean() - _analytic_drop_fraction(0.3, 32, 32, 3)) < tol
    assert len(traces) == 1


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("rate", [-0.5, 1.01, float("nan")])
def test_invalid_rate(rate):
    with pytest.raises(ValueError, match="rate"):
        DropBlock(rate)


def test_invalid_rate_setter():
    layer = DropBlock(0.1)
    with pytest.raises(ValueError, match="rate"):
        layer.rate = 1.5


@pytest.mark.parametrize("block_size", [0, -3])
def test_invalid_block_size(block_size):
    with pytest.raises(ValueError, match="block_size"):
        DropBlock(0.1, block_size=block_size)
    with pytest.raises(ValueError, match="block_size"):
        drop_block(np.ones((1, 4, 4, 1), "float32"), 0.1, block_size)


@pytest.mark.parametrize("block_size", [2.5, "7", True, None])
def test_non_integer_block_size(block_size):
    with pytest.raises(TypeError, match="block_size"):
        DropBlock(0.1, block_size=block_size)


def test_invalid_data_format():
    with pytest.raises(ValueError, match="data_format"):
        DropBlock(0.1, data_format="NHWC")
    with pytest.raises(ValueError, match="data_format"):
        drop_block(np.ones((1, 4, 4, 1), "float32"), 0.1, 3, data_format="channels_middle")


@pytest.mark.parametrize("shape", [(8, 8, 3), (2, 4, 4, 4, 3)])
def test_invalid_input_rank(shape):
    with pytest.raises(ValueError, match="inputs"):
        DropBlock(0.1, block_size=3)(keras.Input(shape[1:]))
    with pytest.raises(ValueError, match="inputs"):
        drop_block(np.ones(shape, "float32"), 0.1, 3, training=True)


def test_invalid_seed():
    with pytest.raises(TypeError, match="seed"):
        DropBlock(0.1, seed="abc")


def test_invalid_scale_by_keep():
    with pytest.raises(TypeError, match="scale_by_keep"):
        DropBlock(0.1, scale_by_keep="yes")
