"""`GeneralizationGap`: logs validation minus training loss and accuracy; stops on a growing gap."""

import math
import warnings

from keras_reg._validation import check_choice, check_float, check_int
from keras_reg.callbacks._base import CopyableCallback


class GeneralizationGap(CopyableCallback):
    """Logs the generalization gap, validation minus training; optionally stops when it grows.

    The generalization gap is the validation (or test) score minus the training score. Each
    epoch this callback logs, for every pair of `<name>` / `val_<name>` in the epoch logs where
    `<name>` is `loss`, `monitor` or an accuracy (a name ending in `accuracy`):

        gap_<name> = val_<name> − <name>

    so `gap_loss = val_loss − loss` (positive when the model overfits) and
    `gap_accuracy = val_accuracy − accuracy` (negative when it overfits), and as `gap` the gap
    of `monitor`. These are the definitions `keras_reg.tuning.report` uses for test minus train.

    With `patience`, training stops once the gap of `monitor` has widened (in the overfitting
    direction: up for losses, down for accuracies) for `patience` consecutive epochs — early
    stopping read from the gap rather than from the validation score alone — and the weights of
    the epoch with the best `val_<monitor>` (the smallest validation loss, or largest validation
    accuracy) are restored: the gap says *when* to stop, the validation score says *which*
    weights to keep.

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
    >>> gap = GeneralizationGap(monitor="loss")
    >>> logs = {"loss": 0.25, "val_loss": 0.5, "accuracy": 1.0, "val_accuracy": 0.75}
    >>> gap.on_epoch_end(0, logs)
    >>> logs["gap"], logs["gap_loss"], logs["gap_accuracy"]
    (0.25, 0.25, -0.25)

    Reference:
        - [Prechelt, 1998. Early Stopping — But When?](https://doi.org/10.1007/3-540-49430-8_3)
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
        self.key = "gap"
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
        for name in list(logs):
            tracked = name == "loss" or name == self.monitor or name.endswith("accuracy")
            if tracked and not name.startswith("val_") and "val_" + name in logs:
                logs["gap_" + name] = float(logs["val_" + name]) - float(logs[name])
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
