"""selection: per-image validation scores, paired leads, and the trial a search hands over."""

import json
import math
import os

import keras
import numpy as np
import pytest

from keras_reg.metrics import calibrated_nll
from keras_reg.tuning import RegularizationTuner
from keras_reg.cli._advice import selection_line
from keras_reg.tuning.selection import choose, image_scores, paired_lead
from keras_reg.tuning.tuner import SELECTION_MARGIN
from tests.tuning._tiny import tiny_model
from tests.tuning.conftest import ARGS


def _probabilities(n=200, k=5, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 2.0
    labels = rng.integers(0, k, size=n)
    logits[np.arange(n), labels] += 1.5  # better than chance
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True), labels


def test_calibrated_scores_average_to_the_calibrated_loss():
    p, labels = _probabilities()
    scores = image_scores(p, labels, "val_calibrated_loss")
    loss, beta = calibrated_nll(p, labels)
    assert beta != pytest.approx(1.0, abs=0.05)  # the temperature matters here
    assert scores.shape == (200,)
    assert scores.mean() == pytest.approx(loss, rel=1e-9)


@pytest.mark.parametrize("objective", ["val_data_loss", "val_loss"])
def test_loss_scores_are_keras_cross_entropy_per_image(objective):
    p, labels = _probabilities(seed=1)
    scores = image_scores(p, labels, objective)
    expected = keras.ops.convert_to_numpy(keras.losses.categorical_crossentropy(
        np.eye(5)[labels].astype("float32"), p.astype("float32")))
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-7)  # Keras: float32


def test_accuracy_scores_are_the_errors_and_one_hot_targets_read_alike():
    p, labels = _probabilities(seed=2)
    errors = image_scores(p, labels, "val_accuracy")
    np.testing.assert_array_equal(errors, (p.argmax(axis=1) != labels).astype(float))
    np.testing.assert_array_equal(image_scores(p, np.eye(5)[labels], "val_accuracy"), errors)


def test_an_objective_without_a_per_image_form_has_no_scores():
    p, labels = _probabilities()
    assert image_scores(p, labels, "val_auc") is None


def test_paired_lead_against_numpy():
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 0.5, size=300)
    b = a - 0.05 + rng.normal(0.0, 0.2, size=300)
    lead = paired_lead(a, b)
    d = a - b
    assert lead["lead"] == pytest.approx(d.mean())
    assert lead["standard_error"] == pytest.approx(d.std(ddof=1) / math.sqrt(300))
    assert lead["z"] == pytest.approx(d.mean() / (d.std(ddof=1) / math.sqrt(300)))
    assert lead["images"] == 300
    assert 2.0 < lead["z"] < 6.0  # 0.05 ahead with noise 0.2 on 300 images: z ~ 4.3


def test_paired_lead_edge_cases():
    assert paired_lead(np.ones(4), np.ones(4) - 0.1)["z"] == math.inf
    assert math.isnan(paired_lead(np.ones(4), np.ones(4))["z"])
    with pytest.raises(ValueError, match="`anchor`, `candidate`"):
        paired_lead(np.ones(4), np.ones(5))
    with pytest.raises(ValueError, match="n >= 2"):
        paired_lead(np.ones(1), np.ones(1))


def _scores(rng, mean, n=400):
    return rng.normal(mean, 0.3, size=n)


class TestChoose:
    """`choose` on hand-made trials: trial 1 ("0") is the anchor `start` (labelled); trial 2
    ("1") leads it within the noise, trial 3 ("2") clearly."""

    def setup_method(self):
        rng = np.random.default_rng(0)
        base = _scores(rng, 0.5)
        noise = rng.normal(0, 0.05, (2, 400))
        noise -= noise.mean(axis=1, keepdims=True)  # leads of exactly 0.001 and 0.04
        self.labels = {"0": "start", "1": None, "2": None}
        self.scores = {"0": base,
                       "1": base - 0.001 + noise[0],  # z ~ 0.4: within noise
                       "2": base - 0.040 + noise[1]}  # z ~ 16: a clear lead

    def test_a_clear_lead_is_handed_over(self):
        chosen, selection = choose(["2", "1", "0"], self.labels, self.scores, 1.0)
        assert chosen == "2"
        assert selection["leader"] == 3 and selection["chosen"] == 3
        assert selection["anchor"] == 1 and selection["anchor_label"] == "start"
        assert selection["leads"][0]["z"] > 5
        assert "handed over trial 3" in selection_line(selection)

    def test_a_lead_within_the_noise_hands_over_the_labelled_trial(self):
        chosen, selection = choose(["1", "0"], self.labels, self.scores, 1.0)
        assert chosen == "0"
        assert selection["leader"] == 2 and selection["chosen"] == 1
        (lead,) = selection["leads"]
        assert lead["trial"] == 2 and lead["z"] < 1.0
        line = selection_line(selection)
        assert "handed over `start` (trial 1)" in line and "trial 2 by z" in line

    def test_the_first_clear_trial_in_objective_order_wins(self):
        # a close leader on the objective, then a clear one: the clear one is handed over
        chosen, selection = choose(["1", "2", "0"], self.labels, self.scores, 1.0)
        assert chosen == "2"
        assert [d["trial"] for d in selection["leads"]] == [2, 3]

    def test_a_lead_of_rounding_size_is_no_lead_whatever_its_z(self):
        # a perfectly classified split: losses ~1e-14, every image a hair better (z huge)
        tiny = np.full(400, 2e-14)
        scores = {"0": tiny, "1": tiny * 0.5}
        chosen, selection = choose(["1", "0"], self.labels, scores, 1.0)
        assert selection["leads"][0]["z"] == math.inf or selection["leads"][0]["z"] > 100
        assert chosen == "0"

    def test_margin_zero_hands_over_the_best_objective(self):
        chosen, selection = choose(["1", "0"], self.labels, self.scores, 0.0)
        assert chosen == "1" and selection["anchor"] is None
        assert selection_line(selection) is None

    def test_a_labelled_leader_or_no_labelled_trial_is_not_contested(self):
        chosen, _ = choose(["0", "1"], self.labels, self.scores, 1.0)
        assert chosen == "0"
        chosen, selection = choose(["1", "2"], self.labels, self.scores, 1.0)
        assert chosen == "1" and selection["anchor"] is None

    def test_without_the_anchors_scores_the_leader_is_kept(self):
        scores = {k: v for k, v in self.scores.items() if k != "0"}
        chosen, selection = choose(["1", "0"], self.labels, scores, 1.0)
        assert chosen == "1" and "no validation scores" in selection["rule"]

    @pytest.mark.parametrize("margin, error", [(-1.0, ValueError), ("1", TypeError),
                                               (float("nan"), ValueError)])
    def test_bad_margin(self, margin, error):
        with pytest.raises(error, match="selection_margin"):
            choose(["1", "0"], self.labels, self.scores, margin)


# ------------------------------------------------------------------------------ in a search

def _reopened(finished, tmp_path, margin):
    directory = finished.copy(tmp_path / str(margin))
    return RegularizationTuner(tiny_model, directory=directory, selection_margin=margin,
                               **ARGS)


def test_the_margin_decides_between_the_leader_and_the_best_labelled_trial(finished,
                                                                          tmp_path):
    # the margin is no setting of the search: a directory reopened with another reads anew
    plain = _reopened(finished, tmp_path, 0.0).result()
    leader = min(plain.trials, key=lambda t: t.objective)
    assert plain.best_trial.trial_id == leader.trial_id
    assert plain.selection["rule"] == "best objective"
    strict = _reopened(finished, tmp_path, 1e9)
    result = strict.result()
    best_labelled = min((t for t in result.trials if t.label), key=lambda t: t.objective)
    assert result.best_trial.trial_id == best_labelled.trial_id  # nothing leads by 1e9 SE
    # KerasTuner's answers put the handed-over trial first
    assert strict.get_best_hyperparameters(1)[0].values == best_labelled.values
    assert len(strict.get_best_hyperparameters(3)) == 3
    assert finished.tuner.selection_margin == SELECTION_MARGIN == 1.0
    default = finished.result
    assert default.selection["chosen"] == default.best_trial.number
    assert default.selection["leader"] == leader.number


def test_every_trial_records_scores_that_average_to_its_objective(finished, data):
    # the evidence of the hand-over: per validation image, at the trial's best epoch
    n = sum(int(b[0].shape[0]) for b in data[1])
    for record in finished.result.trials:
        path = os.path.join(finished.directory, "search", f"trial_{record.trial_id}",
                            "keras_reg.json")
        with open(path) as f:
            scores = np.asarray(json.load(f)["scores"])
        assert scores.shape == (n,)
        assert scores.mean() == pytest.approx(record.objective, rel=2e-3)
