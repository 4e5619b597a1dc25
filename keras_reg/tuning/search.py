"""`search`: the regularization search in one call, a thin wrapper over `RegularizationTuner`."""

from keras_reg.tuning.tuner import RegularizationTuner


def search(build_model=None, train=None, validation=None, space=None, tuner="bayesian",
           objective="val_calibrated_loss", max_trials=10, epochs=30, seed=None, protocol=None,
           callbacks=None, verbose=0, **kwargs):
    """Searches how strongly to regularize a Keras classifier; returns a `SearchResult`.

    `RegularizationTuner(build_model, ...)`, then `tuner.search(train, validation, epochs)`
    and `tuner.result()`, with the same defaults as the command line: Bayesian optimization
    over 10 trials of 30 epochs, the first ones the references and probes.

    Args:
        build_model: None (a built-in model sized from the data) or `build_model(reg)`
            returning a Keras classifier with a softmax output, compiled or not.
        train: a `tf.data.Dataset` of `(inputs, labels)` batches, or a pair `(x, y)`:
            feature vectors, sequences or images.
        validation: the same, held out from `train`: the objective's data.
        space: a `RegularizationSpace` (default: `RegularizationSpace()`).
        tuner: `"bayesian"` or `"random"`.
        objective: see `RegularizationTuner`.
        max_trials: int >= 1, labelled trials included.
        epochs: int >= 1, epochs per trial.
        seed: None or int >= 0.
        protocol: None or a `TrainingProtocol`.
        callbacks: more deep-copyable Keras callbacks for every trial.
        verbose: `fit` verbosity (0 also silences KerasTuner's printout).
        **kwargs: `RegularizationTuner`'s and KerasTuner's (`directory`, `project_name`,
            `overwrite`, `references`, `probes`, `selection_margin`, `progress`, ...).

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
        raise ValueError("Invalid value for argument `train`: expected training data. "
                         "Received: train=None")
    kt = RegularizationTuner(build_model, space=space, tuner=tuner, objective=objective,
                             max_trials=max_trials, protocol=protocol, seed=seed, **kwargs)
    kt.search(train, validation_data=validation, epochs=epochs, callbacks=callbacks,
              verbose=verbose)
    return kt.result()
