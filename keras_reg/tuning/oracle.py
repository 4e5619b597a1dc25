"""KerasTuner oracles that evaluate labelled starting points first and hand over with evidence."""

import os

import keras_tuner
import numpy as np

from keras_reg.tuning import selection
from keras_reg.tuning._settings import read_json

TRIAL_FILE = "keras_reg.json"  # per trial, beside KerasTuner's trial.json: curves and scores


class _StartingPointsFirst:
    """Oracle mixin: labelled starting points first, a hand-over rule on `get_best_trials`.

    - `populate_space` (the hook of custom oracles) returns the values of the next starting
      point not yet issued (the references and probes of the space), then the oracle's own
      suggestions. Which trial evaluated which point is part of the oracle's state, so a
      resumed search does not repeat them.
    - `get_best_trials` puts first the trial the search hands over: the best objective,
      unless that trial is unlabelled and its lead over the best labelled trial is within the
      noise of the validation split (`selection.choose`, `margin` paired standard errors).
    - A trial whose process was killed (KerasTuner's `reload` sends it for retry) is resumed
      up to `KILLED_RUNS` times, then marked failed: a trial that kills its process every
      time (out of memory) does not stall the search.
    """

    KILLED_RUNS = 3

    def configure(self, points, project_dir, margin):
        """`points`: `[(label, hp values)]` to evaluate first; `project_dir`: where the trials
        write their per-image validation scores; `margin`: the hand-over margin."""
        self.points = list(points)
        self.project_dir = str(project_dir)
        self.margin = selection.check_margin(margin)
        if not hasattr(self, "labels"):
            self.labels = {}  # trial id -> label
        if not hasattr(self, "killed"):
            self.killed = {}  # trial id -> runs ended by a killed process

    def label_of(self, values):
        """The label of the starting point `values` holds, or None."""
        values = {k: v for k, v in dict(values).items() if not k.startswith("tuner/")}
        return next((label for label, point in self.points if point == values), None)

    def populate_space(self, trial_id):
        issued = set(self.labels.values())
        pending = [(label, values) for label, values in self.points if label not in issued]
        if not pending:
            return super().populate_space(trial_id)
        label, values = pending[0]
        self.labels[trial_id] = label
        return {"status": keras_tuner.engine.trial.TrialStatus.RUNNING, "values": dict(values)}

    def scores(self, trial_id):
        """The per-image validation scores a trial wrote (None when it has none)."""
        record = read_json(os.path.join(self.project_dir, f"trial_{trial_id}", TRIAL_FILE), {})
        scores = record.get("scores")
        return None if scores is None else np.asarray(scores, np.float64)

    def hand_over(self):
        """`(trial, selection)`: the completed trial handed over and how it was chosen (see
        `selection.choose`), or `(None, None)` when no trial completed."""
        ranked = super().get_best_trials(len(self.trials))
        ranked = [t for t in ranked if t.status == "COMPLETED" and t.score is not None
                  and np.isfinite(t.score)]
        if not ranked:
            return None, None
        labels = {t.trial_id: self.label_of(t.hyperparameters.values) for t in ranked}
        scores = {t.trial_id: self.scores(t.trial_id) for t in ranked}
        chosen, how = selection.choose([t.trial_id for t in ranked], labels,
                                       {k: v for k, v in scores.items() if v is not None},
                                       self.margin)
        return self.trials[chosen], how

    def get_best_trials(self, num_trials=1):
        trials = super().get_best_trials(len(self.trials))
        chosen, _ = self.hand_over()
        if chosen is not None:
            trials.sort(key=lambda t: t.trial_id != chosen.trial_id)  # stable: the rest as ranked
        return trials[:num_trials]

    def get_state(self):
        state = super().get_state()
        state["keras_reg"] = {"labels": dict(self.labels), "killed": dict(self.killed)}
        return state

    def set_state(self, state):
        super().set_state(state)
        own = state.get("keras_reg", {})
        self.labels = dict(own.get("labels", {}))
        self.killed = dict(own.get("killed", {}))
        # Trials running when the state was saved were ended by a killed process (`reload`
        # sends them for retry): each such run counts against the retry budget.
        for tuner_id, trial in list(self.ongoing_trials.items()):
            runs = self.killed[trial.trial_id] = self.killed.get(trial.trial_id, 0) + 1
            if runs >= self.KILLED_RUNS:
                del self.ongoing_trials[tuner_id]
                trial.status = keras_tuner.engine.trial.TrialStatus.FAILED
                trial.message = (f"trial {int(trial.trial_id) + 1} was started {runs} times and "
                                 "never ended (the process died each time); giving it up")
                trial.save(os.path.join(self.project_dir, f"trial_{trial.trial_id}",
                                        "trial.json"))


ORACLES = {
    name: type(f"StartingPointsFirst{cls.__name__}", (_StartingPointsFirst, cls), {})
    for name, cls in (("bayesian", keras_tuner.oracles.BayesianOptimizationOracle),
                      ("random", keras_tuner.oracles.RandomSearchOracle))
}
