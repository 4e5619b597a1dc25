"""RegularizationHyperModel and train(): the trial pipeline, reused models, the protocol."""

import keras
import keras_tuner
import numpy as np
import pytest

from keras_reg.data import load
from keras_reg.layers import InvertedDropout, StochasticDepth
from keras_reg.regularizers import L2
from keras_reg.tuning import Regularization, RegularizationSpace
from keras_reg.tuning.cnn import build_cnn
from keras_reg.tuning.hypermodel import RegularizationHyperModel, count_examples, train
from keras_reg.tuning.protocol import TrainingProtocol


@pytest.fixture(scope="module")
def digits():
    return load("digits", ("train[:64]", "train[80%:]"), batch_size=32, shuffle=False)


def _hypermodel(seed=0, **kwargs):
    return RegularizationHyperModel(RegularizationSpace(), None, (8, 8, 1), 10, seed=seed,
                                    num_examples=64, **kwargs)


def _first_images(hm, reg, data):
    train_ds, _, _ = hm.pipeline(reg, data)
    return next(iter(train_ds))[0].numpy()


def test_pipeline_augments_per_trial_and_is_deterministic_under_a_seed(digits):
    train_ds, _ = digits
    clean = next(iter(train_ds))[0].numpy()
    off = _first_images(_hypermodel(), Regularization(norm="batch"), train_ds)
    np.testing.assert_array_equal(off, clean)  # augmentation off: the images as loaded
    reg = Regularization(augment=1.0, input_noise=0.05)
    a = _first_images(_hypermodel(seed=3), reg, train_ds)
    b = _first_images(_hypermodel(seed=3), reg, train_ds)
    c = _first_images(_hypermodel(seed=4), reg, train_ds)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c) and not np.allclose(a, clean)
    # noise alone: x + N(0, 0.05²), the residual's spread is the stddev
    noisy = _first_images(_hypermodel(seed=3), Regularization(input_noise=0.05), train_ds)
    assert np.std(noisy - clean) == pytest.approx(0.05, rel=0.1)


def test_pipeline_mixes_labels_after_augmenting(digits):
    train_ds, _ = digits
    hm = _hypermodel()
    batch_x, batch_y = next(iter(hm.pipeline(Regularization(label_smoothing=0.1), train_ds)[0]))
    labels = next(iter(train_ds))[1].numpy()
    expected = np.full((len(labels), 10), 0.01)
    expected[np.arange(len(labels)), labels] = 0.91
    np.testing.assert_allclose(batch_y.numpy(), expected, atol=1e-6)


def test_reused_model_takes_each_trials_strengths(digits):
    hm = _hypermodel()
    hm.trial_id = "00"  # inside a trial: the shared, already traced model
    first = hm.make_model(Regularization(norm="batch", dropout=0.3, drop_path=0.2, l2=1e-3))
    weights = [w.numpy().copy() for w in first.trainable_weights]
    first.layers[1].kernel.assign(first.layers[1].kernel + 1.0)  # "trained"
    second = hm.make_model(Regularization(norm="batch", dropout=0.1, l2=2e-5))
    assert second is first  # same traced model, weights reset
    for got, want in zip(second.trainable_weights, weights):
        np.testing.assert_array_equal(got.numpy(), want)
    drops = [layer for layer in second.layers if isinstance(layer, InvertedDropout)]
    depths = [layer for layer in second.layers if isinstance(layer, StochasticDepth)]
    assert [float(d.rate) for d in drops] == pytest.approx([0.1])
    assert [float(d.rate) for d in depths] == [0.0] * len(depths)
    l2s = {id(layer.kernel_regularizer) for layer in second.layers
           if isinstance(getattr(layer, "kernel_regularizer", None), L2)}
    assert len(l2s) == 1  # one shared strength
    kernel = second.layers[1].kernel.numpy()
    reg = second.layers[1].kernel_regularizer
    assert float(reg(kernel)) == pytest.approx(2e-5 * float((kernel**2).sum()), rel=1e-5)
    # outside a trial (reloading a best model): a model of its own, with the same layers
    hm.trial_id = None
    own = hm.make_model(Regularization(norm="batch", dropout=0.1))
    assert own is not first
    assert [type(layer) for layer in own.layers] == [type(layer) for layer in first.layers]
    own.set_weights(first.get_weights())


def test_builtin_cnn_is_sized_from_the_data():
    def first_filters(n, side=28):
        model = build_cnn(Regularization(), (side, side, 1), 10, num_examples=n)
        return next(layer.filters for layer in model.layers
                    if isinstance(layer, keras.layers.Conv2D))

    assert first_filters(1000) == 16  # few large images: the narrow net
    assert first_filters(20000) == 32 and first_filters(None) == 32
    assert first_filters(1437, side=8) == 32  # small images: an epoch is cheap anyway


def test_count_examples(digits):
    assert count_examples(digits[0]) == 64


def test_train_runs_the_protocol_schedule_and_precise_batch_norm(digits):
    train_ds, val_ds = digits
    protocol = TrainingProtocol(learning_rate=1e-3, warmup=0.25, steps_per_execution=1,
                                min_steps_per_epoch=1)
    model, history = train(Regularization(norm="batch"), train_ds, val_ds, epochs=2, seed=0,
                           protocol=protocol)
    assert len(history.epoch) == 2 and "val_data_loss" in history.history
    # 2 epochs x 2 batches: the schedule ends at the cosine's end, alpha·peak = 0
    assert int(model.optimizer.iterations) == 4
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)
    # precise BN at the end of training: the first BN layer's moving statistics are the
    # mean / variance of its inputs (the first convolution's outputs) on the training images
    bn = next(layer for layer in model.layers
              if isinstance(layer, keras.layers.BatchNormalization))
    conv_out = keras.Model(model.inputs, bn.input)
    x = np.concatenate([b[0].numpy() for b in train_ds])
    acts = conv_out([x], training=True).numpy().reshape(-1, bn.input.shape[-1])
    np.testing.assert_allclose(bn.moving_mean.numpy(), acts.mean(0), rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), acts.var(0), rtol=1e-3, atol=1e-5)


@pytest.mark.slow  # 9 s; test_report.from_trials reads these curves in the default run
def test_trial_fit_records_the_objective_curve(digits):
    train_ds, val_ds = digits
    hm = _hypermodel()
    hp = keras_tuner.HyperParameters()
    hm.space.declare(hp)
    hp.values.update(hm.space.hp_values(Regularization(augment=0.25, norm="batch")))
    hm.trial_id = "00"
    model = hm.build(hp)
    assert hm.protocol.stop_hopeless
    history = hm.fit(hp, model, train_ds, validation_data=val_ds, epochs=1)
    assert hm.epochs_run["00"] == 1 and list(hm.curves) == [(1, 0)]
    assert hm.curves[(1, 0)] == [pytest.approx(history.history["val_data_loss"])]


@pytest.mark.parametrize("protected", [False, True])
def test_a_run_knows_whether_the_median_rule_stopped_it(digits, protected):
    # Three earlier runs at a perfect objective: from epoch 3 (a third of 9) this run is
    # worse than their median and stops, unless it is protected (a reference or probe).
    train_ds, val_ds = digits
    hm = _hypermodel(protocol=TrainingProtocol(patience=None, steps_per_execution=1,
                                               min_steps_per_epoch=1))
    reg = Regularization(norm=None)
    model = hm.make_model(reg)
    curves = [[0.0] * 9 for _ in range(3)]
    history = hm.run(reg, model, train_ds, val_ds, epochs=9, curves=curves,
                     protected=protected)
    assert len(history.epoch) == (9 if protected else 3)
    assert hm.stopped_as_hopeless() is (not protected)
    hm.run(reg, model, train_ds, val_ds, epochs=1)  # no curves: never stopped
    assert hm.stopped_as_hopeless() is False


def test_an_epoch_of_small_data_is_several_passes(digits):
    # 64 images at batch 32: 2 batches; an epoch of at least 7 steps is 4 passes (8 steps),
    # each pass reshuffled, augmented afresh; the schedule spans 2 x 8 steps
    train_ds, val_ds = digits
    protocol = TrainingProtocol(min_steps_per_epoch=7, steps_per_execution=1)
    hm = _hypermodel(protocol=protocol)
    reg = Regularization(augment=1.0, norm="batch")
    epoch, steps = protocol.epoch_data(train_ds)
    assert steps == 8 and int(epoch.cardinality()) == 8
    images = [b[0].numpy() for b in hm.pipeline(reg, epoch)[0]]
    assert len(images) == 8
    assert not np.allclose(images[0], images[2])  # the same images, drawn anew
    model, history = train(reg, train_ds, val_ds, epochs=2, seed=0, protocol=protocol)
    assert int(model.optimizer.iterations) == 16
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)
    assert len(history.epoch) == 2  # one validation per epoch, not per pass


def test_train_rejects_a_non_regularization(digits):
    with pytest.raises(TypeError, match="reg"):
        train({"l2": 0.0}, *digits, epochs=1)


def test_build_model_must_return_a_model():
    hm = RegularizationHyperModel(RegularizationSpace(), lambda reg: "not a model", (8, 8, 1), 10)
    with pytest.raises(TypeError, match="build_model"):
        hm.make_model(Regularization())


def test_call_builder_passes_the_data_shape_to_builders_that_take_it():
    from keras_reg.tuning.hypermodel import call_builder

    seen = {}

    def plain(reg):
        seen["plain"] = reg
        return "plain"

    def sized(reg, input_shape=(8, 8, 1), num_classes=10):
        seen["sized"] = (input_shape, num_classes)
        return "sized"

    reg = Regularization(dropout=0.1)
    assert call_builder(plain, reg, (12, 12, 3), 3) == "plain"
    assert seen["plain"] is reg
    assert call_builder(sized, reg, [12, 12, 3], 3) == "sized"
    assert seen["sized"] == ((12, 12, 3), 3)
