"""Tests for keras_reg.blocks: layer order, shapes, norms, stochastic depth, validation."""

import keras
import numpy as np
import pytest

from keras_reg import regularizers
from keras_reg.blocks import conv_block, residual_block
from keras_reg.layers import GroupNorm, InvertedDropout, StochasticDepth


def _layers(inputs, outputs):
    return keras.Model(inputs, outputs).layers[1:]


def test_conv_block_order_conv_norm_activation_dropout():
    inputs = keras.Input((8, 8, 3))
    layers = _layers(inputs, conv_block(inputs, 8, dropout=0.2, name="b"))
    assert [type(l) for l in layers] == [
        keras.layers.Conv2D,
        keras.layers.BatchNormalization,
        keras.layers.Activation,
        InvertedDropout,
    ]
    assert [l.name for l in layers] == ["b_conv", "b_bn", "b_act", "b_drop"]
    assert layers[3].rate == pytest.approx(0.2)
    assert not layers[0].use_bias  # the norm's beta replaces the bias


def test_conv_block_without_norm_has_bias_and_no_dropout_layer():
    inputs = keras.Input((8, 8, 3))
    layers = _layers(inputs, conv_block(inputs, 8, norm=None))
    assert [type(l) for l in layers] == [keras.layers.Conv2D, keras.layers.Activation]
    assert layers[0].use_bias


def test_conv_block_group_norm_uses_keras_reg_group_norm():
    inputs = keras.Input((8, 8, 3))
    layers = _layers(inputs, conv_block(inputs, 8, norm="group", groups=4))
    norm = layers[1]
    assert isinstance(norm, GroupNorm) and norm.groups == 4


@pytest.mark.parametrize(
    "shape, conv", [((16, 3), keras.layers.Conv1D), ((4, 4, 4, 3), keras.layers.Conv3D)]
)
def test_conv_block_rank_selects_convolution(shape, conv):
    inputs = keras.Input(shape)
    outputs = conv_block(inputs, 4, strides=2)
    assert isinstance(_layers(inputs, outputs)[0], conv)
    assert outputs.shape[1] == shape[0] // 2 and outputs.shape[-1] == 4


def test_conv_block_matches_hand_built_keras_stack():
    # The same layers built by hand, with the block's weights, give the same outputs.
    inputs = keras.Input((6, 6, 2))
    block = keras.Model(inputs, conv_block(inputs, 4, activation="relu"))
    reference = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras.layers.Conv2D(4, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
        ]
    )
    reference.set_weights(block.get_weights())
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 2)).astype("float32")
    np.testing.assert_allclose(block(x, training=True), reference(x, training=True), atol=1e-6)


def test_conv_block_kernel_regularizer_float_is_l2():
    inputs = keras.Input((8, 8, 3))
    layers = _layers(inputs, conv_block(inputs, 8, kernel_regularizer=1e-3))
    assert isinstance(layers[0].kernel_regularizer, regularizers.L2)
    assert layers[0].kernel_regularizer.l2 == pytest.approx(1e-3)


def test_residual_block_identity_shortcut_and_add_without_drop_path():
    inputs = keras.Input((8, 8, 8))
    outputs = residual_block(inputs, 8, name="r")
    layers = _layers(inputs, outputs)
    names = [l.name for l in layers]
    assert "r_add" in names and not any("proj" in n for n in names)
    assert not any(isinstance(l, StochasticDepth) for l in layers)
    assert tuple(outputs.shape) == (None, 8, 8, 8)


def test_residual_block_projection_and_stochastic_depth_rate():
    inputs = keras.Input((8, 8, 4))
    outputs = residual_block(inputs, 8, strides=2, drop_path=0.25, norm="group", groups=2,
                             name="r")
    layers = _layers(inputs, outputs)
    depth = [l for l in layers if isinstance(l, StochasticDepth)]
    assert len(depth) == 1 and depth[0].rate == pytest.approx(0.25)
    assert any(l.name == "r_proj_conv" and l.strides == (2, 2) for l in layers)
    assert sum(isinstance(l, GroupNorm) for l in layers) == 3
    assert tuple(outputs.shape) == (None, 4, 4, 8)


def test_residual_block_is_identity_plus_branch_at_inference():
    inputs = keras.Input((4, 4, 4))
    model = keras.Model(inputs, residual_block(inputs, 4, drop_path=0.5, norm=None,
                                               activation=None))
    x = np.random.default_rng(1).normal(size=(3, 4, 4, 4)).astype("float32")
    conv_a, conv_b = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    expected = x + conv_b(conv_a(x))
    np.testing.assert_allclose(model(x, training=False), expected, atol=1e-5)


def test_unknown_norm_raises():
    with pytest.raises(ValueError, match="`norm`"):
        conv_block(keras.Input((8, 8, 3)), 4, norm="instance_batch")


def test_groups_not_dividing_filters_raises():
    with pytest.raises(ValueError, match="`groups`"):
        conv_block(keras.Input((8, 8, 3)), 6, norm="group", groups=4)


def test_bad_filters_raises():
    with pytest.raises(ValueError, match="`filters`"):
        conv_block(keras.Input((8, 8, 3)), 0)


def test_bad_dropout_raises():
    with pytest.raises(ValueError, match="`dropout`"):
        conv_block(keras.Input((8, 8, 3)), 4, dropout=1.5)


def test_bad_activation_raises():
    with pytest.raises(ValueError, match="`activation`"):
        conv_block(keras.Input((8, 8, 3)), 4, activation="not_an_activation")


def test_bad_input_rank_raises():
    with pytest.raises(ValueError, match="`x`"):
        conv_block(keras.Input((8,)), 4)


def test_bad_drop_path_raises():
    with pytest.raises(ValueError, match="`drop_path`"):
        residual_block(keras.Input((8, 8, 3)), 4, drop_path=-0.1)


def test_bad_kernel_regularizer_raises():
    with pytest.raises(ValueError, match="`kernel_regularizer`"):
        conv_block(keras.Input((8, 8, 3)), 4, kernel_regularizer="nope")
