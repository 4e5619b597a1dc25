"""selection: per-image validation scores, paired leads, and the trial a search hands over."""

import math
import os

import keras
import numpy as np
import pytest

from tests.tuning._tiny import tiny_model
from keras_reg.tuning import RegularizationSpace, RegularizationTuner
from keras_reg.tuning.calibration import calibrated_nll
from keras_reg.tuning.result import SearchResult, TrialRecord
from keras_reg.tuning.selection import (SCORES, choose, image_scores, paired_lead,
                                        selection_line)
from keras_reg.tuning.tuner import SELECTION_MARGIN


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


def _trial(number, objective, label=None):
    return TrialRecord(str(number - 1), {"l2": 0.0}, objective=objective, label=label)


def _scores(rng, mean, n=400):
    return rng.normal(mean, 0.3, size=n)


class TestChoose:
    """`choose` on hand-made trials: trial 1 is the anchor `start` (labelled)."""

    def setup_method(self):
        rng = np.random.default_rng(0)
        base = _scores(rng, 0.5)
        noise = rng.normal(0, 0.05, (2, 400))
        noise -= noise.mean(axis=1, keepdims=True)  # leads of exactly 0.001 and 0.04
        self.anchor = _trial(1, 0.500, "start")
        self.scores = {"0": base,
                       "1": base - 0.001 + noise[0],  # z ~ 0.4: within noise
                       "2": base - 0.040 + noise[1]}  # z ~ 16: a clear lead
        self.close = _trial(2, 0.498)
        self.clear = _trial(3, 0.460)

    def test_a_clear_lead_is_handed_over(self):
        ranked = [self.clear, self.close, self.anchor]
        chosen, selection = choose(ranked, self.scores, 1.0)
        assert chosen is self.clear
        assert selection["leader"] == 3 and selection["chosen"] == 3
        assert selection["anchor"] == 1 and selection["anchor_label"] == "start"
        assert selection["leads"][0]["z"] > 5

    def test_a_lead_within_the_noise_hands_over_the_labelled_trial(self):
        chosen, selection = choose([self.close, self.anchor], self.scores, 1.0)
        assert chosen is self.anchor
        assert selection["leader"] == 2 and selection["chosen"] == 1
        (lead,) = selection["leads"]
        assert lead["trial"] == 2 and lead["z"] < 1.0
        line = selection_line(selection)
        assert "handed over `start` (trial 1)" in line and "trial 2 by z" in line

    def test_the_first_clear_trial_in_objective_order_wins(self):
        # a close leader on the objective, then a clear one: the clear one is handed over
        close = _trial(2, 0.450)
        chosen, selection = choose([close, self.clear, self.anchor], self.scores, 1.0)
        assert chosen is self.clear
        assert [d["trial"] for d in selection["leads"]] == [2, 3]
        assert "handed over trial 3" in selection_line(selection)

    def test_a_lead_of_rounding_size_is_no_lead_whatever_its_z(self):
        # a perfectly classified split: losses ~1e-14, every image a hair better (z huge)
        tiny = np.full(400, 2e-14)
        scores = {"0": tiny, "1": tiny * 0.5}
        chosen, selection = choose([self.close, self.anchor], scores, 1.0)
        assert selection["leads"][0]["z"] == math.inf or selection["leads"][0]["z"] > 100
        assert chosen is self.anchor

    def test_margin_zero_hands_over_the_best_objective(self):
        chosen, selection = choose([self.close, self.anchor], self.scores, 0.0)
        assert chosen is self.close and selection["anchor"] is None
        assert selection_line(selection) is None

    def test_a_labelled_leader_or_no_labelled_trial_is_not_contested(self):
        chosen, _ = choose([self.anchor, self.close], self.scores, 1.0)
        assert chosen is self.anchor
        chosen, selection = choose([self.close, self.clear], self.scores, 1.0)
        assert chosen is self.close and selection["anchor"] is None

    def test_without_the_anchors_scores_the_leader_is_kept(self):
        scores = {k: v for k, v in self.scores.items() if k != "0"}
        chosen, selection = choose([self.close, self.anchor], scores, 1.0)
        assert chosen is self.close and "no validation scores" in selection["rule"]

    @pytest.mark.parametrize("margin, error", [(-1.0, ValueError), ("1", TypeError),
                                               (float("nan"), ValueError)])
    def test_bad_margin(self, margin, error):
        with pytest.raises(error, match="selection_margin"):
            choose([self.close, self.anchor], self.scores, margin)

    def test_search_result_hands_over_the_chosen_trial(self):
        result = SearchResult.from_records([self.anchor, self.close], "val_calibrated_loss",
                                           "min", scores=self.scores, selection_margin=1.0)
        assert result.best_trial is self.anchor
        assert "handed over trial 1" in str(result) and "trial 2 led" in str(result)
        plain = SearchResult.from_records([self.anchor, self.close], "val_calibrated_loss",
                                          "min", scores=self.scores)
        assert plain.best_trial is self.close  # margin 0 by default for hand-made records


SPACE = RegularizationSpace(l2=(0.0, 1e-3), dropout=(0.0, 0.3), drop_path="off",
                            mixup_alpha="off", cutmix_alpha="off", label_smoothing="off",
                            augment="off", input_noise="off", norm=["batch", None])
ARGS = dict(space=SPACE, tuner="random", max_trials=4, seed=5, references=("start", "none"),
            probes=False, steps_per_execution=1)


@pytest.fixture(scope="module")
def searched(data, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("selection"))
    held = []
    tuner = RegularizationTuner(  # records whether each trial ran protected from the median rule
        tiny_model, directory=root, **ARGS,
        progress=lambda record, n, total: held.append((record.label, held_tuner[0].hypermodel
                                                      .protected)))
    held_tuner = [tuner]
    tuner.search(data[0], validation_data=data[1], epochs=2)
    tuner.protected_log = held
    return tuner, root


def test_labelled_trials_run_protected_from_the_median_rule(searched):
    tuner, _ = searched
    assert tuner.protected_log == [("start", True), ("none", True), (None, False),
                                   (None, False)]


def test_every_trial_writes_scores_that_average_to_its_objective(searched, data):
    tuner, _ = searched
    n = sum(int(b[0].shape[0]) for b in data[1])
    for trial in tuner.result().completed:
        path = os.path.join(tuner.get_trial_dir(trial.trial_id), SCORES)
        scores = np.load(path)
        assert scores.shape == (n,)
        # the objective is the best epoch's calibrated loss: the scores are that epoch's images
        assert scores.mean() == pytest.approx(trial.objective, rel=2e-3)


def test_the_margin_is_read_when_the_result_is(searched):
    tuner, root = searched
    plain = RegularizationTuner(tiny_model, directory=root, selection_margin=0.0,
                                **ARGS).result()
    leader = min(plain.completed, key=lambda t: t.objective)
    assert plain.best_trial.trial_id == leader.trial_id
    strict = RegularizationTuner(tiny_model, directory=root, selection_margin=1e9,
                                 **ARGS).result()
    assert strict.best_trial.label is not None  # nothing leads a reference by 1e9 SE
    best_labelled = min((t for t in strict.completed if t.label), key=lambda t: t.objective)
    assert strict.best_trial.trial_id == best_labelled.trial_id
    assert tuner.selection_margin == SELECTION_MARGIN == 1.0


def test_get_best_models_starts_with_the_handed_over_trial(searched, data):
    tuner, root = searched
    strict = RegularizationTuner(tiny_model, directory=root, selection_margin=1e9, **ARGS)
    strict.search(data[0], validation_data=data[1], epochs=2)  # all done: makes the hypermodel
    chosen = strict.result().best_trial
    assert strict.get_best_hyperparameters(1)[0].values == chosen.values
    assert len(strict.get_best_hyperparameters(4)) == 4
    images = next(iter(data[1]))[0]
    (model,) = strict.get_best_models(1)
    expected = strict.load_model(strict.oracle.get_trial(chosen.trial_id))
    np.testing.assert_allclose(model.predict(images, verbose=0),
                               expected.predict(images, verbose=0), atol=1e-6)


def test_bad_selection_margin_is_refused_at_construction(tmp_path):
    with pytest.raises(ValueError, match="selection_margin.*-0.5"):
        RegularizationTuner(tiny_model, directory=str(tmp_path), selection_margin=-0.5, **ARGS)
