"""What `search` returns: one record per trial, the best values and model, a table."""

import json
import math
import os

from keras_reg.tuning.space import NAMES, Regularization, _fmt


class SearchError(RuntimeError):
    """The search produced no usable trial (every trial failed)."""


class TrialRecord:
    """One trial of a search.

    Attributes:
        trial_id: KerasTuner's trial id (`"00"`, `"01"`, ...).
        values: the trial's hyperparameter values (regularization values, and Hyperband's
            `tuner/...` bookkeeping).
        objective: the best value of the objective in this trial (None if it failed).
        epochs: epochs run in its last execution.
        status: `"COMPLETED"`, `"FAILED"`, `"INVALID"`, `"RUNNING"` (interrupted) ...
        seconds: wall time of the trial; `fit_seconds`: of which in `fit`.
        tuner_id: the tuner (worker) that ran it.
        message: last line of the error message of a failed trial.
    """

    FIELDS = ("trial_id", "values", "objective", "epochs", "status", "seconds", "fit_seconds",
              "tuner_id", "message")

    def __init__(self, trial_id, values, objective=None, epochs=0, status="COMPLETED",
                 seconds=0.0, fit_seconds=0.0, tuner_id=None, message=""):
        self.trial_id = str(trial_id)
        self.values = dict(values)
        self.objective = None if objective is None else float(objective)
        self.epochs = int(epochs)
        self.status = str(status)
        self.seconds = float(seconds)
        self.fit_seconds = float(fit_seconds)
        self.tuner_id = tuner_id
        self.message = message or ""

    @property
    def regularization(self):
        return Regularization.from_dict(self.values)

    def to_dict(self):
        return {name: getattr(self, name) for name in self.FIELDS}

    @classmethod
    def from_dict(cls, d):
        return cls(**{k: v for k, v in d.items() if k in cls.FIELDS})

    def __repr__(self):
        return (f"TrialRecord(trial_id={self.trial_id!r}, status={self.status!r}, "
                f"objective={self.objective!r}, {self.regularization.describe()})")


def read_record(trial_dir):
    """The `TrialRecord` written in `trial_dir` when its trial ended, or None."""
    path = os.path.join(trial_dir, "keras_reg_trial.json")
    try:
        with open(path) as f:
            return TrialRecord.from_dict(json.load(f))
    except (OSError, ValueError):
        return None


class SearchResult:
    """The outcome of `search`.

    Attributes:
        trials: list of `TrialRecord`, in trial order.
        best_hyperparameters: the best trial's `keras_tuner.HyperParameters` (None on a
            distributed worker, which sees only its own trials; its best_trial is the best of
            them, or None).
        best_regularization: the best trial's `Regularization`.
        best_trial: the best trial's `TrialRecord`.
        objective: the objective's name; `direction`: `"min"` or `"max"`.
        tuner: the KerasTuner tuner (None on a distributed worker's partial view).
        directory: the project directory.

    `best_model` loads the best trial's model at its best epoch. `str(result)` and
    `result.to_markdown()` give a table of the trials, best first.
    """

    def __init__(self, trials, best_trial, best_hyperparameters, objective, direction,
                 tuner=None, directory=None):
        self.trials = trials
        self.best_trial = best_trial
        self.best_hyperparameters = best_hyperparameters
        self.objective = objective
        self.direction = direction
        self.tuner = tuner
        self.directory = directory
        self._best_model = None

    @property
    def best_regularization(self):
        return None if self.best_trial is None else self.best_trial.regularization

    @property
    def best_model(self):
        if self._best_model is None:
            if self.tuner is None:
                raise SearchError("The best model is kept by the chief of a distributed search.")
            best = self.tuner.oracle.get_trial(self.best_trial.trial_id)
            self._best_model = self.tuner.load_model(best)
        return self._best_model

    @property
    def completed(self):
        return [t for t in self.trials if t.status == "COMPLETED"]

    @classmethod
    def from_tuner(cls, tuner, space, directory=None):
        """Collects the records of every trial and checks that at least one completed."""
        objective = tuner.oracle.objective
        if tuner._is_worker():  # a worker knows only its own trials
            trials = sorted(tuner._kr_done, key=lambda t: t.trial_id)
            kt_trials = {}
        else:
            kt_trials = dict(tuner.oracle.trials)
            trials = []
            for trial_id in sorted(kt_trials):
                t = kt_trials[trial_id]
                rec = read_record(tuner.get_trial_dir(trial_id))
                status = t.status
                trials.append(TrialRecord(
                    trial_id, t.hyperparameters.values,
                    objective=t.score if status == "COMPLETED" else None,
                    epochs=rec.epochs if rec else 0, status=status,
                    seconds=rec.seconds if rec else 0.0,
                    fit_seconds=rec.fit_seconds if rec else 0.0,
                    tuner_id=rec.tuner_id if rec else None,
                    message=_last_line(t.message),
                ))
        done = [t for t in trials if t.status == "COMPLETED" and t.objective is not None
                and math.isfinite(t.objective)]
        if not done and tuner._is_worker():  # the chief judges the search as a whole
            return cls(trials, None, None, objective.name, objective.direction,
                       directory=directory)
        if not done:
            failed = [t for t in trials if t.message]
            first = f" First failure (trial {failed[0].trial_id}): {failed[0].message}" if (
                failed) else ""
            raise SearchError(
                f"No trial completed ({len(trials)} trial(s) ran, none finished with a finite "
                f"{objective.name}).{first}"
            )
        sign = 1.0 if objective.direction == "min" else -1.0
        best = min(done, key=lambda t: (sign * t.objective, t.trial_id))
        best_hp = kt_trials[best.trial_id].hyperparameters if kt_trials else None
        return cls(trials, best, best_hp, objective.name, objective.direction,
                   tuner=None if tuner._is_worker() else tuner, directory=directory)

    def to_markdown(self, limit=None):
        """A markdown table of the trials, best first (failed trials last)."""
        names = [n for n in NAMES if any(n in t.values for t in self.trials)]
        sign = 1.0 if self.direction == "min" else -1.0
        ordered = sorted(self.trials, key=lambda t: (
            t.objective is None, sign * (t.objective or 0.0), t.trial_id))
        if limit:
            ordered = ordered[:limit]
        head = ["trial", *names, self.objective, "epochs", "seconds", "status"]
        rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for t in ordered:
            cells = [t.trial_id]
            for n in names:
                v = t.values.get(n, "")
                cells.append(_fmt(v) if isinstance(v, float) else str(v))
            cells += ["" if t.objective is None else f"{t.objective:.4f}", str(t.epochs),
                      f"{t.seconds:.1f}", t.status]
            rows.append("| " + " | ".join(cells) + " |")
        return "\n".join(rows)

    def __str__(self):
        best = self.best_trial
        if best is None:
            return f"Search: {len(self.trials)} trial(s) run here\n\n{self.to_markdown()}"
        return (f"Search: {len(self.completed)}/{len(self.trials)} trials completed; best "
                f"{self.objective} = {best.objective:.4f} (trial {best.trial_id}: "
                f"{self.best_regularization.describe()})\n\n{self.to_markdown()}")

    def __repr__(self):
        if self.best_trial is None:
            return f"SearchResult(trials={len(self.trials)}, best_trial=None)"
        return (f"SearchResult(trials={len(self.trials)}, best_trial={self.best_trial.trial_id!r}, "
                f"{self.objective}={self.best_trial.objective:.4g})")


def _last_line(message):
    lines = (message or "").strip().splitlines()
    return lines[-1] if lines else ""
