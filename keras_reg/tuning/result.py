"""What a search returns: one record per trial, the references, the best values and model."""

import json
import math

from keras_reg.tuning.regularization import Regularization


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
    """One trial of a search, as a user reads it (built from KerasTuner's `Trial`).

    Attributes:
        trial_id: KerasTuner's trial id (`"0"`, `"1"`, ...; zero-padded for 10+ trials).
        number: the trial's number, 1-based: trial `number` of N.
        label: the starting point it evaluated (`"start"`, `"none"`, `"recipe"`, a probe's
            label), or None for a searched trial.
        values: the trial's hyperparameter values.
        objective: the best value of the objective (None unless completed).
        epochs: epochs run.
        best_epoch: the epoch of its best objective, 1-based (None unless completed): the
            epochs a refit trains.
        status: `"COMPLETED"`, `"FAILED"`, `"RUNNING"` (interrupted) ...
        seconds: wall time of the trial; `fit_seconds`: of which in training epochs.
        message: the first line of the error of a failed trial.
        history: `{metric: [value per epoch]}` as `History.history` (the epochs of the
            trial's last run).
    """

    def __init__(self, trial_id, values, objective=None, epochs=0, status="COMPLETED",
                 seconds=0.0, fit_seconds=0.0, message="", label=None, history=None,
                 best_epoch=None):
        self.trial_id = str(trial_id)
        self.label = label
        self.values = dict(values)
        self.objective = None if objective is None else float(objective)
        self.epochs = int(epochs)
        self.best_epoch = None if best_epoch is None else int(best_epoch)
        self.status = str(status)
        self.seconds = float(seconds)
        self.fit_seconds = float(fit_seconds)
        self.message = error_line(message)
        self.history = dict(history or {})

    @property
    def number(self):
        return int(self.trial_id) + 1

    @property
    def regularization(self):
        return Regularization.from_dict(self.values)

    def describe(self):
        """`l2=1.00e-04 dropout=0.25 norm=batch`: the values that are on."""
        return self.regularization.describe()

    def to_dict(self):
        return {"trial": self.number, "label": self.label, "values": self.values,
                "objective": self.objective, "epochs": self.epochs,
                "best_epoch": self.best_epoch, "status": self.status,
                "seconds": self.seconds, "fit_seconds": self.fit_seconds,
                "message": self.message}

    def __repr__(self):
        label = "" if self.label is None else f", label={self.label!r}"
        return (f"TrialRecord(number={self.number}{label}, status={self.status!r}, "
                f"objective={self.objective!r}, {self.describe()})")


def error_line(message):
    r"""The first line of the error in `message` (a traceback's exception line, not the lines
    of context some errors add after it); the message itself when it is one line.

    Example:

    >>> error_line("Traceback (most recent call last):\n  File 'x.py', line 1\n"
    ...            "ValueError: dropout is not supported here\n\nArguments received: ...")
    'ValueError: dropout is not supported here'
    """
    lines = (message or "").strip().splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith("  File ")]
    start = frames[-1] + 1 if frames else 0
    for line in lines[start:]:
        if line.strip() and not line[0].isspace():
            return line.strip()
    rest = [line.strip() for line in lines if line.strip()]
    return rest[-1] if rest else ""


class SearchResult:
    """The outcome of a search (`search(...)`, `RegularizationTuner.result()`).

    Attributes:
        trials: list of `TrialRecord`, in trial order.
        best_trial: the `TrialRecord` handed over (`RegularizationTuner`'s hand-over rule).
        selection: how it was chosen (the rule, the margin, the objective's leader, the
            anchor and the paired leads), or None.
        best_hyperparameters: its `keras_tuner.HyperParameters`.
        best_regularization: its `Regularization`.
        best_model: the model handed over: its values trained again on training and
            validation data together when the search refit (`refitted`), else the trial's
            model at its best epoch.
        refitted: whether `best_model` was trained on the validation data too.
        references: `{label: TrialRecord}` of the labelled trials that completed.
        objective, direction: the objective's name and `"min"` / `"max"`.
        notes: lines the search wants read (inputs that are not images, a budget with no room
            for searched trials).

    `str(result)` and `result.to_markdown()` give the table of the trials, best first.
    """

    def __init__(self, trials, best_trial_id, selection, objective, tuner=None, notes=(),
                 partial=False):
        self.trials = list(trials)
        self.objective = objective.name
        self.direction = objective.direction
        self.selection = selection
        self.tuner = tuner
        self.notes = list(notes)
        self._best_model = None
        self.refitted = False
        self.best_trial = next((t for t in self.trials if t.trial_id == best_trial_id), None)
        if self.best_trial is None and not partial:  # partial: a distributed worker's trials
            failed = [t for t in self.trials if t.message]
            first = (f" First failure (trial {failed[0].number}): {failed[0].message}"
                     if failed else "")
            raise SearchError(f"No trial completed ({len(self.trials)} trial(s) ran, none "
                              f"finished with a finite {self.objective}).{first}")

    @property
    def best_regularization(self):
        return self.best_trial.regularization

    @property
    def best_hyperparameters(self):
        return self.tuner.oracle.get_trial(self.best_trial.trial_id).hyperparameters

    @property
    def best_model(self):
        if self._best_model is None:
            self._best_model = self.tuner.load_model(
                self.tuner.oracle.get_trial(self.best_trial.trial_id))
        return self._best_model

    @property
    def completed(self):
        return [t for t in self.trials if t.objective is not None
                and math.isfinite(t.objective) and t.status == "COMPLETED"]

    @property
    def searched(self):
        """The completed trials that were not labelled starting points."""
        return [t for t in self.completed if t.label is None]

    @property
    def references(self):
        return {t.label: t for t in self.completed if t.label is not None}

    def _key(self, record):
        if record.objective is None or not math.isfinite(record.objective):
            return (1, 0.0, record.number)
        sign = 1.0 if self.direction == "min" else -1.0
        return (0, sign * record.objective, record.number)

    def to_markdown(self, limit=None):
        """A markdown table of the trials, best first (failed trials last, with their error)."""
        ordered = sorted(self.trials, key=self._key)[:limit]
        head = ["trial", "label", "values", self.objective, "epochs", "seconds"]
        rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for t in ordered:
            objective = t.status if t.objective is None else f"{t.objective:.4g}"
            if t is self.best_trial:
                objective += " (handed over)"
            rows.append("| " + " | ".join([
                f"{t.number}/{len(self.trials)}", t.label or "", t.describe(), objective,
                str(t.epochs), f"{t.seconds:.0f}"]) + " |")
        failed = [t for t in ordered if t.message]
        rows += [f"\nTrial {t.number} {t.status.lower()}: {t.message}" for t in failed]
        return "\n".join(rows)

    def __str__(self):
        best = self.best_trial
        if best is None:
            return f"Search: {len(self.trials)} trial(s) run here\n\n{self.to_markdown()}"
        notes = "".join(f"\nNote: {line}" for line in self.notes)
        return (f"Search: {len(self.completed)}/{len(self.trials)} trials completed; handed "
                f"over trial {best.number} ({self.objective} = {best.objective:.4g}: "
                f"{best.describe()}){notes}\n\n{self.to_markdown()}")

    def __repr__(self):
        return (f"SearchResult(trials={len(self.trials)}, best_trial={self.best_trial.number}, "
                f"{self.objective}={self.best_trial.objective:.4g})")
