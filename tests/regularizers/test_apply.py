"""Tests for keras_reg.regularizers.apply: the rebuilt model, its regularized kernels, its errors."""

import keras
import numpy as np
import pytest

from keras_reg import regularizers


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


def test_apply_reaches_the_layer_inside_weight_noise():
    from keras_reg.layers import WeightNoise

    inputs = keras.Input((4,))
    model = keras.Model(inputs, WeightNoise(keras.layers.Dense(3), stddev=0.1)(inputs))
    new = regularizers.apply(model, kernel=0.01)
    assert [p for p in _regularized_paths(new)] == [new.trainable_weights[0].path]
    assert new.trainable_weights[0].path.endswith("kernel")
    x = np.ones((2, 4), "float32")
    assert np.array_equal(model(x), new(x))
