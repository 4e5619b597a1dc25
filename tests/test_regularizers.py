"""Tests for keras_reg.regularizers: penalties against NumPy and Keras, variables, apply, penalty."""

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


def test_penalty_of_model_is_lambda_sum_w2_by_hand():
    reg = regularizers.l2(0.05)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(6, kernel_regularizer=reg),
            keras.layers.Dense(2, kernel_regularizer=regularizers.l1(0.02)),
        ]
    )
    k0 = model.layers[0].kernel.numpy().astype("float64")
    k1 = model.layers[1].kernel.numpy().astype("float64")
    expected = 0.05 * (k0**2).sum() + 0.02 * np.abs(k1).sum()
    np.testing.assert_allclose(float(regularizers.penalty(model)), expected, rtol=1e-6)
    np.testing.assert_allclose(
        float(regularizers.penalty(model)), float(sum(model.losses)), rtol=1e-6
    )


def test_penalty_ignores_activity_and_frozen_layers_like_keras():
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(
                2,
                kernel_initializer="ones",
                kernel_regularizer=regularizers.l2(1.0),
                activity_regularizer="l2",
            ),
            keras.layers.Dense(1, kernel_initializer="ones", kernel_regularizer="l2"),
        ]
    )
    model.layers[1].trainable = False
    assert float(regularizers.penalty(model)) == pytest.approx(6.0)


def test_penalty_of_unregularized_model_is_zero():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert float(regularizers.penalty(model)) == 0.0


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


# ------------------------------------------------------------------ apply


def _cnn_with_everything():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.SeparableConv2D(4, 3, padding="same")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = keras.layers.GroupNormalization(groups=2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    inner = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(6), keras.layers.LayerNormalization()],
        name="inner",
    )
    shared = keras.layers.Dense(6, name="shared")
    x = shared(shared(inner(x)))
    outputs = keras.layers.Dense(3)(x)
    model = keras.Model(inputs, outputs)
    # Non-trivial BN statistics, so the copy of non-trainable weights is checked too.
    model.layers[2].moving_mean.assign(np.linspace(-1, 1, 4).astype("float32"))
    return model


def _regularized_paths(model):
    return {v.path for v in model.trainable_weights if v.regularizer is not None}


def test_apply_keeps_outputs_bit_for_bit():
    model = _cnn_with_everything()
    new = regularizers.apply(model, kernel=regularizers.l2(1e-3))
    x = np.random.default_rng(0).normal(size=(5, 8, 8, 3)).astype("float32")
    assert np.array_equal(model(x, training=False), new(x, training=False))
    assert [w.shape for w in new.get_weights()] == [w.shape for w in model.get_weights()]
    for a, b in zip(model.get_weights(), new.get_weights()):
        assert np.array_equal(a, b)


def test_apply_regularizes_all_kernels_and_skips_norm_params():
    model = _cnn_with_everything()
    reg = regularizers.l2(1e-3)
    new = regularizers.apply(model, kernel=reg)
    regularized = _regularized_paths(new)
    kernels = {
        v.path
        for v in new.trainable_weights
        if v.path.endswith(("kernel", "depthwise_kernel", "pointwise_kernel"))
    }
    assert regularized == kernels
    assert len(kernels) == 7  # conv, separable (2), depthwise, inner dense, shared, head
    for v in new.trainable_weights:
        if v.path.endswith(("gamma", "beta", "bias")):
            assert v.regularizer is None, v.path
    # One object everywhere: one strength variable for the whole model.
    assert {id(v.regularizer) for v in new.trainable_weights if v.regularizer} == {id(reg)}
    # The original is untouched.
    assert not _regularized_paths(model)


def test_apply_penalty_matches_hand_computation_and_shared_layer_counts_once():
    model = _cnn_with_everything()
    new = regularizers.apply(model, kernel=0.01)
    kernels = [v for v in new.trainable_weights if v.regularizer is not None]
    expected = sum(0.01 * float(np.sum(v.numpy().astype("float64") ** 2)) for v in kernels)
    np.testing.assert_allclose(float(regularizers.penalty(new)), expected, rtol=1e-5)
    shared = [layer for layer in new.layers if layer.name == "shared"]
    assert len(shared) == 1  # still one shared layer, called twice


def test_apply_bias_only_when_asked():
    model = _cnn_with_everything()
    new = regularizers.apply(model, kernel="l2", bias=regularizers.l1(1e-4))
    biases = {v.path for v in new.trainable_weights if v.path.endswith("bias")}
    assert biases and biases <= _regularized_paths(new)
    for v in new.trainable_weights:
        if v.path.endswith("bias"):
            assert isinstance(v.regularizer, regularizers.L1)
        elif v.path.endswith("kernel"):
            assert isinstance(v.regularizer, regularizers.L2)


def test_apply_kernel_none_keeps_existing_regularizers():
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2, kernel_regularizer=keras.regularizers.L1(0.5))]
    )
    new = regularizers.apply(model, bias=0.1)
    assert isinstance(new.layers[0].kernel_regularizer, keras.regularizers.L1)
    assert isinstance(new.layers[0].bias_regularizer, regularizers.L2)


def test_apply_string_identifiers():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert isinstance(regularizers.apply(model, kernel="l1_l2").layers[0].kernel_regularizer,
                      regularizers.L1L2)
    orth = regularizers.apply(model, kernel="orthogonal_regularizer")
    assert isinstance(orth.layers[0].kernel_regularizer, keras.regularizers.OrthogonalRegularizer)


def test_apply_skip_embedding_by_default_and_on_request():
    model = keras.Sequential(
        [keras.Input((5,), dtype="int32"), keras.layers.Embedding(10, 4), keras.layers.Dense(2)]
    )
    default = _regularized_paths(regularizers.apply(model, kernel=0.1))
    assert len(default) == 1 and next(iter(default)).endswith("/kernel")
    everything = regularizers.apply(model, kernel=0.1, skip=())
    assert any(p.endswith("embeddings") for p in _regularized_paths(everything))
    no_dense = regularizers.apply(model, kernel=0.1, skip=(keras.layers.Dense, "embedding"))
    assert not _regularized_paths(no_dense)


def test_apply_rnn_and_wrappers():
    inputs = keras.Input((5, 3))
    x = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True))(inputs)
    x = keras.layers.TimeDistributed(keras.layers.Dense(2))(x)
    model = keras.Model(inputs, x)
    new = regularizers.apply(model, kernel=0.01)
    regularized = _regularized_paths(new)
    assert sum(p.endswith("recurrent_kernel") for p in regularized) == 2
    assert sum(p.endswith("/kernel") for p in regularized) == 3  # 2 LSTM + TimeDistributed
    x_np = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    assert np.array_equal(model(x_np), new(x_np))


def test_apply_reaches_kernels_inside_spectral_normalization_and_wrappers():
    inputs = keras.Input((5, 3))
    x = keras.layers.Bidirectional(keras.layers.SimpleRNN(2, return_sequences=True),
                                   name="bi")(inputs)
    x = keras.layers.TimeDistributed(keras.layers.Dense(3, name="td_dense"), name="td")(x)
    x = keras.layers.LayerNormalization(name="ln")(keras.layers.Flatten()(x))
    x = keras.layers.SpectralNormalization(keras.layers.Dense(2, name="sn_dense"), name="sn")(x)
    model = keras.Model(inputs, keras.layers.BatchNormalization(name="bn")(x))
    new = regularizers.apply(model, kernel=0.01)
    regularized = {p.split("/")[-1] for p in _regularized_paths(new)}
    assert sum(v.regularizer is not None for v in new.trainable_weights) == 6
    assert regularized == {"kernel", "recurrent_kernel"}
    kernels = [v for v in new.trainable_weights if v.path.endswith("/kernel")]
    assert len(kernels) == 4 and all(v.regularizer is not None for v in kernels)
    for name in ("ln", "bn"):
        assert all(v.regularizer is None for v in new.get_layer(name).trainable_weights)
    x_np = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    np.testing.assert_array_equal(model(x_np), new(x_np))


def test_apply_skips_keras_reg_group_norm():
    from keras_reg.layers import GroupNorm

    inputs = keras.Input((4, 4, 4))
    x = keras.layers.Conv2D(4, 1)(inputs)
    x = GroupNorm(groups=2)(x)
    model = keras.Model(inputs, x)
    new = regularizers.apply(model, kernel=0.01, bias=0.01)
    for v in new.trainable_weights:
        assert (v.regularizer is None) == ("group_norm" in v.path), v.path


def test_apply_invalid_kernel_string_raises():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="`kernel`"):
        regularizers.apply(model, kernel="not_a_regularizer")


def test_apply_invalid_kernel_type_raises():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(TypeError, match="`kernel`"):
        regularizers.apply(model, kernel=True)


def test_apply_negative_float_raises():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="`bias`"):
        regularizers.apply(model, bias=-0.1)


def test_apply_invalid_skip_raises():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="`skip`"):
        regularizers.apply(model, kernel=0.1, skip=("batchnorm",))


def test_apply_not_a_model_raises():
    with pytest.raises(TypeError, match="`model`"):
        regularizers.apply(keras.layers.Dense(2), kernel=0.1)


def test_apply_subclassed_model_raises():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    with pytest.raises(ValueError, match="`model`.*Net"):
        regularizers.apply(Net(), kernel=0.1)


def test_penalty_not_a_model_raises():
    with pytest.raises(TypeError, match="`model`"):
        regularizers.penalty(np.ones(3))


def test_apply_reaches_the_layer_inside_weight_noise():
    from keras_reg.layers import WeightNoise

    inputs = keras.Input((4,))
    model = keras.Model(inputs, WeightNoise(keras.layers.Dense(3), stddev=0.1)(inputs))
    new = regularizers.apply(model, kernel=0.01)
    assert [p for p in _regularized_paths(new)] == [new.trainable_weights[0].path]
    assert new.trainable_weights[0].path.endswith("kernel")
    x = np.ones((2, 4), "float32")
    assert np.array_equal(model(x), new(x))


def test_mixed_precision_penalty_in_float32():
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    reg = regularizers.l2(0.5)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2, kernel_initializer="ones", kernel_regularizer=reg)]
    )
    assert model.layers[0].compute_dtype == "float16"
    value = regularizers.penalty(model)
    assert keras.backend.standardize_dtype(value.dtype) == "float32" and float(value) == 3.0
    model.compile(keras.optimizers.SGD(0.0), "mse")
    loss = model.fit(np.zeros((4, 3)), np.zeros((4, 2)), verbose=0).history["loss"]
    assert loss == [pytest.approx(3.0)]  # data loss 0 (zero inputs, zero bias) + penalty
