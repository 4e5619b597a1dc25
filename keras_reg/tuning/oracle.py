"""KerasTuner oracles that evaluate labelled starting points first and hand over with evidence."""

import os

import keras_tuner
import numpy as np

from keras_reg._json import read_json
from keras_reg.tuning import selection

TRIAL_FILE = "keras_reg.json"  # per trial, beside KerasTuner's trial.json: curves and scores
TRUST_RADIUS = "tuner/trust_radius"  # in a trial's values: drawn in a trust region of this radius


class _StartingPointsFirst:
    """Oracle mixin: the starting points not yet issued first (oracle state: a resumed search
    does not repeat them), then searched trials drawn in a trust region around the incumbent;
    `get_best_trials` puts first the trial handed over (`selection.choose`); a trial whose
    process was killed is resumed up to `KILLED_RUNS` times, then failed (docs/search.md)."""

    KILLED_RUNS = 3
    INITIAL_RADIUS = 0.1

    def configure(self, points, project_dir, margin):
        """`points`: `[(label, hp values)]` to evaluate first; `project_dir`: where the trials
        write their per-image validation scores; `margin`: the hand-over margin."""
        self.points = list(points)
        self.project_dir = str(project_dir)
        self.margin = selection.check_margin(margin)
        # trial id -> label; -> runs ended by a killed process; -> the best score when issued
        for state in ("labels", "killed", "incumbents"):
            if not hasattr(self, state):
                setattr(self, state, {})

    def label_of(self, values):
        """The label of the starting point `values` holds, or None."""
        values = {k: v for k, v in dict(values).items() if not k.startswith("tuner/")}
        return next((label for label, point in self.points if point == values), None)

    def populate_space(self, trial_id):
        issued = set(self.labels.values())
        pending = [(label, values) for label, values in self.points if label not in issued]
        if not pending:
            ranked = self._ranked()
            self.incumbents[trial_id] = float(ranked[0].score) if ranked else None
            region = self.trust_region()
            proposal = super().populate_space(trial_id)
            if region is not None and proposal.get("values") is not None:  # runs in full
                proposal["values"][TRUST_RADIUS] = float(region[1])
            return proposal
        label, values = pending[0]
        self.labels[trial_id] = label
        return {"status": keras_tuner.engine.trial.TrialStatus.RUNNING, "values": dict(values)}

    def scores(self, trial_id):
        """The per-image validation scores a trial wrote (None when it has none)."""
        record = read_json(os.path.join(self.project_dir, f"trial_{trial_id}", TRIAL_FILE), {})
        scores = record.get("scores")
        return None if scores is None else np.asarray(scores, np.float64)

    def _ranked(self):
        """The completed trials with a finite score, best objective first (KerasTuner's)."""
        ranked = super().get_best_trials(len(self.trials))
        return [t for t in ranked if t.status == "COMPLETED" and t.score is not None
                and np.isfinite(t.score)]

    def _searched(self):
        return [hp for hp in self.hyperparameters.space
                if not isinstance(hp, keras_tuner.engine.hyperparameters.Fixed)]

    def trust_region(self):
        """`(centre, radius)` in KerasTuner's vector space, or None for the whole space.

        The centre is the incumbent's vector; the radius, recomputed from the trials in the
        order they ended (a resumed or distributed search keeps it), goes back to
        `INITIAL_RADIUS` after a searched trial that beat its incumbent and doubles after one
        that did not. None before any trial completed, while starting points are to be issued
        and from a radius of 0.5 on.
        """
        ranked, space = self._ranked(), self._searched()
        issued = set(self.labels.values())
        if not ranked or not space or any(label not in issued for label, _ in self.points):
            return None
        scored, radius = {t.trial_id for t in ranked}, self.INITIAL_RADIUS
        for trial_id in self.end_order:
            before, trial = self.incumbents.get(trial_id), self.trials.get(trial_id)
            if before is None or trial is None:
                continue  # a starting point, or issued before any trial completed
            improved = trial_id in scored and self.objective.better_than(trial.score, before)
            radius = self.INITIAL_RADIUS if improved else min(2 * radius, 1.0)
        if radius >= 0.5:
            return None
        values = ranked[0].hyperparameters.values
        return np.array([hp.value_to_prob(values.get(hp.name, hp.default))
                         for hp in space]), radius

    def _box(self):
        region = self.trust_region()
        if region is None:
            return None
        centre, radius = region
        return np.stack([np.clip(centre - radius, 0, 1), np.clip(centre + radius, 0, 1)], 1)

    def _get_hp_bounds(self):  # the Bayesian oracle's acquisition bounds and restarts
        box = self._box()
        return super()._get_hp_bounds() if box is None else box

    def _random_values(self):
        box = self._box()
        if box is not None:
            for _ in range(self._max_collisions + 1):
                vector = np.random.default_rng(self._seed_state).uniform(box[:, 0], box[:, 1])
                self._seed_state += 1
                # KerasTuner's vector -> values (fixed and inactive hyperparameters included)
                values = keras_tuner.oracles.BayesianOptimizationOracle._vector_to_values(
                    self, vector)
                if not self._duplicate(values):
                    return values
        return super()._random_values()  # the whole space

    def _compute_values_hash(self, values):  # the same values, in a trust region or not
        return super()._compute_values_hash(
            {k: v for k, v in values.items() if k != TRUST_RADIUS})

    def hand_over(self):
        """`(trial, selection)` of `selection.choose`, or `(None, None)` before any completed."""
        ranked = self._ranked()
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
        state["keras_reg"] = {"labels": dict(self.labels), "killed": dict(self.killed),
                              "incumbents": dict(self.incumbents)}
        return state

    def set_state(self, state):
        super().set_state(state)
        own = state.get("keras_reg", {})
        self.labels = dict(own.get("labels", {}))
        self.killed = dict(own.get("killed", {}))
        self.incumbents = dict(own.get("incumbents", {}))
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
