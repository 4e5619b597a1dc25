"""`TrainingProtocol`: how every trial and every retraining of a search is trained."""

import weakref

import keras
import tensorflow as tf

from keras_reg._validation import check_bool, check_choice, check_float, check_int
from keras_reg._roles import has_batch_norm
from keras_reg.callbacks import (HopelessTrialStopping, PreciseBatchNorm, RegularizationLogger,
                                 ValidationTemperature)
from keras_reg.data._datasets import count_batches, one_hot_batches
from keras_reg.metrics import CalibratedCrossEntropy

# The fewest optimizer steps of an epoch: 1,000 images at batch 32.
MIN_STEPS_PER_EPOCH = 32


class TrainingProtocol:
    """How a search trains: optimizer, schedule, epoch length, batch-norm statistics, stopping.

    One frozen object, recorded with a search (`get_config`) and reused by every retraining,
    so that trials, references and the final model are trained the same way: Adam on a
    warm-up + cosine schedule (`compile`); epochs of at least `min_steps_per_epoch` optimizer
    steps, so that small training sets are passed over several times and regularized models
    are not judged on runs cut short; batch-norm statistics recomputed before each
    validation, early stopping on the objective and the median stopping rule (`fit`).

    Args:
        learning_rate: float > 0, the peak learning rate.
        warmup: float in [0, 0.5], the warm-up's share of the steps.
        schedule: `"cosine"` or `"constant"`.
        batch_size: int >= 1, the batch size when the data are arrays.
        min_steps_per_epoch: int >= 1 (1: an epoch is one pass whatever the data size).
        steps_per_execution: int >= 1, batches per compiled call.
        precise_batch_norm: bool.
        precise_bn_batches: int >= 1.
        patience: `"auto"` (`max(5, epochs // 4)`), None (no early stopping) or int >= 0.
        stop_hopeless: bool, stop searched trials worse than the median of earlier ones.

    Example:

    >>> protocol = TrainingProtocol(learning_rate=1e-3, patience=None)
    >>> TrainingProtocol.from_config(protocol.get_config()) == protocol
    True
    >>> protocol.passes_per_epoch(7), protocol.patience_for(epochs=40)
    (5, None)
    """

    def __init__(self, learning_rate=4e-3, warmup=0.05, schedule="cosine", batch_size=32,
                 min_steps_per_epoch=MIN_STEPS_PER_EPOCH, steps_per_execution=8,
                 precise_batch_norm=True, precise_bn_batches=16, patience="auto",
                 stop_hopeless=True):
        self.__dict__.update({  # validated, then frozen (`__setattr__`)
            "learning_rate": check_float("learning_rate", learning_rate, 0.0, low_open=True),
            "warmup": check_float("warmup", warmup, 0.0, 0.5),
            "schedule": check_choice("schedule", schedule, ("cosine", "constant")),
            "batch_size": check_int("batch_size", batch_size, low=1),
            "min_steps_per_epoch": check_int("min_steps_per_epoch", min_steps_per_epoch, low=1),
            "steps_per_execution": check_int("steps_per_execution", steps_per_execution, low=1),
            "precise_batch_norm": check_bool("precise_batch_norm", precise_batch_norm),
            "precise_bn_batches": check_int("precise_bn_batches", precise_bn_batches, low=1),
            "patience": patience if patience in ("auto", None)
            else check_int("patience", patience, low=0),
            "stop_hopeless": check_bool("stop_hopeless", stop_hopeless),
        })

    def __setattr__(self, name, value):
        raise AttributeError(f"TrainingProtocol is frozen: use `replace({name}=...)` to get "
                             "one with another value")

    def replace(self, **changes):
        """A copy with some settings changed (the protocol itself is frozen)."""
        return TrainingProtocol(**{**self.get_config(), **changes})

    def get_config(self):
        return dict(self.__dict__)

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return isinstance(other, TrainingProtocol) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash(tuple(self.get_config().items()))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"TrainingProtocol({args})"

    def passes_per_epoch(self, batches):
        """Passes over `batches` training batches that make one epoch."""
        return max(1, -(-self.min_steps_per_epoch // check_int("batches", batches, low=1)))

    def patience_for(self, epochs):
        """The early-stopping patience of a run of `epochs` epochs (None: no early stopping)."""
        return max(5, int(epochs) // 4) if self.patience == "auto" else self.patience

    def compile(self, model, steps_per_epoch, epochs):
        """Compiles `model` for `epochs` epochs of `steps_per_epoch` optimizer steps.

        An uncompiled model gets Adam on the warm-up + cosine schedule and categorical
        cross-entropy (the targets are one-hot, soft after Mixup/CutMix); a compiled one keeps
        its optimizer and loss. Both get the accuracy and `CalibratedCrossEntropy` (logged as
        `calibrated_loss` / `val_calibrated_loss`, the default objective) as metrics.
        """
        if model.compiled:
            optimizer, loss = model.optimizer, model.loss
        else:
            total = max(1, int(steps_per_epoch) * int(epochs))
            warmup = min(total - 1, int(round(self.warmup * total)))
            rate = self.learning_rate
            if self.schedule == "cosine":
                rate = keras.optimizers.schedules.CosineDecay(
                    0.0 if warmup else rate, decay_steps=max(1, total - warmup),
                    warmup_target=rate if warmup else None, warmup_steps=warmup)
            optimizer, loss = keras.optimizers.Adam(rate), keras.losses.CategoricalCrossentropy()
        calibrated = _CALIBRATED[model] = CalibratedCrossEntropy()
        # Not XLA-compiled: each trial's model is new, and on a CPU compiling it costs more
        # than a small model's epochs gain.
        model.compile(optimizer=optimizer, loss=loss,
                      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy"), calibrated],
                      steps_per_execution=self.execution_for(steps_per_epoch),
                      jit_compile=False)
        if model.built and not model.optimizer.built:
            # built now, so that a checkpoint's optimizer state loads into it
            model.optimizer.build(model.trainable_variables)
        return model

    def execution_for(self, steps_per_epoch):
        """Batches per compiled call for epochs of `steps_per_epoch` steps: the largest divisor
        of the epoch not above `steps_per_execution`, so that every epoch has exactly its steps
        (the training data are one stream across epochs, see `fit`)."""
        steps = check_int("steps_per_epoch", steps_per_epoch, low=1)
        return max(d for d in range(1, self.steps_per_execution + 1) if steps % d == 0)

    def steps_per_epoch(self, train):
        """Optimizer steps of one epoch of the batched dataset `train`."""
        batches = count_batches(train)
        return batches * self.passes_per_epoch(batches)

    def fit(self, model, reg, train, validation, *, num_classes, epochs, objective,
            initial_epoch=0, callbacks=None, curves=None, protected=False, seed=None,
            verbose=0):
        """Trains `model` (compiled by `compile`) with the pipeline of `reg`; the `History`.

        Before each validation the moving statistics of the batch-norm layers are recomputed
        on `precise_bn_batches` clean training batches (`PreciseBatchNorm`). Early stopping
        waits `patience_for(epochs)` epochs without improvement, counted from half of the
        epochs on under the cosine schedule; with `curves`, a run worse than the median of
        earlier runs stops (`HopelessTrialStopping`).

        Args:
            model: a compiled Keras model.
            reg: the `Regularization` of the run (its data side: augmentation, Mixup...).
            train, validation: batched `(inputs, labels)` datasets (labels sparse or one-hot).
            num_classes: int >= 2.
            epochs, initial_epoch: as for `Model.fit`.
            objective: a `keras_tuner.Objective` (early stopping and the median rule).
            callbacks: more Keras callbacks.
            curves: the earlier trials' objective curves (the median rule), or None.
            protected: never stop this run by the median rule (a labelled trial, or one drawn
                near the incumbent).
            seed: None or int, the pipeline's seed.
            verbose: `fit` verbosity.
        """
        steps = self.steps_per_epoch(train)
        # One stream for all epochs (`repeat()` and `steps_per_epoch`): a fresh iterator of the
        # pipeline each epoch costs 0.1-0.2 s to start, as much as a small epoch's steps.
        train_ds, val_ds = _pipeline(reg, train.repeat(), validation, num_classes, seed)
        run = [RegularizationLogger()]
        if model in _CALIBRATED:
            run.append(ValidationTemperature(_CALIBRATED[model]))
        if self.precise_batch_norm and has_batch_norm(model):
            run.append(PreciseBatchNorm(one_hot_batches(train, num_classes),
                                        num_batches=self.precise_bn_batches))
        patience = self.patience_for(epochs)
        if patience is not None and val_ds is not None:
            start = epochs // 2 if self.schedule == "cosine" else 0
            run.append(keras.callbacks.EarlyStopping(
                monitor=objective.name, mode=objective.direction, patience=patience,
                restore_best_weights=True, start_from_epoch=start))
        if self.stop_hopeless and curves is not None and val_ds is not None:
            run.append(HopelessTrialStopping(
                curves, objective.name, objective.direction,
                min_epochs=max(2, (patience or 6) // 2, epochs // 3), stop=not protected))
        return model.fit(train_ds, validation_data=val_ds, epochs=epochs, steps_per_epoch=steps,
                         initial_epoch=initial_epoch, callbacks=run + list(callbacks or []),
                         verbose=verbose, shuffle=False)


# The CalibratedCrossEntropy of each model `TrainingProtocol.compile` compiled (Keras builds
# `model.metrics` only at the first step, after the callbacks start).
_CALIBRATED = weakref.WeakKeyDictionary()


def _pipeline(reg, train, validation, num_classes, seed=None):
    """`(train, validation)` of one run: `train` through the trial's augmentation (image
    transforms on images only; input noise on any input) and Mixup/CutMix or one-hot targets;
    `validation` with one-hot targets."""
    image = len(train.element_spec[0].shape) == 4
    augmentation = reg.augmentation(seed=seed, image=image)
    transform = reg.transform(num_classes, seed=seed)
    if augmentation is not None:
        train = augmentation.apply(train, num_parallel_calls=tf.data.AUTOTUNE)
    if transform is None:
        train = one_hot_batches(train, num_classes)
    else:
        train = transform.apply(train, num_parallel_calls=tf.data.AUTOTUNE)
    # Without tf.data's autotuner: `fit` ends with this endless stream's iterator deleted
    # mid-stream, and deleting it waited for the autotuner's thread, 0.4-2.5 s after a fit of
    # a few epochs and 10-23 s after a 30-epoch trial (one trial in three or four). Untuned,
    # the maps run min(16, cores) calls in parallel; the elements and their order are the same.
    options = tf.data.Options()
    options.autotune.enabled = False
    train = train.prefetch(tf.data.AUTOTUNE).with_options(options)
    if validation is not None:
        validation = one_hot_batches(validation, num_classes)
    return train, validation
