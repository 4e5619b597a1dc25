"""calibration: TemperatureScaling and calibrate(), the temperature fitted on validation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_reg.tuning.calibration import (CalibratedCrossEntropy, TemperatureScaling,
                                          calibrate, calibrated_nll, predictions,
                                          smoothed_targets)
from tests.layers._checks import (check_config_round_trip, check_export,
                                  check_keras_file_round_trip, check_symbolic_call)


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("temperature", [0.4, 1.0, 3.0])
def test_rescales_probabilities_as_softmax_of_log_p_over_t(temperature):
    p = _softmax(np.random.default_rng(0).normal(size=(6, 5)) * 2).astype("float32")
    got = keras.ops.convert_to_numpy(TemperatureScaling(temperature)(p))
    expected = _softmax(np.log(p.astype(np.float64)) / temperature)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(got.argmax(axis=1), p.argmax(axis=1))  # accuracy unchanged
    # the same in training and inference
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(TemperatureScaling(temperature)(p, training=True)), got)


def test_shapes_config_file_and_export(tmp_path):
    layer = TemperatureScaling(2.5, epsilon=1e-9)
    check_symbolic_call(layer, (3, 4))
    rebuilt = check_config_round_trip(layer)
    assert (rebuilt.temperature, rebuilt.epsilon) == (2.5, 1e-9)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax"),
                              TemperatureScaling(0.5)])
    x = np.random.default_rng(1).normal(size=(5, 4)).astype("float32")
    check_keras_file_round_trip(model, x, tmp_path)
    check_export(model, x, tmp_path)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_rejects_a_temperature_that_is_not_positive(bad):
    with pytest.raises(ValueError, match="temperature"):
        TemperatureScaling(bad)


def _classifier_and_validation(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(120, 6)).astype("float32")
    labels = (x[:, 0] + 0.5 * rng.normal(size=120) > 0).astype("int64")
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, labels, epochs=3, verbose=0)
    # reshuffled on every pass: predictions must stay paired with their labels
    val = tf.data.Dataset.from_tensor_slices((x, labels)).shuffle(120, seed=1).batch(32)
    return model, x, labels, val


def test_calibrate_fits_the_temperature_of_the_validation_predictions():
    model, x, labels, val = _classifier_and_validation()
    raw = model.predict(x, verbose=0)
    calibrated, temperature = calibrate(model, val)
    # fitted to Platt's targets (ε = 1 / (n + 2)), within a few per cent of the plain fit
    _, beta = calibrated_nll(raw, smoothed_targets(np.eye(2)[labels]))
    assert temperature == pytest.approx(1.0 / beta, rel=1e-9)
    loss, plain_beta = calibrated_nll(raw, labels)
    assert beta == pytest.approx(plain_beta, rel=0.05)
    scaled = np.asarray(calibrated.predict(x, verbose=0), dtype=np.float64)
    nll = -np.mean(np.log(scaled[np.arange(len(labels)), labels]))
    assert nll == pytest.approx(loss, rel=1e-3)
    assert nll <= -np.mean(np.log(raw[np.arange(len(labels)), labels])) + 1e-6
    np.testing.assert_array_equal(scaled.argmax(axis=1), raw.argmax(axis=1))
    # the inner model is shared, not copied
    assert calibrated.layers[1] is model
    values = calibrated.evaluate(x, np.eye(2)[labels], verbose=0, return_dict=True)
    assert values["loss"] == pytest.approx(nll, rel=1e-4)


def test_a_perfectly_classified_validation_split_gives_a_finite_temperature():
    # Every validation image right with margins of 4-8 nats: the plain fit sharpens to the
    # bound (T = 0.05), so one confident test mistake would cost ~100 nats; with Platt's
    # targets the fit stays near the model's own confidence.
    rng = np.random.default_rng(3)
    n, k = 300, 10
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), labels] += rng.uniform(4.0, 8.0, n) + logits.max(axis=1)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert calibrated_nll(p, labels)[1] == pytest.approx(20.0, rel=1e-3)
    t = smoothed_targets(np.eye(k)[labels])
    np.testing.assert_allclose(t.sum(axis=1), 1.0)
    assert t[0, labels[0]] == pytest.approx(1 - 1 / (n + 2))
    _, beta = calibrated_nll(p, t)
    assert 0.3 < beta < 3.0
    sharpened = np.exp(beta * np.log(p))
    sharpened /= sharpened.sum(axis=1, keepdims=True)
    assert 0.99 < np.mean(sharpened[np.arange(n), labels]) < 1 - 1e-4
    # the Keras path agrees: calibrate() on such a model does not collapse to T = 0.05
    inputs = keras.Input((k,))
    model = keras.Model(inputs, keras.layers.Softmax()(inputs))
    val = tf.data.Dataset.from_tensor_slices((logits.astype("float32"), labels)).batch(64)
    _, temperature = calibrate(model, val)
    assert temperature == pytest.approx(1 / beta, rel=1e-3)


def test_predictions_pair_images_with_their_targets():
    model, x, labels, val = _classifier_and_validation()
    p, t = predictions(model, val)
    direct = model.predict(x, verbose=0)
    # the multiset of (probability of the true class) is the same only if pairs are kept
    mine = np.sort(p[np.arange(len(t)), t])
    reference = np.sort(direct[np.arange(len(labels)), labels])
    np.testing.assert_allclose(mine, reference, rtol=1e-5, atol=1e-7)


def _reference_calibrated_nll(p, labels):
    """Temperature-scaled cross-entropy by brute force: a dense grid of β, then a finer one."""
    z = np.log(p)

    def nll(b):
        s = b * z
        s = s - s.max(axis=1, keepdims=True)
        log_p = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
        return -np.mean(log_p[np.arange(len(labels)), labels])

    grid = np.linspace(0.05, 20.0, 4001)
    b0 = grid[np.argmin([nll(b) for b in grid])]
    fine = np.linspace(max(0.05, b0 - 0.01), min(20.0, b0 + 0.01), 2001)
    values = [nll(b) for b in fine]
    return min(values), fine[int(np.argmin(values))]


@pytest.mark.parametrize("scale", [0.3, 1.0, 4.0])
def test_calibrated_nll_matches_a_brute_force_search(scale):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 10)) * scale
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 10, 300)
    labels[:200] = logits[:200].argmax(axis=1)  # 2/3 right, 1/3 random
    loss, beta = calibrated_nll(p, labels)
    ref_loss, ref_beta = _reference_calibrated_nll(p, labels)
    assert loss == pytest.approx(ref_loss, rel=1e-8)
    assert beta == pytest.approx(ref_beta, abs=2e-5)
    # one-hot targets give the same figure; never worse than the uncalibrated loss
    assert calibrated_nll(p, np.eye(10)[labels])[0] == pytest.approx(loss, rel=1e-12)
    assert loss <= -np.mean(np.log(p[np.arange(300), labels])) + 1e-12


def test_calibrated_nll_does_not_punish_deliberate_under_confidence():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(500, 10)) * 3
    labels = logits.argmax(axis=1)
    labels[:100] = rng.integers(0, 10, 100)
    soft = lambda t: np.exp(logits / t) / np.exp(logits / t).sum(axis=1, keepdims=True)  # noqa
    raw = lambda p: -np.mean(np.log(p[np.arange(500), labels]))  # noqa
    confident, smoothed = soft(1.0), soft(6.0)  # same ranking, one under-confident
    assert raw(smoothed) > raw(confident) + 0.1  # the plain loss punishes it
    assert calibrated_nll(smoothed, labels)[0] == pytest.approx(
        calibrated_nll(confident, labels)[0], rel=1e-6)


def test_bad_inputs_name_the_argument():
    p = np.full((4, 3), 1 / 3)
    with pytest.raises(ValueError, match="`probabilities`"):
        calibrated_nll(p[0], np.zeros(3))
    with pytest.raises(ValueError, match="`targets`"):
        calibrated_nll(p, np.zeros(5))
    with pytest.raises(ValueError, match="`targets`"):
        calibrated_nll(p, np.zeros((4, 2)))
    model, x, labels, _ = _classifier_and_validation()
    with pytest.raises(TypeError, match="`data`"):
        calibrate(model, (x, labels))
    with pytest.raises(TypeError, match="`model`"):
        calibrate("model.keras", None)
    empty = tf.data.Dataset.from_tensor_slices((x, labels)).take(0).batch(8)
    with pytest.raises(ValueError, match="`data`.*no batch"):
        calibrate(model, empty)


# ---- CalibratedCrossEntropy: the streaming metric --------------------------------------


@pytest.mark.parametrize("scale", [0.3, 1.0, 4.0, 12.0])
def test_metric_matches_the_brute_force_search_batch_by_batch(scale):
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(300, 10)) * scale
    p = _softmax(logits).astype("float32")
    labels = rng.integers(0, 10, 300)
    labels[:200] = logits[:200].argmax(axis=1)
    metric = CalibratedCrossEntropy()
    for start in range(0, 300, 32):  # uneven last batch; one-hot and integer targets mixed
        rows = slice(start, start + 32)
        targets = np.eye(10)[labels[rows]] if start % 64 else labels[rows]
        metric.update_state(targets, p[rows])
    # calibrated_nll (checked against brute force above) clips p at 1e-12 like the metric:
    # at scale 12 some probabilities are below it
    ref_loss, ref_beta = calibrated_nll(p, labels)
    assert float(metric.result()) == pytest.approx(ref_loss, abs=3e-5)
    assert metric.temperature() == pytest.approx(1 / ref_beta, rel=2e-3)
    if scale < 5:
        assert float(metric.result()) == pytest.approx(
            _reference_calibrated_nll(p.astype(np.float64), labels)[0], abs=3e-5)
    metric.reset_state()
    metric.update_state(labels[:10], p[:10])
    assert float(metric.result()) == pytest.approx(calibrated_nll(p[:10], labels[:10])[0],
                                                   abs=3e-5)


def test_metric_ranks_models_that_get_every_validation_image_right():
    """A split the model classifies perfectly has its minimum at the largest β, with losses
    like e^-100 that float32 would flush to 0: the metric keeps them (float64), ranks the
    larger margins first, never goes below 0 and reports the end of the range."""
    labels = np.arange(40) % 4
    results = []
    for margin in (3.0, 5.0, 8.0):
        logits = np.zeros((40, 4))
        logits[np.arange(40), labels] = margin + np.linspace(0, 1, 40)
        p = _softmax(logits)
        metric = CalibratedCrossEntropy()
        metric.update_state(labels, p)
        value = float(metric.result())
        exact, beta = calibrated_nll(p, labels)
        assert beta == pytest.approx(20.0, rel=1e-6)  # the end of the range
        assert metric.temperature() == pytest.approx(1 / 20.0)
        assert value == pytest.approx(exact, rel=1e-6) and value > 0.0
        results.append(value)
    assert results[0] > results[1] > results[2] > 0.0


def test_metric_sample_weights_and_soft_targets():
    rng = np.random.default_rng(5)
    p = _softmax(rng.normal(size=(40, 5)) * 2).astype("float32")
    soft = _softmax(rng.normal(size=(40, 5)))  # Mixup-like targets: rows sum to 1
    metric = CalibratedCrossEntropy()
    weights = np.r_[np.ones(20), np.zeros(20)]
    metric.update_state(soft, p, sample_weight=weights)
    loss, beta = calibrated_nll(p[:20], soft[:20])  # zero weight = not there
    assert float(metric.result()) == pytest.approx(loss, abs=3e-5)
    assert metric.temperature() == pytest.approx(1 / beta, rel=2e-3)


def test_metric_in_a_compiled_model_round_trips(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "categorical_crossentropy",
                  metrics=[CalibratedCrossEntropy(num_betas=31)])
    x = np.random.default_rng(6).normal(size=(16, 4)).astype("float32")
    y = np.eye(3)[np.arange(16) % 3]
    before = model.evaluate(x, y, verbose=0, return_dict=True)["calibrated_loss"]
    model.optimizer.build(model.trainable_variables)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    after = loaded.evaluate(x, y, verbose=0, return_dict=True)["calibrated_loss"]
    assert after == pytest.approx(before, rel=1e-6)
    assert CalibratedCrossEntropy.from_config(
        CalibratedCrossEntropy(low=0.1, high=5.0, num_betas=9).get_config()).num_betas == 9


@pytest.mark.parametrize("kwargs,name", [({"low": 0.0}, "low"), ({"low": 2.0, "high": 1.0},
                                         "high"), ({"num_betas": 2}, "num_betas"),
                                        ({"num_betas": 10.0}, "num_betas"),
                                        ({"epsilon": -1.0}, "epsilon")])
def test_metric_bad_arguments_name_them(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        CalibratedCrossEntropy(**kwargs)

