"""The built-in classifiers: sized from the data, regularized by a `Regularization`."""

import keras
import numpy as np
import pytest

from keras_reg import models
from keras_reg.layers import InvertedDropout, StochasticDepth
from keras_reg.tuning import Regularization


def _layers(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


@pytest.mark.parametrize("side, stages, last", [(8, 2, 4), (28, 3, 7), (32, 4, 4)])
def test_the_cnn_halves_the_resolution_to_about_four_pixels(side, stages, last):
    model = models.build_cnn(Regularization(norm="batch"), (side, side, 1), 10)
    pools = _layers(model, keras.layers.MaxPooling2D)
    assert len(pools) == stages - 1
    assert tuple(pools[-1].output.shape[1:3]) == (last, last)
    assert model.output_shape == (None, 10)


def test_the_cnn_width_follows_the_data_size():
    assert models.default_width(None, (28, 28, 1)) == 32
    assert models.default_width(1000, (28, 28, 1)) == 16  # 784,000 pixels: the cheaper net
    assert models.default_width(200, (8, 8, 1)) == 32  # 12,800 pixels
    assert models.default_width(60000, (28, 28, 1)) == 32
    narrow = models.build_cnn(Regularization(), (28, 28, 1), 10, num_examples=1000)
    wide = models.build_cnn(Regularization(), (28, 28, 1), 10, width=32)
    assert wide.count_params() > 3 * narrow.count_params()


def test_the_regularization_reaches_the_layers():
    plain = models.build_cnn(Regularization(), (8, 8, 1), 10)
    assert not _layers(plain, InvertedDropout)
    assert not _layers(plain, keras.layers.BatchNormalization)
    assert all(getattr(layer, "kernel_regularizer", None) is None for layer in plain.layers)
    reg = Regularization(l2=1e-4, dropout=0.3, drop_path=0.2, norm="batch")
    model = models.build_cnn(reg, (8, 8, 1), 10)
    assert [round(float(layer.rate), 6) for layer in _layers(model, InvertedDropout)] == [0.3]
    assert [round(float(layer.rate), 6) for layer in _layers(model, StochasticDepth)] == [0.2]
    # (the first stage's rate is 0: no drop-path layer)
    kernels = [layer for layer in model.layers if hasattr(layer, "kernel_regularizer")]
    assert kernels and all(layer.kernel_regularizer is not None for layer in kernels)
    # small data: moving statistics that follow the data within an epoch or two
    assert {layer.momentum for layer in _layers(model, keras.layers.BatchNormalization)} == {0.9}


@pytest.mark.parametrize("norm, kind", [("batch", keras.layers.BatchNormalization),
                                        ("group", keras.layers.LayerNormalization)])
def test_the_mlp_blocks(norm, kind):
    reg = Regularization(dropout=0.2, drop_path=0.1, norm=norm)
    model = models.build_mlp(reg, (30,), 3, width=64, depth=3)
    assert len(_layers(model, kind)) == 3 and len(_layers(model, InvertedDropout)) == 3
    assert [round(float(layer.rate), 6) for layer in _layers(model, StochasticDepth)] == [0.05, 0.1]
    assert model.output_shape == (None, 3)


def test_the_conv1d_net_for_sequences():
    model = models.build_conv1d(Regularization(norm="group"), (32, 2), 4)
    assert len(_layers(model, keras.layers.Conv1D)) == 3
    assert len(_layers(model, keras.layers.GroupNormalization)) == 3
    assert model.output_shape == (None, 4)


@pytest.mark.parametrize("shape, name", [((8, 8, 1), "keras_reg_cnn"), ((30,), "keras_reg_mlp"),
                                         ((32, 2), "keras_reg_conv1d")])
def test_build_default_picks_by_input_rank_and_round_trips(tmp_path, shape, name):
    reg = Regularization(l2=1e-4, dropout=0.1, drop_path=0.1, norm="batch")
    model = models.build_default(reg, shape, 3)
    assert model.name == name
    x = np.random.default_rng(0).uniform(size=(4, *shape)).astype("float32")
    expected = model.predict(x, verbose=0)
    np.testing.assert_allclose(expected.sum(axis=1), 1.0, atol=1e-5)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-6)
