"""keras_reg.distribute.fit under the default strategy and MirroredStrategy (2 logical CPUs).

References: `model.fit` on one device (same seeds) for losses and weights; for per-replica
randomness, the masks `keras.layers.Dropout` draws from the documented per-replica seeds.
"""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_reg import distribute


def _data(n=37, batch=8):
    # 37 examples in batches of 8: the last batch (5) splits 3 / 2 across two replicas.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = rng.integers(0, 3, size=(n,)).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def _model(strategy, regularize=True):
    with strategy.scope():
        keras.utils.set_random_seed(1)
        reg = keras.regularizers.l2(0.01) if regularize else None
        model = keras.Sequential(
            [
                keras.Input((6,)),
                keras.layers.Dense(8, activation="relu", kernel_regularizer=reg),
                keras.layers.Dense(3),
            ]
        )
        model.compile(
            optimizer=keras.optimizers.SGD(0.1, momentum=0.5),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    return model


def _schedule(epoch, lr):
    return 0.1 / (1 + epoch)


@pytest.mark.slow  # one of the longest default tests; CI's slow step runs it
def test_mirrored_equals_single_device_model_fit(mirrored_strategy):
    ds = _data()
    reference = _model(tf.distribute.get_strategy())
    ref_hist = reference.fit(
        ds, epochs=2, verbose=0, validation_data=ds,
        callbacks=[keras.callbacks.LearningRateScheduler(_schedule)],
    ).history

    strategy = mirrored_strategy
    model = _model(strategy)
    hist = distribute.fit(
        model, ds, epochs=2, strategy=strategy, verbose=0, validation_data=ds,
        callbacks=[keras.callbacks.LearningRateScheduler(_schedule)],
    ).history

    assert sorted(hist) == sorted(ref_hist)
    for key in ref_hist:
        np.testing.assert_allclose(hist[key], ref_hist[key], atol=1e-5, err_msg=key)
    for got, want in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(got, want, atol=1e-5)
    assert float(np.asarray(model.optimizer.learning_rate.numpy())) == pytest.approx(0.1 / 2)


def test_default_strategy_dataset_function_and_steps_per_epoch():
    # A dataset function (distribute_datasets_from_function) and a repeated dataset with
    # steps_per_epoch give the run of the plain dataset.
    strategy = tf.distribute.get_strategy()
    plain = _model(strategy, regularize=False)
    want = distribute.fit(plain, _data(32), epochs=2, verbose=0).history["loss"]

    by_fn = _model(strategy, regularize=False)
    got_fn = distribute.fit(by_fn, lambda ctx: _data(32), epochs=2, verbose=0).history["loss"]
    by_steps = _model(strategy, regularize=False)
    got_steps = distribute.fit(
        by_steps, _data(32).repeat(), epochs=2, steps_per_epoch=4, verbose=0
    ).history["loss"]
    np.testing.assert_allclose(got_fn, want, atol=1e-6)
    np.testing.assert_allclose(got_steps, want, atol=1e-6)


def _mask_model(strategy, rate=0.5, seed=3):
    with strategy.scope():
        model = keras.Sequential(
            [
                keras.Input((64,)),
                keras.layers.Dropout(rate, seed=seed),
                keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros"),
            ]
        )
        # loss = mean over the batch of the output, so one SGD step (lr 1) moves the kernel by
        # minus the batch mean of the dropped inputs: it records the masks of every replica.
        model.compile(optimizer=keras.optimizers.SGD(1.0), loss=lambda y, p: p[:, 0])
    return model


def _one_step(strategy, **kwargs):
    model = _mask_model(strategy)
    ds = tf.data.Dataset.from_tensor_slices((tf.ones((2, 64)), tf.zeros((2, 1)))).batch(2)
    distribute.fit(model, ds, epochs=1, strategy=strategy, verbose=0, **kwargs)
    return -model.get_weights()[0][:, 0]


def test_replica_masks_differ_and_follow_the_replica_seed(mirrored_strategy):
    strategy = mirrored_strategy
    got = _one_step(strategy)
    # Replica r draws what a Dropout seeded with seed + r * stride draws first.
    ones = tf.ones((1, 64))
    masks = [
        keras.layers.Dropout(0.5, seed=3 + r * distribute.REPLICA_SEED_STRIDE)(ones, training=True)
        for r in range(2)
    ]
    assert not np.array_equal(masks[0], masks[1])
    np.testing.assert_array_equal(got, (masks[0][0] + masks[1][0]) / 2)
    # Reproducible: same seed, same masks.
    np.testing.assert_array_equal(_one_step(strategy), got)


def test_replica_seeds_off_shows_identical_masks(mirrored_strategy):
    # The Keras behaviour `replica_seeds` fixes: one mirrored SeedGenerator state, so both
    # replicas draw the same mask and the batch mean only holds 0 or 2.
    got = _one_step(mirrored_strategy, replica_seeds=False)
    assert set(np.unique(got)) <= {0.0, 2.0}


def test_seed_state_stays_mirrored_after_fit(mirrored_strategy):
    strategy = mirrored_strategy
    model = _mask_model(strategy)
    ds = tf.data.Dataset.from_tensor_slices((tf.ones((4, 64)), tf.zeros((4, 1)))).batch(2)
    distribute.fit(model, ds, epochs=1, strategy=strategy, verbose=0)
    state = model.layers[0].seed_generator.state.value
    values = [v.numpy().tolist() for v in strategy.experimental_local_results(state)]
    assert values == [[3, 2], [3, 2]]  # seed back in place, counter advanced by 2 steps


def test_callbacks_see_epoch_and_batch_logs():
    events = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            events.append(("epoch_begin", epoch))

        def on_train_batch_end(self, batch, logs=None):
            events.append(("batch", batch, sorted(logs)))

        def on_epoch_end(self, epoch, logs=None):
            events.append(("epoch_end", epoch, sorted(logs)))

    model = _model(tf.distribute.get_strategy())
    distribute.fit(model, _data(16), epochs=1, callbacks=[Record()], verbose=0)
    assert events == [
        ("epoch_begin", 0),
        ("batch", 0, ["accuracy", "loss"]),
        ("batch", 1, ["accuracy", "loss"]),
        ("epoch_end", 0, ["accuracy", "loss"]),
    ]


def test_early_stopping_stops():
    model = _model(tf.distribute.get_strategy())

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = epoch == 1

    history = distribute.fit(model, _data(16), epochs=5, callbacks=[Stop()], verbose=0)
    assert history.epoch == [0, 1]


def test_uncompiled_model_is_rejected():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="model"):
        distribute.fit(model, _data(), verbose=0)


def test_model_outside_strategy_scope_is_rejected(mirrored_strategy):
    model = _model(tf.distribute.get_strategy())
    model.build((None, 6))
    with pytest.raises(ValueError, match="strategy"):
        distribute.fit(model, _data(), strategy=mirrored_strategy, verbose=0)


def test_numpy_data_is_rejected():
    model = _model(tf.distribute.get_strategy())
    with pytest.raises(TypeError, match="`x`"):
        distribute.fit(model, np.zeros((4, 6)), verbose=0)


def test_bad_epochs_is_rejected():
    with pytest.raises(ValueError, match="epochs"):
        distribute.fit(_model(tf.distribute.get_strategy()), _data(), epochs=-1)


def test_bad_steps_per_epoch_is_rejected():
    with pytest.raises(ValueError, match="steps_per_epoch"):
        distribute.fit(_model(tf.distribute.get_strategy()), _data(), steps_per_epoch=0)


def test_bad_strategy_is_rejected():
    with pytest.raises(TypeError, match="strategy"):
        distribute.fit(_model(tf.distribute.get_strategy()), _data(), strategy="mirrored")


def test_untested_keras_version_warns_once():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert distribute.check_keras_version("2.99.0") is False
        assert distribute.check_keras_version("2.99.1") is False
    assert len(caught) == 1 and "2.99.0" in str(caught[0].message)
    assert distribute.check_keras_version(keras.__version__) is True


def test_worker_seed_folds_the_pipeline_id():
    ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1)
    assert distribute.worker_seed(5, ctx) == 5 + distribute.REPLICA_SEED_STRIDE
    with pytest.raises(ValueError, match="seed"):
        distribute.worker_seed(None, ctx)


def _every_layer_model(strategy):
    from keras_reg import layers as L

    with strategy.scope():
        keras.utils.set_random_seed(2)
        inputs = keras.Input((8, 8, 1))
        x = L.WeightNoise(keras.layers.Conv2D(4, 3, padding="same"), 0.05, seed=1)(inputs)
        x = L.GroupNorm(groups=2)(x)
        x = keras.layers.Activation("relu")(x)
        y = keras.layers.Conv2D(4, 3, padding="same")(x)
        y = L.DropPath(0.2, seed=2)(y)
        x = L.StochasticDepth(0.2, seed=3)([x, y])
        x = L.StochasticDepth(0.3, seed=4, mode="batch")([x, x])
        x = keras.layers.GlobalAveragePooling2D()(x)
        x = L.InvertedDropout(0.3, seed=5)(x)
        outputs = keras.layers.Dense(10)(x)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.SGD(0.05),
                      loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    return model


def _mixed_digits():
    from keras_reg import data as D

    ds = D.load("digits", "train[:64]", batch_size=16, shuffle=False)
    return ds.map(D.MixupCutMix(10, seed=0)).map(lambda x, y: (D.Cutout(2, seed=1)(x), y))


@pytest.mark.slow
def test_every_layer_and_mixup_under_mirrored_model_fit(mirrored_strategy):
    """Keras's own model.fit works under MirroredStrategy with every keras_reg layer and
    MixupCutMix / Cutout in the pipeline; distribute.fit with replica_seeds=False (the same
    mask semantics as model.fit: one mirrored seed state) gives the same losses."""
    strategy = mirrored_strategy
    # One pipeline for the three runs: its transforms key their draws by the batch content and
    # the data is not shuffled, so every pass (epoch, run) yields the same mixed batches.
    data = _mixed_digits()
    keras_fit = _every_layer_model(strategy)
    want = keras_fit.fit(data, epochs=2, verbose=0).history["loss"]
    ours = _every_layer_model(strategy)
    got = distribute.fit(ours, data, epochs=2, strategy=strategy, verbose=0,
                         replica_seeds=False).history["loss"]
    assert np.all(np.isfinite(want))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for a, b in zip(ours.get_weights(), keras_fit.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    # With per-replica seeds the replicas draw differently: another (finite) trajectory.
    per_replica = distribute.fit(_every_layer_model(strategy), data, epochs=2,
                                 strategy=strategy, verbose=0).history["loss"]
    assert np.all(np.isfinite(per_replica)) and not np.allclose(per_replica, want, rtol=1e-6)


@pytest.mark.slow
def test_mixed_float16_matches_float32(mirrored_strategy):
    # compile wraps the optimizer in a LossScaleOptimizer: fit scales the loss and the
    # optimizer unscales the gradients; the losses follow the float32 run closely.
    strategy = mirrored_strategy
    want = distribute.fit(_model(strategy), _data(32), epochs=2, strategy=strategy,
                          verbose=0).history["loss"]
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    model = _model(strategy)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    got = distribute.fit(model, _data(32), epochs=2, strategy=strategy, verbose=0)
    np.testing.assert_allclose(got.history["loss"], want, rtol=1e-2)
