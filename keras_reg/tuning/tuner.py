"""`RegularizationTuner`: the regularization search shaped as a KerasTuner tuner."""

import contextlib
import copy
import io
import json
import os
import shutil
import time

import keras
import keras_tuner
import numpy as np

from keras_reg._compat import kerastuner_tracebacks
from keras_reg._validation import check_choice, check_float, check_int, check_seed
from keras_reg.tuning import _settings, space as space_module
from keras_reg.tuning._checkpoint import BestEpochWeights, TimedBackup
from keras_reg.tuning._oracle import ORACLES
from keras_reg.tuning.hypermodel import (RegularizationHyperModel, as_dataset,
                                         count_examples, data_spec)
from keras_reg.tuning.calibration import read_batches
from keras_reg.tuning.folds import Folds, check_folds
from keras_reg.tuning.protocol import MIN_STEPS_PER_EPOCH
from keras_reg.tuning.result import (RECORD, SearchError, SearchResult, TrialRecord,
                                     last_line, read_record)
from keras_reg.tuning.selection import SCORES, check_margin, image_scores
from keras_reg.tuning.space import Regularization, RegularizationSpace

TUNERS = ("hyperband", "bayesian", "random")
REFERENCES = ("start", "none", "recipe")
DATA_LOSS = "val_data_loss"
ATTEMPTS = "keras_reg_attempts.json"
WEIGHTS = "checkpoint.weights.h5"
CURVES = "curves.json"
_MAXIMIZED = ("acc", "auc", "precision", "recall", "f1", "iou")
_ENDED = ("COMPLETED", "FAILED", "INVALID")
SELECTION_MARGIN = 1.0


def oracle_seed(seed):
    """The seed handed to KerasTuner's oracle for a search seed (None stays None).

    KerasTuner replaces a false seed by a random one (`seed or random.randint(1, 10000)`), so
    seed 0 would not fix the trials. Seeds are shifted by one into [1, 2**32 - 1] (the range
    scikit-learn's Gaussian process accepts for the Bayesian tuner), one to one below 2**32 - 1.
    """
    if seed is None:
        return None
    return seed % (2**32 - 1) + 1


def parse_objective(objective):
    """A `keras_tuner.Objective` from `"name"`, `"name:min"`, `"name:max"` or an Objective.

    Without a direction, names of accuracy-like metrics (`acc`, `auc`, `precision`,
    `recall`, `f1`, `iou`) are maximized and every other metric minimized. `"val_loss"` is
    scored as `"val_data_loss"`, the validation loss without the weight penalty (see
    `keras_reg.tuning.hypermodel.ValidationDataLoss`); a `keras_tuner.Objective("val_loss",
    "min")` keeps Keras's penalized figure.

    Example:

    >>> parse_objective("val_accuracy").direction
    'max'
    >>> parse_objective("val_loss:min").name
    'val_data_loss'
    """
    if isinstance(objective, keras_tuner.Objective):
        return objective
    if not isinstance(objective, str) or not objective.strip():
        raise TypeError(
            "Invalid value for argument `objective`: expected a metric name such as "
            "'val_loss' or 'val_accuracy:max', or a keras_tuner.Objective. "
            f"Received: objective={objective!r}"
        )
    name, sep, direction = objective.strip().partition(":")
    if not name or (sep and direction not in ("min", "max")):
        raise ValueError(
            "Invalid value for argument `objective`: expected 'NAME', 'NAME:min' or "
            f"'NAME:max' (a logged metric and its direction). Received: objective={objective!r}"
        )
    if name == "val_loss":
        name = DATA_LOSS
    if not sep:
        direction = "max" if any(k in name for k in _MAXIMIZED) else "min"
    return keras_tuner.Objective(name, direction)


def _reference_regularizations(space):
    """`{label: Regularization}` of the references a search evaluates first."""
    provide = getattr(space_module, "references", None)
    if provide is not None:
        return dict(provide(space))
    out = {"start": space.start(), "none": Regularization.none()}
    if hasattr(Regularization, "recipe"):
        out["recipe"] = Regularization.recipe()
    return out


def check_callbacks(callbacks):
    """`callbacks` as a list; a TypeError naming `callbacks` when one cannot be deep-copied."""
    callbacks = list(callbacks or [])
    try:
        copy.deepcopy(callbacks)
    except Exception as e:
        raise TypeError(
            "Invalid value for argument `callbacks`: every callback must be deep-copyable "
            f"(each trial gets a fresh copy). Received: callbacks={callbacks!r} ({e})"
        ) from None
    return callbacks


def _read_json(path, default):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def _write_json(path, value):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=1)
    os.replace(tmp, path)


def _load_weights(model, path):
    """`model.load_weights(path)`, the optimizer built first so its saved state loads too."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)
    model.load_weights(path)


def _best_epoch_metrics(history, objective):
    """The logs of `history`'s best epoch on `objective` (a KerasTuner objective), as
    KerasTuner reads a returned `History` (JSON-able: a fold's record keeps them)."""
    epochs = [{k: float(v[epoch]) for k, v in history.history.items() if epoch < len(v)}
              for epoch in range(len(history.epoch))]
    best = None
    for logs in epochs:
        value = logs.get(objective.name)
        if value is None or not np.isfinite(value):
            continue
        if best is None or objective.better_than(value, best[objective.name]):
            best = logs
    if best is None:  # no finite value: the first epoch, as KerasTuner would read it
        return epochs[0] if epochs else {}
    return best


def _distributed_role():
    """`"chief"`, `"worker"` or None, from KerasTuner's documented chief/worker environment."""
    if not (os.environ.get("KERASTUNER_ORACLE_IP") and os.environ.get("KERASTUNER_ORACLE_PORT")):
        return None
    return "chief" if os.environ.get("KERASTUNER_TUNER_ID") == "chief" else "worker"


class RegularizationTuner(keras_tuner.Tuner):
    """A KerasTuner tuner searching how strongly to regularize a model.

    Each trial builds the model from the trial's `Regularization` (`build_model(reg)`, or a
    small CNN sized from the data) and its training pipeline (Mixup/CutMix with the trial's
    alphas and ε), then trains it with early stopping on `objective`. The first trials
    evaluate the references (`"start"`: `space.start()`, normalized and unregularized;
    `"none"`: no normalization, no regularization; `"recipe"`: a fixed hand recipe), so the
    search never ends worse on validation than what a user already has; a reference the
    space cannot express is skipped and listed in `result().skipped_references`. Hyperband
    evaluates them among its first bracket's first-round candidates.

    The tuner directory records the search's settings; building a tuner there again with the
    same settings resumes it (finished trials kept; an interrupted trial continues from its
    last backup, written every `backup_interval` seconds; a trial whose process died
    `max_attempts` times is given up), with other settings raises `SettingsMismatchError`
    naming them. With KerasTuner's chief/worker environment (`KERASTUNER_TUNER_ID`,
    `KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT`), the chief serves the oracle and each
    worker runs trials.

    Args:
        build_model: None (a small CNN sized from the data) or `build_model(reg)` returning a
            Keras model, compiled or not (uncompiled: Adam and categorical cross-entropy).
        space: a `RegularizationSpace` (defaults: `RegularizationSpace()`).
        tuner: `"bayesian"`, `"random"` or `"hyperband"`: the KerasTuner oracle.
        objective: `"NAME"`, `"NAME:min"`, `"NAME:max"` of a logged metric, or a
            `keras_tuner.Objective` (see `parse_objective`). The default,
            `"val_calibrated_loss"`, is the validation cross-entropy after temperature
            scaling (it does not punish the deliberate under-confidence of label smoothing
            and Mixup); `"val_loss"` is scored without the weight penalty, as
            `"val_data_loss"`.
        max_trials: the most trials, references included (Hyperband may stop earlier).
        directory, project_name: the search lives in `directory/project_name`.
        overwrite: start over instead of resuming (in chief/worker mode only the chief
            deletes the shared directory).
        seed: None or int >= 0: the oracle's seed and every model's and transform's seed
            (seed 0 fixes the trials too).
        references: labels of the references evaluated first (`()` for none).
        probes: after the references, also try the starting points of
            `keras_reg.tuning.space.probes` that lie in the space (recipes around the
            reference one), labelled in the trial table; they are not references of the
            report. References and probes are never stopped as hopeless.
        settings: a JSON-able dict of the caller's own settings (data, model...), recorded
            and compared on resume together with the tuner's (space, tuner, objective,
            seed, training settings). `max_trials` is recorded but may change on resume.
        tensorboard_dir: None or a folder: each trial logs its curves there
            (`keras.callbacks.TensorBoard`, folder `trial_<number>`) with its hyperparameters
            (TensorBoard's HParams view).
        max_epochs: Hyperband's epoch budget per trial (required for `"hyperband"`).
        hyperband_factor: Hyperband's reduction factor.
        batch_size: batch size when the data are arrays.
        num_classes: None to read it from the labels.
        patience: early-stopping patience in epochs; "auto" is `max(5, epochs // 4)`, None
            disables early stopping.
        learning_rate, steps_per_execution: compile settings for uncompiled models.
        max_retries_per_trial, max_consecutive_failed_trials: KerasTuner's retry limits for
            trials that raise.
        max_attempts: times a trial may be started without ending (process killed) before it
            is marked failed.
        backup_interval: seconds between the per-trial backups (0: every epoch).
        progress: None or `progress(record, n, total)`, called when each trial ends
            (`n == record.number`, 1-based).
        selection_margin: float >= 0. Each trial's best epoch is scored image by image on
            validation (`keras_reg.tuning.selection.image_scores`); a trial without a label
            is handed over (`result().best_trial`, first in `get_best_models`) only when it
            leads the best labelled trial (reference or probe) by at least this many paired
            standard errors, else that labelled trial is. 0 hands over the best objective,
            as KerasTuner does. The choice is made when the result is read: it is not a
            setting of the search, and may differ between reads of the same directory.
        folds: None, or k >= 2: k-fold cross-validation of every trial over the training and
            validation data pooled (`keras_reg.tuning.folds.Folds`, stratified, in memory).
            Each trial trains k models, model j on every fold but j and validated on fold
            j; its objective is their mean (KerasTuner's average over executions) and its
            per-image scores cover every labelled image once. The trial's model (weights,
            curves, `get_best_models`) is fold 0's: trained on (k - 1) / k of the images,
            validated on the rest (`fold_data(0)`). A trial stopped by the median rule skips
            its remaining folds. k times the trial cost; measured on 200 digits
            (BENCHMARKS.md, session 19), it chose no better than one validation split.
        min_steps_per_epoch: int >= 1, the fewest optimizer steps of a trial's epoch
            (`TrainingProtocol`: smaller data is passed over several times per epoch); 1
            makes an epoch one pass.

    Example:

    >>> import tempfile
    >>> import keras
    >>> from keras_reg.data import load
    >>> from keras_reg.tuning import RegularizationSpace, RegularizationTuner
    >>> def build_model(reg):  # reg: the trial's Regularization
    ...     return keras.Sequential([
    ...         keras.Input((8, 8, 1)), keras.layers.Flatten(),
    ...         keras.layers.Dropout(reg.dropout),
    ...         keras.layers.Dense(10, activation="softmax",
    ...                            kernel_regularizer=reg.kernel_regularizer())])
    >>> space = RegularizationSpace(l2=(0.0, 1e-3), dropout=(0.0, 0.5), drop_path="off",
    ...                             mixup_alpha="off", cutmix_alpha="off",
    ...                             label_smoothing="off", augment="off", input_noise="off",
    ...                             norm="off")
    >>> tuner = RegularizationTuner(build_model, space=space, tuner="random", max_trials=2,
    ...                             directory=tempfile.mkdtemp(), seed=0)
    >>> train, val = load("digits", ("train[:64]", "train[80%:]"), batch_size=32)
    >>> tuner.search(train, validation_data=val, epochs=1)
    >>> [(t.number, t.label) for t in tuner.result().trials]
    [(1, 'start'), (2, None)]
    >>> best_model = tuner.get_best_models(1)[0]
    """

    def __init__(self, build_model=None, space=None, tuner="bayesian",
                 objective="val_calibrated_loss",
                 max_trials=10, directory="keras_reg_search", project_name="search",
                 overwrite=False, seed=None, *, references=REFERENCES, probes=True, settings=None,
                 tensorboard_dir=None, max_epochs=None, hyperband_factor=3, batch_size=32,
                 num_classes=None, patience="auto", learning_rate=4e-3, steps_per_execution=8,
                 max_retries_per_trial=1, max_consecutive_failed_trials=3, max_attempts=3,
                 backup_interval=20.0, progress=None, selection_margin=SELECTION_MARGIN,
                 folds=None, min_steps_per_epoch=MIN_STEPS_PER_EPOCH):
        kind = check_choice("tuner", tuner, TUNERS)
        self.min_steps_per_epoch = check_int("min_steps_per_epoch", min_steps_per_epoch, low=1)
        self.folds = check_folds(folds)
        self._folds = None
        max_trials = check_int("max_trials", max_trials, low=1)
        seed = check_seed(seed)
        if space is None:
            space = RegularizationSpace()
        if not isinstance(space, RegularizationSpace):
            raise TypeError("Invalid value for argument `space`: expected a RegularizationSpace. "
                            f"Received: space={space!r}")
        if build_model is not None and not callable(build_model):
            raise TypeError("Invalid value for argument `build_model`: expected None or a "
                            f"function build_model(reg). Received: build_model={build_model!r}")
        labels = self._check_references(references)
        if settings is not None and not isinstance(settings, dict):
            raise TypeError("Invalid value for argument `settings`: expected a dict. "
                            f"Received: settings={settings!r}")
        if kind == "hyperband":
            if max_epochs is None:
                raise ValueError("Invalid value for argument `max_epochs`: tuner='hyperband' "
                                 "needs an epoch budget per trial. Received: max_epochs=None")
            max_epochs = check_int("max_epochs", max_epochs, low=1)
            hyperband_factor = check_int("hyperband_factor", hyperband_factor, low=2)
        if patience != "auto" and patience is not None:
            patience = check_int("patience", patience, low=0)
        self.batch_size = check_int("batch_size", batch_size, low=1)
        self.max_attempts = check_int("max_attempts", max_attempts, low=1)
        self.backup_interval = check_float("backup_interval", backup_interval, low=0.0)
        self.num_classes = None if num_classes is None else check_int(
            "num_classes", num_classes, low=2)
        self.objective = parse_objective(objective)
        self.space = space
        self.build_model = build_model
        self.kind = kind
        self.seed = seed
        self.max_trials = max_trials
        self.patience = patience
        self.learning_rate = learning_rate
        self.steps_per_execution = steps_per_execution
        self.tensorboard_dir = None if tensorboard_dir is None else str(tensorboard_dir)
        self.progress = progress
        self.selection_margin = check_margin(selection_margin)
        self._validation_arrays = None
        self.records = []  # the trials ended in this process
        self._started = {}

        issued = []
        self.skipped_references = {}
        self.reference_values = {}
        available = _reference_regularizations(space)
        for label in labels:
            reg = available.get(label)
            if reg is None:
                self.skipped_references[label] = "no such reference in this version"
                continue
            if not space.contains(reg):
                self.skipped_references[label] = (
                    f"its values ({reg.describe()}) are outside the searched space")
                continue
            values = space.hp_values(reg)
            same = [other for other, v in self.reference_values.items() if v == values]
            if same:
                self.skipped_references[label] = f"same values as `{same[0]}`"
                continue
            self.reference_values[label] = values
            issued.append((label, values))
        # Then the starting points (`space_module.probes`) the space holds: where the
        # references are the weak end of the space, a strong recipe spans it for the tuner.
        for label, reg in (space_module.probes(space).items() if probes else ()):
            values = space.hp_values(reg) if space.contains(reg) else None
            if values is None or values in self.reference_values.values():
                continue
            self.reference_values[label] = values
            issued.append((label, values))

        project_dir = os.path.join(str(directory), project_name)
        if overwrite and _distributed_role() != "worker":  # the chief owns a shared directory
            shutil.rmtree(project_dir, ignore_errors=True)
        own = {
            "tuner": kind, "space": space.get_config(),
            "objective": f"{self.objective.name}:{self.objective.direction}", "seed": seed,
            "references": list(labels), "probes": bool(probes), "max_trials": max_trials,
            "patience": patience,
            "learning_rate": learning_rate, "steps_per_execution": steps_per_execution,
            "min_steps_per_epoch": self.min_steps_per_epoch, "folds": self.folds,
            "build_model": "built-in CNN" if build_model is None else getattr(
                build_model, "__qualname__", type(build_model).__name__),
        }
        if kind == "hyperband":
            own.update(max_epochs=max_epochs, hyperband_factor=hyperband_factor)
        self.settings = _settings.check(project_dir, {**(settings or {}), **own},
                                        free=("max_trials",))

        hp = keras_tuner.HyperParameters()
        space.declare(hp)
        oracle_args = dict(objective=self.objective, seed=oracle_seed(seed), hyperparameters=hp,
                           max_retries_per_trial=max_retries_per_trial,
                           max_consecutive_failed_trials=max_consecutive_failed_trials)
        if kind == "hyperband":
            oracle = ORACLES[kind](max_epochs=max_epochs, factor=hyperband_factor, **oracle_args)
            oracle.max_trials = max_trials  # Hyperband has no cap of its own
        elif kind == "bayesian":
            # KerasTuner's default (3 random points per dimension) would leave a small budget
            # entirely random: fit the Gaussian process after half of it.
            oracle = ORACLES[kind](max_trials=max_trials, num_initial_points=max(
                2, min(3 * len(space.searched), max_trials // 2)), **oracle_args)
        else:
            oracle = ORACLES[kind](max_trials=max_trials, **oracle_args)
        oracle.set_references(issued)
        # hypermodel=None: the space is declared on the oracle above, so KerasTuner need not
        # build a model outside any trial; the hypermodel is made from the data in `search`.
        with contextlib.redirect_stdout(io.StringIO()):  # KerasTuner's "Reloading Tuner" line
            super().__init__(oracle=oracle, hypermodel=None, directory=str(directory),
                             project_name=project_name, overwrite=False)
        if oracle.max_trials != max_trials:  # a resumed search with another budget
            oracle.max_trials = max_trials
        self.hypermodel = None
        if "input_shape" in self.settings and "num_classes" in self.settings:
            self._make_hypermodel(tuple(self.settings["input_shape"]),
                                  self.settings["num_classes"], self.settings.get("epochs"),
                                  self.settings.get("num_examples"))
        self.resumed_trials = 0
        if _distributed_role() != "worker":
            self.resumed_trials = sum(t.status in _ENDED for t in self.oracle.trials.values())

    @staticmethod
    def _check_references(references):
        if references is None or references is False:
            return ()
        if isinstance(references, str):
            references = (references,)
        labels = tuple(references)
        unknown = [label for label in labels if label not in REFERENCES]
        if unknown or len(set(labels)) != len(labels):
            raise ValueError(
                f"Invalid value for argument `references`: expected distinct labels among "
                f"{REFERENCES}, or () for none. Received: references={references!r}"
            )
        return labels

    def fold_data(self, fold=0):
        """`(train, validation)` of a cross-validated search's split `fold` (the trial
        models' data for fold 0), or None without `folds` or before `search`."""
        return None if self._folds is None else self._folds.split(fold)

    @property
    def resume_message(self):
        """`"resuming: K of N trials done"` when the directory held finished trials, else None."""
        if not self.resumed_trials:
            return None
        return f"resuming: {self.resumed_trials} of {self.max_trials} trials done"

    @property
    def is_worker(self):
        """True in a worker process of KerasTuner's chief/worker mode."""
        return _distributed_role() == "worker"

    def _make_hypermodel(self, input_shape, num_classes, epochs, num_examples):
        patience = self.patience
        if patience == "auto":
            patience = max(5, (epochs or 20) // 4)
        self.hypermodel = RegularizationHyperModel(
            self.space, self.build_model, input_shape, num_classes,
            objective=self.objective.name, direction=self.objective.direction,
            patience=patience, learning_rate=self.learning_rate,
            steps_per_execution=self.steps_per_execution, seed=self.seed,
            num_examples=num_examples, min_steps_per_epoch=self.min_steps_per_epoch,
        )

    def search(self, train, validation_data=None, epochs=30, callbacks=None, verbose=0):
        """Runs the trials (or, on a distributed chief, serves the oracle until they are done).

        Args:
            train: a `tf.data.Dataset` of `(images, labels)` batches, or a pair `(x, y)`.
            validation_data: the same, held out from `train`; the objective is measured on it.
            epochs: epochs per trial (not used by Hyperband, whose brackets set them).
            callbacks: extra deep-copyable Keras callbacks for every trial (a
                `keras.callbacks.TensorBoard` among them logs to `log_dir/trial_<number>`).
            verbose: `fit` verbosity inside trials; 0 also silences KerasTuner's own per-trial
                printout and tracebacks (the records keep the error).
        """
        if train is None:
            raise ValueError("Invalid value for argument `train`: expected training data. "
                             "Received: train=None")
        epochs = check_int("epochs", epochs, low=1)
        callbacks = check_callbacks(callbacks)
        train = as_dataset(train, self.batch_size, True, self.seed, "train")
        if validation_data is not None:
            validation_data = as_dataset(validation_data, self.batch_size, False, self.seed,
                                          "validation_data")
        if self.folds is not None:
            self._folds = Folds(train, validation_data, self.folds, seed=self.seed)
            train, validation_data = self._folds.split(0)
        input_shape, num_classes = data_spec(train, self.num_classes)
        data = {"input_shape": list(input_shape), "num_classes": num_classes,
                "num_examples": count_examples(train)}
        if self.kind != "hyperband":
            data["epochs"] = epochs
        self.settings = _settings.check(self.project_dir, data, free=("max_trials",))
        self._make_hypermodel(input_shape, num_classes, epochs, data["num_examples"])
        with kerastuner_tracebacks(verbose > 0):
            try:
                super().search(train, validation_data=validation_data, epochs=epochs,
                               callbacks=callbacks, verbose=verbose)
            except RuntimeError as e:  # KerasTuner: too many consecutive failures
                if "consecutive failures" not in str(e):
                    raise

    def on_search_begin(self):
        super().on_search_begin()
        self.save()  # a search killed in its very first trial resumes instead of restarting

    def _attempts_file(self, trial_id):
        return os.path.join(self.get_trial_dir(trial_id), ATTEMPTS)

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        self._started[trial.trial_id] = time.perf_counter()
        path = self._attempts_file(trial.trial_id)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        counts = _read_json(path, {"attempts": 0, "ended": 0})
        counts["attempts"] += 1
        _write_json(path, counts)

    def run_trial(self, trial, train, validation_data=None, epochs=1, callbacks=None,
                  verbose=0, **fit_kwargs):
        """Builds the trial's model and pipeline and trains it; returns the `History`.

        With `folds`, trains one model per fold (model `j` on every fold but `j`) and returns
        each one's best-epoch logs, which KerasTuner averages: the objective is the mean over
        the folds. The trial's model is fold 0's; the per-image scores of the choice pool every
        fold's held-out images. Each fold that ends is recorded (`fold<j>.json`), so a trial
        whose process died continues with the folds it had not finished.
        """
        trial_id = trial.trial_id
        counts = _read_json(self._attempts_file(trial_id), {"attempts": 1, "ended": 0})
        died = counts["attempts"] - 1 - counts.get("ended", 0)  # starts that never ended
        if died >= self.max_attempts:
            raise keras_tuner.errors.FailedTrialError(
                f"trial {int(trial_id) + 1} was started {died} times and never ended (the "
                "process died each time); giving it up"
            )
        hm = self.hypermodel
        hm.trial_id = trial_id
        hp = trial.hyperparameters
        # The labelled trials run in full: the median rule would stop a strongly regularized
        # probe that starts slowly, and they are the anchors of the choice (`selection`).
        hm.protected = self.label_of(hp.values) is not None
        initial_epoch = 0
        if "tuner/epochs" in hp.values:  # Hyperband's bracket sets the epochs
            epochs = hp.values["tuner/epochs"]
            initial_epoch = hp.values["tuner/initial_epoch"]
        run = dict(epochs=epochs, initial_epoch=initial_epoch, callbacks=callbacks,
                   verbose=verbose, **fit_kwargs)
        if self._folds is None:
            history, model = self._run_fold(trial, 0, train, validation_data, **run)
            scores = self._scores(model, self._weights_path(trial_id), validation_data)
            self._save_scores(trial_id, scores)
            return history
        pooled = np.full(len(self._folds), np.nan)
        results, seconds, first = [], 0.0, None
        for j in range(self.folds):
            # A fold that ended in an earlier attempt of this trial (the process died in a
            # later one) is read back, not trained again.
            done = _read_json(self._fold_record(trial_id, j), None)
            if done is None:
                fold_train, fold_validation = self._folds.split(j)
                history, model = self._run_fold(trial, j, fold_train, fold_validation, **run)
                scores = self._scores(model, self._weights_path(trial_id, j), fold_validation)
                done = {"metrics": _best_epoch_metrics(history, self.oracle.objective),
                        "scores": None if scores is None else [float(v) for v in scores],
                        "seconds": hm.fit_seconds.get(trial_id, 0.0),
                        "epochs": hm.epochs_run.get(trial_id, 0),
                        "history": hm.histories.get(trial_id, {}),
                        "hopeless": hm.stopped_as_hopeless()}
                _write_json(self._fold_record(trial_id, j), done)
            results.append(done["metrics"])
            seconds += done["seconds"]
            if j == 0:  # the trial's model: its curves and epochs are the trial's
                first = (done["epochs"], done["history"])
            if done["scores"] is not None:
                pooled[self._folds.held_out(j)] = done["scores"]
            if done["hopeless"]:  # stopped by the median rule: the other folds would not
                break             # save it
        hm.fit_seconds[trial_id] = seconds
        hm.epochs_run[trial_id], hm.histories[trial_id] = first
        self._save_scores(trial_id, pooled)
        return results

    def _fold_record(self, trial_id, fold):
        return os.path.join(self.get_trial_dir(trial_id), f"fold{fold}.json")

    def _run_fold(self, trial, fold, train, validation_data, *, epochs, initial_epoch,
                  callbacks, verbose, **fit_kwargs):
        """Trains the model of `trial` on one split; returns `(history, model)`."""
        trial_id = trial.trial_id
        hm = self.hypermodel
        hp = trial.hyperparameters
        if self.seed is not None:
            keras.utils.set_random_seed(self.seed)
        if not getattr(hm, "reuse_models", False):
            # Keras's global state (layer names) starts afresh; the garbage collection that
            # `free_memory=True` adds costs about a second per trial and Python runs it anyway.
            keras.backend.clear_session(free_memory=False)
        model = hm.build(hp)
        if "tuner/trial_id" in hp.values:  # a Hyperband promotion continues its past trial
            _load_weights(model, self._weights_path(hp.values["tuner/trial_id"], fold))
        backup = TimedBackup(os.path.join(self.get_trial_dir(trial_id),
                                          "backup" if fold == 0 else f"backup_fold{fold}"),
                             self.backup_interval)
        resumed = backup.restore(model)
        if resumed:
            initial_epoch = min(max(initial_epoch, resumed), epochs - 1)
        trial_callbacks = copy.deepcopy(list(callbacks or []))
        if self.tensorboard_dir is not None:
            trial_callbacks.append(keras.callbacks.TensorBoard(self.tensorboard_dir))
        trial_callbacks += self._hparams_callbacks(trial_callbacks, trial, fold)
        trial_callbacks += [BestEpochWeights(self.objective, self._weights_path(trial_id, fold)),
                            backup]
        history = hm.fit(hp, model, train, validation_data=validation_data, epochs=epochs,
                         initial_epoch=initial_epoch, callbacks=trial_callbacks,
                         verbose=verbose, **fit_kwargs)
        return history, model

    def _scores(self, model, path, validation_data):
        """The per-image validation scores (`selection.image_scores`) of the weights at `path`
        (a trial's best epoch), or None."""
        if validation_data is None or not os.path.exists(path):
            return None
        if self._validation_arrays is None or self._validation_arrays[0] is not validation_data:
            self._validation_arrays = (validation_data, *read_batches(validation_data))
        _, images, targets = self._validation_arrays
        _load_weights(model, path)
        probabilities = model.predict(images, batch_size=256, verbose=0)
        return image_scores(probabilities, targets, self.objective.name)

    def _save_scores(self, trial_id, scores):
        """Writes a trial's per-image scores, from which the search's choice is made (none
        when an image lacks its score)."""
        if scores is not None and np.all(np.isfinite(scores)):
            np.save(os.path.join(self.get_trial_dir(trial_id), SCORES),
                    scores.astype(np.float32))

    @staticmethod
    def _hparams_callbacks(callbacks, trial, fold=0):
        """Points every TensorBoard callback at `log_dir/trial_<n>` (`trial_<n>_fold<j>` for
        the other folds of a cross-validated trial); adds the HParams record."""
        boards = [c for c in callbacks if isinstance(c, keras.callbacks.TensorBoard)]
        if not boards:
            return []
        from tensorboard.plugins.hparams import api as hparams_api

        name = f"trial_{int(trial.trial_id) + 1}" + (f"_fold{fold}" if fold else "")
        hparams = {k: v for k, v in trial.hyperparameters.values.items()
                   if isinstance(v, (bool, int, float, str))}
        out = []
        for board in boards:
            board.log_dir = os.path.join(str(board.log_dir), name)
            out.append(hparams_api.KerasCallback(board.log_dir, hparams, trial_id=name))
        return out

    def _weights_path(self, trial_id, fold=0):
        name = WEIGHTS if fold == 0 else WEIGHTS.replace(".weights", f".fold{fold}.weights")
        return os.path.join(self.get_trial_dir(trial_id), name)

    def load_model(self, trial):
        """The model of `trial` (a KerasTuner `Trial`) with the weights of its best epoch."""
        if self.hypermodel is None:
            raise ValueError("The tuner has not seen the data yet: call `search` first.")
        if not getattr(self.hypermodel, "reuse_models", False):
            keras.backend.clear_session(free_memory=False)
        self.hypermodel.trial_id = None  # outside a trial: a model of its own, not the cached one
        model = self.hypermodel.build(trial.hyperparameters)
        _load_weights(model, self._weights_path(trial.trial_id))
        return model

    def trial_curves(self, trial_id):
        """`{metric: [value per epoch]}` the trial logged (its `History.history`), or `{}`.

        KerasTuner keeps only the best epoch's metrics; the tuner writes each trial's whole
        curves next to its checkpoint. A trial resumed from a backup has the epochs of its
        last attempt.
        """
        return _read_json(os.path.join(self.get_trial_dir(trial_id), CURVES), {})

    def label_of(self, values):
        """The reference label (`"start"`, ...) whose values `values` holds, or None."""
        values = {k: v for k, v in dict(values).items() if not k.startswith("tuner/")}
        for label, ref in self.reference_values.items():
            if values == ref:
                return label
        return None

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        trial_id = trial.trial_id
        path = self._attempts_file(trial_id)
        counts = _read_json(path, {"attempts": 1, "ended": 0})
        counts["ended"] = counts.get("ended", 0) + 1
        _write_json(path, counts)
        seconds = time.perf_counter() - self._started.pop(trial_id, time.perf_counter())
        ended = self.oracle.get_trial(trial_id)
        hm = self.hypermodel
        record = TrialRecord(
            trial_id=trial_id, values=ended.hyperparameters.values,
            objective=ended.score if ended.status == "COMPLETED" else None,
            epochs=hm.epochs_run.get(trial_id, 0), status=ended.status, seconds=seconds,
            fit_seconds=hm.fit_seconds.get(trial_id, 0.0), tuner_id=self.tuner_id,
            message=last_line(ended.message), label=self.label_of(ended.hyperparameters.values),
        )
        _write_json(os.path.join(self.get_trial_dir(trial_id), RECORD), record.to_dict())
        if trial_id in hm.histories:
            _write_json(os.path.join(self.get_trial_dir(trial_id), CURVES),
                        hm.histories.pop(trial_id))
        self.records.append(record)
        if self.progress is not None:
            self.progress(record, record.number, self.max_trials)

    def _best_trials(self, num):
        """KerasTuner's best trials, the handed-over one (`result().best_trial`) first."""
        trials = self.oracle.get_best_trials(len(self.oracle.trials))
        try:
            chosen = self.result().best_trial
        except SearchError:
            chosen = None
        if chosen is not None:
            trials.sort(key=lambda t: t.trial_id != chosen.trial_id)  # stable: the rest in order
        return trials[:num]

    def get_best_hyperparameters(self, num_trials=1):
        """KerasTuner's `get_best_hyperparameters`, with the handed-over trial first: the best
        objective unless its lead over the best labelled trial is within the validation noise
        (`selection_margin`)."""
        return [t.hyperparameters for t in self._best_trials(num_trials)]

    def get_best_models(self, num_models=1):
        """KerasTuner's `get_best_models` (each at its best epoch), the handed-over trial's
        model first."""
        return [self.load_model(t) for t in self._best_trials(num_models)]

    def results_summary(self, num_trials=10):
        """Prints the `num_trials` best trials: numbered 1..N as everywhere, references labelled."""
        num_trials = check_int("num_trials", num_trials, low=1)
        print(f"Results summary\nResults in {self.project_dir}\nObjective: "
              f"{self.objective.name} ({self.objective.direction})")
        try:
            result = self.result()
        except SearchError as e:
            print(e)
            return
        print(f"Showing {min(num_trials, len(result.trials))} best of {len(result.trials)} "
              f"trials\n\n{result.to_markdown(limit=num_trials)}")

    def result(self):
        """The `SearchResult` of the trials so far (a worker: of its own trials).

        Raises:
            SearchError: no trial completed.
        """
        project_dir = self.project_dir
        if self.is_worker:
            return SearchResult.from_records(
                self.records, self.objective.name, self.objective.direction,
                directory=project_dir, skipped_references=self.skipped_references,
                partial=True)
        records = []
        hyperparameters = {}
        scores = {}
        for trial_id, t in sorted(self.oracle.trials.items()):
            rec = read_record(self.get_trial_dir(trial_id))
            hyperparameters[trial_id] = t.hyperparameters
            path = os.path.join(self.get_trial_dir(trial_id), SCORES)
            if t.status == "COMPLETED" and os.path.exists(path):
                scores[trial_id] = np.load(path).astype(np.float64)
            records.append(TrialRecord(
                trial_id, t.hyperparameters.values,
                objective=t.score if t.status == "COMPLETED" else None,
                epochs=rec.epochs if rec else 0, status=t.status,
                seconds=rec.seconds if rec else 0.0,
                fit_seconds=rec.fit_seconds if rec else 0.0,
                tuner_id=rec.tuner_id if rec else None, message=last_line(t.message),
                label=self.label_of(t.hyperparameters.values),
            ))
        return SearchResult.from_records(
            records, self.objective.name, self.objective.direction,
            hyperparameters=hyperparameters, tuner=self, directory=project_dir,
            skipped_references=self.skipped_references, resumed_trials=self.resumed_trials,
            scores=scores, selection_margin=self.selection_margin)
