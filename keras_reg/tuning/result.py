"""What a search returns: one record per trial, the references, the best values and model."""

import json
import math
import os

from keras_reg.tuning.regularization import NAMES, Regularization, format_value
from keras_reg.tuning.selection import choose

RECORD = "keras_reg_trial.json"


class SearchError(RuntimeError):
    """The search produced no usable trial (every trial failed)."""


class SettingsMismatchError(ValueError):
    """The search directory holds a search made with other settings.

    Attributes:
        differences: `{name: (recorded, requested)}` for every differing setting.
        directory: the search (project) directory.
    """

    def __init__(self, differences, directory):
        self.differences = dict(differences)
        self.directory = directory
        changes = "; ".join(f"{name}: {_show(old)} -> {_show(new)}"
                            for name, (old, new) in sorted(self.differences.items()))
        super().__init__(
            f"The search in {directory} was made with other settings ({changes}). Pass "
            "overwrite=True to start a new search there, or use another directory."
        )


def _show(value):
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else repr(value)


class TrialRecord:
    """One trial of a search.

    Attributes:
        trial_id: KerasTuner's trial id (`"0"`, `"1"`, ...; zero-padded for 10+ trials).
        number: the trial's number, 1-based (`int(trial_id) + 1`): trial `number` of N.
        label: `"start"`, `"none"` or `"recipe"` when the trial evaluates that reference's
            values, else None.
        values: the trial's hyperparameter values (regularization values, and Hyperband's
            `tuner/...` bookkeeping).
        objective: the best value of the objective in this trial (None if it failed).
        epochs: epochs run in its last execution.
        status: `"COMPLETED"`, `"FAILED"`, `"INVALID"`, `"RUNNING"` (interrupted) ...
        seconds: wall time of the trial; `fit_seconds`: of which in `fit`.
        tuner_id: the tuner (worker) that ran it.
        message: last line of the error message of a failed trial.
    """

    FIELDS = ("trial_id", "label", "values", "objective", "epochs", "status", "seconds",
              "fit_seconds", "tuner_id", "message")

    def __init__(self, trial_id, values, objective=None, epochs=0, status="COMPLETED",
                 seconds=0.0, fit_seconds=0.0, tuner_id=None, message="", label=None):
        self.trial_id = str(trial_id)
        self.label = label
        self.values = dict(values)
        self.objective = None if objective is None else float(objective)
        self.epochs = int(epochs)
        self.status = str(status)
        self.seconds = float(seconds)
        self.fit_seconds = float(fit_seconds)
        self.tuner_id = tuner_id
        self.message = message or ""

    @property
    def number(self):
        return int(self.trial_id) + 1

    @property
    def regularization(self):
        return Regularization.from_dict(self.values)

    def describe(self):
        """`l2=0.0001 dropout=0.25 ... norm=none`: every value, 3 significant digits."""
        values = self.regularization.to_dict()
        return " ".join(f"{name}={format_value(values[name])}" for name in values)

    def to_dict(self):
        return {name: getattr(self, name) for name in self.FIELDS}

    @classmethod
    def from_dict(cls, d):
        return cls(**{k: v for k, v in d.items() if k in cls.FIELDS})

    def __repr__(self):
        label = "" if self.label is None else f", label={self.label!r}"
        return (f"TrialRecord(number={self.number}{label}, status={self.status!r}, "
                f"objective={self.objective!r}, {self.describe()})")


def read_record(trial_dir):
    """The `TrialRecord` written in `trial_dir` when its trial ended, or None."""
    try:
        with open(os.path.join(trial_dir, RECORD)) as f:
            return TrialRecord.from_dict(json.load(f))
    except (OSError, ValueError, TypeError):
        return None


class SearchResult:
    """The outcome of a search (`search(...)`, `RegularizationTuner.result()`).

    Attributes:
        trials: list of `TrialRecord`, in trial order.
        best_trial: the `TrialRecord` handed over: the completed trial with the best objective,
            unless that is an unlabelled trial whose lead over the best labelled one (a
            reference or probe) is within `selection_margin` paired standard errors of the
            validation images (`keras_reg.tuning.selection.choose`); then that labelled one.
        selection: how `best_trial` was chosen (`choose`'s dict: the rule, the margin, the
            objective's leader, the anchor and the paired leads), or None.
        best_hyperparameters: its `keras_tuner.HyperParameters` (None on a distributed
            worker, which sees only its own trials).
        best_regularization: its `Regularization`.
        references: `{label: TrialRecord}`: the best completed trial of each labelled
            starting point evaluated in the search: the references (`"start"`, `"none"`,
            `"recipe"`) and the probes (`"strong"`, `"smooth"`, `"augmented"`).
        skipped_references: `{label: reason}` for the references the space cannot express.
        objective: the objective's name; `direction`: `"min"` or `"max"`.
        tuner: the `RegularizationTuner` (None on a distributed worker's partial view).
        directory: the project directory.
        resumed_trials: trials that had already ended before this run.

    `best_model` loads the best trial's model at its best epoch. `str(result)` and
    `result.to_markdown()` give a table of the trials, best first, numbered 1..N.
    """

    def __init__(self, trials, best_trial, best_hyperparameters, objective, direction,
                 tuner=None, directory=None, skipped_references=None, resumed_trials=0):
        self.trials = list(trials)
        self.best_trial = best_trial
        self.best_hyperparameters = best_hyperparameters
        self.objective = objective
        self.direction = direction
        self.tuner = tuner
        self.directory = directory
        self.skipped_references = dict(skipped_references or {})
        self.resumed_trials = int(resumed_trials)
        self.selection = None
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
        return [t for t in self.trials if _finite(t)]

    @property
    def references(self):
        best = {}
        for record in self.completed:
            if record.label is None:
                continue
            held = best.get(record.label)
            if held is None or self._key(record) < self._key(held):
                best[record.label] = record
        return best

    def _key(self, record):
        sign = 1.0 if self.direction == "min" else -1.0
        if record.objective is None or not math.isfinite(record.objective):
            return (1, 0.0, record.number)
        return (0, sign * record.objective, record.number)

    @classmethod
    def from_records(cls, trials, objective, direction, hyperparameters=None, tuner=None,
                     directory=None, skipped_references=None, resumed_trials=0, partial=False,
                     scores=None, selection_margin=0.0):
        """A result from records; raises `SearchError` when none completed (unless `partial`).

        Args:
            trials: `TrialRecord`s.
            objective, direction: the objective's name and `"min"`/`"max"`.
            hyperparameters: `{trial_id: keras_tuner.HyperParameters}` (for
                `best_hyperparameters`).
            partial: a distributed worker's view (its own trials only): no error when none
                of them completed.
            scores: `{trial_id: per-image validation scores}` for the choice of the trial
                handed over (`keras_reg.tuning.selection.choose`).
            selection_margin: the paired standard errors an unlabelled trial must lead the
                best labelled one by; 0 hands over the best objective.
        """
        trials = sorted(trials, key=lambda t: t.number)
        result = cls(trials, None, None, objective, direction, tuner=tuner,
                     directory=directory, skipped_references=skipped_references,
                     resumed_trials=resumed_trials)
        done = result.completed
        if not done:
            if partial:
                return result
            failed = [t for t in trials if t.message]
            first = (f" First failure (trial {failed[0].number}): {failed[0].message}"
                     if failed else "")
            raise SearchError(
                f"No trial completed ({len(trials)} trial(s) ran, none finished with a finite "
                f"{objective}).{first}"
            )
        result.best_trial, result.selection = choose(sorted(done, key=result._key),
                                                     scores or {}, selection_margin)
        if hyperparameters:
            result.best_hyperparameters = hyperparameters.get(result.best_trial.trial_id)
        return result

    def to_markdown(self, limit=None):
        """A markdown table of the trials, best first (failed trials last), numbered 1..N."""
        names = [n for n in NAMES if n == "norm" or any(n in t.values for t in self.trials)]
        ordered = sorted(self.trials, key=self._key)
        if limit:
            ordered = ordered[:limit]
        total = len(self.trials)
        head = ["trial", "reference", *names, self.objective, "epochs", "seconds", "status"]
        rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for t in ordered:
            values = t.regularization.to_dict()
            cells = [f"{t.number}/{total}", t.label or ""]
            cells += [format_value(values.get(n)) for n in names]
            cells += ["" if t.objective is None else f"{t.objective:.4g}", str(t.epochs),
                      f"{t.seconds:.1f}", t.status]
            rows.append("| " + " | ".join(cells) + " |")
        for label, reason in sorted(self.skipped_references.items()):
            rows.append(f"\nReference `{label}` not evaluated: {reason}.")
        return "\n".join(rows)

    def __str__(self):
        best = self.best_trial
        if best is None:
            return f"Search: {len(self.trials)} trial(s) run here\n\n{self.to_markdown()}"
        leader = min(self.completed, key=self._key)
        note = "" if leader is best else (
            f"; trial {leader.number} led on the objective within the validation noise")
        return (f"Search: {len(self.completed)}/{len(self.trials)} trials completed; handed "
                f"over trial {best.number} ({self.objective} = {best.objective:.4g}: "
                f"{best.describe()}){note}\n\n{self.to_markdown()}")

    def __repr__(self):
        if self.best_trial is None:
            return f"SearchResult(trials={len(self.trials)}, best_trial=None)"
        return (f"SearchResult(trials={len(self.trials)}, best_trial={self.best_trial.number}, "
                f"{self.objective}={self.best_trial.objective:.4g})")


def _finite(record):
    return (record.status == "COMPLETED" and record.objective is not None
            and math.isfinite(record.objective))


def last_line(message):
    """The last non-empty line of an error message (a traceback's exception line)."""
    lines = (message or "").strip().splitlines()
    return lines[-1] if lines else ""
