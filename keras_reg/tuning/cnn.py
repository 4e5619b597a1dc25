"""The built-in small CNN of `search(build_model=None)`, sized from the data."""

import math

import keras

from keras_reg import blocks, regularizers
from keras_reg.layers import InvertedDropout, StochasticDepth

# Small data gives few steps per epoch: Keras's BatchNormalization momentum of 0.99 leaves the
# moving statistics far from the data for tens of epochs. 0.9 follows the data within an epoch
# or two (and the search's protocol recomputes them exactly before each validation).
_BN_MOMENTUM = 0.9


def default_width(num_examples, input_shape):
    """Filters of the first stage: 16 for few but large images, else 32.

    An epoch of the built-in CNN costs about `num_examples · height · width · filters²`, and
    is compute-bound on a CPU. Halving the filters makes it about four times cheaper, which
    matters where the images are large and too few (up to 5,000) to need the capacity; small
    images (a cheap epoch) and plentiful data keep 32 filters.
    """
    pixels = int(input_shape[0]) * int(input_shape[1])
    if num_examples is None or num_examples > 5000 or num_examples * pixels <= 200_000:
        return 32
    return 16


def build_cnn(reg, input_shape, num_classes, width=None, tunable=False, num_examples=None):
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
        width: filters of the first stage; None sizes it from the data (`default_width`: 16
            for up to 5,000 images of more than 200,000 pixels in all, else 32).
        tunable: build every regularizing layer even at strength 0 (dropout, stochastic
            depth, one shared L2 regularizer), so that `set_regularization(model, reg)` can
            give the same model, already traced, the values of another trial.
        num_examples: None or the number of training images.

    Returns:
        An uncompiled `keras.Model`.
    """
    input_shape = tuple(int(d) for d in input_shape)
    if width is None:
        width = default_width(num_examples, input_shape)
    side = min(input_shape[:2])
    stages = max(1, min(4, int(math.log2(max(side, 2))) - 1))
    if tunable:  # placeholders: set_regularization assigns the real values
        shared = regularizers.l2(reg.l2)
        kernel_regularizer = lambda: shared  # noqa: E731
        rates = [0.5] * stages
        dropout = 0.5
    else:
        kernel_regularizer = reg.kernel_regularizer
        rates = reg.drop_path_rates(stages)
        dropout = reg.dropout
    inputs = keras.Input(input_shape)
    x = inputs
    for stage in range(stages):
        if stage:
            x = keras.layers.MaxPooling2D(2, padding="same")(x)
        filters = width * 2**stage
        x = blocks.conv_block(x, filters, norm=reg.norm,
                              kernel_regularizer=kernel_regularizer())
        x = blocks.residual_block(x, filters, drop_path=rates[stage], norm=reg.norm,
                                  kernel_regularizer=kernel_regularizer())
    x = keras.layers.GlobalAveragePooling2D()(x)
    if dropout:
        x = InvertedDropout(dropout)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32",
                                 kernel_regularizer=kernel_regularizer())(x)
    model = keras.Model(inputs, outputs, name="keras_reg_cnn")
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = _BN_MOMENTUM
    if tunable:
        set_regularization(model, reg)
    return model


def _l2_regularizers(model):
    """The keras_reg L2 regularizers on `model`'s layers (each once)."""
    found = {}
    for layer in model.layers:
        for attribute in ("kernel_regularizer", "depthwise_regularizer", "pointwise_regularizer"):
            r = getattr(layer, attribute, None)
            if isinstance(r, regularizers.L2):
                found[id(r)] = r
    return list(found.values())


def set_regularization(model, reg):
    """Gives a `build_cnn(..., tunable=True)` model the strengths of `reg` (same norm).

    Rates and the L2 strength live in variables read at run time, so the model's traced
    training step stays valid: a trial costs its epochs, not a new trace.
    """
    drops = [layer for layer in model.layers if isinstance(layer, InvertedDropout)]
    depths = [layer for layer in model.layers if isinstance(layer, StochasticDepth)]
    for layer in drops:
        layer.rate = reg.dropout
    for layer, rate in zip(depths, reg.drop_path_rates(len(depths)) if depths else []):
        layer.rate = rate
    for r in _l2_regularizers(model):
        r.l2 = reg.l2
