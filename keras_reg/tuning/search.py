"""`search`: the regularization search in one call, a thin wrapper over `RegularizationTuner`."""

from keras_reg._validation import check_int
from keras_reg.tuning.protocol import MIN_STEPS_PER_EPOCH
from keras_reg.tuning.tuner import (REFERENCES, SELECTION_MARGIN, TUNERS, RegularizationTuner,
                                    check_callbacks)


def search(build_model=None, train=None, validation=None, space=None, tuner="hyperband",
           objective="val_calibrated_loss", max_trials=20, epochs=30, directory="keras_reg_search",
           project_name="search", overwrite=False, seed=None, callbacks=None, verbose=0,
           batch_size=32, num_classes=None, patience="auto", learning_rate=4e-3,
           steps_per_execution=8, max_retries_per_trial=1, max_consecutive_failed_trials=3,
           max_attempts=3, progress=None, hyperband_factor=3, backup_interval=20.0,
           tensorboard_dir=None, references=REFERENCES, probes=True, settings=None,
           on_resume=None, selection_margin=SELECTION_MARGIN, folds=None,
           min_steps_per_epoch=MIN_STEPS_PER_EPOCH):
    """Searches the regularization strength of a model with KerasTuner.

    `RegularizationTuner(...)` followed by `tuner.search(...)` and `tuner.result()`: every
    trial rebuilds the model with `build_model(reg)` (`reg` is the trial's `Regularization`)
    and the training pipeline (`reg.transform(num_classes)`: MixupCutMix with the trial's
    alphas and label smoothing ε) and trains with early stopping on `objective`. Targets are
    one-hot (soft after Mixup/CutMix) on both splits: a model compiled by `build_model` needs a
    categorical loss; an uncompiled one gets Adam and categorical cross-entropy. The first
    trials evaluate the references (`start`, `none`, `recipe`) that lie in the space.

    With `overwrite=False` and the same `directory`/`project_name`, a search with the same
    settings resumes: finished trials are kept (never re-run), an interrupted trial continues
    from its last backup, and a trial whose process died `max_attempts` times is given up;
    other settings raise `SettingsMismatchError`. With KerasTuner's chief/worker environment
    (`KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT`), the chief serves
    the oracle and each worker runs trials. Nothing is pinned to a device: on a GPU machine
    trials use the GPU.

    Args:
        build_model: None (a small CNN sized from the data) or `build_model(reg)` returning a
            Keras model, compiled or not.
        train: a `tf.data.Dataset` of `(images, labels)` batches, or a pair `(x, y)`.
        validation: the same, held out from `train`; the objective is measured on it.
        space: a `RegularizationSpace` (defaults: `RegularizationSpace()`).
        tuner: `"hyperband"`, `"bayesian"` or `"random"` (KerasTuner's oracles).
        objective: `"NAME"`, `"NAME:min"` or `"NAME:max"` of a logged metric, or a
            `keras_tuner.Objective`. The default, `"val_calibrated_loss"`, is the validation
            cross-entropy after temperature scaling (`keras_reg.tuning.calibration.
            calibrated_nll`): it does not punish the deliberate under-confidence of label
            smoothing and Mixup, and is smoother than the accuracy. `"val_loss"` is scored
            without the weight penalty, as `"val_data_loss"`: Keras's `val_loss` includes the
            penalty, which grows with the L2 strength being searched and would favour no L2
            at all; pass `keras_tuner.Objective("val_loss", "min")` for Keras's own figure.
        max_trials: the most trials, references included (Hyperband may stop earlier).
        epochs: epochs per trial (Hyperband's `max_epochs`); an epoch is at least 32 steps
            (`min_steps_per_epoch`: small data is passed over several times).
        directory, project_name: where the tuner keeps its state.
        overwrite: start over instead of resuming.
        seed: None or int >= 0: the oracle's seed (0 fixes the trials too) and every model's
            and transform's seed.
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
        progress: None or `progress(record, n, total)`, called when each trial ends
            (`n == record.number`, 1-based).
        hyperband_factor: Hyperband's reduction factor.
        backup_interval: seconds between the per-trial backups an interrupted trial resumes
            from (written at epoch ends; 0 writes every epoch).
        tensorboard_dir: None or a folder for every trial's TensorBoard logs and
            hyperparameters (`trial_<number>` inside).
        references: labels of the references evaluated first (`()` for none).
        probes: then also try the starting points of `keras_reg.tuning.space.probes` (a
            strong recipe) that lie in the space.
        settings: a JSON-able dict of the caller's settings, recorded and compared on resume.
        on_resume: None or `on_resume(done, total)`, called before the trials when the
            directory already held `done` finished trials.
        selection_margin: paired standard errors (on the validation images) by which a trial
            without a label must lead the best reference or probe to be handed over; 0
            hands over the best objective (see `RegularizationTuner`).
        folds: None, or k >= 2 for k-fold cross-validation of every trial over `train` and
            `validation` pooled (`keras_reg.tuning.folds`): k models per trial, the objective
            their mean, the choice made on every labelled image; the trial's model is fold
            0's; k times the trial cost. Measured on 200 digits (BENCHMARKS.md, session 19),
            it chose no better than one validation split.
        min_steps_per_epoch: int >= 1, the fewest optimizer steps of an epoch (see
            `TrainingProtocol`); 1 makes an epoch one pass over `train`.

    Returns:
        A `SearchResult` (`.best_hyperparameters`, `.best_regularization`, `.best_model`,
        `.trials`, `.references`, and a table when printed).

    Raises:
        SearchError: no trial completed (the first failure's message is included).
        SettingsMismatchError: the directory holds a search with other settings.

    Example:

    >>> import tempfile
    >>> import keras
    >>> from keras_reg.data import load
    >>> from keras_reg.tuning import RegularizationSpace, search
    >>> def build_model(reg):  # None would use the built-in CNN
    ...     return keras.Sequential([
    ...         keras.Input((8, 8, 1)), keras.layers.Flatten(),
    ...         keras.layers.Dense(10, activation="softmax",
    ...                            kernel_regularizer=reg.kernel_regularizer())])
    >>> train, val = load("digits", ("train[:64]", "train[80%:]"), batch_size=32)
    >>> result = search(build_model, train, val, tuner="random", max_trials=1, epochs=1,
    ...                 space=RegularizationSpace.parse(["l2=0:1e-3", "norm=off"]),
    ...                 directory=tempfile.mkdtemp(), seed=0)
    >>> len(result.trials), result.trials[0].status, result.trials[0].label
    (1, 'COMPLETED', 'start')
    """
    if train is None:
        raise ValueError("Invalid value for argument `train`: expected training data. "
                         "Received: train=None")
    epochs = check_int("epochs", epochs, low=1)
    check_callbacks(callbacks)  # before the tuner writes anything
    kt = RegularizationTuner(
        build_model, space=space, tuner=tuner, objective=objective, max_trials=max_trials,
        directory=directory, project_name=project_name, overwrite=overwrite, seed=seed,
        references=references, probes=probes, settings=settings, tensorboard_dir=tensorboard_dir,
        max_epochs=epochs if tuner == "hyperband" else None, hyperband_factor=hyperband_factor,
        batch_size=batch_size, num_classes=num_classes, patience=patience,
        learning_rate=learning_rate, steps_per_execution=steps_per_execution,
        max_retries_per_trial=max_retries_per_trial,
        max_consecutive_failed_trials=max_consecutive_failed_trials, max_attempts=max_attempts,
        backup_interval=backup_interval, progress=progress, selection_margin=selection_margin,
        folds=folds, min_steps_per_epoch=min_steps_per_epoch,
    )
    if kt.resumed_trials and on_resume is not None:
        on_resume(kt.resumed_trials, kt.max_trials)
    kt.search(train, validation_data=validation, epochs=epochs, callbacks=callbacks,
              verbose=verbose)
    return kt.result()


__all__ = ["search", "TUNERS"]
