"""keras_reg._roles: a layer's role is decided by its Keras class, never by its class name."""

import keras
import pytest

from keras_reg import _roles
from keras_reg.layers import GroupNorm


@pytest.mark.parametrize(
    "layer",
    [
        keras.layers.BatchNormalization(),
        keras.layers.LayerNormalization(),
        keras.layers.GroupNormalization(groups=1),
        keras.layers.RMSNormalization(),
        keras.layers.UnitNormalization(),
        GroupNorm(groups=1),
    ],
)
def test_normalization_layers(layer):
    assert _roles.is_normalization(layer) and not _roles.is_embedding(layer)


def test_names_do_not_decide():
    class BiasNorm(keras.layers.Dense):  # a Dense that happens to be named like a norm
        pass

    class MyEmbedding(keras.layers.Dense):
        pass

    assert not _roles.is_normalization(BiasNorm(2))
    assert not _roles.is_embedding(MyEmbedding(2))
    assert _roles.is_embedding(keras.layers.Embedding(3, 2))


def test_spectral_normalization_is_a_wrapper_not_a_normalization():
    dense = keras.layers.Dense(2)
    spectral = keras.layers.SpectralNormalization(dense)
    assert not _roles.is_normalization(spectral)
    assert _roles.wrapped_layers(spectral) == {"layer": dense}


def test_wrapped_layers_of_time_distributed_and_bidirectional():
    dense = keras.layers.Dense(2)
    assert _roles.wrapped_layers(keras.layers.TimeDistributed(dense)) == {"layer": dense}
    bi = keras.layers.Bidirectional(keras.layers.SimpleRNN(2))
    assert _roles.wrapped_layers(bi) == {
        "layer": bi.forward_layer, "backward_layer": bi.backward_layer
    }
    assert _roles.wrapped_layers(dense) == {}


def test_role_layers_and_bias_variables_reach_nested_layers():
    inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3),
                              keras.layers.BatchNormalization()])
    model = keras.Sequential([keras.Input((3,)), inner,
                              keras.layers.SpectralNormalization(keras.layers.Dense(2))])
    assert _roles.role_layers(model, "normalization") == [inner.layers[1]]
    biases = _roles.bias_variables(model)
    assert len(biases) == 2 and all(v.path.endswith("bias") for v in biases)
