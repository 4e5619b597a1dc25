"""Small classifiers built from `keras_reg.blocks`, regularized by a
`keras_reg.tuning.Regularization` and sized from the data: a residual CNN for images, an MLP
for feature vectors, a 1-D conv net for sequences. A search without `build_model` uses them."""

import math

import keras

from keras_reg import blocks
from keras_reg.layers import InvertedDropout, StochasticDepth
from keras_reg.data._datasets import input_kind

# Small data gives few steps per epoch: with Keras's momentum of 0.99 the moving statistics
# stay far from the data for tens of epochs; 0.9 follows them within an epoch or two.
_BN_MOMENTUM = 0.9


def default_width(num_examples, input_shape):
    """Filters of the CNN's first stage: 16 for up to 5,000 images of more than 200,000 pixels
    in all, else 32 (an epoch's cost grows with the square of the filters)."""
    pixels = int(input_shape[0]) * int(input_shape[1])
    if num_examples is None or num_examples > 5000 or num_examples * pixels <= 200_000:
        return 32
    return 16


def _stages(length, most):
    """Stages that halve `length` down to about 4 (at least 1, at most `most`)."""
    return max(1, min(most, int(math.log2(max(length, 2))) - 1))


def build_cnn(reg, input_shape, num_classes, width=None, num_examples=None):
    """A small residual CNN regularized by `reg`, sized from the data.

    Stages of `conv_block` + `residual_block` (drop-path rates from `reg.drop_path_rates`),
    doubling the width and halving the resolution between stages until the feature map is
    about 4 pixels wide (two stages for 8×8 digits, three for 28×28, four for 32×32), then
    global average pooling, dropout `reg.dropout` and a softmax classifier. Every kernel carries
    `reg.kernel_regularizer()`.

    Args:
        reg: a `keras_reg.tuning.Regularization`.
        input_shape: `(height, width, channels)`.
        num_classes: int >= 2.
        width: filters of the first stage; None sizes it from the data (`default_width`).
        num_examples: None or the number of training images.

    Returns:
        An uncompiled `keras.Model`.
    """
    input_shape = tuple(int(d) for d in input_shape)
    width = default_width(num_examples, input_shape) if width is None else width
    stages = _stages(min(input_shape[:2]), 4)
    rates = reg.drop_path_rates(stages)
    inputs = x = keras.Input(input_shape)
    for stage in range(stages):
        if stage:
            x = keras.layers.MaxPooling2D(2, padding="same")(x)
        filters = width * 2**stage
        x = blocks.conv_block(x, filters, norm=reg.norm,
                              kernel_regularizer=reg.kernel_regularizer())
        x = blocks.residual_block(x, filters, drop_path=rates[stage], norm=reg.norm,
                                  kernel_regularizer=reg.kernel_regularizer())
    x = keras.layers.GlobalAveragePooling2D()(x)
    return _classifier(inputs, x, reg, num_classes, "keras_reg_cnn")


def build_mlp(reg, input_shape, num_classes, width=128, depth=2):
    """A multilayer perceptron for feature vectors, regularized by `reg`.

    `depth` blocks of Dense → norm (`reg.norm`: batch or layer norm for "group", whose groups
    need channels of a spatial map) → ReLU → dropout `reg.dropout`, each after the first in a
    residual branch with drop-path `reg.drop_path_rates(depth)`; then a softmax classifier.

    Args:
        reg: a `keras_reg.tuning.Regularization`.
        input_shape: `(features,)`.
        num_classes: int >= 2.
        width: units per block.
        depth: blocks.

    Returns:
        An uncompiled `keras.Model`.
    """
    inputs = x = keras.Input(tuple(int(d) for d in input_shape))
    rates = reg.drop_path_rates(depth)
    for block in range(depth):
        y = keras.layers.Dense(width, use_bias=reg.norm is None,
                               kernel_regularizer=reg.kernel_regularizer())(x)
        if reg.norm is not None:
            y = (keras.layers.BatchNormalization() if reg.norm == "batch"
                 else keras.layers.LayerNormalization())(y)
        y = keras.layers.ReLU()(y)
        if reg.dropout:
            y = InvertedDropout(reg.dropout)(y)
        x = y if block == 0 else StochasticDepth(rates[block])([x, y])
    return _classifier(inputs, x, reg, num_classes, "keras_reg_mlp", dropout=False)


def build_conv1d(reg, input_shape, num_classes, width=32):
    """A small 1-D conv net for sequences `(steps, channels)`, regularized by `reg`.

    Stages of Conv1D → norm → ReLU, halving the length between stages until about 4 steps
    remain (at most three stages), then global average pooling, dropout `reg.dropout` and a
    softmax classifier.

    Returns:
        An uncompiled `keras.Model`.
    """
    input_shape = tuple(int(d) for d in input_shape)
    inputs = x = keras.Input(input_shape)
    for stage in range(_stages(input_shape[0], 3)):
        if stage:
            x = keras.layers.MaxPooling1D(2, padding="same")(x)
        x = keras.layers.Conv1D(width * 2**stage, 3, padding="same", use_bias=reg.norm is None,
                                kernel_regularizer=reg.kernel_regularizer())(x)
        if reg.norm is not None:
            x = (keras.layers.BatchNormalization() if reg.norm == "batch"
                 else keras.layers.GroupNormalization(groups=min(8, width)))(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return _classifier(inputs, x, reg, num_classes, "keras_reg_conv1d")


def _classifier(inputs, x, reg, num_classes, name, dropout=True):
    if dropout and reg.dropout:
        x = InvertedDropout(reg.dropout)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32",
                                 kernel_regularizer=reg.kernel_regularizer())(x)
    model = keras.Model(inputs, outputs, name=name)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = _BN_MOMENTUM
    return model


def build_default(reg, input_shape, num_classes, num_examples=None):
    """The built-in model for the data: `build_cnn` for images, `build_mlp` for feature
    vectors, `build_conv1d` for sequences."""
    kind = input_kind(input_shape)
    if kind == "images":
        return build_cnn(reg, input_shape, num_classes, num_examples=num_examples)
    if kind == "features":
        return build_mlp(reg, input_shape, num_classes)
    return build_conv1d(reg, input_shape, num_classes)
