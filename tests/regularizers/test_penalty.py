"""Tests for keras_reg.regularizers.penalty: the total weight penalty against hand computations."""

import keras
import numpy as np
import pytest

from keras_reg import regularizers


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


def test_penalty_not_a_model_raises():
    with pytest.raises(TypeError, match="`model`"):
        regularizers.penalty(np.ones(3))



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
