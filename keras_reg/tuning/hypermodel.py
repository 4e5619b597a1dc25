"""`RegularizationHyperModel`: KerasTuner's `build` / `fit` of one trial, and `train`."""

import inspect
import os

import keras
import keras_tuner

from keras_reg import models
from keras_reg._compat import epoch_backup, trial_folder
from keras_reg._validation import check_instance, check_int, check_seed, fail
from keras_reg.data import _datasets
from keras_reg.tuning.protocol import TrainingProtocol
from keras_reg.tuning.regularization import Regularization
from keras_reg.tuning.space import RegularizationSpace

# Epochs between two backups of a trial (a kill loses at most BACKUP_EVERY - 1 epochs).
BACKUP_EVERY = 5


def call_builder(build_model, reg, input_shape, num_classes):
    """`build_model(reg)`, given `input_shape` / `num_classes` too when it declares them."""
    try:
        parameters = inspect.signature(build_model).parameters
    except (TypeError, ValueError):  # builtins and some callables have no signature
        parameters = {}
    given = {"input_shape": tuple(input_shape), "num_classes": int(num_classes)}
    model = build_model(reg, **{k: v for k, v in given.items() if k in parameters})
    if not isinstance(model, keras.Model):
        raise TypeError("Invalid value for argument `build_model`: expected a function "
                        "returning a keras.Model. Received a return value of type "
                        f"{type(model).__name__}")
    return model


class RegularizationHyperModel(keras_tuner.HyperModel):
    """One trial of a regularization search, on KerasTuner's extension points.

    `build(hp)` declares the `RegularizationSpace` in `hp` and builds the model of the trial's
    `Regularization` (`reg`), compiled under the `TrainingProtocol`; `fit(hp, model, ...)`
    trains it under the protocol with the trial's pipeline (augmentation, Mixup/CutMix, one-hot
    targets). Until `adapt` gives it the data, `build` only declares the space.

    Args:
        space: a `RegularizationSpace`.
        build_model: None (a built-in model sized from the data) or `build_model(reg)` (given
            the data's `input_shape` / `num_classes` too when it declares parameters so named).
        protocol: a `TrainingProtocol`.
        objective: the `keras_tuner.Objective` early stopping and the median rule watch.
        seed: None or int >= 0, the seed of every model and pipeline.
        protected: None or `protected(hp)`: whether a trial runs in full (never stopped by
            the median rule): the labelled trials and those drawn in the trust region.

    Example:

    >>> import keras_tuner
    >>> hm = RegularizationHyperModel(RegularizationSpace(), None, TrainingProtocol(),
    ...                               keras_tuner.Objective("val_calibrated_loss", "min"))
    >>> hm.adapt(input_shape=[8, 8, 1], num_classes=10, steps_per_epoch=32, epochs=2)
    >>> hm.build(keras_tuner.HyperParameters()).name
    'keras_reg_cnn'
    """

    def __init__(self, space, build_model, protocol, objective, seed=None, protected=None):
        super().__init__(name="keras_reg")
        self.space = space
        self.build_model = build_model
        self.protocol = protocol
        self.objective = objective
        self.seed = check_seed(seed)
        self.protected = protected
        self.input_shape = self.num_classes = self.steps_per_epoch = self.epochs = None
        self.num_examples = None
        self.curves = []  # the objective curves of this process's runs: the median rule's data

    def data_of(self, train, epochs, num_classes=None):
        """What `adapt` takes, read from the batched dataset `train` (JSON-able)."""
        input_shape, num_classes = _datasets.data_spec(train, num_classes)
        return {"input_shape": list(input_shape), "num_classes": num_classes,
                "steps_per_epoch": self.protocol.steps_per_epoch(train), "epochs": epochs,
                "num_examples": _datasets.count_examples(train)}

    def adapt(self, input_shape, num_classes, steps_per_epoch, epochs, num_examples=None):
        """Gives the hypermodel its data: example shape, classes, epoch length, epochs."""
        self.input_shape = tuple(int(d) for d in input_shape)
        self.num_classes = check_int("num_classes", num_classes, low=2)
        self.steps_per_epoch = check_int("steps_per_epoch", steps_per_epoch, low=1)
        self.epochs = check_int("epochs", epochs, low=1)
        self.num_examples = num_examples

    @property
    def image(self):
        """Whether the inputs are images (`(height, width, channels)`)."""
        return _datasets.input_kind(self.input_shape) == "images"

    def regularization(self, hp):
        """The trial's `Regularization` (declaring the space in `hp`)."""
        return self.space.declare(hp)

    def make_model(self, reg):
        """The compiled model of `reg`, fresh."""
        if self.seed is not None:
            keras.utils.set_random_seed(self.seed)
        if self.build_model is None:
            model = models.build_default(reg, self.input_shape, self.num_classes,
                                         num_examples=self.num_examples)
        else:
            model = call_builder(self.build_model, reg, self.input_shape, self.num_classes)
        return self.protocol.compile(model, self.steps_per_epoch, self.epochs)

    def build(self, hp):
        reg = self.regularization(hp)
        if self.input_shape is None:  # not adapted yet: the space is declared in `hp`
            return None
        return self.make_model(reg.for_inputs(self.image))

    def fit(self, hp, model, train, validation_data=None, epochs=None, callbacks=None,
            verbose=0, **kwargs):
        """Trains `model` with the trial's regularization, backed up every `BACKUP_EVERY`
        epochs in the trial's folder (`BackupAndRestore`: an interrupted trial resumes from its
        last backup); returns the `History`."""
        reg = self.regularization(hp)
        callbacks = list(callbacks or [])
        folder = trial_folder(callbacks)
        if folder is not None:
            callbacks.append(epoch_backup(os.path.join(folder, "backup"), BACKUP_EVERY))
        protected = self.protected is not None and self.protected(hp)
        return self.protocol.fit(
            model, reg, train, validation_data, num_classes=self.num_classes,
            epochs=epochs or self.epochs, objective=self.objective, callbacks=callbacks,
            curves=self.curves, protected=protected, seed=self.seed, verbose=verbose,
            **kwargs)


def train(reg, train, validation, *, protocol=None, build_model=None, epochs=30,
          objective="val_calibrated_loss", seed=None, callbacks=None, num_classes=None,
          verbose=0):
    """Trains one model with `reg` the way a search trains its trials; `(model, history)`.

    The same path as a trial (`RegularizationHyperModel`, the `TrainingProtocol`), so
    references and searched values are compared on equal terms; only the median rule, which
    needs other trials, is left out.

    Args:
        reg: a `Regularization`.
        train, validation: batched `(inputs, labels)` datasets, or `(x, y)` arrays.
        protocol, build_model, objective, seed: as for `RegularizationTuner`.
        epochs: int >= 1.
        callbacks: more Keras callbacks.
        num_classes: None to read it from the labels.
        verbose: `fit` verbosity.

    Returns:
        `(model, history)`.
    """
    return _run(reg, train, validation, protocol, build_model, epochs, epochs, objective, seed,
                callbacks, num_classes, verbose)


def refit(reg, train, validation, *, epochs, best_epoch, protocol=None, build_model=None,
          seed=None, callbacks=None, num_classes=None, verbose=0):
    """Trains `reg` again on every labelled example: `train` and `validation` together.

    As scikit-learn's `GridSearchCV(refit=True)`. With no held-out data left, nothing stops
    the run early: it lasts the `best_epoch` epochs the trial chose, on the learning-rate
    schedule of a run of `epochs` epochs (the trial's).

    Args:
        reg: a `Regularization`.
        train, validation: batched `(inputs, labels)` datasets, or `(x, y)` arrays.
        epochs: int >= 1, the epochs the trial's schedule was planned for.
        best_epoch: int in [1, epochs], the epochs to train (the trial's best epoch).
        protocol, build_model, seed, callbacks, num_classes, verbose: as for `train`.

    Returns:
        `(model, history)`.

    Example:

    >>> from keras_reg.data import load
    >>> from keras_reg.tuning import Regularization
    >>> train_ds, val_ds = load("digits", ("train[:64]", "train[80%:]"), batch_size=32)
    >>> model, history = refit(Regularization(l2=1e-4), train_ds, val_ds, epochs=4,
    ...                        best_epoch=2, seed=0)
    >>> len(history.epoch), "val_loss" in history.history
    (2, False)
    """
    epochs = check_int("epochs", epochs, low=1)
    best_epoch = check_int("best_epoch", best_epoch, low=1, high=epochs)
    if validation is None:
        fail("validation", "the validation data to train on with `train`", validation)
    return _run(reg, train, validation, protocol, build_model, epochs, best_epoch,
                "val_calibrated_loss", seed, callbacks, num_classes, verbose, combine=True)


def _run(reg, train, validation, protocol, build_model, epochs, run_epochs, objective, seed,
         callbacks, num_classes, verbose, combine=False):
    """A fresh model of `reg` compiled for `epochs` epochs and trained for `run_epochs`."""
    from keras_reg.tuning.tuner import parse_objective

    check_instance("reg", reg, Regularization)
    protocol = check_instance("protocol", protocol, TrainingProtocol, TrainingProtocol)
    seed = check_seed(seed)
    train, validation = _datasets.as_datasets(train, validation, protocol.batch_size, seed)
    if combine:
        train = _datasets.combined(train, validation, protocol.batch_size, seed, num_classes)
        validation = None
    hm = RegularizationHyperModel(RegularizationSpace(), build_model, protocol,
                                  parse_objective(objective), seed=seed)
    hm.adapt(**hm.data_of(train, epochs, num_classes))
    keras.backend.clear_session(free_memory=False)
    reg = reg.for_inputs(hm.image)
    model = hm.make_model(reg)
    history = protocol.fit(model, reg, train, validation, num_classes=hm.num_classes,
                           epochs=run_epochs, objective=hm.objective, callbacks=callbacks,
                           seed=seed, verbose=verbose)
    return model, history
