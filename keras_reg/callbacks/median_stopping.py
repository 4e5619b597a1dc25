"""`HopelessTrialStopping`: the median stopping rule of hyperparameter searches."""

import math

import keras
import numpy as np

from keras_reg._validation import check_choice, check_int


class HopelessTrialStopping(keras.callbacks.Callback):
    """Stops a run whose objective is worse than the median of the earlier runs.

    The median stopping rule: from epoch `min_epochs` on, a run stops when its best objective
    so far is worse than the median, over the earlier runs that reached that epoch, of their
    best objective up to the same epoch. Needs `min_trials` earlier runs.

    Example:

    >>> curves = [[1.0, 0.8, 0.7], [1.0, 0.9, 0.8], [0.9, 0.7, 0.6]]
    >>> rule = HopelessTrialStopping(curves, monitor="val_loss", min_epochs=2)
    >>> rule.min_epochs, len(rule.curves)
    (2, 3)

    Args:
        curves: a list of earlier runs' objective curves; this run's is appended at its end.
        monitor: the objective's log key.
        direction: `"min"` or `"max"`.
        min_epochs: int >= 1, the first epoch (1-based) at which a run may stop.
        min_trials: int >= 1.
        stop: False records the curve but never stops the run.

    Reference:
        - [Golovin et al., 2017. Google Vizier: A Service for Black-Box Optimization](
          https://research.google/pubs/google-vizier-a-service-for-black-box-optimization/)
    """

    def __init__(self, curves, monitor="val_data_loss", direction="min", min_epochs=3,
                 min_trials=3, stop=True):
        super().__init__()
        self.curves = curves
        self.monitor = monitor
        self.direction = check_choice("direction", direction, ("min", "max"))
        self.min_epochs = check_int("min_epochs", min_epochs, low=1)
        self.min_trials = check_int("min_trials", min_trials, low=1)
        self.stop = bool(stop)
        self.curve = []
        self.stopped_epoch = None

    def _best(self, values):
        return min(values) if self.direction == "min" else max(values)

    def on_train_begin(self, logs=None):
        self.curve, self.stopped_epoch = [], None

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
        median, mine = float(np.median(earlier)), self._best(self.curve)
        if (mine > median) if self.direction == "min" else (mine < median):
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.curve:
            self.curves.append(list(self.curve))
