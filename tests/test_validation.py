"""The shared argument checks (keras_reg/_validation.py) and their messages."""

import math

import keras
import numpy as np
import pytest

from keras_reg import data, layers, regularizers
from keras_reg._validation import FLOAT32_MAX, check_float

# Finite as a Python float, beyond float32 (TensorFlow's conversion of it fails deep inside).
BEYOND_FLOAT32 = 3.4028235677973366e38


def test_float32_max_is_the_float32_maximum():
    assert FLOAT32_MAX == float(np.finfo(np.float32).max)
    assert check_float("x", FLOAT32_MAX, low=0.0) == FLOAT32_MAX


@pytest.mark.parametrize("value", [BEYOND_FLOAT32, 1e39, -1e300])
def test_values_beyond_float32_are_rejected_with_the_name(value):
    with pytest.raises(ValueError, match=r"`stddev`.*float32 range.*Received: stddev="):
        check_float("stddev", value)


@pytest.mark.parametrize("build, name", [
    (lambda v: layers.WeightNoise(keras.layers.Dense(2), stddev=v), "stddev"),
    (lambda v: regularizers.l2(v), "l2"),
    (lambda v: regularizers.l1_l2(l1=v), "l1"),
    (lambda v: data.MixupCutMix(10, mixup_alpha=v), "mixup_alpha"),
    (lambda v: layers.GroupNorm(groups=1, epsilon=v), "epsilon"),
])
def test_constructors_reject_values_beyond_float32(build, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        build(BEYOND_FLOAT32)


def test_interval_message():
    with pytest.raises(ValueError, match=r"expected a float in \[0, 1\]\. Received: rate=1\.5"):
        check_float("rate", 1.5, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"finite float"):
        check_float("l2", math.inf, low=0.0)
    with pytest.raises(TypeError, match=r"`l2`"):
        check_float("l2", True)
