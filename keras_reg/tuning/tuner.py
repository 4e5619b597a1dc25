"""`RegularizationTuner`: the search as a KerasTuner tuner; `search`, the same in one call."""

import contextlib
import copy
import io
import os
import shutil
import time

import keras_tuner
import numpy as np

from keras_reg._compat import best_epoch_weights, kerastuner_tracebacks
from keras_reg._json import read_json, write_json
from keras_reg._validation import check_bool, check_choice, check_instance, check_seed, fail
from keras_reg.data import _datasets
from keras_reg.tuning import _settings
from keras_reg.tuning.hypermodel import RegularizationHyperModel, refit
from keras_reg.tuning.oracle import ORACLES, TRIAL_FILE, TRUST_RADIUS
from keras_reg.tuning.protocol import TrainingProtocol
from keras_reg.tuning.result import SearchResult, TrialRecord
from keras_reg.tuning.selection import check_margin, image_scores
from keras_reg.tuning.space import REFERENCES, RegularizationSpace, initial_points

TUNERS = ("bayesian", "random")
SELECTION_MARGIN = 1.0
_MAXIMIZED = ("acc", "auc", "precision", "recall", "f1", "iou")


def parse_objective(objective):
    """A `keras_tuner.Objective` from `"name"`, `"name:min"`, `"name:max"` or an Objective.

    Without a direction, accuracy-like names (`acc`, `auc`, `precision`, `recall`, `f1`,
    `iou`) are maximized, other metrics minimized. `"val_loss"` is scored as
    `"val_data_loss"`, the validation loss without the weight penalty (which grows with the
    L2 strength searched); `keras_tuner.Objective("val_loss", "min")` keeps Keras's figure.

    Example:

    >>> parse_objective("val_accuracy").direction
    'max'
    >>> parse_objective("val_loss:min").name
    'val_data_loss'
    """
    if isinstance(objective, keras_tuner.Objective):
        return objective
    if not isinstance(objective, str) or not objective.strip():
        fail("objective", "a metric name such as 'val_loss' or 'val_accuracy:max', or a "
             "keras_tuner.Objective", objective, TypeError)
    name, sep, direction = objective.strip().partition(":")
    if not name or (sep and direction not in ("min", "max")):
        fail("objective", "'NAME', 'NAME:min' or 'NAME:max' (a logged metric and its "
             "direction)", objective)
    if name == "val_loss":
        name = "val_data_loss"
    if not sep:
        direction = "max" if any(k in name for k in _MAXIMIZED) else "min"
    return keras_tuner.Objective(name, direction)


def oracle_seed(seed):
    """`seed` shifted into [1, 2**32 - 1]: KerasTuner replaces a false seed by a random one."""
    return None if seed is None else seed % (2**32 - 1) + 1


def distributed_role():
    """`"chief"`, `"worker"` or None, from KerasTuner's chief/worker environment variables."""
    if not (os.environ.get("KERASTUNER_ORACLE_IP") and os.environ.get("KERASTUNER_ORACLE_PORT")):
        return None
    return "chief" if os.environ.get("KERASTUNER_TUNER_ID") == "chief" else "worker"


class RegularizationTuner(keras_tuner.Tuner):
    """A KerasTuner tuner searching how strongly to regularize a Keras classifier.

    Each trial is a fresh model of its `Regularization` trained under one `TrainingProtocol`
    (`RegularizationHyperModel`); image-only dimensions are turned off, with one line saying so,
    when the inputs are not images. The first trials are the references and probes
    (`initial_points`); the trial handed over (first in `get_best_models`) is the best on the
    objective unless it leads the best labelled trial by less than `selection_margin` paired
    standard errors on validation. The same settings in the same directory resume the search;
    other settings raise `SettingsMismatchError` (docs/search.md).

    Args:
        build_model: None (a built-in model sized from the data) or `build_model(reg)`
            returning a Keras model with a softmax output, compiled (its optimizer and loss
            are kept; the loss must take one-hot targets) or not.
        space: a `RegularizationSpace` (default: `RegularizationSpace()`).
        tuner: `"bayesian"` or `"random"`: the KerasTuner oracle.
        objective: as for `parse_objective`. The default, `"val_calibrated_loss"`, is the
            validation cross-entropy after temperature scaling: it does not punish the
            deliberate under-confidence of label smoothing and Mixup.
        max_trials: int >= 1, labelled trials included.
        protocol: None (`TrainingProtocol()`) or a `TrainingProtocol`.
        seed: None or int >= 0: the oracle's, every model's and every pipeline's seed.
        references: labels of the references evaluated first (`()` for none).
        probes: also evaluate the probes.
        selection_margin: float >= 0 (0 hands over the best objective).
        settings: a JSON-able dict of the caller's own settings, recorded and compared on resume.
        progress: None or `progress(record, total)`, called as each trial ends.
        **kwargs: KerasTuner's `Tuner` arguments: `directory` (default `"keras_reg_search"`),
            `project_name` (`"search"`), `overwrite`, `max_retries_per_trial` (0),
            `max_consecutive_failed_trials` (3), ...

    Attributes:
        starting_points: the labelled starting points as they apply to the inputs,
            `[(label, Regularization)]`.

    Example:

    >>> import tempfile
    >>> import keras
    >>> from keras_reg.data import load
    >>> def build_model(reg):  # reg: the trial's Regularization
    ...     return keras.Sequential([
    ...         keras.Input((8, 8, 1)), keras.layers.Flatten(),
    ...         keras.layers.Dropout(reg.dropout),
    ...         keras.layers.Dense(10, activation="softmax",
    ...                            kernel_regularizer=reg.kernel_regularizer())])
    >>> space = RegularizationSpace.parse("l2=0:1e-3 dropout=0:0.5 drop_path=off "
    ...     "mixup_alpha=off cutmix_alpha=off label_smoothing=off augment=off input_noise=off "
    ...     "norm=off")
    >>> tuner = RegularizationTuner(build_model, space=space, tuner="random", max_trials=2,
    ...                             directory=tempfile.mkdtemp(), seed=0)
    >>> train, val = load("digits", ("train[:64]", "train[80%:]"), batch_size=32)
    >>> tuner.search(train, validation_data=val, epochs=1)
    >>> [(t.number, t.label) for t in tuner.result().trials]
    [(1, 'start'), (2, None)]
    >>> best_model = tuner.get_best_models(1)[0]
    """

    def __init__(self, build_model=None, space=None, tuner="bayesian",
                 objective="val_calibrated_loss", max_trials=10, protocol=None, seed=None, *,
                 references=REFERENCES, probes=True, selection_margin=SELECTION_MARGIN,
                 settings=None, progress=None, **kwargs):
        kind = check_choice("tuner", tuner, TUNERS)
        if isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 1:
            fail("max_trials", "an int >= 1", max_trials)
        seed = check_seed(seed)
        space = check_instance("space", space, RegularizationSpace, RegularizationSpace)
        protocol = check_instance("protocol", protocol, TrainingProtocol, TrainingProtocol)
        if build_model is not None and not callable(build_model):
            fail("build_model", "None or a function build_model(reg)", build_model, TypeError)
        references = (references,) if isinstance(references, str) else tuple(references or ())
        if any(r not in REFERENCES for r in references) or len(set(references)) < len(references):
            fail("references", f"distinct labels among {REFERENCES}, or () for none", references)
        if settings is not None and not isinstance(settings, dict):
            fail("settings", "a dict", settings, TypeError)
        self.objective_ = parse_objective(objective)
        self.space = space
        self.protocol = protocol
        self.seed = seed
        self.references = references
        self.probes = bool(probes)
        self.selection_margin = check_margin(selection_margin)
        self.progress = progress
        self.notes = []  # lines a user should read (inputs that are not images, budgets)
        self._validation = None
        self._runs = {}  # trial id -> this process's epoch logs, times, best predictions
        self._ended = []  # the records of the trials this process ran

        directory = str(kwargs.pop("directory", "keras_reg_search"))
        project_name = kwargs.pop("project_name", "search")
        overwrite = kwargs.pop("overwrite", False)
        project_dir = os.path.join(directory, project_name)
        if overwrite and distributed_role() != "worker":  # the chief owns a shared directory
            shutil.rmtree(project_dir, ignore_errors=True)
        self.settings = _settings.check(project_dir, {
            **(settings or {}), "tuner": kind, "space": space.get_config(),
            "objective": f"{self.objective_.name}:{self.objective_.direction}", "seed": seed,
            "references": list(references), "probes": self.probes, "max_trials": max_trials,
            "protocol": protocol.get_config(),
            "build_model": "built-in" if build_model is None else getattr(
                build_model, "__qualname__", type(build_model).__name__),
        }, free=("max_trials",))

        oracle_args = dict(objective=self.objective_, max_trials=max_trials,
                           seed=oracle_seed(seed),
                           max_retries_per_trial=kwargs.pop("max_retries_per_trial", 0),
                           max_consecutive_failed_trials=kwargs.pop(
                               "max_consecutive_failed_trials", 3))
        if kind == "bayesian":
            # KerasTuner's default (3 random points per dimension) would leave a small budget
            # entirely random: fit the Gaussian process after half of it.
            oracle_args["num_initial_points"] = max(2, min(3 * len(space.searched),
                                                           max_trials // 2))
        # On a distributed worker `self.oracle` becomes KerasTuner's client of the chief's
        # oracle; this process's own copy, configured the same way, knows the starting points.
        oracle = self._own_oracle = ORACLES[kind](**oracle_args)
        self._configure(space, True, project_dir)
        self.hypermodel = RegularizationHyperModel(
            space, build_model, protocol, self.objective_, seed=seed,
            protected=lambda hp: (oracle.label_of(hp.values) is not None
                                  or TRUST_RADIUS in hp.values))
        data = self.settings.get("data_spec")
        if data:  # a search directory reopened: the data it was made with
            self.hypermodel.adapt(**data)
            self._use_inputs(self.hypermodel.image)
        with contextlib.redirect_stdout(io.StringIO()):  # KerasTuner's "Reloading Tuner" line
            super().__init__(oracle=oracle, hypermodel=self.hypermodel, directory=directory,
                             project_name=project_name, overwrite=False, **kwargs)
        self.oracle.max_trials = max_trials  # a resumed search may change its budget
        self.resumed_trials = 0 if self.is_worker else sum(
            t.status in ("COMPLETED", "FAILED") for t in self.oracle.trials.values())

    def _configure(self, space, image, project_dir):
        """Declares `space` in the oracle and gives it the starting points (`starting_points`)."""
        oracle = self._own_oracle
        oracle.hyperparameters = keras_tuner.HyperParameters()
        space.declare(oracle.hyperparameters)
        self.starting_points = initial_points(space, self.references, self.probes, image=image)
        oracle.configure([(label, space.hp_values(reg)) for label, reg in self.starting_points],
                         project_dir, self.selection_margin)

    def _use_inputs(self, image):
        """Turns the image-only dimensions off for inputs that are not images."""
        narrowed = self.space.for_inputs(image)
        if narrowed.get_config() == self.space.get_config():
            return
        self.notes.append("the inputs are not images: augmentation, CutMix and flips are off")
        self.space = self.hypermodel.space = narrowed
        self._configure(narrowed, False, self._own_oracle.project_dir)

    @property
    def is_worker(self):
        """True in a worker process of KerasTuner's chief/worker mode."""
        return distributed_role() == "worker"

    def search(self, train, validation_data=None, epochs=30, callbacks=None, verbose=0):
        """Runs the trials (on a distributed chief: serves the oracle until they are done).

        Args:
            train, validation_data: as `train` and `validation` for `search`.
            epochs: int >= 1, epochs per trial.
            callbacks: more deep-copyable Keras callbacks for every trial (a `TensorBoard`
                among them logs each trial with its hyperparameters, as KerasTuner does).
            verbose: `fit` verbosity; 0 also silences KerasTuner's printout and tracebacks.
        """
        if train is None:
            fail("train", "training data", train)
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            fail("epochs", "an int >= 1", epochs)
        callbacks = list(callbacks or [])
        try:
            copy.deepcopy(callbacks)
        except Exception as e:
            raise TypeError("Invalid value for argument `callbacks`: every callback must be "
                            f"deep-copyable (each trial gets a fresh copy). Received: "
                            f"callbacks={callbacks!r} ({e})") from None
        train, validation_data = _datasets.as_datasets(
            train, validation_data, self.protocol.batch_size, self.seed, "validation_data")
        data = self.hypermodel.data_of(train, epochs)
        self.settings = _settings.check(self.project_dir, {"data_spec": data},
                                       free=("max_trials",))
        self.hypermodel.adapt(**data)
        self._use_inputs(self.hypermodel.image)
        points, n = len(self._own_oracle.points), self.oracle.max_trials
        if n <= points:
            self.notes.append(f"{n} trial{'s' * (n != 1)}: references and probes only — raise "
                              f"max_trials above {points} to search")
        for line in self.notes:
            print(f"keras_reg: {line}")
        if validation_data is not None:
            self._validation = _datasets.read_arrays(_datasets.one_hot_batches(
                validation_data, self.hypermodel.num_classes))
        with kerastuner_tracebacks(verbose > 0):
            try:
                super().search(train, validation_data=validation_data, epochs=epochs,
                               callbacks=callbacks, verbose=verbose)
            except RuntimeError as e:  # KerasTuner: too many consecutive failures
                if "consecutive failures" not in str(e):
                    raise

    def on_search_begin(self):
        super().on_search_begin()
        self.save()  # a search killed in its first trial resumes instead of restarting

    def _trial_file(self, trial_id):
        return os.path.join(self.get_trial_dir(trial_id), TRIAL_FILE)

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        self._runs[trial.trial_id] = {"start": time.perf_counter(), "history": {},
                                      "fit_seconds": 0.0, "model": None}

    def on_epoch_begin(self, trial, model, epoch, logs=None):
        self._runs[trial.trial_id]["epoch_start"] = time.perf_counter()

    def on_epoch_end(self, trial, model, epoch, logs=None):
        run = self._runs[trial.trial_id]
        run["fit_seconds"] += time.perf_counter() - run.pop("epoch_start", time.perf_counter())
        for key, value in (logs or {}).items():
            run["history"].setdefault(key, []).append(float(value))
        run["model"] = model

    def _best_epoch_scores(self, trial_id, model):
        """Per validation image, the objective's score of the trial's best epoch, or None."""
        path = best_epoch_weights(self, trial_id)
        if self._validation is None or model is None or not os.path.exists(path):
            return None
        model.load_weights(path)
        probabilities = model.predict(self._validation[0], batch_size=256, verbose=0)
        scores = image_scores(probabilities, self._validation[1], self.oracle.objective.name)
        return None if scores is None or not np.all(np.isfinite(scores)) else scores

    def on_trial_end(self, trial):
        run = self._runs.pop(trial.trial_id, None)
        if run is not None:
            scores = self._best_epoch_scores(trial.trial_id, run.get("model"))
            write_json(self._trial_file(trial.trial_id), {
                "history": run["history"], "fit_seconds": run["fit_seconds"],
                "seconds": time.perf_counter() - run["start"],
                "scores": None if scores is None else [float(v) for v in scores]})
        super().on_trial_end(trial)
        record = self.record(self.oracle.get_trial(trial.trial_id))
        self._ended.append(record)
        if self.progress is not None:
            self.progress(record, self.oracle.max_trials)

    def record(self, trial):
        """The `TrialRecord` of a KerasTuner `Trial`."""
        own = read_json(self._trial_file(trial.trial_id), {})
        history = own.get("history", {})
        return TrialRecord(
            trial.trial_id, trial.hyperparameters.values,
            objective=trial.score if trial.status == "COMPLETED" else None,
            epochs=len(history.get("loss", [])), status=trial.status,
            seconds=own.get("seconds", 0.0), fit_seconds=own.get("fit_seconds", 0.0),
            message=trial.message, label=self._own_oracle.label_of(trial.hyperparameters.values),
            history=history,
            best_epoch=trial.best_step + 1 if trial.status == "COMPLETED" else None)

    def refit(self, train, validation_data, trial=None):
        """`keras_reg.tuning.refit` of the trial handed over (or of `trial`, a `TrialRecord`):
        `(model, history)`."""
        record = self.result().best_trial if trial is None else trial
        if record.best_epoch is None:
            fail("trial", "a completed trial", record)
        return refit(record.regularization, train, validation_data,
                     epochs=self.hypermodel.epochs, best_epoch=record.best_epoch,
                     protocol=self.protocol, build_model=self.hypermodel.build_model,
                     seed=self.seed, num_classes=self.hypermodel.num_classes)

    def results_summary(self, num_trials=10):
        """Prints the table of the `num_trials` best trials (numbered 1..N, labels shown)."""
        result = self.result()
        print(f"Results in {self.project_dir}\nObjective: {self.oracle.objective.name} "
              f"({self.oracle.objective.direction})\n\n{result.to_markdown(limit=num_trials)}")

    def result(self):
        """The `SearchResult` of the trials so far (`SearchError` when none completed)."""
        if self.is_worker:  # the trials this worker ran; the chief hands over
            return SearchResult(sorted(self._ended, key=lambda r: r.number), None, None,
                                self.oracle.objective, tuner=self, notes=self.notes, partial=True)
        trials = sorted(self.oracle.trials.values(), key=lambda t: int(t.trial_id))
        chosen, how = self.oracle.hand_over()
        return SearchResult([self.record(t) for t in trials],
                            None if chosen is None else chosen.trial_id, how,
                            self.oracle.objective, tuner=self, notes=self.notes)


def search(build_model=None, train=None, validation=None, space=None, tuner="bayesian",
           objective="val_calibrated_loss", max_trials=10, epochs=30, seed=None, protocol=None,
           refit=True, **kwargs):
    """Searches how strongly to regularize a Keras classifier; returns a `SearchResult`.

    `RegularizationTuner(build_model, ...)`, `tuner.search(train, validation, epochs)` and
    `tuner.result()`, with the command line's defaults. With `refit`, the values handed over
    are then trained again on `train` and `validation` together (`RegularizationTuner.refit`):
    that model is `result.best_model`.

    Args:
        build_model, space, tuner, objective, max_trials, seed, protocol: as for
            `RegularizationTuner`.
        train: a `tf.data.Dataset` of `(inputs, labels)` batches, or a pair `(x, y)`:
            feature vectors, sequences or images.
        validation: the same, held out from `train`: the objective's data.
        epochs: int >= 1, epochs per trial.
        refit: train the values handed over again on every labelled example (the default),
            or hand over the trial's own model (trained on `train` only).
        **kwargs: `callbacks` and `verbose` as for `RegularizationTuner.search`, the rest as
            for `RegularizationTuner` (`directory`, `overwrite`, `selection_margin`, ...).

    Returns:
        A `SearchResult` (`.best_regularization`, `.best_model`, `.trials`, a table when
        printed).

    Raises:
        SearchError: no trial completed (the first failure's message is included).
        SettingsMismatchError: the directory holds a search made with other settings.

    Example:

    >>> import tempfile
    >>> import keras
    >>> from keras_reg.data import load
    >>> from keras_reg.tuning import RegularizationSpace
    >>> def build_model(reg):
    ...     return keras.Sequential([
    ...         keras.Input((8, 8, 1)), keras.layers.Flatten(),
    ...         keras.layers.Dense(10, activation="softmax",
    ...                            kernel_regularizer=reg.kernel_regularizer())])
    >>> train, val = load("digits", ("train[:64]", "train[80%:]"), batch_size=32)
    >>> result = search(build_model, train, val, tuner="random", max_trials=2, epochs=1,
    ...                 space=RegularizationSpace.parse("l2=0:1e-3 norm=off"),
    ...                 directory=tempfile.mkdtemp(), seed=0)
    >>> len(result.trials), result.trials[0].status, result.trials[0].label
    (2, 'COMPLETED', 'start')
    """
    if train is None:
        fail("train", "training data", train)
    check_bool("refit", refit)
    fit_args = {k: kwargs.pop(k) for k in ("callbacks", "verbose") if k in kwargs}
    kt = RegularizationTuner(build_model, space=space, tuner=tuner, objective=objective,
                             max_trials=max_trials, protocol=protocol, seed=seed, **kwargs)
    if refit and validation is None:
        fail("validation", "the validation data, which `refit=True` trains on too (or "
             "refit=False)", validation)
    kt.search(train, validation_data=validation, epochs=epochs, **fit_args)
    result = kt.result()
    if refit and not kt.is_worker:
        result._best_model, _ = kt.refit(train, validation)
        result.refitted = True
    return result
