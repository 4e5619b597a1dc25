"""`search`: a KerasTuner search of the regularization strength, resumable and distributable."""

import contextlib
import copy
import io
import json
import os
import shutil
import time

import keras
import keras_tuner
from keras_tuner.src import config as kt_config
from keras_tuner.src import errors as kt_errors

from keras_reg._validation import check_choice, check_int, check_seed
from keras_reg.tuning.hypermodel import RegularizationHyperModel, _as_dataset, data_spec
from keras_reg.tuning.result import SearchError, SearchResult, TrialRecord, _last_line, read_record
from keras_reg.tuning.space import RegularizationSpace

TUNERS = ("hyperband", "bayesian", "random")
RECORD = "keras_reg_trial.json"
ATTEMPTS = "keras_reg_attempts.json"


def oracle_seed(seed):
    """The seed handed to KerasTuner's oracle for a `search` seed (None stays None).

    KerasTuner replaces a false seed by a random one (`seed or random.randint(1, 10000)`), so
    seed 0 would not fix the trials. Seeds are shifted by one into [1, 2**32 - 1] (the range
    scikit-learn's Gaussian process accepts for the Bayesian tuner), one to one below 2**32 - 1.
    """
    if seed is None:
        return None
    return seed % (2**32 - 1) + 1


class _TimedBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that writes at the end of an epoch only every `interval` seconds.

    Short trials (seconds) would spend a noticeable share of their time writing checkpoints
    every epoch; long ones (a GPU trial of minutes) still lose at most `interval` seconds.
    """

    def __init__(self, backup_dir, interval=20.0):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=True)
        self.interval = interval
        self._last_save = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._last_save = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        if time.monotonic() - self._last_save >= self.interval:
            self._save_model()
            self._last_save = time.monotonic()


class _TrialHooks:
    """Mixed into a KerasTuner tuner: resume, bounded retries, records and progress lines.

    - The tuner state is saved when the search starts, so a search killed during its very
      first trial resumes instead of starting over.
    - Each trial gets a `keras.callbacks.BackupAndRestore` keyed by its trial id (written at
      most every `backup_interval` seconds): an interrupted trial resumes from its last backup.
    - A trial that has been started `max_attempts` times without ending (the process died each
      time) is marked FAILED instead of being retried forever.
    - When a trial ends, its record (status, objective, epochs, seconds) is written beside it
      and `progress(record, n, total)` is called.
    """

    def _kr_setup(self, progress, max_attempts, total, backup_interval):
        self._kr_backup_interval = backup_interval
        self._kr_progress = progress
        self._kr_max_attempts = max_attempts
        self._kr_total = total
        self._kr_start = {}
        self._kr_done = []

    def _populate_initial_space(self):
        # The space has no conditional parameters: declaring it is enough. KerasTuner would
        # also build a model here, outside any trial, where a failing builder is not caught.
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def _try_build(self, hp):
        if not self.hypermodel.reuse_models:
            return super()._try_build(hp)  # clears the session and builds a new model
        return self._build_hypermodel(hp)

    def on_search_begin(self):
        super().on_search_begin()
        self.save()

    def _attempts_file(self, trial_id):
        return os.path.join(self.get_trial_dir(trial_id), ATTEMPTS)

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        self._kr_start[trial.trial_id] = time.perf_counter()
        path = self._attempts_file(trial.trial_id)
        counts = _read_json(path, {"attempts": 0, "ended": 0})
        counts["attempts"] += 1
        _write_json(path, counts)

    def run_trial(self, trial, *args, **kwargs):
        trial_id = trial.trial_id
        counts = _read_json(self._attempts_file(trial_id), {"attempts": 1, "ended": 0})
        died = counts["attempts"] - 1 - counts.get("ended", 0)  # starts that never ended
        if died >= self._kr_max_attempts:
            raise kt_errors.FailedTrialError(
                f"trial {trial_id} was started {died} times and never ended (the process "
                "died each time); giving it up"
            )
        self.hypermodel.trial_id = trial_id
        if self.hypermodel.seed is not None:
            keras.utils.set_random_seed(self.hypermodel.seed)
        backup = _TimedBackup(os.path.join(self.get_trial_dir(trial_id), "backup"),
                              self._kr_backup_interval)
        kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + [backup]
        return super().run_trial(trial, *args, **kwargs)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        trial_id = trial.trial_id
        path = self._attempts_file(trial_id)
        counts = _read_json(path, {"attempts": 1, "ended": 0})
        counts["ended"] = counts.get("ended", 0) + 1
        _write_json(path, counts)
        seconds = time.perf_counter() - self._kr_start.pop(trial_id, time.perf_counter())
        ended = self.oracle.get_trial(trial_id)
        hm = self.hypermodel
        record = TrialRecord(
            trial_id=trial_id,
            values={k: v for k, v in ended.hyperparameters.values.items()},
            objective=ended.score,
            epochs=hm.epochs_run.get(trial_id, 0),
            status=ended.status,
            seconds=seconds,
            fit_seconds=hm.fit_seconds.get(trial_id, 0.0),
            tuner_id=self.tuner_id,
            message=_last_line(ended.message),
        )
        _write_json(os.path.join(self.get_trial_dir(trial_id), RECORD), record.to_dict())
        self._kr_done.append(record)
        if self._kr_progress is not None:
            self._kr_progress(record, int(trial_id) + 1, self._kr_total)


_CLASSES = {
    "hyperband": keras_tuner.Hyperband,
    "bayesian": keras_tuner.BayesianOptimization,
    "random": keras_tuner.RandomSearch,
}
_TUNER_CLASSES = {
    name: type(f"_{cls.__name__}", (_TrialHooks, cls), {}) for name, cls in _CLASSES.items()
}


def _read_json(path, default):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def _write_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=1)
    os.replace(tmp, path)


def _start_from(oracle, space):
    """Makes the oracle's first trial the space's starting point (`space.start()`)."""
    populate = oracle.populate_space

    def populate_space(trial_id):
        if not oracle.trials:
            return {"status": "RUNNING", "values": space.hp_values(space.start())}
        return populate(trial_id)

    oracle.populate_space = populate_space


DATA_LOSS = "val_data_loss"


def _objective(objective):
    """`keras_tuner.Objective` from a metric name (direction from the name) or an Objective.

    `"val_loss"` is scored as `"val_data_loss"` (the validation loss without the weight penalty,
    see `hypermodel.ValidationDataLoss`); a `keras_tuner.Objective("val_loss", "min")` keeps
    Keras's penalized `val_loss`.
    """
    if isinstance(objective, keras_tuner.Objective):
        return objective
    if not isinstance(objective, str) or not objective:
        raise TypeError(
            "Invalid value for argument `objective`: expected a metric name such as 'val_loss' "
            f"or a keras_tuner.Objective. Received: objective={objective!r}"
        )
    name = DATA_LOSS if objective == "val_loss" else objective
    maximize = any(k in name for k in ("acc", "auc", "precision", "recall", "f1"))
    return keras_tuner.Objective(name, "max" if maximize else "min")


def search(build_model=None, train=None, validation=None, space=None, tuner="hyperband",
           objective="val_loss", max_trials=20, epochs=30, directory="keras_reg_search",
           project_name="search", overwrite=False, seed=None, callbacks=None, verbose=0,
           batch_size=32, num_classes=None, patience="auto", learning_rate=2e-3,
           steps_per_execution=8, max_retries_per_trial=1, max_consecutive_failed_trials=3,
           max_attempts=3, progress=None, hyperband_factor=3, backup_interval=20.0):
    """Searches the regularization strength of a model with KerasTuner.

    Every trial rebuilds the model with `build_model(reg)` (`reg` is the trial's
    `Regularization`) and the training pipeline (`reg.transform(num_classes)`: MixupCutMix with
    the trial's alphas and label smoothing ε) and trains with early stopping on `objective`.
    Targets are one-hot (soft after Mixup/CutMix) on both splits: a model compiled by
    `build_model` needs a categorical loss; an uncompiled one gets Adam and categorical
    cross-entropy.

    With `overwrite=False` and the same `directory`/`project_name`, a search resumes: finished
    trials are kept (never re-run), an interrupted trial continues from its last finished epoch
    (per-trial `BackupAndRestore`), and a trial whose process died `max_attempts` times is given
    up. A random or Bayesian search evaluates `space.start()` first (with the default space: batch
    norm, next to no L2, everything else off). With the `KERASTUNER_TUNER_ID` / `KERASTUNER_ORACLE_IP` / `KERASTUNER_ORACLE_PORT`
    environment of KerasTuner's chief/worker mode, the chief serves the oracle and each worker
    runs trials. Nothing is pinned to a device: on a GPU machine trials use the GPU.

    Args:
        build_model: None (a small residual CNN sized from the data) or `build_model(reg)`
            returning a Keras model, compiled or not.
        train: a `tf.data.Dataset` of `(images, labels)` batches, or a pair `(x, y)`.
        validation: the same, held out from `train`; the objective is measured on it.
        space: a `RegularizationSpace` (defaults: `RegularizationSpace()`).
        tuner: `"hyperband"`, `"bayesian"` or `"random"` (KerasTuner's own tuners).
        objective: a logged metric name (`"val_loss"`, `"val_accuracy"`, ...) or a
            `keras_tuner.Objective`. `"val_loss"` is scored without the weight penalty, as
            `"val_data_loss"` (`val_loss − λ·Σw²`): Keras's `val_loss` includes the penalty,
            which grows with the L2 strength being searched and would favour no L2 at all;
            pass `keras_tuner.Objective("val_loss", "min")` for Keras's own figure.
        max_trials: the most trials (Hyperband also stops after its brackets).
        epochs: epochs per trial (Hyperband's `max_epochs`).
        directory, project_name: where the tuner keeps its state.
        overwrite: start over instead of resuming.
        seed: None or int >= 0: the oracle's seed (via `oracle_seed`: 0 fixes the trials too)
            and every model's and transform's seed.
        callbacks: extra deep-copyable Keras callbacks for every trial.
        verbose: `fit` verbosity inside trials; 0 (the default) also silences KerasTuner's
            own per-trial printout and tracebacks (use `progress`, and the records).
        batch_size: batch size when `train`/`validation` are arrays.
        num_classes: None to read it from the labels.
        patience: early-stopping patience in epochs; "auto" is `max(5, epochs // 4)`, None
            disables early stopping.
        learning_rate, steps_per_execution: compile settings for uncompiled models.
        max_retries_per_trial, max_consecutive_failed_trials: KerasTuner's retry limits for
            trials that raise.
        max_attempts: times a trial may be started without ending (process killed) before it
            is marked failed.
        progress: None or `progress(record, n, total)`, called when each trial ends.
        hyperband_factor: Hyperband's reduction factor.
        backup_interval: seconds between the per-trial backups an interrupted trial resumes
            from (written at epoch ends; 0 writes every epoch).

    Returns:
        A `SearchResult` (`.best_hyperparameters`, `.best_regularization`, `.best_model`,
        `.trials`, and a table when printed).

    Raises:
        SearchError: no trial completed (the first failure's message is included).

    Example:

    >>> import tempfile
    >>> from keras_reg.data import load
    >>> from keras_reg.tuning import RegularizationSpace, search
    >>> train, val = load("digits", ("train[:64]", "train[80%:]"), batch_size=32)
    >>> result = search(train=train, validation=val, tuner="random", max_trials=1, epochs=1,
    ...                 space=RegularizationSpace(norm=None), directory=tempfile.mkdtemp(),
    ...                 seed=0)
    >>> len(result.trials), result.trials[0].status
    (1, 'COMPLETED')
    """
    if train is None:
        raise ValueError("Invalid value for argument `train`: expected training data. "
                         "Received: train=None")
    tuner = check_choice("tuner", tuner, TUNERS)
    max_trials = check_int("max_trials", max_trials, low=1)
    epochs = check_int("epochs", epochs, low=1)
    seed = check_seed(seed)
    batch_size = check_int("batch_size", batch_size, low=1)
    max_attempts = check_int("max_attempts", max_attempts, low=1)
    if space is None:
        space = RegularizationSpace()
    if not isinstance(space, RegularizationSpace):
        raise TypeError("Invalid value for argument `space`: expected a RegularizationSpace. "
                        f"Received: space={space!r}")
    if patience == "auto":
        patience = max(5, epochs // 4)
    elif patience is not None:
        patience = check_int("patience", patience, low=0)
    callbacks = list(callbacks or [])
    try:
        copy.deepcopy(callbacks)
    except Exception as e:
        raise TypeError(
            "Invalid value for argument `callbacks`: every callback must be deep-copyable (each "
            f"trial gets a fresh copy). Received: callbacks={callbacks!r} ({e})"
        ) from None
    obj = _objective(objective)
    train = _as_dataset(train, batch_size, True, seed, "train")
    if validation is not None:
        validation = _as_dataset(validation, batch_size, False, seed, "validation")
    input_shape, num_classes = data_spec(train, num_classes)
    hypermodel = RegularizationHyperModel(
        space, build_model, input_shape, num_classes, objective=obj.name,
        direction=obj.direction, patience=patience, learning_rate=learning_rate,
        steps_per_execution=steps_per_execution, seed=seed,
    )
    common = dict(
        hypermodel=hypermodel, objective=obj, seed=oracle_seed(seed), directory=str(directory),
        project_name=project_name, overwrite=overwrite,
        max_retries_per_trial=max_retries_per_trial,
        max_consecutive_failed_trials=max_consecutive_failed_trials,
    )
    if tuner == "hyperband":
        common.update(max_epochs=epochs, factor=hyperband_factor)
    else:
        common.update(max_trials=max_trials)
    if tuner == "bayesian":  # KerasTuner's default (3 random points per dimension) would
        # leave a small budget entirely random: fit the Gaussian process after half of it.
        common.update(num_initial_points=max(2, min(3 * len(space.searched), max_trials // 2)))
    if overwrite:
        shutil.rmtree(os.path.join(str(directory), project_name), ignore_errors=True)
    with contextlib.redirect_stdout(io.StringIO()):  # KerasTuner's "Reloading Tuner" line
        kt = _TUNER_CLASSES[tuner](**common)
    if tuner == "hyperband":
        kt.oracle.max_trials = max_trials  # Hyperband has no cap of its own
    kt._kr_setup(progress, max_attempts, max_trials, backup_interval)
    if tuner != "hyperband" and not kt._is_worker():  # the chief's (or local) oracle
        _start_from(kt.oracle, space)
    debug, kt_config.DEBUG = kt_config.DEBUG, verbose > 0  # its traceback per failed trial
    try:
        kt.search(train, validation_data=validation, epochs=epochs, callbacks=callbacks,
                  verbose=verbose)
    except RuntimeError as e:  # KerasTuner: too many consecutive failures
        if "consecutive failures" not in str(e):
            raise
    finally:
        kt_config.DEBUG = debug
    return SearchResult.from_tuner(kt, space, directory=os.path.join(str(directory),
                                                                     project_name))


__all__ = ["search", "SearchError", "TUNERS", "read_record"]
