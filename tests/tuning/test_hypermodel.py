"""RegularizationHyperModel and train(): what a trial builds for the data, the pipeline each
trial's values put in front of the model, and the median rule around labelled trials."""

import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

from keras_reg.tuning import (Regularization, RegularizationHyperModel, RegularizationSpace,
                              TrainingProtocol, parse_objective, refit, train)
from tests.tuning._tiny import tiny_model

OBJECTIVE = parse_objective("val_calibrated_loss")


def _hypermodel(build_model=None, space=None, protocol=None, **kwargs):
    return RegularizationHyperModel(space or RegularizationSpace(), build_model,
                                    protocol or TrainingProtocol(), OBJECTIVE, seed=0, **kwargs)


def _hp(space, reg):
    """The hyperparameters of a trial with the values of `reg`."""
    hp = keras_tuner.HyperParameters()
    space.declare(hp)
    hp.values.update(space.hp_values(reg))
    return hp


def test_before_adapt_build_only_declares_the_space():
    space = RegularizationSpace(l2=(0.0, 1e-3), dropout=[0.0, 0.2], mixup_alpha="off")
    hp = keras_tuner.HyperParameters()
    assert _hypermodel(space=space).build(hp) is None
    declared = {p.name for p in hp.space}
    assert declared == set(space.names)
    assert "mixup_alpha" not in declared and {"l2", "dropout", "norm"} <= declared


@pytest.mark.parametrize("input_shape, name", [((8, 8, 1), "keras_reg_cnn"),
                                               ((30,), "keras_reg_mlp"),
                                               ((32, 2), "keras_reg_conv1d")])
def test_the_built_in_model_fits_the_data(input_shape, name):
    hm = _hypermodel()
    hm.adapt(input_shape=list(input_shape), num_classes=3, steps_per_epoch=4, epochs=2)
    model = hm.build(keras_tuner.HyperParameters())
    assert model.name == name and model.compiled
    assert tuple(model.input_shape[1:]) == input_shape and model.output_shape == (None, 3)
    probabilities = model.predict(np.zeros((2, *input_shape), "float32"), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_a_builder_gets_the_trials_values_and_the_data_shape_it_asks_for():
    seen = []

    def build(reg, input_shape, num_classes):
        seen.append((reg, input_shape, num_classes))
        return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(
            num_classes, activation="softmax", kernel_regularizer=reg.kernel_regularizer())])

    space = RegularizationSpace(augment=[0.0, 0.5], cutmix_alpha=[0.0, 0.2])
    reg = Regularization(l2=1e-4, dropout=0.1, augment=0.5, cutmix_alpha=0.2, norm="batch")
    hm = _hypermodel(build, space=space)
    hm.adapt(input_shape=[12], num_classes=4, steps_per_epoch=2, epochs=1)
    model = hm.build(_hp(space, reg))
    ((got, input_shape, num_classes),) = seen
    assert (input_shape, num_classes) == ((12,), 4)
    # feature vectors: the image-only values are off in what the builder sees
    assert got == Regularization(l2=1e-4, dropout=0.1, norm="batch")
    kernel = model.layers[0].kernel.numpy()
    assert float(model.layers[0].kernel_regularizer(kernel)) == pytest.approx(
        1e-4 * float(np.sum(kernel**2)), rel=1e-5)


def test_a_builder_that_returns_no_model_is_refused():
    hm = _hypermodel(lambda reg: "not a model")
    hm.adapt(input_shape=[8, 8, 1], num_classes=10, steps_per_epoch=2, epochs=1)
    with pytest.raises(TypeError, match="build_model"):
        hm.build(keras_tuner.HyperParameters())


# ------------------------------------------------------------------------------ the pipeline

class Recorder(keras.Model):
    """A linear classifier that records, over its training batches, what the pipeline fed it:
    the spread of its inputs and the extremes of its targets."""

    def __init__(self, num_classes=2, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(num_classes, activation="softmax")
        self.seen = {"input_std": tf.Variable(0.0), "target_max": tf.Variable(0.0),
                     "target_min": tf.Variable(1.0), "softest": tf.Variable(0.0),
                     "row_sum_error": tf.Variable(0.0)}

    def call(self, x):
        return self.dense(x)

    def train_step(self, data):
        x, y = data[0], tf.cast(data[1], "float32")
        seen = self.seen
        seen["input_std"].assign(tf.maximum(seen["input_std"], tf.math.reduce_std(x)))
        seen["target_max"].assign(tf.maximum(seen["target_max"], tf.reduce_max(y)))
        seen["target_min"].assign(tf.minimum(seen["target_min"], tf.reduce_min(y)))
        # how far a target is from 0 or 1 at most: 0 for one-hot and smoothed-free targets
        seen["softest"].assign(tf.maximum(seen["softest"],
                                          tf.reduce_max(tf.minimum(y, 1.0 - y))))
        seen["row_sum_error"].assign(tf.maximum(
            seen["row_sum_error"], tf.reduce_max(tf.abs(tf.reduce_sum(y, axis=-1) - 1.0))))
        return super().train_step(data)


@pytest.mark.parametrize("reg, input_std, targets", [
    (Regularization(), 0.0, (0.0, 1.0)),  # one-hot targets, clean inputs
    (Regularization(mixup_alpha=1.0, input_noise=0.1), "noisy", "soft"),
    pytest.param(Regularization(label_smoothing=0.1, input_noise=0.1), 0.1, (0.05, 0.95),
                 marks=pytest.mark.slow),  # 10-30 s: the smoothing's exact values
])
def test_a_trials_pipeline_transforms_inputs_and_targets(reg, input_std, targets):
    # zero inputs, alternating labels: any spread of the inputs is the trial's noise, any
    # target off {0, 1} its label smoothing or Mixup
    x = np.zeros((64, 6), "float32")
    y = np.arange(64) % 2
    recorders = []

    def build(reg):
        recorders.append(Recorder())
        return recorders[-1]

    protocol = TrainingProtocol(min_steps_per_epoch=1, steps_per_execution=1, patience=None,
                                batch_size=32)
    model, history = train(reg, (x, y), (x[:16], y[:16]), protocol=protocol,
                           build_model=build, epochs=1, seed=0)
    assert model is recorders[0] and history.epoch == [0]
    seen = {k: float(v.numpy()) for k, v in model.seen.items()}
    if input_std == "noisy":  # noise of stddev 0.1, then mixed with another example's
        assert 0.03 < seen["input_std"] < 0.12
    else:
        assert seen["input_std"] == pytest.approx(input_std, rel=0.15, abs=1e-7)
    assert seen["row_sum_error"] < 1e-5  # targets stay distributions
    if targets == "soft":  # Mixup with alpha 1: mixing weights spread over (0, 1)
        assert seen["softest"] > 0.05
    else:
        assert (seen["target_min"], seen["target_max"]) == pytest.approx(targets, abs=1e-6)


def test_train_rejects_a_non_regularization(data):
    with pytest.raises(TypeError, match="reg"):
        train({"l2": 0.0}, *data, epochs=1)


# ------------------------------------------------------------------------------ median rule

def test_the_median_rule_stops_a_searched_trial_but_not_a_labelled_one(data):
    # Three earlier runs of this process at a perfect objective: from epoch 3 (patience None:
    # at least 6 // 2) a run is worse than their median; the searched trial stops there, the
    # labelled one (`protected`) runs its 4 epochs.
    space = RegularizationSpace(l2="off", dropout=[0.0, 0.1], drop_path="off",
                                mixup_alpha="off", cutmix_alpha="off", label_smoothing="off",
                                augment="off", input_noise="off", norm="off")
    protocol = TrainingProtocol(min_steps_per_epoch=1, steps_per_execution=1, patience=None)
    labelled = Regularization()  # dropout 0: the labelled trial here
    hm = _hypermodel(tiny_model, space=space, protocol=protocol,
                     protected=lambda hp: hp.values["dropout"] == 0.0)
    hm.adapt(**hm.data_of(data[0], epochs=4))
    hm.curves.extend([[0.0] * 4 for _ in range(3)])
    epochs = {}
    for reg in (Regularization(dropout=0.1), labelled):
        hp = _hp(space, reg)
        history = hm.fit(hp, hm.build(hp), data[0], validation_data=data[1])
        epochs[reg.dropout] = len(history.epoch)
    assert epochs == {0.1: 3, 0.0: 4}


# ------------------------------------------------------------------------------ refit

def test_refit_trains_the_best_epochs_on_train_and_validation(data):
    protocol = TrainingProtocol(min_steps_per_epoch=1, steps_per_execution=1, patience=None)
    seen = []

    class Count(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)

    model, history = refit(Regularization(l2=1e-4), data[0], data[1], epochs=5, best_epoch=2,
                           protocol=protocol, build_model=tiny_model, seed=0,
                           callbacks=[Count()])
    assert history.epoch == [0, 1] and not any(k.startswith("val_") for k in history.history)
    # 64 training + 360 validation digits in batches of 32: 14 steps an epoch, two epochs
    n = 64 + int(data[1].unbatch().reduce(0, lambda c, _: c + 1))
    assert len(seen) == 2 * -(-n // 32)
    # the schedule is the trial's (planned for 5 epochs): after 2 of them it has not decayed
    rate = model.optimizer.learning_rate
    assert 0.5 * protocol.learning_rate < float(rate) <= protocol.learning_rate


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(best_epoch=6), ValueError, "best_epoch"),
    (dict(best_epoch=0), ValueError, "best_epoch"),
    (dict(validation=None), ValueError, "validation"),
    (dict(epochs=2.0), TypeError, "epochs"),
])
def test_refit_rejects_bad_arguments(data, kwargs, error, name):
    args = {**dict(validation=data[1], epochs=5, best_epoch=2), **kwargs}
    with pytest.raises(error, match=name):
        refit(Regularization(), data[0], args.pop("validation"), build_model=tiny_model,
              **args)
