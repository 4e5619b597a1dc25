"""Tests for keras_reg.callbacks against references (Keras metrics, NumPy, exact decay factors)."""

import contextlib
import copy

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_reg import callbacks, regularizers
from keras_reg.data import MixupCutMix
from keras_reg.layers import DropPath, InvertedDropout, StochasticDepth, drop_path_rates


def _scope(kind, request):
    if kind != "mirrored":
        return contextlib.nullcontext()
    return request.getfixturevalue("mirrored_strategy").scope()


def _classification_data(n=50, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = rng.integers(0, 3, size=(n,)).astype("int32")
    return x, y


def _regularized_classifier():
    reg = regularizers.l2(0.05)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16, activation="relu", kernel_regularizer=reg),
            keras.layers.Dense(3, kernel_regularizer=regularizers.l1(0.01)),
        ]
    )
    model.compile(
        keras.optimizers.SGD(0.2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="ce")],
    )
    return model


# ------------------------------------------------------------------ RegularizationLogger


@pytest.mark.parametrize("kind", ["plain", pytest.param("mirrored", marks=pytest.mark.slow)])
def test_logger_data_loss_matches_the_metric_computed_in_the_step(kind, request):
    # 50 samples in batches of 16: a partial last batch, so the batch-size weighting matters.
    keras.utils.set_random_seed(1)
    x, y = _classification_data()
    xv, yv = _classification_data(20, seed=1)
    with _scope(kind, request):
        model = _regularized_classifier()
    history = model.fit(
        x, y, batch_size=16, epochs=2, verbose=0, shuffle=False, validation_data=(xv, yv),
        callbacks=[callbacks.RegularizationLogger()],
    )
    h = {k: np.array(v) for k, v in history.history.items()}
    np.testing.assert_allclose(h["data_loss"] + h["reg_loss"], h["loss"], rtol=1e-6)
    # The reference: Keras's own cross-entropy metric, computed on the same forward passes.
    np.testing.assert_allclose(h["data_loss"], h["ce"], rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(h["val_data_loss"], h["val_ce"], rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(
        h["val_reg_loss"][-1], float(regularizers.penalty(model)), rtol=1e-6
    )
    # The penalty moves during an epoch: the end-of-epoch value would be a worse estimate.
    end_estimate_error = np.abs(h["loss"] - h["val_reg_loss"] - h["ce"])
    assert np.all(end_estimate_error > 10 * np.abs(h["data_loss"] - h["ce"]) + 1e-6)


def test_logger_keys_reach_the_progress_bar(capsys):
    x, y = _classification_data(16)
    model = _regularized_classifier()
    model.fit(x, y, epochs=1, verbose=2, callbacks=[callbacks.RegularizationLogger()])
    out = capsys.readouterr().out
    assert "reg_loss" in out and "data_loss" in out


def test_logger_without_regularizers_reports_zero_penalty():
    x, y = _classification_data(16)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    h = model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.RegularizationLogger()])
    assert h.history["reg_loss"] == [0.0]
    assert h.history["data_loss"] == h.history["loss"]


# ------------------------------------------------------------------ GeneralizationGap


def test_gap_is_validation_minus_training_for_loss_and_accuracy():
    x, y = _classification_data()
    xv, yv = _classification_data(20, seed=1)
    model = _regularized_classifier()
    model.compile(model.optimizer, model.loss, metrics=["accuracy"])
    h = model.fit(
        x, y, epochs=2, verbose=0, validation_data=(xv, yv),
        callbacks=[callbacks.GeneralizationGap()],
    ).history
    for key, name in (("gap", "loss"), ("gap_loss", "loss"), ("gap_accuracy", "accuracy")):
        np.testing.assert_allclose(
            h[key], np.array(h["val_" + name]) - np.array(h[name]), rtol=1e-6, atol=1e-7
        )


def _small_model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    return model


def test_gap_patience_restores_weights_of_smallest_val_loss():
    model = _small_model()
    gap_cb = callbacks.GeneralizationGap(patience=2)
    gap_cb.set_model(model)
    gap_cb.on_train_begin()
    # val_loss is smallest at epoch 1 (0.5); the gap widens at epochs 2 and 3.
    history = [(1.0, 1.1), (0.4, 0.5), (0.3, 0.6), (0.1, 0.9)]
    for epoch, (loss, val_loss) in enumerate(history):
        model.set_weights([np.full((2, 1), epoch, "float32"), np.zeros(1, "float32")])
        gap_cb.on_epoch_end(epoch, {"loss": loss, "val_loss": val_loss})
    assert model.stop_training and gap_cb.stopped_epoch == 3
    assert gap_cb.best_epoch == 1
    np.testing.assert_array_equal(model.get_weights()[0], np.full((2, 1), 1.0))


def test_gap_accuracy_direction_and_key():
    model = _small_model()
    gap_cb = callbacks.GeneralizationGap(monitor="accuracy", patience=1)
    gap_cb.set_model(model)
    gap_cb.on_train_begin()
    logs0 = {"accuracy": 0.8, "val_accuracy": 0.75}
    gap_cb.on_epoch_end(0, logs0)
    assert logs0["gap"] == pytest.approx(-0.05)  # the monitor's gap, val − train
    assert logs0["gap_accuracy"] == logs0["gap"]
    gap_cb.on_epoch_end(1, {"accuracy": 0.9, "val_accuracy": 0.8})  # gap -0.1: widened
    assert model.stop_training


def test_gap_without_validation_warns():
    model = _small_model()
    gap_cb = callbacks.GeneralizationGap()
    gap_cb.set_model(model)
    gap_cb.on_train_begin()
    with pytest.warns(UserWarning, match="val_loss"):
        gap_cb.on_epoch_end(0, {"loss": 1.0})


def test_gap_monitor_with_val_prefix_raises():
    with pytest.raises(ValueError, match="`monitor`"):
        callbacks.GeneralizationGap(monitor="val_loss")


def test_gap_patience_zero_raises():
    with pytest.raises(ValueError, match="`patience`"):
        callbacks.GeneralizationGap(patience=0)


def test_gap_negative_min_delta_raises():
    with pytest.raises(ValueError, match="`min_delta`"):
        callbacks.GeneralizationGap(min_delta=-1.0)


def test_gap_unknown_mode_raises():
    with pytest.raises(ValueError, match="`mode`"):
        callbacks.GeneralizationGap(mode="up")


# ------------------------------------------------------------------ RateScheduler


class _ZeroFraction(keras.layers.Layer):
    """Outputs, per sample, the fraction of exact zeros of its input (what dropout dropped).

    Trained against 0 with the MAE loss, the epoch `loss` is the drop fraction measured inside
    the training steps of that epoch. (A weight 0·w keeps the model trainable.)
    """

    def build(self, input_shape):
        self.w = self.add_weight(shape=(), initializer="zeros")

    def call(self, x):
        fraction = ops.mean(ops.cast(ops.equal(x, 0.0), "float32"), axis=-1, keepdims=True)
        return fraction + 0.0 * self.w


def _rate_model(dropout):
    inputs = keras.Input((2000,))
    return keras.Model(inputs, _ZeroFraction()(dropout(inputs)))


@pytest.mark.parametrize(
    "kind",
    [
        "plain",
        pytest.param("jit", marks=pytest.mark.slow),
        pytest.param("mirrored", marks=pytest.mark.slow),  # fast version: the next test
    ],
)
def test_rate_changes_inside_the_training_step(kind, request):
    schedule = [0.1, 0.5, 0.8]
    with _scope(kind, request):
        dropout = InvertedDropout(0.0, seed=3)
        model = _rate_model(dropout)
        model.compile("sgd", "mae", jit_compile=(kind == "jit"))
    scheduler = callbacks.RateScheduler(lambda epoch, rate: schedule[epoch])
    x, y = np.ones((64, 2000), "float32"), np.zeros((64, 1), "float32")
    h = model.fit(x, y, batch_size=32, epochs=3, verbose=0, callbacks=[scheduler]).history
    assert h["rate"] == pytest.approx(schedule)
    # Drop fraction measured in the steps (128000 Bernoulli draws per epoch).
    np.testing.assert_allclose(h["loss"], schedule, atol=0.01)
    assert dropout.rate == pytest.approx(0.8)


def test_rate_changes_inside_the_training_step_under_mirrored_strategy(mirrored_strategy):
    """The fast mirrored check: two epochs of one step. Under `model.fit` both replicas draw the
    same mask (one mirrored seed state), so a step holds 4 x 2000 independent draws."""
    with mirrored_strategy.scope():
        dropout = InvertedDropout(0.0, seed=3)
        model = _rate_model(dropout)
        model.compile("sgd", "mae")
    schedule = [0.0, 0.6]
    scheduler = callbacks.RateScheduler(lambda epoch, rate: schedule[epoch])
    x, y = np.ones((8, 2000), "float32"), np.zeros((8, 1), "float32")
    h = model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[scheduler]).history
    # The measured drop fraction follows the schedule: exactly 0, then 0.6 within 5 sigma.
    assert h["loss"][0] == 0.0
    assert abs(h["loss"][1] - 0.6) < 5 * np.sqrt(0.6 * 0.4 / 8000)
    for value in mirrored_strategy.experimental_local_results(dropout.rate_variable.value):
        assert float(value) == pytest.approx(0.6)  # every replica's copy was assigned


def test_rate_scheduler_finds_nested_layers_once_and_warms_up_from_initial():
    rates = drop_path_rates(2, 0.2)
    inner_in = keras.Input((4,))
    inner_out = StochasticDepth(rates[1])([inner_in, keras.layers.Dense(4)(inner_in)])
    inner = keras.Model(inner_in, inner_out)
    inputs = keras.Input((4,))
    x = DropPath(0.1)(inputs)
    x = inner(x)
    model = keras.Model(inputs, InvertedDropout(0.3)(x))
    model.compile("sgd", "mse")
    layers = [l for l in _all(model) if hasattr(l, "rate_variable")]
    initial = [l.rate for l in layers]
    assert len(layers) == 3
    seen = []
    recorder = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append([l.rate for l in layers])
    )
    warmup = callbacks.RateScheduler(
        lambda epoch, rate: rate * (epoch + 1) / 2, from_initial=True
    )
    model.fit(np.ones((8, 4)), np.zeros((8, 4)), epochs=2, verbose=0,
              callbacks=[warmup, recorder])
    np.testing.assert_allclose(seen[0], np.array(initial) / 2, rtol=1e-6)
    np.testing.assert_allclose(seen[1], initial, rtol=1e-6)


def _all(model):
    return model._flatten_layers(include_self=False, recursive=True)


def test_rate_scheduler_warns_without_rate_layers():
    model = _small_model()
    with pytest.warns(UserWarning, match="no keras_reg rate layers"):
        model.fit(np.ones((4, 2)), np.ones((4, 1)), verbose=0,
                  callbacks=[callbacks.RateScheduler(lambda e, r: 0.1)])


def test_rate_scheduler_schedule_not_callable_raises():
    with pytest.raises(TypeError, match="`schedule`"):
        callbacks.RateScheduler("linear")


def test_rate_scheduler_keras_dropout_raises():
    with pytest.raises(TypeError, match="`layers`"):
        callbacks.RateScheduler(lambda e, r: r, layers=[keras.layers.Dropout(0.1)])


def test_rate_scheduler_out_of_range_schedule_raises():
    model = _rate_model(InvertedDropout(0.1))
    model.compile("sgd", "mae")
    with pytest.raises(ValueError, match="`schedule`.*1.5"):
        model.fit(np.ones((4, 2000)), np.ones((4, 1)), verbose=0,
                  callbacks=[callbacks.RateScheduler(lambda e, r: 1.5)])


# ------------------------------------------------------------------ MixupScheduler


def _one_hot_fraction(y_true, y_pred):
    return ops.cast(ops.equal(ops.max(y_true, axis=-1), 1.0), "float32")


def test_mixup_scheduler_turns_mixing_off_and_restores():
    rng = np.random.default_rng(0)
    x = rng.random((64, 4, 4, 1)).astype("float32")
    y = rng.integers(0, 4, 64).astype("int32")
    mix = MixupCutMix(4, mixup_alpha=1.0, cutmix_alpha=0.0, prob=1.0, label_smoothing=0.0, seed=1,
                      jit_compile=False)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16).map(mix)
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(4)])
    model.compile("sgd", "categorical_crossentropy", metrics=[_one_hot_fraction])
    scheduler = callbacks.MixupScheduler(mix, off_epoch=1)
    h = model.fit(dataset, epochs=2, verbose=0, callbacks=[scheduler]).history
    assert h["_one_hot_fraction"][0] < 0.2
    assert h["_one_hot_fraction"][1] == 1.0
    assert h["mixup_prob"] == [1.0, 0.0]
    # A second fit from epoch 0 mixes again: the original prob is restored.
    h2 = model.fit(dataset, epochs=1, verbose=0, callbacks=[scheduler]).history
    assert h2["mixup_prob"] == [1.0] and h2["_one_hot_fraction"][0] < 0.2


def test_mixup_scheduler_deepcopy_shares_the_transform():
    mix = MixupCutMix(4, seed=0)
    clone = copy.deepcopy(callbacks.MixupScheduler(mix, off_epoch=1))
    assert clone.transform is mix


def test_mixup_scheduler_bad_transform_raises():
    with pytest.raises(TypeError, match="`transform`"):
        callbacks.MixupScheduler(object(), off_epoch=1)


def test_mixup_scheduler_negative_off_epoch_raises():
    with pytest.raises(ValueError, match="`off_epoch`"):
        callbacks.MixupScheduler(MixupCutMix(4), off_epoch=-1)


# ------------------------------------------------------------------ StrengthScheduler


def test_strength_scheduler_loss_jumps_by_the_expected_penalty():
    shared = regularizers.l2(0.1)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(4, kernel_initializer="ones", kernel_regularizer=shared),
            keras.layers.Dense(1, kernel_initializer="ones", kernel_regularizer=shared),
        ]
    )
    model.compile(keras.optimizers.SGD(0.0), "mse")  # lr 0: only the penalty moves
    scheduler = callbacks.StrengthScheduler(lambda epoch, l2: l2 * (epoch + 1), from_initial=True)
    h = model.fit(np.ones((8, 4)), np.zeros((8, 1)), epochs=3, verbose=0,
                  callbacks=[scheduler]).history
    sum_w2 = 16 + 4
    np.testing.assert_allclose(np.diff(h["loss"]), [0.1 * sum_w2, 0.1 * sum_w2], rtol=1e-5)
    assert h["l2_strength"] == pytest.approx([0.1, 0.2, 0.3])
    assert shared.l2 == pytest.approx(0.3)


def test_strength_scheduler_l1_l2_schedules_only_nonzero_component():
    reg = regularizers.l1_l2(l1=0.0, l2=0.2)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_regularizer=reg)])
    model.compile("sgd", "mse")
    scheduler = callbacks.StrengthScheduler(lambda epoch, s: s / 2)
    h = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2, verbose=0,
                  callbacks=[scheduler]).history
    assert reg.l1 == 0.0 and reg.l2 == pytest.approx(0.05)
    assert "l1_strength" not in h and h["l2_strength"] == pytest.approx([0.1, 0.05])


def test_strength_scheduler_negative_value_raises():
    model = keras.Sequential(
        [keras.Input((2,)), keras.layers.Dense(1, kernel_regularizer=regularizers.l2(0.1))]
    )
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="`schedule`"):
        model.fit(np.ones((4, 2)), np.ones((4, 1)), verbose=0,
                  callbacks=[callbacks.StrengthScheduler(lambda e, s: -1.0)])


def test_strength_scheduler_bad_component_raises():
    with pytest.raises(ValueError, match="`component`"):
        callbacks.StrengthScheduler(lambda e, s: s, component="l3")


def test_strength_scheduler_bad_model_raises():
    with pytest.raises(TypeError, match="`model`"):
        callbacks.StrengthScheduler(lambda e, s: s, model="model")


# ------------------------------------------------------------------ WeightDecayScheduler


def _decay_model():
    # Zero inputs: the kernel's gradient is exactly 0, so only the decay moves it, and the
    # output (bias -> LayerNorm) does not depend on the kernel at all.
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4, bias_initializer="ones"),
            keras.layers.LayerNormalization(),
        ]
    )
    return model


@pytest.mark.parametrize(
    "kind", ["plain", pytest.param("jit", marks=pytest.mark.slow), "mirrored"]
)
def test_weight_decay_shrinks_kernels_by_the_exact_factor(kind, request):
    lr, decays = 0.1, [0.5, 0.25]
    x = np.zeros((16, 3), "float32")
    y = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    results = []
    for use_callback in (True, False):
        keras.utils.set_random_seed(0)
        with _scope(kind, request):
            model = _decay_model()
            model.compile(keras.optimizers.SGD(lr), "mse", jit_compile=(kind == "jit"))
        cbs = [callbacks.WeightDecayScheduler(lambda epoch: decays[epoch])] if use_callback else []
        kernel0 = model.layers[0].kernel.numpy()
        h = model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False, callbacks=cbs)
        results.append((kernel0, model.get_weights(), h.history))
    (kernel0, decayed, h), (_, plain, _) = results
    expected = kernel0.copy()
    for wd in decays:  # two steps per epoch, w <- w - lr*wd*w in float32
        for _ in range(2):
            expected = expected - expected * (np.float32(lr) * np.float32(wd))
    np.testing.assert_allclose(decayed[0], expected, rtol=1e-6)
    assert not np.allclose(decayed[0], kernel0)
    # Bias and LayerNorm parameters are excluded: identical to training without the callback.
    for a, b in zip(decayed[1:], plain[1:]):
        np.testing.assert_array_equal(a, b)
    assert h["weight_decay"] == decays


def test_weight_decay_constraints_removed_after_fit():
    model = _decay_model()
    model.compile(keras.optimizers.SGD(0.1), "mse")
    x, y = np.zeros((8, 3), "float32"), np.ones((8, 4), "float32")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.WeightDecayScheduler(0.5)])
    assert all(v.constraint is None for v in model.trainable_weights)
    kernel = model.layers[0].kernel.numpy()
    model.fit(x, y, epochs=1, verbose=0)  # no callback: no decay any more
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), kernel)


class _TraceCounter(keras.layers.Layer):
    """Identity; counts the training-mode traces (Python runs `call` only when tracing)."""

    traces = 0

    def call(self, x, training=None):
        if training:
            type(self).traces += 1
        return x


def test_weight_decay_schedule_changes_without_retracing():
    _TraceCounter.traces = 0
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), _TraceCounter()])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    x, y = np.zeros((8, 3), "float32"), np.zeros((8, 4), "float32")
    kernel0 = model.layers[0].kernel.numpy()
    decays = [0.5, 0.25, 0.125]
    scheduler = callbacks.WeightDecayScheduler(lambda epoch: decays[epoch])
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[scheduler])
    assert _TraceCounter.traces == 1  # three coefficients, one trace
    expected = kernel0 * np.prod([1 - np.float32(0.1) * np.float32(d) for d in decays])
    np.testing.assert_allclose(model.layers[0].kernel.numpy(), expected, rtol=1e-6)
    # A second fit with the same callback reuses the traced step, decay included.
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[scheduler])
    assert _TraceCounter.traces == 1
    expected = expected * (1 - np.float32(0.1) * np.float32(0.5))
    np.testing.assert_allclose(model.layers[0].kernel.numpy(), expected, rtol=1e-6)
    # Without it the same step runs with a zero coefficient: the weights stay exactly.
    kernel = model.layers[0].kernel.numpy()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), kernel)
    assert all(v.constraint is None for v in model.trainable_weights)


def test_weight_decay_composes_with_existing_constraint():
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2, kernel_constraint=keras.constraints.NonNeg())]
    )
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.layers[0].kernel.assign(np.full((3, 2), 2.0, "float32"))
    model.fit(np.zeros((8, 3)), np.ones((8, 2)), batch_size=8, epochs=1, verbose=0,
              callbacks=[callbacks.WeightDecayScheduler(0.5)])
    np.testing.assert_allclose(model.layers[0].kernel.numpy(), 2.0 * (1 - 0.05), rtol=1e-6)
    assert isinstance(model.layers[0].kernel.constraint, keras.constraints.NonNeg)


def test_weight_decay_excludes_by_role_not_only_by_name():
    from keras_reg.layers import GroupNorm

    inputs = keras.Input((4, 4, 4))
    x = keras.layers.Conv2D(4, 1, name="conv")(inputs)
    x = GroupNorm(groups=2, name="gn")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    emb_in = keras.Input((2,), dtype="int32")
    e = keras.layers.Flatten()(keras.layers.Embedding(5, 2, name="emb")(emb_in))
    out = keras.layers.Dense(1, name="head")(
        keras.layers.Concatenate()([keras.layers.Flatten()(x), e])
    )
    model = keras.Model([inputs, emb_in], out)
    default = callbacks.WeightDecayScheduler(0.1)
    assert {v.path for v in default.decayed_variables(model)} == {
        "conv/kernel", "emb/embeddings", "head/kernel"
    }
    more = callbacks.WeightDecayScheduler(
        0.1, exclude=("bias", "normalization", "embedding", model.get_layer("head"))
    )
    assert {v.path for v in more.decayed_variables(model)} == {"conv/kernel"}


def test_weight_decay_reaches_kernels_inside_wrappers_and_skips_norms():
    inputs = keras.Input((5, 3))
    x = keras.layers.Bidirectional(keras.layers.SimpleRNN(2, return_sequences=True))(inputs)
    x = keras.layers.TimeDistributed(keras.layers.Dense(3))(x)
    x = keras.layers.LayerNormalization()(keras.layers.Flatten()(x))
    x = keras.layers.SpectralNormalization(keras.layers.Dense(2))(x)
    model = keras.Model(inputs, keras.layers.BatchNormalization()(x))
    decayed = callbacks.WeightDecayScheduler(0.1).decayed_variables(model)
    names = sorted(v.path.split("/")[-1] for v in decayed)
    # 2 RNN kernels + 2 recurrent kernels (Bidirectional), TimeDistributed's and the
    # spectrally normalized Dense kernels; no bias, no LayerNorm / BatchNorm parameter.
    assert names == ["kernel"] * 4 + ["recurrent_kernel"] * 2


def test_weight_decay_unknown_role_raises():
    with pytest.raises(ValueError, match="`exclude`"):
        callbacks.WeightDecayScheduler(0.1, exclude=("biases",))


def test_weight_decay_bad_exclude_type_raises():
    with pytest.raises(TypeError, match="`exclude`"):
        callbacks.WeightDecayScheduler(0.1, exclude=(3,))


def test_weight_decay_negative_schedule_raises():
    model = _decay_model()
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="`schedule`"):
        model.fit(np.zeros((4, 3)), np.ones((4, 4)), verbose=0,
                  callbacks=[callbacks.WeightDecayScheduler(lambda e: -0.1)])


# ------------------------------------------------------------------ deepcopy (KerasTuner)


def test_all_callbacks_deepcopy_after_use_without_copying_the_model():
    model = _decay_model()
    model.compile(keras.optimizers.SGD(0.1), "mse")
    mix = MixupCutMix(4)
    cbs = [
        callbacks.RegularizationLogger(),
        callbacks.GeneralizationGap(patience=2),
        callbacks.RateScheduler(lambda e, r: r),
        callbacks.MixupScheduler(mix, off_epoch=1),
        callbacks.StrengthScheduler(lambda e, s: s),
        callbacks.WeightDecayScheduler(0.1),
    ]
    with pytest.warns(UserWarning):
        model.fit(np.zeros((4, 3)), np.ones((4, 4)), verbose=0, callbacks=cbs,
                  validation_data=(np.zeros((4, 3)), np.ones((4, 4))))
    copies = copy.deepcopy(cbs)
    for original, clone in zip(cbs, copies):
        assert type(clone) is type(original)
        assert clone.model is None  # the public property: detached, nothing of it copied
        assert original.model is model  # the original stays attached
        assert all(value is not model for value in vars(clone).values())
    assert copies[3].transform is mix
    # A copy works on a fresh model.
    fresh = _decay_model()
    fresh.compile(keras.optimizers.SGD(0.1), "mse")
    h = fresh.fit(np.zeros((4, 3)), np.ones((4, 4)), verbose=0, callbacks=[copies[5], copies[0]])
    assert h.history["weight_decay"] == [0.1] and "reg_loss" in h.history


def test_deepcopy_shares_an_explicit_target_even_when_it_is_the_fitted_model():
    model = _decay_model()
    scheduler = callbacks.StrengthScheduler(lambda e, s: s, model=model)
    scheduler.set_model(model)
    clone = copy.deepcopy(scheduler)
    assert clone.target is model and clone.model is None
    assert scheduler.model is model


def test_deepcopy_of_a_callback_never_attached():
    clone = copy.deepcopy(callbacks.GeneralizationGap(patience=1))
    assert clone.model is None and clone.patience == 1


@pytest.mark.slow
def test_callbacks_inside_keras_tuner_trials(tmp_path):
    import keras_tuner

    x, y = _classification_data(64)

    def build(hp):
        reg = regularizers.l2(hp.Float("l2", 1e-4, 1e-2, sampling="log"))
        inputs = keras.Input((6,))
        h = keras.layers.Dense(16, activation="relu", kernel_regularizer=reg)(inputs)
        h = InvertedDropout(0.2)(h)
        model = keras.Model(inputs, keras.layers.Dense(3)(h))
        model.compile(
            keras.optimizers.SGD(0.1),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        return model

    tuner = keras_tuner.RandomSearch(
        build, objective="val_loss", max_trials=2, directory=tmp_path, seed=0
    )
    tuner.search(
        x, y, validation_split=0.25, epochs=2, verbose=0,
        callbacks=[
            callbacks.RegularizationLogger(),
            callbacks.GeneralizationGap(),
            callbacks.RateScheduler(lambda e, r: 0.1 * (e + 1)),
            callbacks.StrengthScheduler(lambda e, s: s * 0.5),
            callbacks.WeightDecayScheduler(1e-3),
        ],
    )
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == 2 and all(t.status == "COMPLETED" for t in trials)
    for trial in trials:
        for key in ("reg_loss", "data_loss", "gap", "rate", "weight_decay", "l2_strength"):
            assert trial.metrics.exists(key), key


# ------------------------------------------------------------------ PreciseBatchNorm

_EPS = 1e-3  # keras.layers.BatchNormalization's default epsilon


def _bn_model(seed=0):
    """Dense -> BN -> ReLU -> nested [Dense -> BN] -> Dropout -> Dense, random gamma/beta."""
    keras.utils.set_random_seed(seed)
    inner = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization()],
        name="inner",
    )
    model = keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.Dense(4),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            inner,
            keras.layers.Dropout(0.5, seed=1),
            keras.layers.Dense(1),
        ]
    )
    rng = np.random.default_rng(seed)
    for bn in (model.layers[1], inner.layers[1]):
        bn.gamma.assign(rng.uniform(0.5, 2.0, bn.gamma.shape).astype("float32"))
        bn.beta.assign(rng.normal(size=bn.beta.shape).astype("float32"))
    model.compile(keras.optimizers.Adam(0.05), "mse")
    return model


def _bn_data(n=29, batch=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(2.0, 3.0, size=(n, 5)).astype("float32")
    y = rng.normal(size=(n, 1)).astype("float32")
    return x, y, tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def _numpy_bn_inputs(model, x, batch, num_batches):
    """The inputs of both BN layers in training mode, concatenated over the batches (NumPy)."""
    dense1, bn1, inner = model.layers[0], model.layers[1], model.layers[3]
    dense2 = inner.layers[0]
    w1, b1 = (np.asarray(v, "float64") for v in (dense1.kernel, dense1.bias))
    w2, b2 = (np.asarray(v, "float64") for v in (dense2.kernel, dense2.bias))
    gamma, beta = np.asarray(bn1.gamma, "float64"), np.asarray(bn1.beta, "float64")
    first, second = [], []
    for start in range(0, min(len(x), batch * num_batches), batch):
        h1 = x[start:start + batch].astype("float64") @ w1 + b1
        normalized = (h1 - h1.mean(0)) / np.sqrt(h1.var(0) + _EPS) * gamma + beta
        h2 = np.maximum(normalized, 0.0) @ w2 + b2
        first.append(h1)
        second.append(h2)
    return np.concatenate(first), np.concatenate(second)


def _bn_stats(model):
    return [
        (np.asarray(bn.moving_mean), np.asarray(bn.moving_variance))
        for bn in (model.layers[1], model.layers[3].layers[1])
    ]


@pytest.mark.parametrize("num_batches", [3, 10])  # 3 of 4 batches; all 4 (uneven last one)
def test_precise_bn_statistics_equal_numpy_over_the_batches(num_batches):
    model = _bn_model()
    x, _, data = _bn_data()
    used = callbacks.PreciseBatchNorm(data, num_batches=num_batches).update(model)
    assert used == min(num_batches, 4)
    for (mean, var), h in zip(_bn_stats(model), _numpy_bn_inputs(model, x, 8, num_batches)):
        np.testing.assert_allclose(mean, h.mean(0), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(var, h.var(0), rtol=1e-4, atol=1e-5)


def test_precise_bn_reduces_over_spatial_axes_like_keras():
    rng = np.random.default_rng(1)
    x = rng.normal(1.0, 2.0, size=(12, 3, 3, 2)).astype("float32")
    model = keras.Sequential([keras.Input((3, 3, 2)), keras.layers.BatchNormalization()])
    callbacks.PreciseBatchNorm(tf.data.Dataset.from_tensor_slices(x).batch(4)).update(model)
    bn = model.layers[0]
    np.testing.assert_allclose(np.asarray(bn.moving_mean), x.mean((0, 1, 2)), atol=1e-5)
    np.testing.assert_allclose(np.asarray(bn.moving_variance), x.var((0, 1, 2)), atol=1e-4)


def test_precise_bn_keeps_weights_optimizer_and_random_state():
    model = _bn_model()
    x, y, data = _bn_data()
    model.fit(data, epochs=1, verbose=0)  # the optimizer now has a state
    bn_ids = {id(v) for bn in (model.layers[1], model.layers[3].layers[1])
              for v in (bn.moving_mean, bn.moving_variance)}
    others = [v for v in model.variables if id(v) not in bn_ids]
    assert any("seed" in v.name for v in others)  # the Dropout's generator state is checked
    before = [np.array(v) for v in others]
    optimizer_before = [np.array(v) for v in model.optimizer.variables]
    stats_before = _bn_stats(model)
    momenta = [model.layers[1].momentum, model.layers[3].layers[1].momentum]
    callbacks.PreciseBatchNorm(data, num_batches=4).update(model)
    for variable, value in zip(others, before):
        np.testing.assert_array_equal(np.array(variable), value)
    for variable, value in zip(model.optimizer.variables, optimizer_before):
        np.testing.assert_array_equal(np.array(variable), value)
    assert [model.layers[1].momentum, model.layers[3].layers[1].momentum] == momenta
    assert not np.allclose(_bn_stats(model)[0][0], stats_before[0][0])


class _CountingPreciseBN(callbacks.PreciseBatchNorm):
    def update(self, model):
        self.calls = getattr(self, "calls", 0) + 1
        return super().update(model)


def test_precise_bn_runs_before_each_validation_and_at_train_end_in_fit():
    model = _bn_model()
    x, y, data = _bn_data()
    counting = _CountingPreciseBN(data, num_batches=4)
    model.fit(data, validation_data=data, epochs=2, verbose=0, callbacks=[counting])
    assert counting.calls == 2  # one per validation; train end: weights unchanged, skipped
    for (mean, var), h in zip(_bn_stats(model), _numpy_bn_inputs(model, x, 8, 4)):
        np.testing.assert_allclose(mean, h.mean(0), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(var, h.var(0), rtol=1e-4, atol=1e-5)
    # The validation loss was computed with the precise statistics: evaluate agrees.
    history_val = counting.model.history.history["val_loss"][-1]
    np.testing.assert_allclose(model.evaluate(data, verbose=0), history_val, rtol=1e-5)

    # A fit without validation: only `at_train_end` recomputes (hooks called as `fit` does).
    for at_train_end, calls in ((False, 0), (True, 1)):
        hooks = _CountingPreciseBN(data, num_batches=4, at_train_end=at_train_end)
        hooks.set_model(model)
        hooks.on_train_begin()
        hooks.on_train_end()
        assert getattr(hooks, "calls", 0) == calls


def test_precise_bn_skips_frozen_batch_norm_and_warns_without_any():
    model = _bn_model()
    _, _, data = _bn_data()
    model.layers[1].trainable = False
    frozen_before = _bn_stats(model)[0]
    callbacks.PreciseBatchNorm(data).update(model)
    np.testing.assert_array_equal(_bn_stats(model)[0][0], frozen_before[0])
    dense = keras.Sequential([keras.Input((5,)), keras.layers.Dense(1)])
    with pytest.warns(UserWarning, match="no trainable BatchNormalization"):
        assert callbacks.PreciseBatchNorm(data).update(dense) == 0


def test_precise_bn_data_not_a_dataset_raises():
    with pytest.raises(TypeError, match="`data`"):
        callbacks.PreciseBatchNorm(np.ones((4, 5)))


def test_precise_bn_num_batches_zero_raises():
    with pytest.raises(ValueError, match="`num_batches`"):
        callbacks.PreciseBatchNorm(_bn_data()[2], num_batches=0)


def test_precise_bn_at_train_end_not_bool_raises():
    with pytest.raises(TypeError, match="`at_train_end`"):
        callbacks.PreciseBatchNorm(_bn_data()[2], at_train_end="yes")


def test_precise_bn_empty_data_raises():
    empty = _bn_data()[2].take(0)
    with pytest.raises(ValueError, match="`data`"):
        callbacks.PreciseBatchNorm(empty).update(_bn_model())
