"""The KerasTuner `HyperModel`: each trial rebuilds the model and the training pipeline."""

import inspect
import time
import weakref

import keras
import keras_tuner
import numpy as np
import tensorflow as tf

from keras_reg.data import one_hot
from keras_reg.tuning import cnn
from keras_reg.tuning.protocol import (  # noqa: F401 -- ValidationDataLoss re-exported
    MIN_STEPS_PER_EPOCH, HopelessTrialStopping, TrainingProtocol, ValidationDataLoss)
from keras_reg.tuning.space import Regularization, RegularizationSpace


def as_dataset(data, batch_size, shuffle, seed, name):
    """A batched `(images, labels)` dataset from a `tf.data.Dataset` or an `(x, y)` pair."""
    if isinstance(data, tf.data.Dataset):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = np.asarray(data[0]), np.asarray(data[1])
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(
                f"Invalid value for argument `{name}`: expected (x, y) with as many labels as "
                f"images (at least one). Received: {len(x)} images and {len(y)} labels"
            )
        ds = tf.data.Dataset.from_tensor_slices((x, y)).cache()
        if shuffle:
            ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size)
    raise TypeError(
        f"Invalid value for argument `{name}`: expected a tf.data.Dataset of (images, labels) "
        f"batches or a pair (x, y) of arrays. Received: {name}={type(data).__name__}"
    )



def count_examples(dataset):
    """The number of examples of a finite batched `(images, labels)` dataset (one pass)."""
    sizes = dataset.map(lambda *b: tf.shape(b[0], out_type=tf.int64)[0])
    return int(sizes.reduce(tf.constant(0, tf.int64), lambda a, b: a + b))


def data_spec(train, num_classes=None):
    """`(input_shape, num_classes)` of a batched `(images, labels)` dataset."""
    spec = train.element_spec
    if not isinstance(spec, tuple) or len(spec) < 2:
        raise ValueError(
            "Invalid value for argument `train`: expected batches of (images, labels). "
            f"Received element_spec={spec}"
        )
    input_shape = tuple(spec[0].shape[1:])
    if any(d is None for d in input_shape):
        raise ValueError(
            "Invalid value for argument `train`: images need a fixed shape. "
            f"Received image shape {spec[0].shape}"
        )
    label_shape = spec[1].shape
    if num_classes is None:
        if label_shape.rank == 2 and label_shape[-1] not in (None, 1):
            num_classes = int(label_shape[-1])
        else:  # sparse labels: one pass over the labels
            top = train.map(lambda *b: tf.reduce_max(tf.cast(b[1], tf.int64)))
            num_classes = int(top.reduce(tf.constant(0, tf.int64), tf.maximum)) + 1
    return input_shape, max(int(num_classes), 2)


def call_builder(build_model, reg, input_shape, num_classes):
    """`build_model(reg)`, also given the data's `input_shape` / `num_classes` if it takes them.

    The contract is `build_model(reg)`; a builder that declares a parameter named
    `input_shape` or `num_classes` receives the data's values there, so one builder serves
    data sets of any image size and number of classes.
    """
    try:
        parameters = inspect.signature(build_model).parameters
    except (TypeError, ValueError):  # builtins and some callables have no signature
        parameters = {}
    kwargs = {}
    if "input_shape" in parameters:
        kwargs["input_shape"] = tuple(input_shape)
    if "num_classes" in parameters:
        kwargs["num_classes"] = int(num_classes)
    return build_model(reg, **kwargs)


class RegularizationHyperModel(keras_tuner.HyperModel):
    """Builds one trial: the model from `build_model(reg)` and the pipeline from `reg`.

    `build(hp)` declares the `RegularizationSpace` in `hp`, makes the trial's `Regularization`
    and calls `build_model(reg)` (the built-in CNN when None); an uncompiled model is compiled
    by the `TrainingProtocol` (Adam with warm-up and cosine decay, categorical cross-entropy).
    `fit(hp, model, train, validation_data=...)` applies the trial's augmentation
    (`reg.augmentation()`) and Mixup/CutMix (`reg.transform(num_classes)`) to `train`, one-hot
    targets on both splits, and trains under the protocol: batch-norm statistics recomputed
    before each validation, early stopping on the objective, hopeless trials stopped by the
    median rule.

    Args:
        space: a `RegularizationSpace`.
        build_model: None or a callable `build_model(reg) -> keras.Model` (given the data's
            `input_shape` / `num_classes` as well if it has parameters of those names).
        input_shape, num_classes: the data's image shape and number of classes.
        objective: name of the monitored metric (e.g. `"val_data_loss"`) and `direction`.
        patience: early-stopping patience in epochs (None: no early stopping).
        learning_rate: Adam's peak learning rate for uncompiled models.
        steps_per_execution: batches per compiled call for uncompiled models.
        seed: None or the base seed of models and transforms.
        protocol: None or a `TrainingProtocol` (it then also sets `objective`, `direction`,
            `patience`, `learning_rate` and `steps_per_execution`).
        num_examples: None or the number of training images (sizes the built-in CNN).
        min_steps_per_epoch: the protocol's fewest optimizer steps per epoch (when
            `protocol` is None).
    """

    def __init__(self, space, build_model, input_shape, num_classes, objective="val_data_loss",
                 direction="min", patience=None, learning_rate=4e-3, steps_per_execution=1,
                 seed=None, protocol=None, num_examples=None,
                 min_steps_per_epoch=MIN_STEPS_PER_EPOCH):
        super().__init__(name="keras_reg")
        self.space = space if space is not None else RegularizationSpace()
        self.build_model = build_model
        self.input_shape = input_shape
        self.num_classes = num_classes
        if protocol is None:
            protocol = TrainingProtocol(
                learning_rate=learning_rate, patience=patience, objective=objective,
                direction=direction, steps_per_execution=steps_per_execution,
                min_steps_per_epoch=min_steps_per_epoch)
        self.protocol = protocol
        self.objective = protocol.objective
        self.direction = protocol.direction
        self.patience = protocol.patience
        self.learning_rate = protocol.learning_rate
        self.steps_per_execution = protocol.steps_per_execution
        self.seed = seed
        self.num_examples = num_examples
        # The built-in CNN is built (and traced) once per normalization type; each trial
        # resets its weights and optimizer state and sets the strength variables.
        self.reuse_models = build_model is None
        self._cache = {}
        self._schedules = weakref.WeakKeyDictionary()  # model -> its WarmupCosineDecay
        self.trial_id = None
        self.protected = False  # set per trial: a reference or probe runs in full
        # The objective curves of the trials trained in this process, by (epochs,
        # initial_epoch): the median stopping rule compares runs of one schedule only.
        self.curves = {}
        # Per trial id: the transforms of its pipeline, its fit seconds and epochs (records).
        self.transforms = {}
        self.fit_seconds = {}
        self.epochs_run = {}
        self.histories = {}  # per trial id: its History.history (the curves of the report)
        self._last_callbacks = []  # the protocol's callbacks of the last `run`

    def declare_hyperparameters(self, hp):
        self.space.declare(hp)

    def regularization(self, hp):
        return self.space.declare(hp)

    def build(self, hp):
        return self.make_model(self.regularization(hp))

    def make_model(self, reg):
        """The (compiled) model of `reg`."""
        if self.seed is not None:
            keras.utils.set_random_seed(self.seed)
        if self.reuse_models:
            return self._reused_model(reg)
        model = call_builder(self.build_model, reg, self.input_shape, self.num_classes)
        if not isinstance(model, keras.Model):
            raise TypeError(
                "Invalid value for argument `build_model`: expected a function returning a "
                f"keras.Model. Received a return value of type {type(model).__name__}"
            )
        if not model.compiled:
            self._compile(model)
        return model

    def _compile(self, model):
        schedule = self.protocol.compile(model)
        if schedule is not None:
            self._schedules[model] = schedule

    def _tunable_model(self, reg):
        model = cnn.build_cnn(reg, self.input_shape, self.num_classes, tunable=True,
                                 num_examples=self.num_examples)
        self._compile(model)
        return model

    def _reused_model(self, reg):
        if self.trial_id is None:
            # Outside a trial (e.g. reloading the best model): a model of its own, with the
            # same layers as the shared one, so trial weights load into it.
            return self._tunable_model(reg)
        entry = self._cache.get(reg.norm)
        if entry is None:
            model = self._tunable_model(reg)
            model.optimizer.build(model.trainable_variables)
            entry = (model, model.get_weights(), [v.numpy() for v in model.optimizer.variables])
            self._cache[reg.norm] = entry
        model, weights, slots = entry
        model.set_weights(weights)
        for variable, value in zip(model.optimizer.variables, slots):
            variable.assign(value)
        cnn.set_regularization(model, reg)
        return model

    def pipeline(self, reg, train, validation=None):
        """`(train, validation, transform)`: the trial's training pipeline and one-hot targets.

        The training batches go through `reg.augmentation()` then `reg.transform()` (each
        keyed by the batch position too, so a dataset that is not reshuffled still gets new
        draws every epoch); `transform` is the Mixup/CutMix transform or None.
        """
        transform = reg.transform(self.num_classes, seed=self.seed)
        augmentation = reg.augmentation(seed=self.seed)
        k = self.num_classes
        if augmentation is not None:
            train = augmentation.apply(train, num_parallel_calls=tf.data.AUTOTUNE)
        if transform is None:
            train = train.map(lambda x, y, *r: (x, one_hot(y, k), *r), tf.data.AUTOTUNE)
        else:
            train = transform.apply(train, num_parallel_calls=tf.data.AUTOTUNE)
        train = train.prefetch(tf.data.AUTOTUNE)
        if validation is not None:
            validation = validation.map(lambda x, y, *r: (x, one_hot(y, k), *r))
        return train, validation, transform

    def early_stopping(self):
        if self.patience is None:
            return []
        return [keras.callbacks.EarlyStopping(
            monitor=self.objective, mode=self.direction, patience=self.patience,
            restore_best_weights=True)]

    def run(self, reg, model, train, validation=None, epochs=1, initial_epoch=0,
            callbacks=None, curves=None, protected=False, **kwargs):
        """Trains `model` with `reg` under the protocol; returns the `History`.

        The one training path of trials (`fit`) and retraining (`train`).
        """
        epoch, steps = self.protocol.epoch_data(train)
        train_ds, val_ds, transform = self.pipeline(reg, epoch, validation)
        schedule = self._schedules.get(model)
        if schedule is not None:
            step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
            self.protocol.set_lengths(schedule, steps, epochs, initial_epoch, step)
        self._last_callbacks = self.protocol.callbacks(
            model, train if val_ds is not None else None, curves, epochs=epochs,
            validation=val_ds, protected=protected)
        callbacks = self._last_callbacks + list(callbacks or [])
        kwargs.setdefault("verbose", 0)
        kwargs.setdefault("shuffle", False)  # the pipeline shuffles; Keras would warn
        return model.fit(train_ds, validation_data=val_ds, epochs=epochs,
                         initial_epoch=initial_epoch, callbacks=callbacks, **kwargs)

    def stopped_as_hopeless(self):
        """True when the last `run` was stopped by the median rule (`HopelessTrialStopping`)."""
        return any(getattr(c, "stopped_epoch", None) is not None
                   for c in self._last_callbacks
                   if isinstance(c, HopelessTrialStopping))

    def fit(self, hp, model, train, validation_data=None, callbacks=None, epochs=1,
            initial_epoch=0, **kwargs):
        reg = self.regularization(hp)
        self.transforms[self.trial_id] = reg.transform(self.num_classes, seed=self.seed)
        start = time.perf_counter()
        history = self.run(reg, model, train, validation_data, epochs=epochs,
                           initial_epoch=initial_epoch, callbacks=callbacks,
                           curves=self.curves.setdefault((epochs, initial_epoch), []),
                           protected=self.protected, **kwargs)
        self.fit_seconds[self.trial_id] = time.perf_counter() - start
        self.epochs_run[self.trial_id] = len(history.epoch)
        self.histories[self.trial_id] = {k: [float(v) for v in values]
                                         for k, values in history.history.items()}
        return history


def train(reg, train, validation, *, build_model=None, input_shape=None, num_classes=None,
          epochs=30, patience=None, objective="val_data_loss", direction="min", seed=None,
          learning_rate=4e-3, steps_per_execution=1, callbacks=None, verbose=0, protocol=None,
          num_examples=None):
    """Trains one model with `reg` under the search's protocol; returns `(model, history)`.

    The same code path as a trial (model, pipeline, `TrainingProtocol`: schedule, batch-norm
    statistics, early stopping on `objective` with the best weights restored), so the
    references and the best values are compared on equal terms; only the stopping of hopeless
    trials is left out (it needs other trials).

    Args:
        reg: a `Regularization`.
        train, validation: batched `(images, labels)` datasets.
        build_model: None (the built-in CNN) or `build_model(reg)`.
        input_shape, num_classes: None to read them from `train`.
        epochs: int >= 1.
        patience, objective, direction, learning_rate, steps_per_execution: the protocol's
            settings when `protocol` is None.
        seed: None or int >= 0.
        callbacks: extra Keras callbacks.
        verbose: `fit` verbosity.
        protocol: None or a `TrainingProtocol`.
        num_examples: None (counted from `train`) or the number of training images.

    Returns:
        `(model, history)`.
    """
    if not isinstance(reg, Regularization):
        raise TypeError(
            f"Invalid value for argument `reg`: expected a Regularization. Received: reg={reg!r}"
        )
    if input_shape is None or num_classes is None:
        shape, k = data_spec(train, num_classes)
        input_shape, num_classes = input_shape or shape, num_classes or k
    if build_model is None and num_examples is None:
        num_examples = count_examples(train)
    hm = RegularizationHyperModel(
        RegularizationSpace(), build_model, input_shape, num_classes, objective=objective,
        direction=direction, patience=patience, learning_rate=learning_rate,
        steps_per_execution=steps_per_execution, seed=seed, protocol=protocol,
        num_examples=num_examples,
    )
    hm.reuse_models = False
    if build_model is None:
        hm.build_model = lambda r: cnn.build_cnn(r, input_shape, num_classes,
                                                    num_examples=num_examples)
    keras.backend.clear_session()
    model = hm.make_model(reg)
    history = hm.run(reg, model, train, validation, epochs=epochs, callbacks=callbacks,
                     verbose=verbose)
    return model, history
