"""GroupNorm against keras.layers.GroupNormalization, LayerNormalization and NumPy references."""

import importlib
import pathlib
import unittest

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_reg.layers import GroupNorm, group_norm
from tests.layers import _checks


def _pair(shape, groups, axis, center=True, scale=True, seed=0):
    """A Keras GroupNormalization and a GroupNorm with the same random (trained-like) weights."""
    ref = keras.layers.GroupNormalization(groups=groups, axis=axis, center=center, scale=scale)
    ours = GroupNorm(groups=groups, axis=axis, center=center, scale=scale)
    ref.build(shape)
    ours.build(shape)
    rng = np.random.default_rng(seed)
    weights = [rng.normal(1.0, 0.5, w.shape).astype("float32") for w in ref.weights]
    ref.set_weights(weights)
    ours.set_weights(weights)
    return ref, ours


def _value_and_grads(layer, x, dy):
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * tf.cast(dy, y.dtype))
    grads = tape.gradient(loss, [x] + layer.trainable_weights)
    return [y.numpy()] + [g.numpy() for g in grads]


def _numpy_group_norm(x, groups, axis, gamma=None, beta=None, epsilon=1e-3):
    """Float64 reference: channels moved last, (N, spatial, G, C/G) statistics."""
    x = np.moveaxis(np.asarray(x, np.float64), axis, -1)
    n, c = x.shape[0], x.shape[-1]
    g = x.reshape(n, -1, groups, c // groups)
    mean = g.mean(axis=(1, 3), keepdims=True)
    var = g.var(axis=(1, 3), keepdims=True)
    y = ((g - mean) / np.sqrt(var + epsilon)).reshape(x.shape)
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return np.moveaxis(y, -1, axis)


# --- generic layer checks -------------------------------------------------------------------


def test_config_round_trip_and_symbolic_call():
    layer = GroupNorm(groups=4, axis=1, epsilon=1e-4, gamma_regularizer="l2", beta_constraint="non_neg")
    _checks.check_config_round_trip(layer)
    _checks.check_symbolic_call(GroupNorm(groups=4), (2, 5, 5, 8))
    _checks.check_symbolic_call(GroupNorm(groups=2, axis=1), (2, 8, 3, 3))


def _model():
    return keras.Sequential(
        [keras.Input((6, 6, 8)), keras.layers.Conv2D(8, 3), GroupNorm(4), keras.layers.Flatten(),
         keras.layers.Dense(1)]
    )


def test_keras_file_and_export(tmp_path):
    model = _model()
    x = np.random.default_rng(0).normal(size=(4, 6, 6, 8)).astype("float32")
    model.layers[1].set_weights([np.linspace(0.5, 2, 8), np.linspace(-1, 1, 8)])
    _checks.check_keras_file_round_trip(model, x, tmp_path)
    _checks.check_export(model, x, tmp_path)


def test_jit_fit_matches_graph_gradients():
    x = np.random.default_rng(1).normal(size=(8, 6, 6, 8)).astype("float32")
    y = np.random.default_rng(2).normal(size=(8, 1)).astype("float32")
    _checks.check_jit_fit(_model, x, y)
    layer = GroupNorm(4)
    layer.build(x.shape)
    dy = tf.constant(np.random.default_rng(3).normal(size=x.shape).astype("float32"))

    def grads(xt):
        with tf.GradientTape() as tape:
            tape.watch(xt)
            loss = tf.reduce_sum(layer(xt) * dy)
        return tape.gradient(loss, [xt] + layer.trainable_weights)

    graph = tf.function(grads)(tf.constant(x))
    xla = tf.function(grads, jit_compile=True)(tf.constant(x))
    for a, b in zip(graph, xla):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("shape, axis", [((4, 6, 6, 16), -1), ((4, 16, 5, 6), 1)])
def test_compiled_backward_equals_keras_ops_backward(monkeypatch, shape, axis):
    """The TensorFlow fast path (XLA-compiled backward in graph mode) equals the general path."""
    module = importlib.import_module("keras_reg.layers.group_norm")
    monkeypatch.setattr(module, "_COMPILE_BACKWARD_MIN_SIZE", 0)  # these shapes are small
    _, layer = _pair(shape, 4, axis)
    rng = np.random.default_rng(4)
    x = tf.constant(rng.normal(0.5, 2.0, shape).astype("float32"))
    dy = tf.constant(rng.normal(size=shape).astype("float32"))

    def grads():
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x) * dy)
        return tape.gradient(loss, [x] + layer.trainable_weights)

    compiled_fn = tf.function(grads)
    compiled = compiled_fn()
    graph_def = compiled_fn.get_concrete_function().graph.as_graph_def()
    nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
    assert any(n.attr["_XlaMustCompile"].b for n in nodes if "_XlaMustCompile" in n.attr)
    monkeypatch.setattr(module, "_COMPILE_BACKWARD", False)
    general = tf.function(grads)()
    for a, b in zip(compiled, general):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    x = np.random.default_rng(0).normal(3.0, 2.0, (2, 4, 4, 8)).astype("float32")
    train, infer = _checks.check_mixed_precision(lambda: GroupNorm(4), x, policy)
    np.testing.assert_array_equal(train, infer)
    tol = 2e-2 if policy == "mixed_bfloat16" else 4e-3
    np.testing.assert_allclose(train, _numpy_group_norm(x, 4, -1), atol=tol)


def test_mirrored_fit():
    x = np.random.default_rng(0).normal(size=(8, 6, 6, 8)).astype("float32")
    y = np.random.default_rng(1).normal(size=(8, 1)).astype("float32")
    _checks.check_mirrored_fit(_model, x, y)


# --- the Keras peer ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, groups, axis",
    [
        ((4, 6, 6, 16), 4, -1),  # NHWC
        ((4, 16, 5, 6), 8, 1),  # NCHW
        ((3, 12), 3, -1),  # rank 2
        ((3, 7, 12), 2, -1),  # rank 3 (sequence)
        ((2, 3, 4, 5, 8), 2, -1),  # rank 5 (NDHWC)
        ((2, 3, 8, 4, 5), 4, 2),  # a middle axis
        ((2, 5, 6), 6, -1),  # groups == channels
    ],
)
def test_matches_keras_group_normalization(shape, groups, axis):
    ref, ours = _pair(shape, groups, axis)
    rng = np.random.default_rng(1)
    x = rng.normal(0.5, 2.0, shape).astype("float32")
    dy = rng.normal(size=shape).astype("float32")
    expected = _value_and_grads(ref, x, dy)
    got = _value_and_grads(ours, x, dy)
    names = ["output", "input gradient", "gamma gradient", "beta gradient"]
    for name, a, b in zip(names, got, expected):
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-5, err_msg=name)


@pytest.mark.parametrize("center, scale", [(False, True), (True, False), (False, False)])
def test_matches_keras_without_center_or_scale(center, scale):
    shape = (3, 5, 5, 8)
    ref, ours = _pair(shape, 2, -1, center=center, scale=scale)
    assert [w.name for w in ours.weights] == [w.name for w in ref.weights]
    rng = np.random.default_rng(2)
    x = rng.normal(size=shape).astype("float32")
    dy = rng.normal(size=shape).astype("float32")
    for a, b in zip(_value_and_grads(ours, x, dy), _value_and_grads(ref, x, dy)):
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-5)


def test_weights_transfer_and_defaults_match_keras():
    ref = keras.layers.GroupNormalization()
    ours = GroupNorm()
    for key in ("groups", "axis", "epsilon", "center", "scale"):
        assert ours.get_config()[key] == ref.get_config()[key], key
    ref.build((2, 4, 4, 64))
    ours.build((2, 4, 4, 64))
    assert [(w.name, w.shape) for w in ours.weights] == [(w.name, w.shape) for w in ref.weights]


def test_dynamic_spatial_shape():
    inputs = keras.Input((None, None, 8))
    model = keras.Model(inputs, GroupNorm(2)(inputs))
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 8)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), _numpy_group_norm(x, 2, -1), atol=2e-5)
    layer = GroupNorm(2)
    layer.build((None, None, 8))
    fn = tf.function(layer, input_signature=[tf.TensorSpec((None, None, 8))])
    x3 = x.reshape(2, 15, 8)
    np.testing.assert_allclose(fn(x3), _numpy_group_norm(x3, 2, -1), atol=2e-5)


# --- relatives: layer norm, instance norm -----------------------------------------------------


@pytest.mark.parametrize("shape, axis", [((3, 5, 5, 8), -1), ((3, 8, 5, 5), 1), ((4, 10), -1)])
def test_one_group_is_layer_norm(shape, axis):
    x = np.random.default_rng(0).normal(2.0, 3.0, shape).astype("float32")
    norm_axes = list(range(1, len(shape)))
    ln = keras.layers.LayerNormalization(axis=norm_axes, epsilon=1e-3, center=False, scale=False)
    np.testing.assert_allclose(GroupNorm(groups=1, axis=axis)(x), ln(x), atol=2e-5)


@pytest.mark.parametrize("shape, axis", [((3, 5, 5, 8), -1), ((3, 8, 5, 5), 1)])
def test_minus_one_groups_is_instance_norm(shape, axis):
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, shape).astype("float32")
    layer = GroupNorm(groups=-1, axis=axis)
    layer.build(shape)
    gamma, beta = rng.normal(size=8).astype("float32"), rng.normal(size=8).astype("float32")
    layer.set_weights([gamma, beta])
    # Instance norm: every (sample, channel) normalized over its spatial positions.
    xc = np.moveaxis(x.astype(np.float64), axis, -1)
    mean = xc.mean(axis=(1, 2), keepdims=True)
    var = xc.var(axis=(1, 2), keepdims=True)
    expected = np.moveaxis((xc - mean) / np.sqrt(var + 1e-3) * gamma + beta, -1, axis)
    np.testing.assert_allclose(layer(x), expected, atol=2e-5)
    assert layer.get_config()["groups"] == -1


def test_pure_function_equals_layer():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 4, 8)).astype("float32")
    layer = GroupNorm(4, axis=1)
    layer.build(x.shape)
    gamma, beta = rng.normal(size=4).astype("float32"), rng.normal(size=4).astype("float32")
    layer.set_weights([gamma, beta])
    np.testing.assert_array_equal(layer(x), group_norm(x, 4, gamma, beta, axis=1))
    np.testing.assert_allclose(group_norm(x, 2), _numpy_group_norm(x, 2, -1), atol=2e-5)


def test_float64_input_matches_keras():
    """float64 inputs are normalized in float64 and cast to the compute dtype, as Keras does."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(3.0, 2.0, (2, 3, 4)))
    dy = tf.constant(rng.normal(size=(2, 3, 4)))
    ref, ours = _pair((2, 3, 4), 2, -1)
    got, expected = _value_and_grads(ours, x, dy), _value_and_grads(ref, x, dy)
    assert got[0].dtype == expected[0].dtype == np.float32
    assert got[1].dtype == np.float64
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, atol=2e-6, rtol=1e-6)
    y = group_norm(x, 2)
    assert y.dtype == tf.float64
    np.testing.assert_allclose(y, _numpy_group_norm(x.numpy(), 2, -1), atol=1e-12)


# --- numerics ----------------------------------------------------------------------------------


def test_large_mean_accuracy():
    """Shifted statistics: N(1000, 1) data is normalized to Keras's accuracy or better."""
    rng = np.random.default_rng(0)
    shape = (4, 16, 16, 32)
    x = rng.normal(1000.0, 1.0, shape).astype("float32")
    dy = rng.normal(size=shape).astype("float32")
    ref, ours = _pair(shape, 8, -1)
    gamma, beta = ours.get_weights()
    exact = _numpy_group_norm(x, 8, -1, gamma, beta)
    y, gx, *_ = _value_and_grads(ours, x, dy)
    assert np.abs(y - exact).max() <= 1e-4
    # Input gradient against float64 autodiff-free reference (the analytic formula).
    xg = np.moveaxis(x.astype(np.float64), -1, -1).reshape(4, -1, 8, 4)
    mean, var = xg.mean(axis=(1, 3), keepdims=True), xg.var(axis=(1, 3), keepdims=True)
    inv = 1 / np.sqrt(var + 1e-3)
    xhat = (xg - mean) * inv
    gdy = (dy.astype(np.float64) * gamma).reshape(xg.shape)
    dx = inv * (gdy - gdy.mean(axis=(1, 3), keepdims=True)
                - xhat * (gdy * xhat).mean(axis=(1, 3), keepdims=True))
    assert np.abs(gx - dx.reshape(shape)).max() <= 4e-4


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_large_and_constant_inputs(policy):
    keras.mixed_precision.set_dtype_policy(policy)
    layer = GroupNorm(2)
    rng = np.random.default_rng(0)
    big = rng.normal(5e3, 3e3, (2, 8, 8, 4)).astype("float32")  # squares overflow float16
    out = keras.ops.convert_to_numpy(keras.ops.cast(layer(big), "float32"))
    assert np.all(np.isfinite(out))
    # The input is rounded to the compute dtype first; the statistics are float32.
    rounded = keras.ops.convert_to_numpy(keras.ops.cast(keras.ops.cast(big, policy[6:]), "float32"))
    tol = 3e-2 if policy == "mixed_bfloat16" else 3e-3
    np.testing.assert_allclose(out, _numpy_group_norm(rounded, 2, -1), atol=tol)
    constant = np.full((2, 4, 4, 4), 1e4, "float32")
    out = keras.ops.convert_to_numpy(keras.ops.cast(layer(constant), "float32"))
    np.testing.assert_array_equal(out, np.zeros_like(out))
    with tf.GradientTape() as tape:
        xt = tf.constant(constant, dtype=policy[6:])
        tape.watch(xt)
        loss = tf.reduce_sum(tf.cast(layer(xt), "float32") * np.arange(4, dtype="float32"))
    assert np.all(np.isfinite(tape.gradient(loss, xt).numpy()))


# --- validation --------------------------------------------------------------------------------


def test_groups_not_dividing_channels_raises_at_build():
    with pytest.raises(ValueError, match="groups"):
        GroupNorm(groups=3)(np.zeros((2, 4, 8), "float32"))


def test_more_groups_than_channels_raises_at_build():
    with pytest.raises(ValueError, match="groups=16"):
        GroupNorm(groups=16).build((2, 4, 8))


def test_invalid_groups_raises():
    with pytest.raises(ValueError, match="groups=0"):
        GroupNorm(groups=0)


@pytest.mark.parametrize("groups", [2.5, "32", None])
def test_non_integer_groups_raises_value_error_as_keras(groups):
    with pytest.raises(ValueError, match=r"argument `groups`.*Received: groups="):
        GroupNorm(groups=groups)
    with pytest.raises(ValueError, match="groups"):
        keras.layers.GroupNormalization(groups=groups)


def test_bool_groups_raises():  # Keras takes True as 1 group; a bool is not a group count
    with pytest.raises(ValueError, match="Received: groups=True"):
        GroupNorm(groups=True)


def test_invalid_epsilon_raises():
    with pytest.raises(ValueError, match="epsilon"):
        GroupNorm(epsilon=-1e-3)


def test_batch_axis_raises():
    with pytest.raises(ValueError, match="axis=0"):
        GroupNorm(axis=0)


def test_axis_out_of_range_raises_at_build():
    with pytest.raises(ValueError, match="axis=4"):
        GroupNorm(groups=1, axis=4).build((2, 3, 4, 5))


# --- Keras's own GroupNormalization test cases, run against GroupNorm ---------------------------

_KERAS_TEST = (
    pathlib.Path(keras.__file__).parent / "src" / "layers" / "normalization"
    / "group_normalization_test.py"
)


def _keras_group_norm_cases():
    """Keras's `GroupNormalizationTest` with `layers.GroupNormalization` replaced by `GroupNorm`.

    The source is the test file installed with Keras, so upstream additions are picked up. Error
    message wording differs by design (ours names the argument and value): `assertRaisesRegex`
    checks the exception type only.
    """
    if not _KERAS_TEST.exists():  # a Keras installed without its tests
        return None
    source = _KERAS_TEST.read_text()
    assert "layers.GroupNormalization" in source
    namespace = {"GroupNorm": GroupNorm, "__name__": "keras_group_normalization_test"}
    exec(compile(source.replace("layers.GroupNormalization", "GroupNorm"), str(_KERAS_TEST),
                 "exec"), namespace)
    base = namespace["GroupNormalizationTest"]

    class KerasGroupNormalizationCases(base):
        def assertRaisesRegex(self, expected_exception, expected_regex, *args, **kwargs):
            return self.assertRaises(expected_exception, *args, **kwargs)

    return KerasGroupNormalizationCases


# Held in a dict: a TestCase class at module level would also be collected by pytest directly.
_KERAS = {"cases": _keras_group_norm_cases()}


@pytest.mark.skipif(_KERAS["cases"] is None, reason="Keras installed without its test files")
@pytest.mark.parametrize(
    "case", sorted(n for n in dir(_KERAS["cases"] or object) if n.startswith("test_")))
def test_keras_group_normalization_case(case):
    result = unittest.TestResult()
    _KERAS["cases"](case).run(result)
    problems = result.errors + result.failures
    assert result.testsRun == 1 and not problems, problems[0][1] if problems else "not run"
