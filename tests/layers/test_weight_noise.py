"""WeightNoise against the wrapped layer (inference) and references with a known noise (training)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_reg.layers import WeightNoise
from tests.layers import _checks

L = keras.layers

# (layer factory, input shape) for every supported type, with non-default options.
CASES = {
    "dense": (lambda: L.Dense(5, activation="tanh"), (3, 4)),
    "conv1d_causal": (lambda: L.Conv1D(4, 3, padding="causal", dilation_rate=2), (2, 9, 3)),
    "conv2d": (lambda: L.Conv2D(4, 3, strides=2, padding="same", activation="relu"), (2, 7, 7, 3)),
    "conv2d_groups_nchw": (
        lambda: L.Conv2D(4, 3, groups=2, data_format="channels_first"),
        (2, 4, 6, 6),
    ),
    "conv3d": (lambda: L.Conv3D(2, 2, use_bias=False), (2, 4, 4, 4, 2)),
    "depthwise2d": (lambda: L.DepthwiseConv2D(3, depth_multiplier=2), (2, 6, 6, 3)),
    "separable2d": (lambda: L.SeparableConv2D(4, 3, padding="same"), (2, 6, 6, 3)),
    "depthwise1d": (lambda: L.DepthwiseConv1D(3), (2, 8, 3)),
    "separable1d": (lambda: L.SeparableConv1D(4, 3), (2, 8, 3)),
}


def _known_noise(layer, seed, stddev):
    """The noise WeightNoise(seed=seed) draws on its first training call, variable by variable.

    WeightNoise draws one float32 N(0, 1) tensor per kernel, in `layer.weights` order, from a
    `keras.random.SeedGenerator(seed)`, and scales it by `stddev`.
    """
    generator = keras.random.SeedGenerator(seed)
    noise = []
    for w in layer.weights:
        if w.name in ("kernel", "depthwise_kernel", "pointwise_kernel"):
            draw = keras.random.normal(w.shape, dtype="float32", seed=generator)
            noise.append(keras.ops.convert_to_numpy(draw) * stddev)
        else:
            noise.append(np.zeros(w.shape, "float32"))
    return noise


@pytest.mark.parametrize("case", sorted(CASES))
def test_inference_is_the_wrapped_layer_and_training_uses_kernel_plus_noise(case):
    factory, shape = CASES[case]
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    wrapped = WeightNoise(factory(), stddev=0.3, seed=7)
    inner = wrapped.layer
    # Inference: bit-equal to the wrapped layer's own call.
    np.testing.assert_array_equal(wrapped(x), inner(x))
    np.testing.assert_array_equal(wrapped(x, training=False), inner(x))
    # Training: the wrapped layer evaluated at kernel + known noise (a twin with those weights).
    twin = factory()
    twin.build(shape)
    noise = _known_noise(inner, 7, 0.3)
    twin.set_weights([w + n for w, n in zip(inner.get_weights(), noise)])
    np.testing.assert_allclose(wrapped(x, training=True), twin(x), atol=1e-5)


def test_dense_training_matches_numpy_and_gradient_reaches_clean_kernel():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4)).astype("float32")
    dense = L.Dense(3, activation="relu")
    wrapped = WeightNoise(dense, stddev=0.5, seed=3)
    wrapped.build(x.shape)
    kernel, bias = [w.numpy() for w in dense.weights]
    noise = _known_noise(dense, 3, 0.5)[0]
    with tf.GradientTape() as tape:
        y = wrapped(x, training=True)
        loss = 0.5 * tf.reduce_sum(tf.square(y))
    expected = np.maximum(x @ (kernel + noise) + bias, 0.0)
    np.testing.assert_allclose(y, expected, atol=1e-5)
    # d loss / d kernel at the noisy kernel: x^T (y * relu'(z)).
    g_kernel, g_bias = tape.gradient(loss, [dense.kernel, dense.bias])
    np.testing.assert_allclose(g_kernel, x.T @ expected, atol=1e-5)
    np.testing.assert_allclose(g_bias, expected.sum(0), atol=1e-5)
    # An optimizer step moves the clean kernel by that gradient; the noise is not kept.
    keras.optimizers.SGD(0.1).apply([g_kernel, g_bias], [dense.kernel, dense.bias])
    np.testing.assert_allclose(dense.kernel.numpy(), kernel - 0.1 * (x.T @ expected), atol=1e-5)


def test_noise_statistics_and_fresh_noise_each_call():
    # Zero kernel, no bias, identity input: the output is the perturbation itself.
    dense = L.Dense(200, use_bias=False, kernel_initializer="zeros")
    wrapped = WeightNoise(dense, stddev=0.05, seed=1)
    eye = np.eye(100, dtype="float32")
    first = wrapped(eye, training=True).numpy()
    second = wrapped(eye, training=True).numpy()
    for draw in (first, second):
        assert abs(draw.std() - 0.05) < 0.05 * 0.02  # 20000 draws: 2% is > 4 standard errors
        assert abs(draw.mean()) < 0.05 * 0.02
    assert abs(np.corrcoef(first.ravel(), second.ravel())[0, 1]) < 0.03
    np.testing.assert_array_equal(dense.kernel.numpy(), 0.0)


def test_stddev_is_a_settable_variable_without_retracing():
    dense = L.Dense(4, kernel_initializer="ones")
    wrapped = WeightNoise(dense, stddev=0.1, seed=0)
    x = np.ones((2, 3), "float32")
    wrapped(x)  # builds the variables outside the traced function
    traces = []

    @tf.function
    def train_call(t):
        traces.append(1)
        return wrapped(t, training=True)

    assert not np.allclose(train_call(x), dense(x))
    wrapped.stddev = 0.0
    assert wrapped.stddev == 0.0 and float(wrapped.stddev_variable.numpy()) == 0.0
    np.testing.assert_allclose(train_call(x), dense(x), atol=1e-6)
    assert len(traces) == 1
    with pytest.raises(ValueError, match="stddev"):
        wrapped.stddev = -1.0


def test_wrapped_layer_losses_are_kept():
    dense = L.Dense(3, kernel_regularizer="l2", activity_regularizer="l1")
    wrapped = WeightNoise(dense, stddev=0.1, seed=0)
    x = np.ones((2, 4), "float32")
    wrapped(x, training=True)
    # kernel L2 penalty + activity L1 penalty of the (noisy) training output.
    assert len(wrapped.losses) == 2


# --- generic layer checks -------------------------------------------------------------------


def test_config_round_trip_and_symbolic_call():
    layer = WeightNoise(L.Conv2D(3, 3, strides=2), stddev=0.2, seed=4)
    rebuilt = _checks.check_config_round_trip(layer)
    assert isinstance(rebuilt.layer, L.Conv2D) and rebuilt.layer.strides == (2, 2)
    assert rebuilt.stddev == pytest.approx(0.2) and rebuilt.seed == 4
    _checks.check_symbolic_call(WeightNoise(L.Dense(3), 0.1), (2, 5))
    _checks.check_symbolic_call(WeightNoise(L.Conv1D(3, 2, padding="same"), 0.1), (2, 6, 4))


def _model():
    return keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            WeightNoise(L.Conv2D(4, 3, activation="relu"), stddev=0.1, seed=1),
            L.Flatten(),
            WeightNoise(L.Dense(1), stddev=0.1, seed=2),
        ]
    )


def test_keras_file_and_export(tmp_path):
    model = _model()
    x = np.random.default_rng(0).normal(size=(4, 6, 6, 2)).astype("float32")
    model.layers[0].stddev = 0.25
    loaded = _checks.check_keras_file_round_trip(model, x, tmp_path)
    assert loaded.layers[0].stddev == 0.25
    _checks.check_export(model, x, tmp_path)


def test_jit_fit_trains_the_clean_kernel():
    x = np.random.default_rng(1).normal(size=(8, 6, 6, 2)).astype("float32")
    y = np.random.default_rng(2).normal(size=(8, 1)).astype("float32")
    # XLA draws other Gaussian bits than TensorFlow: compared with the noise off, then fitted on.
    model = _checks.check_jit_fit(_model, x, y, settings_off={"stddev": 0.0})
    assert model.layers[0].layer.kernel.dtype == "float32"


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    x = np.random.default_rng(0).normal(size=(4, 8)).astype("float32")
    train, infer = _checks.check_mixed_precision(
        lambda: WeightNoise(L.Dense(6, kernel_initializer="ones"), stddev=0.1, seed=0), x, policy
    )
    assert not np.allclose(train, infer)


def test_mirrored_fit():
    x = np.random.default_rng(0).normal(size=(8, 6, 6, 2)).astype("float32")
    y = np.random.default_rng(1).normal(size=(8, 1)).astype("float32")
    _checks.check_mirrored_fit(_model, x, y)


# --- validation --------------------------------------------------------------------------------


def test_negative_stddev_raises():
    with pytest.raises(ValueError, match="stddev=-0.1"):
        WeightNoise(L.Dense(2), stddev=-0.1)


def test_nan_stddev_raises():
    with pytest.raises(ValueError, match="stddev"):
        WeightNoise(L.Dense(2), stddev=float("nan"))


def test_unsupported_layer_raises():
    with pytest.raises(TypeError, match="layer"):
        WeightNoise(L.LSTM(2), stddev=0.1)


def test_transposed_convolution_raises():
    with pytest.raises(TypeError, match="layer"):
        WeightNoise(L.Conv2DTranspose(2, 3), stddev=0.1)


def test_non_layer_raises():
    with pytest.raises(TypeError, match="layer"):
        WeightNoise("dense", stddev=0.1)
