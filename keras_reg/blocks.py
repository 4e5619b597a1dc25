"""Functional-API building blocks with regularization in the right places.

`conv_block` is Conv → Norm → Activation → Dropout, the usual order (Ioffe & Szegedy, 2015):
normalization before the activation so the non-linearity sees standardized inputs, dropout last
so that a dropped unit stays exactly 0 (dropout before a sigmoid would turn 0 into 0.5). The
convolution has no bias when a normalization follows (the norm's `beta` replaces it).
`residual_block` is the two-convolution ResNet block whose residual branch is dropped per
sample with `keras_reg.layers.StochasticDepth` (drop path). Both pick Conv1D / Conv2D / Conv3D
from the rank of `x` and follow `keras.config.image_data_format()`.
"""

import keras

from keras_reg._validation import check_choice, check_int, check_rate, check_seed
from keras_reg.layers import GroupNorm, InvertedDropout, StochasticDepth
from keras_reg.regularizers._arguments import as_regularizer

__all__ = ["conv_block", "residual_block"]

_NORMS = ("batch", "group", "layer", None)
_CONVS = {3: keras.layers.Conv1D, 4: keras.layers.Conv2D, 5: keras.layers.Conv3D}


def _channel_axis():
    return 1 if keras.config.image_data_format() == "channels_first" else -1


def _check_input(x):
    rank = len(getattr(x, "shape", ()))
    if rank not in _CONVS:
        raise ValueError(
            "Invalid value for argument `x`: expected a tensor of rank 3, 4 or 5 (batch, "
            f"spatial dims, channels). Received: x with shape {getattr(x, 'shape', None)}"
        )
    return rank


def _check_size(name, value):
    if isinstance(value, (tuple, list)):
        return tuple(check_int(name, v, low=1) for v in value)
    return check_int(name, value, low=1)


def _check_activation(activation):
    if activation is None:
        return None
    try:
        keras.activations.get(activation)
    except (ValueError, TypeError):
        raise ValueError(
            "Invalid value for argument `activation`: expected a Keras activation name or "
            f"callable, or None. Received: activation={activation!r}"
        ) from None
    return activation


def _name(prefix, suffix):
    return None if prefix is None else f"{prefix}_{suffix}"


def _norm_layer(norm, groups, name):
    axis = _channel_axis()
    if norm == "batch":
        return keras.layers.BatchNormalization(axis=axis, name=_name(name, "bn"))
    if norm == "group":
        return GroupNorm(groups=groups, axis=axis, name=_name(name, "gn"))
    return keras.layers.LayerNormalization(axis=axis, name=_name(name, "ln"))


def conv_block(
    x,
    filters,
    kernel_size=3,
    strides=1,
    norm="batch",
    activation="relu",
    dropout=0.0,
    kernel_regularizer=None,
    groups=8,
    name=None,
    padding="same",
    seed=None,
):
    """Conv → Norm → Activation → Dropout on a Functional-API tensor.

    Args:
        x: a symbolic tensor of rank 3, 4 or 5 (Conv1D / Conv2D / Conv3D).
        filters: int >= 1, output channels.
        kernel_size: int or tuple, convolution window.
        strides: int or tuple.
        norm: `"batch"` (BatchNormalization), `"group"` (keras_reg `GroupNorm` with `groups`),
            `"layer"` (LayerNormalization over channels) or None (the conv then has a bias).
        activation: Keras activation name or callable, or None.
        dropout: float in [0, 1]; a keras_reg `InvertedDropout` (schedulable with
            `callbacks.RateScheduler`) when > 0, no layer when 0.
        kernel_regularizer: regularizer for the convolution kernel (a float means `l2(value)`).
        groups: int >= 1 dividing `filters`, for `norm="group"`.
        name: prefix for the layer names (`{name}_conv`, `_bn`/`_gn`/`_ln`, `_act`, `_drop`).
        padding: `"same"` or `"valid"`.
        seed: seed of the dropout.

    Returns:
        The output tensor.

    Example:

    >>> from keras_reg.blocks import conv_block
    >>> inputs = keras.Input((8, 8, 1))
    >>> y = conv_block(inputs, 16, norm="group", groups=4, dropout=0.1, name="b1")
    >>> [layer.name for layer in keras.Model(inputs, y).layers[1:]]
    ['b1_conv', 'b1_gn', 'b1_act', 'b1_drop']
    """
    rank = _check_input(x)
    filters = check_int("filters", filters, low=1)
    kernel_size = _check_size("kernel_size", kernel_size)
    strides = _check_size("strides", strides)
    norm = check_choice("norm", norm, _NORMS)
    activation = _check_activation(activation)
    dropout = check_rate(dropout, name="dropout")
    kernel_regularizer = as_regularizer(kernel_regularizer, "kernel_regularizer")
    groups = check_int("groups", groups, low=1)
    if norm == "group" and filters % groups:
        raise ValueError(
            f"Invalid value for argument `groups`: expected a divisor of filters={filters} for "
            f"norm='group'. Received: groups={groups}"
        )
    padding = check_choice("padding", padding, ("same", "valid"))
    seed = check_seed(seed)

    x = _CONVS[rank](
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=norm is None,
        kernel_regularizer=kernel_regularizer,
        name=_name(name, "conv"),
    )(x)
    if norm is not None:
        x = _norm_layer(norm, groups, name)(x)
    if activation is not None:
        x = keras.layers.Activation(activation, name=_name(name, "act"))(x)
    if dropout > 0.0:
        x = InvertedDropout(dropout, seed=seed, name=_name(name, "drop"))(x)
    return x


def residual_block(
    x,
    filters,
    kernel_size=3,
    strides=1,
    drop_path=0.0,
    norm="batch",
    activation="relu",
    dropout=0.0,
    kernel_regularizer=None,
    groups=8,
    name=None,
    seed=None,
):
    """A two-convolution residual block with stochastic depth on the residual branch.

    `out = activation(shortcut + StochasticDepth(residual))`, where the residual branch is
    `conv_block(x)` (Conv → Norm → Activation → Dropout) followed by Conv → Norm, and the
    shortcut is `x`, or a 1×1 projection (Conv → Norm) when `strides` or the channel count
    change. With `drop_path > 0` the branch is dropped per sample with probability `drop_path`
    in training (survivors scaled by `1/(1 − drop_path)`), by a keras_reg `StochasticDepth`
    whose rate `callbacks.RateScheduler` can change; with 0 the two paths are simply added.
    Use `keras_reg.layers.drop_path_rates(depth, max_rate)` for the linear decay rule.

    Args:
        x: symbolic tensor of rank 3, 4 or 5.
        filters: int >= 1, output channels.
        kernel_size: int or tuple.
        strides: int or tuple; the first convolution and the projection use it.
        drop_path: float in [0, 1], the stochastic-depth drop probability of this block.
        norm, activation, dropout, kernel_regularizer, groups, seed: as in `conv_block`
            (dropout sits inside the residual branch, after its first activation).
        name: prefix for the layer names (`{name}_a_*`, `{name}_b_*`, `{name}_proj_*`,
            `{name}_drop_path` or `{name}_add`, `{name}_out`).

    Returns:
        The output tensor.

    Example:

    >>> from keras_reg.blocks import residual_block
    >>> inputs = keras.Input((8, 8, 16))
    >>> y = residual_block(inputs, 32, strides=2, drop_path=0.1, name="res")
    >>> tuple(y.shape)
    (None, 4, 4, 32)

    Reference:
        He et al., "Deep Residual Learning for Image Recognition", CVPR 2016.
        Huang et al., "Deep Networks with Stochastic Depth", ECCV 2016.
    """
    rank = _check_input(x)
    filters = check_int("filters", filters, low=1)
    strides_checked = _check_size("strides", strides)
    drop_path = check_rate(drop_path, name="drop_path")
    norm = check_choice("norm", norm, _NORMS)
    activation = _check_activation(activation)
    kernel_regularizer = as_regularizer(kernel_regularizer, "kernel_regularizer")
    seed = check_seed(seed)
    common = dict(norm=norm, kernel_regularizer=kernel_regularizer, groups=groups)

    residual = conv_block(
        x, filters, kernel_size, strides, activation=activation, dropout=dropout,
        name=_name(name, "a"), seed=seed, **common,
    )
    residual = conv_block(
        residual, filters, kernel_size, 1, activation=None, name=_name(name, "b"), **common
    )
    in_channels = x.shape[_channel_axis()]
    unit_stride = all(s == 1 for s in (
        strides_checked if isinstance(strides_checked, tuple) else (strides_checked,)
    ))
    shortcut = x
    if not unit_stride or in_channels != filters:
        shortcut = conv_block(
            x, filters, 1, strides, activation=None, name=_name(name, "proj"), **common
        )
    if drop_path > 0.0:
        x = StochasticDepth(drop_path, seed=seed, name=_name(name, "drop_path"))(
            [shortcut, residual]
        )
    else:
        x = keras.layers.Add(name=_name(name, "add"))([shortcut, residual])
    if activation is not None:
        x = keras.layers.Activation(activation, name=_name(name, "out"))(x)
    return x
