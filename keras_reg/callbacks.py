"""Callbacks that make regularization visible and schedule it during `fit`.

`RegularizationLogger` splits the loss into the data loss and the penalty (the lecture notes'
advice: when debugging, watch the cost *with* the penalty and check the data term separately),
`GeneralizationGap` logs `val_loss − loss` and can stop on a growing gap, and the schedulers
change rates, strengths, mixing and weight decay during training: `RateScheduler`,
`MixupScheduler`, `StrengthScheduler`, `WeightDecayScheduler`.

Callbacks that add keys to the epoch logs (`reg_loss`, `gap`, `rate`, ...) write them in
`on_epoch_end`; Keras's `History` and progress bar run after every user callback, so they show
them. Put these callbacks *before* `TensorBoard`, `CSVLogger`, `EarlyStopping` or
`ModelCheckpoint` in the `callbacks` list when those should see the new keys.

All callbacks are deep-copyable (KerasTuner copies the callbacks of every trial): the copy
shares the objects it acts on (a MixupCutMix transform, explicit layers) and none of the run
state.
"""

import math
import warnings

import keras

from keras_reg._schedulers import (
    MixupScheduler,
    RateScheduler,
    StrengthScheduler,
    WeightDecayScheduler,
    _Callback,
)
from keras_reg._validation import check_choice, check_float, check_int

__all__ = [
    "RegularizationLogger",
    "GeneralizationGap",
    "RateScheduler",
    "MixupScheduler",
    "StrengthScheduler",
    "WeightDecayScheduler",
]


def _penalty_function(model):
    """`penalty(model)` as a compiled function on TensorFlow (one cheap call per batch)."""
    from keras_reg.regularizers import penalty

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(lambda: penalty(model))
    return lambda: penalty(model)


class RegularizationLogger(_Callback):
    """Adds `reg_loss` and `data_loss` (= loss − reg_loss) to the epoch logs, train and validation.

    The training `loss` Keras reports is the batch-size-weighted mean over the epoch of
    `data loss + penalty`, each batch's penalty computed from the weights *before* that batch's
    update. This callback reproduces that average exactly: it evaluates the weight penalty
    (`keras_reg.regularizers.penalty`) at the beginning of every training batch and averages it
    with the same batch-size weights Keras uses for the loss, so `data_loss + reg_loss == loss`
    and `data_loss` is the mean data term of the epoch (with `steps_per_execution=k` the penalty
    is sampled once per k steps). The validation penalty is constant during evaluation and is
    read at the end of the epoch: `val_reg_loss`, `val_data_loss = val_loss − val_reg_loss`.
    `reg_loss` covers weight regularizers (any, not only keras_reg's); activity regularization
    and `add_loss` terms stay in `data_loss`.

    The keys are written in `on_epoch_end`, before `History` and the progress bar read them; put
    this callback before `TensorBoard` / `CSVLogger` / `EarlyStopping` in the callbacks list.

    Example:

    >>> import numpy as np
    >>> from keras_reg.callbacks import RegularizationLogger
    >>> model = keras.Sequential([keras.Input((3,)),
    ...                           keras.layers.Dense(1, kernel_regularizer="l2")])
    >>> model.compile("sgd", "mse")
    >>> history = model.fit(np.ones((8, 3)), np.zeros((8, 1)), epochs=1, verbose=0,
    ...                     callbacks=[RegularizationLogger()])
    >>> sorted(k for k in history.history if k.endswith("_loss"))
    ['data_loss', 'reg_loss']
    """

    _RUNTIME = ("_penalty", "_counter")

    def __init__(self):
        super().__init__()
        self._penalty = None
        self._counter = None

    def on_train_begin(self, logs=None):
        self._penalty = _penalty_function(self.model)
        tracker = next((m for m in self.model.metrics if m.name == "loss"), None)
        self._counter = getattr(tracker, "count", None)

    def _count(self):
        if self._counter is None:
            return None
        return float(keras.ops.convert_to_numpy(self._counter))

    def on_epoch_begin(self, epoch, logs=None):
        self._weighted_sum = 0.0
        self._weight = 0.0
        self._batch_penalty = None

    def on_train_batch_begin(self, batch, logs=None):
        self._batch_penalty = float(self._penalty())
        self._count_before = self._count()

    def on_train_batch_end(self, batch, logs=None):
        if self._batch_penalty is None:
            return
        after = self._count()
        if after is not None and self._count_before is not None and after > self._count_before:
            weight = after - self._count_before
        else:
            weight = 1.0
        self._weighted_sum += weight * self._batch_penalty
        self._weight += weight

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        current = float(self._penalty()) if self._penalty is not None else 0.0
        if "loss" in logs:
            reg = self._weighted_sum / self._weight if self._weight else current
            logs["reg_loss"] = reg
            logs["data_loss"] = float(logs["loss"]) - reg
        if "val_loss" in logs:
            logs["val_reg_loss"] = current
            logs["val_data_loss"] = float(logs["val_loss"]) - current


class GeneralizationGap(_Callback):
    """Logs the generalization gap `val_<monitor> − <monitor>`; optionally stops when it grows.

    The gap is logged as `gap` for `monitor="loss"` and as `<monitor>_gap` otherwise (e.g.
    `accuracy_gap`, negative when the model overfits). With `patience`, training stops once the
    gap has widened (in the overfitting direction: up for losses, down for accuracies) for
    `patience` consecutive epochs — the lecture notes' early-stopping signal, read from the
    gap rather than from the validation loss alone — and the weights of the epoch with the best
    `val_<monitor>` (the smallest validation loss, or largest validation accuracy) are restored:
    the gap says *when* to stop, the validation score says *which* weights to keep.

    Args:
        monitor: the training metric name (`"loss"`, `"accuracy"`, ...); `val_<monitor>` must be
            in the logs (fit with validation data).
        patience: None (only log) or the number of consecutive widening epochs that stops.
        min_delta: a change of the gap smaller than this does not count as widening.
        mode: `"auto"` (accuracy-like names are maximized, everything else minimized), `"min"`
            or `"max"`: the direction in which `monitor` improves.
        restore_best_weights: restore the best weights when stopping.
        verbose: 1 prints a line when stopping.

    Example:

    >>> from keras_reg.callbacks import GeneralizationGap
    >>> stop_on_gap = GeneralizationGap(monitor="loss", patience=3)
    """

    _RUNTIME = ("best_weights",)

    def __init__(
        self,
        monitor="loss",
        patience=None,
        min_delta=0.0,
        mode="auto",
        restore_best_weights=True,
        verbose=0,
    ):
        super().__init__()
        if not isinstance(monitor, str) or not monitor or monitor.startswith("val_"):
            raise ValueError(
                "Invalid value for argument `monitor`: expected a training metric name such as "
                f"'loss' (without the 'val_' prefix). Received: monitor={monitor!r}"
            )
        self.monitor = monitor
        self.patience = None if patience is None else check_int("patience", patience, low=1)
        self.min_delta = check_float("min_delta", min_delta, low=0.0)
        self.mode = check_choice("mode", mode, ("auto", "min", "max"))
        if self.mode == "auto":
            accuracy_like = any(k in monitor for k in ("acc", "auc", "precision", "recall"))
            self.mode = "max" if accuracy_like else "min"
        self.restore_best_weights = bool(restore_best_weights)
        self.verbose = verbose
        self.key = "gap" if monitor == "loss" else f"{monitor}_gap"
        self.best_weights = None
        self._reset()

    def _reset(self):
        self.gaps = []
        self.widening = 0
        self.best = math.inf
        self.best_epoch = None
        self.stopped_epoch = None
        self.best_weights = None
        self._warned = False

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        train, val = logs.get(self.monitor), logs.get("val_" + self.monitor)
        if train is None or val is None:
            if not self._warned:
                warnings.warn(
                    f"GeneralizationGap needs `{self.monitor}` and `val_{self.monitor}` in the "
                    "logs; fit with validation data. Available: " + ", ".join(sorted(logs)),
                    stacklevel=2,
                )
                self._warned = True
            return
        gap = float(val) - float(train)
        logs[self.key] = gap
        sign = 1.0 if self.mode == "min" else -1.0
        if self.gaps and sign * gap > sign * self.gaps[-1] + self.min_delta:
            self.widening += 1
        else:
            self.widening = 0
        self.gaps.append(gap)
        score = sign * float(val)
        if score < self.best:
            self.best, self.best_epoch = score, epoch
            if self.patience is not None and self.restore_best_weights:
                self.best_weights = self.model.get_weights()
        if self.patience is not None and self.widening >= self.patience:
            self.model.stop_training = True
            self.stopped_epoch = epoch
            if self.restore_best_weights and self.best_weights is not None:
                self.model.set_weights(self.best_weights)
            if self.verbose:
                print(
                    f"\nEpoch {epoch + 1}: the {self.key} widened for {self.widening} epochs; "
                    f"stopping, best weights from epoch {self.best_epoch + 1}."
                )
