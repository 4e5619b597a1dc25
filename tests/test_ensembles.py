"""`ensemble`: the mean prediction of several models, as one model that saves and exports."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_reg.ensembles import ensemble


def _classifier(seed, classes=3, features=4):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((features,)), keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dense(classes, activation="softmax")])


def test_the_output_is_the_mean_of_the_members_probabilities():
    models = [_classifier(seed) for seed in range(3)]
    x = np.random.default_rng(0).random((16, 4), dtype="float32")
    expected = np.mean([m.predict(x, verbose=0) for m in models], axis=0)
    averaged = ensemble(models)
    got = averaged.predict(x, verbose=0)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    assert averaged.count_params() == sum(m.count_params() for m in models)
    assert [layer.name for layer in averaged.layers[1:4]] == ["member_0", "member_1", "member_2"]


def test_save_load_and_export_round_trip(tmp_path):
    models = [_classifier(seed) for seed in range(2)]
    averaged = ensemble(models, name="top2")
    x = np.random.default_rng(1).random((5, 4), dtype="float32")
    expected = averaged.predict(x, verbose=0)
    averaged.save(tmp_path / "e.keras")
    loaded = keras.models.load_model(tmp_path / "e.keras")
    assert loaded.name == "top2"
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-6)
    averaged.export(str(tmp_path / "saved"), verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "saved"))  # kept: it owns the variables
    served = reloaded.serve(tf.constant(x))
    np.testing.assert_allclose(served.numpy(), expected, atol=1e-6)


def test_bad_members_are_named():
    with pytest.raises(TypeError, match="`models`"):
        ensemble(_classifier(0))
    with pytest.raises(ValueError, match="at least two"):
        ensemble([_classifier(0)])
    with pytest.raises(TypeError, match=r"`models\[1\]`"):
        ensemble([_classifier(0), "model"])
    with pytest.raises(ValueError, match="one output shape"):
        ensemble([_classifier(0), _classifier(1, classes=5)])
    with pytest.raises(ValueError, match=r"`models\[0\]`.*one input and one output"):
        inputs = keras.Input((4,))
        two_heads = keras.Model(inputs, [keras.layers.Dense(3)(inputs),
                                         keras.layers.Dense(3)(inputs)])
        ensemble([two_heads, two_heads])
    with pytest.raises(ValueError, match="built model"):
        ensemble([keras.Sequential([keras.layers.Dense(3)]), _classifier(0)])


def test_the_search_re_exports_it():
    from keras_reg import tuning

    assert tuning.ensemble is ensemble and "ensemble" in tuning.__all__
