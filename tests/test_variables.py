"""keras_reg._variables: the variable-backed float settings."""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_reg._validation import check_float
from keras_reg._variables import float_setting, float_variable, read_float


class _Holder:
    scale = float_setting("scale", functools.partial(check_float, "scale", low=0.0))

    def __init__(self, scale, **kwargs):
        self.scale_variable = float_variable(check_float("scale", scale, low=0.0), "scale",
                                             **kwargs)


class _Reads(keras.layers.Layer):
    def __init__(self):
        super().__init__(dtype="mixed_float16")
        self.rate_variable = float_variable(0.25, "rate", layer=self)

    def call(self, x):
        return self.rate_variable.value + 0.0 * keras.ops.cast(keras.ops.sum(x), "float32")


def test_a_layer_variable_is_a_non_trainable_float32_weight_never_autocast():
    layer = _Reads()
    variable = layer.rate_variable
    assert layer.non_trainable_weights == [variable] and layer.trainable_weights == []
    assert variable.dtype == "float32" and read_float(variable) == 0.25
    # Under mixed_float16, an autocast variable would be read as float16 inside `call`.
    assert keras.backend.standardize_dtype(layer(np.ones((1, 2))).dtype) == "float32"


def test_the_setting_reads_validates_and_assigns_in_place():
    holder = _Holder(0.5)
    variable = holder.scale_variable
    assert holder.scale == 0.5
    holder.scale = 2.0
    assert holder.scale_variable is variable and read_float(variable) == 2.0
    with pytest.raises(ValueError, match="`scale`.*Received: scale=-1"):
        holder.scale = -1
    with pytest.raises(TypeError, match="`scale`"):
        holder.scale = "big"
    assert holder.scale == 2.0


def test_a_traced_function_sees_assignments_without_retracing():
    holder = _Holder(1.0)
    traces = []

    @tf.function
    def times(x):
        traces.append(1)
        return x * holder.scale_variable.value

    assert float(times(tf.constant(3.0))) == 3.0
    holder.scale = 4.0
    assert float(times(tf.constant(3.0))) == 12.0
    assert len(traces) == 1


def test_created_inside_a_traced_function_it_is_a_real_variable():
    holder = []

    @tf.function
    def make():
        if not holder:
            holder.append(_Holder(3.0))
        return holder[0].scale_variable.value * 2.0

    assert float(make()) == 6.0
    assert holder[0].scale == 3.0  # readable eagerly: created outside the trace


def test_strategy_scope_gives_a_mirrored_variable():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    explicit = _Holder(1.5, strategy=strategy).scale_variable
    with strategy.scope():
        ambient = _Holder(1.5).scale_variable
    for variable in (explicit, ambient):
        assert isinstance(variable.value, tf.distribute.DistributedValues)
        np.testing.assert_equal(read_float(variable), 1.5)
