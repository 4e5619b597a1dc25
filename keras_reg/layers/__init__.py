"""Regularization layers: dropout, drop path, DropBlock, stochastic depth, group norm, weight
noise; and temperature scaling, the calibration of a classifier's output.

Every layer is serializable under the `keras_reg` package name, works in Sequential and
Functional models, under `jit_compile=True`, `tf.distribute` and mixed precision, and is the
exact identity (or a fixed scaling) at inference, so an exported model holds no random op.
"""

from keras_reg.layers.dropout import InvertedDropout, inverted_dropout
from keras_reg.layers.drop_path import DropPath, drop_path, drop_path_rates
from keras_reg.layers.drop_block import DropBlock, drop_block
from keras_reg.layers.stochastic_depth import StochasticDepth
from keras_reg.layers.group_norm import GroupNorm, group_norm
from keras_reg.layers.weight_noise import WeightNoise
from keras_reg.layers.temperature_scaling import TemperatureScaling, temperature_scaling

__all__ = [
    "InvertedDropout",
    "inverted_dropout",
    "DropPath",
    "drop_path",
    "drop_path_rates",
    "DropBlock",
    "drop_block",
    "StochasticDepth",
    "GroupNorm",
    "group_norm",
    "WeightNoise",
    "TemperatureScaling",
    "temperature_scaling",
]
