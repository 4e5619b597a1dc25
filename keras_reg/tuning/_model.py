"""The built-in small CNN of `search(build_model=None)`, and the default compile step."""

import math

import keras

from keras_reg import blocks
from keras_reg.layers import InvertedDropout

# Small data gives few steps per epoch: Keras's BatchNormalization momentum of 0.99 leaves the
# moving statistics far from the data for tens of epochs, so validation (and early stopping)
# would see a broken model. 0.9 follows the data within an epoch or two.
_BN_MOMENTUM = 0.9


def build_cnn(reg, input_shape, num_classes, width=32):
    """A small residual CNN regularized by `reg`, sized from the data.

    Stages of `conv_block` + `residual_block` (drop-path rates from `reg.drop_path_rates`),
    doubling the width and halving the resolution between stages until the feature map is
    about 4 pixels wide (two stages for 8×8 digits, four for 32×32 CIFAR), then global average
    pooling, dropout `reg.dropout` and a softmax classifier. Every kernel carries
    `reg.kernel_regularizer()`.

    Args:
        reg: a `keras_reg.tuning.Regularization`.
        input_shape: `(height, width, channels)`.
        num_classes: int >= 2.
        width: filters of the first stage.

    Returns:
        An uncompiled `keras.Model`.
    """
    input_shape = tuple(int(d) for d in input_shape)
    side = min(input_shape[:2])
    stages = max(1, min(4, int(math.log2(max(side, 2))) - 1))
    rates = reg.drop_path_rates(stages)
    inputs = keras.Input(input_shape)
    x = inputs
    for stage in range(stages):
        if stage:
            x = keras.layers.MaxPooling2D(2, padding="same")(x)
        filters = width * 2**stage
        x = blocks.conv_block(x, filters, norm=reg.norm,
                              kernel_regularizer=reg.kernel_regularizer())
        x = blocks.residual_block(x, filters, drop_path=rates[stage], norm=reg.norm,
                                  kernel_regularizer=reg.kernel_regularizer())
    x = keras.layers.GlobalAveragePooling2D()(x)
    if reg.dropout:
        x = InvertedDropout(reg.dropout)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32",
                                 kernel_regularizer=reg.kernel_regularizer())(x)
    model = keras.Model(inputs, outputs, name="keras_reg_cnn")
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = _BN_MOMENTUM
    return model


def compile_default(model, learning_rate=2e-3, steps_per_execution=1):
    """Adam, categorical cross-entropy (soft targets from Mixup/CutMix) and accuracy, no XLA."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        steps_per_execution=steps_per_execution,
        # XLA compilation costs ~10 s per trial on CPU for a small model and saves less than
        # that over a trial; every trial builds a new model, so it would be paid every time.
        jit_compile=False,
    )
    return model
