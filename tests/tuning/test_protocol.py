"""TrainingProtocol: the learning-rate schedule, the stopping rules and the callbacks' wiring."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_reg.callbacks import PreciseBatchNorm
from keras_reg.tuning.calibration import CalibratedCrossEntropy, calibrated_nll
from keras_reg.tuning.protocol import (CalibratedValidationLoss, HopelessTrialStopping,
                                       TrainingProtocol, ValidationDataLoss,
                                       ValidationTemperature, WarmupCosineDecay)


def reference_lr(step, peak, total, warmup, alpha, offset=0):
    """The schedule's formula, in NumPy."""
    t = step + offset
    if t < warmup:
        return peak * t / warmup
    progress = min(1.0, (t - warmup) / max(total - warmup, 1))
    return peak * (alpha + (1 - alpha) * 0.5 * (1 + math.cos(math.pi * progress)))


@pytest.mark.parametrize("total,warmup,alpha", [(100, 10, 0.0), (37, 0, 0.1), (8, 7, 0.5)])
def test_schedule_follows_the_warmup_cosine_formula(total, warmup, alpha):
    schedule = WarmupCosineDecay(3e-3, total_steps=total, warmup_steps=warmup, alpha=alpha)
    steps = np.arange(0, total + 5)
    got = [float(schedule(int(s))) for s in steps]
    expected = [reference_lr(s, 3e-3, total, warmup, alpha) for s in steps]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-9)


def test_new_lengths_apply_to_a_traced_step_without_retracing():
    schedule = WarmupCosineDecay(1e-3, total_steps=10, warmup_steps=2)
    traces = []

    @tf.function
    def lr(step):
        traces.append(1)
        return schedule(step)

    before = float(lr(tf.constant(6)))
    schedule.set_lengths(total_steps=40, warmup_steps=4, offset=3)
    after = float(lr(tf.constant(6)))
    assert len(traces) == 1
    assert before == pytest.approx(reference_lr(6, 1e-3, 10, 2, 0.0), rel=1e-5)
    assert after == pytest.approx(reference_lr(6, 1e-3, 40, 4, 0.0, offset=3), rel=1e-5)


def test_protocol_sets_warmup_share_and_resume_offset():
    protocol = TrainingProtocol(learning_rate=2e-3, warmup=0.1)
    schedule = protocol.schedule()
    protocol.set_lengths(schedule, steps_per_epoch=7, epochs=30, initial_epoch=4, step=5)
    assert (schedule.total_steps, schedule.warmup_steps) == (210, 21)
    # the optimizer at step 5 resumes epoch 4: schedule step 4*7
    assert float(schedule(5)) == pytest.approx(reference_lr(28, 2e-3, 210, 21, 0.0), rel=1e-5)
    assert TrainingProtocol(schedule="constant").schedule() == 4e-3


def test_schedule_config_round_trip():
    schedule = WarmupCosineDecay(1e-3, total_steps=50, warmup_steps=5, alpha=0.1)
    clone = WarmupCosineDecay.from_config(schedule.get_config())
    assert [float(clone(s)) for s in (0, 7, 50)] == [float(schedule(s)) for s in (0, 7, 50)]


def _stop_sequence(curves, values, **kwargs):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    callback = HopelessTrialStopping(curves, **kwargs)
    callback.set_model(model)
    model.stop_training = False  # what fit sets before the first epoch
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        callback.on_epoch_end(epoch, {"val_data_loss": value})
        if model.stop_training:
            break
    callback.on_train_end()
    return callback.stopped_epoch


def test_median_rule_stops_a_trial_worse_than_the_median_of_earlier_ones():
    curves = [[1.0, 0.9, 0.8, 0.7], [1.2, 1.1, 1.0, 0.9], [0.9, 0.8, 0.6, 0.5]]
    # best so far at epoch 3 is 1.05 > median(0.8, 1.0, 0.6) = 0.8: stops at the 3rd epoch
    assert _stop_sequence(curves, [1.3, 1.1, 1.05, 0.2], min_epochs=3) == 2
    assert len(curves) == 4 and curves[-1] == [1.3, 1.1, 1.05]
    # a trial at the median or better runs to the end
    assert _stop_sequence(curves, [1.0, 0.9, 0.8, 0.7], min_epochs=3) is None
    # too few earlier trials: never stops
    assert _stop_sequence([[0.1, 0.1, 0.1]], [9.0, 9.0, 9.0], min_epochs=1) is None
    # maximized objectives: lower is worse
    acc = [[0.5, 0.6, 0.7]] * 3
    assert _stop_sequence(acc, [0.5, 0.55], monitor="val_data_loss", direction="max",
                          min_epochs=2) == 1


def test_a_protected_trial_is_never_stopped_but_its_curve_counts():
    curves = [[1.0, 0.9, 0.8, 0.7], [1.2, 1.1, 1.0, 0.9], [0.9, 0.8, 0.6, 0.5]]
    assert _stop_sequence(curves, [1.3, 1.1, 1.05, 1.0], min_epochs=3, stop=False) is None
    assert curves[-1] == [1.3, 1.1, 1.05, 1.0]  # the whole curve, for the later trials


def _bn_model():
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2)(keras.layers.BatchNormalization()(inputs))
    return keras.Model(inputs, outputs)


def test_callbacks_wiring():
    data = tf.data.Dataset.from_tensor_slices((np.ones((8, 4), "float32"), np.ones(8))).batch(4)
    protocol = TrainingProtocol(patience=3, precise_bn_batches=5, objective="val_accuracy",
                                direction="max")
    curves = []
    callbacks = protocol.callbacks(_bn_model(), data, curves)
    kinds = [type(c) for c in callbacks]
    assert kinds == [ValidationDataLoss, PreciseBatchNorm, keras.callbacks.EarlyStopping,
                     HopelessTrialStopping]
    precise, early, hopeless = callbacks[1:]
    assert precise.data is data and precise.num_batches == 5
    assert (early.monitor, early.patience, early.restore_best_weights) == ("val_accuracy", 3,
                                                                           True)
    assert early.start_from_epoch == 0  # epochs unknown
    # under the cosine schedule, early stopping waits for half of the epochs
    early = protocol.callbacks(_bn_model(), data, epochs=21)[2]
    assert early.start_from_epoch == 10
    constant = TrainingProtocol(patience=3, schedule="constant")
    assert constant.callbacks(_bn_model(), data, epochs=21)[2].start_from_epoch == 0
    assert hopeless.curves is curves and hopeless.direction == "max"
    assert hopeless.min_epochs == 2  # epochs unknown: patience // 2 (at least 2)
    # hopeless trials are stopped from a third of the epochs on
    assert protocol.callbacks(_bn_model(), data, curves, epochs=30)[-1].min_epochs == 10
    assert hopeless.stop and not protocol.callbacks(_bn_model(), data, curves,
                                                    protected=True)[-1].stop
    # with validation batches, the calibrated loss is logged right after the data loss
    with_val = protocol.callbacks(_bn_model(), data, validation=data)
    assert isinstance(with_val[1], CalibratedValidationLoss) and with_val[1].validation is data
    # ... or, for a model the protocol compiled, read from its metric in the one validation
    compiled = _bn_model()
    protocol.compile(compiled)
    with_metric = protocol.callbacks(compiled, data, validation=data)
    assert isinstance(with_metric[1], ValidationTemperature)
    assert isinstance(with_metric[1].metric, CalibratedCrossEntropy)
    # no batch norm, no data, no curves, no patience: only the data-loss logger
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert [type(c) for c in TrainingProtocol().callbacks(plain, data)] == [ValidationDataLoss]
    assert [type(c) for c in TrainingProtocol().callbacks(_bn_model(), None)] == [
        ValidationDataLoss]
    assert [type(c) for c in TrainingProtocol(precise_batch_norm=False).callbacks(
        _bn_model(), data)] == [ValidationDataLoss]


@pytest.mark.parametrize("steps,passes", [(1, 32), (7, 5), (16, 2), (31, 2), (32, 1), (36, 1)])
def test_an_epoch_has_at_least_min_steps(steps, passes):
    protocol = TrainingProtocol()
    assert protocol.min_steps_per_epoch == 32
    assert protocol.passes_per_epoch(steps) == passes
    assert steps * passes >= 32 and steps * (passes - 1) < 32
    assert TrainingProtocol(min_steps_per_epoch=1).passes_per_epoch(steps) == 1


def test_epoch_data_repeats_the_batches():
    batches = tf.data.Dataset.range(10).batch(2)  # 5 batches
    epoch, steps = TrainingProtocol(min_steps_per_epoch=12).epoch_data(batches)
    assert steps == 15
    assert [b.numpy().tolist() for b in epoch][::5] == [[0, 1], [0, 1], [0, 1]]
    same, steps = TrainingProtocol(min_steps_per_epoch=5).epoch_data(batches)
    assert same is batches and steps == 5


@pytest.mark.parametrize("value", [0, -3, 2.5, "32"])
def test_rejects_bad_min_steps_per_epoch(value):
    with pytest.raises((ValueError, TypeError), match="min_steps_per_epoch"):
        TrainingProtocol(min_steps_per_epoch=value)


def test_rejects_unknown_schedule():
    with pytest.raises(ValueError, match="schedule"):
        TrainingProtocol(schedule="step")


def test_rejects_warmup_over_half():
    with pytest.raises(ValueError, match="warmup"):
        TrainingProtocol(warmup=0.9)


def test_rejects_nonpositive_learning_rate():
    with pytest.raises(ValueError, match="learning_rate"):
        TrainingProtocol(learning_rate=0.0)


def test_rejects_warmup_steps_beyond_total():
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupCosineDecay(1e-3, total_steps=10, warmup_steps=10)


def test_rejects_bad_direction():
    with pytest.raises(ValueError, match="direction"):
        HopelessTrialStopping([], direction="up")


def test_calibrated_validation_loss_is_logged_from_the_predictions():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 40)]
    # the validation batches are reshuffled on every pass: images and targets must stay paired
    val = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(40, seed=0).batch(16)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "categorical_crossentropy")
    history = model.fit(x, y, validation_data=val, epochs=2, verbose=0,
                        callbacks=[CalibratedValidationLoss(val)])
    expected, beta = calibrated_nll(model.predict(x, verbose=0), y)
    assert history.history["val_calibrated_loss"][-1] == pytest.approx(expected, rel=1e-5)
    assert history.history["val_temperature"][-1] == pytest.approx(1 / beta, rel=1e-5)
    assert history.history["val_calibrated_loss"][-1] <= history.history["val_loss"][-1] + 1e-6


def test_a_protocol_compiled_model_logs_the_calibrated_loss_in_its_one_validation_pass():
    """`val_calibrated_loss` / `val_temperature` from the compiled metric equal the exact
    two-pass figures (`calibrated_nll` on the predictions), and no second pass runs."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 64)]
    val = tf.data.Dataset.from_tensor_slices((x[:40], y[:40])).shuffle(40, seed=0).batch(16)
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    protocol = TrainingProtocol(precise_batch_norm=False, schedule="constant")
    protocol.compile(model)
    callbacks = protocol.callbacks(model, None, validation=val)
    assert not any(isinstance(c, CalibratedValidationLoss) for c in callbacks)
    history = model.fit(train, validation_data=val, epochs=2, verbose=0, callbacks=callbacks,
                        shuffle=False)
    expected, beta = calibrated_nll(model.predict(x[:40], verbose=0), y[:40])
    assert history.history["val_calibrated_loss"][-1] == pytest.approx(expected, abs=3e-5)
    assert history.history["val_temperature"][-1] == pytest.approx(1 / beta, rel=2e-3)



def test_the_docs_name_the_minimum_epoch_length_in_force():
    # README and search()'s docstring write the value out; a change of the default must
    # change them too.
    import os

    from keras_reg.tuning import protocol, search

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "README.md")) as f:
        readme = " ".join(f.read().split())
    assert f"an epoch is at least {protocol.MIN_STEPS_PER_EPOCH} steps" in readme
    assert (f"min_steps_per_epoch={protocol.MIN_STEPS_PER_EPOCH}" in readme)
    doc = " ".join(search.__doc__.split())
    assert f"an epoch is at least {protocol.MIN_STEPS_PER_EPOCH} steps" in doc
