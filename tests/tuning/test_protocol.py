"""TrainingProtocol: its settings (config, frozen, validation), the schedule the compiled
optimizer follows, the epoch length, and the callbacks' behaviour in a run."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_reg import regularizers
from keras_reg.metrics import calibrated_nll
from keras_reg.tuning import Regularization, TrainingProtocol
from keras_reg.tuning.protocol import HopelessTrialStopping
from keras_reg.tuning.tuner import parse_objective


# ------------------------------------------------------------------------------ settings

def test_config_round_trips_through_json():
    protocol = TrainingProtocol(learning_rate=1e-3, warmup=0.1, schedule="constant",
                                batch_size=16, min_steps_per_epoch=4, steps_per_execution=2,
                                precise_batch_norm=False, precise_bn_batches=3, patience=7,
                                stop_hopeless=False)
    config = json.loads(json.dumps(protocol.get_config()))
    clone = TrainingProtocol.from_config(config)
    assert clone == protocol and hash(clone) == hash(protocol)
    assert clone.get_config() == protocol.get_config()
    assert repr(clone) == repr(protocol)
    assert TrainingProtocol.from_config(TrainingProtocol().get_config()) == TrainingProtocol()
    assert TrainingProtocol(patience=None) != TrainingProtocol()


def test_frozen_replace_gives_a_changed_copy():
    protocol = TrainingProtocol(learning_rate=1e-3)
    with pytest.raises(AttributeError, match="replace"):
        protocol.learning_rate = 1.0
    faster = protocol.replace(learning_rate=2e-3, patience=None)
    assert (faster.learning_rate, faster.patience) == (2e-3, None)
    assert (protocol.learning_rate, protocol.patience) == (1e-3, "auto")  # unchanged
    assert faster.replace(learning_rate=1e-3, patience="auto") == protocol
    with pytest.raises(ValueError, match="warmup"):
        protocol.replace(warmup=0.9)  # a copy is validated as a new protocol is


@pytest.mark.parametrize("name, value, error", [
    ("learning_rate", 0.0, ValueError),
    ("learning_rate", -1e-3, ValueError),
    ("learning_rate", "fast", TypeError),
    ("warmup", 0.6, ValueError),
    ("warmup", -0.1, ValueError),
    ("schedule", "step", ValueError),
    ("batch_size", 0, ValueError),
    ("batch_size", 2.5, TypeError),
    ("min_steps_per_epoch", 0, ValueError),
    ("min_steps_per_epoch", "32", TypeError),
    ("steps_per_execution", 0, ValueError),
    ("precise_batch_norm", 1, TypeError),
    ("precise_bn_batches", 0, ValueError),
    ("patience", -1, ValueError),
    ("patience", "never", (TypeError, ValueError)),
    ("stop_hopeless", "yes", TypeError),
])
def test_bad_arguments_name_themselves(name, value, error):
    with pytest.raises(error, match=f"`{name}`"):
        TrainingProtocol(**{name: value})


@pytest.mark.parametrize("batches, passes", [(1, 32), (7, 5), (16, 2), (31, 2), (32, 1),
                                             (36, 1)])
def test_an_epoch_is_at_least_min_steps_per_epoch(batches, passes):
    protocol = TrainingProtocol()
    assert protocol.min_steps_per_epoch == 32
    assert protocol.passes_per_epoch(batches) == passes
    assert batches * passes >= 32 and batches * (passes - 1) < 32  # the fewest passes
    assert TrainingProtocol(min_steps_per_epoch=1).passes_per_epoch(batches) == 1
    with pytest.raises(ValueError, match="batches"):
        protocol.passes_per_epoch(0)


def test_patience_for():
    assert TrainingProtocol().patience_for(epochs=8) == 5  # auto: at least 5
    assert TrainingProtocol().patience_for(epochs=40) == 10  # auto: a quarter of the epochs
    assert TrainingProtocol(patience=3).patience_for(epochs=40) == 3
    assert TrainingProtocol(patience=None).patience_for(epochs=40) is None


# ------------------------------------------------------------------------------ schedule

def _linear():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])


def _rate_at(model, step):
    model.optimizer.iterations.assign(step)
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def _warmup_cosine(step, peak, total, warmup):
    """The schedule's formula: linear warm-up from 0, then a cosine from the peak to 0."""
    if step < warmup:
        return peak * step / warmup
    progress = min(1.0, (step - warmup) / (total - warmup))
    return peak * 0.5 * (1.0 + math.cos(math.pi * progress))


@pytest.mark.parametrize("steps_per_epoch, epochs, warmup, warmup_steps", [
    (10, 5, 0.1, 5),  # 50 steps, 5 of warm-up
    (7, 3, 0.0, 0),  # no warm-up: the cosine from the first step
    (3, 1, 0.5, 2),  # round(1.5) = 2 steps of warm-up out of 3
])
def test_compiled_optimizer_follows_warmup_then_cosine(steps_per_epoch, epochs, warmup,
                                                       warmup_steps):
    protocol = TrainingProtocol(learning_rate=3e-3, warmup=warmup)
    model = protocol.compile(_linear(), steps_per_epoch=steps_per_epoch, epochs=epochs)
    total = steps_per_epoch * epochs
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    for step in range(total + 3):
        assert _rate_at(model, step) == pytest.approx(
            _warmup_cosine(step, 3e-3, total, warmup_steps), rel=1e-5, abs=1e-10), step
    if warmup_steps:
        assert _rate_at(model, warmup_steps) == pytest.approx(3e-3)  # the peak, after warm-up
    assert _rate_at(model, total) == pytest.approx(0.0, abs=1e-10)  # decayed to 0 at the end


def test_constant_schedule_and_a_compiled_model_keeps_its_optimizer():
    model = TrainingProtocol(learning_rate=2e-3, schedule="constant").compile(
        _linear(), steps_per_epoch=4, epochs=2)
    assert [_rate_at(model, s) for s in (0, 3, 8)] == pytest.approx([2e-3] * 3)
    own = _linear()
    own.compile(keras.optimizers.SGD(0.5), loss="categorical_crossentropy")
    model = TrainingProtocol().compile(own, steps_per_epoch=4, epochs=2)
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert _rate_at(model, 3) == pytest.approx(0.5)


# ------------------------------------------------------------------------------ a run

@pytest.fixture(scope="module")
def features():
    """48 + 32 examples of 4 features, 3 classes, batches of 16 (train: 3 batches)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0.5).astype("int64")
    train = tf.data.Dataset.from_tensor_slices((x[:48], y[:48])).batch(16)
    val = tf.data.Dataset.from_tensor_slices((x[48:], y[48:])).batch(16)
    return train, val, x[48:], y[48:]


def test_a_run_has_the_epochs_steps_and_validation_figures_it_promises(features):
    # 3 batches; an epoch of at least 7 steps is 3 passes = 9 steps; 2 epochs = 18 steps,
    # at whose end the cosine is at 0; the validation figures are those of the predictions
    train, val, val_x, val_y = features
    protocol = TrainingProtocol(min_steps_per_epoch=7, steps_per_execution=1, patience=None)
    assert protocol.steps_per_epoch(train) == 9
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(
        3, activation="softmax", kernel_regularizer=regularizers.l2(1e-2))])
    protocol.compile(model, steps_per_epoch=9, epochs=2)
    objective = parse_objective("val_calibrated_loss")
    history = protocol.fit(model, Regularization(), train, val, num_classes=3, epochs=2,
                           objective=objective)
    assert history.epoch == [0, 1]  # one validation per epoch, not per pass
    assert int(model.optimizer.iterations) == 18
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-10)
    logs = {k: v[-1] for k, v in history.history.items()}
    probabilities = model.predict(val_x, verbose=0)
    expected, beta = calibrated_nll(probabilities, val_y)
    assert logs["val_calibrated_loss"] == pytest.approx(expected, abs=3e-5)
    assert logs["val_temperature"] == pytest.approx(1 / beta, rel=2e-3)
    # val_data_loss: the cross-entropy of the predictions, without the L2 penalty
    cross_entropy = -np.mean(np.log(probabilities[np.arange(len(val_y)), val_y]))
    penalty = 1e-2 * float(np.sum(model.layers[0].kernel.numpy() ** 2))
    assert logs["val_data_loss"] == pytest.approx(cross_entropy, rel=1e-4)
    assert logs["val_loss"] == pytest.approx(cross_entropy + penalty, rel=1e-4)


def test_the_training_stream_runs_untuned_with_the_same_elements(features):
    """The endless training stream a run reads turns tf.data's autotuner off (deleting its
    iterator mid-stream waited for the autotuner's thread, up to 23 s after a trial); the
    augmented, mixed batches are the ones the tuned pipeline gives."""
    from keras_reg.tuning.protocol import _pipeline

    train = features[0]
    reg = Regularization(mixup_alpha=0.4, input_noise=0.1)
    stream, _ = _pipeline(reg, train.repeat(), None, 3, seed=3)
    assert stream.options().autotune.enabled is False
    on = tf.data.Options()
    on.autotune.enabled = True
    tuned = _pipeline(reg, train.repeat(), None, 3, seed=3)[0].with_options(on)
    assert tuned.options().autotune.enabled is True
    for (x, y), (x_tuned, y_tuned) in zip(stream.take(7), tuned.take(7)):
        np.testing.assert_array_equal(x.numpy(), x_tuned.numpy())
        np.testing.assert_array_equal(y.numpy(), y_tuned.numpy())


# ------------------------------------------------------------------------------ callbacks

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
    assert _stop_sequence(acc, [0.5, 0.55], direction="max", min_epochs=2) == 1
    # stop=False (a labelled trial): runs on, and its whole curve counts for later ones
    assert _stop_sequence(curves, [1.3, 1.1, 1.05, 1.0], min_epochs=3, stop=False) is None
    assert curves[-1] == [1.3, 1.1, 1.05, 1.0]


@pytest.mark.parametrize("kwargs, name", [({"direction": "up"}, "direction"),
                                          ({"min_epochs": 0}, "min_epochs"),
                                          ({"min_trials": 0}, "min_trials")])
def test_median_rule_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        HopelessTrialStopping([], **kwargs)
