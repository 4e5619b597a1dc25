"""The training protocol of a search: one place for how every trial and retraining is trained.

A trial's score is only as good as its training: `TrainingProtocol` holds the optimizer and its
learning-rate schedule, the batch-norm statistics used for validation, early stopping and the
stopping of hopeless trials, and is used both by the trials of a search and by the retraining
of the best values and the references (`keras_reg.tuning.train`).
"""

import math
import weakref

import keras
import numpy as np

from keras_reg._validation import check_choice, check_float, check_int
from keras_reg.regularizers import penalty
from keras_reg.tuning.calibration import CalibratedCrossEntropy, calibrated_nll, predictions


# The fewest optimizer steps of an epoch (`TrainingProtocol.min_steps_per_epoch`); a search
# records it, so a directory is not resumed under another epoch length.
MIN_STEPS_PER_EPOCH = 32


@keras.saving.register_keras_serializable(package="keras_reg")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up then cosine decay, with lengths that can change without a new trace.

    With `t = step + offset`, `w = warmup_steps` and `T = total_steps`:

        lr(t) = peak · t / w                                             for t < w
        lr(t) = peak · (α + (1 − α) · ½ · (1 + cos(π · min(1, (t − w) / (T − w)))))  otherwise

    `total_steps`, `warmup_steps` and `offset` are variables: `set_lengths(...)` gives an
    already traced training step a schedule of another length (a trial with other epochs, a
    resumed trial that starts at a later epoch), so models reused between trials keep their
    compiled step.

    Args:
        peak: float > 0, the learning rate after the warm-up.
        total_steps: int >= 1, warm-up and decay steps together.
        warmup_steps: int >= 0.
        alpha: float in [0, 1], the final learning rate as a fraction of `peak`.

    Example:

    >>> schedule = WarmupCosineDecay(1e-3, total_steps=100, warmup_steps=10)
    >>> [round(float(schedule(s)), 6) for s in (0, 5, 10, 55, 100)]
    [0.0, 0.0005, 0.001, 0.0005, 0.0]

    Reference:
        - [Loshchilov & Hutter, 2017. SGDR: Stochastic Gradient Descent with Warm Restarts](
          https://arxiv.org/abs/1608.03983)
        - [Goyal et al., 2017. Accurate, Large Minibatch SGD](https://arxiv.org/abs/1706.02677)
    """

    def __init__(self, peak, total_steps, warmup_steps=0, alpha=0.0):
        super().__init__()
        self.peak = check_float("peak", peak, 0.0, low_open=True)
        self.alpha = check_float("alpha", alpha, 0.0, 1.0)
        self._total = keras.Variable(1.0, trainable=False, name="total_steps")
        self._warmup = keras.Variable(0.0, trainable=False, name="warmup_steps")
        self._offset = keras.Variable(0.0, trainable=False, name="step_offset")
        self.set_lengths(total_steps, warmup_steps)

    def set_lengths(self, total_steps, warmup_steps=0, offset=0):
        """Sets the schedule's lengths (in optimizer steps) and the step it starts from."""
        total_steps = check_int("total_steps", total_steps, low=1)
        warmup_steps = check_int("warmup_steps", warmup_steps, low=0, high=total_steps - 1)
        self._total.assign(float(total_steps))
        self._warmup.assign(float(warmup_steps))
        self._offset.assign(float(offset))

    @property
    def total_steps(self):
        return int(self._total.numpy())

    @property
    def warmup_steps(self):
        return int(self._warmup.numpy())

    def __call__(self, step):
        ops = keras.ops
        t = ops.cast(step, "float32") + self._offset
        warmup = ops.maximum(self._warmup, 1.0)
        rising = self.peak * t / warmup
        progress = ops.clip((t - self._warmup) / ops.maximum(self._total - self._warmup, 1.0),
                            0.0, 1.0)
        cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
        decayed = self.peak * (self.alpha + (1.0 - self.alpha) * cosine)
        return ops.where(t < self._warmup, rising, decayed)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "alpha": self.alpha}


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


class CalibratedValidationLoss(keras.callbacks.Callback):
    """Logs `val_calibrated_loss`: the validation loss after temperature scaling.

    At the end of each epoch with a validation, predicts the validation images once and logs
    `keras_reg.tuning.calibration.calibrated_nll` of the predictions (and
    `val_temperature = 1 / β`). Listed before the stopping callbacks, so they and KerasTuner
    see the key.

    Args:
        validation: the validation batches `(images, one-hot targets)`.
    """

    def __init__(self, validation):
        super().__init__()
        self.validation = validation

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or "val_loss" not in logs:
            return
        value, beta = calibrated_nll(*predictions(self.model, self.validation))
        logs["val_calibrated_loss"] = value
        logs["val_temperature"] = 1.0 / beta


class ValidationTemperature(keras.callbacks.Callback):
    """Logs `val_temperature`, read from the compiled `CalibratedCrossEntropy` metric.

    After the validation pass the metric holds the validation state, so its
    `val_calibrated_loss` and this temperature come from that one pass.

    Args:
        metric: the model's compiled `CalibratedCrossEntropy`.
    """

    def __init__(self, metric):
        super().__init__()
        self.metric = metric

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and f"val_{self.metric.name}" in logs:
            logs["val_temperature"] = self.metric.temperature()


# The CalibratedCrossEntropy each model compiled by a TrainingProtocol carries.
_CALIBRATED = weakref.WeakKeyDictionary()


class HopelessTrialStopping(keras.callbacks.Callback):
    """Stops a trial whose objective is worse than the median of the earlier trials.

    The median stopping rule: from epoch `min_epochs` on, a trial stops when its best objective
    so far is worse than the median, over the earlier trials that reached that epoch, of their
    best objective up to the same epoch. Needs `min_trials` earlier trials; under one protocol
    (same schedule, same epochs) the curves are comparable epoch by epoch.

    Args:
        curves: a list of earlier trials' objective curves (one list of floats per trial);
            this trial's curve is appended to it when training ends.
        monitor: the objective's log key.
        direction: `"min"` or `"max"`.
        min_epochs: int >= 1, the first epoch (1-based) at which a trial may stop.
        min_trials: int >= 1.
        stop: False records the trial's curve for the later trials but never stops it (a
            trial that must run in full: a reference or probe, which later trials are
            compared with).

    Reference:
        - [Golovin et al., 2017. Google Vizier: A Service for Black-Box Optimization](
          https://research.google/pubs/google-vizier-a-service-for-black-box-optimization/)
    """

    def __init__(self, curves, monitor="val_data_loss", direction="min", min_epochs=3,
                 min_trials=3, stop=True):
        super().__init__()
        self.curves = curves
        self.stop = bool(stop)
        self.monitor = monitor
        self.direction = check_choice("direction", direction, ("min", "max"))
        self.min_epochs = check_int("min_epochs", min_epochs, low=1)
        self.min_trials = check_int("min_trials", min_trials, low=1)
        self.curve = []
        self.stopped_epoch = None

    def _best(self, values):
        return min(values) if self.direction == "min" else max(values)

    def on_train_begin(self, logs=None):
        self.curve = []
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        self.curve.append(float(value))
        n = len(self.curve)
        if not self.stop or n < self.min_epochs:
            return
        earlier = [self._best(c[:n]) for c in self.curves if len(c) >= n]
        if len(earlier) < self.min_trials:
            return
        median = float(np.median(earlier))
        mine = self._best(self.curve)
        if (mine > median) if self.direction == "min" else (mine < median):
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.curve:
            self.curves.append(list(self.curve))


class TrainingProtocol:
    """How a search trains: optimizer, schedule, batch-norm statistics, stopping rules.

    - Adam with a linear warm-up over `warmup` of the steps, then a cosine decay to
      `alpha · learning_rate` at the last epoch (`WarmupCosineDecay`): the late epochs train at
      a small rate, so the validation scores a trial ends with are stable enough to compare.
    - Before each validation, the moving statistics of the batch-norm layers are recomputed on
      `precise_bn_batches` clean training batches (`keras_reg.callbacks.PreciseBatchNorm`):
      with few steps per epoch the moving averages lag the weights and make validation scores
      jump from epoch to epoch.
    - On small data an epoch is at least `min_steps_per_epoch` optimizer steps: the training
      batches are passed over as many times as that takes (7 batches of 200 images: 5
      passes, 35 steps). A fixed number of epochs of very small data is otherwise too few
      steps for the regularized models (augmentation, Mixup, dropout learn more slowly),
      which then lose to weak regularization only because their runs ended early; measured
      on 200 digits (five seeds), 30 epochs of 7 steps left the `strong` probe at 4.6 % test
      error, 90 epochs brought it to 2.9 % (the recipe: 3.7 → 3.4 %). The validations (and
      the batch-norm statistics before them) stay once per epoch.
    - Early stopping on the objective after `patience` epochs without improvement (the best
      weights are restored; under the cosine schedule from half of the epochs on), and, in a
      search, the median stopping rule for hopeless trials
      (`HopelessTrialStopping`).

    Args:
        learning_rate: float > 0, Adam's peak learning rate (for models `build_model` leaves
            uncompiled). Twice the usual constant rate: the cosine decay spends most steps
            below it, and on small data a run has few steps.
        schedule: `"cosine"` (warm-up and cosine decay) or `"constant"`.
        warmup: float in [0, 0.5], the warm-up's share of the steps.
        alpha: float in [0, 1], the final learning rate as a fraction of `learning_rate`.
        precise_batch_norm: bool, recompute batch-norm statistics before each validation.
        precise_bn_batches: int >= 1 (16 batches of 32 images: the statistics of each channel
            over 512 images and every pixel position, at a sixth of an epoch's cost on 1,000
            images).
        patience: None or int >= 0, early-stopping patience in epochs.
        objective, direction: the monitored log key and `"min"` / `"max"`.
        stop_hopeless: bool, stop trials worse than the median of the earlier ones.
        steps_per_execution: int >= 1, batches per compiled call.
        min_steps_per_epoch: int >= 1, the fewest optimizer steps of an epoch (32: 1,000
            images at batch 32, the data size the protocol was measured on); 1 makes an
            epoch one pass whatever the data size.

    Example:

    >>> protocol = TrainingProtocol(learning_rate=1e-3, warmup=0.1)
    >>> schedule = protocol.schedule()
    >>> protocol.set_lengths(schedule, steps_per_epoch=10, epochs=10)
    >>> round(float(schedule(10)), 6), round(float(schedule(55)), 6)
    (0.001, 0.0005)
    """

    def __init__(self, learning_rate=4e-3, schedule="cosine", warmup=0.05, alpha=0.0,
                 precise_batch_norm=True, precise_bn_batches=16, patience=None,
                 objective="val_data_loss", direction="min", stop_hopeless=True,
                 steps_per_execution=1, min_steps_per_epoch=MIN_STEPS_PER_EPOCH):
        self.learning_rate = check_float("learning_rate", learning_rate, 0.0, low_open=True)
        self.schedule_kind = check_choice("schedule", schedule, ("cosine", "constant"))
        self.warmup = check_float("warmup", warmup, 0.0, 0.5)
        self.alpha = check_float("alpha", alpha, 0.0, 1.0)
        self.precise_batch_norm = bool(precise_batch_norm)
        self.precise_bn_batches = check_int("precise_bn_batches", precise_bn_batches, low=1)
        self.patience = None if patience is None else check_int("patience", patience, low=0)
        self.objective = objective
        self.direction = check_choice("direction", direction, ("min", "max"))
        self.stop_hopeless = bool(stop_hopeless)
        self.steps_per_execution = check_int("steps_per_execution", steps_per_execution, low=1)
        self.min_steps_per_epoch = check_int("min_steps_per_epoch", min_steps_per_epoch, low=1)

    def passes_per_epoch(self, steps):
        """How many passes over `steps` training batches make one epoch (at least
        `min_steps_per_epoch` steps).

        >>> TrainingProtocol().passes_per_epoch(7), TrainingProtocol().passes_per_epoch(36)
        (5, 1)
        """
        steps = check_int("steps", steps, low=1)
        return max(1, -(-self.min_steps_per_epoch // steps))

    def epoch_data(self, train):
        """`(batches, steps)`: `train` repeated `passes_per_epoch` times, one epoch's batches,
        and their number."""
        steps = steps_per_epoch(train)
        passes = self.passes_per_epoch(steps)
        return (train if passes == 1 else train.repeat(passes)), steps * passes

    def schedule(self):
        """A fresh learning rate (a `WarmupCosineDecay`, or the constant rate)."""
        if self.schedule_kind == "constant":
            return self.learning_rate
        return WarmupCosineDecay(self.learning_rate, total_steps=1, alpha=self.alpha)

    def set_lengths(self, schedule, steps_per_epoch, epochs, initial_epoch=0, step=0):
        """Fits `schedule` to `epochs` epochs of `steps_per_epoch`, resuming at `initial_epoch`.

        `step` is the optimizer's step counter now (a reused or restored optimizer need not
        start at 0).
        """
        if not isinstance(schedule, WarmupCosineDecay):
            return
        total = max(1, int(steps_per_epoch) * int(epochs))
        warmup = min(total - 1, int(round(self.warmup * total)))
        schedule.set_lengths(total, warmup, offset=int(initial_epoch) * int(steps_per_epoch)
                             - int(step))

    def compile(self, model):
        """Compiles `model` with Adam on `schedule()`, categorical cross-entropy, accuracy.

        Categorical, because the targets are one-hot (soft after Mixup/CutMix). The metrics
        are the accuracy and `CalibratedCrossEntropy` (logged as `calibrated_loss` /
        `val_calibrated_loss`, the search's default objective, in the one validation pass).
        Not XLA-compiled: a new model is traced per normalization type, and on a CPU the XLA
        compilation of a small model costs more than it saves over a trial.

        Returns:
            The `WarmupCosineDecay` of the optimizer (for `set_lengths`), or None.
        """
        schedule = self.schedule()
        calibrated = CalibratedCrossEntropy()
        _CALIBRATED[model] = calibrated
        model.compile(
            optimizer=keras.optimizers.Adam(schedule),
            loss=keras.losses.CategoricalCrossentropy(),
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy"), calibrated],
            steps_per_execution=self.steps_per_execution,
            jit_compile=False,
        )
        return schedule if isinstance(schedule, WarmupCosineDecay) else None

    def callbacks(self, model, clean_train=None, curves=None, epochs=None, validation=None,
                  protected=False):
        """The protocol's callbacks for one training run of `model`.

        Args:
            model: the model about to be trained.
            clean_train: the training batches without augmentation or Mixup, for the
                batch-norm statistics.
            curves: the earlier trials' objective curves (a search), or None (no stopping of
                hopeless runs).
            epochs: None or the run's epochs. Under the cosine schedule early stopping
                starts at half of them: the late epochs at a small learning rate are where a
                run improves most, and a plateau at the peak rate says little. Hopeless
                trials are stopped from a third of them on: a regularized run learns more
                slowly at first, and a median rule applied earlier favours weak
                regularization.
            validation: None or the validation batches (one-hot targets), for
                `val_calibrated_loss`: logged by the metric of a model this protocol
                compiled (`ValidationTemperature` adds the temperature), else by a second
                pass (`CalibratedValidationLoss`, for models `build_model` compiled itself).
            protected: a run the median rule must not stop (its curve still counts for the
                later runs): the references and probes of a search.

        Returns:
            `[ValidationDataLoss, ValidationTemperature or CalibratedValidationLoss?,
            PreciseBatchNorm?, EarlyStopping?, HopelessTrialStopping?]`.
        """
        callbacks = [ValidationDataLoss()]
        if validation is not None:
            metric = _CALIBRATED.get(model)
            callbacks.append(CalibratedValidationLoss(validation) if metric is None
                             else ValidationTemperature(metric))
        if (self.precise_batch_norm and clean_train is not None
                and _has_batch_norm(model)):
            from keras_reg.callbacks import PreciseBatchNorm

            callbacks.append(PreciseBatchNorm(clean_train, num_batches=self.precise_bn_batches))
        if self.patience is not None:
            start = int(epochs) // 2 if epochs and self.schedule_kind == "cosine" else 0
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor=self.objective, mode=self.direction, patience=self.patience,
                restore_best_weights=True, start_from_epoch=start))
        if self.stop_hopeless and curves is not None:
            callbacks.append(HopelessTrialStopping(
                curves, self.objective, self.direction,
                min_epochs=max(2, (self.patience or 6) // 2, int(epochs or 0) // 3),
                stop=not protected))
        return callbacks


def _has_batch_norm(model):
    from keras_reg._roles import walk_layers

    return any(isinstance(layer, keras.layers.BatchNormalization)
               for layer in walk_layers(model))


def steps_per_epoch(dataset):
    """The number of batches of a finite `tf.data.Dataset` (one pass when unknown)."""
    n = int(dataset.cardinality())
    if n >= 0:
        return max(n, 1)
    return max(1, int(dataset.reduce(0, lambda count, _: count + 1)))
