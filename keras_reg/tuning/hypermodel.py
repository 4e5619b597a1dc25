"""The KerasTuner `HyperModel`: each trial rebuilds the model and the training pipeline."""

import time

import keras
import keras_tuner
import numpy as np
import tensorflow as tf

from keras_reg.data import one_hot
from keras_reg.regularizers import penalty
from keras_reg.tuning import _model
from keras_reg.tuning.space import Regularization, RegularizationSpace


def _as_dataset(data, batch_size, shuffle, seed, name):
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


class ValidationDataLoss(keras.callbacks.Callback):
    """Logs `val_data_loss = val_loss − penalty(model)`, the validation loss of the predictions.

    Keras's `val_loss` adds the weight penalty `λ·Σw²` to the data loss; the penalty grows with
    the very strength a search compares, so ranking trials by `val_loss` is biased against
    weight regularization. The weights do not change during evaluation, so the penalty read
    at the end of the epoch is the one `val_loss` holds. Listed first, so early stopping and
    KerasTuner's own callbacks see the key.
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and "val_loss" in logs:
            logs["val_data_loss"] = float(logs["val_loss"]) - float(penalty(self.model))


def data_callbacks(callbacks, early_stopping):
    """`[ValidationDataLoss()] + callbacks + early_stopping`."""
    return [ValidationDataLoss()] + list(callbacks or []) + list(early_stopping)


class RegularizationHyperModel(keras_tuner.HyperModel):
    """Builds one trial: the model from `build_model(reg)` and the pipeline from `reg`.

    `build(hp)` declares the `RegularizationSpace` in `hp`, makes the trial's `Regularization`
    and calls `build_model(reg)` (the built-in CNN when None); an uncompiled model is compiled
    with Adam and categorical cross-entropy. `fit(hp, model, train, validation_data=...)` maps
    `reg.transform(num_classes)` (MixupCutMix with the trial's alphas and ε) on `train`,
    one-hot targets on both splits, and trains with early stopping on the objective.

    Args:
        space: a `RegularizationSpace`.
        build_model: None or a callable `build_model(reg) -> keras.Model`.
        input_shape, num_classes: the data's image shape and number of classes.
        objective: name of the monitored metric (e.g. `"val_loss"`) and `direction`.
        patience: early-stopping patience in epochs (None: no early stopping).
        learning_rate: Adam's learning rate for uncompiled models.
        steps_per_execution: batches per compiled call for uncompiled models.
        seed: None or the base seed of models and transforms.
    """

    def __init__(self, space, build_model, input_shape, num_classes, objective="val_loss",
                 direction="min", patience=None, learning_rate=2e-3, steps_per_execution=1,
                 seed=None):
        super().__init__(name="keras_reg")
        self.space = space if space is not None else RegularizationSpace()
        self.build_model = build_model
        self.input_shape = input_shape
        self.num_classes = num_classes
        self.objective = objective
        self.direction = direction
        self.patience = patience
        self.learning_rate = learning_rate
        self.steps_per_execution = steps_per_execution
        self.seed = seed
        # The built-in CNN is built (and traced) once per normalization type; each trial
        # resets its weights and optimizer state and sets the strength variables.
        self.reuse_models = build_model is None
        self._cache = {}
        self.trial_id = None
        # Per trial id: the transform of its pipeline, its fit seconds and epochs (for records).
        self.transforms = {}
        self.fit_seconds = {}
        self.epochs_run = {}

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
        if self.build_model is None:
            model = _model.build_cnn(reg, self.input_shape, self.num_classes)
        else:
            model = self.build_model(reg)
        if not isinstance(model, keras.Model):
            raise TypeError(
                "Invalid value for argument `build_model`: expected a function returning a "
                f"keras.Model. Received a return value of type {type(model).__name__}"
            )
        if not model.compiled:
            _model.compile_default(model, self.learning_rate, self.steps_per_execution)
        return model

    def _reused_model(self, reg):
        entry = self._cache.get(reg.norm)
        if entry is None:
            model = _model.build_cnn(reg, self.input_shape, self.num_classes, tunable=True)
            _model.compile_default(model, self.learning_rate, self.steps_per_execution)
            model.optimizer.build(model.trainable_variables)
            entry = (model, model.get_weights(), [v.numpy() for v in model.optimizer.variables])
            self._cache[reg.norm] = entry
        model, weights, slots = entry
        model._initial_epoch = None  # set by BackupAndRestore when a trial resumed
        model.set_weights(weights)
        for variable, value in zip(model.optimizer.variables, slots):
            variable.assign(value)
        _model.set_regularization(model, reg)
        return model

    def pipeline(self, reg, train, validation=None):
        """`(train, validation)` datasets with the trial's transform and one-hot targets."""
        transform = reg.transform(self.num_classes, seed=self.seed)
        augmentation = reg.augmentation(seed=self.seed)
        k = self.num_classes
        if augmentation is not None:  # keyed by position too: new draws every epoch
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

    def fit(self, hp, model, train, validation_data=None, callbacks=None, **kwargs):
        reg = self.regularization(hp)
        train, validation, transform = self.pipeline(reg, train, validation_data)
        self.transforms[self.trial_id] = transform
        callbacks = data_callbacks(callbacks, self.early_stopping())
        kwargs.setdefault("verbose", 0)
        kwargs.setdefault("shuffle", False)  # the pipeline shuffles; Keras would warn
        start = time.perf_counter()
        history = model.fit(train, validation_data=validation, callbacks=callbacks, **kwargs)
        self.fit_seconds[self.trial_id] = time.perf_counter() - start
        self.epochs_run[self.trial_id] = len(history.epoch)
        return history


def train(reg, train, validation, *, build_model=None, input_shape=None, num_classes=None,
          epochs=30, patience=None, objective="val_data_loss", direction="min", seed=None,
          learning_rate=2e-3, steps_per_execution=1, callbacks=None, verbose=0):
    """Trains one model with `reg` under the search's protocol; returns `(model, history)`.

    The same code path as a trial (model, pipeline, early stopping on `objective` with the best
    weights restored), so a baseline (`Regularization.none()`) and the best values are compared
    on equal terms.
    """
    if not isinstance(reg, Regularization):
        raise TypeError(
            f"Invalid value for argument `reg`: expected a Regularization. Received: reg={reg!r}"
        )
    if input_shape is None or num_classes is None:
        shape, k = data_spec(train, num_classes)
        input_shape, num_classes = input_shape or shape, num_classes or k
    hm = RegularizationHyperModel(
        RegularizationSpace(), build_model, input_shape, num_classes, objective=objective,
        direction=direction, patience=patience, learning_rate=learning_rate,
        steps_per_execution=steps_per_execution, seed=seed,
    )
    keras.backend.clear_session()
    model = hm.make_model(reg)
    train_ds, val_ds, _ = hm.pipeline(reg, train, validation)
    callbacks = data_callbacks(callbacks, hm.early_stopping())
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=callbacks,
                        verbose=verbose, shuffle=False)
    return model, history
