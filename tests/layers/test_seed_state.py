"""The seed generator state of keras_reg's random layers travels with their weights.

Keras 3.15 saves a layer's variables but not its `SeedGenerator` state: a model restored from a
checkpoint would draw its masks from the seed's start again. keras_reg stores the state under
its own key, so a restored model continues the stream, and files without the key still load.
"""

import keras
import numpy as np
import pytest

from keras_reg import layers as L

MAKERS = {
    "InvertedDropout": lambda: L.InvertedDropout(0.5, seed=3),
    "DropPath": lambda: L.DropPath(0.5, seed=3),
    "StochasticDepth": lambda: L.StochasticDepth(0.5, seed=3),
    "WeightNoise": lambda: L.WeightNoise(keras.layers.Dense(4), stddev=0.5, seed=3),
    "DropBlock": lambda: L.DropBlock(0.5, block_size=2, seed=3),
}


def _model(name):
    layer = MAKERS[name]()
    inputs = keras.Input((6,) if name != "DropBlock" else (6, 6, 2))
    if name == "StochasticDepth":
        outputs = layer([inputs, keras.layers.Dense(6, name="branch")(inputs)])
    else:
        outputs = layer(inputs)
    return keras.Model(inputs, outputs), layer


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_restored_model_continues_the_mask_stream(tmp_path, name):
    shape = (16, 6) if name != "DropBlock" else (16, 6, 6, 2)
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    model, layer = _model(name)
    for _ in range(3):  # advance the stream past its start
        model(x, training=True)
    path = str(tmp_path / "model.weights.h5")
    model.save_weights(path)
    want = _np(model(x, training=True))

    fresh, fresh_layer = _model(name)
    fresh.set_weights(model.get_weights())
    from_seed = _np(fresh(x, training=True))  # the stream's start: other masks
    assert not np.array_equal(from_seed, want)
    fresh.load_weights(path)
    np.testing.assert_array_equal(_np(fresh(x, training=True)), want)
    np.testing.assert_array_equal(_np(fresh_layer.seed_generator.state),
                                  _np(layer.seed_generator.state))


def test_keras_file_round_trip_keeps_seed_state(tmp_path):
    x = np.ones((32, 6), "float32")
    model, _ = _model("InvertedDropout")
    model(x, training=True)
    path = str(tmp_path / "model.keras")
    model.save(path)
    want = _np(model(x, training=True))
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(_np(loaded(x, training=True)), want)


def test_weights_without_seed_state_still_load():
    layer = L.InvertedDropout(0.2, seed=1)
    before = _np(layer.seed_generator.state)
    layer.load_own_variables({"0": np.float32(0.4)})  # a store written without the state
    assert layer.rate == pytest.approx(0.4)
    np.testing.assert_array_equal(_np(layer.seed_generator.state), before)
