"""keras_reg.metrics: the calibrated cross-entropy (exact, per row, streaming) against brute
force, and its behaviour on validation splits the model classifies perfectly."""

import keras
import numpy as np
import pytest

from keras_reg.metrics import (CalibratedCrossEntropy, calibrated_losses, calibrated_nll,
                               one_hot_targets, scaled_cross_entropy, smoothed_targets)


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _brute_force(p, targets, fit_targets=None, low=0.05, high=20.0):
    """`(loss against targets, β)` with β minimizing the loss against `fit_targets` (default:
    the targets) over a dense grid of β, then a finer one; plain log-softmax, no tricks."""
    fit_targets = targets if fit_targets is None else fit_targets
    z = np.log(np.clip(p, 1e-12, 1.0))

    def nll(b, t):
        s = b * z
        s = s - s.max(axis=1, keepdims=True)
        log_q = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
        return -np.mean((t * log_q).sum(axis=1))

    grid = np.linspace(low, high, 4001)
    b0 = grid[np.argmin([nll(b, fit_targets) for b in grid])]
    fine = np.linspace(max(low, b0 - 0.01), min(high, b0 + 0.01), 2001)
    beta = fine[int(np.argmin([nll(b, fit_targets) for b in fine]))]
    return nll(beta, targets), beta


def _split_with_errors(scale, seed=0, n=300, k=10):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * scale
    labels = rng.integers(0, k, n)
    labels[:2 * n // 3] = logits[:2 * n // 3].argmax(axis=1)  # 2/3 right, 1/3 random
    return _softmax(logits), labels


def _perfect_split(low, high, hedged=0.0, n=300, k=10, seed=3):
    """Every row right: the label's logit above the best other one by a margin drawn in
    [low, high]; the first `hedged` fraction of rows right by 0.5 nats only."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    top = logits.max(axis=1)
    logits[np.arange(n), labels] = top + rng.uniform(low, high, n)
    rows = np.arange(int(hedged * n))
    logits[rows, labels[rows]] = top[rows] + 0.5
    return _softmax(logits), labels


def _streamed(p, labels, batch=32, **kwargs):
    metric = CalibratedCrossEntropy(**kwargs)
    for start in range(0, len(p), batch):  # one-hot and integer targets mixed
        rows = slice(start, start + batch)
        targets = np.eye(p.shape[-1])[labels[rows]] if start % (2 * batch) else labels[rows]
        metric.update_state(targets, p[rows])
    return metric


# ------------------------------------------------------------------ NumPy pieces


def test_one_hot_targets_accepts_labels_columns_and_rows():
    expected = np.eye(3)[[2, 0]]
    np.testing.assert_array_equal(one_hot_targets(np.array([2, 0]), 3), expected)
    np.testing.assert_array_equal(one_hot_targets(np.array([[2], [0]]), 3), expected)
    soft = np.array([[0.2, 0.3, 0.5]])
    np.testing.assert_array_equal(one_hot_targets(soft, 3), soft)
    assert one_hot_targets(np.array([1]), 3).dtype == np.float64


def test_scaled_cross_entropy_against_log_softmax_and_without_cancellation():
    p, labels = _split_with_errors(1.0)
    t = np.eye(10)[labels]
    for beta in (0.3, 1.0, 7.0):
        s = beta * np.log(p)
        log_q = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
        np.testing.assert_allclose(scaled_cross_entropy(p, t, beta), -(t * log_q).sum(axis=1),
                                   rtol=1e-10, atol=1e-12)
    # right by 100 nats: e^-100, where the plain formula gives 0 (rounding)
    p = _softmax(np.array([[100.0, 0.0]]))
    assert scaled_cross_entropy(p, np.array([[1.0, 0.0]]))[0] == pytest.approx(np.exp(-100.0),
                                                                               rel=1e-6)


def test_smoothed_targets_are_platt_and_linear_in_the_targets():
    n, k = 8, 4
    t = np.eye(k)[np.arange(n) % k]
    s = smoothed_targets(t)
    eps = 1 / (n + 2)
    assert s[0, 0] == pytest.approx(1 - eps) and s[0, 1] == pytest.approx(eps / (k - 1))
    np.testing.assert_allclose(s.sum(axis=1), 1.0)
    # the streaming metric's decomposition: CE(smoothed) = (1−ε)·CE(t) + ε·CE(others)
    p = _softmax(np.random.default_rng(0).normal(size=(n, k)))
    others = (1 - t) / (k - 1)
    np.testing.assert_allclose(
        scaled_cross_entropy(p, s, 2.0),
        (1 - eps) * scaled_cross_entropy(p, t, 2.0) + eps * scaled_cross_entropy(p, others, 2.0),
        rtol=1e-12)
    with pytest.raises(ValueError, match="`targets`"):
        smoothed_targets(np.ones((3, 1)))


# ------------------------------------------------------------------ calibrated_nll / _losses


@pytest.mark.parametrize("scale", [0.3, 1.0, 4.0])
def test_calibrated_nll_without_smoothing_matches_a_brute_force_search(scale):
    p, labels = _split_with_errors(scale)
    loss, beta = calibrated_nll(p, labels, smoothing=False)
    ref_loss, ref_beta = _brute_force(p, np.eye(10)[labels])
    assert loss == pytest.approx(ref_loss, rel=1e-8)
    assert beta == pytest.approx(ref_beta, abs=2e-5)
    # one-hot targets give the same figure; never worse than the uncalibrated loss
    assert calibrated_nll(p, np.eye(10)[labels], smoothing=False)[0] == pytest.approx(
        loss, rel=1e-12)
    assert loss <= -np.mean(np.log(p[np.arange(300), labels])) + 1e-12


@pytest.mark.parametrize("scale", [0.3, 1.0, 4.0])
def test_calibrated_nll_fits_beta_on_platt_targets_and_reports_the_true_loss(scale):
    p, labels = _split_with_errors(scale)
    t = np.eye(10)[labels]
    loss, beta = calibrated_nll(p, labels)
    ref_loss, ref_beta = _brute_force(p, t, fit_targets=smoothed_targets(t))
    assert beta == pytest.approx(ref_beta, abs=2e-5)
    assert loss == pytest.approx(ref_loss, rel=1e-7)
    # with errors on validation the smoothing moves β a little and the loss hardly at all
    plain_loss, plain_beta = calibrated_nll(p, labels, smoothing=False)
    assert beta == pytest.approx(plain_beta, rel=0.05)
    assert plain_loss <= loss <= plain_loss * 1.001


def test_calibrated_losses_are_the_rows_of_calibrated_nll():
    p, labels = _split_with_errors(1.0)
    for smoothing in (True, False):
        losses, beta = calibrated_losses(p, labels, smoothing=smoothing)
        loss, same_beta = calibrated_nll(p, labels, smoothing=smoothing)
        assert losses.shape == (300,) and beta == same_beta
        assert losses.mean() == pytest.approx(loss, rel=1e-12)
        np.testing.assert_allclose(losses, scaled_cross_entropy(p, np.eye(10)[labels], beta))


def test_calibrated_nll_does_not_punish_deliberate_under_confidence():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(500, 10)) * 3
    labels = logits.argmax(axis=1)
    labels[:100] = rng.integers(0, 10, 100)
    confident, smoothed = _softmax(logits), _softmax(logits / 6.0)  # one under-confident
    raw = lambda p: -np.mean(np.log(p[np.arange(500), labels]))  # noqa: E731
    assert raw(smoothed) > raw(confident) + 0.1  # the plain loss punishes it
    assert calibrated_nll(smoothed, labels)[0] == pytest.approx(
        calibrated_nll(confident, labels)[0], rel=1e-6)


# ------------------------------------------------------------------ easy validation splits


def test_a_perfectly_classified_split_keeps_an_informative_loss():
    """Every row right: fitted on the true targets, β runs to its bound and the loss to
    rounding level (every good model ties near 0); fitted on Platt's targets, the loss is
    finite, positive, well above rounding, and a sharp, correct model beats a hedging one."""
    sharp = _perfect_split(4.0, 8.0)
    sharper = _perfect_split(8.0, 12.0)
    hedging = _perfect_split(4.0, 8.0, hedged=0.3)  # right, but by 0.5 nats on 30 % of rows
    for p, labels in (sharp, sharper, hedging):
        plain, plain_beta = calibrated_nll(p, labels, smoothing=False)
        assert plain_beta == pytest.approx(20.0) and plain < 1e-4  # the collapse
        loss, beta = calibrated_nll(p, labels)
        assert np.isfinite(loss) and 1e-4 < loss < 0.1
        assert 0.05 < beta < 20.0
    loss = {name: calibrated_nll(*split)[0]
            for name, split in (("sharp", sharp), ("sharper", sharper), ("hedging", hedging))}
    assert loss["sharper"] < loss["sharp"] < loss["hedging"]
    assert loss["hedging"] > 3 * loss["sharp"]


def test_saturated_probabilities_still_give_a_positive_loss():
    # training losses of 1e-27: the probabilities are 1 and ~0 (clipped at 1e-12)
    labels = np.arange(60) % 6
    logits = np.zeros((60, 6))
    logits[np.arange(60), labels] = 62.0
    p = _softmax(logits)
    assert calibrated_nll(p, labels, smoothing=False)[0] < 1e-100
    loss, beta = calibrated_nll(p, labels)
    assert 1e-4 < loss < 0.1 and beta < 1.0
    assert float(_streamed(p.astype("float32"), labels).result()) == pytest.approx(loss,
                                                                                   abs=1e-5)


def test_a_perfect_split_gives_a_finite_temperature_near_the_models_confidence():
    # margins of 4-8 nats: the plain fit sharpens to the bound (T = 0.05); with Platt's
    # targets the temperature stays near 1 and the scaled confidence below 1 − 1e-4
    p, labels = _perfect_split(4.0, 8.0)
    _, beta = calibrated_nll(p, labels)
    assert 0.3 < beta < 3.0
    sharpened = _softmax(beta * np.log(p))
    assert 0.99 < np.mean(sharpened[np.arange(len(labels)), labels]) < 1 - 1e-4


# ------------------------------------------------------------------ CalibratedCrossEntropy


@pytest.mark.parametrize("smoothing", [True, False])
@pytest.mark.parametrize("scale", [0.3, 1.0, 4.0, 12.0])
def test_metric_matches_calibrated_nll_batch_by_batch(scale, smoothing):
    p, labels = _split_with_errors(scale, seed=4)
    p = p.astype("float32")
    metric = _streamed(p, labels, smoothing=smoothing)  # uneven last batch
    # at scale 12 some probabilities are below the 1e-12 clip; both clip alike
    loss, beta = calibrated_nll(p, labels, smoothing=smoothing)
    assert float(metric.result()) == pytest.approx(loss, abs=1e-5)
    assert metric.temperature() == pytest.approx(1 / beta, rel=1e-4)
    metric.reset_state()
    metric.update_state(labels[:10], p[:10])
    assert float(metric.result()) == pytest.approx(
        calibrated_nll(p[:10], labels[:10], smoothing=smoothing)[0], abs=1e-5)


@pytest.mark.parametrize("low,high,hedged", [(4.0, 8.0, 0.0), (8.0, 12.0, 0.0), (40.0, 80.0, 0.0),
                                             (4.0, 8.0, 0.3), (1.0, 2.0, 0.0)])
def test_metric_matches_calibrated_nll_on_perfect_splits(low, high, hedged):
    p, labels = _perfect_split(low, high, hedged)
    p = p.astype("float32")
    loss, beta = calibrated_nll(p, labels)
    metric = _streamed(p, labels)
    assert float(metric.result()) == pytest.approx(loss, abs=1e-5)
    assert metric.temperature() == pytest.approx(1 / beta, rel=1e-4)


def test_metric_without_smoothing_keeps_tiny_losses_in_float64():
    """Fitted on the true targets, a perfect split has its minimum at the largest β with
    losses like e^-100 that float32 would flush to 0: kept, ranked, never below 0."""
    labels = np.arange(40) % 4
    results = []
    for margin in (3.0, 5.0, 8.0):
        logits = np.zeros((40, 4))
        logits[np.arange(40), labels] = margin + np.linspace(0, 1, 40)
        p = _softmax(logits)
        metric = CalibratedCrossEntropy(smoothing=False)
        metric.update_state(labels, p)
        exact, beta = calibrated_nll(p, labels, smoothing=False)
        assert beta == pytest.approx(20.0, rel=1e-6)  # the end of the range
        assert metric.temperature() == pytest.approx(1 / 20.0)
        value = float(metric.result())
        assert value == pytest.approx(exact, rel=1e-6) and value > 0.0
        results.append(value)
    assert results[0] > results[1] > results[2] > 0.0


def test_metric_sample_weights_and_soft_targets():
    rng = np.random.default_rng(5)
    p = _softmax(rng.normal(size=(40, 5)) * 2).astype("float32")
    soft = _softmax(rng.normal(size=(40, 5)))  # Mixup-like targets: rows sum to 1
    metric = CalibratedCrossEntropy()
    metric.update_state(soft, p, sample_weight=np.r_[np.ones(20), np.zeros(20)])
    loss, beta = calibrated_nll(p[:20], soft[:20])  # zero weight = not there (n = 20)
    assert float(metric.result()) == pytest.approx(loss, abs=1e-5)
    assert metric.temperature() == pytest.approx(1 / beta, rel=1e-4)


def test_metric_with_a_coarse_grid():
    p, labels = _split_with_errors(1.0)
    for num_betas in (3, 4, 9):
        metric = CalibratedCrossEntropy(low=0.1, high=10.0, num_betas=num_betas)
        metric.update_state(labels, p)
        loss = calibrated_nll(p, labels, low=0.1, high=10.0)[0]
        assert np.isfinite(float(metric.result()))
        assert float(metric.result()) == pytest.approx(loss, rel=0.2)


@pytest.mark.parametrize("num_betas", [121, 5, 4])
@pytest.mark.parametrize("smoothing", [True, False])
def test_metric_result_eager_equals_the_traced_result(num_betas, smoothing):
    # Eagerly the refinement runs in NumPy; inside a compiled step, as keras.ops: the same
    # numbers, and the same for the temperature.
    import tensorflow as tf

    rng = np.random.default_rng(num_betas)
    for sharpness in (0.3, 3.0, 30.0):
        metric = CalibratedCrossEntropy(smoothing=smoothing, num_betas=num_betas)
        p = rng.dirichlet(np.ones(10) / sharpness, 57).astype("float32")
        metric.update_state(np.eye(10)[rng.integers(0, 10, 57)], p)
        traced = tf.function(lambda: metric._refined())()
        assert float(metric.result()) == pytest.approx(float(traced[0]), rel=1e-12, abs=1e-300)
        assert metric.temperature() == pytest.approx(1.0 / float(traced[1]), rel=1e-12)
    metric.enable(False)
    assert float(metric.result()) == 0.0
    assert float(tf.function(metric.result)()) == 0.0


def test_metric_in_a_compiled_model_round_trips(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "categorical_crossentropy",
                  metrics=[CalibratedCrossEntropy(num_betas=31)])
    x = np.random.default_rng(6).normal(size=(16, 4)).astype("float32")
    y = np.eye(3)[np.arange(16) % 3]
    before = model.evaluate(x, y, verbose=0, return_dict=True)["calibrated_loss"]  # traced
    exact = calibrated_nll(model.predict(x, verbose=0), y, high=20.0)[0]
    assert before == pytest.approx(exact, abs=1e-4)  # 31 points over [0.05, 20]
    model.optimizer.build(model.trainable_variables)  # saved built: no loading warning
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    after = loaded.evaluate(x, y, verbose=0, return_dict=True)["calibrated_loss"]
    assert after == pytest.approx(before, rel=1e-6)
    metric = CalibratedCrossEntropy(low=0.1, high=5.0, num_betas=9, smoothing=False)
    rebuilt = CalibratedCrossEntropy.from_config(metric.get_config())
    assert (rebuilt.num_betas, rebuilt.smoothing) == (9, False)
    # the registered name is a file format: never renamed
    assert (keras.saving.get_registered_name(CalibratedCrossEntropy)
            == "keras_reg>CalibratedCrossEntropy")


# ------------------------------------------------------------------ errors


def test_bad_inputs_name_the_argument():
    p = np.full((4, 3), 1 / 3)
    with pytest.raises(ValueError, match="`probabilities`"):
        calibrated_nll(p[0], np.zeros(3))
    with pytest.raises(ValueError, match="`targets`"):
        calibrated_nll(p, np.zeros(5))
    with pytest.raises(ValueError, match="`targets`"):
        calibrated_nll(p, np.zeros((4, 2)))
    with pytest.raises(TypeError, match="`smoothing`"):
        calibrated_losses(p, np.zeros(4, int), smoothing=1)
    with pytest.raises(ValueError, match="`high`"):
        calibrated_nll(p, np.zeros(4, int), low=2.0, high=1.0)


@pytest.mark.parametrize("kwargs,name", [({"low": 0.0}, "low"), ({"low": 2.0, "high": 1.0},
                                         "high"), ({"num_betas": 2}, "num_betas"),
                                        ({"num_betas": 10.0}, "num_betas"),
                                        ({"epsilon": -1.0}, "epsilon")])
def test_metric_bad_arguments_name_them(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        CalibratedCrossEntropy(**kwargs)


def test_metric_smoothing_must_be_a_bool():
    with pytest.raises(TypeError, match="`smoothing`"):
        CalibratedCrossEntropy(smoothing="yes")
